/*
 * slab/slob.c - SLOB, the "simple list of blocks" allocator (Linux's
 * mm/slob.c, removed in 6.4), chosen with slab=slob.
 *
 * Memory comes in pages from the page allocator.  A page SLOB carves up
 * (PG_slab set) holds blocks measured in SLOB_UNITs (2 bytes).  Its free
 * blocks form a chain inside the page: a free block of more than one unit
 * stores its size in units and then the offset (in units from the page
 * start) of the next free block; a one-unit block stores minus that offset.
 * The chain ends at a block whose "next" is the end of the page.  The page's
 * struct page keeps the first free block (freelist) and the free units
 * (private); a page with free space sits on one of three lists by the size
 * of the request that last freed into it or created it:
 *   free_slob_small  (< 256 bytes)   free_slob_medium (< 1024)   free_slob_large
 * Allocation walks the list first fit: a page with enough free units is
 * searched block by block (slob_page_alloc), splitting the first block
 * that fits after alignment; the next search starts at the page that
 * served (Linux's list rotation).  A page whose last block is freed goes
 * straight back to the page allocator.
 *
 * kmalloc prefixes each block with the requested size (one minalign word,
 * 8 bytes), so kfree and ksize need no cache: the block is the size plus
 * the prefix.  Requests of PAGE_SIZE - minalign bytes or more, and caches
 * whose objects are a page or more, take whole pages (compound above
 * order 0) with no prefix; kfree tells them apart by PG_slab.
 * kmem_cache_alloc calls the constructor on every allocation (SLOB keeps no
 * constructed free objects).  There are no per-cache slabs, no kmalloc-N
 * caches, no /proc/slabinfo and no debug options (as in Linux).  One lock
 * (slob_lock, interrupts off) covers all three lists.
 * The optional hooks (failslab, KUnit's tracking, kmemleak: slab_hooks.h,
 * shared with SLUB and SLAB) and the kmem trace events sit behind
 * slab_hooks_key: one nop per allocation or free while all are off.
 * might_sleep's check (on at boot) is tested inline in the allocation paths
 * behind its own key and takes the hooks only to report (slab_hooks.h).
 * Linux's SLOB never consulted failslab; kmemu's does, so fail-nth numbers
 * the same allocations under every allocator.
 */
#include <linux/bug.h>
#include <linux/export.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <kmemu/bootinfo.h>
#include <kmemu/fault_inject.h>
#include <kmemu/kunit_track.h>
#include <kmemu/log.h>
#include <kmemu/memlayout.h>
#include <kmemu/page_alloc.h>
#include <kmemu/slab_common.h>
#include <kmemu/slub.h>
#include "slab_alloc.h"
#include "slab_hooks.h"

typedef s16 slobidx_t;
typedef struct { slobidx_t units; } slob_t;

#define SLOB_UNIT sizeof(slob_t)
#define SLOB_UNITS(size) DIV_ROUND_UP(size, SLOB_UNIT)
#define SLOB_BREAK1 256
#define SLOB_BREAK2 1024
#define SLOB_MINALIGN 8 /* max(ARCH_KMALLOC_MINALIGN, ARCH_SLAB_MINALIGN) */
#define SLOB_PAGE_UNITS ((slobidx_t)SLOB_UNITS(PAGE_SIZE))
#define SLOB_ON_LIST (1UL << 16) /* page->private: the page is on a free list */

/* SLOB's cache descriptor: the common fields and a constructor. */
struct slob_kmem_cache {
	KMEM_CACHE_COMMON;
	void (*ctor)(void *);
	struct list_head list; /* slob_caches */
	u64 allocated;         /* objects handed out and not freed (for the host's views) */
};

_Static_assert(offsetof(struct slob_kmem_cache, flags) == offsetof(struct kmem_cache, flags),
	       "common cache fields must sit where SLUB's do");
_Static_assert(offsetof(struct slob_kmem_cache, name) == offsetof(struct kmem_cache, name),
	       "common cache fields");
_Static_assert(offsetof(struct slob_kmem_cache, object_size) ==
	       offsetof(struct kmem_cache, object_size), "common cache fields");

