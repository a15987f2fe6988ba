/*
 * mmzone.h - zones, free areas, per-cpu page lists, watermarks.
 *
 * Zone types as Linux 6.1 configures them on x86-64: DMA [0, 16 MiB), DMA32
 * [16 MiB, 4 GiB), Normal [4 GiB, end), and Movable and Device, which exist
 * but stay empty (no kernelcore=/movablecore=, no device memory).
 *
 * Grouping pages by mobility (Linux's "mobility grouping"): physical memory
 * is cut into pageblocks of 2^pageblock_order pages, each with a migrate type
 * (pageblock_flags[], one byte per pageblock).  Each zone keeps, per order,
 * one free list per migrate type; a freed block goes on the list of its
 * pageblock's type; an allocation takes from the list of the type its GFP
 * flags ask for (gfp_migratetype) and falls back to other types, stealing
 * whole pageblocks, as __rmqueue_fallback does.  In front of the buddy lists
 * sits a per-cpu list (pcp) per pcp migrate type for order-0 pages, filled
 * and drained in batches.
 *
 * zone->lock protects free_area[] and nr_free_pages.  The pcp list is
 * per-CPU and needs only interrupts off (one CPU); code that moves pages
 * between it and the buddy lists holds zone->lock as well.  Watermarks and
 * lowmem_reserve are written at boot and when min_free_kbytes changes.
 */
#ifndef KMEMU_MMZONE_H
#define KMEMU_MMZONE_H
#include <linux/types.h>
#include <linux/list.h>
#include <linux/spinlock.h>
#include <kmemu/mm_types.h>

#define MAX_PAGE_ORDER 10
#define NR_PAGE_ORDERS (MAX_PAGE_ORDER + 1)
#define MAX_ORDER_NR_PAGES (1UL << MAX_PAGE_ORDER)

enum zone_type { ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE, MAX_NR_ZONES };
enum zone_watermarks { WMARK_MIN, WMARK_LOW, WMARK_HIGH, NR_WMARK };

/* Linux 6.1's migrate types, in its order (no CMA: not configured) */
enum migratetype {
	MIGRATE_UNMOVABLE,
	MIGRATE_MOVABLE,
	MIGRATE_RECLAIMABLE,
	MIGRATE_PCPTYPES, /* the types with a pcp list */
	MIGRATE_HIGHATOMIC = MIGRATE_PCPTYPES,
	MIGRATE_ISOLATE,
	MIGRATE_TYPES
};

#define pageblock_order 9
#define pageblock_nr_pages (1UL << pageblock_order)
/* percpu_pagelist_high_fraction: 0 (high from the low watermark) or at least this */
#define MIN_PERCPU_PAGELIST_HIGH_FRACTION 8

#define DMA_ZONE_END_PFN (0x1000000UL >> 12)
#define DMA32_ZONE_END_PFN (0x100000000UL >> 12)

struct free_area {
	struct list_head free_list[MIGRATE_TYPES];
	u64 nr_free; /* blocks of this order, all types */
};

struct per_cpu_pages {
	s32 count; /* pages on the lists */
	s32 high;  /* drain a batch when count reaches high */
	s32 batch; /* pages moved to or from the buddy lists at a time */
	s32 pad;
	struct list_head lists[MIGRATE_PCPTYPES]; /* order-0 pages per migrate type, hot first */
};

struct zone {
	u64 _watermark[NR_WMARK];
	u64 watermark_boost;
	s64 lowmem_reserve[MAX_NR_ZONES];
	const char *name;
	u64 zone_start_pfn;
	u64 spanned_pages;
	u64 present_pages;
	u64 managed_pages;
	u64 nr_free_pages; /* NR_FREE_PAGES: pages on the buddy lists (not pcp) */
	spinlock_t lock;
	struct free_area free_area[NR_PAGE_ORDERS];
	struct per_cpu_pages pcp;
	u64 nr_reserved_highatomic; /* pages in MIGRATE_HIGHATOMIC pageblocks */
	/* kmemu statistics (zone->lock) */
	u64 stat_alloc[NR_PAGE_ORDERS];
	u64 stat_free[NR_PAGE_ORDERS];
	u64 stat_fail;
	u64 stat_pcp_refill;
	u64 stat_pcp_drain;
	u64 stat_fallback; /* __rmqueue_fallback steals (Linux: extfrag events) */
	u32 kswapd_wake; /* set by the allocator, cleared by kswapd */
	u32 stat_threshold; /* Linux's vm stats threshold (kmemu's counters are exact) */
};

/*
 * Sections: 2 MiB of physical memory (512 pfns).  The vmemmap (struct page
 * array at VMEMMAP_START) is backed only for sections that hold RAM, so a
 * sparse E820 map costs no struct pages for its holes; pfn_valid() says
 * whether a pfn's struct page exists.
 */
#define PFN_SECTION_SHIFT 9
#define PAGES_PER_SECTION (1UL << PFN_SECTION_SHIFT)
#define MAX_SECTIONS (1UL << 17) /* 256 GiB of physical address space */
extern u64 section_present[MAX_SECTIONS / 64];

static inline bool pfn_valid(u64 pfn)
{
	u64 s = pfn >> PFN_SECTION_SHIFT;
	return s < MAX_SECTIONS && ((section_present[s / 64] >> (s % 64)) & 1);
}

extern struct zone zones[MAX_NR_ZONES];
extern struct page *mem_map;
extern u64 max_pfn;          /* one past the highest usable pfn */
extern u64 totalram_pages;   /* managed pages in all zones */
extern u64 min_free_kbytes;
extern u64 percpu_pagelist_high_fraction;

/*
 * pageblock_flags[pfn >> pageblock_order]: bits 0-2 the pageblock's migrate
 * type; bit 7 (kmemu's own) set when a fallback put free pages of this block
 * on another type's list without taking the block (Linux keeps no record).
 */
#define PB_MIGRATETYPE_MASK 0x7
#define PB_MIXED 0x80
extern u8 *pageblock_flags;
extern bool page_group_by_mobility_disabled;

static inline int get_pfnblock_migratetype(u64 pfn)
{
	return pageblock_flags[pfn >> pageblock_order] & PB_MIGRATETYPE_MASK;
}

static inline int zone_idx(const struct zone *z) { return (int)(z - zones); }
static inline u64 min_wmark_pages(const struct zone *z) { return z->_watermark[WMARK_MIN] + z->watermark_boost; }
static inline u64 low_wmark_pages(const struct zone *z) { return z->_watermark[WMARK_LOW] + z->watermark_boost; }
static inline u64 high_wmark_pages(const struct zone *z) { return z->_watermark[WMARK_HIGH] + z->watermark_boost; }
static inline bool populated_zone(const struct zone *z) { return z->present_pages != 0; }

static inline int page_zonenum(const struct page *p) { return (int)(p->flags >> ZONES_PGSHIFT); }
static inline struct zone *page_zone(const struct page *p) { return &zones[page_zonenum(p)]; }

#endif
