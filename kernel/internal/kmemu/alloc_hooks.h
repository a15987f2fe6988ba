/*
 * <kmemu/alloc_hooks.h> - the allocators' static keys for their optional
 * hooks: one shared key per allocator family for the out-of-line hooks, and
 * might_sleep's own key for the one check that is on at boot.
 *
 * The fast paths of the slab allocators (kmem_cache_alloc/kmalloc,
 * kmem_cache_free/kfree: SLUB's, and SLAB's and SLOB's behind slab=) and of
 * the page allocator (the order-0 pcp alloc and free) pay ONE 5-byte nop for
 * every optional feature that needs the out-of-line hooks:
 *
 *   slab_hooks_key  SLUB: slab_alloc_hooks() before/after an allocation,
 *                   slab_free_hooks() before a free (kernel/slab/slub.c);
 *                   SLAB, SLOB: their *_hooks() functions (slab.c, slob.c).
 *                   The features' code is one definition for all three:
 *                   kernel/slab/slab_hooks.h.
 *   page_hooks_key  page allocator: __alloc_pages_general() and
 *                   __free_pages_hooks() (kernel/page_alloc.c)
 *
 * Both are refcounted (static_branch_inc/dec, Linux's static_key_slow_inc/
 * dec): a feature takes one count on each key whose hooks it needs when it
 * turns on, and gives it back when it turns off; the hooks then test the
 * feature's own key (a nop there while it is off).  Users and their own keys:
 *
 *   feature                          own key / flag           slab    page
 *   kmem trace events                __tracepoint_kmalloc ... yes     yes
 *   kmemleak                         kmemleak_key             yes     yes
 *   KUnit's leak tracking            kunit_track_key          yes     yes
 *   failslab / fail_page_alloc       fault_inject_key         yes     yes
 *   slab_debug                       slub_debug_enabled       yes
 *   might_sleep (DEBUG_ATOMIC_SLEEP) debug_atomic_sleep_key   inline  yes
 *   bad-page checks at free          page_alloc_debug                 yes
 *
 * might_sleep's check is the exception on the slab side: it is on at boot (a
 * debug kernel), so it holds no count on slab_hooks_key; instead each slab
 * allocation fast path tests it inline behind its own key
 * (slab_might_sleep_report() in slab/slab_hooks.h: a nop, the gfp bit, the
 * preempt count, the interrupt flag) and only an allocation that must report
 * goes to the hooks path.  Frees never sleep, so they do not test it.  So at
 * the boot defaults a kmalloc pays two nops and the short test, not the hooks
 * of features that are off (Linux 6.1 with CONFIG_DEBUG_ATOMIC_SLEEP calls
 * __might_sleep on every blocking allocation; the trace points, kmemleak,
 * failslab's error injection, KFENCE are each behind their own key or off).
 *
 * A new feature: put its call in slab/slab_hooks.h (every slab allocator)
 * or the hook functions of page_alloc.c behind its own key, and
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
/* on exactly while debug_atomic_sleep is: the slab fast paths' inline check */
DECLARE_STATIC_KEY_FALSE(debug_atomic_sleep_key);

/* CONFIG_DEBUG_ATOMIC_SLEEP's might_sleep in both allocators, and the page
 * allocator's bad-page checks at free; on at boot.  Change them only with
 * alloc_debug_set() (it keeps the keys and their counts). */
extern bool debug_atomic_sleep, page_alloc_debug;
void alloc_debug_set(u64 atomic_sleep, u64 page_checks);

#endif
