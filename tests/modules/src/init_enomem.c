/* An init that fails with -ENOMEM: the module must not stay loaded. */
#include <linux/module.h>
#include <linux/slab.h>

static void *held;

static int __init init_enomem_init(void)
{
	held = kmalloc(100, GFP_KERNEL);
	kfree(held);
	return -12;
}
module_init(init_enomem_init);
MODULE_LICENSE("GPL");
