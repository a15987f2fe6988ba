/*
 * slub.c - object caches, SLUB's design on one CPU.
 *
 * Per cache: the active slab (cpu_slab.slab, "frozen") whose free objects
 * form cpu_slab.freelist; partial slabs (some objects free) on
 * node.partial; full slabs on no list.  A frozen slab's counters say all
 * objects are in use: the free ones belong to the CPU freelist.
 *
 *   fast alloc: pop cpu_slab.freelist with one cmpxchg16b on (freelist, tid)
 *   fast free:  push onto cpu_slab.freelist the same way, when the object's
 *               slab is the active one
 *   slow alloc: (interrupts off) refill from slab->freelist, else a partial
 *               slab, else a new slab from the page allocator (interrupts
 *               back on while the page allocator may sleep, for blocking GFP)
 *   slow free:  push onto slab->freelist under node.list_lock; a full slab
 *               becomes partial, an empty one is freed once min_partial
 *               partial slabs are kept
 *
 * The fast paths are Linux's: no interrupts-off window.  They read tid,
 * then freelist (and slab), and commit with cmpxchg16b (freelist, tid) ->
 * (new head, tid + 1).  An interrupt handler that allocates or frees from
 * the same cache in between bumps tid, so the exchange fails and the path
 * starts over; the slow paths bump tid whenever they change freelist or
 * slab.  tests/slab/test_irq_safety.py delivers an interrupt at every
 * instruction to prove it.  Every optional hook that runs out of line
 * (failslab, slab_debug, KUnit's leak tracking, kmemleak, the kmem trace
 * events, and whatever else registers) sits behind ONE refcounted static key,
 * slab_hooks_key (<kmemu/alloc_hooks.h>): a single 5-byte nop per direction
 * while no such feature is on; when one is, the fast path jumps to
 * slab_alloc_hooks()/slab_free_hooks(), which test each feature's own key.
 * might_sleep's check, on at boot, is not one of them: it is a short inline
 * test behind its own key (slab_might_sleep_report(), slab/slab_hooks.h) that
 * sends only an allocation in atomic context to the hooks, to report.  So at
 * the boot defaults kmalloc(64)+kfree is 87 instructions, 78 with every debug
 * check off (tests/test_bench_counts.py).  kfree checks its address on every
 * path (a pfn compare; a non-slab page must be a large kmalloc's).
 * Whatever the fast paths may call (the slow paths, the
 * hooks) is a noinline function called in tail position, so they keep nothing
 * live across a call and save only %rbx (cmpxchg16b's operand) besides the
 * frame pointer.
 *
 * The free pointer is hardened like CONFIG_SLAB_FREELIST_HARDENED, and
 * set_freepointer() BUGs on the naive double free (object == current head).
 * cache->random is deterministic (boot logs and tests must be repeatable).
 */
#include <linux/export.h>
#include <linux/bug.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <kmemu/bootinfo.h>
#include <kmemu/log.h>
#include <kmemu/memlayout.h>
#include <kmemu/page_alloc.h>
#include <kmemu/slub.h>
#include <kmemu/trace.h>
#include <kmemu/xorshift.h>
#include "slab_hooks.h"


struct list_head slab_caches = LIST_HEAD_INIT(slab_caches);
static struct kmem_cache kmem_cache_boot;
DEFINE_STATIC_KEY_FALSE(slub_debug_enabled);
DEFINE_STATIC_KEY_FALSE(slab_hooks_key); /* <kmemu/alloc_hooks.h> */
static struct kmem_cache *kmem_cache = &kmem_cache_boot;
static u64 slab_random_state = XORSHIFT_SEED;

/* slab_debug's key on, for good, with its count on the hooks key. */
void slub_debug_enable(void)
{
	if (static_key_enabled(&slub_debug_enabled))
		return;
	static_branch_enable(&slub_debug_enabled);
	static_branch_inc(&slab_hooks_key);
}

/* --- hardened free pointers --------------------------------------------- */

/* freeptr_mask/get_freepointer/set_freepointer_raw are in slab.h */
static inline void set_freepointer(const struct kmem_cache *s, void *object, void *fp)
{
	BUG_ON(object == fp); /* naive detection of double free or corruption */
	set_freepointer_raw(s, object, fp);
}

/* --- slabs ---------------------------------------------------------------- */

static inline void *slab_address(const struct page *slab)
{
	return page_address(slab);
}

static gfp_t slab_page_gfp(const struct kmem_cache *s, gfp_t gfp)
{
	gfp &= ~(__GFP_ZERO | __GFP_DMA | __GFP_DMA32 | __GFP_RECLAIMABLE);
	if (s->flags & SLAB_CACHE_DMA)
		gfp |= __GFP_DMA;
	if (s->flags & SLAB_RECLAIM_ACCOUNT)
		gfp |= __GFP_RECLAIMABLE;
	if (s->order)
		gfp |= __GFP_COMP;
	return gfp;
}

