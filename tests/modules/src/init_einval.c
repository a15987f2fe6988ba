/* An init that fails with -EINVAL: the module must not stay loaded. */
#include <linux/module.h>
#include <linux/slab.h>

static void *held;

static int __init init_einval_init(void)
{
	held = kmalloc(100, GFP_KERNEL);
	kfree(held);
	return -22;
}
module_init(init_einval_init);
MODULE_LICENSE("GPL");
