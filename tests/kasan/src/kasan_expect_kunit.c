// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit cases in the style of Linux's mm/kasan/kasan_test.c: each expects
 * KASAN to report.  The pytest plugin runs a file that uses
 * KUNIT_EXPECT_KASAN_FAIL on the KASAN kernel.
 */
#include <kunit/test.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

static void kmalloc_oob_right(struct kunit *test)
{
	char *p = kmalloc(18, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, p);
	KUNIT_EXPECT_KASAN_FAIL(test, ((volatile char *)p)[18] = 'y');
	kfree(p);
}

static void kmalloc_uaf(struct kunit *test)
{
	char *p = kmalloc(64, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, p);
	kfree(p);
	KUNIT_EXPECT_KASAN_FAIL(test, ((volatile char *)p)[8] = 1);
}

static void kmalloc_double_kfree(struct kunit *test)
{
	char *p = kmalloc(16, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, p);
	kfree(p);
	KUNIT_EXPECT_KASAN_FAIL(test, kfree(p));
}

static void vmalloc_oob(struct kunit *test)
{
	char *p = vmalloc(3000);
	KUNIT_ASSERT_NOT_NULL(test, p);
	KUNIT_EXPECT_KASAN_FAIL(test, ((volatile char *)p)[3000] = 0);
	vfree(p);
}

static struct kunit_case kasan_expect_cases[] = {
	KUNIT_CASE(kmalloc_oob_right),
	KUNIT_CASE(kmalloc_uaf),
	KUNIT_CASE(kmalloc_double_kfree),
	KUNIT_CASE(vmalloc_oob),
	{}
};

static struct kunit_suite kasan_expect_suite = {
	.name = "kasan-expect",
	.test_cases = kasan_expect_cases,
};
kunit_test_suite(kasan_expect_suite);
MODULE_LICENSE("GPL");
