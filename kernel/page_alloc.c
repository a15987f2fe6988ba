/*
 * page_alloc.c - the buddy allocator: free lists per order, split and merge,
 * a per-cpu order-0 list in front, watermark checks, and the allocation
 * slow path (reserves, reclaim, sleeping, OOM) as Linux's mm/page_alloc.c
 * defines their behaviour.
 *
 * Data: zones[] (mmzone.h).  A free block of order k starts at a pfn aligned
 * to 2^k; its first struct page has PG_buddy set and private = k and sits on
 * zones[z].free_area[k].free_list; its other pages are untouched.  The buddy
 * of the block at pfn is the block at pfn ^ (1 << k); two buddies merge only
 * when both are free, of the same order and in the same zone.
 *
 * Invariants (checked by emu.kernel views and tests):
 *   nr_free_pages == sum over orders of nr_free * 2^order;
 *   pcp.count == length of pcp.list, every page on it has PG_pcp;
 *   managed_pages == nr_free_pages + pcp.count + pages allocated.
 *
 * Locking: zone->lock (interrupts off) around every change to free_area[],
 * nr_free_pages and pcp.  Interrupt handlers allocate with GFP_ATOMIC, so
 * nothing here may run with the lock held and interrupts on.  Freeing a
 * page that is already free, freeing with the wrong order, or freeing an
 * address that is not a page start is caught before any list is touched
 * (bad_page) and the page is left alone.
 */
#include <linux/bug.h>
#include <linux/export.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/string.h>
#include <kmemu/abi.h>
#include <kmemu/log.h>
#include <kmemu/memlayout.h>
#include <kmemu/page_alloc.h>
#include <kmemu/traps.h>
#include <kmemu/kunit_track.h>

struct zone zones[MAX_NR_ZONES];
struct page *mem_map = (struct page *)VMEMMAP_START;
u64 section_present[MAX_SECTIONS / 64];
u64 max_pfn;
u64 totalram_pages;

/* --- conversions ------------------------------------------------------ */

unsigned long page_to_pfn(const struct page *page) { return (unsigned long)(page - mem_map); }
EXPORT_SYMBOL(page_to_pfn);
struct page *pfn_to_page(unsigned long pfn) { return mem_map + pfn; }
EXPORT_SYMBOL(pfn_to_page);
void *page_address(const struct page *page) { return __va(page_to_pfn(page) << PAGE_SHIFT); }
EXPORT_SYMBOL(page_address);

bool virt_addr_valid(unsigned long addr)
{
	return __virt_addr_valid(addr);
}
EXPORT_SYMBOL(virt_addr_valid);

struct page *virt_to_page(const void *addr)
{
	u64 a = (u64)addr;
	if (a < START_KERNEL_MAP)
		return __direct_virt_to_page(addr);
	return pfn_to_page(__pa_symbol(a) >> PAGE_SHIFT);
}
EXPORT_SYMBOL(virt_to_page);

struct page *compound_head(struct page *page)
{
	return __compound_head(page);
}

int gfp_zone(gfp_t gfp)
{
	if (gfp & __GFP_DMA)
		return ZONE_DMA;
	if (gfp & __GFP_DMA32)
		return ZONE_DMA32;
	return ZONE_NORMAL;
}

u64 nr_free_pages(void)
{
	u64 n = 0;
	for (int i = 0; i < MAX_NR_ZONES; i++)
		n += zones[i].nr_free_pages;
	return n;
}

/* --- free lists ----------------------------------------------------- */

static inline void set_buddy_order(struct page *p, unsigned int order)
{
	p->private = order;
	set_page_flag(p, PG_buddy);
}

static void add_to_free_list_locked(struct page *p, struct zone *z, unsigned int order)
{
	set_buddy_order(p, order);
	list_add(&p->lru, &z->free_area[order].free_list);
	z->free_area[order].nr_free++;
}

static void del_from_free_list_locked(struct page *p, struct zone *z, unsigned int order)
{
	list_del(&p->lru);
	clear_page_flag(p, PG_buddy);
	p->private = 0;
	z->free_area[order].nr_free--;
}

