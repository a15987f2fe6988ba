/*
 * vmalloc.h - virtually contiguous allocations (vmalloc.c).
 */
#ifndef KMEMU_VMALLOC_H
#define KMEMU_VMALLOC_H
#include <types.h>
#include <gfp.h>
#include <list.h>
#include <mm_types.h>

#define VM_ALLOC 0x00000002UL
#define VM_MAP 0x00000004UL
#define VM_NO_GUARD 0x00000040UL

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

void *vmalloc(u64 size);
void *vzalloc(u64 size);
void *vmalloc_32(u64 size);
void *__vmalloc(u64 size, gfp_t gfp);
void *__vmalloc_node_range(u64 size, u64 align, u64 start, u64 end, gfp_t gfp, u64 vm_flags,
			   u64 caller);
void vfree(const void *addr);
struct page *vmalloc_to_page(const void *addr);
u64 vmalloc_to_pfn(const void *addr);
bool is_vmalloc_addr(const void *addr);
struct vm_struct *find_vm_area(const void *addr);
void vm_unmap_aliases(void);
void *vmap(struct page **pages, u32 count, u64 flags, u64 prot);
void vunmap(const void *addr);
void *vrealloc(const void *p, u64 size, gfp_t gfp);
void *vmalloc_range(u64 size, u64 align, u64 start, u64 end, gfp_t gfp, u64 vm_flags);
void vmalloc_init(void);

#endif