/* Called with interrupts off; turns them on around a page allocation that may block. */
static struct page *new_slab(struct kmem_cache *s, gfp_t gfp)
{
	bool blocking = gfpflags_allow_blocking(gfp);
	if (blocking)
		local_irq_enable();
	struct page *slab = fault_nested(alloc_pages(slab_page_gfp(s, gfp), s->order));
	if (blocking)
		local_irq_disable();
	if (!slab)
		return NULL;

	set_page_flag(slab, PG_slab);
	slab->slab_cache = s;
	u8 *base = (u8 *)slab_address(slab) + s->red_left_pad;
	for (u32 i = 0; i < s->objects; i++) {
		void *obj = base + (u64)i * s->size;
		if (unlikely(s->flags & SLAB_DEBUG_FLAGS))
			setup_object_debug(s, obj);
		if (s->ctor)
			s->ctor(obj);
		set_freepointer(s, obj, i + 1 < s->objects ? base + (u64)(i + 1) * s->size : NULL);
	}
	slab->freelist = base;
	slab_set_counters(slab, 0, s->objects, false);

	unsigned long flags;
	spin_lock_irqsave(&s->node.list_lock, flags);
	s->node.nr_slabs++;
	s->node.total_objects += s->objects;
	spin_unlock_irqrestore(&s->node.list_lock, flags);
	kasan_poison_new_slab(s, slab); /* red zone until allocated */
	return slab;
}

static void discard_slab(struct kmem_cache *s, struct page *slab)
{
	unsigned long flags;
	spin_lock_irqsave(&s->node.list_lock, flags);
	s->node.nr_slabs--;
	s->node.total_objects -= s->objects;
	spin_unlock_irqrestore(&s->node.list_lock, flags);
	clear_page_flag(slab, PG_slab);
	slab->slab_cache = NULL;
	slab->freelist = NULL;
	slab->private = 0;
	__free_pages(slab, s->order);
}

/*
 * A direct-map address whose struct page exists: one section-bitmap test (an
 * address below PAGE_OFFSET wraps past MAX_SECTIONS).  Unlike __virt_addr_valid
 * no max_pfn test: a present section's struct pages all exist, and a pfn past
 * max_pfn is never a slab page.
 */
static __always_inline bool slab_addr_valid(u64 addr)
{
	return pfn_valid((addr - PAGE_OFFSET) >> PAGE_SHIFT);
}

static __always_inline struct page *__virt_to_slab(const void *addr)
{
	if (unlikely(!slab_addr_valid((u64)addr)))
		return NULL;
	struct page *p = __compound_head(__direct_virt_to_page(addr));
	return likely(PageSlab(p)) ? p : NULL;
}

struct page *virt_to_slab(const void *addr)
{
	return __virt_to_slab(addr);
}

static void add_partial_locked(struct kmem_cache *s, struct page *slab)
{
	list_add_tail(&slab->slab_list, &s->node.partial);
	s->node.nr_partial++;
}

static void remove_partial_locked(struct kmem_cache *s, struct page *slab)
{
	list_del(&slab->slab_list);
	s->node.nr_partial--;
}

/*
 * Give the active slab back: its CPU freelist joins slab->freelist, and it
 * goes on the partial list, or is freed when empty and enough are kept.
 * Interrupts off.
 */
static void deactivate_slab(struct kmem_cache *s, struct page *slab, void *freelist)
{
	u32 nfree = 0;
	void *tail = NULL;
	for (void *o = freelist; o; o = get_freepointer(s, o)) {
		nfree++;
		tail = o;
	}
	unsigned long flags;
	spin_lock_irqsave(&s->node.list_lock, flags);
	if (tail) {
		set_freepointer_raw(s, tail, slab->freelist);
		slab->freelist = freelist;
	}
	u32 inuse = slab_inuse(slab) - nfree;
	slab_set_counters(slab, inuse, s->objects, false);
	bool discard = !inuse && s->node.nr_partial >= s->min_partial;
	if (!discard && slab->freelist)
		add_partial_locked(s, slab);
	spin_unlock_irqrestore(&s->node.list_lock, flags);
	if (discard)
		discard_slab(s, slab);
}

/* Make slab the active one: all its free objects move to the CPU freelist. */
static void freeze_slab(struct kmem_cache *s, struct page *slab)
{
	s->cpu_slab.tid++; /* an interrupted fast path must not commit */
	s->cpu_slab.freelist = slab->freelist;
	slab->freelist = NULL;
	slab_set_counters(slab, s->objects, s->objects, true);
	s->cpu_slab.slab = slab;
	s->cpu_slab.slab_base_neg = -(u64)slab_address(slab); /* no reference: <kmemu/slub.h> */
	s->cpu_slab.slab_bytes = PAGE_SIZE << s->order;
}

/* No active slab any more (tid bumped by the caller). */
static void unfreeze_cpu_slab(struct kmem_cache_cpu *c)
{
	c->slab = NULL;
	c->slab_bytes = 0;
}