static bool page_is_buddy(struct zone *z, u64 buddy_pfn, unsigned int order)
{
	if (buddy_pfn >= max_pfn || !pfn_valid(buddy_pfn))
		return false;
	struct page *b = pfn_to_page(buddy_pfn);
	return PageBuddy(b) && b->private == order && page_zone(b) == z;
}

/* Put a block back, merging with free buddies as far as they go. */
static void __free_one_page_locked(struct zone *z, u64 pfn, unsigned int order)
{
	z->nr_free_pages += 1UL << order;
	while (order < MAX_PAGE_ORDER) {
		u64 buddy_pfn = pfn ^ (1UL << order);
		if (!page_is_buddy(z, buddy_pfn, order))
			break;
		del_from_free_list_locked(pfn_to_page(buddy_pfn), z, order);
		pfn &= buddy_pfn;
		order++;
	}
	add_to_free_list_locked(pfn_to_page(pfn), z, order);
}

/* Split a block of order high down to order low, freeing the upper halves. */
static void expand_locked(struct zone *z, struct page *page, unsigned int low, unsigned int high)
{
	while (high > low) {
		high--;
		add_to_free_list_locked(page + (1UL << high), z, high);
	}
}

static struct page *__rmqueue_smallest_locked(struct zone *z, unsigned int order)
{
	for (unsigned int cur = order; cur < NR_PAGE_ORDERS; cur++) {
		struct free_area *a = &z->free_area[cur];
		if (list_empty(&a->free_list))
			continue;
		struct page *p = list_first_entry(&a->free_list, struct page, lru);
		del_from_free_list_locked(p, z, cur);
		expand_locked(z, p, order, cur);
		z->nr_free_pages -= 1UL << order;
		return p;
	}
	return NULL;
}

/* --- the per-cpu list ------------------------------------------------- */

static int rmqueue_bulk_locked(struct zone *z, int count)
{
	struct per_cpu_pages *pcp = &z->pcp;
	int n = 0;
	for (; n < count; n++) {
		struct page *p = __rmqueue_smallest_locked(z, 0);
		if (!p)
			break;
		set_page_flag(p, PG_pcp);
		list_add_tail(&p->lru, &pcp->list);
		pcp->count++;
	}
	if (n)
		z->stat_pcp_refill++;
	return n;
}

/* Give the coldest count pages of the pcp list back to the buddy lists. */
static void free_pcppages_bulk_locked(struct zone *z, int count)
{
	struct per_cpu_pages *pcp = &z->pcp;
	while (count-- > 0 && !list_empty(&pcp->list)) {
		struct page *p = list_entry(pcp->list.prev, struct page, lru);
		list_del(&p->lru);
		clear_page_flag(p, PG_pcp);
		pcp->count--;
		__free_one_page_locked(z, page_to_pfn(p), 0);
	}
	z->stat_pcp_drain++;
}

static struct page *rmqueue_pcplist_locked(struct zone *z)
{
	struct per_cpu_pages *pcp = &z->pcp;
	if (list_empty(&pcp->list) && !rmqueue_bulk_locked(z, pcp->batch))
		return NULL;
	struct page *p = list_first_entry(&pcp->list, struct page, lru);
	list_del(&p->lru);
	clear_page_flag(p, PG_pcp);
	pcp->count--;
	return p;
}

void drain_all_pages(void)
{
	for (int i = 0; i < MAX_NR_ZONES; i++) {
		struct zone *z = &zones[i];
		unsigned long flags;
		if (!populated_zone(z))
			continue;
		spin_lock_irqsave(&z->lock, flags);
		if (z->pcp.count)
			free_pcppages_bulk_locked(z, z->pcp.count);
		spin_unlock_irqrestore(&z->lock, flags);
	}
}

/* --- watermarks ------------------------------------------------------- */

/*
 * The order-0 test: free pages, minus what an order-N request leaves
 * unusable, must stay above min (reduced for reserve users) plus the
 * lowmem_reserve protecting this zone from requests that could have used a
 * higher zone.  An order-N request also needs a free block of order >= N.
 */
