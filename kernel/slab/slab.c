/*
 * slab/slab.c - SLAB, Bonwick's object-cache allocator as Linux's mm/slab.c
 * had it (removed in 6.8), chosen with slab=slab.  One CPU, one node.
 *
 * Per cache:
 *   cpu_cache   the CPU's array cache ("magazine"): up to `limit` object
 *               pointers, used LIFO.  Allocation pops it; free pushes it.
 *               When empty, cache_alloc_refill() moves up to `batchcount`
 *               objects in (from the shared array, else from slabs, else a
 *               new slab); when full, cache_flusharray() moves `batchcount`
 *               out (to the shared array while it has room, else back to
 *               their slabs).  `touched` says the array was used since the
 *               last reap.
 *   node        the node's lists: slabs_full, slabs_partial, slabs_free,
 *               their counts, free_objects (free objects in slabs, not in
 *               arrays), free_limit, colour_next and the shared array
 *               (limit = sharedfactor * batchcount).
 * A slab is 2^gfporder pages (compound).  Its struct page: PG_slab,
 * slab_cache, freelist (the index array), slab_list (on one node list),
 * private = active (objects in use, bits 0..15) | s_mem offset (bits 16..).
 * Objects start at s_mem = page address + colour (0, colour_off, 2 *
 * colour_off, ... cycling per node: cache colouring).  The index array
 * (freelist_idx_t = u8: at most 256 objects per slab) lists object
 * numbers; entries [active, num) are the free ones, taken from `active`
 * upwards.  It lives
 *   in the last free object (OBJFREELIST: no constructor, no poisoning, the
 *     array fits in an object; a full slab has none),
 *   off the slab in a kmalloc object (OFF_SLAB: when the slab's leftover
 *     cannot hold it and it would cost colouring room), or
 *   at the end of the slab (on-slab).
 * Empty slabs wait on slabs_free until free_objects passes free_limit, or
 * until cache_reap() (slab_cache_reap(): each call is one of Linux's 2 s
 * reap ticks; node-level work every second tick) drains untouched arrays
 * by a fifth of their limit and frees a fifth of the free slabs.
 *
 * Debug (slab_debug=ZPU or the cache's flags; F is SLUB's and refused):
 *   Z  a word of red zone before and after each object (RED_INACTIVE /
 *      RED_ACTIVE), checked at alloc and free ("double free detected", ...)
 *   P  POISON_FREE (0x6b, last byte 0xa5) in free objects, checked when
 *      allocated ("Slab corruption"); POISON_INUSE when handed out
 *   U  the last caller's address in a word after the object
 * Debug caches get limit <= 32 (Linux's DEBUG builds).
 * Every path runs with interrupts off (local_irq_save), as Linux's SLAB.
 * The optional hooks (failslab, KUnit's tracking, kmemleak: slab_hooks.h,
 * shared with SLUB and SLOB) and the kmem trace events sit behind
 * slab_hooks_key: one nop per allocation or free while all are off.
 * might_sleep's check (on at boot) is tested inline in the allocation paths
 * behind its own key and takes the hooks only to report (slab_hooks.h).
 * The cache descriptor starts with SLUB's common fields (slab_common.h).
 */
#include <linux/bug.h>
#include <linux/export.h>
#include <linux/kernel.h>
#include <linux/poison.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <kmemu/bootinfo.h>
#include <kmemu/fault_inject.h>
#include <kmemu/kmemleak.h>
#include <kmemu/kunit_track.h>
#include <kmemu/log.h>
#include <kmemu/memlayout.h>
#include <kmemu/page_alloc.h>
#include <kmemu/slab_common.h>
#include <kmemu/slub.h>
#include <kmemu/traps.h>
#include "slab_alloc.h"
#include "slab_hooks.h"

typedef u8 freelist_idx_t;
#define SLAB_OBJ_MAX_NUM 256       /* what a u8 index can name */
#define SLAB_OBJ_MIN_SIZE 16
#define BATCHREFILL_LIMIT 16
#define SLAB_MAX_ORDER_HI 1        /* slab_max_order above 32 MiB of RAM */
#define SLAB_KMALLOC_MAX_ORDER (KMALLOC_SHIFT_MAX - PAGE_SHIFT)
#define SLAB_KMALLOC_SHIFT_LOW 5   /* kmalloc-32 is SLAB's smallest */
#define SLAB_REAP_NODE_TICKS 2     /* REAPTIMEOUT_NODE / REAPTIMEOUT_AC (4 s / 2 s) */
#define CFLGS_OBJFREELIST_SLAB 0x40000000u
#define CFLGS_OFF_SLAB 0x80000000u
#define SLAB_DEBUG_ALLOWED (SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER)
#define RED_INACTIVE 0x09F911029D74E35BULL
#define RED_ACTIVE 0xD84156C5635688C0ULL

struct array_cache {
	u32 avail;      /* objects in entry[] */
	u32 limit;
	u32 batchcount;
	u32 touched;    /* used since the last reap */
	void *entry[];  /* LIFO: entry[avail - 1] goes first */
};

struct slab_node {
	spinlock_t list_lock;
	struct list_head slabs_partial; /* partial first: Linux's order of search */
	struct list_head slabs_full;
	struct list_head slabs_free;
	u64 total_slabs;
	u64 free_slabs;
	u64 free_objects;  /* free objects on slabs (not in array caches) */
	u32 free_limit;
	u32 colour_next;
	struct array_cache *shared;
	u64 next_reap;     /* reap tick of the next node-level reap */
	u32 free_touched;  /* a free slab was taken since the last reap */
	u32 pad;
};

/* SLAB's cache descriptor (Linux's slab_def.h struct kmem_cache). */
struct slab_kmem_cache {
	KMEM_CACHE_COMMON;
	struct array_cache *cpu_cache;
	u32 batchcount;  /* tunables */
	u32 limit;
	u32 shared;      /* sharedfactor */
	u32 num;         /* objects per slab */
	u32 gfporder;
	u32 colour;      /* colours: leftover / colour_off */
	u32 colour_off;
	u32 freelist_size;
	u32 obj_offset;  /* Z: red zone word before the object */
	u32 cflags;      /* CFLGS_OBJFREELIST_SLAB, CFLGS_OFF_SLAB */
	struct slab_kmem_cache *freelist_cache; /* OFF_SLAB: where index arrays come from */
	void (*ctor)(void *);
	struct list_head list; /* slab_kmem_caches */
	u64 errors;      /* debug reports */
	u64 allochit, allocmiss, freehit, freemiss, grown, reaped; /* Linux's STATS */
	struct slab_node node;
};

_Static_assert(offsetof(struct slab_kmem_cache, flags) == offsetof(struct kmem_cache, flags),
	       "common cache fields must sit where SLUB's do");
_Static_assert(offsetof(struct slab_kmem_cache, name) == offsetof(struct kmem_cache, name),
	       "common cache fields");
_Static_assert(offsetof(struct slab_kmem_cache, object_size) ==
	       offsetof(struct kmem_cache, object_size), "common cache fields");

