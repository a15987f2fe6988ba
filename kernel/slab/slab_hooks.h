/*
 * slab/slab_hooks.h - the optional hooks of every slab allocator, one
 * definition for SLUB (slub.c), SLAB (slab.c) and SLOB (slob.c).
 *
 * Linux's mm/slab.h has slab_pre_alloc_hook / slab_post_alloc_hook and
 * mm/slub.c / mm/slab.c a free hook; kmemu's allocators run the same checks
 * and records at the same places:
 *
 *   slab_pre_alloc_hook()   might_sleep's check (CONFIG_DEBUG_ATOMIC_SLEEP,
 *                           debug_atomic_sleep), failslab / fail-nth
 *   slab_post_alloc_track() KUnit's leak tracking, kmemleak
 *   slab_free_track()       the same two, before the object is given back
 *
 * Each allocator calls them only from code behind the one refcounted
 * slab_hooks_key (<kmemu/alloc_hooks.h>), which every feature above (and the
 * kmem trace events, which each allocator raises itself where Linux's did)
 * takes a count on while it is on: with every feature off an allocation or
 * free pays one 5-byte nop, whichever allocator runs.  Inside, each feature
 * tests its own key or flag.  Inline, so SLUB's out-of-line hook functions
 * compile to the code they always had.
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
 * Before an allocation (Linux's slab_pre_alloc_hook): might_sleep's report for
 * a blocking gfp in atomic context, then failslab.  false: fail it (NULL).
 */
static __always_inline bool slab_pre_alloc_hook(struct kmem_cache *s, gfp_t gfp)
{
	if (debug_atomic_sleep)
		might_alloc(gfp, __FILE__, __LINE__);
	return !should_failslab(s, gfp);
}

/* The same for SLOB's kmalloc, which has no cache: size is the request. */
static __always_inline bool slab_pre_alloc_hook_bytes(u64 size, gfp_t gfp)
{
	if (debug_atomic_sleep)
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