bool __zone_watermark_ok(struct zone *z, unsigned int order, u64 mark, int highest_zoneidx,
			 unsigned int alloc_flags, s64 free_pages)
{
	s64 min = (s64)mark;

	free_pages -= (1L << order) - 1;
	if (alloc_flags & ALLOC_RESERVES) {
		if (alloc_flags & ALLOC_MIN_RESERVE) {
			min -= min / 2;
			if (alloc_flags & ALLOC_NON_BLOCK)
				min -= min / 4;
		}
		if (alloc_flags & ALLOC_OOM)
			min -= min / 2;
	}
	if (free_pages <= min + z->lowmem_reserve[highest_zoneidx])
		return false;
	if (!order)
		return true;
	for (unsigned int o = order; o < NR_PAGE_ORDERS; o++)
		if (z->free_area[o].nr_free)
			return true;
	return false;
}

bool zone_watermark_ok(struct zone *z, unsigned int order, u64 mark, int highest_zoneidx,
		       unsigned int alloc_flags)
{
	return __zone_watermark_ok(z, order, mark, highest_zoneidx, alloc_flags,
				   (s64)z->nr_free_pages);
}

/* --- allocation ------------------------------------------------------- */

static void prep_compound_page(struct page *page, unsigned int order)
{
	set_page_flag(page, PG_head);
	for (u64 i = 1; i < (1UL << order); i++) {
		struct page *t = page + i;
		t->compound_head = (u64)page | 1;
		set_page_flag(t, PG_tail);
	}
	page[1].compound_order = (u8)order;
}

static void prep_new_page(struct page *page, unsigned int order, gfp_t gfp)
{
	page->_refcount = 1;
	page->alloc_order = order + 1;
	kasan_alloc_pages(page, order);
	if (gfp & __GFP_ZERO)
		memset(page_address(page), 0, PAGE_SIZE << order);
	if (order && (gfp & __GFP_COMP))
		prep_compound_page(page, order);
}

static struct page *rmqueue(struct zone *z, unsigned int order)
{
	struct page *p;
	unsigned long flags;

	spin_lock_irqsave(&z->lock, flags);
	p = order == 0 ? rmqueue_pcplist_locked(z) : __rmqueue_smallest_locked(z, order);
	if (p)
		z->stat_alloc[order]++;
	spin_unlock_irqrestore(&z->lock, flags);
	return p;
}

/* Walk the zonelist from the highest allowed zone down (Normal -> DMA32 -> DMA). */
static noinline struct page *get_page_from_freelist(gfp_t gfp, unsigned int order,
						      unsigned int alloc_flags, int highest_zoneidx)
{
	for (int zi = highest_zoneidx; zi >= 0; zi--) {
		struct zone *z = &zones[zi];
		if (!populated_zone(z))
			continue;
		if (!(alloc_flags & ALLOC_NO_WATERMARKS)) {
			u64 mark = z->_watermark[alloc_flags & ALLOC_WMARK_MASK] + z->watermark_boost;
			/* order-0 shortcut (Linux's zone_watermark_fast): clearly above the mark */
			bool fast = !order && (s64)z->nr_free_pages > (s64)mark + z->lowmem_reserve[highest_zoneidx];
			if (!fast && !zone_watermark_ok(z, order, mark, highest_zoneidx, alloc_flags))
				continue;
		}
		struct page *p = rmqueue(z, order);
		if (!p)
			continue;
		prep_new_page(p, order, gfp);
		if ((gfp & __GFP_KSWAPD_RECLAIM) && z->nr_free_pages < low_wmark_pages(z))
			wakeup_kswapd(z);
		return p;
	}
	return NULL;
}

static unsigned int gfp_to_alloc_flags(gfp_t gfp, unsigned int order)
{
	unsigned int alloc_flags = ALLOC_WMARK_MIN | ALLOC_CPUSET;

	alloc_flags |= gfp & (__GFP_HIGH | __GFP_KSWAPD_RECLAIM);
	if (!(gfp & __GFP_DIRECT_RECLAIM)) {
		if (!(gfp & __GFP_NOMEMALLOC)) {
			alloc_flags |= ALLOC_NON_BLOCK;
			if (order > 0)
				alloc_flags |= ALLOC_HIGHATOMIC;
		}
		if (alloc_flags & ALLOC_MIN_RESERVE)
			alloc_flags &= ~ALLOC_CPUSET;
	}
	return alloc_flags;
}