struct list_head slab_kmem_caches = LIST_HEAD_INIT(slab_kmem_caches);
struct slab_kmem_cache *slab_kmalloc_caches[3][KMALLOC_SHIFT_MAX + 1];
u64 slab_reap_ticks;     /* cache_reap() calls so far */
static u32 slab_max_order;
static bool slab_up;      /* kmalloc caches exist: arrays come from kmalloc */
static struct slab_kmem_cache slab_kmem_cache_boot;

/*
 * Array caches made before kmalloc can hold them (Linux: static boot arrays).
 * Their slots keep stale pointers to objects handed out since, so kmemleak
 * does not scan the pool (<kmemu/kmemleak.h>; Linux's kmemleak_no_scan(ac)).
 */
u8 slab_boot_pool[SLAB_BOOT_POOL_BYTES] __aligned(64);
static u64 slab_boot_used;

static inline struct slab_kmem_cache *to_slab(struct kmem_cache *s)
{
	return (struct slab_kmem_cache *)s;
}

/* --- slab page fields -------------------------------------------------------- */

static inline u32 slab_active(const struct page *slab) { return (u32)(slab->private & 0xffff); }

static inline void set_slab_active(struct page *slab, u32 active)
{
	slab->private = (slab->private & ~0xffffUL) | active;
}

static inline u8 *slab_s_mem(const struct page *slab)
{
	return (u8 *)page_address(slab) + (slab->private >> 16);
}

static inline freelist_idx_t *slab_freelist(const struct page *slab)
{
	return slab->freelist;
}

static inline void *index_to_obj(struct slab_kmem_cache *c, const struct page *slab, u32 idx)
{
	return slab_s_mem(slab) + (u64)c->size * idx;
}

static inline u32 obj_to_index(struct slab_kmem_cache *c, const struct page *slab, void *obj)
{
	return (u32)(((u8 *)obj - slab_s_mem(slab)) / c->size);
}

/* The next free object; the slab has one. */
static void *slab_get_obj(struct slab_kmem_cache *c, struct page *slab)
{
	u32 active = slab_active(slab);
	void *obj = index_to_obj(c, slab, slab_freelist(slab)[active]);
	set_slab_active(slab, active + 1);
	return obj;
}

static void slab_put_obj(struct slab_kmem_cache *c, struct page *slab, void *obj)
{
	u32 active = slab_active(slab) - 1;
	u32 idx = obj_to_index(c, slab, obj);
	if (!slab->freelist && (c->cflags & CFLGS_OBJFREELIST_SLAB))
		slab->freelist = (u8 *)obj + c->obj_offset; /* the array moves into this object */
	slab_freelist(slab)[active] = (freelist_idx_t)idx;
	set_slab_active(slab, active);
}

/* --- debug: red zones, poison, last user ------------------------------------- */

static u64 *dbg_redzone1(struct slab_kmem_cache *c, void *slot)
{
	return (u64 *)((u8 *)slot + c->obj_offset - 8);
}

static u64 *dbg_redzone2(struct slab_kmem_cache *c, void *slot)
{
	if (c->flags & SLAB_STORE_USER)
		return (u64 *)((u8 *)slot + c->size - 16);
	return (u64 *)((u8 *)slot + c->size - 8);
}

static u64 *dbg_userword(struct slab_kmem_cache *c, void *slot)
{
	return (u64 *)((u8 *)slot + c->size - 8);
}

static void slab_error(struct slab_kmem_cache *c, const char *fn, const char *msg)
{
	pr_err("slab error in %s(): cache `%s': %s\n", fn, c->name, msg);
	dump_stack();
	c->errors++;
}

static void poison_obj(struct slab_kmem_cache *c, void *slot, u8 val)
{
	u8 *p = (u8 *)slot + c->obj_offset;
	memset(p, val, c->object_size);
	p[c->object_size - 1] = POISON_END;
}

/* A free object's poison intact?  Reports the first damaged lines, as Linux. */
static void check_poison_obj(struct slab_kmem_cache *c, void *slot)
{
	u8 *p = (u8 *)slot + c->obj_offset;
	u32 size = c->object_size, lines = 0;
	for (u32 i = 0; i < size; i++) {
		u8 want = i == size - 1 ? POISON_END : POISON_FREE;
		if (p[i] == want)
			continue;
		if (!lines)
			pr_err("Slab corruption (Not tainted): %s start=%px, len=%u\n", c->name, p, size);
		u32 line = i & ~15u, n = min(16u, size - line);
		char hex[16 * 3 + 1] = "";
		for (u32 b = 0; b < n; b++)
			snprintf(hex + 3 * b, 4, "%02x ", p[line + b]);
		pr_err("%03x: %s\n", line, hex);
		c->errors += !lines;
		i = line + 15;
		if (++lines >= 5)
			break;
	}
	if (lines)
		poison_obj(c, slot, POISON_FREE); /* reported once */
}

static void init_obj_debug(struct slab_kmem_cache *c, void *slot)
{
	if (c->flags & SLAB_POISON)
		poison_obj(c, slot, POISON_FREE);
	if (c->flags & SLAB_RED_ZONE) {
		*dbg_redzone1(c, slot) = RED_INACTIVE;
		*dbg_redzone2(c, slot) = RED_INACTIVE;
	}
	if (c->flags & SLAB_STORE_USER)
		*dbg_userword(c, slot) = 0;
}

/* After an object left the arrays (slot start in, object out). */
static void *alloc_debugcheck_after(struct slab_kmem_cache *c, void *slot, u64 caller)
{
	if (c->flags & SLAB_POISON) {
		check_poison_obj(c, slot);
		poison_obj(c, slot, POISON_INUSE);
	}
	if (c->flags & SLAB_STORE_USER)
		*dbg_userword(c, slot) = caller;
	if (c->flags & SLAB_RED_ZONE) {
		if (*dbg_redzone1(c, slot) != RED_INACTIVE || *dbg_redzone2(c, slot) != RED_INACTIVE) {
			slab_error(c, "cache_alloc_debugcheck_after",
				   "double free, or memory outside object was overwritten");
			pr_err("%px: redzone 1:0x%llx, redzone 2:0x%llx\n", slot,
			       *dbg_redzone1(c, slot), *dbg_redzone2(c, slot));
		}
		*dbg_redzone1(c, slot) = RED_ACTIVE;
		*dbg_redzone2(c, slot) = RED_ACTIVE;
	}
	void *obj = (u8 *)slot + c->obj_offset;
	if (c->ctor && (c->flags & SLAB_POISON))
		c->ctor(obj);
	return obj;
}

/* Before an object goes back (object in, slot out); false: reported, keep it out. */
static bool free_debugcheck(struct slab_kmem_cache *c, void *slot, u64 caller)
{
	if (c->flags & SLAB_RED_ZONE) {
		u64 r1 = *dbg_redzone1(c, slot), r2 = *dbg_redzone2(c, slot);
		if (r1 != RED_ACTIVE || r2 != RED_ACTIVE) {
			bool dbl = r1 == RED_INACTIVE && r2 == RED_INACTIVE;
			slab_error(c, "cache_free_debugcheck",
				   dbl ? "double free detected" : "memory outside object was overwritten");
			pr_err("%px: redzone 1:0x%llx, redzone 2:0x%llx\n", slot, r1, r2);
			if (dbl)
				return false;
		}
		*dbg_redzone1(c, slot) = RED_INACTIVE;
		*dbg_redzone2(c, slot) = RED_INACTIVE;
	}
	if (c->flags & SLAB_STORE_USER)
		*dbg_userword(c, slot) = caller;
	if (c->flags & SLAB_POISON)
		poison_obj(c, slot, POISON_FREE);
	return true;
}

