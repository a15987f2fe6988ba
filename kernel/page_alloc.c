/*
 * page_alloc.c - the buddy allocator: free lists per order, split and merge,
 * a per-cpu order-0 list in front, watermark checks, and the allocation
 * slow path (reserves, reclaim, sleeping, OOM) as Linux's mm/page_alloc.c
 * defines their behaviour.
 *
 * Data: zones[] (mmzone.h).  A free block of order k starts at a pfn aligned
 * to 2^k; its first struct page has PG_buddy set and private = k and sits on
 * zones[z].free_area[k].free_list[mt], mt normally its pageblock's migrate
 * type (mmzone.h: grouping by mobility); its other pages are untouched.
 * Pages on a pcp list have PG_pcp and private = the migrate type they will
 * be freed to the buddy lists as.  The buddy
 * of the block at pfn is the block at pfn ^ (1 << k); two buddies merge only
 * when both are free, of the same order and in the same zone.
 *
 * Invariants (checked by emu.kernel views and tests):
 *   nr_free_pages == sum over orders of nr_free * 2^order;
 *   pcp.count == total length of pcp.lists[], every page on them has PG_pcp;
 *   a free block on another type's list than its pageblock's lies in a
 *   pageblock marked PB_MIXED (a fallback or a stale pcp type put it there);
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
#include <kmemu/trace.h>
#include <kmemu/traps.h>
#include <kmemu/kunit_track.h>
#include <kmemu/kmemleak.h>

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
	return __gfp_zone(gfp);
}

u64 nr_free_pages(void)
{
	u64 n = 0;
	for (int i = 0; i < MAX_NR_ZONES; i++)
		n += zones[i].nr_free_pages;
	return n;
}

/* --- pageblocks and their migrate types ----------------------------- */

/* zonelist_first[hz]: the highest populated zone <= hz, where the zonelist starts */
s8 zonelist_first[MAX_NR_ZONES];
static struct zone *zonelist_zone[MAX_NR_ZONES]; /* &zones[zonelist_first[hz]] */

u8 *pageblock_flags;		      /* mm_init.c sizes it: one byte per pageblock */
bool page_group_by_mobility_disabled; /* build_zonelists: too little memory to group */

static inline u64 pfn_of(const struct page *p) { return (u64)(p - mem_map); }
_Static_assert(sizeof(struct page) == 1 << 6, "__free_pages divides by 64 with a shift");

static inline int get_pageblock_migratetype(const struct page *p)
{
	return get_pfnblock_migratetype(pfn_of(p));
}

static inline void mark_pageblock_mixed(u64 pfn)
{
	pageblock_flags[pfn >> pageblock_order] |= PB_MIXED;
}

/* Linux's set_pageblock_migratetype: with grouping off every block is Unmovable. */
void set_pageblock_migratetype(struct page *page, int mt)
{
	u8 *f = &pageblock_flags[pfn_of(page) >> pageblock_order];

	if (unlikely(page_group_by_mobility_disabled && mt < MIGRATE_PCPTYPES))
		mt = MIGRATE_UNMOVABLE;
	*f = (u8)((*f & ~PB_MIGRATETYPE_MASK) | mt);
}

/* Linux's gfp_migratetype: __GFP_MOVABLE -> Movable, __GFP_RECLAIMABLE -> Reclaimable. */
static inline int gfp_migratetype(gfp_t gfp)
{
	if (unlikely(page_group_by_mobility_disabled))
		return MIGRATE_UNMOVABLE;
	return (int)((gfp & (__GFP_MOVABLE | __GFP_RECLAIMABLE)) >> 3);
}

static inline bool migratetype_is_mergeable(int mt) { return mt < MIGRATE_PCPTYPES; }

static inline bool zone_spans_pfn(const struct zone *z, u64 pfn)
{
	return pfn >= z->zone_start_pfn && pfn < z->zone_start_pfn + z->spanned_pages;
}

/* --- free lists ----------------------------------------------------- */

static inline void set_buddy_order(struct page *p, unsigned int order)
{
	p->private = order;
	set_page_flag(p, PG_buddy);
}

static void add_to_free_list(struct page *p, struct zone *z, unsigned int order, int mt)
{
	set_buddy_order(p, order);
	list_add(&p->lru, &z->free_area[order].free_list[mt]);
	z->free_area[order].nr_free++;
}

/* A free block changes lists (its pageblock changed type, or a fallback took it). */
static void move_to_free_list(struct page *p, struct zone *z, unsigned int order, int mt)
{
	list_move(&p->lru, &z->free_area[order].free_list[mt]);
}

static void del_page_from_free_list(struct page *p, struct zone *z, unsigned int order)
{
	list_del(&p->lru);
	clear_page_flag(p, PG_buddy);
	p->private = 0;
	z->free_area[order].nr_free--;
}

static struct page *get_page_from_free_area(struct free_area *area, int mt)
{
	if (list_empty(&area->free_list[mt]))
		return NULL;
	return list_first_entry(&area->free_list[mt], struct page, lru);
}

static bool page_is_buddy(struct zone *z, u64 buddy_pfn, unsigned int order)
{
	if (buddy_pfn >= max_pfn || !pfn_valid(buddy_pfn))
		return false;
	struct page *b = pfn_to_page(buddy_pfn);
	return PageBuddy(b) && b->private == order && page_zone(b) == z;
}

/*
 * Put a block back on the free list of migrate type mt, merging with free
 * buddies as far as they go.  From pageblock_order up, a buddy in a
 * pageblock of another type merges only if both types are mergeable
 * (Unmovable, Movable, Reclaimable), as in Linux: HighAtomic and Isolate
 * blocks keep to themselves.
 */
