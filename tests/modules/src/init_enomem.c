/* An init that fails with -ENOMEM: the module must not stay loaded. */
#include <linux/module.h>

typedef unsigned long u64;
void *kmalloc(u64 size, unsigned int gfp);
void kfree(const void *p);
static void *held;

static int __init init_enomem_init(void)
{
	held = kmalloc(100, 0xcc0u);
	kfree(held);
	return -12;
}
module_init(init_enomem_init);
MODULE_LICENSE("GPL");
