/*
 * lib_test.c - the semantics of the <linux/...> helpers, checked inside the
 * guest (tests/headers/test_lib_runtime.py calls these by name).
 *
 * Contract: every lib_test_*() returns 0 when all its checks hold, else the
 * source line of the first check that failed (so a failure names itself as
 * kernel/lib_test.c:LINE).  The lib_probe_*() functions return one value for
 * Python to compare (poison values, saturating sizes, error pointers).
 * Only public headers are included: this file is written as a module would be.
 */
#include <linux/bitops.h>
#include <linux/bug.h>
#include <linux/err.h>
#include <linux/errno.h>
#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

#define CHECK(cond) do { if (!(cond)) return __LINE__; } while (0)

struct item {
	int v;
	struct list_head node;
	struct hlist_node hnode;
};

static struct item items[8];

/* Fill head with items[0..n) carrying values 0..n-1, in order. */
static void fill(struct list_head *head, int n)
{
	INIT_LIST_HEAD(head);
	for (int i = 0; i < n; i++) {
		items[i].v = i;
		list_add_tail(&items[i].node, head);
	}
}

/* The values of head from first to last as decimal digits (e.g. 0123), or -1 if the
 * backward links do not mirror the forward ones. */
static long digits(struct list_head *head)
{
	long r = 0, back = 0, mul = 1;
	struct item *it;
	list_for_each_entry(it, head, node)
		r = r * 10 + it->v;
	list_for_each_entry_reverse(it, head, node) {
		back += it->v * mul;
		mul *= 10;
	}
	return r == back ? r : -1;
}

/* list_add/add_tail/del/move/splice/rotate/cut and the iterators. */
int lib_test_list(void)
{
	LIST_HEAD(head);
	LIST_HEAD(other);
	struct item *it, *tmp;
	int n = 0;

	CHECK(list_empty(&head) && !list_is_singular(&head));
	CHECK(list_first_entry_or_null(&head, struct item, node) == NULL);
	fill(&head, 4);
	CHECK(digits(&head) == 123);
	CHECK(list_first_entry(&head, struct item, node) == &items[0]);
	CHECK(list_last_entry(&head, struct item, node) == &items[3]);
	CHECK(list_first_entry_or_null(&head, struct item, node) == &items[0]);
	CHECK(list_is_first(&items[0].node, &head) && list_is_last(&items[3].node, &head));
	CHECK(list_next_entry(&items[1], node) == &items[2]);
	CHECK(list_prev_entry(&items[1], node) == &items[0]);
	CHECK(list_next_entry_circular(&items[3], &head, node) == &items[0]);
	CHECK(list_prev_entry_circular(&items[0], &head, node) == &items[3]);

	/* _safe allows deleting the current entry */
	list_for_each_entry_safe(it, tmp, &head, node)
		if (it->v % 2)
			list_del(&it->node);
	CHECK(digits(&head) == 2); /* "02" */
	CHECK(items[1].node.next == LIST_POISON1 && items[1].node.prev == LIST_POISON2);

	/* iteration ends with pos at the head "entry" */
	list_for_each_entry(it, &head, node)
		n++;
	CHECK(n == 2 && list_entry_is_head(it, &head, node));

	fill(&head, 5);
	list_rotate_left(&head);
	CHECK(digits(&head) == 12340);
	list_rotate_to_front(&items[3].node, &head);
	CHECK(digits(&head) == 34012);
	list_move(&items[2].node, &head);
	CHECK(digits(&head) == 23401);
	list_move_tail(&items[3].node, &head);
	CHECK(digits(&head) == 24013);
	list_swap(&items[2].node, &items[3].node);
	CHECK(digits(&head) == 34012);
	list_del_init(&items[4].node);
	CHECK(list_empty(&items[4].node) && digits(&head) == 3012);
	list_del_init_careful(&items[0].node);
	CHECK(list_empty_careful(&items[0].node) && digits(&head) == 312);
	return 0;
}