/* The three lists of partially free pages (the host reads them: emu/kernel/slob.py). */
struct list_head free_slob_small = LIST_HEAD_INIT(free_slob_small);
struct list_head free_slob_medium = LIST_HEAD_INIT(free_slob_medium);
struct list_head free_slob_large = LIST_HEAD_INIT(free_slob_large);
struct list_head slob_caches = LIST_HEAD_INIT(slob_caches);
u64 slob_pages;       /* pages SLOB carved up (PG_slab) */
u64 slob_big_pages;   /* pages of whole-page allocations (kmalloc and caches) */
static spinlock_t slob_lock = __SPIN_LOCK_UNLOCKED(slob_lock);
static struct slob_kmem_cache slob_kmem_cache_boot;

static inline struct slob_kmem_cache *to_slob(struct kmem_cache *s)
{
	return (struct slob_kmem_cache *)s;
}

/* --- the in-page free chain ------------------------------------------------- */

static inline slob_t *slob_page_base(const slob_t *s)
{
	return (slob_t *)((u64)s & ~(PAGE_SIZE - 1));
}

/* Store a free block's size (units) and its successor in the block itself. */
static void set_slob(slob_t *s, slobidx_t size, slob_t *next)
{
	slobidx_t offset = (slobidx_t)(next - slob_page_base(s));
	if (size > 1) {
		s[0].units = size;
		s[1].units = offset;
	} else {
		s[0].units = (slobidx_t)-offset;
	}
}

static slobidx_t slob_units(const slob_t *s)
{
	return s->units > 0 ? s->units : 1;
}

static slob_t *slob_next(slob_t *s)
{
	slob_t *base = slob_page_base(s);
	slobidx_t next = s[0].units < 0 ? (slobidx_t)-s[0].units : s[1].units;
	return base + next;
}

/* The last free block of its page: its successor is the page's end. */
static bool slob_last(slob_t *s)
{
	return !((u64)slob_next(s) & (PAGE_SIZE - 1));
}

/* --- pages ------------------------------------------------------------------ */

static inline u32 page_units(const struct page *sp) { return (u32)(sp->private & 0xffff); }
static inline bool page_on_list(const struct page *sp) { return sp->private & SLOB_ON_LIST; }

static inline void set_page_units(struct page *sp, u32 units)
{
	sp->private = (sp->private & SLOB_ON_LIST) | units;
}

static void set_slob_page_free(struct page *sp, struct list_head *list)
{
	list_add(&sp->slab_list, list);
	sp->private |= SLOB_ON_LIST;
}

static void clear_slob_page_free(struct page *sp)
{
	list_del(&sp->slab_list);
	sp->private &= ~SLOB_ON_LIST;
}

static struct list_head *slob_list_for(size_t size)
{
	if (size < SLOB_BREAK1)
		return &free_slob_small;
	if (size < SLOB_BREAK2)
		return &free_slob_medium;
	return &free_slob_large;
}

/* Whole pages for a big request (not SLOB's: no PG_slab). */
static void *slob_new_pages(gfp_t gfp, unsigned int order)
{
	if (order)
		gfp |= __GFP_COMP;
	struct page *page = alloc_pages(gfp, order);
	if (!page)
		return NULL;
	slob_big_pages += 1UL << order;
	return page_address(page);
}

static void slob_free_pages(void *b, unsigned int order)
{
	slob_big_pages -= 1UL << order;
	__free_pages(virt_to_page(b), order);
}

/*
 * First fit inside one page: the first free block that holds `units` once
 * the address after align_offset bytes is aligned.  Splits off any
 * alignment gap and the tail.  NULL if no block fits.  slob_lock held.
 */
static slob_t *slob_page_alloc(struct page *sp, size_t size, int align, int align_offset,
			       bool *removed)
{
	slob_t *prev = NULL, *cur, *aligned = NULL;
	slobidx_t units = (slobidx_t)SLOB_UNITS(size);

	for (cur = sp->freelist;; prev = cur, cur = slob_next(cur)) {
		slobidx_t avail = slob_units(cur), delta = 0;
		if (align) {
			aligned = (slob_t *)(ALIGN((u64)cur + align_offset, (u64)align) -
					     (u64)align_offset);
			delta = (slobidx_t)(aligned - cur);
		}
		if (avail >= units + delta) {
			slob_t *next;
			if (delta) { /* the gap before the aligned start stays a free block */
				next = slob_next(cur);
				set_slob(aligned, avail - delta, next);
				set_slob(cur, delta, aligned);
				prev = cur;
				cur = aligned;
				avail = slob_units(cur);
			}
			next = slob_next(cur);
			if (avail == units) { /* exact fit: unlink */
				if (prev)
					set_slob(prev, slob_units(prev), next);
				else
					sp->freelist = next;
			} else { /* split: the tail stays free */
				if (prev)
					set_slob(prev, slob_units(prev), cur + units);
				else
					sp->freelist = cur + units;
				set_slob(cur + units, avail - units, next);
			}
			set_page_units(sp, page_units(sp) - (u32)units);
			if (!page_units(sp)) {
				clear_slob_page_free(sp);
				*removed = true;
			}
			return cur;
		}
		if (slob_last(cur))
			return NULL;
	}
}

