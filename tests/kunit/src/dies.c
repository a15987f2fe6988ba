/* dies.c - KUnit cases that never end, panic or BUG(), and one after them that must run. */
#include <kunit/test.h>
#include <linux/bug.h>
#include <linux/panic.h>

static void spins_forever(struct kunit *test)
{
	volatile int forever = 1;
	(void)test;
	while (forever)
		;
}

static void panics(struct kunit *test)
{
	(void)test;
	panic("a KUnit case panics (%d)", 7);
}

static void bugs(struct kunit *test)
{
	(void)test;
	BUG();
}

static void runs_after(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, 2 + 2, 4);
}

static struct kunit_case dies_cases[] = {
	KUNIT_CASE(spins_forever),
	KUNIT_CASE(panics),
	KUNIT_CASE(bugs),
	KUNIT_CASE(runs_after),
	{},
};

static struct kunit_suite dies_suite = {
	.name = "kmemu-dies",
	.test_cases = dies_cases,
};

kunit_test_suite(dies_suite);
MODULE_LICENSE("GPL");