/* list_cut_position / list_cut_before / splices / bulk move. */
int lib_test_list_cut_splice(void)
{
	LIST_HEAD(head);
	LIST_HEAD(cut);

	fill(&head, 5);
	list_cut_position(&cut, &head, &items[1].node); /* 0,1 move to cut */
	CHECK(digits(&cut) == 1 && digits(&head) == 234);
	list_splice_tail_init(&cut, &head);
	CHECK(list_empty(&cut) && digits(&head) == 23401);
	list_cut_position(&cut, &head, &head); /* entry == head: cut becomes empty */
	CHECK(list_empty(&cut) && digits(&head) == 23401);
	list_cut_before(&cut, &head, &items[0].node); /* 2,3,4 move to cut */
	CHECK(digits(&cut) == 234 && digits(&head) == 1);
	list_cut_before(&cut, &head, head.next); /* nothing before the first: cut empty */
	CHECK(list_empty(&cut) && digits(&head) == 1);

	fill(&head, 5);
	INIT_LIST_HEAD(&cut);
	list_del(&items[4].node);
	list_add(&items[4].node, &cut);
	list_splice_init(&head, &cut); /* head's entries go first */
	CHECK(list_empty(&head) && digits(&cut) == 1234);
	list_bulk_move_tail(&head, &items[1].node, &items[2].node);
	CHECK(digits(&head) == 12 && digits(&cut) == 34);
	list_replace_init(&items[3].node, &items[5].node);
	items[5].v = 5;
	CHECK(list_empty(&items[3].node) && digits(&cut) == 54);
	return 0;
}

/* hlist: add_head/before/behind, del (poisoned), del_init, move, iteration. */
int lib_test_hlist(void)
{
	HLIST_HEAD(h);
	HLIST_HEAD(h2);
	struct item *it;
	struct hlist_node *tmp;
	long r = 0;

	CHECK(hlist_empty(&h));
	for (int i = 0; i < 4; i++) {
		items[i].v = i;
		INIT_HLIST_NODE(&items[i].hnode);
		CHECK(hlist_unhashed(&items[i].hnode));
	}
	hlist_add_head(&items[0].hnode, &h);
	CHECK(hlist_is_singular_node(&items[0].hnode, &h));
	hlist_add_head(&items[1].hnode, &h);           /* 1 0 */
	hlist_add_before(&items[2].hnode, &items[0].hnode); /* 1 2 0 */
	hlist_add_behind(&items[3].hnode, &items[0].hnode); /* 1 2 0 3 */
	hlist_for_each_entry(it, &h, hnode)
		r = r * 10 + it->v;
	CHECK(r == 1203);
	hlist_for_each_entry_safe(it, tmp, &h, hnode)
		if (it->v == 2)
			hlist_del(&it->hnode);
	CHECK(items[2].hnode.next == LIST_POISON1);
	CHECK((void *)items[2].hnode.pprev == LIST_POISON2);
	hlist_del_init(&items[0].hnode);
	CHECK(hlist_unhashed(&items[0].hnode));
	hlist_del_init(&items[0].hnode); /* twice is fine */
	hlist_move_list(&h, &h2);
	CHECK(hlist_empty(&h) && !hlist_empty(&h2));
	r = 0;
	hlist_for_each_entry(it, &h2, hnode)
		r = r * 10 + it->v;
	CHECK(r == 13);
	hlist_add_fake(&items[4].hnode);
	CHECK(hlist_fake(&items[4].hnode) && !hlist_unhashed(&items[4].hnode));
	return 0;
}

/* next (0) or prev (1) of a list entry after list_del(). */
unsigned long lib_probe_list_poison(int which)
{
	LIST_HEAD(head);
	struct item a;
	list_add(&a.node, &head);
	list_del(&a.node);
	return which ? (unsigned long)a.node.prev : (unsigned long)a.node.next;
}

/* next (0) or pprev (1) of an hlist node after hlist_del(). */
unsigned long lib_probe_hlist_poison(int which)
{
	HLIST_HEAD(h);
	struct item a;
	hlist_add_head(&a.hnode, &h);
	hlist_del(&a.hnode);
	return which ? (unsigned long)a.hnode.pprev : (unsigned long)a.hnode.next;
}

struct flex {
	u32 count;
	u64 data[];
};

/* size_mul/size_add/size_sub (op 0/1/2), array_size (3), struct_size (4, b = count),
 * flex_array_size (5, b = count), array3_size (6: a * b * b). */
