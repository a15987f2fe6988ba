/*
 * mm_init.c - phase 5a: from memblock to the buddy allocator.
 *
 *   1. mem_map[]: the vmemmap for every present section, from memblock;
 *   2. zone spans (DMA < 16 MiB <= DMA32 < 4 GiB <= Normal) and present pages;
 *   3. memblock_free_all(): writes every struct page once, with its zone
 *      number in flags (free RAM free, every other page of a present
 *      section PG_reserved), then every range in memblock.memory not
 *      covered by memblock.reserved goes to the buddy allocator in maximal
 *      naturally aligned blocks (order = min(MAX_PAGE_ORDER, lowest set bit
 *      of the pfn), shrunk until it fits), which is what makes managed_pages;
 *   4. min_free_kbytes, watermarks, lowmem_reserve and pcp sizes computed
 *      with Linux's formulas (mm/page_alloc.c, mm/mm_init.c).
 *
 * Runs once at boot, before interrupts are enabled; kmemu_set_min_free_kbytes
 * redoes step 4 later (zone->lock held for each zone's update).
 */
#include <linux/bug.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/string.h>
#include <kmemu/bootinfo.h>
#include <kmemu/log.h>
#include <kmemu/memblock.h>
#include <kmemu/memlayout.h>
#include <kmemu/mmu.h>
#include <kmemu/page_alloc.h>

u64 min_free_kbytes;
static bool min_free_kbytes_from_cmdline;
u64 percpu_pagelist_high_fraction; /* sysctl vm.percpu_pagelist_high_fraction: 0 by default */
static const char *const zone_names[MAX_NR_ZONES] = { "DMA", "DMA32", "Normal", "Movable", "Device" };
static const u32 lowmem_reserve_ratio[MAX_NR_ZONES] = { 256, 256, 32, 0, 0 };
/* the highest pfn each zone may hold; Movable and Device hold nothing here */
static const u64 zone_end_pfn_limit[MAX_NR_ZONES] = { DMA_ZONE_END_PFN, DMA32_ZONE_END_PFN, ~0UL, 0, 0 };

void build_zonelists(void);
extern char _edata[];

static u64 node_start_pfn(void)
{
	return memblock.memory.regions[0].base >> PAGE_SHIFT;
}

static int pfn_zone(u64 pfn)
{
	return pfn < DMA_ZONE_END_PFN ? ZONE_DMA : pfn < DMA32_ZONE_END_PFN ? ZONE_DMA32 : ZONE_NORMAL;
}

static u64 int_sqrt(u64 x)
{
	u64 r = 0, bit = 1UL << 62;
	while (bit > x)
		bit >>= 2;
	while (bit) {
		if (x >= r + bit) {
			x -= r + bit;
			r = (r >> 1) + bit;
		} else {
			r >>= 1;
		}
		bit >>= 2;
	}
	return r;
}

static void mark_sections(void)
{
	struct memblock_type *m = &memblock.memory;
	for (u32 i = 0; i < m->cnt; i++) {
		u64 first = (m->regions[i].base >> PAGE_SHIFT) >> PFN_SECTION_SHIFT;
		u64 last = ((m->regions[i].base + m->regions[i].size - 1) >> PAGE_SHIFT) >> PFN_SECTION_SHIFT;
		if (last >= MAX_SECTIONS)
			panic("sparse_init: RAM above %lu GiB is not supported", MAX_SECTIONS * 2 / 1024);
		for (u64 s = first; s <= last; s++)
			section_present[s / 64] |= 1UL << (s % 64);
	}
}

/*
 * One byte of pageblock flags per pageblock up to max_pfn (Linux keeps 4
 * bits per pageblock in the mem_section), all Unmovable (0) until
 * memmap_init_zone marks the blocks that start inside a zone Movable.
 */
static void pageblock_flags_init(void)
{
	u64 n = (max_pfn + pageblock_nr_pages - 1) >> pageblock_order;
	u64 pa = memblock_phys_alloc(n, 8);

	if (!pa)
		panic("pageblock_flags: no memory for %llu bytes", n);
	pageblock_flags = __va(pa);
	memset(pageblock_flags, 0, n);
}

/*
 * Back the vmemmap for every run of present sections with memblock memory
 * (2 MiB aligned when a run is that big, so the mapping uses 2 MiB pages).
 * The struct pages stay unwritten until memblock_free_all(), which writes
 * each once before anything reads them.
 */