/* The refill (Linux's ___slab_alloc); called by __slab_alloc with interrupts off. */
static noinline void *___slab_alloc(struct kmem_cache *s, gfp_t gfp)
{
	struct kmem_cache_cpu *c = &s->cpu_slab;
	unsigned long flags;

	for (;;) {
		if (c->freelist)
			break; /* refilled by an interrupt while we had them on */
		if (c->slab) {
			struct page *slab = c->slab;
			c->tid++;
			unfreeze_cpu_slab(c);
			deactivate_slab(s, slab, NULL); /* full: leaves it on no list */
		}
		spin_lock_irqsave(&s->node.list_lock, flags);
		if (!list_empty(&s->node.partial)) {
			struct page *slab = list_first_entry(&s->node.partial, struct page, slab_list);
			remove_partial_locked(s, slab);
			spin_unlock_irqrestore(&s->node.list_lock, flags);
			freeze_slab(s, slab);
			continue;
		}
		spin_unlock_irqrestore(&s->node.list_lock, flags);

		struct page *slab = new_slab(s, gfp);
		if (!slab)
			return NULL;
		if (c->slab || c->freelist) {
			/* an interrupt installed an active slab meanwhile: keep ours as partial */
			spin_lock_irqsave(&s->node.list_lock, flags);
			add_partial_locked(s, slab);
			spin_unlock_irqrestore(&s->node.list_lock, flags);
			continue;
		}
		freeze_slab(s, slab);
	}
	void *object = c->freelist;
	c->freelist = get_freepointer(s, object);
	c->tid++;
	c->alloc_slow++;
	return object;
}

/*
 * (freelist, tid) == (old, tid) ? set (new, tid + 1), true : false, in one
 * instruction (cmpxchg16b, no lock prefix: the data is this CPU's, as
 * Linux's this_cpu_cmpxchg_double).
 */
/* KASAN builds take the hooks path on every allocation and free (compile-time). */
#ifdef CONFIG_KASAN
#define SLAB_HOOKS_KASAN 1
#else
#define SLAB_HOOKS_KASAN 0
#endif

static __always_inline bool cpu_freelist_cmpxchg(struct kmem_cache_cpu *c, void *old, u64 tid,
						 void *new)
{
	bool ok;
	__asm__ __volatile__("cmpxchg16b %[fl]"
			     : "=@ccz"(ok), [fl] "+m"(c->freelist), "+m"(c->tid), "+a"(old), "+d"(tid)
			     : "b"(new), "c"(tid + 1)
			     : "memory");
	return ok;
}

/*
 * After an object was taken: slab_debug checks, __GFP_ZERO, KASAN, KUnit's
 * record; a new feature's post-allocation hook goes here, behind its own flag
 * (it takes a count on slab_hooks_key when on, <kmemu/alloc_hooks.h>).
 * Out of line so the fast path keeps nothing live across a call.
 */
static noinline void *slab_post_alloc(struct kmem_cache *s, void *object, gfp_t gfp,
				      u64 orig_size, u64 caller)
{
	if (static_branch_unlikely(&slub_debug_enabled) && (s->flags & SLAB_DEBUG_FLAGS))
		alloc_debug_processing(s, virt_to_slab(object), object, orig_size, caller);
	if (gfp & __GFP_ZERO)
		memset(object, 0, s->object_size);
	kasan_slab_alloc(s, object, orig_size, caller);
	slab_post_alloc_track(object, s, orig_size, caller, s->object_size, s->flags);
	return object;
}

/*
 * The slow path (Linux's __slab_alloc): interrupts off around ___slab_alloc,
 * then the post-allocation hooks.  Out of line: the fast path calls it in tail
 * position, so it keeps nothing live across a call.
 */
static noinline void *__slab_alloc(struct kmem_cache *s, gfp_t gfp, u64 orig_size, u64 caller)
{
	unsigned long flags;
	local_irq_save(flags);
	void *object = ___slab_alloc(s, gfp);
	local_irq_restore(flags);
	return object ? slab_post_alloc(s, object, gfp, orig_size, caller) : NULL;
}

/*
 * The per-CPU freelist pop; hooks: whether slab_post_alloc runs (it always
 * does for __GFP_ZERO).  The slow path runs slab_post_alloc itself.
 */
static __always_inline void *slab_alloc_nocheck(struct kmem_cache *s, gfp_t gfp, u64 orig_size,
						u64 caller, bool hooks)
{
	struct kmem_cache_cpu *c = &s->cpu_slab;
	void *object;
	u64 tid;
redo:
	tid = READ_ONCE(c->tid);
	barrier(); /* tid before freelist: an interrupt after this read bumps it */
	object = READ_ONCE(c->freelist);
	if (unlikely(!object))
		return __slab_alloc(s, gfp, orig_size, caller);
	if (unlikely(!cpu_freelist_cmpxchg(c, object, tid, get_freepointer(s, object))))
		goto redo;
	c->alloc_fast++;
	if (hooks || unlikely(gfp & __GFP_ZERO))
		return slab_post_alloc(s, object, gfp, orig_size, caller);
	return object;
}

/*
 * slab_hooks_key is on: the pre-allocation hooks (slab_hooks.h, shared with
 * SLAB and SLOB: might_sleep's check, failslab; a new feature's go there),
 * then the allocation with slab_post_alloc.  Out of line and called in
 * tail position, so the fast path keeps nothing live for it.
 */