size_t lib_probe_size(int op, size_t a, size_t b)
{
	struct flex *f = NULL;
	switch (op) {
	case 0: return size_mul(a, b);
	case 1: return size_add(a, b);
	case 2: return size_sub(a, b);
	case 3: return array_size(a, b);
	case 4: return struct_size(f, data, b);
	case 5: return flex_array_size(f, data, b);
	case 6: return array3_size(a, b, b);
	}
	return 0;
}

/* check_{add,sub,mul}_overflow on u64 (op 0/1/2) and s32 (3/4/5):
 * (overflowed << 63) | (result & ~(1 << 63)) for u64; for s32 the result in the low 32 bits. */
u64 lib_probe_check_overflow(int op, u64 a, u64 b)
{
	u64 r = 0;
	s32 r32 = 0, a32 = (s32)a, b32 = (s32)b;
	bool o = false;
	switch (op) {
	case 0: o = check_add_overflow(a, b, &r); break;
	case 1: o = check_sub_overflow(a, b, &r); break;
	case 2: o = check_mul_overflow(a, b, &r); break;
	case 3: o = check_add_overflow(a32, b32, &r32); r = (u32)r32; break;
	case 4: o = check_sub_overflow(a32, b32, &r32); r = (u32)r32; break;
	case 5: o = check_mul_overflow(a32, b32, &r32); r = (u32)r32; break;
	}
	return ((u64)o << 63) | (r & ~(1ULL << 63));
}

/* ERR_PTR/PTR_ERR/IS_ERR/IS_ERR_OR_NULL/PTR_ERR_OR_ZERO. */
int lib_test_err(void)
{
	void *e = ERR_PTR(-ENOMEM);
	CHECK(IS_ERR(e) && PTR_ERR(e) == -ENOMEM && PTR_ERR(e) == -12);
	CHECK((unsigned long)e == (unsigned long)-12L);
	CHECK(IS_ERR(ERR_PTR(-MAX_ERRNO)) && !IS_ERR(ERR_PTR(-MAX_ERRNO - 1)));
	CHECK(!IS_ERR(NULL) && IS_ERR_OR_NULL(NULL) && IS_ERR_OR_NULL(e));
	CHECK(!IS_ERR_OR_NULL(&items[0]));
	CHECK(PTR_ERR_OR_ZERO(e) == -ENOMEM && PTR_ERR_OR_ZERO(&items[0]) == 0);
	CHECK(ERR_CAST(e) == e);
	CHECK(EPERM == 1 && ENOENT == 2 && EINVAL == 22 && ENOSPC == 28 && EOVERFLOW == 75 &&
	      ENOTSUPP == 524 && EPROBE_DEFER == 517);
	return 0;
}

/* min/max/clamp/min_t/min_not_zero/swap, rounding, ilog2 and friends, bitops. */
int lib_test_minmax_math(void)
{
	int calls = 0;
	unsigned long a = 3, b = 7;
	CHECK(min(a, b) == 3 && max(a, b) == 7);
	CHECK(min3(5, 2, 9) == 2 && max3(5, 2, 9) == 9);
	CHECK(min_t(int, -1, 1u) == -1 && max_t(u8, 300, 5) == 44); /* 300 as u8 is 44 */
	CHECK(clamp(15, 0, 10) == 10 && clamp(-3, 0, 10) == 0 && clamp(4, 0, 10) == 4);
	CHECK(clamp_t(s8, 200, -10, 10) == -10);
	CHECK(min_not_zero(0u, 5u) == 5 && min_not_zero(4u, 5u) == 4);
	CHECK(min(++calls, 10) == 1 && calls == 1); /* arguments evaluated once */
	swap(a, b);
	CHECK(a == 7 && b == 3);
	CHECK(ALIGN(13, 8) == 16 && ALIGN_DOWN(13, 8) == 8 && IS_ALIGNED(16, 8));
	CHECK(round_up(17, 16) == 32 && round_down(17, 16) == 16);
	CHECK(roundup(10, 3) == 12 && rounddown(10, 3) == 9);
	CHECK(DIV_ROUND_UP(10, 4) == 3 && DIV_ROUND_CLOSEST(10, 4) == 3 && DIV_ROUND_CLOSEST(9, 4) == 2);
	CHECK(ilog2(1) == 0 && ilog2(4096) == 12 && ilog2(4097) == 12);
	CHECK(ilog2(a << 40) == 42); /* not a constant: the fls64 path */
	CHECK(roundup_pow_of_two(5) == 8 && roundup_pow_of_two(b) == 4);
	CHECK(rounddown_pow_of_two(5) == 4 && is_power_of_2(64) && !is_power_of_2(0));
	CHECK(order_base_2(1) == 0 && order_base_2(5) == 3 && order_base_2(b + 1) == 2);
	CHECK(get_order(1) == 0 && get_order(PAGE_SIZE) == 0 && get_order(PAGE_SIZE + 1) == 1);
	CHECK(get_order(8 * PAGE_SIZE) == 3);
	CHECK(fls(0) == 0 && fls(1) == 1 && fls(0x80000000u) == 32 && ffs(0) == 0 && ffs(8) == 4);
	CHECK(__ffs(8) == 3 && __fls(8) == 3 && fls64(1ULL << 40) == 41 && ffz(0x7) == 3);
	CHECK(hweight32(0xf0f0) == 8 && hweight64(~0ULL) == 64);
	CHECK(BIT(5) == 32 && GENMASK(7, 4) == 0xf0 && GENMASK_ULL(39, 21) == 0xffffe00000ULL);
	CHECK(upper_32_bits(0x1234567890ULL) == 0x12 && lower_32_bits(0x1234567890ULL) == 0x34567890);
	CHECK(ARRAY_SIZE(items) == 8 && sizeof_field(struct item, v) == sizeof(int));
	CHECK(offsetofend(struct item, v) == sizeof(int));
	return 0;
}

