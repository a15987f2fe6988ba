/* A module of two files: multi_main.c calls multi_helper() from multi_helper.c. */
#include <linux/module.h>

unsigned long multi_helper(unsigned long x);

unsigned long multi_twice_plus_one(unsigned long x)
{
	return multi_helper(x) + 1;
}
MODULE_LICENSE("GPL");