static __always_inline void *slab_alloc_hooked(struct kmem_cache *s, gfp_t gfp, u64 orig_size,
					       u64 caller)
{
	if (!slab_pre_alloc_hook(s, gfp))
		return NULL;
	return slab_alloc_nocheck(s, gfp, orig_size, caller, true);
}

/*
 * The kmalloc or kmem_cache_alloc trace event (Linux raises them in those two
 * functions; here both reach slab_alloc, so a kmalloc cache's object is a
 * kmalloc).  Turning either on also takes a count on slab_hooks_key, so the
 * hooks run.  A failed allocation is traced too.
 */
static __always_inline void trace_slab_alloc(struct kmem_cache *s, void *object, gfp_t gfp,
					     u64 orig_size, u64 caller)
{
	if (s->flags & SLAB_KMALLOC)
		trace_kmalloc(caller, object, orig_size, s->size, gfp, NUMA_NO_NODE);
	else
		trace_kmem_cache_alloc(caller, object, s, gfp, NUMA_NO_NODE);
}

/* kfree or kmem_cache_free, told apart as trace_slab_alloc does; before the free, as Linux. */
static __always_inline void trace_slab_free(struct kmem_cache *s, void *object, u64 caller)
{
	if (s->flags & SLAB_KMALLOC)
		trace_kfree(caller, object);
	else
		trace_kmem_cache_free(caller, object, s);
}

/* kmalloc or kmem_cache_alloc is being traced: allocate, then the event. */
static noinline void *slab_alloc_traced(struct kmem_cache *s, gfp_t gfp, u64 orig_size, u64 caller)
{
	void *object = slab_alloc_hooked(s, gfp, orig_size, caller);
	trace_slab_alloc(s, object, gfp, orig_size, caller);
	return object;
}

static noinline void *slab_alloc_hooks(struct kmem_cache *s, gfp_t gfp, u64 orig_size, u64 caller)
{
	/* the events' own keys first: untraced, the hooks keep their registers (two nops) */
	if (static_branch_unlikely(&__tracepoint_kmalloc) ||
	    static_branch_unlikely(&__tracepoint_kmem_cache_alloc))
		return slab_alloc_traced(s, gfp, orig_size, caller);
	return slab_alloc_hooked(s, gfp, orig_size, caller);
}

/*
 * Linux's slab_alloc_node: the hooks path when a feature that needs it is on
 * (slab_hooks_key) or when might_sleep's inline check must report; else the
 * per-CPU freelist pop.
 */
static __always_inline void *slab_alloc(struct kmem_cache *s, gfp_t gfp, u64 orig_size,
					 u64 caller)
{
	if (SLAB_HOOKS_KASAN || static_branch_unlikely(&slab_hooks_key) ||
	    slab_might_sleep_report(gfp))
		return slab_alloc_hooks(s, gfp, orig_size, caller);
	return slab_alloc_nocheck(s, gfp, orig_size, caller, false);
}

static noinline void __slab_free(struct kmem_cache *s, struct page *slab, void *object)
{
	unsigned long flags;
	spin_lock_irqsave(&s->node.list_lock, flags);
	void *prior = slab->freelist;
	set_freepointer(s, object, prior);
	slab->freelist = object;
	u32 inuse = slab_inuse(slab) - 1;
	bool frozen = slab_frozen(slab);
	slab_set_counters(slab, inuse, s->objects, frozen);
	s->cpu_slab.free_slow++;
	bool discard = false;
	if (!frozen) {
		if (!inuse && s->node.nr_partial >= s->min_partial) {
			if (prior)
				remove_partial_locked(s, slab);
			discard = true;
		} else if (!prior) {
			add_partial_locked(s, slab); /* was full */
		}
	}
	spin_unlock_irqrestore(&s->node.list_lock, flags);
	if (discard)
		discard_slab(s, slab);
}

static noinline void __slab_free_irqsave(struct kmem_cache *s, struct page *slab, void *object)
{
	unsigned long flags;
	local_irq_save(flags);
	__slab_free(s, slab, object);
	local_irq_restore(flags);
}

/*
 * kmem_cache_free's fast path: push onto the CPU freelist when object lies in
 * the active slab, one range test that also says object belongs to s (the
 * check Linux's hardened cache_from_obj makes).  false: not in the active
 * slab, nothing done.
 */
static __always_inline bool slab_free_active(struct kmem_cache *s, void *object)
{
	struct kmem_cache_cpu *c = &s->cpu_slab;
	u64 tid;
	void *head;
	do {
		tid = READ_ONCE(c->tid);
		barrier(); /* tid before slab_base_neg/freelist, as in slab_alloc_nocheck */
		if (unlikely((u64)object + READ_ONCE(c->slab_base_neg) >= READ_ONCE(c->slab_bytes)))
			return false;
		head = READ_ONCE(c->freelist);
		set_freepointer(s, object, head);
	} while (unlikely(!cpu_freelist_cmpxchg(c, head, tid, object)));
	c->free_fast++;
	return true;
}

