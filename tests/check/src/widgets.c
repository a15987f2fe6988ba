/*
 * widgets: one allocation pattern (a record, its name, its buffer, a table page),
 * written correctly once and with each classic error-path bug once, for the
 * allocation-failure sweep (tests/check/test_sweep_failures.py).
 */
#include <linux/bug.h>
#include <linux/errno.h>
#include <linux/gfp.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

struct widget {
	struct widget *next;
	char *name;
	u64 *buf;
	unsigned long table; /* one page */
};

struct widget *widgets;

static void widget_free(struct widget *w)
{
	free_page(w->table);
	kvfree(w->buf);
	kfree(w->name);
	kfree(w);
}

/*
 * Correct: every failure undoes what was done and returns -ENOMEM.  The buffer
 * comes from kmalloc quietly first, then vmalloc (a conditional allocation).
 */
int widget_add(u64 n)
{
	struct widget *w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	w->name = kstrdup("widget", GFP_KERNEL);
	if (!w->name)
		goto free_w;
	w->buf = kmalloc_array(n, sizeof(u64), GFP_KERNEL | __GFP_NOWARN);
	if (!w->buf)
		w->buf = vmalloc(n * sizeof(u64));
	if (!w->buf)
		goto free_name;
	w->table = __get_free_page(GFP_KERNEL);
	if (!w->table)
		goto free_buf;
	w->next = widgets;
	widgets = w;
	return 0;
free_buf:
	kvfree(w->buf);
free_name:
	kfree(w->name);
free_w:
	kfree(w);
	return -ENOMEM;
}

/* Bug: when the table page cannot be had, the name and buffer are not freed. */
int widget_add_leaky(u64 n)
{
	struct widget *w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	w->name = kstrdup("widget", GFP_KERNEL);
	if (!w->name)
		goto free_w;
	w->buf = kmalloc_array(n, sizeof(u64), GFP_KERNEL);
	if (!w->buf)
		goto free_name;
	w->table = __get_free_page(GFP_KERNEL);
	if (!w->table)
		goto free_w;
	w->next = widgets;
	widgets = w;
	return 0;
free_name:
	kfree(w->name);
free_w:
	kfree(w);
	return -ENOMEM;
}

/* Bug: the buffer is used without checking that kmalloc_array gave one. */
int widget_add_unchecked(u64 n)
{
	struct widget *w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	w->buf = kmalloc_array(n, sizeof(u64), GFP_KERNEL);
	w->buf[0] = n;
	w->next = widgets;
	widgets = w;
	return 0;
}

/* Bug: a failed name allocation is cleaned up, then reported as success. */
int widget_add_quiet(u64 n)
{
	struct widget *w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	w->name = kstrdup("widget", GFP_KERNEL);
	if (!w->name) {
		kfree(w);
		return 0;
	}
	w->buf = NULL;
	w->next = widgets;
	widgets = w;
	(void)n;
	return 0;
}

/* Bug: a failed name allocation trips a WARN_ON (allocation failure is not a bug). */
int widget_add_warn(u64 n)
{
	struct widget *w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	w->name = kstrdup("widget", GFP_KERNEL);
	if (WARN_ON(!w->name)) {
		kfree(w);
		return -ENOMEM;
	}
	w->next = widgets;
	widgets = w;
	(void)n;
	return 0;
}

/* Bug: the error path gives the table page back with the wrong order. */
int widget_add_badfree(u64 n)
{
	unsigned long table = __get_free_page(GFP_KERNEL);
	if (!table)
		return -ENOMEM;
	struct widget *w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w) {
		free_pages(table, 1);
		return -ENOMEM;
	}
	w->table = table;
	w->next = widgets;
	widgets = w;
	(void)n;
	return 0;
}

/* Returns the record itself (NULL on failure): the caller holds the reference. */
struct widget *widget_new(void)
{
	struct widget *w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		return NULL;
	w->name = kstrdup("widget", GFP_KERNEL);
	if (!w->name) {
		kfree(w);
		return NULL;
	}
	return w;
}

static void __exit widgets_exit(void)
{
	while (widgets) {
		struct widget *w = widgets;
		widgets = w->next;
		widget_free(w);
	}
}
module_exit(widgets_exit);
MODULE_LICENSE("GPL");