static void __free_one_page(struct zone *z, u64 pfn, unsigned int order, int mt)
{
	z->nr_free_pages += 1UL << order;
	while (order < MAX_PAGE_ORDER) {
		u64 buddy_pfn = pfn ^ (1UL << order);
		if (!page_is_buddy(z, buddy_pfn, order))
			break;
		if (unlikely(order >= pageblock_order)) {
			int buddy_mt = get_pfnblock_migratetype(buddy_pfn);
			if (buddy_mt != mt &&
			    (!migratetype_is_mergeable(mt) || !migratetype_is_mergeable(buddy_mt)))
				break;
		}
		del_page_from_free_list(pfn_to_page(buddy_pfn), z, order);
		pfn &= buddy_pfn;
		order++;
	}
	/* kmemu's record of where free pages sit on another type's list */
	for (u64 b = pfn; b < pfn + (1UL << order); b += pageblock_nr_pages) {
		if (get_pfnblock_migratetype(b) != mt)
			mark_pageblock_mixed(b);
		else if (order >= pageblock_order)
			pageblock_flags[b >> pageblock_order] &= (u8)~PB_MIXED;
	}
	add_to_free_list(pfn_to_page(pfn), z, order, mt);
}

/* Split a block of order high down to order low, the upper halves to list mt. */
static void expand(struct zone *z, struct page *page, unsigned int low, unsigned int high, int mt)
{
	while (high > low) {
		high--;
		add_to_free_list(page + (1UL << high), z, high, mt);
	}
}

/* The smallest free block of at least this order on mt's lists, split to size. */
static struct page *__rmqueue_smallest(struct zone *z, unsigned int order, int mt)
{
	for (unsigned int cur = order; cur < NR_PAGE_ORDERS; cur++) {
		struct page *p = get_page_from_free_area(&z->free_area[cur], mt);
		if (!p)
			continue;
		del_page_from_free_list(p, z, cur);
		expand(z, p, order, cur, mt);
		z->nr_free_pages -= 1UL << order;
		p->private = (u64)mt; /* Linux's set_pcppage_migratetype */
		/* percpu_refill as Linux 6.1 computes it (pcp_allowed_order), though kmemu's
		 * pcp lists hold order 0 only */
		trace_mm_page_alloc_zone_locked(p, order, mt,
						order <= PAGE_ALLOC_COSTLY_ORDER && mt < MIGRATE_PCPTYPES);
		return p;
	}
	return NULL;
}

/* --- fallback between migrate types (Linux's __rmqueue_fallback) ---------- */

/* Which lists a type may borrow from, in order (mm/page_alloc.c's fallbacks[]). */
static const int fallbacks[MIGRATE_PCPTYPES][MIGRATE_PCPTYPES] = {
	[MIGRATE_UNMOVABLE] = { MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE, MIGRATE_TYPES },
	[MIGRATE_MOVABLE] = { MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, MIGRATE_TYPES },
	[MIGRATE_RECLAIMABLE] = { MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_TYPES },
};

/*
 * May a request of type start_mt that found a free block of this order on
 * another type's list take the whole pageblock?  Always for a block of a
 * pageblock or more, for blocks of at least half a pageblock's order, and
 * for Unmovable and Reclaimable requests (they pollute a block anyway).
 */
bool can_steal_fallback(unsigned int order, int start_mt)
{
	if (order >= pageblock_order)
		return true;
	return order >= pageblock_order / 2 || start_mt == MIGRATE_RECLAIMABLE ||
	       start_mt == MIGRATE_UNMOVABLE || page_group_by_mobility_disabled;
}

/* Does a block with free_pages free and alike_pages compatible pages go to the thief? */
bool pageblock_claimable(int free_pages, int alike_pages)
{
	return free_pages + alike_pages >= (int)(1 << (pageblock_order - 1)) ||
	       page_group_by_mobility_disabled;
}

/* The first type in start_mt's fallback order with a free block of this order, or -1. */
int find_suitable_fallback(struct free_area *area, unsigned int order, int start_mt,
			   bool only_stealable, bool *can_steal)
{
	if (!area->nr_free)
		return -1;
	*can_steal = false;
	for (int i = 0;; i++) {
		int fmt = fallbacks[start_mt][i];
		if (fmt == MIGRATE_TYPES)
			return -1;
		if (list_empty(&area->free_list[fmt]))
			continue;
		if (can_steal_fallback(order, start_mt))
			*can_steal = true;
		if (!only_stealable || *can_steal)
			return fmt;
	}
}

/* Move every free block in [start, end] to mt's lists; pages moved. */
static int move_freepages(struct zone *z, u64 start, u64 end, int mt, int *num_movable)
{
	int moved = 0;

	for (u64 pfn = start; pfn <= end;) {
		struct page *p = pfn_to_page(pfn);
		if (!pfn_valid(pfn) || !PageBuddy(p)) {
			/* Linux counts LRU and movable-ops pages here; kmemu has none */
			pfn++;
			continue;
		}
		unsigned int order = (unsigned int)p->private;
		move_to_free_list(p, z, order, mt);
		pfn += 1UL << order;
		moved += 1 << order;
	}
	if (num_movable)
		*num_movable = 0;
	return moved;
}