static void wake_all_kswapds(int highest_zoneidx)
{
	for (int zi = highest_zoneidx; zi >= 0; zi--)
		if (populated_zone(&zones[zi]))
			wakeup_kswapd(&zones[zi]);
}

/*
 * Retry while reclaim keeps making progress, and for at most
 * MAX_RECLAIM_RETRIES rounds without progress (Linux's should_reclaim_retry;
 * kmemu has no LRU lists, so "could still reclaim" is not estimated: every
 * round without progress waits once for an interrupt to free memory).
 */
static bool should_reclaim_retry(unsigned int order, u64 progress, int *no_progress_loops)
{
	if (progress && order <= PAGE_ALLOC_COSTLY_ORDER)
		*no_progress_loops = 0;
	else
		(*no_progress_loops)++;
	return *no_progress_loops <= MAX_RECLAIM_RETRIES;
}

/*
 * A __GFP_NOFAIL allocation in atomic context (an interrupt handler, a
 * spinlock, interrupts off) found nothing after reclaim and the OOM path.
 * It cannot sleep, so, as Linux's slow path does there (cond_resched() is a
 * no-op), it keeps retrying the free lists: only an interrupt that frees
 * memory (when interrupts are on) can end it, otherwise it spins until the
 * host's budget stops the call.  Reclaim and the OOM report are not
 * repeated: one warning says what happened (Linux repeats its OOM report,
 * rate limited; at emulation speed that was megabytes of console a second).
 */
static noinline struct page *nofail_spin_atomic(gfp_t gfp, unsigned int order,
						  unsigned int alloc_flags, int hz)
{
	struct page *page;

	WARN_ONCE(1, "__GFP_NOFAIL allocation (order %u) in atomic context cannot make "
		  "progress: spinning until memory is freed", order);
	while (!(page = get_page_from_freelist(gfp, order, alloc_flags | ALLOC_MIN_RESERVE, hz)))
		__asm__ __volatile__("pause" ::: "memory");
	return page;
}

static noinline struct page *__alloc_pages_slowpath(gfp_t gfp, unsigned int order, int hz)
{
	bool can_direct_reclaim = gfp & __GFP_DIRECT_RECLAIM;
	bool costly = order > PAGE_ALLOC_COSTLY_ORDER;
	unsigned int alloc_flags = gfp_to_alloc_flags(gfp, order);
	int no_progress_loops = 0;
	struct page *page;
	u64 progress;

	alloc_stalls++;
retry:
	if (alloc_flags & ALLOC_KSWAPD)
		wake_all_kswapds(hz);
	page = get_page_from_freelist(gfp, order, alloc_flags, hz);
	if (page)
		return page;
	/* __GFP_MEMALLOC: the caller frees memory; ignore the watermarks (Linux) */
	if ((gfp & __GFP_MEMALLOC) && !(gfp & __GFP_NOMEMALLOC)) {
		page = get_page_from_freelist(gfp, order, ALLOC_NO_WATERMARKS, hz);
		if (page)
			return page;
	}
	if (!can_direct_reclaim)
		goto nopage;

	progress = try_to_free_pages(gfp, order);
	page = get_page_from_freelist(gfp, order, alloc_flags, hz);
	if (page)
		return page;
	if (gfp & __GFP_NORETRY)
		goto nopage;
	if (costly && !(gfp & __GFP_RETRY_MAYFAIL) && !(gfp & __GFP_NOFAIL))
		goto nopage;
	if (should_reclaim_retry(order, progress, &no_progress_loops)) {
		if (!progress)
			mm_wait_for_memory(false); /* throttle: let interrupts free memory */
		goto retry;
	}

	/* Reclaim has failed us: the OOM path (no process to kill here). */
	if (!(gfp & __GFP_RETRY_MAYFAIL) && !costly && out_of_memory(gfp, order)) {
		no_progress_loops = 0;
		goto retry;
	}
nopage:
	if (gfp & __GFP_NOFAIL) {
		/* Linux: a non-failing request that cannot block is a caller bug */
		if (WARN_ON_ONCE(!can_direct_reclaim))
			goto fail;
		page = get_page_from_freelist(gfp, order, alloc_flags | ALLOC_MIN_RESERVE, hz);
		if (page)
			return page;
		if (in_atomic() || irqs_disabled())
			return nofail_spin_atomic(gfp, order, alloc_flags, hz);
		mm_wait_for_memory(true);
		goto retry;
	}
fail:
	zones[hz < MAX_NR_ZONES ? hz : ZONE_NORMAL].stat_fail++;
	warn_alloc(gfp, order, "page allocation failure");
	return NULL;
}

