/* <linux/log2.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/log2.h>

_Static_assert(ilog2(4096) == 12 && roundup_pow_of_two(5) == 8 && order_base_2(5) == 3, "c");
int t(unsigned long n) { return ilog2(n) + (int)roundup_pow_of_two(n) + is_power_of_2(n) +
			    (int)rounddown_pow_of_two(n) + order_base_2(n); }
