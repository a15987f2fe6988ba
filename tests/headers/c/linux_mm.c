/* <linux/mm.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/mm.h>

unsigned long t(void *p, unsigned long a)
{
	_Static_assert(PAGE_SIZE == 4096 && PAGE_SHIFT == 12 && PAGE_MASK == ~0xfffUL, "page");
	if (!virt_addr_valid(a) || is_vmalloc_addr(p) || PAGE_ALIGNED(p))
		return PAGE_ALIGN(a) + offset_in_page(p) + get_order(a);
	return __pa(p) + (unsigned long)__va(a) + virt_to_phys(p) + virt_to_pfn(p) +
	       (unsigned long)pfn_to_virt(1) + pgprot_val(PAGE_KERNEL);
}