/* A fresh page made one free block; on `list`.  Interrupts off; may turn them on. */
static struct page *slob_new_page(gfp_t gfp, struct list_head *list, unsigned long *flags)
{
	spin_unlock_irqrestore(&slob_lock, *flags);
	struct page *sp = fault_nested(alloc_pages(gfp & ~(__GFP_ZERO | __GFP_COMP), 0));
	spin_lock_irqsave(&slob_lock, *flags);
	if (!sp)
		return NULL;
	slob_t *b = page_address(sp);
	set_page_flag(sp, PG_slab);
	sp->slab_cache = NULL;
	sp->private = 0;
	set_page_units(sp, (u32)SLOB_PAGE_UNITS);
	sp->freelist = b;
	INIT_LIST_HEAD(&sp->slab_list);
	set_slob(b, SLOB_PAGE_UNITS, b + SLOB_PAGE_UNITS);
	set_slob_page_free(sp, list);
	slob_pages++;
	return sp;
}

/* size bytes (< PAGE_SIZE), aligned so that address + align_offset is aligned. */
static void *slob_alloc(size_t size, gfp_t gfp, int align, int align_offset)
{
	struct list_head *list = slob_list_for(size);
	struct page *sp;
	slob_t *b = NULL;
	unsigned long flags;

	spin_lock_irqsave(&slob_lock, flags);
	list_for_each_entry(sp, list, slab_list) {
		bool removed = false;
		if (page_units(sp) < SLOB_UNITS(size))
			continue;
		b = slob_page_alloc(sp, size, align, align_offset, &removed);
		if (!b)
			continue;
		/* start the next search here (Linux: better spread, shorter walks) */
		if (!removed && list->next != &sp->slab_list)
			list_rotate_to_front(&sp->slab_list, list);
		break;
	}
	if (!b) {
		sp = slob_new_page(gfp, list, &flags);
		if (sp) {
			bool removed = false;
			b = slob_page_alloc(sp, size, align, align_offset, &removed);
		}
	}
	spin_unlock_irqrestore(&slob_lock, flags);
	if (b && (gfp & __GFP_ZERO))
		memset(b, 0, size);
	return b;
}

/* Put a block back into its page's chain, merging with free neighbours. */
static void slob_free(void *block, size_t size)
{
	slob_t *b = block, *prev, *next;
	struct page *sp = virt_to_page(block);
	slobidx_t units = (slobidx_t)SLOB_UNITS(size);
	unsigned long flags;

	spin_lock_irqsave(&slob_lock, flags);
	if (page_units(sp) + (u32)units == (u32)SLOB_PAGE_UNITS) {
		/* the page is empty now: straight back to the page allocator */
		if (page_on_list(sp))
			clear_slob_page_free(sp);
		slob_pages--;
		clear_page_flag(sp, PG_slab);
		sp->freelist = NULL;
		sp->private = 0;
		spin_unlock_irqrestore(&slob_lock, flags);
		__free_pages(sp, 0);
		return;
	}
	if (!page_on_list(sp)) { /* a full page becomes partly free */
		set_page_units(sp, (u32)units);
		sp->freelist = b;
		set_slob(b, units, (slob_t *)(((u64)(b + SLOB_PAGE_UNITS)) & ~(PAGE_SIZE - 1)));
		set_slob_page_free(sp, slob_list_for(size));
		goto out;
	}
	set_page_units(sp, page_units(sp) + (u32)units);
	if (b < (slob_t *)sp->freelist) {
		if (b + units == sp->freelist) {
			units += slob_units(sp->freelist);
			sp->freelist = slob_next(sp->freelist);
		}
		set_slob(b, units, sp->freelist);
		sp->freelist = b;
	} else {
		prev = sp->freelist;
		next = slob_next(prev);
		while (b > next) {
			prev = next;
			next = slob_next(prev);
		}
		if (!slob_last(prev) && b + units == next) {
			units += slob_units(next);
			set_slob(b, units, slob_next(next));
		} else {
			set_slob(b, units, next);
		}
		if (prev + slob_units(prev) == b) {
			units = slob_units(b) + slob_units(prev);
			set_slob(prev, units, slob_next(b));
		} else {
			set_slob(prev, slob_units(prev), b);
		}
	}
out:
	spin_unlock_irqrestore(&slob_lock, flags);
}