static void sparse_init(void)
{
	max_pfn = memblock_end_of_DRAM() >> PAGE_SHIFT;
	memblock.current_limit = memblock_end_of_DRAM(); /* the direct map covers all RAM now */
	mark_sections();
	u64 nsec = (max_pfn + PAGES_PER_SECTION - 1) >> PFN_SECTION_SHIFT;
	for (u64 s = 0; s < nsec;) {
		if (!pfn_valid(s << PFN_SECTION_SHIFT)) {
			s++;
			continue;
		}
		u64 e = s;
		while (e < nsec && pfn_valid(e << PFN_SECTION_SHIFT))
			e++;
		u64 bytes = (e - s) * PAGES_PER_SECTION * sizeof(struct page);
		u64 pa = memblock_phys_alloc(bytes, bytes >= SZ_2M ? SZ_2M : PAGE_SIZE);
		if (!pa)
			panic("sparse_init: no memory for %llu bytes of struct page", bytes);
		u64 va = (u64)(mem_map + (s << PFN_SECTION_SHIFT));
		kernel_map_range(va, va + bytes, pa, __PAGE_KERNEL);
		s = e;
	}
	__asm__ __volatile__("mov %%cr3, %%rax; mov %%rax, %%cr3" ::: "rax", "memory");
	pageblock_flags_init();
}

/*
 * Zone spans as Linux's zone_spanned_pages_in_node: each zone's pfn range
 * clipped to the node's [first RAM pfn, max_pfn), holes included (so DMA32
 * spans up to 4 GiB, its PCI hole too, when RAM goes above it); present
 * pages are the RAM inside.  Every pageblock that starts in RAM inside a
 * zone is Movable (memmap_init_range), as Linux marks them at boot.
 */
static void zones_init(void)
{
	struct memblock_type *m = &memblock.memory;
	u64 node_start = node_start_pfn(), lo = 0;

	for (int zi = 0; zi < MAX_NR_ZONES; zi++) {
		struct zone *z = &zones[zi];
		u64 hi = min(zone_end_pfn_limit[zi], max_pfn);
		u64 start = max(lo, node_start);
		z->name = zone_names[zi];
		for (int mt = 0; mt < MIGRATE_PCPTYPES; mt++)
			INIT_LIST_HEAD(&z->pcp.lists[mt]);
		for (int o = 0; o < NR_PAGE_ORDERS; o++)
			for (int mt = 0; mt < MIGRATE_TYPES; mt++)
				INIT_LIST_HEAD(&z->free_area[o].free_list[mt]);
		if (start < hi) {
			z->zone_start_pfn = start;
			z->spanned_pages = hi - start;
		}
		for (u32 i = 0; i < m->cnt; i++) {
			u64 b = m->regions[i].base >> PAGE_SHIFT, e = (m->regions[i].base + m->regions[i].size) >> PAGE_SHIFT;
			b = max(b, start);
			e = min(e, hi);
			if (b >= e)
				continue;
			z->present_pages += e - b;
			for (u64 pfn = ALIGN(b, pageblock_nr_pages); pfn < e; pfn += pageblock_nr_pages)
				set_pageblock_migratetype(pfn_to_page(pfn), MIGRATE_MOVABLE);
		}
		lo = max(lo, hi);
	}
}

/* Free [start, end) (pfns of free RAM, struct pages written) in maximal aligned blocks. */
static void __free_pages_memory(u64 start, u64 end)
{
	while (start < end) {
		unsigned int order = start ? (unsigned int)__builtin_ctzl(start) : MAX_PAGE_ORDER;
		if (order > MAX_PAGE_ORDER)
			order = MAX_PAGE_ORDER;
		while (start + (1UL << order) > end)
			order--;
		/* a block never crosses a zone: zone ends are aligned to MAX_PAGE_ORDER */
		memblock_free_pages(start, order, pfn_zone(start));
		start += 1UL << order;
	}
}

/*
 * Write the struct pages of [start, end) that exist (present sections) with
 * their zone number and extra flags: PG_reserved for Linux's
 * reserve_bootmem_region (reserved RAM) and init_unavailable_range (holes),
 * none for free RAM (__init_single_page, as deferred_init_maxorder does).
 */
