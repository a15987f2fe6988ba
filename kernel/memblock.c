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
 * Each array starts with INIT_MEMBLOCK_REGIONS static slots and doubles
 * from memblock itself when full (Linux's memblock_double_array), once
 * e820_setup() has reserved everything already in use: a map with
 * thousands of E820 entries fits.  The first 1 MiB holds at most ~60 RAM
 * regions (page-aligned, [0x1000, 0x90000) is one), so the static slots
 * last until the [1 MiB, 9 MiB) range every bootable map has is added.
 *
 * This issue needs only what paging_init() uses; the page allocator issue
 * hands the free ranges to the buddy allocator.
 */
#include <linux/bug.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/string.h>
#include <kmemu/bootinfo.h>
#include <kmemu/log.h>
#include <kmemu/memblock.h>
#include <kmemu/memlayout.h>

static struct memblock_region memory_init[INIT_MEMBLOCK_REGIONS];
static struct memblock_region reserved_init[INIT_MEMBLOCK_REGIONS];
static bool memblock_can_resize;

struct memblock memblock = {
	.current_limit = EARLY_MAPPED_TOP,
	.memory = { .max = INIT_MEMBLOCK_REGIONS, .regions = memory_init, .name = "memory" },
	.reserved = { .max = INIT_MEMBLOCK_REGIONS, .regions = reserved_init, .name = "reserved" },
};

static int region_add(struct memblock_type *t, u64 base, u64 size);
static u64 find_free(u64 size, u64 align, u64 avoid, u64 avoid_end);

/*
 * memblock_double_array - give @t twice the room.  The new array comes from
 * free memory away from [avoid, avoid_end) (the range being added right
 * now, not yet in either array) and is reserved once it is in use; an
 * allocated old array stays reserved (less than the new one, once per
 * doubling), the static one is simply left.
 */
static void memblock_double_array(struct memblock_type *t, u64 avoid, u64 avoid_end)
{
	u64 old = t->max * sizeof(t->regions[0]);
	u64 pa = memblock_can_resize ? find_free(2 * old, PAGE_SIZE, avoid, avoid_end) : 0;

	if (!pa)
		panic("memblock: cannot grow the %s array beyond %u regions", t->name, t->max);
	struct memblock_region *n = __va(pa);
	memcpy(n, t->regions, t->cnt * sizeof(t->regions[0]));
	t->regions = n;
	t->max *= 2;
	region_add(&memblock.reserved, pa, 2 * old);
}

static void region_remove(struct memblock_type *t, u32 i)
{
	memmove(&t->regions[i], &t->regions[i + 1], (t->cnt - i - 1) * sizeof(t->regions[0]));
	t->cnt--;
}

/* The first region of @t ending at or above @base (binary search: the map adds thousands). */
static u32 first_reaching(struct memblock_type *t, u64 base)
{
	u32 lo = 0, hi = t->cnt;

	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;
		if (t->regions[mid].base + t->regions[mid].size < base)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Insert [base, base+size) and merge with overlapping or adjacent regions. */
static int region_add(struct memblock_type *t, u64 base, u64 size)
{
	u64 end = base + size;

	if (!size)
		return 0;
	if (t->cnt == t->max) /* before anything moves: doubling adds a reservation */
		memblock_double_array(t, base, end);
	u32 i = first_reaching(t, base);
	while (i < t->cnt && t->regions[i].base <= end) {
		u64 rb = t->regions[i].base, re = rb + t->regions[i].size;
		base = min(base, rb);
		end = max(end, re);
		region_remove(t, i);
	}
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

/*
 * find_free - the highest @align-ed free range of @size bytes under
 * current_limit, not overlapping [avoid, avoid_end); 0 if there is none
 * (0 itself is never free: the first 1 MiB is reserved).  Reserves nothing.
 */
static u64 find_free(u64 size, u64 align, u64 avoid, u64 avoid_end)
{
	struct memblock_type *m = &memblock.memory;
	for (int i = (int)m->cnt - 1; i >= 0; i--) {
		u64 lo = m->regions[i].base;
		u64 hi = min(lo + m->regions[i].size, memblock.current_limit);
		u64 skip;
		while (hi > lo && hi - lo >= size) {
			u64 cand = ALIGN_DOWN(hi - size, align);
			if (cand < lo)
				break;
			if (cand < avoid_end && avoid < cand + size)
				hi = avoid;
			else if (!overlaps_reserved(cand, cand + size, &skip))
				return cand;
			else
				hi = skip;
		}
	}
	return 0;
}

u64 memblock_phys_alloc(u64 size, u64 align)
{
	if (size > -PAGE_SIZE)
		return 0; /* ALIGN would wrap to 0 and "find" an empty range */
	size = ALIGN(size, PAGE_SIZE);
	u64 pa = find_free(size, align, 0, 0);
	if (pa)
		memblock_reserve(pa, size);
	return pa;
}

void *memblock_alloc(u64 size, u64 align)
{
	u64 pa = memblock_phys_alloc(size, align);
	if (!pa)
		panic("memblock_alloc: cannot allocate %llu bytes align=0x%llx", size, align);
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
	printk(" memory size = 0x%llx reserved size = 0x%llx\n", memblock_phys_mem_size(),
	       memblock_reserved_size());
	for (int t = 0; t < 2; t++) {
		printk(" %s.cnt  = 0x%x\n", types[t]->name, types[t]->cnt);
		for (u32 i = 0; i < types[t]->cnt; i++) {
			struct memblock_region *r = &types[t]->regions[i];
			printk(" %s[0x%x]\t[0x%016llx-0x%016llx], 0x%016llx bytes\n", types[t]->name, i,
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
 * usable RAM (page-aligned inward, less the first page, which Linux's
 * trim_bios_range gives to the BIOS: pfn 0 is in no zone) into memory; the first 1 MiB (boot info,
 * early page tables), the kernel image and the E820 table into reserved
 * first, so the arrays may grow from memblock while the map goes in.
 */
void e820_setup(void)
{
	memblock_reserve(0, SZ_1M);
	memblock_reserve(__pa_symbol(__kernel_start), (u64)(__kernel_end - __kernel_start));
	memblock_reserve(E820_TABLE_PA, boot_info.e820_count * sizeof(boot_info.e820[0]));
	memblock_can_resize = true;
	printk("BIOS-provided physical RAM map:\n");
	for (u32 i = 0; i < boot_info.e820_count; i++) {
		struct boot_e820_entry *e = &boot_info.e820[i];
		const char *name = e820_type_name(e->type);
		if (name)
			printk("BIOS-e820: [mem 0x%016llx-0x%016llx] %s\n", e->addr, e->addr + e->size - 1, name);
		else
			printk("BIOS-e820: [mem 0x%016llx-0x%016llx] type %u\n", e->addr, e->addr + e->size - 1, e->type);
		if (e->type == E820_RAM) {
			/* trim_bios_range: the first page belongs to the BIOS, never to the allocator */
			u64 b = max(ALIGN(e->addr, PAGE_SIZE), (u64)PAGE_SIZE);
			u64 end = ALIGN_DOWN(e->addr + e->size, PAGE_SIZE);
			if (end > b)
				memblock_add(b, end - b);
		}
	}
}
