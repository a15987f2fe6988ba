/* <linux/bits.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/bits.h>

_Static_assert(BIT(3) == 8 && GENMASK(3, 0) == 0xf && BIT_ULL(40) == 1ULL << 40, "bits");
_Static_assert(BITS_PER_LONG == 64 && BIT_WORD(65) == 1 && BIT_MASK(65) == 2, "words");
unsigned long long t(void) { return GENMASK_ULL(63, 62); }
