/* <linux/list.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/list.h>

struct thing { int v; struct list_head node; struct hlist_node hash; };
static LIST_HEAD(things);
static HLIST_HEAD(bucket);
int t(struct thing *a, struct thing *b)
{
	struct thing *pos, *n;
	struct hlist_node *tmp;
	LIST_HEAD(cut);
	int sum = 0;
	list_add(&a->node, &things);
	list_add_tail(&b->node, &things);
	list_for_each_entry_safe(pos, n, &things, node)
		sum += pos->v;
	list_cut_position(&cut, &things, &a->node);
	list_cut_before(&cut, &things, things.next);
	list_splice_tail_init(&cut, &things);
	list_bulk_move_tail(&things, &a->node, &a->node);
	list_rotate_to_front(&b->node, &things);
	if (list_first_entry_or_null(&things, struct thing, node) == a)
		sum++;
	list_for_each_entry(pos, &things, node)
		if (list_entry_is_head(pos, &things, node))
			sum--;
	list_del_init_careful(&a->node);
	list_del(&b->node);
	hlist_add_head(&a->hash, &bucket);
	hlist_for_each_entry_safe(pos, tmp, &bucket, hash)
		hlist_del_init(&pos->hash);
	return sum + list_empty(&things) + hlist_empty(&bucket);
}
