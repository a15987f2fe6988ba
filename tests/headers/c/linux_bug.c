/* <linux/bug.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/bug.h>

int t(int x)
{
	BUILD_BUG_ON(sizeof(int) != 4);
	if (WARN_ON(x < 0))
		return -1;
	if (WARN(x > 100, "x is %d", x))
		return -2;
	WARN_ON_ONCE(x == 50);
	WARN_ONCE(x == 51, "once %d", x);
	BUG_ON(x == 99);
	if (x == 98)
		BUG();
	return x;
}
