// SPDX-License-Identifier: GPL-2.0
/* A module with one memory bug per function, for KASAN (tests/kasan). */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>
#include <linux/string.h>

char mydev_names[10];
static volatile int sink;

/* Off by one: kmalloc(18) and byte 18 written. */
noinline int mydev_fill(int n)
{
	char *p = kmalloc(n, GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	for (int i = 0; i <= n; i++)
		p[i] = 'x';
	kfree(p);
	return 0;
}

noinline int mydev_use_after_free(void)
{
	int *p = kmalloc(32, GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	p[1] = 7;
	kfree(p);
	return p[1];
}

noinline int mydev_double_free(void)
{
	void *p = kmalloc(32, GFP_KERNEL);
	kfree(p);
	kfree(p);
	return 0;
}

noinline int mydev_invalid_free(void)
{
	char *p = kmalloc(64, GFP_KERNEL);
	kfree(p + 8);
	kfree(p);
	return 0;
}

noinline int mydev_global(int i)
{
	mydev_names[i] = 1;
	return 0;
}

noinline int mydev_vmalloc(int n)
{
	char *p = vmalloc(n);
	if (!p)
		return -ENOMEM;
	sink = p[n];
	vfree(p);
	return 0;
}

noinline int mydev_page_uaf(void)
{
	unsigned long a = __get_free_pages(GFP_KERNEL, 0);
	if (!a)
		return -ENOMEM;
	free_pages(a, 0);
	return ((volatile char *)a)[100];
}

noinline int mydev_stack(int i)
{
	volatile char buf[16];
	buf[0] = 0;
	buf[i] = 1;
	return buf[0];
}

/* Clean: many allocations, every access inside them. */
noinline int mydev_churn(int rounds)
{
	int sum = 0;
	for (int r = 0; r < rounds; r++) {
		int n = 8 + (r * 13) % 200;
		char *p = kmalloc(n, GFP_KERNEL);
		if (!p)
			return -ENOMEM;
		memset(p, r, n);
		for (int i = 0; i < n; i++)
			sum += p[i];
		kfree(p);
	}
	return sum & 0x7fffffff;
}

static int __init mydev_init(void) { return 0; }
static void __exit mydev_exit(void) {}
module_init(mydev_init);
module_exit(mydev_exit);
MODULE_LICENSE("GPL");
