/* twin_a and twin_b both define twin_value(). */
#include <linux/module.h>

unsigned long twin_value(void)
{
	return 0xa;
}
MODULE_LICENSE("GPL");
