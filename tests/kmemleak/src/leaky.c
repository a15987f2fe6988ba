/*
 * leaky: one function per kmemleak situation (tests/kmemleak/test_kmemleak.py).
 * Each returns 0 and keeps its pointers only where the test says: in this
 * module's .data/.bss (a root), or nowhere (a leak).
 */
#include <linux/gfp.h>
#include <linux/kmemleak.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

struct node {
	struct node *child;
	u64 payload[7];
};

/* Global, so the compiler keeps these stores (a static never read would go). */
void *kept;             /* a root: module .bss (from init) */
char *kept_middle;      /* a pointer into the middle of an object */
struct page *kept_page; /* a root holding a struct page pointer */
static bool forget_on_exit;

/* Both leak: the child is referenced only from the parent, itself unreferenced. */
int leak_hidden(void)
{
	struct node *parent = kzalloc(sizeof(*parent), GFP_KERNEL);
	if (!parent)
		return -ENOMEM;
	WRITE_ONCE(parent->child, kzalloc(sizeof(*parent->child), GFP_KERNEL)); /* a store kept */
	return 0;
}

/* Not a leak: the only pointer points 40 bytes into the object. */
int keep_middle(void)
{
	char *p = kmalloc(128, GFP_KERNEL);
	kept_middle = p ? p + 40 : NULL;
	return 0;
}

/* Not a leak: alloc_pages() hands out a struct page, and that is what is kept. */
int keep_page(void)
{
	kept_page = alloc_pages(GFP_KERNEL, 1);
	return 0;
}

/* Never reported; still scanned, so its child is referenced. */
int leak_not_leak(void)
{
	struct node *n = kzalloc(sizeof(*n), GFP_KERNEL);
	if (!n)
		return -ENOMEM;
	kmemleak_not_leak(n);
	n->child = kzalloc(sizeof(*n->child), GFP_KERNEL);
	return 0;
}

/* Never reported and never scanned, so its child leaks. */
int leak_ignore(void)
{
	struct node *n = kzalloc(sizeof(*n), GFP_KERNEL);
	if (!n)
		return -ENOMEM;
	kmemleak_ignore(n);
	n->child = kzalloc(sizeof(*n->child), GFP_KERNEL);
	return 0;
}

/* A leaked vmalloc area. */
int leak_vmalloc(void)
{
	return vmalloc(3 * 4096 + 100) ? 0 : -ENOMEM;
}

/* The leak whose report the test compares byte for byte: 32 known bytes first. */
int leak_known(void)
{
	u8 *p = kmalloc(64, GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	for (int i = 0; i < 64; i++) /* volatile: stores to memory nobody reads stay */
		((volatile u8 *)p)[i] = (u8)(i < 16 ? 'A' + i : i);
	return 0;
}

/* Forget the pointer kept since init when the module is unloaded. */
void set_forget_on_exit(void)
{
	forget_on_exit = true;
}

static int __init leaky_init(void)
{
	kept = kmalloc(200, GFP_KERNEL);
	return kept ? 0 : -ENOMEM;
}

static void __exit leaky_exit(void)
{
	if (!forget_on_exit)
		kfree(kept);
	if (kept_page)
		__free_pages(kept_page, 1);
}

module_init(leaky_init);
module_exit(leaky_exit);
MODULE_LICENSE("GPL");
