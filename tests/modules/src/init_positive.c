/* An init returning 1: Linux warns and loads it anyway. */
#include <linux/module.h>

static int __init init_positive_init(void)
{
	return 1;
}

static void __exit init_positive_exit(void)
{
}
module_init(init_positive_init);
module_exit(init_positive_exit);
MODULE_LICENSE("GPL");
