/*
 * slab/slab_hooks.h - the optional hooks of every slab allocator, one
 * definition for SLUB (slub.c), SLAB (slab.c) and SLOB (slob.c).
 *
 * Linux's mm/slab.h has slab_pre_alloc_hook / slab_post_alloc_hook and
 * mm/slub.c / mm/slab.c a free hook; kmemu's allocators run the same checks
 * and records at the same places:
 *
 *   slab_might_sleep_report()  on the fast path itself: might_sleep's test
 *   slab_pre_alloc_hook()   might_sleep's report (CONFIG_DEBUG_ATOMIC_SLEEP,
 *                           debug_atomic_sleep), failslab / fail-nth
 *   slab_post_alloc_track() KUnit's leak tracking, kmemleak
 *   slab_free_track()       the same two, before the object is given back
 *
 * Design: what is off costs one instruction (a nop, or for might_sleep's
 * check a jmp over it), what is on costs only itself.  Each
 * feature has its own static key (kmemleak_key, kunit_track_key,
 * fault_inject_key, slub_debug_enabled, the trace points' __tracepoint_*,
 * debug_atomic_sleep_key), tested where its work is.  The features that run
 * out of line also hold a count on the one refcounted slab_hooks_key
 * (<kmemu/alloc_hooks.h>), which sends each fast path to its allocator's
 * out-of-line *_hooks() function; with all of them off a free pays that one
 * nop, and an allocation that nop and might_sleep's site, whichever allocator
 * runs.
 *
 * might_sleep's check is on at boot (kmemu is a debug kernel), so it must not
 * send every allocation to the hooks: it holds no count on slab_hooks_key.
 * Each allocation fast path tests it inline instead, behind its own key:
 * slab_might_sleep_report() is a nop and, for a gfp that may block, a look at
 * the preempt count and the interrupt flag (nine instructions in SLUB); only
 * an allocation in atomic context, which must report, goes to the hooks path,
 * where slab_pre_alloc_hook() prints the report and the allocation carries on.
 * Frees never sleep and do not test it.
 *
 * Inline, so SLUB's out-of-line hook functions compile to the code they
 * always had.
 */
#ifndef KMEMU_SLAB_HOOKS_H
#define KMEMU_SLAB_HOOKS_H
#include <linux/types.h>
#include <linux/slab.h>
#include <kmemu/alloc_hooks.h>
#include <kmemu/fault_inject.h>
#include <kmemu/kmemleak.h>
#include <kmemu/kunit_track.h>
#include <kmemu/page_alloc.h>
#include <kmemu/trace.h>

/*
 * might_sleep's check on an allocation fast path (Linux's might_alloc ->
 * might_sleep_if): true when gfp may block and the caller is in atomic context
 * (preempt count or interrupts off) with debug_atomic_sleep on, i.e. when the
 * allocation must take the hooks path so that slab_pre_alloc_hook() reports.
 * Compiled likely (on at boot): its site is a nop while the key is on and a
 * jmp over the test, one instruction, while debug_atomic_sleep is off.
 */
static __always_inline bool slab_might_sleep_report(gfp_t gfp)
{
	return static_branch_likely(&debug_atomic_sleep_key) && might_alloc_in_atomic(gfp);
}

/*
 * Before an allocation (Linux's slab_pre_alloc_hook): might_sleep's report for
 * a blocking gfp in atomic context, then failslab.  false: fail it (NULL).
 */
static __always_inline bool slab_pre_alloc_hook(struct kmem_cache *s, gfp_t gfp)
{
	if (static_branch_unlikely(&debug_atomic_sleep_key))
		might_alloc(gfp, __FILE__, __LINE__);
	return !should_failslab(s, gfp);
}

/* The same for SLOB's kmalloc, which has no cache: size is the request. */
static __always_inline bool slab_pre_alloc_hook_bytes(u64 size, gfp_t gfp)
{
	if (static_branch_unlikely(&debug_atomic_sleep_key))
		might_alloc(gfp, __FILE__, __LINE__);
	return !should_failslab_bytes(size, gfp);
}

/*
 * After an object was handed out (the records of Linux's slab_post_alloc_hook):
 * KUnit's tracker (cache: the cache, 0 for SLOB's kmalloc, which has none) and
 * kmemleak (leak_size bytes from object; cache_flags' SLAB_NOLEAKTRACE skips it).
 * Macros, not functions: leak_size and cache_flags are read only behind
 * kmemleak's key, so SLUB's hook functions load nothing more than before.
 */
#define slab_post_alloc_track(object, cache, orig_size, caller, leak_size, cache_flags)  \
	do {                                                                             \
		kunit_track_alloc((object), (caller), (orig_size), (cache),              \
				  KUNIT_ALLOC_SLAB, 0);                                  \
		KMEMLEAK_HOOK(__kmemleak_slab_alloc((object), (leak_size), (cache_flags))); \
	} while (0)

/* Before an object is given back: KUnit's tracker and kmemleak forget it. */
#define slab_free_track(object, cache_flags)                                   \
	do {                                                                   \
		kunit_track_free((object), KUNIT_ALLOC_SLAB);                  \
		KMEMLEAK_HOOK(__kmemleak_slab_free((object), (cache_flags)));   \
	} while (0)

#endif
