/* An init that dereferences a bad pointer: the oops names the init function [init_oops]. */
#include <linux/module.h>

static int __init init_oops_init(void)
{
	return *(volatile int *)0x18;
}
module_init(init_oops_init);
MODULE_LICENSE("GPL");
