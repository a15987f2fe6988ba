/*
 * <linux/list.h> - circular doubly linked lists with a sentinel head, and
 * hlists (a single-pointer head for hash tables), with Linux's API and
 * semantics.
 *
 * An empty list_head points at itself.  list_del() and hlist_del() leave
 * LIST_POISON1/LIST_POISON2 in the removed entry's links, so using it
 * afterwards faults at a recognisable non-canonical address; the _init
 * variants leave an empty (self-linked / unhashed) entry instead.  The
 * _safe iterators allow removing the current entry.  None of this locks:
 * the caller serialises.
 */
#ifndef _LINUX_LIST_H
#define _LINUX_LIST_H
#include <linux/compiler.h>
#include <linux/container_of.h>
#include <linux/poison.h>
#include <linux/stddef.h>
#include <linux/types.h>
#include <asm/barrier.h>

#define LIST_HEAD_INIT(name) { &(name), &(name) }
#define LIST_HEAD(name) struct list_head name = LIST_HEAD_INIT(name)

static inline void INIT_LIST_HEAD(struct list_head *list)
{
	WRITE_ONCE(list->next, list);
	WRITE_ONCE(list->prev, list);
}

/* Link new between two known consecutive entries. */
static inline void __list_add(struct list_head *new, struct list_head *prev,
			      struct list_head *next)
{
	next->prev = new;
	new->next = next;
	new->prev = prev;
	WRITE_ONCE(prev->next, new);
}

/* Insert new right after head (a stack). */
static inline void list_add(struct list_head *new, struct list_head *head)
{
	__list_add(new, head, head->next);
}

/* Insert new right before head, i.e. at the tail (a queue). */
static inline void list_add_tail(struct list_head *new, struct list_head *head)
{
	__list_add(new, head->prev, head);
}

/* Join prev and next (the entry between them is dropped). */
static inline void __list_del(struct list_head *prev, struct list_head *next)
{
	next->prev = prev;
	WRITE_ONCE(prev->next, next);
}

static inline void __list_del_entry(struct list_head *entry)
{
	__list_del(entry->prev, entry->next);
}

/* Remove entry; its links are poisoned (LIST_POISON1 in next, LIST_POISON2 in prev). */
static inline void list_del(struct list_head *entry)
{
	__list_del_entry(entry);
	entry->next = LIST_POISON1;
	entry->prev = LIST_POISON2;
}

/* Put new where old was (old's links are left as they were). */
static inline void list_replace(struct list_head *old, struct list_head *new)
{
	new->next = old->next;
	new->next->prev = new;
	new->prev = old->prev;
	new->prev->next = new;
}

/* As list_replace, then old becomes an empty list. */
static inline void list_replace_init(struct list_head *old, struct list_head *new)
{
	list_replace(old, new);
	INIT_LIST_HEAD(old);
}

/* Exchange the positions of entry1 and entry2 (in one list or two). */
static inline void list_swap(struct list_head *entry1, struct list_head *entry2)
{
	struct list_head *pos = entry2->prev;

	list_del(entry2);
	list_replace(entry1, entry2);
	if (pos == entry1)
		pos = entry2;
	list_add(entry1, pos);
}

/* Remove entry and make it an empty list (safe to list_empty() or delete again). */
static inline void list_del_init(struct list_head *entry)
{
	__list_del_entry(entry);
	INIT_LIST_HEAD(entry);
}

/*
 * list_del_init() whose final store is a release: a list_empty_careful()
 * on another CPU that sees the entry empty also sees every earlier write.
 */
static inline void list_del_init_careful(struct list_head *entry)
{
	__list_del_entry(entry);
	WRITE_ONCE(entry->prev, entry);
	smp_store_release(&entry->next, entry);
}

/* Move list from wherever it is to just after head. */
static inline void list_move(struct list_head *list, struct list_head *head)
{
	__list_del_entry(list);
	list_add(list, head);
}

/* Move list from wherever it is to the tail of head. */
static inline void list_move_tail(struct list_head *list, struct list_head *head)
{
	__list_del_entry(list);
	list_add_tail(list, head);
}

/*
 * Move the run first..last (consecutive entries of one list, in order) to
 * the tail of head.
 */
static inline void list_bulk_move_tail(struct list_head *head, struct list_head *first,
				       struct list_head *last)
{
	first->prev->next = last->next;
	last->next->prev = first->prev;

	head->prev->next = first;
	first->prev = head->prev;

	last->next = head;
	head->prev = last;
}

static inline int list_is_first(const struct list_head *list, const struct list_head *head)
{
	return list->prev == head;
}

