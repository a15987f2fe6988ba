/*
 * kunit_track.c - allocations made during a KUnit case (see <kmemu/kunit_track.h>).
 *
 * One table: allocations append, frees remove (searching from the newest,
 * which is what a test usually frees first) by moving the last record into
 * the hole.  Hooks can run in interrupt handlers, so the table is changed
 * with interrupts off.  At the end of the case page blocks that became slabs
 * are dropped: those belong to the slab allocator, whose objects are tracked
 * one by one.  Caches of allocator bookkeeping (vmap_area, whose objects move
 * between the busy and free trees) carry SLAB_NOLEAKTRACE, as in Linux.
 */
#include <linux/irqflags.h>
#include <linux/mm.h>
#include <kmemu/fault_inject.h>
#include <kmemu/kunit_track.h>
#include <kmemu/page_alloc.h>
#include <kmemu/slub.h>
#include <kmemu/traps.h>

bool kunit_tracking;
DEFINE_STATIC_KEY_FALSE(kunit_track_key);
struct kunit_alloc_record kunit_leaks[KUNIT_TRACK_MAX];
u64 kunit_nr_leaks;
u64 kunit_leaks_dropped;

/* The allocators' hooks on: once, before the first case (patches their sites). */
void kunit_track_prepare(void)
{
	if (static_key_enabled(&kunit_track_key))
		return;
	static_branch_enable(&kunit_track_key);
	static_branch_inc(&slab_hooks_key); /* the allocators' hooks: <kmemu/alloc_hooks.h> */
	static_branch_inc(&page_hooks_key);
}

void kunit_track_begin(void)
{
	kunit_track_prepare(); /* a no-op once on */
	kunit_nr_leaks = 0;
	kunit_leaks_dropped = 0;
	kunit_tracking = true;
}

void __kunit_track_alloc(u64 ptr, u64 site, u64 size, u64 cache, u32 kind, u32 order)
{
	if (fault_nest || (cache && (((struct kmem_cache *)cache)->flags & SLAB_NOLEAKTRACE)))
		return; /* an allocator's own allocation, or its bookkeeping */
	unsigned long flags;
	local_irq_save(flags);
	if (kunit_nr_leaks < KUNIT_TRACK_MAX) {
		struct kunit_alloc_record *r = &kunit_leaks[kunit_nr_leaks++];
		*r = (struct kunit_alloc_record){
			.ptr = ptr, .site = site, .size = size, .cache = cache,
			.kind = kind, .order = order,
		};
		/* the frames above the allocator: kmalloc(20000)'s pages name its caller too */
		save_stack_trace((u64)__builtin_frame_address(0), r->trace, KUNIT_TRACK_DEPTH);
	} else {
		kunit_leaks_dropped++;
	}
	local_irq_restore(flags);
}

static long find_record(u64 ptr, u32 kind)
{
	for (long i = (long)kunit_nr_leaks - 1; i >= 0; i--)
		if (kunit_leaks[i].ptr == ptr && kunit_leaks[i].kind == kind)
			return i;
	return -1;
}

void __kunit_track_free(u64 ptr, u32 kind)
{
	unsigned long flags;
	local_irq_save(flags);
	long i = find_record(ptr, kind);
	if (i >= 0)
		kunit_leaks[i] = kunit_leaks[--kunit_nr_leaks];
	local_irq_restore(flags);
}

static bool is_slab_page(const struct kunit_alloc_record *r)
{
	return r->kind == KUNIT_ALLOC_PAGES && PageSlab(virt_to_page((void *)r->ptr));
}

/* Stop recording; keep only what is still live and not the allocators' own. */
void kunit_track_end(void)
{
	kunit_tracking = false;
	u64 n = 0;
	for (u64 i = 0; i < kunit_nr_leaks; i++)
		if (!is_slab_page(&kunit_leaks[i]))
			kunit_leaks[n++] = kunit_leaks[i];
	kunit_nr_leaks = n;
}
