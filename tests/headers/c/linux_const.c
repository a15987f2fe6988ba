/* <linux/const.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/const.h>

_Static_assert(UL(1) << 40 == 0x10000000000UL && _BITUL(3) == 8 && ULL(5) == 5, "const");
unsigned long t(void) { return _AC(1, UL); }