__attribute__((alias("__alloc_pages"))) struct page *alloc_pages(gfp_t gfp, unsigned int order);
EXPORT_SYMBOL(alloc_pages);

/* zonelist_first[hz]: the highest populated zone <= hz, where the zonelist starts */
s8 zonelist_first[MAX_NR_ZONES];

void build_zonelists(void)
{
	for (int hz = 0; hz < MAX_NR_ZONES; hz++) {
		zonelist_first[hz] = 0;
		for (int z = hz; z >= 0; z--)
			if (populated_zone(&zones[z])) {
				zonelist_first[hz] = (s8)z;
				break;
			}
	}
}

/*
 * The order-0 fast path: the first zone of the zonelist is clearly above
 * its low watermark and its pcp list has a page.  The pcp list needs only
 * interrupts off (one CPU); zone->lock is for the buddy lists.
 */
static inline struct page *alloc_pcp_fast(gfp_t gfp, int hz)
{
	struct zone *z = &zones[zonelist_first[hz]];
	struct per_cpu_pages *pcp = &z->pcp;

	if ((s64)z->nr_free_pages <= (s64)low_wmark_pages(z) + z->lowmem_reserve[hz])
		return NULL;
	unsigned long flags;
	local_irq_save(flags);
	if (unlikely(list_empty(&pcp->list))) {
		local_irq_restore(flags);
		return NULL;
	}
	struct page *p = list_first_entry(&pcp->list, struct page, lru);
	list_del(&p->lru);
	clear_page_flag(p, PG_pcp);
	pcp->count--;
	z->stat_alloc[0]++;
	local_irq_restore(flags);
	p->_refcount = 1;
	p->alloc_order = 1;
	kasan_alloc_pages(p, 0);
	if (unlikely(gfp & __GFP_ZERO))
		memset(page_address(p), 0, PAGE_SIZE);
	return p;
}

/* KUnit's leak tracking: the block and who asked for it (our caller). */
#define track_page(page, order)                                                     \
	kunit_track_alloc(page_address(page), (u64)__builtin_return_address(0),     \
			  PAGE_SIZE << (order), 0, KUNIT_ALLOC_PAGES, (order))

struct page *__alloc_pages(gfp_t gfp, unsigned int order)
{
	struct page *page;

	if (likely(!order)) {
		might_alloc(gfp, __FILE__, __LINE__);
		if (should_fail_alloc_page(gfp, order)) /* Linux: prepare_alloc_pages */
			return NULL;
		page = alloc_pcp_fast(gfp, gfp_zone(gfp));
		if (likely(page)) {
			track_page(page, order);
			return page;
		}
	} else if (order > MAX_PAGE_ORDER) {
		WARN_ON_ONCE(!(gfp & __GFP_NOWARN));
		return NULL;
	} else {
		might_alloc(gfp, __FILE__, __LINE__);
		if (should_fail_alloc_page(gfp, order))
			return NULL;
	}
	int hz = gfp_zone(gfp);
	page = get_page_from_freelist(gfp, order, ALLOC_WMARK_LOW, hz);
	if (unlikely(!page))
		page = __alloc_pages_slowpath(gfp, order, hz);
	if (page)
		track_page(page, order);
	return page;
}

unsigned long __get_free_pages(gfp_t gfp, unsigned int order)
{
	struct page *p = __alloc_pages(gfp & ~__GFP_HIGHMEM, order);
	return p ? (unsigned long)page_address(p) : 0;
}
EXPORT_SYMBOL(__get_free_pages);

