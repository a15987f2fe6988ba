/* <linux/jump_label.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/jump_label.h>

DEFINE_STATIC_KEY_FALSE(t_off);
DEFINE_STATIC_KEY_TRUE(t_on);
DECLARE_STATIC_KEY_FALSE(t_off);

int t(int x)
{
	if (static_branch_unlikely(&t_off))
		x += 1;
	if (static_branch_likely(&t_on))
		x += 2;
	if (static_branch_likely(&t_off) || static_branch_unlikely(&t_on))
		x += 4;
	if (static_key_enabled(&t_off))
		static_branch_disable(&t_off);
	else
		static_branch_enable(&t_on);
	return x;
}