static void init_pages(u64 start, u64 end, u64 flags)
{
	while (start < end) {
		int zi = pfn_zone(start);
		u64 stop = min3(ALIGN(start + 1, PAGES_PER_SECTION), zone_end_pfn_limit[zi], end);
		if (pfn_valid(start))
			init_struct_pages(pfn_to_page(start), stop - start,
					  flags | ((u64)zi << ZONES_PGSHIFT));
		start = stop;
	}
}

/* fn(first, last) for each free memblock range (memory minus reserved), ascending, in pfns. */
static void for_each_free_range(void (*fn)(u64 first, u64 last))
{
	struct memblock_type *m = &memblock.memory, *r = &memblock.reserved;

	for (u32 i = 0; i < m->cnt; i++) {
		u64 b = m->regions[i].base, e = b + m->regions[i].size;
		for (u32 j = 0; j <= r->cnt && b < e; j++) {
			u64 rb = j < r->cnt ? r->regions[j].base : e;
			u64 re = j < r->cnt ? rb + r->regions[j].size : e;
			if (re <= b)
				continue;
			u64 first = ALIGN(b, PAGE_SIZE) >> PAGE_SHIFT, last = min(rb, e) >> PAGE_SHIFT;
			if (first < last)
				fn(first, last);
			b = max(b, re);
		}
	}
}

static u64 init_next; /* the first pfn whose struct page init_free_range has not written */

/* Write the pages before a free range reserved, and the range's own free. */
static void init_free_range(u64 first, u64 last)
{
	init_pages(init_next, first, 1UL << PG_reserved);
	init_pages(first, last, 0);
	init_next = last;
}

/*
 * Write every struct page once, free RAM's free and every other one reserved,
 * then hand the free ranges to the buddy allocator.  Every page is written
 * before any block is freed: freeing a block looks at its buddy's struct page
 * (page_is_buddy), which may lie in the next range or past it.
 */
static void memblock_free_all(void)
{
	init_next = 0;
	for_each_free_range(init_free_range);
	init_pages(init_next, ALIGN(max_pfn, PAGES_PER_SECTION), 1UL << PG_reserved);
	for_each_free_range(__free_pages_memory);
}

void setup_per_zone_lowmem_reserve(void)
{
	for (int i = 0; i < MAX_NR_ZONES; i++) {
		struct zone *z = &zones[i];
		bool clear = !lowmem_reserve_ratio[i] || !z->managed_pages;
		/* Linux's loop stops before the last zone type: its entries stay 0 */
		u64 upper = 0;
		for (int j = 0; j <= i; j++)
			z->lowmem_reserve[j] = 0;
		for (int j = i + 1; j < MAX_NR_ZONES; j++) {
			upper += zones[j].managed_pages;
			z->lowmem_reserve[j] = clear ? 0 : (s64)(upper / lowmem_reserve_ratio[i]);
		}
	}
	pcp_routes_update_marks();
}

/* Linux: min_free_kbytes = int_sqrt(lowmem_kbytes * 16), clamped to [128, 262144]. */
static void init_per_zone_wmark_min(void)
{
	u64 lowmem_kbytes = 0;
	for (int i = 0; i < MAX_NR_ZONES; i++)
		lowmem_kbytes += zones[i].managed_pages << (PAGE_SHIFT - 10);
	if (!min_free_kbytes_from_cmdline) {
		min_free_kbytes = int_sqrt(lowmem_kbytes * 16);
		min_free_kbytes = clamp_t(u64, min_free_kbytes, 128, 262144);
	}
}

static void setup_pcp(void);

void setup_per_zone_wmarks(void)
{
	u64 pages_min = min_free_kbytes >> (PAGE_SHIFT - 10);
	u64 lowmem_pages = 0;

	for (int i = 0; i < MAX_NR_ZONES; i++)
		lowmem_pages += zones[i].managed_pages;
	for (int i = 0; i < MAX_NR_ZONES; i++) {
		struct zone *z = &zones[i];
		unsigned long flags;
		spin_lock_irqsave(&z->lock, flags);
		u64 tmp = lowmem_pages ? pages_min * z->managed_pages / lowmem_pages : 0;
		z->_watermark[WMARK_MIN] = tmp;
		u64 step = max(tmp >> 2, z->managed_pages * 10 / 10000); /* watermark_scale_factor 10 */
		z->watermark_boost = 0;
		z->_watermark[WMARK_LOW] = tmp + step;
		z->_watermark[WMARK_HIGH] = tmp + 2 * step;
		spin_unlock_irqrestore(&z->lock, flags);
	}
	setup_pcp(); /* Linux: the watermarks changed, so pcp high follows (zone_pcp_update) */
	pcp_routes_update_marks(); /* and the order-0 fast path's floors */
}

