/*
 * trace_demo.c - functions whose call trees the function_graph tests check.
 *
 * demo_tail reaches demo_leaf by a jmp (a tail call): this kernel is built with
 * frame pointers and without sibling-call optimisation, so the jump is written in
 * assembly.  demo_oops allocates, then reads through a NULL pointer two calls down.
 * demo_top has a known shape for the ftrace knobs: demo_top -> demo_a -> (kmalloc,
 * kfree, demo_b -> 2 x demo_leaf), then demo_b -> 2 x demo_leaf.  noipa keeps GCC from
 * inlining or cloning (.isra, .constprop) any of them.
 */
#include <linux/module.h>
#include <linux/slab.h>

MODULE_LICENSE("GPL");

struct demo { long a; long *p; };

__attribute__((noipa)) long demo_leaf(long x) { return x * 3 + 1; }

long demo_tail(long x);
asm(".text\n"
    ".globl demo_tail\n"
    ".type demo_tail, @function\n"
    "demo_tail:\n"
    "\taddq $1, %rdi\n"
    "\tjmp demo_leaf\n"
    ".size demo_tail, . - demo_tail\n");

/* demo_twice: two calls of demo_tail, each tail-calling demo_leaf. */
__attribute__((noipa)) long demo_twice(long x) { return demo_tail(x) + demo_tail(x + 1); }

__attribute__((noipa)) long demo_crash(struct demo *d) { return *d->p; }

__attribute__((noipa)) long demo_oops(long x)
{
	struct demo *d = kmalloc(sizeof(*d), GFP_KERNEL);

	if (!d)
		return -1;
	d->a = x;
	d->p = NULL;
	return demo_crash(d) + d->a;
}

__attribute__((noipa)) long demo_b(long x) { return demo_leaf(x) + demo_leaf(x + 1); }

__attribute__((noipa)) long demo_a(long x)
{
	void *p = kmalloc(32, GFP_KERNEL);

	kfree(p);
	return demo_b(x) + 1;
}

__attribute__((noipa)) long demo_top(long x) { return demo_a(x) + demo_b(x); }