unsigned long get_zeroed_page(gfp_t gfp)
{
	return __get_free_pages(gfp | __GFP_ZERO, 0);
}
EXPORT_SYMBOL(get_zeroed_page);

/*
 * Test hook (mm_test.c): take one block of at least this order from one zone,
 * ignoring watermarks and the zonelist, so tests can empty a zone exactly.
 */
struct page *rmqueue_zone_exact(int zi, unsigned int order)
{
	struct zone *z;
	struct page *p;
	unsigned long flags;

	if (zi < 0 || zi >= MAX_NR_ZONES || order > MAX_PAGE_ORDER)
		return NULL; /* callable by the host: no index outside zones[] */
	z = &zones[zi];
	spin_lock_irqsave(&z->lock, flags);
	p = __rmqueue_smallest_locked(z, order);
	if (p)
		z->stat_alloc[order]++;
	spin_unlock_irqrestore(&z->lock, flags);
	if (p)
		prep_new_page(p, order, 0);
	return p;
}

/* --- freeing ---------------------------------------------------------- */

static bool page_in_mem_map(const struct page *page)
{
	u64 off = (u64)page - (u64)mem_map;
	return (u64)page >= (u64)mem_map && off < max_pfn * sizeof(struct page) &&
	       off % sizeof(struct page) == 0 && pfn_valid(off / sizeof(struct page));
}

#define PAGE_FLAGS_CHECK_AT_FREE ((1UL << PG_buddy) | (1UL << PG_pcp) | (1UL << PG_reserved) | \
				  (1UL << PG_tail) | (1UL << PG_slab))

static bool free_pages_check_bad(struct page *page, unsigned int order);

/* Everything that would corrupt the free lists is caught here (fast path first). */
static inline bool free_pages_check(struct page *page, unsigned int order)
{
	u64 pfn = (u64)(page - mem_map);
	if (likely(pfn < max_pfn && !((u64)page & (sizeof(struct page) - 1)) && pfn_valid(pfn) &&
		   !(page->flags & PAGE_FLAGS_CHECK_AT_FREE) && page->_refcount == 1 &&
		   page->alloc_order == order + 1 && order <= MAX_PAGE_ORDER))
		return true;
	return free_pages_check_bad(page, order);
}

static noinline bool free_pages_check_bad(struct page *page, unsigned int order)
{
	static char why[96];

	if (!page_in_mem_map(page)) {
		static struct kmemu_event ev;
		memset(&ev, 0, sizeof(ev));
		ev.type = KMEMU_EV_BAD_PAGE;
		ev.args[1] = (u64)page;
		snprintf(ev.msg, sizeof(ev.msg), "BUG: Bad page state: %px is not a struct page", page);
		printk("%s\n", ev.msg);
		ev.nr_trace = save_stack_trace((u64)__builtin_frame_address(0), ev.trace, KMEMU_EV_TRACE);
		host_event(&ev);
		return false;
	}
	if (order > MAX_PAGE_ORDER) {
		snprintf(why, sizeof(why), "freed with order %u (above MAX_PAGE_ORDER)", order);
		goto bad;
	}
	if (PageBuddy(page) || PagePcp(page)) {
		snprintf(why, sizeof(why), "page is already free (double free)");
		goto bad;
	}
	if (PageReserved(page)) {
		snprintf(why, sizeof(why), "PAGE_FLAGS_CHECK_AT_FREE flag(s) set");
		goto bad;
	}
	if (PageTail(page)) {
		snprintf(why, sizeof(why), "freeing a tail page of a compound page");
		goto bad;
	}
	if (PageSlab(page)) {
		snprintf(why, sizeof(why), "freeing a page that belongs to the slab allocator");
		goto bad;
	}
	if (page->_refcount != 1 || !page->alloc_order) {
		snprintf(why, sizeof(why), "not the start of an allocation (refcount %d)", page->_refcount);
		goto bad;
	}
	if (page->alloc_order != order + 1) {
		snprintf(why, sizeof(why), "freed with order %u, allocated with order %u", order,
			 page->alloc_order - 1);
		goto bad;
	}
	return true;
bad:
	bad_page(page, why);
	return false;
}

