/* <linux/poison.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/poison.h>

_Static_assert(POISON_FREE == 0x6b && POISON_INUSE == 0x5a && SLUB_RED_ACTIVE == 0xcc, "p");
unsigned long t(void) { return (unsigned long)LIST_POISON1 + (unsigned long)LIST_POISON2; }