/* --- kmalloc ------------------------------------------------------------------ */

/*
 * kmalloc's whole pages (size >= PAGE_SIZE - SLOB_MINALIGN), or NULL.  The page
 * allocator records them itself (KUnit, kmemleak), as for SLUB's large kmalloc.
 */
static void *slob_kmalloc_pages(size_t size, gfp_t gfp)
{
	if (size > KMALLOC_MAX_SIZE) {
		WARN(!(gfp & __GFP_NOWARN), "kmalloc: %zu bytes is more than KMALLOC_MAX_SIZE", size);
		return NULL;
	}
	void *b = slob_new_pages(gfp, (unsigned int)get_order(size));
	if (b)
		virt_to_page(b)->page_type = PAGE_TYPE_LARGE_KMALLOC; /* for the memory census */
	return b;
}

/* A block with the size prefix (0 < size < PAGE_SIZE - SLOB_MINALIGN), or NULL. */
static __always_inline void *slob_kmalloc_block(size_t size, gfp_t gfp)
{
	int align = SLOB_MINALIGN;
	if (!(size & (size - 1)))
		align = max(align, (int)size); /* power of two: naturally aligned */
	u64 *m = slob_alloc(size + SLOB_MINALIGN, gfp, align, SLOB_MINALIGN);
	if (!m)
		return NULL;
	*m = size;
	return (u8 *)m + SLOB_MINALIGN;
}

/*
 * slab_hooks_key is on: Linux's __do_kmalloc_node with its hooks.  A block:
 * might_sleep's check and failslab (slab_hooks.h; Linux's SLOB had no
 * failslab: kmemu's has, so fail-nth numbers the same allocations under every
 * allocator), the block, the kmalloc event (bytes_alloc: the block with its
 * prefix), KUnit's and kmemleak's records.  Whole pages: the page allocator
 * checks, fails and records them (one allocation, as SLUB's large kmalloc);
 * the event says the whole pages.  A failed block is not traced, failed pages
 * are, as in Linux.
 */
static noinline void *slob_do_kmalloc_hooks(size_t size, gfp_t gfp, u64 caller)
{
	void *ret;
	if (size < PAGE_SIZE - SLOB_MINALIGN) {
		if (!slab_pre_alloc_hook_bytes(size, gfp))
			return NULL;
		ret = slob_kmalloc_block(size, gfp);
		if (!ret)
			return NULL;
		trace_kmalloc(caller, ret, size, size + SLOB_MINALIGN, gfp, NUMA_NO_NODE);
		slab_post_alloc_track(ret, 0, size, caller, size, 0);
		return ret;
	}
	ret = slob_kmalloc_pages(size, gfp); /* the page allocator's hooks, as SLUB's large kmalloc */
	trace_kmalloc(caller, ret, size, PAGE_SIZE << get_order(size), gfp, NUMA_NO_NODE);
	return ret;
}

/* kmalloc: a size-prefixed block below a page, whole pages from there up. */
static void *slob_do_kmalloc(size_t size, gfp_t gfp, u64 caller)
{
	if (unlikely(!size))
		return ZERO_SIZE_PTR;
	if (static_branch_unlikely(&slab_hooks_key) || slab_might_sleep_report(gfp))
		return slob_do_kmalloc_hooks(size, gfp, caller);
	if (size < PAGE_SIZE - SLOB_MINALIGN)
		return slob_kmalloc_block(size, gfp);
	return slob_kmalloc_pages(size, gfp);
}