/* Out of line so the order-0 free path stays small. */
static noinline void pcp_drain_batch(struct zone *z)
{
	unsigned long flags;
	spin_lock_irqsave(&z->lock, flags);
	free_pcppages_bulk_locked(z, z->pcp.batch);
	spin_unlock_irqrestore(&z->lock, flags);
}

static noinline void free_the_page(struct page *page, unsigned int order)
{
	struct zone *z = page_zone(page);
	unsigned long flags;

	if (PageHead(page)) {
		clear_page_flag(page, PG_head);
		for (u64 i = 1; i < (1UL << order); i++) {
			clear_page_flag(page + i, PG_tail);
			page[i].compound_head = 0;
		}
	}
	page->_refcount = 0;
	page->alloc_order = 0;
	spin_lock_irqsave(&z->lock, flags);
	z->stat_free[order]++;
	if (order == 0) {
		struct per_cpu_pages *pcp = &z->pcp;
		set_page_flag(page, PG_pcp);
		list_add(&page->lru, &pcp->list);
		if (++pcp->count >= pcp->high)
			free_pcppages_bulk_locked(z, pcp->batch);
	} else {
		__free_one_page_locked(z, page_to_pfn(page), order);
	}
	spin_unlock_irqrestore(&z->lock, flags);
}

void __free_pages(struct page *page, unsigned int order)
{
	if (!free_pages_check(page, order))
		return;
	kunit_track_free(page_address(page), KUNIT_ALLOC_PAGES);
	kasan_free_pages(page, order);
	if (likely(!order)) {
		/* order 0 goes on the pcp list (interrupts off); zone->lock only to drain */
		struct zone *z = page_zone(page);
		struct per_cpu_pages *pcp = &z->pcp;
		page->_refcount = 0;
		page->alloc_order = 0;
		unsigned long flags;
		local_irq_save(flags);
		set_page_flag(page, PG_pcp);
		list_add(&page->lru, &pcp->list);
		z->stat_free[0]++;
		if (unlikely(++pcp->count >= pcp->high))
			pcp_drain_batch(z);
		local_irq_restore(flags);
		return;
	}
	free_the_page(page, order);
}
EXPORT_SYMBOL(__free_pages);

void free_pages(unsigned long addr, unsigned int order)
{
	if (!addr)
		return;
	if (!virt_addr_valid(addr) || (addr & ~PAGE_MASK)) {
		static struct kmemu_event ev;
		memset(&ev, 0, sizeof(ev));
		ev.type = KMEMU_EV_BAD_PAGE;
		ev.args[1] = addr;
		snprintf(ev.msg, sizeof(ev.msg), "BUG: Bad page state: free_pages(0x%lx, %u): %s", addr,
			 order, virt_addr_valid(addr) ? "address is not page aligned"
						      : "address is not in the direct map");
		printk("%s\n", ev.msg);
		ev.nr_trace = save_stack_trace((u64)__builtin_frame_address(0), ev.trace, KMEMU_EV_TRACE);
		host_event(&ev);
		return;
	}
	__free_pages(virt_to_page((void *)addr), order);
}
EXPORT_SYMBOL(free_pages);

/* --- boot-time hand-over (mm_init.c calls this) ------------------------ */

/* Free [pfn, pfn + 2^order) that was reserved at boot: counts it as managed. */
void memblock_free_pages(u64 pfn, unsigned int order)
{
	struct page *page = pfn_to_page(pfn);
	struct zone *z = page_zone(page);
	u64 n = 1UL << order;
	unsigned long flags;

	for (u64 i = 0; i < n; i++) {
		clear_page_flag(page + i, PG_reserved);
		page[i]._refcount = 0;
	}
	z->managed_pages += n;
	totalram_pages += n;
	kasan_free_pages(page, order);
	spin_lock_irqsave(&z->lock, flags);
	__free_one_page_locked(z, pfn, order);
	spin_unlock_irqrestore(&z->lock, flags);
}