/* Linux's zone_batchsize(): about a quarter of a MiB's worth, a power of two minus one. */
static s32 zone_batchsize(struct zone *z)
{
	u64 batch = min_t(u64, z->managed_pages >> 10, SZ_1M / PAGE_SIZE);
	batch /= 4;
	if (batch < 1)
		batch = 1;
	batch += batch / 2;
	u64 p = 1;
	while (p * 2 <= batch)
		p *= 2;
	return (s32)(p > 1 ? p - 1 : 1);
}

/*
 * Linux 6.1's zone_highsize: the zone's low watermark (or managed pages /
 * percpu_pagelist_high_fraction when that is set) split across the CPUs
 * (one here), at least 4 * batch, so full pcp lists alone never wake kswapd.
 */
static s32 zone_highsize(struct zone *z, s32 batch)
{
	u64 total = percpu_pagelist_high_fraction ? z->managed_pages / percpu_pagelist_high_fraction
						  : low_wmark_pages(z);
	u64 nr_split_cpus = 1;
	u64 high = total / nr_split_cpus;

	return (s32)max_t(u64, high, (u64)batch << 2);
}

static void setup_pcp(void)
{
	for (int i = 0; i < MAX_NR_ZONES; i++) {
		struct zone *z = &zones[i];
		z->pcp.batch = zone_batchsize(z);
		z->pcp.high = zone_highsize(z, z->pcp.batch);
	}
}

/*
 * sysctl vm.percpu_pagelist_high_fraction: 0 or at least 8 (else -EINVAL,
 * nothing changed); pcp high is recomputed for every zone.
 */
s64 kmemu_set_percpu_pagelist_high_fraction(u64 fraction)
{
	if (fraction && fraction < MIN_PERCPU_PAGELIST_HIGH_FRACTION)
		return -EINVAL;
	percpu_pagelist_high_fraction = fraction;
	setup_pcp();
	return 0;
}

/*
 * Linux's calculate_normal_threshold: how far a CPU's vm counter may drift
 * before it is folded into the zone's, from the zone size and the CPU
 * count (one).  kmemu keeps its counters exact; the figure is what
 * /proc/zoneinfo reports as "vm stats threshold".
 */
static void refresh_zone_stat_thresholds(void)
{
	for (int i = 0; i < MAX_NR_ZONES; i++) {
		struct zone *z = &zones[i];
		u64 mem = z->managed_pages >> (27 - PAGE_SHIFT);
		int cpus_bits = 1; /* fls(num_online_cpus()) */
		int threshold = 2 * cpus_bits * (1 + (mem ? 64 - __builtin_clzl(mem) : 0));
		z->stat_threshold = populated_zone(z) ? (u32)min(125, threshold) : 0;
	}
}

void kmemu_set_min_free_kbytes(u64 kbytes)
{
	min_free_kbytes = kbytes;
	min_free_kbytes_from_cmdline = true;
	setup_per_zone_wmarks();
	setup_per_zone_lowmem_reserve();
}

/* Pages of [start, end) whose pageblock has a struct page (init_unavailable_range's count). */
static u64 unavailable_pages(u64 start, u64 end)
{
	u64 n = 0;
	for (u64 pfn = start; pfn < end; pfn++) {
		if (!pfn_valid(ALIGN_DOWN(pfn, pageblock_nr_pages))) {
			pfn = ALIGN_DOWN(pfn, pageblock_nr_pages) + pageblock_nr_pages - 1;
			continue;
		}
		n++;
	}
	return n;
}

static void report_unavailable(u64 start, u64 end, int zi)
{
	u64 n = unavailable_pages(start, end);
	if (n)
		printk("On node 0, zone %s: %llu pages in unavailable ranges\n", zone_names[zi], n);
}

/*
 * Linux's memmap_init: walking RAM ranges zone by zone, each hole is
 * reported for the zone of the RAM that follows it, and the hole from the
 * last RAM page to the end of its section for the last zone used.
 */
