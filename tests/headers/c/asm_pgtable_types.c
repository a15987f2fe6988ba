/* <asm/pgtable_types.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <asm/pgtable_types.h>

unsigned long t(pgprot_t p)
{
	_Static_assert(_PAGE_PRESENT == 1 && _PAGE_RW == 2 && _PAGE_NX == 1UL << 63, "bits");
	return pgprot_val(p) | pgprot_val(PAGE_KERNEL) | pgprot_val(PAGE_KERNEL_RO) |
	       pgprot_val(PAGE_KERNEL_EXEC) | pgprot_val(PAGE_KERNEL_ROX) | pgprot_val(__pgprot(1));
}