static inline int list_is_last(const struct list_head *list, const struct list_head *head)
{
	return list->next == head;
}

static inline int list_is_head(const struct list_head *list, const struct list_head *head)
{
	return list == head;
}

static inline int list_empty(const struct list_head *head)
{
	return READ_ONCE(head->next) == head;
}

/*
 * Empty, and not half-way through a list_del_init_careful() on another
 * CPU (both links checked, next with acquire ordering).
 */
static inline int list_empty_careful(const struct list_head *head)
{
	struct list_head *next = smp_load_acquire(&head->next);

	return list_is_head(next, head) && (next == READ_ONCE(head->prev));
}

/* The first entry becomes the last. */
static inline void list_rotate_left(struct list_head *head)
{
	struct list_head *first;

	if (!list_empty(head)) {
		first = head->next;
		list_move_tail(first, head);
	}
}

/* Rotate so that list is the first entry of head (head moves to just before it). */
static inline void list_rotate_to_front(struct list_head *list, struct list_head *head)
{
	list_move_tail(head, list);
}

/* Exactly one entry. */
static inline int list_is_singular(const struct list_head *head)
{
	return !list_empty(head) && (head->next == head->prev);
}

static inline void __list_cut_position(struct list_head *list, struct list_head *head,
				       struct list_head *entry)
{
	struct list_head *new_first = entry->next;

	list->next = head->next;
	list->next->prev = list;
	list->prev = entry;
	entry->next = list;
	head->next = new_first;
	new_first->prev = head;
}

/*
 * Move head's entries up to and including entry to list (which should be
 * empty; its old contents are overwritten).  entry == head moves nothing.
 */
static inline void list_cut_position(struct list_head *list, struct list_head *head,
				     struct list_head *entry)
{
	if (list_empty(head))
		return;
	if (list_is_singular(head) && !list_is_head(entry, head) && (entry != head->next))
		return;
	if (list_is_head(entry, head))
		INIT_LIST_HEAD(list);
	else
		__list_cut_position(list, head, entry);
}

/*
 * Move head's entries before entry (not including it) to list (overwritten).
 * entry == head->next moves nothing and leaves list empty.
 */
static inline void list_cut_before(struct list_head *list, struct list_head *head,
				   struct list_head *entry)
{
	if (head->next == entry) {
		INIT_LIST_HEAD(list);
		return;
	}
	list->next = head->next;
	list->next->prev = list;
	list->prev = entry->prev;
	list->prev->next = list;
	head->next = entry;
	entry->prev = head;
}

static inline void __list_splice(const struct list_head *list, struct list_head *prev,
				 struct list_head *next)
{
	struct list_head *first = list->next;
	struct list_head *last = list->prev;

	first->prev = prev;
	prev->next = first;

	last->next = next;
	next->prev = last;
}

/* Insert list's entries after head (list itself is left stale). */
static inline void list_splice(const struct list_head *list, struct list_head *head)
{
	if (!list_empty(list))
		__list_splice(list, head, head->next);
}

/* Insert list's entries at the tail of head (list itself is left stale). */
static inline void list_splice_tail(struct list_head *list, struct list_head *head)
{
	if (!list_empty(list))
		__list_splice(list, head->prev, head);
}

/* list_splice, then list is empty again. */
static inline void list_splice_init(struct list_head *list, struct list_head *head)
{
	if (!list_empty(list)) {
		__list_splice(list, head, head->next);
		INIT_LIST_HEAD(list);
	}
}

/* list_splice_tail, then list is empty again. */
static inline void list_splice_tail_init(struct list_head *list, struct list_head *head)
{
	if (!list_empty(list)) {
		__list_splice(list, head->prev, head);
		INIT_LIST_HEAD(list);
	}
}

#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_first_entry(ptr, type, member) list_entry((ptr)->next, type, member)
#define list_last_entry(ptr, type, member) list_entry((ptr)->prev, type, member)
#define list_first_entry_or_null(ptr, type, member) ({                       \
	struct list_head *head__ = (ptr);                                    \
	struct list_head *pos__ = READ_ONCE(head__->next);                   \
	pos__ != head__ ? list_entry(pos__, type, member) : NULL; })
#define list_next_entry(pos, member) \
	list_entry((pos)->member.next, __typeof__(*(pos)), member)
#define list_prev_entry(pos, member) \
	list_entry((pos)->member.prev, __typeof__(*(pos)), member)
/* The next entry, wrapping from the last to the first. */
#define list_next_entry_circular(pos, head, member)                          \
	(list_is_last(&(pos)->member, head) ?                                \
	 list_first_entry(head, __typeof__(*(pos)), member) : list_next_entry(pos, member))
