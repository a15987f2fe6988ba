/* <linux/sizes.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/sizes.h>

_Static_assert(SZ_4K == 4096 && SZ_1M == 0x100000 && SZ_2G == 0x80000000 && SZ_4G == 1ULL << 32, "s");
unsigned long long t(void) { return SZ_64G + SZ_1; }