/* set/clear/test bit ops and find_*_bit over a 130-bit bitmap. */
int lib_test_bitmap(void)
{
	unsigned long map[BITS_TO_LONGS(130)] = { 0 };
	unsigned long bit, n = 0;

	CHECK(ARRAY_SIZE(map) == 3);
	CHECK(find_first_bit(map, 130) == 130 && find_first_zero_bit(map, 130) == 0);
	set_bit(3, map);
	__set_bit(64, map);
	set_bit(129, map);
	CHECK(test_bit(3, map) && test_bit(64, map) && !test_bit(4, map));
	CHECK(map[0] == 8 && map[1] == 1 && map[2] == 2);
	CHECK(find_first_bit(map, 130) == 3 && find_next_bit(map, 130, 4) == 64);
	CHECK(find_next_bit(map, 129, 65) == 129); /* size bounds the search */
	for_each_set_bit(bit, map, 130)
		n += bit;
	CHECK(n == 3 + 64 + 129);
	CHECK(test_and_set_bit(3, map) && !test_and_set_bit(5, map) && test_bit(5, map));
	CHECK(test_and_clear_bit(5, map) && !test_bit(5, map) && !test_and_clear_bit(5, map));
	change_bit(0, map);
	CHECK(find_first_bit(map, 130) == 0 && find_first_zero_bit(map, 130) == 1);
	clear_bit(0, map);
	__clear_bit(64, map);
	CHECK(map[0] == 8 && map[1] == 0);
	CHECK(sign_extend32(0x80, 7) == -128 && rol32(0x80000001u, 1) == 3 && ror64(1, 1) == 1ULL << 63);
	CHECK(get_count_order(3) == 2 && get_count_order(4) == 2 && get_count_order(5) == 3);
	return 0;
}