void *slob_kmalloc(size_t size, gfp_t gfp)
{
	return slob_do_kmalloc(size, gfp, (u64)__builtin_return_address(0));
}

/* The head page of a direct-map address, or NULL (WARN) for anything else. */
static struct page *slob_head_page(const void *p, const char *who)
{
	if (WARN(!virt_addr_valid((u64)p), "%s: %px is not a kmalloc'ed address", who, p))
		return NULL;
	return compound_head(virt_to_page(p));
}

/*
 * kfree's work once the hooks (if any) ran: a block back to its page, or a
 * kmalloc's whole pages.  A page that is neither SLOB's nor a kmalloc's
 * (page_type), or an address inside such pages, WARNs and nothing is freed
 * (as SLUB's kfree_large).
 */
static void __slob_kfree(const void *block, struct page *head)
{
	if (PageSlab(head)) {
		u64 *m = (u64 *)((u8 *)block - SLOB_MINALIGN);
		slob_free(m, *m + SLOB_MINALIGN);
		return;
	}
	if (WARN(head->page_type != PAGE_TYPE_LARGE_KMALLOC || block != page_address(head),
		 "kfree: %px is not a kmalloc'ed address", block))
		return;
	head->page_type = 0;
	slob_free_pages((void *)block, PageHead(head) ? head[1].compound_order : 0);
}

/* slab_hooks_key is on: Linux's SLOB kfree raises its event first (NULL too), then the records. */
static noinline void slob_kfree_hooks(const void *block, u64 caller)
{
	trace_kfree(caller, block);
	if (ZERO_OR_NULL_PTR(block))
		return;
	struct page *head = slob_head_page(block, "kfree");
	if (!head)
		return;
	if (PageSlab(head))
		slab_free_track((void *)block, 0);
	__slob_kfree(block, head);
}

void slob_kfree(const void *block)
{
	if (static_branch_unlikely(&slab_hooks_key)) {
		slob_kfree_hooks(block, (u64)__builtin_return_address(0));
		return;
	}
	if (ZERO_OR_NULL_PTR(block))
		return;
	struct page *head = slob_head_page(block, "kfree");
	if (head)
		__slob_kfree(block, head);
}

/* The usable size: the prefix's request rounded to units, or the whole pages. */
size_t slob_ksize(const void *block)
{
	if (ZERO_OR_NULL_PTR(block) || !virt_addr_valid((u64)block))
		return 0;
	struct page *head = compound_head(virt_to_page(block));
	if (!PageSlab(head))
		return PAGE_SIZE << (PageHead(head) ? head[1].compound_order : 0);
	u64 *m = (u64 *)((u8 *)block - SLOB_MINALIGN);
	return SLOB_UNITS(*m) * SLOB_UNIT;
}

/* slab_common's krealloc: in place while ksize() allows, else copy. */
void *slob_krealloc(const void *p, size_t new_size, gfp_t gfp)
{
	if (ZERO_OR_NULL_PTR(p))
		return slob_do_kmalloc(new_size, gfp, (u64)__builtin_return_address(0));
	if (!new_size) {
		slob_kfree(p);
		return ZERO_SIZE_PTR;
	}
	size_t ks = slob_ksize(p);
	if (new_size <= ks) {
		if (PageSlab(compound_head(virt_to_page(p)))) {
			u64 *m = (u64 *)((u8 *)p - SLOB_MINALIGN);
			if ((gfp & __GFP_ZERO) && new_size > *m)
				memset((u8 *)p + *m, 0, new_size - *m);
		}
		return (void *)p;
	}
	void *ret = slob_do_kmalloc(new_size, gfp, (u64)__builtin_return_address(0));
	if (ret) {
		memcpy(ret, p, ks);
		slob_kfree(p);
	}
	return ret;
}

/* SLOB has no size classes: a request rounds up to the kmalloc alignment. */
size_t slob_kmalloc_size_roundup(size_t size)
{
	if (!size)
		return 0;
	if (size == SIZE_MAX)
		return SIZE_MAX;
	return ALIGN(size, (size_t)SLOB_MINALIGN);
}

/* --- caches ------------------------------------------------------------------- */

