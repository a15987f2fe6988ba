/*
 * memblock.c - the boot-time allocator, from the E820 map.
 *
 * Two sorted, non-overlapping region arrays: memory (usable RAM from E820)
 * and reserved (the kernel image, the first 1 MiB, the early page tables,
 * and every early allocation).  memblock_phys_alloc() finds the highest
 * free range under current_limit (top-down, as Linux does), so early
 * allocations stay away from the low memory other users want.  Only boot
 * code runs while memblock is live: no locking.
 *
 * This issue needs only what paging_init() uses; the page allocator issue
 * hands the free ranges to the buddy allocator.
 */
#include <memblock.h>
#include <bootinfo.h>
#include <memlayout.h>
#include <printk.h>
#include <string.h>
#include <bug.h>

struct memblock memblock = {
	.current_limit = EARLY_MAPPED_TOP,
	.memory = { .name = "memory" },
	.reserved = { .name = "reserved" },
};

static void region_remove(struct memblock_type *t, u32 i)
{
	memmove(&t->regions[i], &t->regions[i + 1], (t->cnt - i - 1) * sizeof(t->regions[0]));
	t->cnt--;
}

/* Insert [base, base+size) and merge with overlapping or adjacent regions. */
static int region_add(struct memblock_type *t, u64 base, u64 size)
{
	u64 end = base + size;
	u32 i = 0;

	if (!size)
		return 0;
	while (i < t->cnt && t->regions[i].base + t->regions[i].size < base)
		i++;
	while (i < t->cnt && t->regions[i].base <= end) {
		u64 rb = t->regions[i].base, re = rb + t->regions[i].size;
		base = min(base, rb);
		end = max(end, re);
		region_remove(t, i);
	}
	if (t->cnt == MEMBLOCK_MAX_REGIONS)
		panic("memblock_add: too many %s regions", t->name);
	memmove(&t->regions[i + 1], &t->regions[i], (t->cnt - i) * sizeof(t->regions[0]));
	t->regions[i] = (struct memblock_region){ base, end - base };
	t->cnt++;
	return 0;
}

int memblock_add(u64 base, u64 size)
{
	return region_add(&memblock.memory, base, size);
}

int memblock_reserve(u64 base, u64 size)
{
	return region_add(&memblock.reserved, base, size);
}

static bool overlaps_reserved(u64 base, u64 end, u64 *skip_to)
{
	struct memblock_type *r = &memblock.reserved;
	for (u32 i = 0; i < r->cnt; i++) {
		u64 rb = r->regions[i].base, re = rb + r->regions[i].size;
		if (rb < end && base < re) {
			*skip_to = rb;
			return true;
		}
	}
	return false;
}

/* The highest free, aligned range of size bytes below current_limit (0: none). */
u64 memblock_phys_alloc(u64 size, u64 align)
{
	struct memblock_type *m = &memblock.memory;
	if (size > -PAGE_SIZE)
		return 0; /* ALIGN_UP would wrap to 0 and "find" an empty range */
	size = ALIGN_UP(size, PAGE_SIZE);
	for (int i = (int)m->cnt - 1; i >= 0; i--) {
		u64 lo = m->regions[i].base;
		u64 hi = min(lo + m->regions[i].size, memblock.current_limit);
		u64 skip;
		while (hi > lo && hi - lo >= size) {
			u64 cand = ALIGN_DOWN(hi - size, align);
			if (cand < lo)
				break;
			if (!overlaps_reserved(cand, cand + size, &skip)) {
				memblock_reserve(cand, size);
				return cand;
			}
			hi = skip;
		}
	}
	return 0;
}

void *memblock_alloc(u64 size, u64 align)
{
	u64 pa = memblock_phys_alloc(size, align);
	if (!pa)
		panic("memblock_alloc: cannot allocate %lu bytes align=0x%lx", size, align);
	void *va = __va(pa);
	memset(va, 0, size);
	return va;
}

static u64 type_total(struct memblock_type *t)
{
	u64 s = 0;
	for (u32 i = 0; i < t->cnt; i++)
		s += t->regions[i].size;
	return s;
}

u64 memblock_phys_mem_size(void) { return type_total(&memblock.memory); }
u64 memblock_reserved_size(void) { return type_total(&memblock.reserved); }

u64 memblock_end_of_DRAM(void)
{
	struct memblock_type *m = &memblock.memory;
	return m->cnt ? m->regions[m->cnt - 1].base + m->regions[m->cnt - 1].size : 0;
}

void memblock_dump(void)
{
	struct memblock_type *types[2] = { &memblock.memory, &memblock.reserved };
	printk("MEMBLOCK configuration:\n");
	printk(" memory size = 0x%lx reserved size = 0x%lx\n", memblock_phys_mem_size(),
	       memblock_reserved_size());
	for (int t = 0; t < 2; t++) {
		printk(" %s.cnt  = 0x%x\n", types[t]->name, types[t]->cnt);
		for (u32 i = 0; i < types[t]->cnt; i++) {
			struct memblock_region *r = &types[t]->regions[i];
			printk(" %s[0x%x]\t[0x%016lx-0x%016lx], 0x%016lx bytes\n", types[t]->name, i,
			       r->base, r->base + r->size - 1, r->size);
		}
	}
}

static const char *e820_type_name(u32 type)
{
	switch (type) {
	case E820_RAM: return "usable";
	case E820_RESERVED: return "reserved";
	case E820_ACPI: return "ACPI data";
	case E820_NVS: return "ACPI NVS";
	case E820_UNUSABLE: return "unusable";
	case E820_PMEM: return "persistent (type 7)";
	default: return NULL;
	}
}

/*
 * e820_setup - print the firmware map as Linux does and feed memblock:
 * usable RAM (page-aligned inward) into memory; the first 1 MiB, the kernel
 * image and the early page tables into reserved.
 */
void e820_setup(void)
{
	printk("BIOS-provided physical RAM map:\n");
	for (u32 i = 0; i < boot_info.e820_count; i++) {
		struct boot_e820_entry *e = &boot_info.e820[i];
		const char *name = e820_type_name(e->type);
		if (name)
			printk("BIOS-e820: [mem 0x%016lx-0x%016lx] %s\n", e->addr, e->addr + e->size - 1, name);
		else
			printk("BIOS-e820: [mem 0x%016lx-0x%016lx] type %u\n", e->addr, e->addr + e->size - 1, e->type);
		if (e->type == E820_RAM) {
			u64 b = ALIGN_UP(e->addr, PAGE_SIZE), end = ALIGN_DOWN(e->addr + e->size, PAGE_SIZE);
			if (end > b)
				memblock_add(b, end - b);
		}
	}
	memblock_reserve(0, SZ_1M);
	memblock_reserve(__pa_symbol(__kernel_start), (u64)(__kernel_end - __kernel_start));
}