/* --- slabs -------------------------------------------------------------------- */

static struct array_cache *alloc_arraycache(u32 entries, u32 batchcount);

static void cache_init_objs(struct slab_kmem_cache *c, struct page *slab)
{
	if (c->cflags & CFLGS_OBJFREELIST_SLAB)
		slab->freelist = (u8 *)index_to_obj(c, slab, c->num - 1) + c->obj_offset;
	for (u32 i = 0; i < c->num; i++) {
		void *slot = index_to_obj(c, slab, i);
		if (c->flags & SLAB_DEBUG_ALLOWED)
			init_obj_debug(c, slot);
		if (c->ctor && !(c->flags & SLAB_POISON))
			c->ctor((u8 *)slot + c->obj_offset);
		slab_freelist(slab)[i] = (freelist_idx_t)i;
	}
}

/* The index array's home: none yet (OBJFREELIST), a kmalloc object, or the slab's end. */
static void *alloc_slabmgmt(struct slab_kmem_cache *c, struct page *slab, gfp_t gfp)
{
	if (c->cflags & CFLGS_OBJFREELIST_SLAB)
		return NULL;
	if (c->cflags & CFLGS_OFF_SLAB)
		return slab_kmem_cache_alloc((struct kmem_cache *)c->freelist_cache,
					     gfp & ~__GFP_ZERO);
	return (u8 *)page_address(slab) + (PAGE_SIZE << c->gfporder) - c->freelist_size;
}

/*
 * A new slab (Linux's cache_grow_begin): pages, the next colour, the index
 * array, objects initialised.  Interrupts off; on around a blocking page
 * allocation.  Not on any list yet.
 */
static struct page *cache_grow_begin(struct slab_kmem_cache *c, gfp_t gfp)
{
	bool blocking = gfpflags_allow_blocking(gfp);
	gfp_t pgfp = (gfp & ~(__GFP_ZERO | __GFP_DMA | __GFP_DMA32 | __GFP_RECLAIMABLE)) | __GFP_COMP;
	if (c->flags & SLAB_CACHE_DMA)
		pgfp |= __GFP_DMA;
	if (c->flags & SLAB_RECLAIM_ACCOUNT)
		pgfp |= __GFP_RECLAIMABLE;
	if (!c->gfporder)
		pgfp &= ~__GFP_COMP;
	if (blocking)
		local_irq_enable();
	fault_nest_enter();
	struct page *slab = alloc_pages(pgfp, c->gfporder);
	u32 offset = 0;
	void *freelist = NULL;
	if (slab) {
		struct slab_node *n = &c->node;
		if (++n->colour_next >= c->colour) /* Linux steps before it uses */
			n->colour_next = 0;
		offset = n->colour_next;
		if (offset >= c->colour)
			offset = 0;
		offset *= c->colour_off;
		freelist = alloc_slabmgmt(c, slab, pgfp);
		if ((c->cflags & CFLGS_OFF_SLAB) && !freelist) {
			__free_pages(slab, c->gfporder);
			slab = NULL;
		}
	}
	fault_nest_exit();
	if (blocking)
		local_irq_disable();
	if (!slab)
		return NULL;
	set_page_flag(slab, PG_slab);
	slab->slab_cache = c;
	slab->freelist = freelist;
	slab->private = (u64)offset << 16;
	INIT_LIST_HEAD(&slab->slab_list);
	cache_init_objs(c, slab);
	return slab;
}

/* The slab's pages (and off-slab index array) back; it is on no list. */
static void slab_destroy(struct slab_kmem_cache *c, struct page *slab)
{
	void *freelist = slab->freelist;
	clear_page_flag(slab, PG_slab);
	slab->slab_cache = NULL;
	slab->freelist = NULL;
	slab->private = 0;
	__free_pages(slab, c->gfporder);
	if ((c->cflags & CFLGS_OFF_SLAB) && freelist)
		slab_kmem_cache_free((struct kmem_cache *)c->freelist_cache, freelist);
}

static void slabs_destroy(struct slab_kmem_cache *c, struct list_head *list)
{
	struct page *slab, *n;
	list_for_each_entry_safe(slab, n, list, slab_list) {
		list_del(&slab->slab_list);
		slab_destroy(c, slab);
	}
}

/* Move the slab to full or partial by its count; OBJFREELIST full slabs lose the array. */
static void fixup_slab_list(struct slab_kmem_cache *c, struct slab_node *n, struct page *slab)
{
	list_del(&slab->slab_list);
	if (slab_active(slab) == c->num) {
		list_add(&slab->slab_list, &n->slabs_full);
		if (c->cflags & CFLGS_OBJFREELIST_SLAB)
			slab->freelist = NULL;
	} else {
		list_add(&slab->slab_list, &n->slabs_partial);
	}
}

/* A new slab joins the node (Linux's cache_grow_end).  Interrupts off. */
static void cache_grow_end(struct slab_kmem_cache *c, struct page *slab)
{
	struct slab_node *n = &c->node;
	spin_lock(&n->list_lock);
	n->total_slabs++;
	if (!slab_active(slab)) {
		list_add_tail(&slab->slab_list, &n->slabs_free);
		n->free_slabs++;
	} else {
		fixup_slab_list(c, n, slab);
	}
	c->grown++;
	n->free_objects += c->num - slab_active(slab);
	spin_unlock(&n->list_lock);
}

/*
 * nr objects back to their slabs (list_lock held).  Emptied slabs go to
 * slabs_free; past free_limit free objects, free slabs move to `list` for
 * the caller to destroy after unlocking.
 */
static void free_block(struct slab_kmem_cache *c, void **objs, u32 nr, struct list_head *list)
{
	struct slab_node *n = &c->node;
	n->free_objects += nr;
	for (u32 i = 0; i < nr; i++) {
		void *obj = objs[i];
		struct page *slab = compound_head(virt_to_page(obj));
		list_del(&slab->slab_list);
		slab_put_obj(c, slab, obj);
		if (!slab_active(slab)) {
			list_add(&slab->slab_list, &n->slabs_free);
			n->free_slabs++;
		} else {
			/* the tail: the longest time for its other objects to come back */
			list_add_tail(&slab->slab_list, &n->slabs_partial);
		}
	}
	while (n->free_objects > n->free_limit && !list_empty(&n->slabs_free)) {
		n->free_objects -= c->num;
		struct page *slab = list_last_entry(&n->slabs_free, struct page, slab_list);
		list_move(&slab->slab_list, list);
		n->free_slabs--;
		n->total_slabs--;
	}
}

/* --- array caches -------------------------------------------------------------- */

static u32 transfer_objects(struct array_cache *to, struct array_cache *from, u32 max)
{
	u32 nr = min(min(from->avail, max), to->limit - to->avail);
	if (!nr)
		return 0;
	from->avail -= nr;
	memcpy(to->entry + to->avail, from->entry + from->avail, sizeof(void *) * nr);
	to->avail += nr;
	return nr;
}

