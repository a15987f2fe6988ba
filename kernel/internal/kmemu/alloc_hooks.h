/*
 * <kmemu/alloc_hooks.h> - the allocators' one static key per direction for
 * every optional hook.
 *
 * The fast paths of the slab allocators (kmem_cache_alloc/kmalloc,
 * kmem_cache_free/kfree: SLUB's, and SLAB's and SLOB's behind slab=) and of
 * the page allocator (the order-0 pcp alloc and free) pay ONE 5-byte nop for
 * all optional features together:
 *
 *   slab_hooks_key  SLUB: slab_alloc_hooks() before/after an allocation,
 *                   slab_free_hooks() before a free (kernel/slab/slub.c);
 *                   SLAB, SLOB: their *_hooks() functions (slab.c, slob.c).
 *                   The features' code is one definition for all three:
 *                   kernel/slab/slab_hooks.h.  The kmem trace events hold
 *                   it too while on.
 *   page_hooks_key  page allocator: __alloc_pages_hooks() and
 *                   __free_pages_hooks() (kernel/page_alloc.c)
 *
 * Both are refcounted (static_branch_inc/dec, Linux's static_key_slow_inc/
 * dec): a feature takes one count on each key whose hooks it needs when it
 * turns on, and gives it back when it turns off; the hooks then test the
 * feature's own flag (or its own static key, a nop there).  Users today:
 * slab_debug (slub_debug_enabled, slab), KUnit's leak tracking (both),
 * fault injection (both), might_sleep's checks (debug_atomic_sleep, both),
 * the page allocator's bad-page checks at free (page_alloc_debug, page).
 *
 * A new feature: put its call in slab/slab_hooks.h (every slab allocator)
 * or the hook functions of page_alloc.c behind its own flag or key, and
 * static_branch_inc() the hooks key(s) when it turns on (static_branch_dec()
 * when it turns off).  Never add a test to the fast path itself:
 * tests/test_bench_counts.py would show it.  KASAN builds always take the
 * hooks (compile-time, SLAB_HOOKS_KASAN).  Process context only (text_poke).
 */
#ifndef _KMEMU_ALLOC_HOOKS_H
#define _KMEMU_ALLOC_HOOKS_H
#include <linux/jump_label.h>

DECLARE_STATIC_KEY_FALSE(slab_hooks_key);
DECLARE_STATIC_KEY_FALSE(page_hooks_key);

/* CONFIG_DEBUG_ATOMIC_SLEEP's might_sleep in both allocators, and the page
 * allocator's bad-page checks at free; on at boot.  Change them only with
 * alloc_debug_set() (it keeps the hooks keys' counts). */
extern bool debug_atomic_sleep, page_alloc_debug;
void alloc_debug_set(u64 atomic_sleep, u64 page_checks);

#endif