#define list_prev_entry_circular(pos, head, member)                          \
	(list_is_first(&(pos)->member, head) ?                               \
	 list_last_entry(head, __typeof__(*(pos)), member) : list_prev_entry(pos, member))

/* True when the entry pointer pos is really the head (the iteration is over). */
#define list_entry_is_head(pos, head, member) (&(pos)->member == (head))

#define list_for_each(pos, head) \
	for (pos = (head)->next; !list_is_head(pos, (head)); pos = pos->next)
#define list_for_each_continue(pos, head) \
	for (pos = pos->next; !list_is_head(pos, (head)); pos = pos->next)
#define list_for_each_prev(pos, head) \
	for (pos = (head)->prev; !list_is_head(pos, (head)); pos = pos->prev)
#define list_for_each_safe(pos, n, head)                                     \
	for (pos = (head)->next, n = pos->next; !list_is_head(pos, (head));  \
	     pos = n, n = pos->next)
#define list_for_each_prev_safe(pos, n, head)                                \
	for (pos = (head)->prev, n = pos->prev; !list_is_head(pos, (head));  \
	     pos = n, n = pos->prev)

#define list_for_each_entry(pos, head, member)                               \
	for (pos = list_first_entry(head, __typeof__(*pos), member);         \
	     !list_entry_is_head(pos, head, member);                         \
	     pos = list_next_entry(pos, member))
#define list_for_each_entry_reverse(pos, head, member)                       \
	for (pos = list_last_entry(head, __typeof__(*pos), member);          \
	     !list_entry_is_head(pos, head, member);                         \
	     pos = list_prev_entry(pos, member))
/* pos itself, or the head as an entry when pos is NULL (for the _continue forms). */
#define list_prepare_entry(pos, head, member) \
	((pos) ? : list_entry(head, __typeof__(*pos), member))
#define list_for_each_entry_continue(pos, head, member)                      \
	for (pos = list_next_entry(pos, member);                             \
	     !list_entry_is_head(pos, head, member);                         \
	     pos = list_next_entry(pos, member))
#define list_for_each_entry_continue_reverse(pos, head, member)              \
	for (pos = list_prev_entry(pos, member);                             \
	     !list_entry_is_head(pos, head, member);                         \
	     pos = list_prev_entry(pos, member))
#define list_for_each_entry_from(pos, head, member)                          \
	for (; !list_entry_is_head(pos, head, member);                       \
	     pos = list_next_entry(pos, member))
#define list_for_each_entry_from_reverse(pos, head, member)                  \
	for (; !list_entry_is_head(pos, head, member);                       \
	     pos = list_prev_entry(pos, member))
#define list_for_each_entry_safe(pos, n, head, member)                       \
	for (pos = list_first_entry(head, __typeof__(*pos), member),         \
	     n = list_next_entry(pos, member);                               \
	     !list_entry_is_head(pos, head, member);                         \
	     pos = n, n = list_next_entry(n, member))
#define list_for_each_entry_safe_continue(pos, n, head, member)              \
	for (pos = list_next_entry(pos, member),                             \
	     n = list_next_entry(pos, member);                               \
	     !list_entry_is_head(pos, head, member);                         \
	     pos = n, n = list_next_entry(n, member))
#define list_for_each_entry_safe_from(pos, n, head, member)                  \
	for (n = list_next_entry(pos, member);                               \
	     !list_entry_is_head(pos, head, member);                         \
	     pos = n, n = list_next_entry(n, member))
#define list_for_each_entry_safe_reverse(pos, n, head, member)               \
	for (pos = list_last_entry(head, __typeof__(*pos), member),          \
	     n = list_prev_entry(pos, member);                               \
	     !list_entry_is_head(pos, head, member);                         \
	     pos = n, n = list_prev_entry(n, member))
/* After dropping a lock inside a _safe loop: reload n from pos. */
#define list_safe_reset_next(pos, n, member) n = list_next_entry(pos, member)

/*
 * hlist: a head of one pointer (half the size of a list_head, for hash
 * tables); a node's pprev points at the pointer that points at it.
 * An unhashed node has pprev == NULL.
 */
#define HLIST_HEAD_INIT { .first = NULL }
#define HLIST_HEAD(name) struct hlist_head name = { .first = NULL }
#define INIT_HLIST_HEAD(ptr) ((ptr)->first = NULL)

static inline void INIT_HLIST_NODE(struct hlist_node *h)
{
	h->next = NULL;
	h->pprev = NULL;
}

