/*
 * <linux/mm.h> - pages and addresses: the page allocator (<linux/gfp.h>),
 * PAGE_SIZE and the direct map (<asm/page.h>), PAGE_ALIGN, and the
 * address tests (virt_addr_valid, is_vmalloc_addr).  struct page stays
 * opaque: the kernel's own definition is internal (kernel/internal).
 */
#ifndef _LINUX_MM_H
#define _LINUX_MM_H
#include <linux/align.h>
#include <linux/gfp.h>
#include <linux/types.h>
#include <asm/page.h>
#include <asm/pgtable_types.h>

#define PAGE_ALIGN(addr) ALIGN(addr, PAGE_SIZE)
#define PAGE_ALIGN_DOWN(addr) ALIGN_DOWN(addr, PAGE_SIZE)
#define PAGE_ALIGNED(addr) IS_ALIGNED((unsigned long)(addr), PAGE_SIZE)
#define offset_in_page(p) ((unsigned long)(p) & ~PAGE_MASK)

#define page_to_virt(page) page_address(page)
#define virt_to_pfn(kaddr) (__pa(kaddr) >> PAGE_SHIFT)
#define pfn_to_virt(pfn) __va((unsigned long)(pfn) << PAGE_SHIFT)

/* True for an address in the direct map of a page that exists (kmalloc, page allocator). */
bool virt_addr_valid(unsigned long addr);
/* True for an address inside the vmalloc area [VMALLOC_START, VMALLOC_END). */
bool is_vmalloc_addr(const void *x);

#endif
