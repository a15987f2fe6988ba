/*
 * kmemu/page_alloc.h - the physical page allocator's internals (page_alloc.c,
 * mm_init.c, vmscan.c).  The public API is <linux/gfp.h> and <linux/mm.h>.
 */
#ifndef KMEMU_PAGE_ALLOC_H
#define KMEMU_PAGE_ALLOC_H
#include <linux/types.h>
#include <linux/gfp.h>
#include <kmemu/mmzone.h>
#include <kmemu/memlayout.h>
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/preempt.h>
#include <kmemu/kasan.h> /* the allocators' KASAN hooks (empty without CONFIG_KASAN) */
#include <kmemu/alloc_hooks.h>

/* alloc_flags, with Linux's values where they alias GFP bits */
#define ALLOC_WMARK_MIN WMARK_MIN
#define ALLOC_WMARK_LOW WMARK_LOW
#define ALLOC_WMARK_HIGH WMARK_HIGH
#define ALLOC_NO_WATERMARKS 0x04
#define ALLOC_WMARK_MASK (ALLOC_NO_WATERMARKS - 1)
#define ALLOC_OOM 0x08
#define ALLOC_NON_BLOCK 0x10
#define ALLOC_MIN_RESERVE 0x20 /* == __GFP_HIGH */
#define ALLOC_CPUSET 0x40
#define ALLOC_NOFRAGMENT 0x100
#define ALLOC_HIGHATOMIC 0x200
#define ALLOC_KSWAPD 0x800 /* == __GFP_KSWAPD_RECLAIM */
#define ALLOC_RESERVES (ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM)

#define MAX_RECLAIM_RETRIES 16
#define PAGE_ALLOC_COSTLY_ORDER 3

struct page *__alloc_pages(gfp_t gfp, unsigned int order);
struct page *compound_head(struct page *page);

/* Inline forms for hot paths (the functions above are the same, callable by name). */
static inline bool __virt_addr_valid(u64 addr)
{
	u64 pfn = __pa(addr) >> PAGE_SHIFT;
	return addr >= PAGE_OFFSET && pfn < max_pfn && pfn_valid(pfn);
}

static inline struct page *__direct_virt_to_page(const void *addr)
{
	return mem_map + (__pa(addr) >> PAGE_SHIFT);
}

static inline struct page *__compound_head(struct page *page)
{
	u64 head = page->compound_head;
	if ((head & 1) && PageTail(page))
		return (struct page *)(head - 1);
	return page;
}

void drain_all_pages(void);
bool zone_watermark_ok(struct zone *z, unsigned int order, u64 mark, int highest_zoneidx,
		       unsigned int alloc_flags);
bool __zone_watermark_ok(struct zone *z, unsigned int order, u64 mark, int highest_zoneidx,
			 unsigned int alloc_flags, s64 free_pages);
int gfp_zone(gfp_t gfp);
/* the zone type a request may use at most: DMA, DMA32 or Normal */
static inline int __gfp_zone(gfp_t gfp)
{
	if (gfp & __GFP_DMA)
		return ZONE_DMA;
	return (gfp & __GFP_DMA32) ? ZONE_DMA32 : ZONE_NORMAL;
}
void set_pageblock_migratetype(struct page *page, int mt);
int move_freepages_block(struct zone *z, struct page *page, int mt, int *num_movable);
extern u64 vm_total_pages;
u64 nr_free_pages(void);
/* boot: struct page init and the hand-over of free RAM (mm_init.c calls them) */
void init_struct_pages(struct page *page, u64 n, u64 flags);
void memblock_free_pages(u64 pfn, unsigned int order, int zi);

/* mm_init.c */
void mm_core_init(void);
void setup_per_zone_wmarks(void);
void setup_per_zone_lowmem_reserve(void);
void pcp_routes_update_marks(void); /* after a watermark or lowmem_reserve change */
void kmemu_set_min_free_kbytes(u64 kbytes);

/* vmscan.c: reclaim, kswapd, OOM, reports */
struct shrink_control {
	gfp_t gfp_mask;
	u32 pad;
	u64 nr_to_scan;
	u64 nr_scanned;
};

#define SHRINK_STOP (~0UL)
#define SHRINK_EMPTY (~0UL - 1)

struct shrinker {
	const char *name;
	u64 (*count_objects)(struct shrinker *, struct shrink_control *);
	u64 (*scan_objects)(struct shrinker *, struct shrink_control *);
	s64 batch; /* objects per scan_objects call; 0 means 128 */
	struct list_head list;
	u64 nr_scanned_total;
	u64 nr_freed_total;
	void *private_data;
};

void register_shrinker(struct shrinker *s);
void unregister_shrinker(struct shrinker *s);
u64 shrink_slab(gfp_t gfp, u64 nr_wanted);
u64 try_to_free_pages(gfp_t gfp, unsigned int order);
bool reclaimable_objects(void);
void wakeup_kswapd(struct zone *z);
void kswapd_run(void);
void kmemu_deferred_work(void);
bool out_of_memory(gfp_t gfp, unsigned int order);
void show_free_areas(void);
void warn_alloc(gfp_t gfp, unsigned int order, const char *what);
void mm_wait_for_memory(bool forever);

/*
 * Whether might_sleep's check reports an allocation with gfp: gfp may block
 * and the caller is in atomic context (preempt count or interrupts off).
 * Linux's might_alloc -> might_sleep_if; the one definition for might_alloc
 * and the slab fast paths' inline test (slab_might_sleep_report()).
 */
static __always_inline bool might_alloc_in_atomic(gfp_t gfp)
{
	return gfpflags_allow_blocking(gfp) && unlikely(preempt_count || irqs_disabled());
}

/* might_sleep's report (file:line) for an allocation that may not block here. */
static inline void might_alloc(gfp_t gfp, const char *file, int line)
{
	if (might_alloc_in_atomic(gfp))
		__might_sleep(file, line);
}

void dump_page(struct page *page, const char *reason);
void bad_page(struct page *page, const char *reason);

enum system_states { SYSTEM_BOOTING, SYSTEM_RUNNING };
extern enum system_states system_state;

extern u64 kswapd_runs, kswapd_reclaimed, direct_reclaims, oom_count, alloc_stalls;

#endif