/* A partial slab, else a free one (free_touched), else NULL.  list_lock held. */
static struct page *get_first_slab(struct slab_node *n)
{
	struct page *slab = list_first_entry_or_null(&n->slabs_partial, struct page, slab_list);
	if (!slab) {
		n->free_touched = 1;
		slab = list_first_entry_or_null(&n->slabs_free, struct page, slab_list);
		if (slab)
			n->free_slabs--;
	}
	return slab;
}

static u32 alloc_block(struct slab_kmem_cache *c, struct array_cache *ac, struct page *slab,
		       u32 batchcount)
{
	while (slab_active(slab) < c->num && batchcount) {
		ac->entry[ac->avail++] = slab_get_obj(c, slab);
		batchcount--;
	}
	return batchcount;
}

/* The CPU array is empty: refill it (shared array, slabs, a new slab), pop one. */
static noinline void *cache_alloc_refill(struct slab_kmem_cache *c, gfp_t gfp)
{
	struct array_cache *ac = c->cpu_cache;
	struct slab_node *n = &c->node;
	struct array_cache *shared = n->shared;
	u32 batchcount = ac->batchcount;
	if (!ac->touched && batchcount > BATCHREFILL_LIMIT)
		batchcount = BATCHREFILL_LIMIT;

	if (n->free_objects || (shared && shared->avail)) {
		spin_lock(&n->list_lock);
		if (shared && transfer_objects(ac, shared, batchcount)) {
			shared->touched = 1;
		} else {
			while (batchcount > 0) {
				struct page *slab = get_first_slab(n);
				if (!slab)
					break;
				batchcount = alloc_block(c, ac, slab, batchcount);
				fixup_slab_list(c, n, slab);
			}
			n->free_objects -= ac->avail;
		}
		spin_unlock(&n->list_lock);
	}
	if (!ac->avail) {
		struct page *slab = cache_grow_begin(c, gfp);
		ac = c->cpu_cache; /* interrupts may have been on: look again */
		if (slab) {
			if (!ac->avail)
				alloc_block(c, ac, slab, batchcount);
			cache_grow_end(c, slab);
		}
		if (!ac->avail)
			return NULL;
	}
	ac->touched = 1;
	return ac->entry[--ac->avail];
}

/* The CPU array is full: batchcount objects to the shared array or their slabs. */
static noinline void cache_flusharray(struct slab_kmem_cache *c, struct array_cache *ac)
{
	struct slab_node *n = &c->node;
	u32 batchcount = ac->batchcount;
	LIST_HEAD(list);
	spin_lock(&n->list_lock);
	struct array_cache *shared = n->shared;
	u32 room = shared ? shared->limit - shared->avail : 0;
	if (room) {
		batchcount = min(batchcount, room);
		memcpy(&shared->entry[shared->avail], ac->entry, sizeof(void *) * batchcount);
		shared->avail += batchcount;
	} else {
		free_block(c, ac->entry, batchcount, &list);
	}
	spin_unlock(&n->list_lock);
	ac->avail -= batchcount;
	memmove(ac->entry, &ac->entry[batchcount], sizeof(void *) * ac->avail);
	slabs_destroy(c, &list);
}

/* --- alloc and free ----------------------------------------------------------- */

static __always_inline void *cache_alloc(struct slab_kmem_cache *c, gfp_t gfp)
{
	struct array_cache *ac = c->cpu_cache;
	if (likely(ac->avail)) {
		c->allochit++;
		ac->touched = 1;
		return ac->entry[--ac->avail];
	}
	c->allocmiss++;
	return cache_alloc_refill(c, gfp);
}

/*
 * The allocation itself (Linux's slab_alloc without its hooks): the arrays
 * with interrupts off, then the debug checks and __GFP_ZERO.
 */
static __always_inline void *__slab_cache_alloc(struct slab_kmem_cache *c, gfp_t gfp, u64 caller)
{
	unsigned long flags;
	local_irq_save(flags);
	void *obj = cache_alloc(c, gfp);
	local_irq_restore(flags);
	if (!obj)
		return NULL;
	if (unlikely(c->flags & SLAB_DEBUG_ALLOWED))
		obj = alloc_debugcheck_after(c, obj, caller);
	if (gfp & __GFP_ZERO)
		memset(obj, 0, c->object_size);
	return obj;
}

/*
 * slab_hooks_key is on: slab_pre_alloc_hook (might_sleep, failslab), the
 * allocation, its records (KUnit, kmemleak: slab_hooks.h), then the event
 * Linux's SLAB raised in the function the caller called: kmalloc (bytes_alloc
 * is the cache's slot size, cachep->size) or kmem_cache_alloc.  A failed
 * allocation is traced too, as in Linux.
 */
static noinline void *slab_cache_alloc_hooks(struct slab_kmem_cache *c, gfp_t gfp, u64 orig_size,
					     u64 caller, bool kmalloc)
{
	void *obj = NULL;
	if (slab_pre_alloc_hook((struct kmem_cache *)c, gfp)) {
		obj = __slab_cache_alloc(c, gfp, caller);
		if (obj)
			slab_post_alloc_track(obj, c, orig_size, caller, c->object_size, c->flags);
	}
	if (kmalloc)
		trace_kmalloc(caller, obj, orig_size, c->size, gfp, NUMA_NO_NODE);
	else
		trace_kmem_cache_alloc(caller, obj, (struct kmem_cache *)c, gfp, NUMA_NO_NODE);
	return obj;
}

/*
 * Linux's slab_alloc: one nop (slab_hooks_key) while every optional hook is
 * off, and might_sleep's inline check (slab_hooks.h) while that is on.
 */
static __always_inline void *slab_cache_alloc(struct slab_kmem_cache *c, gfp_t gfp, u64 orig_size,
					      u64 caller, bool kmalloc)
{
	if (static_branch_unlikely(&slab_hooks_key) || slab_might_sleep_report(gfp))
		return slab_cache_alloc_hooks(c, gfp, orig_size, caller, kmalloc);
	return __slab_cache_alloc(c, gfp, caller);
}

/*
 * Linux's ___cache_free: the debug checks, then push on the CPU array,
 * flushing a batch when it is full.
 */
static __always_inline void __slab_cache_free(struct slab_kmem_cache *c, void *obj, u64 caller)
{
	unsigned long flags;
	void *slot = (u8 *)obj - c->obj_offset;
	if (unlikely(c->flags & SLAB_DEBUG_ALLOWED) && !free_debugcheck(c, slot, caller))
		return;
	local_irq_save(flags);
	struct array_cache *ac = c->cpu_cache;
	/* CONFIG_SLAB_FREELIST_HARDENED's naive double-free check */
	if (WARN_ON_ONCE(ac->avail && ac->entry[ac->avail - 1] == slot)) {
		local_irq_restore(flags);
		return;
	}
	if (ac->avail < ac->limit) {
		c->freehit++;
	} else {
		c->freemiss++;
		cache_flusharray(c, ac);
	}
	ac->entry[ac->avail++] = slot;
	local_irq_restore(flags);
}

/* slab_hooks_key is on: KUnit's and kmemleak's records go (slab_hooks.h), then the free. */
static noinline void slab_cache_free_hooks(struct slab_kmem_cache *c, void *obj, u64 caller)
{
	slab_free_track(obj, c->flags);
	__slab_cache_free(c, obj, caller);
}

