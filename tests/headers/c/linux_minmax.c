/* <linux/minmax.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/minmax.h>

int t(int a, int b, unsigned int c)
{
	int x = min(a, b) + max(a, b) + clamp(a, -1, 1) + min3(a, b, 0) + max3(a, b, 0);
	swap(a, b);
	return x + (int)min_t(unsigned int, a, c) + (int)max_t(long, b, c) + clamp_t(int, c, 0, 9) +
	       (int)clamp_val(c, 1, 2) + (int)min_not_zero(c, 4u);
}
