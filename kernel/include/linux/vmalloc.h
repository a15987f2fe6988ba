/*
 * <linux/vmalloc.h> - virtually contiguous allocations in the vmalloc
 * area, page by page from the page allocator, with an unmapped guard page
 * after each area.  vfree may be called from interrupts (the unmap is then
 * finished in process context); vmalloc itself may sleep (GFP_KERNEL).
 */
#ifndef _LINUX_VMALLOC_H
#define _LINUX_VMALLOC_H
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/types.h>
#include <asm/pgtable_64_types.h>
#include <asm/pgtable_types.h>

#define VM_IOREMAP 0x00000001UL
#define VM_ALLOC 0x00000002UL
#define VM_MAP 0x00000004UL
#define VM_NO_GUARD 0x00000040UL

void *vmalloc(unsigned long size) __malloc;
void *vzalloc(unsigned long size) __malloc;
void *vmalloc_32(unsigned long size) __malloc;
void *__vmalloc(unsigned long size, gfp_t gfp_mask) __malloc;
void *vmalloc_array(size_t n, size_t size) __malloc;
void *vcalloc(size_t n, size_t size) __malloc;
void *vrealloc(const void *p, size_t size, gfp_t flags) __must_check;
void vfree(const void *addr);

/* Map count pages contiguously with protection prot; undo with vunmap (pages stay the caller's). */
void *vmap(struct page **pages, unsigned int count, unsigned long flags, pgprot_t prot);
void vunmap(const void *addr);

struct page *vmalloc_to_page(const void *addr);
unsigned long vmalloc_to_pfn(const void *addr);
/* Flush lazily freed vmalloc ranges from the TLB now. */
void vm_unmap_aliases(void);

#endif