/*
 * The slab page of a direct-map address (NULL if none): one section-bitmap
 * test (an address below PAGE_OFFSET wraps past the sections), as SLUB's kfree.
 */
static __always_inline struct page *slab_page_of(const void *p)
{
	if (unlikely(!pfn_valid(((u64)p - PAGE_OFFSET) >> PAGE_SHIFT)))
		return NULL;
	struct page *head = __compound_head(__direct_virt_to_page(p));
	return likely(PageSlab(head)) ? head : NULL;
}

void *slab_kmem_cache_alloc(struct kmem_cache *s, gfp_t gfp)
{
	return slab_cache_alloc(to_slab(s), gfp, to_slab(s)->object_size,
				(u64)__builtin_return_address(0), false);
}

void *slab_kmem_cache_zalloc(struct kmem_cache *s, gfp_t gfp)
{
	return slab_cache_alloc(to_slab(s), gfp | __GFP_ZERO, to_slab(s)->object_size,
				(u64)__builtin_return_address(0), false);
}

/* Linux's: the cache check, the event (hooks on: it holds slab_hooks_key), the free. */
void slab_kmem_cache_free(struct kmem_cache *s, void *obj)
{
	if (!obj)
		return;
	struct page *slab = slab_page_of(obj);
	if (WARN(!slab || slab->slab_cache != (void *)s,
		 "kmem_cache_free(%s): %px is not an object of this cache", s->name, obj))
		return;
	u64 caller = (u64)__builtin_return_address(0);
	if (static_branch_unlikely(&slab_hooks_key)) {
		trace_kmem_cache_free(caller, obj, s);
		slab_cache_free_hooks(to_slab(s), obj, caller);
		return;
	}
	__slab_cache_free(to_slab(s), obj, caller);
}

unsigned int slab_kmem_cache_size(struct kmem_cache *s)
{
	return to_slab(s)->object_size;
}

int slab_kmem_cache_alloc_bulk(struct kmem_cache *s, gfp_t gfp, size_t nr, void **p)
{
	for (size_t i = 0; i < nr; i++) {
		p[i] = slab_cache_alloc(to_slab(s), gfp, to_slab(s)->object_size,
					(u64)__builtin_return_address(0), false);
		if (!p[i]) {
			slab_kmem_cache_free_bulk(s, i, p);
			return 0;
		}
	}
	return (int)nr;
}

void slab_kmem_cache_free_bulk(struct kmem_cache *s, size_t nr, void **p)
{
	for (size_t i = 0; i < nr; i++)
		slab_kmem_cache_free(s, p[i]);
}

/* --- kmalloc: kmalloc-32 .. kmalloc-4M, with 96 and 192 --------------------------- */

static __always_inline unsigned int slab_kmalloc_index(u64 size)
{
	if (size <= 32)
		return 5;
	if (size <= 64)
		return 6;
	if (size <= 96)
		return 1;
	if (size <= 128)
		return 7;
	if (size <= 192)
		return 2;
	return 64 - (unsigned int)__builtin_clzl(size - 1);
}

static __always_inline struct slab_kmem_cache *slab_kmalloc_slab(u64 size, gfp_t gfp)
{
	int t = !(gfp & (__GFP_DMA | __GFP_RECLAIMABLE)) ? KMALLOC_NORMAL :
		(gfp & __GFP_DMA) ? KMALLOC_DMA : KMALLOC_RECLAIM;
	return slab_kmalloc_caches[t][slab_kmalloc_index(size)];
}

/* kmalloc for caller (its trace event's call_site, KUnit's and kmemleak's record). */
static __always_inline void *slab_do_kmalloc(size_t size, gfp_t gfp, u64 caller)
{
	if (unlikely(!size))
		return ZERO_SIZE_PTR;
	if (unlikely(size > KMALLOC_MAX_SIZE)) {
		WARN(!(gfp & __GFP_NOWARN), "kmalloc: %zu bytes is more than KMALLOC_MAX_SIZE", size);
		return NULL;
	}
	return slab_cache_alloc(slab_kmalloc_slab(size, gfp), gfp, size, caller, true);
}

void *slab_kmalloc(size_t size, gfp_t gfp)
{
	return slab_do_kmalloc(size, gfp, (u64)__builtin_return_address(0));
}

/* The kmalloc cache of p, or NULL (WARN) for an address no kmalloc returned. */
static __always_inline struct slab_kmem_cache *slab_kfree_cache(const void *p)
{
	struct page *slab = slab_page_of(p);
	if (WARN(!slab, "kfree: %px is not a kmalloc'ed address", p))
		return NULL;
	return slab->slab_cache;
}

/* slab_hooks_key is on: Linux's kfree raises its event first, even for NULL. */
static noinline void slab_kfree_hooks(const void *p, u64 caller)
{
	trace_kfree(caller, p);
	if (unlikely(ZERO_OR_NULL_PTR(p)))
		return;
	struct slab_kmem_cache *c = slab_kfree_cache(p);
	if (c)
		slab_cache_free_hooks(c, (void *)p, caller);
}

void slab_kfree(const void *p)
{
	if (static_branch_unlikely(&slab_hooks_key)) {
		slab_kfree_hooks(p, (u64)__builtin_return_address(0));
		return;
	}
	if (unlikely(ZERO_OR_NULL_PTR(p)))
		return;
	struct slab_kmem_cache *c = slab_kfree_cache(p);
	if (c)
		__slab_cache_free(c, (void *)p, (u64)__builtin_return_address(0));
}

size_t slab_ksize(const void *p)
{
	if (ZERO_OR_NULL_PTR(p))
		return 0;
	struct page *slab = slab_page_of(p);
	if (WARN_ON(!slab))
		return 0;
	return ((struct slab_kmem_cache *)slab->slab_cache)->object_size;
}

/* slab_common's krealloc: in place while the object is big enough, else copy. */
void *slab_krealloc(const void *p, size_t new_size, gfp_t gfp)
{
	if (ZERO_OR_NULL_PTR(p))
		return slab_kmalloc(new_size, gfp);
	if (!new_size) {
		slab_kfree(p);
		return ZERO_SIZE_PTR;
	}
	size_t ks = slab_ksize(p);
	if (new_size <= ks)
		return (void *)p;
	void *ret = slab_kmalloc(new_size, gfp);
	if (ret) {
		memcpy(ret, p, ks);
		slab_kfree(p);
	}
	return ret;
}

size_t slab_kmalloc_size_roundup(size_t size)
{
	if (!size)
		return 0;
	if (size > KMALLOC_MAX_SIZE)
		return size;
	return slab_kmalloc_slab(size, 0)->object_size;
}

/* --- cache creation --------------------------------------------------------------- */

/* Objects per slab of 2^order pages and the leftover bytes (Linux's cache_estimate). */
static u32 cache_estimate(u32 order, u32 size, u32 cflags, u32 *left_over)
{
	u64 slab_size = PAGE_SIZE << order;
	u64 per = cflags & (CFLGS_OBJFREELIST_SLAB | CFLGS_OFF_SLAB) ? size
								    : size + sizeof(freelist_idx_t);
	*left_over = (u32)(slab_size % per);
	return (u32)(slab_size / per);
}

