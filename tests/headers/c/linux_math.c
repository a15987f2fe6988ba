/* <linux/math.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/math.h>

_Static_assert(DIV_ROUND_UP(7, 2) == 4 && round_up(9, 8) == 16 && round_down(9, 8) == 8, "m");
long t(long x, unsigned long y) { return roundup(x, 3) + rounddown(x, 3) + DIV_ROUND_CLOSEST(x, 4) +
				  abs(x) + (long)DIV_ROUND_UP_ULL(y, 3); }
