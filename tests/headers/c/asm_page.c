/* <asm/page.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <asm/page.h>

unsigned long t(void *p, phys_addr_t a)
{
	_Static_assert(PAGE_OFFSET == 0xffff888000000000UL, "direct map base");
	return __pa(p) + (unsigned long)__va(a) + virt_to_phys(p) + (unsigned long)phys_to_virt(a) +
	       (unsigned long)get_order(a) + PAGE_SIZE;
}
