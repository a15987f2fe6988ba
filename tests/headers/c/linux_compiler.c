/* <linux/compiler.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/compiler.h>

static int shared;
int t(int x)
{
	int y = READ_ONCE(shared);
	WRITE_ONCE(shared, x);
	OPTIMIZER_HIDE_VAR(y);
	barrier();
	if (likely(x) || unlikely(y))
		return y;
	return __same_type(x, y) + __is_constexpr(3);
}
static __always_inline int inl(void) { return 1; }
noinline __must_check __maybe_unused int t2(void) { return inl(); }
