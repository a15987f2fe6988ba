/*
 * kmemu/vmap.h - the vmalloc allocator's internals (vmalloc.c): areas and
 * the range allocator.  The API is <linux/vmalloc.h>.
 */
#ifndef KMEMU_VMALLOC_H
#define KMEMU_VMALLOC_H
#include <linux/types.h>
#include <linux/gfp.h>
#include <linux/list.h>
#include <linux/vmalloc.h>
#include <kmemu/mm_types.h>

struct vm_struct {
	void *addr;
	u64 size; /* including the guard page, as /proc/vmallocinfo shows */
	u64 flags;
	struct page **pages;
	u32 nr_pages;
	u32 pad;
	u64 caller;
};

/*
 * A range of the vmalloc area: free (in the free tree, augmented with the
 * largest free block of its subtree), busy (in the busy tree, vm set) or
 * lazily freed (on the purge list, unmapped but not yet flushed).
 */
struct vmap_area {
	u64 va_start, va_end;
	struct vmap_area *left, *right; /* treap children */
	u64 prio;
	u64 subtree_max_size;
	struct list_head list; /* purge list */
	struct vm_struct *vm;
};

void *__vmalloc_node_range(u64 size, u64 align, u64 start, u64 end, gfp_t gfp, u64 vm_flags,
			   u64 caller);
struct vm_struct *find_vm_area(const void *addr);
void *vmalloc_range(u64 size, u64 align, u64 start, u64 end, gfp_t gfp, u64 vm_flags);
void vmalloc_init(void);

#endif
