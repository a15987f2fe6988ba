/* mydev: a small module for the loader tests (kmalloc'd records on a list). */
#include <linux/module.h>
#include <linux/printk.h>
#include <linux/slab.h>

struct rec {
	struct rec *next;
	u64 value;
};

static struct rec *head;
static u64 count;
int mydev_initialised = 7;
const char mydev_banner[] = "mydev ready";

u64 mydev_alloc(u64 value)
{
	struct rec *r = kmalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return 0;
	r->value = value;
	r->next = head;
	head = r;
	count++;
	return (u64)r;
}

u64 mydev_count(void)
{
	return count;
}

u64 mydev_sum(void)
{
	u64 s = 0;
	for (struct rec *r = head; r; r = r->next)
		s += r->value;
	return s;
}

/* Dereferences p: an oops inside a module when p is bad. */
u64 mydev_peek(u64 *p)
{
	return *p + count;
}

static int __init mydev_init(void)
{
	printk("%s: %s\n", "mydev", mydev_banner);
	return 0;
}

static void __exit mydev_exit(void)
{
	while (head) {
		struct rec *r = head;
		head = r->next;
		kfree(r);
	}
	count = 0;
	printk("mydev: bye\n");
}

module_init(mydev_init);
module_exit(mydev_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmemu loader test module");

/* THIS_MODULE: the loader's own struct module for this module. */
u64 mydev_this_module(void)
{
	return (u64)THIS_MODULE;
}