/* The fast path: push onto the CPU freelist with one cmpxchg16b, else __slab_free. */
static __always_inline void do_slab_free(struct kmem_cache *s, struct page *slab, void *object)
{
	struct kmem_cache_cpu *c = &s->cpu_slab;
redo:;
	u64 tid = READ_ONCE(c->tid);
	barrier();
	if (unlikely(slab != READ_ONCE(c->slab))) {
		__slab_free_irqsave(s, slab, object);
		return;
	}
	void *head = READ_ONCE(c->freelist);
	set_freepointer(s, object, head);
	if (unlikely(!cpu_freelist_cmpxchg(c, head, tid, object)))
		goto redo;
	c->free_fast++;
}

/*
 * slab_hooks_key is on: slab_debug's checks, KUnit's record, KASAN's
 * quarantine, each behind its own flag (a new feature's free hook goes here
 * too), then the free.
 */
static noinline void slab_free_hooks(struct kmem_cache *s, struct page *slab, void *object,
				     u64 caller)
{
	if (static_branch_unlikely(&__tracepoint_kfree) ||
	    static_branch_unlikely(&__tracepoint_kmem_cache_free))
		trace_slab_free(s, object, caller);
	if (static_branch_unlikely(&slub_debug_enabled) && (s->flags & SLAB_DEBUG_FLAGS) &&
	    !free_debug_processing(s, slab, object, caller))
		return; /* reported; the object is left alone */
	slab_free_track(object, s->flags);
	if (kasan_slab_free(s, slab, object, caller))
		return; /* quarantined (or a bad free, reported) */
	do_slab_free(s, slab, object);
}

static __always_inline void slab_free(struct kmem_cache *s, struct page *slab, void *object,
				      u64 caller)
{
	if (SLAB_HOOKS_KASAN || static_branch_unlikely(&slab_hooks_key)) {
		slab_free_hooks(s, slab, object, caller);
		return;
	}
	do_slab_free(s, slab, object);
}

/* kmalloc's other slab sizes and types: 0, the DMA and reclaimable caches, above 192. */
static noinline void *kmalloc_other(size_t size, gfp_t gfp, u64 caller)
{
	if (unlikely(!size))
		return ZERO_SIZE_PTR;
	return slab_alloc(kmalloc_slab(size, gfp), gfp, size, caller);
}

/*
 * kmalloc: the size class of the common type (no DMA, not reclaimable, 1..192
 * bytes: size_index[]) inline, then the allocation fast path inline, as
 * Linux's __kmalloc -> kmalloc_slab -> slab_alloc; more than
 * KMALLOC_MAX_CACHE_SIZE: kmalloc_large; everything else in kmalloc_other,
 * each called in tail position so the fast path keeps nothing live.
 */
void *kmalloc(size_t size, gfp_t gfp)
{
	if (unlikely(size - 1 >= 192 || (gfp & (__GFP_DMA | __GFP_RECLAIMABLE)))) {
		if (unlikely(size > KMALLOC_MAX_CACHE_SIZE))
			return kmalloc_large(size, gfp, (u64)__builtin_return_address(0));
		return kmalloc_other(size, gfp, (u64)__builtin_return_address(0));
	}
	return slab_alloc(kmalloc_caches[KMALLOC_NORMAL][kmalloc_size_index[(size - 1) / 8]], gfp,
			  size, (u64)__builtin_return_address(0));
}
EXPORT_SYMBOL(kmalloc);

/*
 * kzalloc, kmalloc_array and kcalloc: kmalloc for their caller.  Linux's are inline,
 * so their trace event's call_site (and slab_debug's owner) is whoever called them;
 * here each inlines kmalloc's body with that call site (here, not in kmalloc.c, for
 * the inline fast path).
 */
static __always_inline void *kmalloc_caller(size_t size, gfp_t gfp, u64 caller)
{
	if (unlikely(size - 1 >= 192 || (gfp & (__GFP_DMA | __GFP_RECLAIMABLE)))) {
		if (unlikely(size > KMALLOC_MAX_CACHE_SIZE))
			return kmalloc_large(size, gfp, caller);
		return kmalloc_other(size, gfp, caller);
	}
	return slab_alloc(kmalloc_caches[KMALLOC_NORMAL][kmalloc_size_index[(size - 1) / 8]], gfp,
			  size, caller);
}

void *kzalloc(size_t size, gfp_t gfp)
{
	return kmalloc_caller(size, gfp | __GFP_ZERO, (u64)__builtin_return_address(0));
}
EXPORT_SYMBOL(kzalloc);

/* n * size bytes, or NULL when that overflows. */
void *kmalloc_array(size_t n, size_t size, gfp_t gfp)
{
	size_t bytes;
	if (check_mul_overflow(n, size, &bytes))
		return NULL;
	return kmalloc_caller(bytes, gfp, (u64)__builtin_return_address(0));
}
EXPORT_SYMBOL(kmalloc_array);

void *kcalloc(size_t n, size_t size, gfp_t gfp)
{
	size_t bytes;
	if (check_mul_overflow(n, size, &bytes))
		return NULL;
	return kmalloc_caller(bytes, gfp | __GFP_ZERO, (u64)__builtin_return_address(0));
}
EXPORT_SYMBOL(kcalloc);

void *kmem_cache_alloc(struct kmem_cache *s, gfp_t gfp)
{
	return slab_alloc(s, gfp, s->object_size, (u64)__builtin_return_address(0));
}
EXPORT_SYMBOL(kmem_cache_alloc);