/* The smallest acceptable order for the layout cflags; sets num/gfporder, returns leftover. */
static u32 calculate_slab_order(struct slab_kmem_cache *c, u32 size, u32 cflags)
{
	u32 left_over = 0;
	for (u32 order = 0; order <= SLAB_KMALLOC_MAX_ORDER; order++) {
		u32 remainder;
		u32 num = cache_estimate(order, size, cflags, &remainder);
		if (!num)
			continue;
		if (num > SLAB_OBJ_MAX_NUM)
			break;
		if (cflags & CFLGS_OFF_SLAB) {
			struct slab_kmem_cache *fc = slab_kmalloc_slab(num * sizeof(freelist_idx_t), 0);
			if (!fc || (fc->cflags & CFLGS_OFF_SLAB) || fc->size > c->object_size / 2)
				continue; /* no cache yet, a loop, or not worth it */
		}
		c->num = num;
		c->gfporder = order;
		left_over = remainder;
		if (c->flags & SLAB_RECLAIM_ACCOUNT)
			break;
		if (order >= slab_max_order)
			break;
		if ((u64)left_over * 8 <= (PAGE_SIZE << order))
			break;
	}
	return left_over;
}

/* Where the index array goes: in an object, off the slab, or at its end. */
static bool choose_slab_layout(struct slab_kmem_cache *c, u32 size)
{
	u32 left;
	c->num = 0;
	if (!c->ctor && !(c->flags & SLAB_POISON)) {
		left = calculate_slab_order(c, size, CFLGS_OBJFREELIST_SLAB);
		if (c->num && c->num * sizeof(freelist_idx_t) <= c->object_size) {
			c->cflags = CFLGS_OBJFREELIST_SLAB;
			goto done;
		}
	}
	c->num = 0;
	if (!(c->flags & SLAB_NOLEAKTRACE)) {
		left = calculate_slab_order(c, size, CFLGS_OFF_SLAB);
		if (c->num && left < c->num * sizeof(freelist_idx_t)) {
			c->cflags = CFLGS_OFF_SLAB;
			goto done;
		}
	}
	c->num = 0;
	left = calculate_slab_order(c, size, 0);
	if (!c->num)
		return false;
	c->cflags = 0;
done:
	c->colour = left / c->colour_off;
	c->freelist_size = c->num * sizeof(freelist_idx_t);
	if (c->cflags & CFLGS_OFF_SLAB)
		c->freelist_cache = slab_kmalloc_slab(c->freelist_size, 0);
	return true;
}

/* An array cache of `entries` slots: kmalloc once it can, the boot pool before. */
static struct array_cache *alloc_arraycache(u32 entries, u32 batchcount)
{
	u64 bytes = sizeof(struct array_cache) + sizeof(void *) * entries;
	struct array_cache *ac = NULL;
	if (slab_up) {
		ac = fault_nested(slab_kmalloc(bytes, GFP_KERNEL)); /* SLAB's own: not counted */
	} else if (slab_boot_used + bytes <= sizeof(slab_boot_pool)) {
		ac = (struct array_cache *)(slab_boot_pool + slab_boot_used);
		slab_boot_used += ALIGN(bytes, 64);
	}
	if (ac) {
		ac->avail = 0;
		ac->limit = entries;
		ac->batchcount = batchcount;
		ac->touched = 0;
	}
	return ac;
}

static void free_arraycache(struct array_cache *ac)
{
	u8 *p = (u8 *)ac;
	if (ac && !(p >= slab_boot_pool && p < slab_boot_pool + sizeof(slab_boot_pool)))
		slab_kfree(ac);
}

/* Every object in ac back to the slabs (list_lock held); `list` gets slabs to destroy. */
static void drain_array_locked(struct slab_kmem_cache *c, struct array_cache *ac, bool all,
			       struct list_head *list)
{
	if (!ac || !ac->avail)
		return;
	u32 tofree = all ? ac->avail : (ac->limit + 4) / 5;
	if (tofree > ac->avail)
		tofree = (ac->avail + 1) / 2;
	free_block(c, ac->entry, tofree, list);
	ac->avail -= tofree;
	memmove(ac->entry, &ac->entry[tofree], sizeof(void *) * ac->avail);
}

/* Both arrays emptied into the slabs.  Interrupts on or off. */
static void drain_cpu_caches(struct slab_kmem_cache *c)
{
	unsigned long flags;
	LIST_HEAD(list);
	spin_lock_irqsave(&c->node.list_lock, flags);
	drain_array_locked(c, c->cpu_cache, true, &list);
	drain_array_locked(c, c->node.shared, true, &list);
	spin_unlock_irqrestore(&c->node.list_lock, flags);
	slabs_destroy(c, &list);
}

/*
 * Linux's do_tune_cpucache: new limit/batchcount/shared, new arrays (the old
 * ones drained first).  0, or -EINVAL for values SLAB refuses.
 */
static int do_tune_cpucache(struct slab_kmem_cache *c, u32 limit, u32 batchcount, u32 shared)
{
	if (!limit || !batchcount || batchcount > limit || shared > 8 || limit > 1024)
		return -EINVAL;
	struct array_cache *cpu = alloc_arraycache(limit, batchcount);
	struct array_cache *sh = shared ? alloc_arraycache(shared * batchcount, 0xbaadf00d) : NULL;
	if (!cpu || (shared && !sh)) {
		free_arraycache(cpu);
		free_arraycache(sh);
		return -ENOMEM;
	}
	unsigned long flags;
	LIST_HEAD(list);
	/* swap, then empty the old arrays: nothing can land in them in between */
	spin_lock_irqsave(&c->node.list_lock, flags);
	struct array_cache *old_cpu = c->cpu_cache, *old_sh = c->node.shared;
	c->cpu_cache = cpu;
	c->node.shared = sh;
	c->limit = limit;
	c->batchcount = batchcount;
	c->shared = shared;
	c->node.free_limit = (1 + 1) * batchcount + c->num; /* (1 + CPUs) * batchcount + num */
	drain_array_locked(c, old_cpu, true, &list);
	drain_array_locked(c, old_sh, true, &list);
	spin_unlock_irqrestore(&c->node.list_lock, flags);
	slabs_destroy(c, &list);
	free_arraycache(old_cpu);
	free_arraycache(old_sh);
	return 0;
}

/* Linux's enable_cpucache: limit by object size, batchcount half of it. */
static int enable_cpucache(struct slab_kmem_cache *c)
{
	u32 limit;
	if (c->size > 131072)
		limit = 1;
	else if (c->size > PAGE_SIZE)
		limit = 8;
	else if (c->size > 1024)
		limit = 24;
	else if (c->size > 256)
		limit = 54;
	else
		limit = 120;
	/* Linux: 8 only with more than one CPU; kmemu keeps the shared array in play */
	u32 shared = c->size <= PAGE_SIZE ? 8 : 0;
	if ((c->flags & SLAB_DEBUG_ALLOWED) && limit > 32)
		limit = 32; /* Linux's DEBUG builds: short interrupts-off batches */
	return do_tune_cpucache(c, limit, (limit + 1) / 2, shared);
}