static void print_unavailable_ranges(void)
{
	struct memblock_type *m = &memblock.memory;
	u64 hole = 0, end = 0;
	int zone_id = 0;

	for (u32 i = 0; i < m->cnt; i++) {
		u64 s = m->regions[i].base >> PAGE_SHIFT;
		end = (m->regions[i].base + m->regions[i].size) >> PAGE_SHIFT;
		for (int zi = 0; zi < MAX_NR_ZONES; zi++) {
			struct zone *z = &zones[zi];
			u64 zs = z->zone_start_pfn, ze = zs + z->spanned_pages;
			u64 b = clamp(s, zs, ze), e = clamp(end, zs, ze);
			if (!populated_zone(z) || b >= e)
				continue;
			if (hole < b)
				report_unavailable(hole, b, zi);
			hole = e;
			zone_id = zi;
		}
	}
	end = ALIGN(end, PAGES_PER_SECTION);
	if (hole < end)
		report_unavailable(hole, end, zone_id);
}

/* Linux's "Zone ranges" (Movable has its own line; Device is listed), node ranges, holes. */
static void print_zone_ranges(void)
{
	struct memblock_type *m = &memblock.memory;
	printk("Zone ranges:\n");
	for (int zi = 0; zi < MAX_NR_ZONES; zi++) {
		struct zone *z = &zones[zi];
		if (zi == ZONE_MOVABLE)
			continue;
		if (z->spanned_pages)
			printk("  %-8s [mem 0x%016llx-0x%016llx]\n", zone_names[zi],
			       z->zone_start_pfn << PAGE_SHIFT,
			       ((z->zone_start_pfn + z->spanned_pages) << PAGE_SHIFT) - 1);
		else
			printk("  %-8s empty\n", zone_names[zi]);
	}
	printk("Movable zone start for each node\n");
	printk("Early memory node ranges\n");
	for (u32 i = 0; i < m->cnt; i++)
		printk("  node   0: [mem 0x%016llx-0x%016llx]\n", m->regions[i].base,
		       m->regions[i].base + m->regions[i].size - 1);
	printk("Initmem setup node 0 [mem 0x%016llx-0x%016llx]\n", m->regions[0].base,
	       (max_pfn << PAGE_SHIFT) - 1);
	print_unavailable_ranges();
}

static void mem_init_print_info(void)
{
	u64 physpages = 0;
	for (int i = 0; i < MAX_NR_ZONES; i++)
		physpages += zones[i].present_pages;
	/* Linux's mem_init_print_info(): the sections as kernel.ld bounds them */
	u64 code = (u64)(_etext - _stext), rodata = (u64)(__end_rodata - __start_rodata);
	u64 rw = (u64)(_edata - _sdata), bss = (u64)(__bss_end - __bss_start);
	printk("Built 1 zonelists, mobility grouping %s.  Total pages: %llu\n",
	       page_group_by_mobility_disabled ? "off" : "on", vm_total_pages);
	printk("Memory: %lluK/%lluK available (%lluK kernel code, %lluK rwdata, %lluK rodata, 0K init, "
	       "%lluK bss, %lluK reserved, 0K cma-reserved)\n",
	       nr_free_pages() << (PAGE_SHIFT - 10), physpages << (PAGE_SHIFT - 10), code >> 10,
	       rw >> 10, rodata >> 10, bss >> 10, (physpages - totalram_pages) << (PAGE_SHIFT - 10));
}

void mm_core_init(void)
{
	const char *v = cmdline_find(boot_info.cmdline, "min_free_kbytes");
	if (v && *v >= '0' && *v <= '9') {
		min_free_kbytes = simple_strtoull(v, NULL, 0);
		min_free_kbytes_from_cmdline = true;
	}
	sparse_init();
	zones_init();
	print_zone_ranges();
	memblock_free_all();
	init_per_zone_wmark_min();
	setup_per_zone_wmarks();
	setup_per_zone_lowmem_reserve();
	refresh_zone_stat_thresholds();
	build_zonelists();
	preallocate_vmalloc_pages();
	drain_all_pages(); /* "available" below then counts every free page */
	mem_init_print_info();
	printk("min_free_kbytes: %llu\n", min_free_kbytes);
}