/* kmalloc(): the requested size matters to the kmalloc red zone. */
/* kmem_cache_alloc with the object zeroed (__GFP_ZERO). */
void *kmem_cache_zalloc(struct kmem_cache *s, gfp_t gfp)
{
	return slab_alloc(s, gfp | __GFP_ZERO, s->object_size, (u64)__builtin_return_address(0));
}
EXPORT_SYMBOL(kmem_cache_zalloc);

/* The object size the cache was created with. */
unsigned int kmem_cache_size(struct kmem_cache *s)
{
	return s->object_size;
}
EXPORT_SYMBOL(kmem_cache_size);

/*
 * Everything but an object of the active slab with no hook on: the address
 * and cache checks (a WARN, or slab_debug's "Wrong slab cache" report), then
 * the hooks and the free.
 */
static noinline void kmem_cache_free_checked(struct kmem_cache *s, void *obj, u64 caller)
{
	struct page *slab = __virt_to_slab(obj);
	if (unlikely(slab && slab->slab_cache != s && (s->flags & SLAB_CONSISTENCY_CHECKS))) {
		free_debug_processing(s, slab, obj, caller);
		return; /* reports "Wrong slab cache" */
	}
	if (WARN(!slab || slab->slab_cache != s, "kmem_cache_free(%s): %px is not an object of this cache",
		 s->name, obj))
		return;
	slab_free(s, slab, obj, caller);
}

void kmem_cache_free(struct kmem_cache *s, void *obj)
{
	if (unlikely(!obj))
		return;
	if (SLAB_HOOKS_KASAN || static_branch_unlikely(&slab_hooks_key) ||
	    unlikely(!slab_free_active(s, obj)))
		kmem_cache_free_checked(s, obj, (u64)__builtin_return_address(0));
}
EXPORT_SYMBOL(kmem_cache_free);

/* Free an object whose slab the caller already found (KASAN's quarantine release). */
void __kmem_cache_free(struct page *slab, void *obj, u64 caller)
{
	slab_free(slab->slab_cache, slab, obj, caller);
}

/* kfree of an address no kmalloc returned: WARN, nothing freed (the machine goes on). */
static noinline void kfree_invalid(const void *p)
{
	WARN(1, "kfree: %px is not a kmalloc'ed address", p);
}

/*
 * A page that is not a slab: a large kmalloc's compound block when
 * page_type says so and p is its start (then freed); anything else (a page
 * from alloc_pages, a free page, an address inside a block) WARNs and nothing
 * is freed.  Linux 6.1's free_large_kmalloc WARNs only for an order-0 page
 * and frees it anyway: kmemu's page_type record tells more.
 */
static noinline void kfree_large(struct page *head, const void *p)
{
	if (unlikely(head->page_type != PAGE_TYPE_LARGE_KMALLOC || p != page_address(head))) {
		kfree_invalid(p);
		return;
	}
	head->page_type = 0;
	__free_pages(head, PageHead(head) ? head[1].compound_order : 0);
}

/*
 * slab_hooks_key is on: the address is checked first (WARN for one whose
 * struct page does not exist), then kfree as usual with the hooks.
 */
static noinline void kfree_hooks(const void *p, u64 caller)
{
	if (unlikely(!slab_addr_valid((u64)p))) {
		kfree_invalid(p);
		return;
	}
	struct page *head = __compound_head(__direct_virt_to_page(p));
	if (likely(PageSlab(head))) {
		slab_free_hooks(head->slab_cache, head, (void *)p, caller);
	} else {
		trace_kfree(caller, p); /* the kfree event holds slab_hooks_key: always here */
		kfree_large(head, p);
	}
}

/* kfree(NULL) and kfree(ZERO_SIZE_PTR) do nothing, but Linux traces them: out of line, so
 * kfree itself keeps one static-key site (slab_hooks_key's). */
static noinline void kfree_null(const void *p, u64 caller)
{
	trace_kfree(caller, p);
}

/*
 * kfree: the object's page, its head, and PG_slab say which cache (or a large
 * kmalloc's compound block).  Always checked, hooks or not, and cheaply: the
 * address must be in the direct map below max_pfn (one compare on the pfn the
 * lookup computes anyway; Linux's virt_to_folio faults on anything else and
 * oopses, kmemu WARNs and goes on), and a page that is not a slab must be a
 * large kmalloc's (kfree_large; Linux's WARNs for order 0 only).  An address
 * in a hole of the physical map below max_pfn faults on its missing struct
 * page, as Linux's would.  With any hook on, kfree_hooks checks that the
 * struct page exists too.
 */
