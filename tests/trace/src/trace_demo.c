/*
 * trace_demo.c - functions whose call trees the function_graph tests check.
 *
 * demo_tail reaches demo_leaf by a jmp (a tail call): this kernel is built with
 * frame pointers and without sibling-call optimisation, so the jump is written in
 * assembly.  demo_oops allocates, then reads through a NULL pointer two calls down.
 */
#include <linux/module.h>
#include <linux/slab.h>

MODULE_LICENSE("GPL");

struct demo { long a; long *p; };

noinline long demo_leaf(long x) { return x * 3 + 1; }

long demo_tail(long x);
asm(".text\n"
    ".globl demo_tail\n"
    ".type demo_tail, @function\n"
    "demo_tail:\n"
    "\taddq $1, %rdi\n"
    "\tjmp demo_leaf\n"
    ".size demo_tail, . - demo_tail\n");

/* demo_twice: two calls of demo_tail, each tail-calling demo_leaf. */
noinline long demo_twice(long x) { return demo_tail(x) + demo_tail(x + 1); }

noinline long demo_crash(struct demo *d) { return *d->p; }

noinline long demo_oops(long x)
{
	struct demo *d = kmalloc(sizeof(*d), GFP_KERNEL);

	if (!d)
		return -1;
	d->a = x;
	d->p = NULL;
	return demo_crash(d) + d->a;
}
