/* hang.c - a KUnit case that never ends, and one after it that must still run. */
#include <kunit/test.h>

static void spins_forever(struct kunit *test)
{
	volatile int forever = 1;
	(void)test;
	while (forever)
		;
}

static void runs_after(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, 2 + 2, 4);
}

static struct kunit_case hang_cases[] = {
	KUNIT_CASE(spins_forever),
	KUNIT_CASE(runs_after),
	{},
};

static struct kunit_suite hang_suite = {
	.name = "kmemu-hang",
	.test_cases = hang_cases,
};

kunit_test_suite(hang_suite);
MODULE_LICENSE("GPL");