void kfree(const void *p)
{
	if (unlikely(ZERO_OR_NULL_PTR(p))) {
		kfree_null(p, (u64)__builtin_return_address(0));
		return;
	}
	if (SLAB_HOOKS_KASAN || static_branch_unlikely(&slab_hooks_key)) {
		kfree_hooks(p, (u64)__builtin_return_address(0));
		return;
	}
	u64 pfn = ((u64)p - PAGE_OFFSET) >> PAGE_SHIFT; /* below PAGE_OFFSET wraps past max_pfn */
	if (unlikely(pfn >= max_pfn)) {
		kfree_invalid(p);
		return;
	}
	struct page *head = mem_map + pfn;
	u64 ch = READ_ONCE(head->compound_head);
	if (unlikely(ch & 1)) /* a tail page (Linux's compound_head) */
		head = (struct page *)(ch - 1);
	if (likely(PageSlab(head)))
		do_slab_free(head->slab_cache, head, (void *)p);
	else
		kfree_large(head, p);
}
EXPORT_SYMBOL(kfree);

/* nr objects into p[]; returns nr, or 0 with nothing allocated. */
int kmem_cache_alloc_bulk(struct kmem_cache *s, gfp_t gfp, size_t nr, void **p)
{
	for (size_t i = 0; i < nr; i++) {
		p[i] = slab_alloc(s, gfp, s->object_size, (u64)__builtin_return_address(0));
		if (!p[i]) {
			kmem_cache_free_bulk(s, i, p);
			return 0;
		}
	}
	return (int)nr;
}
EXPORT_SYMBOL(kmem_cache_alloc_bulk);

void kmem_cache_free_bulk(struct kmem_cache *s, size_t nr, void **p)
{
	for (size_t i = 0; i < nr; i++)
		kmem_cache_free(s, p[i]);
}
EXPORT_SYMBOL(kmem_cache_free_bulk);

/* Give the active slab back and free every empty partial slab. */
int kmem_cache_shrink(struct kmem_cache *s)
{
	unsigned long flags;
	kasan_cache_shrink(s); /* quarantined objects go back to their slabs first */
	local_irq_save(flags);
	struct kmem_cache_cpu *c = &s->cpu_slab;
	if (c->slab) {
		struct page *slab = c->slab;
		void *fl = c->freelist;
		c->tid++;
		unfreeze_cpu_slab(c);
		c->freelist = NULL;
		deactivate_slab(s, slab, fl);
	}
	for (;;) {
		struct page *victim = NULL, *slab;
		unsigned long f2;
		spin_lock_irqsave(&s->node.list_lock, f2);
		list_for_each_entry(slab, &s->node.partial, slab_list) {
			if (!slab_inuse(slab)) {
				victim = slab;
				break;
			}
		}
		if (victim)
			remove_partial_locked(s, victim);
		spin_unlock_irqrestore(&s->node.list_lock, f2);
		if (!victim)
			break;
		discard_slab(s, victim);
	}
	local_irq_restore(flags);
	return 0;
}
EXPORT_SYMBOL(kmem_cache_shrink);

/* --- cache creation ---------------------------------------------------------- */

/* Smallest order <= SLUB_MAX_ORDER leaving at most 1/16 (then 1/8, 1/4) unused. */
static u32 calculate_order(u32 size)
{
	u32 min_objects = 8; /* 4 * (fls(nr_cpus) + 1) with one CPU */
	for (u32 fraction = 16; fraction > 1; fraction /= 2) {
		for (u32 order = 0; order <= SLUB_MAX_ORDER; order++) {
			u64 slab_size = PAGE_SIZE << order;
			if (slab_size / size < min_objects && order < SLUB_MAX_ORDER)
				continue;
			if (slab_size % size <= slab_size / fraction)
				return order;
		}
	}
	return SLUB_MAX_ORDER;
}


static bool kmem_cache_open(struct kmem_cache *s, const char *name, u32 size, u32 align,
			    slab_flags_t flags, void (*ctor)(void *))
{
	memset(s, 0, sizeof(*s));
	strscpy(s->name, name, sizeof(s->name));
	flags |= slab_debug_flags_for(name);
	s->object_size = size;
	s->flags = flags;
	s->ctor = ctor;
	s->align = calculate_alignment(flags, align, size);
	/*
	 * Layout, offsets from the object pointer (Linux's order):
	 *   [-red_left_pad, 0) left red zone (Z)   [0, object_size) the object
	 *   [object_size, inuse) right red zone (Z, at least a word)
	 *   offset: the free pointer, after the object when it must not overlap it
	 *   (constructor, poisoning, red zones); mid-object otherwise (Linux 5.7+)
	 *   track_offset: alloc and free struct track (U); orig_size_offset (kmalloc, Z|U)
	 */
	s->inuse = ALIGN(max(size, 8u), 8u);
	if ((flags & SLAB_RED_ZONE) && s->inuse == size)
		s->inuse += 8;
	u32 end = s->inuse;
	if (ctor || (flags & (SLAB_POISON | SLAB_RED_ZONE))) {
		s->offset = end;
		end += 8;
	} else {
		s->offset = ALIGN_DOWN(size / 2, 8u);
	}
	if (flags & SLAB_STORE_USER) {
		s->track_offset = end;
		end += 2 * sizeof(struct track);
	}
	if ((flags & SLAB_KMALLOC) && (flags & (SLAB_RED_ZONE | SLAB_STORE_USER))) {
		s->orig_size_offset = end;
		end += 8;
	}
	kasan_cache_create(s, &end);
	if (flags & SLAB_RED_ZONE)
		s->red_left_pad = ALIGN(8u, s->align);
	s->size = ALIGN(s->red_left_pad + end, s->align);
	if (s->size > (PAGE_SIZE << SLUB_MAX_ORDER))
		return false;
	s->order = calculate_order(s->size);
	s->objects = (u32)(((PAGE_SIZE << s->order) - 0) / s->size);
	s->min_partial = 5; /* Linux: clamp(ilog2(size) / 2, 5, 10) */
	u32 l = 31 - (u32)__builtin_clz(s->size);
	if (l / 2 > s->min_partial)
		s->min_partial = min(l / 2, 10u);
	s->random = xorshift64(&slab_random_state);
	if (flags & SLAB_DEBUG_FLAGS)
		slub_debug_enable(); /* Linux's kmem_cache_open does too */
	s->refcount = 1;
	s->node.list_lock = __SPIN_LOCK_UNLOCKED(s->node.list_lock);
	INIT_LIST_HEAD(&s->node.partial);
	unsigned long fl;
	local_irq_save(fl);
	list_add(&s->list, &slab_caches); /* newest first, as Linux's create_cache */
	local_irq_restore(fl);
	return true;
}

