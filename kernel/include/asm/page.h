/*
 * <asm/page.h> - the page size and the direct map on x86-64: every RAM
 * byte at physical address pa is also at virtual PAGE_OFFSET + pa, so
 * __va/__pa (and virt_to_phys/phys_to_virt) are one addition.
 */
#ifndef _ASM_X86_PAGE_H
#define _ASM_X86_PAGE_H
#include <linux/const.h>
#include <linux/types.h>
#include <linux/bitops.h>

#define PAGE_SHIFT 12
#define PAGE_SIZE (_AC(1, UL) << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))

#define PAGE_OFFSET _AC(0xffff888000000000, UL)

#define __va(x) ((void *)((unsigned long)(x) + PAGE_OFFSET))
#define __pa(x) ((unsigned long)(x) - PAGE_OFFSET)

static inline phys_addr_t virt_to_phys(volatile void *address)
{
	return __pa(address);
}

static inline void *phys_to_virt(phys_addr_t address)
{
	return __va(address);
}

/*
 * The smallest order with (PAGE_SIZE << order) >= size: get_order(1) and
 * get_order(4096) are 0, get_order(4097) is 1.  size 0 gives 52 (undefined in Linux).
 */
static inline __attribute_const__ int get_order(unsigned long size)
{
	size--;
	size >>= PAGE_SHIFT;
	return fls64(size);
}

#endif
