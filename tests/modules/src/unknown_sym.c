/* Uses one symbol nobody defines and one kernel function that is not exported. */
#include <linux/module.h>
#include <linux/gfp.h>

u64 no_such_function(u64 x);
void *__vmalloc_node_range(u64 size, u64 align, u64 start, u64 end, gfp_t gfp, u64 fl,
			   u64 caller);

u64 unknown_sym_use(u64 x)
{
	return no_such_function(x) + (u64)__vmalloc_node_range(x, 1, 0, 0, 0, 0, 0);
}
MODULE_LICENSE("GPL");
