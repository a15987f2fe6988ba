/* <kunit/test.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <kunit/test.h>

struct pair { int a, b; };
static const struct pair pairs[] = { { 1, 2 }, { 3, 4 } };
static void pair_desc(const struct pair *p, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%d+%d", p->a, p->b);
}
KUNIT_ARRAY_PARAM(pair, pairs, pair_desc);

static int init(struct kunit *test)
{
	test->priv = kunit_kzalloc(test, 8, GFP_KERNEL);
	return test->priv ? 0 : -ENOMEM;
}

static void every_check(struct kunit *test)
{
	const struct pair *p = test->param_value;
	char *s = kunit_kcalloc(test, 4, 1, GFP_KERNEL);
	u8 m[2] = { 1, 2 };
	size_t big = 1UL << 40;
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, s);
	KUNIT_EXPECT_EQ(test, big, 1UL << 40);
	KUNIT_EXPECT_EQ(test, kmalloc_size_roundup(65), 96); /* size_t vs int builds */
	KUNIT_EXPECT_LT(test, p->a, p->b);
	KUNIT_EXPECT_NE_MSG(test, p->a, 0, "a is %d", p->a);
	KUNIT_EXPECT_PTR_NE(test, (void *)s, NULL);
	KUNIT_EXPECT_NULL(test, NULL);
	KUNIT_EXPECT_STREQ(test, s, "");
	KUNIT_EXPECT_STRNEQ(test, "a", "b");
	KUNIT_EXPECT_MEMEQ(test, m, m, sizeof(m));
	KUNIT_ASSERT_MEMNEQ(test, m, "xy", 2);
	KUNIT_EXPECT_TRUE(test, IS_ALIGNED(big, 8));
	kunit_info(test, "%s", "ok");
	kunit_kfree(test, s);
	if (!big)
		kunit_skip(test, "never");
	if (big == 3)
		KUNIT_FAIL(test, "never %d", 3);
}

static struct kunit_case cases[] = {
	KUNIT_CASE_PARAM(every_check, pair_gen_params),
	{},
};

static struct kunit_suite suite = {
	.name = "hdrtest-kunit",
	.init = init,
	.test_cases = cases,
};
kunit_test_suite(suite);
MODULE_LICENSE("GPL");
