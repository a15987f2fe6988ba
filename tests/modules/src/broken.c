/* Does not compile: the diagnostics must reach the user as gcc printed them. */
#include <linux/module.h>

int broken_fn(int x)
{
	return x +;
}
