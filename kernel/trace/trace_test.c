/*
 * trace_test.c - kernel-side helpers the trace-event tests call (the host
 * cannot build the page lists a batched free takes).
 *
 * trace_test_free_batched(n): allocates n order-0 pages and gives them back
 * in one free_unref_page_list() call, the way Linux's release_pages() and
 * page reclaim do; returns 0, or -ENOMEM (nothing is left allocated).
 */
#include <linux/errno.h>
#include <linux/gfp.h>
#include <linux/list.h>
#include <kmemu/mm_types.h>

u64 trace_test_free_batched(u64 n)
{
	LIST_HEAD(list);
	for (u64 i = 0; i < n; i++) {
		struct page *p = alloc_pages(GFP_KERNEL, 0);
		if (!p) {
			free_unref_page_list(&list);
			return (u64)-ENOMEM;
		}
		list_add_tail(&p->lru, &list);
	}
	free_unref_page_list(&list);
	return 0;
}
