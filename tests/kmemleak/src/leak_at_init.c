/* leak_at_init: its init allocates and forgets (tests/kmemleak/test_kmemleak_qemu.py). */
#include <linux/module.h>
#include <linux/slab.h>

static int __init leak_at_init_init(void)
{
	return kmalloc(96, GFP_KERNEL) ? 0 : -ENOMEM;
}

module_init(leak_at_init_init);
MODULE_LICENSE("GPL");