/* move_freepages on page's whole pageblock; 0 if the block crosses the zone's end. */
int move_freepages_block(struct zone *z, struct page *page, int mt, int *num_movable)
{
	u64 pfn = pfn_of(page);
	u64 start = pfn & ~(pageblock_nr_pages - 1), end = start + pageblock_nr_pages - 1;

	if (num_movable)
		*num_movable = 0;
	if (!zone_spans_pfn(z, start))
		start = pfn;
	if (!zone_spans_pfn(z, end))
		return 0;
	return move_freepages(z, start, end, mt, num_movable);
}

static void change_pageblock_range(struct page *page, unsigned int order, int mt)
{
	for (u64 n = 1UL << (order - pageblock_order); n; n--, page += pageblock_nr_pages) {
		set_pageblock_migratetype(page, mt);
		pageblock_flags[pfn_of(page) >> pageblock_order] &= (u8)~PB_MIXED;
	}
}

/*
 * The request of start_type found page (free, order current_order) on
 * another type's list.  Take the block's free pages for start_type and, if
 * at least half the block is free or compatible, the pageblock itself;
 * otherwise only this page moves to start_type's list (Linux 6.1).
 */
static void steal_suitable_fallback(struct zone *z, struct page *page, int start_type,
				    bool whole_block)
{
	unsigned int current_order = (unsigned int)page->private;
	int old_block_type = get_pageblock_migratetype(page);
	int free_pages, movable_pages, alike_pages;

	if (old_block_type == MIGRATE_HIGHATOMIC)
		goto single_page;
	if (current_order >= pageblock_order) {
		change_pageblock_range(page, current_order, start_type);
		goto single_page;
	}
	/* Linux boosts the watermark here; kmemu's watermark_boost_factor is 0 */
	if (!whole_block)
		goto single_page;
	free_pages = move_freepages_block(z, page, start_type, &movable_pages);
	if (start_type == MIGRATE_MOVABLE)
		alike_pages = movable_pages;
	else if (old_block_type == MIGRATE_MOVABLE)
		alike_pages = (int)pageblock_nr_pages - (free_pages + movable_pages);
	else
		alike_pages = 0;
	if (!free_pages)
		goto single_page;
	if (pageblock_claimable(free_pages, alike_pages)) {
		set_pageblock_migratetype(page, start_type);
		pageblock_flags[pfn_of(page) >> pageblock_order] &= (u8)~PB_MIXED;
	} else {
		mark_pageblock_mixed(pfn_of(page));
	}
	return;
single_page:
	if (get_pageblock_migratetype(page) != start_type)
		mark_pageblock_mixed(pfn_of(page));
	move_to_free_list(page, z, current_order, start_type);
}

/*
 * Nothing on start_type's own lists: borrow from the fallback types, the
 * largest block first (it approximates the block with most free pages),
 * except that a Movable request that may not take the whole block takes
 * the smallest one.  With ALLOC_NOFRAGMENT only whole pageblocks are taken.
 */
static bool __rmqueue_fallback(struct zone *z, unsigned int order, int start_type,
			       unsigned int alloc_flags)
{
	int min_order = (alloc_flags & ALLOC_NOFRAGMENT) ? (int)pageblock_order : (int)order;
	struct free_area *area;
	int cur, fmt = -1;
	bool can_steal;

	for (cur = MAX_PAGE_ORDER; cur >= min_order; cur--) {
		area = &z->free_area[cur];
		fmt = find_suitable_fallback(area, (unsigned int)cur, start_type, false, &can_steal);
		if (fmt == -1)
			continue;
		if (!can_steal && start_type == MIGRATE_MOVABLE && cur > (int)order)
			goto find_smallest;
		goto do_steal;
	}
	return false;

find_smallest:
	for (cur = (int)order; cur < NR_PAGE_ORDERS; cur++) {
		area = &z->free_area[cur];
		fmt = find_suitable_fallback(area, (unsigned int)cur, start_type, false, &can_steal);
		if (fmt != -1)
			break;
	}
	BUG_ON(cur == NR_PAGE_ORDERS);
do_steal:
	z->stat_fallback++;
	struct page *page = get_page_from_free_area(area, fmt);
	steal_suitable_fallback(z, page, start_type, can_steal);
	trace_mm_page_alloc_extfrag(page, (int)order, cur, start_type, fmt);
	return true;
}

static struct page *__rmqueue(struct zone *z, unsigned int order, int mt, unsigned int alloc_flags)
{
	struct page *p;

	while (!(p = __rmqueue_smallest(z, order, mt)))
		if (!__rmqueue_fallback(z, order, mt, alloc_flags))
			return NULL;
	return p;
}

/* --- the highatomic reserve ------------------------------------------------- */

/*
 * A high-order atomic allocation succeeded: set its pageblock aside for
 * more of them (MIGRATE_HIGHATOMIC), up to 1% of the zone plus one block.
 */
static void reserve_highatomic_pageblock(struct page *page, struct zone *z)
{
	u64 max_managed = z->managed_pages / 100 + pageblock_nr_pages;
	unsigned long flags;

	if (z->nr_reserved_highatomic >= max_managed)
		return;
	spin_lock_irqsave(&z->lock, flags);
	if (z->nr_reserved_highatomic < max_managed &&
	    migratetype_is_mergeable(get_pageblock_migratetype(page))) {
		z->nr_reserved_highatomic += pageblock_nr_pages;
		set_pageblock_migratetype(page, MIGRATE_HIGHATOMIC);
		move_freepages_block(z, page, MIGRATE_HIGHATOMIC, NULL);
	}
	spin_unlock_irqrestore(&z->lock, flags);
}

/*
 * Reclaim is failing: give a reserved block back to the type being asked
 * for, keeping one block per zone unless force (the last step before OOM).
 */
