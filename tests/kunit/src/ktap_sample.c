/*
 * ktap_sample.c - a KUnit suite whose every outcome is known: passing,
 * failing (each kind of check, EXPECT and ASSERT), skipped, oopsing and
 * leaking cases.  tests/kunit/test_kunit_module.py compares the KTAP kmemu
 * prints with the text Linux prints for the same failures.  Not named
 * *_kunit.c on purpose: the pytest plugin must not collect its failures.
 */
#include <kunit/test.h>
#include <linux/slab.h>

static int sample_runs; /* cases started since the suite began */

static int sample_init(struct kunit *test)
{
	(void)test;
	sample_runs++;
	return 0;
}

static void sample_pass(struct kunit *test)
{
	int a = 3;
	KUNIT_EXPECT_EQ(test, a, 3);
	KUNIT_EXPECT_STREQ(test, "kmemu", "kmemu");
	KUNIT_EXPECT_NE(test, a, 4);
}

static void sample_expect_eq(struct kunit *test)
{
	int a = 3, b = 4;
	KUNIT_EXPECT_EQ(test, a, b);
	KUNIT_EXPECT_EQ(test, a, 5);
	KUNIT_EXPECT_LT_MSG(test, b, a, "b is %d", b);
	kunit_info(test, "still running after three failed expectations");
}

static void sample_assert_ends_case(struct kunit *test)
{
	void *p = NULL;
	KUNIT_ASSERT_NOT_NULL(test, p);
	KUNIT_FAIL(test, "not reached");
}

static void sample_bool_and_ptr(struct kunit *test)
{
	bool on = false;
	void *err = (void *)-12L;
	KUNIT_EXPECT_TRUE(test, on);
	KUNIT_EXPECT_FALSE_MSG(test, !on, "flag %s", "inverted");
	KUNIT_EXPECT_NOT_ERR_OR_NULL(test, err);
	KUNIT_EXPECT_PTR_EQ(test, err, NULL);
}

static void sample_strings_and_memory(struct kunit *test)
{
	const char *name = "kmalloc-64";
	u8 a[4] = { 1, 2, 3, 4 }, b[4] = { 1, 2, 9, 4 };
	KUNIT_EXPECT_STREQ(test, name, "kmalloc-32");
	KUNIT_EXPECT_STRNEQ(test, name, "kmalloc-64");
	KUNIT_EXPECT_MEMEQ(test, a, b, sizeof(a));
	KUNIT_FAIL(test, "custom failure %d", 42);
}

static void sample_skip(struct kunit *test)
{
	kunit_skip(test, "no %s here", "hardware");
	KUNIT_FAIL(test, "not reached");
}

static void sample_oops(struct kunit *test)
{
	volatile int *p = NULL;
	kunit_info(test, "about to dereference NULL");
	*p = 1;
	KUNIT_FAIL(test, "not reached");
}

static void sample_leak(struct kunit *test)
{
	void *kept = kmalloc(100, GFP_KERNEL);
	void *managed = kunit_kmalloc(test, 200, GFP_KERNEL);
	KUNIT_EXPECT_NOT_NULL(test, kept);
	KUNIT_EXPECT_NOT_NULL(test, managed);
}

static void sample_after_oops(struct kunit *test)
{
	/* every case starts from the same snapshot: only its own init counted */
	KUNIT_EXPECT_EQ(test, sample_runs, 1);
}

static struct kunit_case sample_cases[] = {
	KUNIT_CASE(sample_pass),
	KUNIT_CASE(sample_expect_eq),
	KUNIT_CASE(sample_assert_ends_case),
	KUNIT_CASE(sample_bool_and_ptr),
	KUNIT_CASE(sample_strings_and_memory),
	KUNIT_CASE(sample_skip),
	KUNIT_CASE(sample_oops),
	KUNIT_CASE(sample_leak),
	KUNIT_CASE(sample_after_oops),
	{},
};

static struct kunit_suite sample_suite = {
	.name = "kmemu-ktap-sample",
	.init = sample_init,
	.test_cases = sample_cases,
};

static int init_fails(struct kunit_suite *suite)
{
	(void)suite;
	return -12;
}

static void never(struct kunit *test)
{
	KUNIT_FAIL(test, "suite_init failed: no case runs");
}

static struct kunit_case init_fail_cases[] = {
	KUNIT_CASE(never),
	{},
};

static struct kunit_suite init_fail_suite = {
	.name = "kmemu-suite-init-fails",
	.suite_init = init_fails,
	.test_cases = init_fail_cases,
};

kunit_test_suites(&sample_suite, &init_fail_suite);
MODULE_LICENSE("GPL");
