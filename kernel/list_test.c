/*
 * list_test.c - KUnit suite "list-kernel-test": <list.h> semantics as
 * Linux's lib/list-test.c checks them (case names are Linux's), so the
 * built-in KUnit runner is exercised on every run of `kmemu kunit`/QEMU.
 */
#include <kunit/test.h>

struct list_test_struct {
	int data;
	struct list_head list;
};

static void list_test_list_init(struct kunit *test)
{
	struct list_head list1 = LIST_HEAD_INIT(list1);
	struct list_head list2;
	INIT_LIST_HEAD(&list2);
	KUNIT_EXPECT_TRUE(test, list_empty(&list1));
	KUNIT_EXPECT_TRUE(test, list_empty(&list2));
	KUNIT_EXPECT_PTR_EQ(test, list1.next, &list1);
	KUNIT_EXPECT_PTR_EQ(test, list2.prev, &list2);
}

static void list_test_list_add(struct kunit *test)
{
	struct list_head a, b;
	struct list_head list = LIST_HEAD_INIT(list);
	list_add(&a, &list);
	list_add(&b, &list);
	/* should be [list] -> b -> a */
	KUNIT_EXPECT_PTR_EQ(test, list.next, &b);
	KUNIT_EXPECT_PTR_EQ(test, b.prev, &list);
	KUNIT_EXPECT_PTR_EQ(test, b.next, &a);
}

static void list_test_list_add_tail(struct kunit *test)
{
	struct list_head a, b;
	struct list_head list = LIST_HEAD_INIT(list);
	list_add_tail(&a, &list);
	list_add_tail(&b, &list);
	/* should be [list] -> a -> b */
	KUNIT_EXPECT_PTR_EQ(test, list.next, &a);
	KUNIT_EXPECT_PTR_EQ(test, a.prev, &list);
	KUNIT_EXPECT_PTR_EQ(test, a.next, &b);
}

static void list_test_list_del(struct kunit *test)
{
	struct list_head a, b;
	struct list_head list = LIST_HEAD_INIT(list);
	list_add_tail(&a, &list);
	list_add_tail(&b, &list);
	list_del(&a);
	/* now: [list] -> b, and a is poisoned */
	KUNIT_EXPECT_PTR_EQ(test, list.next, &b);
	KUNIT_EXPECT_PTR_EQ(test, b.prev, &list);
	KUNIT_EXPECT_PTR_EQ(test, a.next, LIST_POISON1);
	KUNIT_EXPECT_PTR_EQ(test, a.prev, LIST_POISON2);
}

static void list_test_list_empty(struct kunit *test)
{
	struct list_head a;
	struct list_head list1 = LIST_HEAD_INIT(list1);
	struct list_head list2 = LIST_HEAD_INIT(list2);
	list_add(&a, &list1);
	KUNIT_EXPECT_FALSE(test, list_empty(&list1));
	KUNIT_EXPECT_TRUE(test, list_empty(&list2));
}

static void list_test_list_first_entry(struct kunit *test)
{
	struct list_test_struct test_struct1, test_struct2;
	struct list_head list = LIST_HEAD_INIT(list);
	list_add_tail(&test_struct1.list, &list);
	list_add_tail(&test_struct2.list, &list);
	KUNIT_EXPECT_PTR_EQ(test, &test_struct1,
			    list_first_entry(&list, struct list_test_struct, list));
}

static void list_test_list_for_each(struct kunit *test)
{
	struct list_head entries[3], *cur;
	struct list_head list = LIST_HEAD_INIT(list);
	int i = 0;
	for (int k = 0; k < 3; k++)
		list_add_tail(&entries[k], &list);
	list_for_each(cur, &list) {
		KUNIT_EXPECT_PTR_EQ(test, cur, &entries[i]);
		i++;
	}
	KUNIT_EXPECT_EQ(test, i, 3);
}

static void list_test_list_for_each_entry(struct kunit *test)
{
	struct list_test_struct entries[5], *cur;
	struct list_head list = LIST_HEAD_INIT(list);
	int i = 0;
	for (i = 0; i < 5; ++i) {
		entries[i].data = i;
		list_add_tail(&entries[i].list, &list);
	}
	i = 0;
	list_for_each_entry(cur, &list, list) {
		KUNIT_EXPECT_EQ(test, cur->data, i);
		i++;
	}
	KUNIT_EXPECT_EQ(test, i, 5);
}

static struct kunit_case list_test_cases[] = {
	KUNIT_CASE(list_test_list_init),
	KUNIT_CASE(list_test_list_add),
	KUNIT_CASE(list_test_list_add_tail),
	KUNIT_CASE(list_test_list_del),
	KUNIT_CASE(list_test_list_empty),
	KUNIT_CASE(list_test_list_first_entry),
	KUNIT_CASE(list_test_list_for_each),
	KUNIT_CASE(list_test_list_for_each_entry),
	{},
};

static struct kunit_suite list_test_module = {
	.name = "list-kernel-test",
	.test_cases = list_test_cases,
};

kunit_test_suites(&list_test_module);