static void slob_cache_open(struct slob_kmem_cache *c, const char *name, u32 size, u32 align,
			    slab_flags_t flags, void (*ctor)(void *))
{
	memset(c, 0, sizeof(*c));
	strscpy(c->name, name, sizeof(c->name));
	c->object_size = size;
	c->size = (u32)(SLOB_UNITS(size) * SLOB_UNIT);
	c->inuse = c->size;
	c->align = calculate_alignment(flags, align, size);
	c->flags = flags;
	c->ctor = ctor;
	unsigned long fl;
	local_irq_save(fl);
	list_add(&c->list, &slob_caches);
	local_irq_restore(fl);
}

#define SLOB_REFUSED_FLAGS (SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER)

struct kmem_cache *slob_kmem_cache_create(const char *name, unsigned int size,
					  unsigned int align, slab_flags_t flags,
					  void (*ctor)(void *))
{
	struct slob_kmem_cache *c = NULL;
	if (flags & SLOB_REFUSED_FLAGS) {
		printk("kmem_cache_create(%s): SLOB has no debug options (flags %#x refused)\n",
		       name ? name : "(null)", flags & SLOB_REFUSED_FLAGS);
		goto fail;
	}
	if (!name || !size || size > KMALLOC_MAX_SIZE || (align & (align - 1)) ||
	    align > PAGE_SIZE)
		goto fail;
	c = slob_kmem_cache_alloc((struct kmem_cache *)&slob_kmem_cache_boot, GFP_KERNEL);
	if (!c)
		goto fail;
	slob_cache_open(c, name, size, align, flags, ctor);
	return (struct kmem_cache *)c;
fail:
	if (flags & SLAB_PANIC)
		panic("kmem_cache_create: Failed to create slab '%s'", name ? name : "(null)");
	printk("kmem_cache_create(%s) failed\n", name ? name : "(null)");
	return NULL;
}

/* Linux's SLOB keeps no per-cache state to check: the descriptor just goes. */
void slob_kmem_cache_destroy(struct kmem_cache *s)
{
	if (!s)
		return;
	struct slob_kmem_cache *c = to_slob(s);
	unsigned long fl;
	local_irq_save(fl);
	list_del(&c->list);
	local_irq_restore(fl);
	slob_kmem_cache_free((struct kmem_cache *)&slob_kmem_cache_boot, c);
}

/* Nothing is cached per cache: emptied pages went back at once. */
int slob_kmem_cache_shrink(struct kmem_cache *s)
{
	(void)s;
	return 0;
}

u64 slob_kmem_cache_shrink_all(void)
{
	u64 before = nr_free_pages();
	drain_all_pages();
	u64 after = nr_free_pages();
	return after > before ? after - before : 0;
}

/* The object: a block, or whole pages for a page or more; the constructor, every time. */
static __always_inline void *__slob_cache_alloc(struct slob_kmem_cache *c, gfp_t gfp)
{
	void *b;
	if (c->size < PAGE_SIZE)
		b = slob_alloc(c->size, gfp, (int)c->align, 0);
	else /* SLOB's own pages, as a new slab's: the object is what gets counted and recorded */
		b = fault_nested(slob_new_pages(gfp, (unsigned int)get_order(c->size)));
	if (!b)
		return NULL;
	if (c->ctor)
		c->ctor(b); /* every time: SLOB keeps no constructed objects */
	__atomic_add_fetch(&c->allocated, 1, __ATOMIC_RELAXED);
	return b;
}

/*
 * slab_hooks_key is on: Linux's slob_alloc_node with its hooks.  might_sleep's
 * check and failslab (kmemu's, see slob_do_kmalloc_hooks), the object, the
 * kmem_cache_alloc event (failures too, as Linux), KUnit's and kmemleak's
 * records (of the object, also when it is whole pages: those are SLOB's own).
 */
static noinline void *slob_cache_alloc_hooks(struct slob_kmem_cache *c, gfp_t gfp, u64 caller)
{
	void *b = NULL;
	if (slab_pre_alloc_hook((struct kmem_cache *)c, gfp))
		b = __slob_cache_alloc(c, gfp);
	trace_kmem_cache_alloc(caller, b, (struct kmem_cache *)c, gfp, NUMA_NO_NODE);
	if (b)
		slab_post_alloc_track(b, c, c->object_size, caller, c->size, c->flags);
	return b;
}