/* Fill in a zeroed descriptor (Linux's __kmem_cache_create); false: no layout fits. */
static bool slab_cache_open(struct slab_kmem_cache *c, const char *name, u32 size, u32 align,
			    slab_flags_t flags, void (*ctor)(void *))
{
	strscpy(c->name, name, sizeof(c->name));
	c->object_size = size;
	c->flags = flags;
	c->ctor = ctor;
	u32 ralign = 8;
	size = ALIGN(size, 8u);
	c->align = max(ralign, calculate_alignment(flags, align, c->object_size));
	c->colour_off = max((u32)CACHE_LINE_SIZE, c->align);
	if (flags & SLAB_RED_ZONE) {
		c->obj_offset = 8;
		size += 16;
	}
	if (flags & SLAB_STORE_USER)
		size += 8;
	size = ALIGN(size, c->align);
	if (size < SLAB_OBJ_MIN_SIZE)
		size = ALIGN((u32)SLAB_OBJ_MIN_SIZE, c->align);
	c->size = size;
	c->inuse = size;
	if (!choose_slab_layout(c, size))
		return false;
	c->node.list_lock = __SPIN_LOCK_UNLOCKED(c->node.list_lock);
	INIT_LIST_HEAD(&c->node.slabs_partial);
	INIT_LIST_HEAD(&c->node.slabs_full);
	INIT_LIST_HEAD(&c->node.slabs_free);
	c->node.next_reap = slab_reap_ticks + SLAB_REAP_NODE_TICKS;
	if (enable_cpucache(c))
		return false;
	unsigned long fl;
	local_irq_save(fl);
	list_add(&c->list, &slab_kmem_caches); /* newest first, as Linux */
	local_irq_restore(fl);
	return true;
}

/* The debug flags SLAB has; a plain line for the rest. */
static bool slab_flags_ok(const char *name, slab_flags_t flags)
{
	slab_flags_t bad = flags & SLAB_DEBUG_FLAGS & ~SLAB_DEBUG_ALLOWED;
	if (!bad)
		return true;
	printk("kmem_cache_create(%s): SLAB has no consistency checks (SLAB_CONSISTENCY_CHECKS "
	       "is SLUB's); it has SLAB_RED_ZONE, SLAB_POISON and SLAB_STORE_USER\n", name);
	return false;
}

struct kmem_cache *slab_kmem_cache_create(const char *name, unsigned int size,
					  unsigned int align, slab_flags_t flags,
					  void (*ctor)(void *))
{
	struct slab_kmem_cache *c = NULL;
	if (!name || !size || size > KMALLOC_MAX_SIZE || align > KMALLOC_MAX_SIZE ||
	    (align & (align - 1)) || !slab_flags_ok(name, flags))
		goto fail;
	/* slab_debug= words: poison any cache, red zones and the user word where they fit */
	slab_flags_t boot_debug = slab_debug_flags_for(name) & SLAB_DEBUG_ALLOWED;
	if (size > KMALLOC_MAX_SIZE - 24)
		boot_debug &= SLAB_POISON;
	flags |= boot_debug;
	c = slab_cache_alloc(&slab_kmem_cache_boot, GFP_KERNEL | __GFP_ZERO,
			     sizeof(struct slab_kmem_cache), 0, false);
	if (!c)
		goto fail;
	if (!slab_cache_open(c, name, size, align, flags, ctor)) {
		slab_kmem_cache_free((struct kmem_cache *)&slab_kmem_cache_boot, c);
		c = NULL;
		goto fail;
	}
	return (struct kmem_cache *)c;
fail:
	if (flags & SLAB_PANIC)
		panic("kmem_cache_create: Failed to create slab '%s'", name ? name : "(null)");
	printk("kmem_cache_create(%s) failed\n", name ? name : "(null)");
	return NULL;
}

/* Up to `tofree` free slabs back to the page allocator; how many went. */
static u32 drain_freelist(struct slab_kmem_cache *c, u64 tofree)
{
	struct slab_node *n = &c->node;
	u32 nr = 0;
	while (nr < tofree) {
		unsigned long flags;
		spin_lock_irqsave(&n->list_lock, flags);
		if (list_empty(&n->slabs_free)) {
			spin_unlock_irqrestore(&n->list_lock, flags);
			break;
		}
		struct page *slab = list_last_entry(&n->slabs_free, struct page, slab_list);
		list_del(&slab->slab_list);
		n->free_slabs--;
		n->total_slabs--;
		n->free_objects -= c->num;
		spin_unlock_irqrestore(&n->list_lock, flags);
		slab_destroy(c, slab);
		nr++;
	}
	return nr;
}

/* Arrays drained, every free slab freed; 1 if slabs with objects remain. */
int slab_kmem_cache_shrink(struct kmem_cache *s)
{
	struct slab_kmem_cache *c = to_slab(s);
	drain_cpu_caches(c);
	drain_freelist(c, ~0UL);
	return c->node.total_slabs != c->node.free_slabs;
}

void slab_kmem_cache_destroy(struct kmem_cache *s)
{
	if (!s)
		return;
	struct slab_kmem_cache *c = to_slab(s);
	slab_kmem_cache_shrink(s);
	if (c->node.total_slabs) {
		WARN(1, "kmem_cache_destroy %s: Slab cache still has objects when called from %pS",
		     c->name, __builtin_return_address(0));
		return;
	}
	unsigned long fl;
	local_irq_save(fl);
	list_del(&c->list);
	local_irq_restore(fl);
	free_arraycache(c->cpu_cache);
	free_arraycache(c->node.shared);
	slab_kmem_cache_free((struct kmem_cache *)&slab_kmem_cache_boot, c);
}

/*
 * One reap tick (Linux's cache_reap, every 2 s per CPU): each cache's CPU
 * array, unless touched since the last tick, gives a fifth of its limit
 * back; every SLAB_REAP_NODE_TICKS ticks the shared array too, and unless a
 * free slab was taken meanwhile, a fifth of free_limit's worth of free slabs
 * goes back to the page allocator.  Returns the slabs freed.
 */
u64 slab_cache_reap(void)
{
	struct slab_kmem_cache *c;
	u64 freed = 0;
	slab_reap_ticks++;
	list_for_each_entry(c, &slab_kmem_caches, list) {
		struct slab_node *n = &c->node;
		struct array_cache *arrays[2] = { c->cpu_cache, NULL };
		bool node_tick = n->next_reap <= slab_reap_ticks;
		if (node_tick) {
			n->next_reap = slab_reap_ticks + SLAB_REAP_NODE_TICKS;
			arrays[1] = n->shared;
		}
		for (int i = 0; i < 2; i++) {
			struct array_cache *ac = arrays[i];
			unsigned long flags;
			LIST_HEAD(list);
			if (!ac || !ac->avail)
				continue;
			if (ac->touched) {
				ac->touched = 0;
				continue;
			}
			spin_lock_irqsave(&n->list_lock, flags);
			drain_array_locked(c, ac, false, &list);
			spin_unlock_irqrestore(&n->list_lock, flags);
			slabs_destroy(c, &list);
		}
		if (!node_tick)
			continue;
		if (n->free_touched) {
			n->free_touched = 0;
		} else {
			u32 r = drain_freelist(c, (n->free_limit + 5 * c->num - 1) / (5 * c->num));
			c->reaped += r;
			freed += r;
		}
	}
	return freed;
}

