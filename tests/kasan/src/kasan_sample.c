// SPDX-License-Identifier: GPL-2.0
/* KUnit cases that use KUNIT_EXPECT_KASAN_FAIL (tests/kasan). */
#include <kunit/test.h>
#include <linux/module.h>
#include <linux/slab.h>

/* The report is expected: the case passes. */
static void kmalloc_oob_right(struct kunit *test)
{
	char *p = kmalloc(18, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, p);
	KUNIT_EXPECT_KASAN_FAIL(test, ((volatile char *)p)[18] = 'y');
	kfree(p);
}

/* A report is expected and none comes: the case fails. */
static void kmalloc_in_bounds(struct kunit *test)
{
	char *p = kmalloc(18, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, p);
	KUNIT_EXPECT_KASAN_FAIL(test, ((volatile char *)p)[17] = 'y');
	kfree(p);
}

/* A report nobody expected: the case fails. */
static void kmalloc_uaf_unexpected(struct kunit *test)
{
	char *p = kmalloc(32, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, p);
	kfree(p);
	((volatile char *)p)[0] = 1;
}

static struct kunit_case kasan_cases[] = {
	KUNIT_CASE(kmalloc_oob_right),
	KUNIT_CASE(kmalloc_in_bounds),
	KUNIT_CASE(kmalloc_uaf_unexpected),
	{}
};

static struct kunit_suite kasan_suite = {
	.name = "kasan-sample",
	.test_cases = kasan_cases,
};
kunit_test_suite(kasan_suite);
MODULE_LICENSE("GPL");
