// SPDX-License-Identifier: GPL-2.0
/*
 * recfifo.c - a FIFO of variable-length records, each one kmalloc'd.
 *
 * The example module of kmemu's README ("Your own code"): a Linux module
 * written against <linux/...> headers only, small enough to read in a minute.
 *
 *   struct recfifo   a list of records under a spinlock (taken with irqsave,
 *                    so interrupt handlers may push and pop too)
 *   struct rec       one record: list node, length, then the bytes
 *                    (a flexible array, sized with struct_size())
 *
 * The caller passes the GFP flags: GFP_KERNEL from process context,
 * GFP_ATOMIC from an interrupt or with a lock held. Allocation happens
 * before the lock is taken, so a failed push changes nothing.
 * The module owns one FIFO, recfifo_global, made at init and freed (with
 * every record still in it) at exit.
 */
#include <linux/errno.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>

struct recfifo {
	spinlock_t lock;
	struct list_head head;	/* oldest record first */
	size_t count;		/* records in the FIFO */
};

struct rec {
	struct list_head node;
	size_t len;
	u8 data[];
};

struct recfifo *recfifo_global;
EXPORT_SYMBOL(recfifo_global);

/* A new, empty FIFO, or NULL when memory is short. */
struct recfifo *recfifo_create(gfp_t gfp)
{
	struct recfifo *f = kmalloc(sizeof(*f), gfp);

	if (!f)
		return NULL;
	spin_lock_init(&f->lock);
	INIT_LIST_HEAD(&f->head);
	f->count = 0;
	return f;
}
EXPORT_SYMBOL(recfifo_create);

/* Copy len bytes at data into a new record at the tail. 0, or -ENOMEM and nothing changed. */
int recfifo_push(struct recfifo *f, const void *data, size_t len, gfp_t gfp)
{
	unsigned long flags;
	struct rec *r = kmalloc(struct_size(r, data, len), gfp);

	if (!r)
		return -ENOMEM;
	r->len = len;
	memcpy(r->data, data, len);
	spin_lock_irqsave(&f->lock, flags);
	list_add_tail(&r->node, &f->head);
	f->count++;
	spin_unlock_irqrestore(&f->lock, flags);
	return 0;
}
EXPORT_SYMBOL(recfifo_push);

/*
 * Take the oldest record into buf (size bytes) and free it; its length, or
 * -ENODATA when the FIFO is empty, or -EMSGSIZE (record left in place) when
 * buf is too small.
 */
ssize_t recfifo_pop(struct recfifo *f, void *buf, size_t size)
{
	unsigned long flags;
	struct rec *r;
	ssize_t len;

	spin_lock_irqsave(&f->lock, flags);
	r = list_first_entry_or_null(&f->head, struct rec, node);
	if (!r) {
		spin_unlock_irqrestore(&f->lock, flags);
		return -ENODATA;
	}
	if (r->len > size) {
		spin_unlock_irqrestore(&f->lock, flags);
		return -EMSGSIZE;
	}
	list_del(&r->node);
	f->count--;
	spin_unlock_irqrestore(&f->lock, flags);
	len = r->len;
	memcpy(buf, r->data, len);
	kfree(r);
	return len;
}
EXPORT_SYMBOL(recfifo_pop);

/* Records in the FIFO. */
size_t recfifo_len(struct recfifo *f)
{
	return READ_ONCE(f->count);
}
EXPORT_SYMBOL(recfifo_len);

/* Free every record, then the FIFO. Nobody may use f any more. */
void recfifo_destroy(struct recfifo *f)
{
	struct rec *r, *tmp;

	list_for_each_entry_safe(r, tmp, &f->head, node)
		kfree(r);
	kfree(f);
}
EXPORT_SYMBOL(recfifo_destroy);

static int __init recfifo_init(void)
{
	recfifo_global = recfifo_create(GFP_KERNEL);
	if (!recfifo_global)
		return -ENOMEM;
	pr_info("recfifo: ready\n");
	return 0;
}

static void __exit recfifo_exit(void)
{
	recfifo_destroy(recfifo_global);
	pr_info("recfifo: gone\n");
}

module_init(recfifo_init);
module_exit(recfifo_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("A FIFO of kmalloc'd variable-length records");