/* strscpy (-E2BIG on truncation), the str/mem helpers, kstrdup/kmemdup/kasprintf, parsing. */
int lib_test_string(void)
{
	char buf[8];
	char *end;
	char *d;

	CHECK(strscpy(buf, "hello", sizeof(buf)) == 5 && !strcmp(buf, "hello"));
	CHECK(strscpy(buf, "truncated", sizeof(buf)) == -E2BIG && !strcmp(buf, "truncat"));
	CHECK(strscpy(buf, "x", 0) == -E2BIG);
	CHECK(strrchr("a/b/c", '/') && !strcmp(strrchr("a/b/c", '/'), "/c"));
	CHECK(strstr("kmalloc-192", "192") && !strstr("kmalloc", "slab") && strstr("ab", "") != NULL);
	CHECK(memchr("abc", 'c', 3) && !memchr("abc", 'd', 3));
	memset(buf, 0x6b, sizeof(buf));
	CHECK(memchr_inv(buf, 0x6b, sizeof(buf)) == NULL);
	buf[5] = 0;
	CHECK(memchr_inv(buf, 0x6b, sizeof(buf)) == &buf[5]);
	d = kstrdup("kmemu", GFP_KERNEL);
	CHECK(d && !strcmp(d, "kmemu") && ksize(d) == 8);
	kfree(d);
	d = kstrndup("kmemu", 2, GFP_KERNEL);
	CHECK(d && !strcmp(d, "km"));
	kfree(d);
	CHECK(kstrdup(NULL, GFP_KERNEL) == NULL);
	d = kmemdup("\1\2\3", 3, GFP_KERNEL);
	CHECK(d && d[2] == 3);
	kfree(d);
	d = kasprintf(GFP_KERNEL, "%s-%d", "kmalloc", 96);
	CHECK(d && !strcmp(d, "kmalloc-96") && ksize(d) == 16);
	kfree(d);
	CHECK(snprintf(buf, sizeof(buf), "%d", 123456789) == 9 && !strcmp(buf, "1234567"));
	CHECK(scnprintf(buf, sizeof(buf), "%d", 123456789) == 7);
	CHECK(sprintf(buf, "%llx", 0xabcULL) == 3 && !strcmp(buf, "abc"));
	CHECK(simple_strtoull("0x1fz", &end, 0) == 0x1f && *end == 'z');
	CHECK(simple_strtoull("017", NULL, 0) == 15 && simple_strtoull("17", NULL, 0) == 17);
	CHECK(simple_strtol("-42", NULL, 10) == -42);
	CHECK(memparse("4K", &end) == 4096 && *end == 0 && memparse("2M", NULL) == 2 << 20);
	CHECK(memparse("1G", NULL) == 1ULL << 30 && memparse("7", NULL) == 7);
	return 0;
}

/* WARN_ON returns its condition and WARN_ON_ONCE reports once (2 calls: 1 warning). */
int lib_test_warn(int cond)
{
	int hits = 0;
	for (int i = 0; i < 2; i++)
		if (WARN_ON_ONCE(cond))
			hits++;
	return hits;
}

/* The page-allocator helpers agree with each other: page_address(virt_to_page(p)) == p. */
int lib_test_page_helpers(void)
{
	unsigned long a = __get_free_page(GFP_KERNEL);
	struct page *pg;

	CHECK(a && offset_in_page(a) == 0 && virt_addr_valid(a));
	pg = virt_to_page((void *)a);
	CHECK(page_address(pg) == (void *)a && page_to_pfn(pg) == __pa(a) >> PAGE_SHIFT);
	CHECK(pfn_to_page(page_to_pfn(pg)) == pg && virt_to_pfn(a) == page_to_pfn(pg));
	free_page(a);
	a = get_zeroed_page(GFP_KERNEL);
	CHECK(a && memchr_inv((void *)a, 0, PAGE_SIZE) == NULL);
	free_pages(a, 0);
	pg = alloc_pages(GFP_KERNEL, 2);
	CHECK(pg && PAGE_ALIGNED(page_address(pg)));
	__free_pages(pg, 2);
	pg = alloc_page(GFP_KERNEL);
	CHECK(pg);
	__free_page(pg);
	return 0;
}

/* vmalloc_to_page maps each page of a vmalloc area to the page behind it. */
int lib_test_vmalloc_helpers(void)
{
	char *v = vmalloc_array(3, PAGE_SIZE);
	CHECK(v && is_vmalloc_addr(v) && !is_vmalloc_addr(&items[0]));
	for (int i = 0; i < 3; i++) {
		struct page *pg = vmalloc_to_page(v + i * PAGE_SIZE + 5);
		char *direct = page_address(pg);
		v[i * PAGE_SIZE + 5] = (char)(0x40 + i);
		CHECK(direct[5] == 0x40 + i);
		CHECK(vmalloc_to_pfn(v + i * PAGE_SIZE) == page_to_pfn(pg));
	}
	vfree(v);
	CHECK(vmalloc_array(SIZE_MAX / 2, 3) == NULL && vcalloc(SIZE_MAX / 2, 3) == NULL);
	v = vcalloc(2, PAGE_SIZE);
	CHECK(v && memchr_inv(v, 0, 2 * PAGE_SIZE) == NULL);
	vfree(v);
	return 0;
}