static bool unreserve_highatomic_pageblock(int highest_zoneidx, int mt, bool force)
{
	for (int zi = zonelist_first[highest_zoneidx]; zi >= 0; zi--) {
		struct zone *z = &zones[zi];
		unsigned long flags;

		if (!populated_zone(z) || (!force && z->nr_reserved_highatomic <= pageblock_nr_pages))
			continue;
		spin_lock_irqsave(&z->lock, flags);
		for (unsigned int o = 0; o < NR_PAGE_ORDERS; o++) {
			struct page *p = get_page_from_free_area(&z->free_area[o], MIGRATE_HIGHATOMIC);
			if (!p)
				continue;
			if (get_pageblock_migratetype(p) == MIGRATE_HIGHATOMIC)
				z->nr_reserved_highatomic -= min_t(u64, pageblock_nr_pages,
								   z->nr_reserved_highatomic);
			set_pageblock_migratetype(p, mt);
			if (move_freepages_block(z, p, mt, NULL)) {
				spin_unlock_irqrestore(&z->lock, flags);
				return true;
			}
		}
		spin_unlock_irqrestore(&z->lock, flags);
	}
	return false;
}

/* --- the per-cpu lists ------------------------------------------------- */

static int rmqueue_bulk(struct zone *z, int count, int mt, unsigned int alloc_flags)
{
	struct list_head *list = &z->pcp.lists[mt];
	int n = 0;

	for (; n < count; n++) {
		struct page *p = __rmqueue(z, 0, mt, alloc_flags);
		if (!p)
			break;
		set_page_flag(p, PG_pcp);
		list_add_tail(&p->lru, list);
		z->pcp.count++;
	}
	if (n)
		z->stat_pcp_refill++;
	return n;
}

/*
 * Give count pages back to the buddy lists, the coldest first, emptying one
 * list after another round-robin from the one after pindex (Linux).  Each
 * page goes back as the migrate type it was given when it came to the pcp.
 */
static void free_pcppages_bulk(struct zone *z, int count, int pindex)
{
	struct per_cpu_pages *pcp = &z->pcp;

	count = min(count, pcp->count);
	while (count > 0) {
		struct list_head *list;
		do {
			if (++pindex >= MIGRATE_PCPTYPES)
				pindex = 0;
			list = &pcp->lists[pindex];
		} while (list_empty(list));
		do {
			struct page *p = list_last_entry(list, struct page, lru);
			int mt = (int)p->private;
			list_del(&p->lru);
			clear_page_flag(p, PG_pcp);
			p->private = 0;
			pcp->count--;
			count--;
			if (unlikely(get_pageblock_migratetype(p) == MIGRATE_ISOLATE))
				mt = MIGRATE_ISOLATE;
			__free_one_page(z, pfn_of(p), 0, mt);
			trace_mm_page_pcpu_drain(p, 0, mt);
		} while (count > 0 && !list_empty(list));
	}
	z->stat_pcp_drain++;
}

static struct page *rmqueue_pcplist(struct zone *z, int mt, unsigned int alloc_flags)
{
	struct per_cpu_pages *pcp = &z->pcp;
	struct list_head *list = &pcp->lists[mt];

	if (list_empty(list) && !rmqueue_bulk(z, pcp->batch, mt, alloc_flags))
		return NULL;
	struct page *p = list_first_entry(list, struct page, lru);
	list_del(&p->lru);
	clear_page_flag(p, PG_pcp);
	p->private = 0;
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
			free_pcppages_bulk(z, z->pcp.count, MIGRATE_PCPTYPES - 1);
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
	/* the highatomic reserve is not for callers without reserve rights */
	if (likely(!(alloc_flags & (ALLOC_HIGHATOMIC | ALLOC_OOM))))
		free_pages -= (s64)z->nr_reserved_highatomic;
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
	/* an order-N request needs a free block of order >= N it may use */
	for (unsigned int o = order; o < NR_PAGE_ORDERS; o++) {
		struct free_area *area = &z->free_area[o];
		if (!area->nr_free)
			continue;
		for (int mt = 0; mt < MIGRATE_PCPTYPES; mt++)
			if (!list_empty(&area->free_list[mt]))
				return true;
		if ((alloc_flags & (ALLOC_HIGHATOMIC | ALLOC_OOM)) &&
		    !list_empty(&area->free_list[MIGRATE_HIGHATOMIC]))
			return true;
	}
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

/*
 * One block from zone z: order 0 through the pcp list of its migrate type,
 * higher orders from the buddy lists, the highatomic reserve first for
 * high-order atomic requests (Linux's rmqueue / rmqueue_buddy).
 */
static struct page *rmqueue(struct zone *z, unsigned int order, unsigned int alloc_flags, int mt)
{
	struct page *p = NULL;
	unsigned long flags;

