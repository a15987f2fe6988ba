/* <asm/pgtable_64_types.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <asm/pgtable_64_types.h>

_Static_assert(VMALLOC_START == 0xffffc90000000000UL && MODULES_VADDR == 0xffffffffa0000000UL, "");
unsigned long t(void) { return VMEMMAP_START + MODULES_LEN; }