/*
 * The reap "timer": an interrupt on this vector runs one reap tick, so the host
 * can fire it in the middle of a workload (m.slab_reap_after(insns)), as
 * Linux's delayed work would land.  Every path it touches runs with
 * interrupts off, so it only ever sees the lists between two operations.
 */
#define SLAB_REAP_VECTOR 0x33
const u8 slab_reap_vector = SLAB_REAP_VECTOR; /* the host reads it */
u64 slab_reap_irqs;

static void slab_reap_irq(struct pt_regs *regs)
{
	(void)regs;
	slab_reap_irqs++;
	slab_cache_reap();
}

/* Under memory pressure: every cache shrunk (arrays drained, free slabs freed). */
u64 slab_kmem_cache_shrink_all(void)
{
	struct slab_kmem_cache *c;
	u64 before = nr_free_pages();
	list_for_each_entry(c, &slab_kmem_caches, list)
		slab_kmem_cache_shrink((struct kmem_cache *)c);
	drain_all_pages();
	u64 after = nr_free_pages();
	return after > before ? after - before : 0;
}

/* The host's /proc/slabinfo write: "name limit batchcount shared". */
int slab_tune_cpucache(struct kmem_cache *s, u32 limit, u32 batchcount, u32 shared)
{
	return do_tune_cpucache(to_slab(s), limit, batchcount, shared);
}

/*
 * Check every free object's poison and every object's red zones (debug
 * caches): Linux's SLAB checks at alloc/free only; this walks the slabs
 * so the host can ask at any time.  Returns the errors found.
 */
u64 slab_validate_slab_cache(struct kmem_cache *s)
{
	struct slab_kmem_cache *c = to_slab(s);
	u64 before = c->errors;
	if (!(c->flags & (SLAB_RED_ZONE | SLAB_POISON)))
		return 0;
	unsigned long flags;
	struct list_head *lists[3] = { &c->node.slabs_partial, &c->node.slabs_full,
				       &c->node.slabs_free };
	spin_lock_irqsave(&c->node.list_lock, flags);
	for (int l = 0; l < 3; l++) {
		struct page *slab;
		list_for_each_entry(slab, lists[l], slab_list) {
			for (u32 i = 0; i < c->num; i++) {
				void *slot = index_to_obj(c, slab, i);
				u64 r1 = c->flags & SLAB_RED_ZONE ? *dbg_redzone1(c, slot) : RED_ACTIVE;
				u64 r2 = c->flags & SLAB_RED_ZONE ? *dbg_redzone2(c, slot) : RED_ACTIVE;
				if ((r1 != RED_ACTIVE && r1 != RED_INACTIVE) || r1 != r2) {
					slab_error(c, "validate_slab_cache", "red zone overwritten");
					pr_err("%px: redzone 1:0x%llx, redzone 2:0x%llx\n", slot, r1, r2);
				}
			}
		}
	}
	spin_unlock_irqrestore(&c->node.list_lock, flags);
	return c->errors - before;
}

u64 slab_kmem_cache_errors(struct kmem_cache *s)
{
	return to_slab(s)->errors;
}

bool slab_kmem_cache_listed(const char *name)
{
	struct slab_kmem_cache *c;
	list_for_each_entry(c, &slab_kmem_caches, list)
		if (!strcmp(c->name, name))
			return true;
	return false;
}

/* --- boot ----------------------------------------------------------------------- */

static void create_slab_kmalloc_cache(int t, unsigned int i)
{
	static const char *const prefix[3] = { "kmalloc-", "kmalloc-rcl-", "dma-kmalloc-" };
	static const slab_flags_t type_flags[3] = { 0, SLAB_RECLAIM_ACCOUNT, SLAB_CACHE_DMA };
	static char names[3][KMALLOC_SHIFT_MAX + 1][SLAB_NAME_LEN];
	u32 size = i == 1 ? 96 : i == 2 ? 192 : 1u << i;
	char *n = names[t][i];
	if (size >= 1024 * 1024)
		snprintf(n, SLAB_NAME_LEN, "%s%uM", prefix[t], size >> 20);
	else if (size >= 1024)
		snprintf(n, SLAB_NAME_LEN, "%s%uk", prefix[t], size >> 10);
	else
		snprintf(n, SLAB_NAME_LEN, "%s%u", prefix[t], size);
	/* power-of-two sizes are naturally aligned (Linux's create_boot_cache) */
	u32 align = (size & (size - 1)) ? 0 : size;
	slab_kmalloc_caches[t][i] = to_slab(slab_kmem_cache_create(
		n, size, align, SLAB_KMALLOC | SLAB_PANIC | type_flags[t], NULL));
}

static u64 slab_shrink_count(struct shrinker *sh, struct shrink_control *sc)
{
	struct slab_kmem_cache *c;
	u64 n = 0;
	(void)sh;
	(void)sc;
	list_for_each_entry(c, &slab_kmem_caches, list)
		n += (c->node.free_slabs << c->gfporder) + c->cpu_cache->avail / c->num;
	return n ? n : SHRINK_EMPTY;
}

static u64 slab_shrink_scan(struct shrinker *sh, struct shrink_control *sc)
{
	(void)sh;
	(void)sc;
	u64 freed = slab_kmem_cache_shrink_all();
	return freed ? freed : SHRINK_STOP;
}

static struct shrinker slab_slab_shrinker = {
	.name = "slab",
	.count_objects = slab_shrink_count,
	.scan_objects = slab_shrink_scan,
};

void slab_kmem_cache_init(void)
{
	extern struct boot_info boot_info;
	slab_debug_setup(boot_info.cmdline);
	if (slab_debug_flags_for("") & ~SLAB_DEBUG_ALLOWED & SLAB_DEBUG_FLAGS)
		printk("slab_debug: SLAB has no 'F' (consistency checks are SLUB's); ignored\n");
	if (nr_free_pages() > (32UL << 20) >> PAGE_SHIFT)
		slab_max_order = SLAB_MAX_ORDER_HI;
	if (!slab_cache_open(&slab_kmem_cache_boot, "kmem_cache", sizeof(struct slab_kmem_cache),
			     0, SLAB_HWCACHE_ALIGN, NULL))
		panic("SLAB: cannot set up kmem_cache");
	for (int t = 0; t < 3; t++) {
		for (unsigned int i = SLAB_KMALLOC_SHIFT_LOW; i <= KMALLOC_SHIFT_MAX; i++) {
			create_slab_kmalloc_cache(t, i);
			if (i == 6)
				create_slab_kmalloc_cache(t, 1);
			if (i == 7)
				create_slab_kmalloc_cache(t, 2);
			if (!t && i == PAGE_SHIFT)
				slab_up = true; /* kmalloc-4k exists: it holds the largest array */
		}
	}
	slab_up = true;
	register_shrinker(&slab_slab_shrinker);
	set_irq_handler(SLAB_REAP_VECTOR, slab_reap_irq);
	printk("SLAB: kmalloc-32..kmalloc-4M, slab_max_order=%u, boot arrays %llu bytes\n",
	       slab_max_order, slab_boot_used);
}

SLAB_DEFINE_KMALLOC_WRAPPERS(slab_, slab_do_kmalloc)