/* Not on any hlist (never added, or removed with hlist_del_init). */
static inline int hlist_unhashed(const struct hlist_node *h)
{
	return !h->pprev;
}

static inline int hlist_unhashed_lockless(const struct hlist_node *h)
{
	return !READ_ONCE(h->pprev);
}

static inline int hlist_empty(const struct hlist_head *h)
{
	return !READ_ONCE(h->first);
}

static inline void __hlist_del(struct hlist_node *n)
{
	struct hlist_node *next = n->next;
	struct hlist_node **pprev = n->pprev;

	WRITE_ONCE(*pprev, next);
	if (next)
		WRITE_ONCE(next->pprev, pprev);
}

/* Remove n; its links are poisoned (LIST_POISON1 in next, LIST_POISON2 in pprev). */
static inline void hlist_del(struct hlist_node *n)
{
	__hlist_del(n);
	n->next = LIST_POISON1;
	n->pprev = LIST_POISON2;
}

/* Remove n if it is hashed, leaving it unhashed (safe to call twice). */
static inline void hlist_del_init(struct hlist_node *n)
{
	if (!hlist_unhashed(n)) {
		__hlist_del(n);
		INIT_HLIST_NODE(n);
	}
}

static inline void hlist_add_head(struct hlist_node *n, struct hlist_head *h)
{
	struct hlist_node *first = h->first;

	WRITE_ONCE(n->next, first);
	if (first)
		WRITE_ONCE(first->pprev, &n->next);
	WRITE_ONCE(h->first, n);
	WRITE_ONCE(n->pprev, &h->first);
}

/* Insert n before next, which must be on a list. */
static inline void hlist_add_before(struct hlist_node *n, struct hlist_node *next)
{
	WRITE_ONCE(n->pprev, next->pprev);
	WRITE_ONCE(n->next, next);
	WRITE_ONCE(next->pprev, &n->next);
	WRITE_ONCE(*(n->pprev), n);
}

/* Insert n after prev, which must be on a list. */
static inline void hlist_add_behind(struct hlist_node *n, struct hlist_node *prev)
{
	WRITE_ONCE(n->next, prev->next);
	WRITE_ONCE(prev->next, n);
	WRITE_ONCE(n->pprev, &prev->next);

	if (n->next)
		WRITE_ONCE(n->next->pprev, &n->next);
}

/* Make n look hashed without being on a list (pprev points at its own next). */
static inline void hlist_add_fake(struct hlist_node *n)
{
	n->pprev = &n->next;
}

static inline bool hlist_fake(struct hlist_node *h)
{
	return h->pprev == &h->next;
}

/* n is the only node of the list h. */
static inline bool hlist_is_singular_node(struct hlist_node *n, struct hlist_head *h)
{
	return !n->next && n->pprev == &h->first;
}

/* Move all of old's nodes to new (new's own nodes are dropped), old becomes empty. */
static inline void hlist_move_list(struct hlist_head *old, struct hlist_head *new)
{
	new->first = old->first;
	if (new->first)
		new->first->pprev = &new->first;
	old->first = NULL;
}

#define hlist_entry(ptr, type, member) container_of(ptr, type, member)
#define hlist_for_each(pos, head) for (pos = (head)->first; pos; pos = pos->next)
#define hlist_for_each_safe(pos, n, head) \
	for (pos = (head)->first; pos && ({ n = pos->next; 1; }); pos = n)
#define hlist_entry_safe(ptr, type, member) ({                               \
	__typeof__(ptr) ____ptr = (ptr);                                     \
	____ptr ? hlist_entry(____ptr, type, member) : NULL; })
#define hlist_for_each_entry(pos, head, member)                              \
	for (pos = hlist_entry_safe((head)->first, __typeof__(*(pos)), member); \
	     pos; pos = hlist_entry_safe((pos)->member.next, __typeof__(*(pos)), member))
#define hlist_for_each_entry_continue(pos, member)                           \
	for (pos = hlist_entry_safe((pos)->member.next, __typeof__(*(pos)), member); \
	     pos; pos = hlist_entry_safe((pos)->member.next, __typeof__(*(pos)), member))
#define hlist_for_each_entry_from(pos, member) \
	for (; pos; pos = hlist_entry_safe((pos)->member.next, __typeof__(*(pos)), member))
#define hlist_for_each_entry_safe(pos, n, head, member)                      \
	for (pos = hlist_entry_safe((head)->first, __typeof__(*pos), member); \
	     pos && ({ n = pos->member.next; 1; });                          \
	     pos = hlist_entry_safe(n, __typeof__(*pos), member))

#endif
