/* <linux/build_bug.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/build_bug.h>

static_assert(sizeof(long) == 8);
static_assert(sizeof(int) == 4, "int is 32 bits");
int t(void)
{
	BUILD_BUG_ON(0);
	BUILD_BUG_ON_MSG(0, "never");
	BUILD_BUG_ON_NOT_POWER_OF_2(64);
	return BUILD_BUG_ON_ZERO(0);
}
