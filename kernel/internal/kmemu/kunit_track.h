/*
 * <kmemu/kunit_track.h> - which allocations a KUnit case left behind.
 *
 * While a case runs (kunit_tracking set), the allocators report every slab
 * object and page block they hand out or take back; kunit_track_end() keeps
 * those still live in kunit_leaks[] for the host to read (emu/check/kunit.py).
 * The hooks sit behind the static key kunit_track_key (<linux/jump_label.h>):
 * a 5-byte nop until the KUnit runner first begins a suite (kunit_track_prepare(),
 * before the host's per-case snapshot, so cases do not re-patch the text),
 * then a jump to the check of kunit_tracking.
 * Only the allocations the code asked for are recorded: what an allocator
 * allocates for itself (inside fault_nest_enter/exit: a new slab's pages,
 * vmalloc's vm_struct, page array and pages) is not, and a vmalloc area is
 * one record.  The host's failure sweep (emu/check/failures.py) uses the same
 * tracking for its leak check.
 */
#ifndef _KUNIT_TRACK_H
#define _KUNIT_TRACK_H
#include <linux/types.h>
#include <linux/jump_label.h>
#include <kmemu/fault_inject.h> /* fault_nest: allocators' own allocations */

enum kunit_alloc_kind {
	KUNIT_ALLOC_SLAB = 1,  /* a slab object: cache, requested size */
	KUNIT_ALLOC_PAGES = 2, /* a block from the page allocator: order */
	KUNIT_ALLOC_VMALLOC = 3, /* a vmalloc area: requested bytes */
};

#define KUNIT_TRACK_DEPTH 10

struct kunit_alloc_record {
	u64 ptr;   /* object, or page_address() of the block */
	u64 site;  /* return address in the code that asked for it */
	u64 size;  /* requested bytes (slab) or PAGE_SIZE << order */
	u64 cache; /* struct kmem_cache * for slab objects */
	u32 kind;
	u32 order;
	u64 trace[KUNIT_TRACK_DEPTH]; /* return addresses from the allocator up */
};

#define KUNIT_TRACK_MAX 1024

extern bool kunit_tracking;
DECLARE_STATIC_KEY_FALSE(kunit_track_key);
extern struct kunit_alloc_record kunit_leaks[KUNIT_TRACK_MAX];
extern u64 kunit_nr_leaks;
extern u64 kunit_leaks_dropped; /* allocations the table had no room for */

void kunit_track_prepare(void);
void kunit_track_begin(void);
void kunit_track_end(void);
void __kunit_track_alloc(u64 ptr, u64 site, u64 size, u64 cache, u32 kind, u32 order);
void __kunit_track_free(u64 ptr, u32 kind);

#define kunit_track_alloc(ptr, site, size, cache, kind, order)                      \
	do {                                                                          \
		if (static_branch_unlikely(&kunit_track_key) && kunit_tracking)       \
			__kunit_track_alloc((u64)(ptr), (site), (size), (u64)(cache), \
					    (kind), (order));                         \
	} while (0)
/* A slab object and its slab's first page share an address: kind tells them apart. */
#define kunit_track_free(ptr, kind)                              \
	do {                                                     \
		if (static_branch_unlikely(&kunit_track_key) && kunit_tracking) \
			__kunit_track_free((u64)(ptr), (kind));  \
	} while (0)

#endif
