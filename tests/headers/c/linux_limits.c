/* <linux/limits.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/limits.h>

_Static_assert(INT_MAX == 0x7fffffff && U32_MAX == 0xffffffffu && S64_MIN < 0, "limits");
_Static_assert(SIZE_MAX == ~0UL && U8_MAX == 255 && S16_MIN == -32768 && LLONG_MAX > 0, "more");
unsigned long t(void) { return ULONG_MAX - SIZE_MAX; }
