/*
 * kunit_test.c - KUnit suite "kunit-api-test": every check of <kunit/test.h>
 * in its passing form (the failing forms are compared with Linux's text in
 * tests/kunit), suite init/exit and test-managed memory.
 */
#include <kunit/test.h>
#include <linux/slab.h>

static int api_init(struct kunit *test)
{
	test->priv = kunit_kzalloc(test, 32, GFP_KERNEL);
	return test->priv ? 0 : -12;
}

static void api_exit(struct kunit *test)
{
	((char *)test->priv)[0] = 'x'; /* still allocated: cleanup comes after exit */
}

static void kunit_api_expectations_pass(struct kunit *test)
{
	int three = 3;
	u64 big = 1UL << 40;
	const char *s = "slab";
	u8 a[3] = { 1, 2, 3 }, b[3] = { 1, 2, 3 }, c[3] = { 1, 2, 4 };
	void *err = (void *)-22L;

	KUNIT_SUCCEED(test);
	KUNIT_EXPECT_TRUE(test, three == 3);
	KUNIT_EXPECT_FALSE(test, three == 4);
	KUNIT_EXPECT_EQ(test, three, 3);
	KUNIT_EXPECT_NE(test, big, 0);
	KUNIT_EXPECT_LT(test, three, 4);
	KUNIT_EXPECT_LE(test, three, 3);
	KUNIT_EXPECT_GT(test, big, three);
	KUNIT_EXPECT_GE(test, three, 3);
	KUNIT_EXPECT_PTR_EQ(test, s, s);
	KUNIT_EXPECT_PTR_NE(test, (void *)a, (void *)b);
	KUNIT_EXPECT_NULL(test, NULL);
	KUNIT_EXPECT_NOT_NULL(test, s);
	KUNIT_EXPECT_NOT_ERR_OR_NULL(test, s);
	KUNIT_EXPECT_FALSE(test, !err);
	KUNIT_EXPECT_STREQ(test, s, "slab");
	KUNIT_EXPECT_STRNEQ(test, s, "slub");
	KUNIT_EXPECT_MEMEQ(test, a, b, sizeof(a));
	KUNIT_EXPECT_MEMNEQ(test, a, c, sizeof(a));
	KUNIT_EXPECT_EQ_MSG(test, three, 3, "three is %d", three);
	KUNIT_EXPECT_TRUE_MSG(test, big, "big is %lu", big);
	KUNIT_EXPECT_STREQ_MSG(test, s, "slab", "s is %s", s);
	KUNIT_EXPECT_MEMEQ_MSG(test, a, b, 3, "%d bytes", 3);
	KUNIT_EXPECT_PTR_NE_MSG(test, s, NULL, "s");
	KUNIT_EXPECT_NOT_ERR_OR_NULL_MSG(test, s, "s");
}

static void kunit_api_assertions_pass(struct kunit *test)
{
	int three = 3;
	const char *s = "slab";
	u8 a[2] = { 5, 6 }, b[2] = { 5, 6 };

	KUNIT_ASSERT_TRUE(test, three);
	KUNIT_ASSERT_FALSE(test, !three);
	KUNIT_ASSERT_EQ(test, three, 3);
	KUNIT_ASSERT_NE(test, three, 4);
	KUNIT_ASSERT_LT(test, three, 4);
	KUNIT_ASSERT_LE(test, three, 3);
	KUNIT_ASSERT_GT(test, three, 2);
	KUNIT_ASSERT_GE(test, three, 3);
	KUNIT_ASSERT_PTR_EQ(test, s, s);
	KUNIT_ASSERT_PTR_NE(test, s, NULL);
	KUNIT_ASSERT_NULL(test, NULL);
	KUNIT_ASSERT_NOT_NULL(test, s);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, s);
	KUNIT_ASSERT_STREQ(test, s, "slab");
	KUNIT_ASSERT_STRNEQ(test, s, "slob");
	KUNIT_ASSERT_MEMEQ(test, a, b, 2);
	KUNIT_ASSERT_MEMNEQ(test, a, "xy", 2);
	KUNIT_ASSERT_EQ_MSG(test, three, 3, "%s", "msg");
	KUNIT_ASSERT_NOT_NULL_MSG(test, s, "%s", "msg");
}

static void kunit_api_init_ran(struct kunit *test)
{
	KUNIT_ASSERT_NOT_NULL(test, test->priv);
	KUNIT_EXPECT_EQ(test, ((char *)test->priv)[31], 0); /* kunit_kzalloc zeroes */
}

static void kunit_api_kunit_kfree(struct kunit *test)
{
	void *p = kunit_kmalloc(test, 64, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, p);
	KUNIT_EXPECT_EQ(test, ksize(p), 64);
	kunit_kfree(test, p);
	kunit_kfree(test, NULL); /* a no-op */
	u64 *n = kunit_kcalloc(test, 8, sizeof(u64), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, n);
	KUNIT_EXPECT_EQ(test, n[7], 0);
}

static struct kunit_case kunit_api_cases[] = {
	KUNIT_CASE(kunit_api_expectations_pass),
	KUNIT_CASE(kunit_api_assertions_pass),
	KUNIT_CASE(kunit_api_init_ran),
	KUNIT_CASE(kunit_api_kunit_kfree),
	{},
};

static struct kunit_suite kunit_api_suite = {
	.name = "kunit-api-test",
	.init = api_init,
	.exit = api_exit,
	.test_cases = kunit_api_cases,
};

kunit_test_suite(kunit_api_suite);