struct kmem_cache *kmem_cache_create(const char *name, u32 size, u32 align, slab_flags_t flags,
				     void (*ctor)(void *))
{
	struct kmem_cache *s = NULL;
	/* align is bounded before calculate_alignment() rounds it (u32: it would wrap to 0) */
	if (!name || !size || size > (PAGE_SIZE << SLUB_MAX_ORDER) - 8 ||
	    align > (PAGE_SIZE << SLUB_MAX_ORDER) || (align & (align - 1)))
		goto fail;
	s = slab_alloc(kmem_cache, GFP_KERNEL, sizeof(struct kmem_cache), 0);
	if (!s)
		goto fail;
	if (!kmem_cache_open(s, name, size, align, flags, ctor)) {
		kmem_cache_free(kmem_cache, s);
		s = NULL;
		goto fail;
	}
	return s;
fail:
	if (flags & SLAB_PANIC)
		panic("kmem_cache_create: Failed to create slab '%s'", name ? name : "(null)");
	printk("kmem_cache_create(%s) failed\n", name ? name : "(null)");
	return NULL;
}
EXPORT_SYMBOL(kmem_cache_create);

void kmem_cache_destroy(struct kmem_cache *s)
{
	if (!s)
		return;
	kmem_cache_shrink(s);
	if (s->node.nr_slabs) {
		list_leaked_objects(s);
		WARN(1, "kmem_cache_destroy %s: Slab cache still has objects when called from %pS",
		     s->name, __builtin_return_address(0));
		return;
	}
	unsigned long fl;
	local_irq_save(fl);
	list_del(&s->list);
	local_irq_restore(fl);
	kmem_cache_free(kmem_cache, s);
}
EXPORT_SYMBOL(kmem_cache_destroy);

/* --- the slab shrinker: empty slabs back to the page allocator under pressure --- */

static u64 slab_shrink_count(struct shrinker *sh, struct shrink_control *sc)
{
	struct kmem_cache *s;
	u64 n = 0;
	(void)sh;
	(void)sc;
	unsigned long flags; /* interrupt handlers change partial lists too */
	local_irq_save(flags);
	list_for_each_entry(s, &slab_caches, list) {
		struct page *slab;
		list_for_each_entry(slab, &s->node.partial, slab_list)
			if (!slab_inuse(slab))
				n += 1UL << s->order;
	}
	local_irq_restore(flags);
	return n ? n : SHRINK_EMPTY;
}

/* Every cache's empty slabs back to the page allocator, min_partial ignored. */
u64 kmem_cache_shrink_all(void)
{
	struct kmem_cache *s;
	u64 before = nr_free_pages();
	list_for_each_entry(s, &slab_caches, list) {
		u32 keep = s->min_partial;
		s->min_partial = 0;
		kmem_cache_shrink(s);
		s->min_partial = keep;
	}
	drain_all_pages();
	u64 after = nr_free_pages();
	return after > before ? after - before : 0;
}

static u64 slab_shrink_scan(struct shrinker *sh, struct shrink_control *sc)
{
	(void)sh;
	(void)sc;
	u64 freed = kmem_cache_shrink_all();
	return freed ? freed : SHRINK_STOP;
}

static struct shrinker slab_shrinker = {
	.name = "slab",
	.count_objects = slab_shrink_count,
	.scan_objects = slab_shrink_scan,
};

void kmalloc_caches_init(void);

void kmem_cache_init(void)
{
	extern struct boot_info boot_info;
	slab_debug_setup(boot_info.cmdline);
	kmem_cache_open(&kmem_cache_boot, "kmem_cache", sizeof(struct kmem_cache), 0,
			SLAB_HWCACHE_ALIGN, NULL);
	kmalloc_caches_init();
	register_shrinker(&slab_shrinker);
	printk("SLUB: HWalign=%d, Order=0-%d, MinObjects=0, CPUs=1, Nodes=1\n", CACHE_LINE_SIZE,
	       SLUB_MAX_ORDER);
}