/* One nop while every optional hook is off, then might_sleep's inline check (a jmp while off). */
static __always_inline void *slob_cache_alloc(struct slob_kmem_cache *c, gfp_t gfp, u64 caller)
{
	if (static_branch_unlikely(&slab_hooks_key) || slab_might_sleep_report(gfp))
		return slob_cache_alloc_hooks(c, gfp, caller);
	return __slob_cache_alloc(c, gfp);
}

void *slob_kmem_cache_alloc(struct kmem_cache *s, gfp_t gfp)
{
	return slob_cache_alloc(to_slob(s), gfp, (u64)__builtin_return_address(0));
}

void *slob_kmem_cache_zalloc(struct kmem_cache *s, gfp_t gfp)
{
	return slob_cache_alloc(to_slob(s), gfp | __GFP_ZERO, (u64)__builtin_return_address(0));
}

/* The object back: to its page's chain, or the whole pages. */
static __always_inline void __slob_cache_free(struct slob_kmem_cache *c, void *b)
{
	__atomic_sub_fetch(&c->allocated, 1, __ATOMIC_RELAXED);
	if (c->size < PAGE_SIZE)
		slob_free(b, c->size);
	else
		slob_free_pages(b, (unsigned int)get_order(c->size));
}

/* slab_hooks_key is on: the records go, then the event (Linux's order), then the free. */
static noinline void slob_cache_free_hooks(struct slob_kmem_cache *c, void *b, u64 caller)
{
	slab_free_track(b, c->flags);
	trace_kmem_cache_free(caller, b, (struct kmem_cache *)c);
	__slob_cache_free(c, b);
}

void slob_kmem_cache_free(struct kmem_cache *s, void *b)
{
	struct slob_kmem_cache *c = to_slob(s);
	if (!b)
		return;
	if (!slob_head_page(b, "kmem_cache_free"))
		return;
	if (static_branch_unlikely(&slab_hooks_key))
		slob_cache_free_hooks(c, b, (u64)__builtin_return_address(0));
	else
		__slob_cache_free(c, b);
}

unsigned int slob_kmem_cache_size(struct kmem_cache *s)
{
	return s ? to_slob(s)->object_size : 0;
}

int slob_kmem_cache_alloc_bulk(struct kmem_cache *s, gfp_t gfp, size_t nr, void **p)
{
	for (size_t i = 0; i < nr; i++) {
		p[i] = slob_cache_alloc(to_slob(s), gfp, (u64)__builtin_return_address(0));
		if (!p[i]) {
			slob_kmem_cache_free_bulk(s, i, p);
			return 0;
		}
	}
	return (int)nr;
}

void slob_kmem_cache_free_bulk(struct kmem_cache *s, size_t nr, void **p)
{
	for (size_t i = 0; i < nr; i++)
		slob_kmem_cache_free(s, p[i]);
}

/* SLOB has nothing to validate (no debug options); says so once per call. */
u64 slob_validate_slab_cache(struct kmem_cache *s)
{
	printk("validate_slab_cache(%s): SLOB keeps no debug data to check\n", s->name);
	return 0;
}

/* SLOB has no debug checks: never a report. */
u64 slob_kmem_cache_errors(struct kmem_cache *s)
{
	(void)s;
	return 0;
}

bool slob_kmem_cache_listed(const char *name)
{
	struct slob_kmem_cache *c;
	list_for_each_entry(c, &slob_caches, list)
		if (!strcmp(c->name, name))
			return true;
	return false;
}

/* The descriptor cache first; no kmalloc caches (kmalloc is size-prefixed blocks). */
void slob_kmem_cache_init(void)
{
	extern struct boot_info boot_info;
	if (cmdline_find(boot_info.cmdline, "slab_debug") || cmdline_find(boot_info.cmdline, "slub_debug"))
		printk("slab_debug: SLOB has no debug options; ignored\n");
	slob_cache_open(&slob_kmem_cache_boot, "kmem_cache", sizeof(struct slob_kmem_cache), 0,
			SLAB_PANIC, NULL);
	printk("SLOB: simple list of blocks, units of %zu bytes, breaks at %d and %d bytes\n",
	       SLOB_UNIT, SLOB_BREAK1, SLOB_BREAK2);
}

SLAB_DEFINE_KMALLOC_WRAPPERS(slob_, slob_do_kmalloc)