	spin_lock_irqsave(&z->lock, flags);
	if (order == 0) {
		p = rmqueue_pcplist(z, mt, alloc_flags);
	} else {
		if (alloc_flags & ALLOC_HIGHATOMIC)
			p = __rmqueue_smallest(z, order, MIGRATE_HIGHATOMIC);
		if (!p)
			p = __rmqueue(z, order, mt, alloc_flags);
		if (p)
			p->private = 0;
	}
	if (p)
		z->stat_alloc[order]++;
	spin_unlock_irqrestore(&z->lock, flags);
	return p;
}

/*
 * Linux's alloc_flags_nofragment: when Normal is the preferred zone (and so
 * DMA32 exists below it), the first attempt may not split pageblocks of
 * another migrate type; __GFP_KSWAPD_RECLAIM is ALLOC_KSWAPD's bit.
 */
static inline unsigned int alloc_flags_nofragment(int hz, gfp_t gfp)
{
	unsigned int alloc_flags = gfp & __GFP_KSWAPD_RECLAIM;

	if (zonelist_first[hz] == ZONE_NORMAL)
		alloc_flags |= ALLOC_NOFRAGMENT;
	return alloc_flags;
}

/*
 * Walk the zonelist from the highest allowed zone down (Normal -> DMA32 ->
 * DMA).  With ALLOC_NOFRAGMENT (the first attempt when Normal is the
 * preferred zone) no zone may split another type's pageblock; if every
 * zone would have to, the walk is repeated without it (Linux, one node).
 */
static noinline struct page *get_page_from_freelist(gfp_t gfp, unsigned int order,
						      unsigned int alloc_flags, int highest_zoneidx)
{
	int mt = gfp_migratetype(gfp);
retry:
	for (int zi = highest_zoneidx; zi >= 0; zi--) {
		struct zone *z = &zones[zi];
		if (!populated_zone(z))
			continue;
		if (!(alloc_flags & ALLOC_NO_WATERMARKS)) {
			u64 mark = z->_watermark[alloc_flags & ALLOC_WMARK_MASK] + z->watermark_boost;
			/* order-0 shortcut (Linux's zone_watermark_fast): clearly above the mark */
			bool fast = !order && (s64)(z->nr_free_pages - z->nr_reserved_highatomic) >
						      (s64)mark + z->lowmem_reserve[highest_zoneidx];
			if (!fast && !zone_watermark_ok(z, order, mark, highest_zoneidx, alloc_flags))
				continue;
		}
		struct page *p = rmqueue(z, order, alloc_flags, mt);
		if (!p)
			continue;
		prep_new_page(p, order, gfp);
		if (unlikely(order && (alloc_flags & ALLOC_HIGHATOMIC)))
			reserve_highatomic_pageblock(p, z);
		if ((gfp & __GFP_KSWAPD_RECLAIM) && z->nr_free_pages < low_wmark_pages(z))
			wakeup_kswapd(z);
		return p;
	}
	if (alloc_flags & ALLOC_NOFRAGMENT) {
		alloc_flags &= ~ALLOC_NOFRAGMENT;
		goto retry;
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
static bool should_reclaim_retry(gfp_t gfp, unsigned int order, u64 progress,
				 int *no_progress_loops, int hz)
{
	if (progress && order <= PAGE_ALLOC_COSTLY_ORDER)
		*no_progress_loops = 0;
	else
		(*no_progress_loops)++;
	/* before OOM, the highatomic reserve goes back (all of it) */
	if (*no_progress_loops > MAX_RECLAIM_RETRIES)
		return unreserve_highatomic_pageblock(hz, gfp_migratetype(gfp), true);
	return true;
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
	bool drained = false;
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
	if (!page && !drained) {
		/* Linux's __alloc_pages_direct_reclaim: free the reserve and pcp lists once */
		unreserve_highatomic_pageblock(hz, gfp_migratetype(gfp), false);
		drain_all_pages();
		drained = true;
		page = get_page_from_freelist(gfp, order, alloc_flags, hz);
	}
	if (page)
		return page;
	if (gfp & __GFP_NORETRY)
		goto nopage;
	if (costly && !(gfp & __GFP_RETRY_MAYFAIL) && !(gfp & __GFP_NOFAIL))
		goto nopage;
	if (should_reclaim_retry(gfp, order, progress, &no_progress_loops, hz)) {
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

/*
 * build_zonelists: where each zonelist starts, and whether grouping by
 * mobility is worth it (Linux: not with fewer pages above the high
 * watermarks than one pageblock per migrate type).
 */
u64 vm_total_pages;
static void build_pcp_routes(void);

void build_zonelists(void)
{
	vm_total_pages = 0;
	for (int zi = 0; zi <= ZONE_NORMAL; zi++) /* nr_free_zone_pages(GFP_HIGHUSER_MOVABLE) */
		if (zones[zi].managed_pages > high_wmark_pages(&zones[zi]))
			vm_total_pages += zones[zi].managed_pages - high_wmark_pages(&zones[zi]);
	page_group_by_mobility_disabled = vm_total_pages < pageblock_nr_pages * MIGRATE_TYPES;
	for (int hz = 0; hz < MAX_NR_ZONES; hz++) {
		zonelist_first[hz] = 0;
		for (int z = hz; z >= 0; z--)
			if (populated_zone(&zones[z])) {
				zonelist_first[hz] = (s8)z;
				break;
			}
		zonelist_zone[hz] = &zones[zonelist_first[hz]];
	}
	build_pcp_routes();
}

/*
 * Where an order-0 request of each (zone modifiers, migrate type) GFP
 * combination goes first: the zonelist's first zone, its pcp list for the
 * type, and the floor its free pages must stay above: the low watermark,
 * boost and lowmem_reserve that apply (Linux computes the same from
 * gfp_zone, the zonelist and gfp_migratetype on every call).  Indexed by
 * gfp & GFP_ROUTE_MASK; rebuilt by build_zonelists, floors recomputed by
 * pcp_routes_update_marks() whenever a watermark or lowmem_reserve changes.
 */
#define GFP_ROUTE_MASK (__GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE | __GFP_RECLAIMABLE)
struct pcp_route {
	struct zone *zone;
	struct list_head *list;
	s64 mark;  /* _watermark[WMARK_LOW] + watermark_boost + lowmem_reserve[hz] */
	s64 hz;    /* the highest zone the request may use */
};
static struct pcp_route pcp_routes[GFP_ROUTE_MASK + 1];

/* The watermarks or lowmem_reserve changed (mm_init.c): the routes' floors follow. */
void pcp_routes_update_marks(void)
{
	for (gfp_t g = 0; g <= GFP_ROUTE_MASK; g++) {
		struct pcp_route *r = &pcp_routes[g];
		if (r->zone)
			r->mark = (s64)(r->zone->_watermark[WMARK_LOW] + r->zone->watermark_boost) +
				  r->zone->lowmem_reserve[r->hz];
	}
}

static void build_pcp_routes(void)
{
	for (gfp_t g = 0; g <= GFP_ROUTE_MASK; g++) {
		int hz = __gfp_zone(g), mt = gfp_migratetype(g);
		struct zone *z = zonelist_zone[hz];
		pcp_routes[g].zone = z;
		pcp_routes[g].list = &z->pcp.lists[mt];
		pcp_routes[g].hz = hz;
	}
	pcp_routes_update_marks();
}

/*
 * The order-0 fast path: the first zone of the zonelist is clearly above
 * its low watermark (the highatomic reserve not counted; Linux's
 * zone_watermark_fast) and the pcp list of the request's migrate type has a
 * page.  The pcp lists need only interrupts off (one CPU, as 6.1's
 * pcp_spin_lock_irqsave); zone->lock is for the buddy lists.  The page is
 * unlinked from the head without poisoning its links (they are stale words of
 * an allocated page, as after Linux's __list_del_entry) and made allocated
 * before interrupts come back, so nothing is live across the restore.
 */
static __always_inline struct page *alloc_pcp_fast(gfp_t gfp)
{
	const struct pcp_route *r = &pcp_routes[gfp & GFP_ROUTE_MASK];
	struct zone *z = r->zone;
	struct list_head *list = r->list, *first;
	unsigned long flags;
	struct page *p;

	if ((s64)(z->nr_free_pages - z->nr_reserved_highatomic) <= r->mark)
		return NULL;
	local_irq_save(flags);
	first = list->next;
	if (unlikely(first == list)) {
		local_irq_restore(flags);
		return NULL;
	}
	list->next = first->next;
	first->next->prev = list;
	z->pcp.count--;
	z->stat_alloc[0]++;
	p = list_entry(first, struct page, lru);
	p->flags &= ~(1UL << PG_pcp);
	p->private = 0;
	p->_refcount = 1;
	p->alloc_order = 1;
	local_irq_restore(flags);
	kasan_alloc_pages(p, 0);
	return p;
}

/*
 * CONFIG_DEBUG_ATOMIC_SLEEP's might_sleep in both allocators, and the page
 * allocator's bad-page checks at free (CONFIG_DEBUG_VM's): on from boot
 * (alloc_debug_set(1, 1) in kmain) unless the host turns them off.  The
 * records they read (alloc_order, the page flags) are kept either way, so
 * they may be turned on at any time.  Each holds a count on the page
 * allocator's hooks key while on; might_sleep's check also turns on its own
 * key, debug_atomic_sleep_key, which the slab allocators test inline instead
 * of taking their hooks (<kmemu/alloc_hooks.h>).
 */
bool debug_atomic_sleep;
bool page_alloc_debug;
DEFINE_STATIC_KEY_FALSE(page_hooks_key); /* <kmemu/alloc_hooks.h> */
DEFINE_STATIC_KEY_FALSE(debug_atomic_sleep_key);

/* Set *flag to on; a change takes or gives back its count on page_hooks_key. */
static void alloc_debug_flag(bool *flag, bool on)
{
	if (*flag == on)
		return;
	*flag = on;
	if (on)
		static_branch_inc(&page_hooks_key);
	else
		static_branch_dec(&page_hooks_key);
}

/* The host's switch (and boot's): might_sleep's checks, the bad-page checks. */
void alloc_debug_set(u64 atomic_sleep, u64 page_checks)
{
	alloc_debug_flag(&debug_atomic_sleep, atomic_sleep);
	if (atomic_sleep)
		static_branch_enable(&debug_atomic_sleep_key);
	else
		static_branch_disable(&debug_atomic_sleep_key);
	alloc_debug_flag(&page_alloc_debug, page_checks);
}

/*
 * Everything but the plain order-0 pcp hit: the hooks (might_sleep's check,
 * fault injection, KUnit's tracking, each behind its own flag; a new feature's
 * go here too), zeroing, higher orders, an empty pcp list, the zonelist walk
 * and the slow path.  site is __alloc_pages' caller, for the tracking record.
 */
static __always_inline struct page *alloc_pages_body(gfp_t gfp, unsigned int order, u64 site)
{
	struct page *page = NULL;
	int hz = gfp_zone(gfp);

	if (unlikely(debug_atomic_sleep))
		might_alloc(gfp, __FILE__, __LINE__);
	if (unlikely(order > MAX_PAGE_ORDER)) {
		WARN_ON_ONCE(!(gfp & __GFP_NOWARN));
		return NULL;
	}
	if (should_fail_alloc_page(gfp, order)) /* Linux: prepare_alloc_pages */
		return NULL;
	if (!order) {
		page = alloc_pcp_fast(gfp);
		if (page && (gfp & __GFP_ZERO))
			memset(page_address(page), 0, PAGE_SIZE);
	}
	if (!page)
		page = get_page_from_freelist(gfp, order,
					      ALLOC_WMARK_LOW | alloc_flags_nofragment(hz, gfp), hz);
	if (unlikely(!page))
		page = __alloc_pages_slowpath(gfp, order, hz);
	if (page) {
		kunit_track_alloc(page_address(page), site, PAGE_SIZE << order, 0,
				  KUNIT_ALLOC_PAGES, order);
		KMEMLEAK_HOOK(__kmemleak_alloc_pages(page, order));
	}
	return page;
}

/* mm_page_alloc is on: every request is traced (it holds page_hooks_key), a failed one too. */
static noinline struct page *alloc_pages_traced(gfp_t gfp, unsigned int order, u64 site)
{
	struct page *page = alloc_pages_body(gfp, order, site);
	__trace_mm_page_alloc(page, order, gfp, gfp_migratetype(gfp));
	return page;
}

/* The event's key is tested first, so the untraced body keeps its registers (one nop). */
static noinline struct page *__alloc_pages_general(gfp_t gfp, unsigned int order, u64 site)
{
	if (static_branch_unlikely(&__tracepoint_mm_page_alloc))
		return alloc_pages_traced(gfp, order, site);
	return alloc_pages_body(gfp, order, site);
}

/*
 * alloc_pages: 2^order pages.  A plain order-0 request is served from the
 * pcp list when it can be (alloc_pcp_fast, no stack frame) and no hook is on
 * (page_hooks_key, one nop); everything else goes through
 * __alloc_pages_general.
 */
struct page *__alloc_pages(gfp_t gfp, unsigned int order)
{
	if (likely(!(order | (gfp & __GFP_ZERO))) && !static_branch_unlikely(&page_hooks_key)) {
		struct page *page = alloc_pcp_fast(gfp);
		if (likely(page))
			return page;
	}
	return __alloc_pages_general(gfp, order, (u64)__builtin_return_address(0));
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
 * whatever its migrate type, ignoring watermarks and the zonelist, so tests
 * can empty a zone exactly.
 */
struct page *rmqueue_zone_exact(int zi, unsigned int order)
{
	struct zone *z;
	struct page *p = NULL;
	unsigned long flags;

	if (zi < 0 || zi >= MAX_NR_ZONES || order > MAX_PAGE_ORDER)
		return NULL; /* callable by the host: no index outside zones[] */
	z = &zones[zi];
	spin_lock_irqsave(&z->lock, flags);
	for (int mt = 0; !p && mt < MIGRATE_TYPES; mt++)
		p = __rmqueue_smallest(z, order, mt);
	if (p) {
		p->private = 0;
		z->stat_alloc[order]++;
	}
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

/* Out of line so the order-0 free path stays small: drain a batch, lists after pindex. */
static noinline void pcp_drain_batch(struct zone *z, int pindex)
{
	unsigned long flags;
	spin_lock_irqsave(&z->lock, flags);
	free_pcppages_bulk(z, z->pcp.batch, pindex);
	spin_unlock_irqrestore(&z->lock, flags);
}

/* The order-0 free filled the pcp lists: drain a batch, then interrupts back as they were. */
static noinline void pcp_drain_batch_irqrestore(struct zone *z, u64 pindex, unsigned long flags)
{
	pcp_drain_batch(z, (int)pindex);
	local_irq_restore(flags);
}

static void free_one_page(struct zone *z, u64 pfn, unsigned int order, int mt)
{
	unsigned long flags;
	spin_lock_irqsave(&z->lock, flags);
	__free_one_page(z, pfn, order, mt);
	spin_unlock_irqrestore(&z->lock, flags);
}

/*
 * Orders above 0, and order-0 pages of Isolate blocks: straight to the
 * buddy lists of the pageblock's migrate type.
 */
static noinline void free_the_page(struct page *page, unsigned int order)
{
	struct zone *z = page_zone(page);

	if (PageHead(page)) {
		clear_page_flag(page, PG_head);
		for (u64 i = 1; i < (1UL << order); i++) {
			clear_page_flag(page + i, PG_tail);
			page[i].compound_head = 0;
		}
	}
	page->_refcount = 0;
	page->page_type = 0; /* a record its owner left (a free_pages of a kmalloc) */
	page->alloc_order = 0;
	z->stat_free[order]++;
	free_one_page(z, pfn_of(page), order, get_pageblock_migratetype(page));
}

/*
 * __free_pages: order 0 goes on the pcp list of its pageblock's migrate
 * type (HighAtomic pages on the Movable list, remembering their type;
 * Isolate pages straight to the buddy lists), with interrupts off;
 * zone->lock only to drain a batch when the lists reach pcp->high.
 */
/* Order 0 of a pageblock that is not Unmovable, Movable or Reclaimable. */
static noinline void free_unref_page_other(struct page *page)
{
	int mt = get_pageblock_migratetype(page); /* not passed: the fast path keeps one copy */
	if (mt == MIGRATE_ISOLATE) {
		free_the_page(page, 0);
		return;
	}
	/* HighAtomic pages wait on the Movable list, remembering their type */
	struct zone *z = page_zone(page);
	unsigned long flags;
	page->_refcount = 0;
	page->page_type = 0;
	page->alloc_order = 0;
	page->private = (u64)mt;
	page->flags |= 1UL << PG_pcp;
	local_irq_save(flags);
	list_add(&page->lru, &z->pcp.lists[MIGRATE_MOVABLE]);
	z->stat_free[0]++;
	if (++z->pcp.count >= z->pcp.high)
		pcp_drain_batch(z, MIGRATE_MOVABLE);
	local_irq_restore(flags);
}

/*
 * __free_pages: order 0 goes on the pcp list of its pageblock's migrate
 * type (HighAtomic pages on the Movable list, Isolate pages straight to the
 * buddy lists), with interrupts off; zone->lock only to drain a batch when
 * the lists reach pcp->high.  Higher orders go to the buddy lists.
 */
static __always_inline void free_pages_nohooks(struct page *page, unsigned int order)
{
	kasan_free_pages(page, order);
	if (likely(!order)) {
		u64 flags_word = page->flags;
		/* the pageblock's byte: (page - mem_map) / 2^pageblock_order pages */
		u64 mt = (u64)pageblock_flags[((u64)page - (u64)mem_map) >> (pageblock_order + 6)] &
			 PB_MIGRATETYPE_MASK;
		unsigned long flags;

		OPTIMIZER_HIDE_VAR(mt); /* one register for it (GCC made a byte copy to compare) */
		if (unlikely(mt >= MIGRATE_PCPTYPES)) {
			free_unref_page_other(page);
			return;
		}
		struct zone *z = &zones[flags_word >> ZONES_PGSHIFT];
		struct list_head *list = (struct list_head *)((u8 *)z->pcp.lists +
							      mt * sizeof(struct list_head));
		page->private = mt; /* Linux's set_pcppage_migratetype */
		page->_refcount = 0;
		page->page_type = 0; /* one 8-byte store with _refcount */
		page->alloc_order = 0;
		page->flags = flags_word | (1UL << PG_pcp);
		local_irq_save(flags);
		__list_add(&page->lru, list, list->next);
		z->stat_free[0]++;
		if (unlikely(++z->pcp.count >= z->pcp.high)) {
			pcp_drain_batch_irqrestore(z, mt, flags);
			return;
		}
		local_irq_restore(flags);
		return;
	}
	free_the_page(page, order);
}

/*
 * page_hooks_key is on: the bad-page checks, KUnit's record (a new feature's
 * free hook goes here too, behind its own flag), then the free.
 */
static noinline void __free_pages_hooks(struct page *page, unsigned int order)
{
	if (static_branch_unlikely(&__tracepoint_mm_page_free))
		__trace_mm_page_free(page, order); /* first, as Linux's free_pages_prepare */
	if (page_alloc_debug && !free_pages_check(page, order))
		return;
	kunit_track_free(page_address(page), KUNIT_ALLOC_PAGES);
	KMEMLEAK_HOOK(__kmemleak_free_pages(page));
	free_pages_nohooks(page, order);
}

void __free_pages(struct page *page, unsigned int order)
{
	if (static_branch_unlikely(&page_hooks_key)) {
		__free_pages_hooks(page, order);
		return;
	}
	free_pages_nohooks(page, order);
}
EXPORT_SYMBOL(__free_pages);

/*
 * free_unref_page_list: give back the order-0 pages on list (linked by lru),
 * as Linux's batched free does: every page is checked first (its
 * mm_page_free event, the bad-page checks, KUnit's record), then each goes to
 * the pcp lists with an mm_page_free_batched event.  A page that fails the
 * checks is reported and left alone.  Linux's callers (release_pages, page
 * reclaim) have no counterpart in kmemu: modules and the host call it.
 */
void free_unref_page_list(struct list_head *list)
{
	struct page *page, *next;

	list_for_each_entry_safe(page, next, list, lru) {
		trace_mm_page_free(page, 0);
		if (page_alloc_debug && !free_pages_check(page, 0)) {
			list_del(&page->lru);
			continue;
		}
		kunit_track_free(page_address(page), KUNIT_ALLOC_PAGES);
	}
	list_for_each_entry_safe(page, next, list, lru) {
		list_del(&page->lru);
		trace_mm_page_free_batched(page);
		free_pages_nohooks(page, 0);
	}
}
EXPORT_SYMBOL(free_unref_page_list);

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

/* --- boot-time struct pages and hand-over (mm_init.c calls these) ------ */

/*
 * Linux's __init_single_page for the n struct pages from page: every field
 * zero but flags.  Eight word stores per page, written out as Linux's
 * mm_zero_struct_page does (a struct assignment becomes a rep stos, one
 * emulated step per word plus its set-up; a memset and a second pass for
 * the flags cost three times the instructions at boot).
 */
void init_struct_pages(struct page *page, u64 n, u64 flags)
{
	typedef u64 __attribute__((may_alias)) word; /* any object may be written as words */
	_Static_assert(sizeof(struct page) == 8 * sizeof(word), "init_struct_pages writes 8 words");
#pragma GCC unroll 4
	for (word *w = (word *)page, *end = (word *)(page + n); w < end; w += 8) {
		w[0] = flags;
		w[1] = 0;
		w[2] = 0;
		w[3] = 0;
		w[4] = 0;
		w[5] = 0;
		w[6] = 0;
		w[7] = 0;
	}
}

/*
 * Hand [pfn, pfn + 2^order), free RAM of zone zi whose struct pages
 * memblock_free_all has written free (refcount 0, no PG_reserved), to the
 * buddy allocator, counting it as managed.  As Linux's
 * deferred_init_maxorder, the pages are written free once and freed as
 * they are, instead of an init pass that marks every page reserved and a
 * free pass (__free_pages_core) that clears it again.
 */
void memblock_free_pages(u64 pfn, unsigned int order, int zi)
{
	struct page *page = pfn_to_page(pfn);
	struct zone *z = &zones[zi];
	u64 n = 1UL << order;
	unsigned long flags;

	z->managed_pages += n;
	totalram_pages += n;
	kasan_free_pages(page, order);
	spin_lock_irqsave(&z->lock, flags);
	__free_one_page(z, pfn, order, get_pfnblock_migratetype(pfn));
	spin_unlock_irqrestore(&z->lock, flags);
}
