// SPDX-License-Identifier: GPL-2.0
/*
 * recfifo_kunit.c - KUnit tests for recfifo.c.
 *
 * KUnit files are built and loaded as one module, so this file includes the
 * code under test (as Linux's own *_kunit.c files sometimes do).  Run with
 * `kmemu kunit examples/recfifo/recfifo_kunit.c`; pytest collects every case
 * (the *_kunit.c name).  Each case gets its own FIFO from recfifo_case_init;
 * recfifo_case_exit destroys it, so a case leaves nothing allocated.
 */
#include <kunit/test.h>
#include <linux/overflow.h>
#include <linux/slab.h>

#include "recfifo.c"

static int recfifo_case_init(struct kunit *test)
{
	test->priv = recfifo_create(GFP_KERNEL);
	return test->priv ? 0 : -ENOMEM;
}

static void recfifo_case_exit(struct kunit *test)
{
	recfifo_destroy(test->priv);
}

/* Records come out in the order they went in, each with its own length. */
static void recfifo_keeps_order(struct kunit *test)
{
	struct recfifo *f = test->priv;
	char buf[16];

	KUNIT_ASSERT_EQ(test, recfifo_push(f, "one", 3, GFP_KERNEL), 0);
	KUNIT_ASSERT_EQ(test, recfifo_push(f, "three", 5, GFP_KERNEL), 0);
	KUNIT_ASSERT_EQ(test, recfifo_push(f, "", 0, GFP_KERNEL), 0);
	KUNIT_EXPECT_EQ(test, recfifo_len(f), 3);
	KUNIT_EXPECT_EQ(test, recfifo_pop(f, buf, sizeof(buf)), 3);
	KUNIT_EXPECT_MEMEQ(test, buf, "one", 3);
	KUNIT_EXPECT_EQ(test, recfifo_pop(f, buf, sizeof(buf)), 5);
	KUNIT_EXPECT_MEMEQ(test, buf, "three", 5);
	KUNIT_EXPECT_EQ(test, recfifo_pop(f, buf, sizeof(buf)), 0);
	KUNIT_EXPECT_EQ(test, recfifo_len(f), 0);
}

/* Popping an empty FIFO says so and changes nothing. */
static void recfifo_pop_empty(struct kunit *test)
{
	char buf[4];

	KUNIT_EXPECT_EQ(test, recfifo_pop(test->priv, buf, sizeof(buf)), -ENODATA);
	KUNIT_EXPECT_EQ(test, recfifo_len(test->priv), 0);
}

/* A buffer too small for the oldest record leaves the record where it was. */
static void recfifo_small_buffer(struct kunit *test)
{
	struct recfifo *f = test->priv;
	char buf[8];

	KUNIT_ASSERT_EQ(test, recfifo_push(f, "abcdefgh", 8, GFP_KERNEL), 0);
	KUNIT_EXPECT_EQ(test, recfifo_pop(f, buf, 7), -EMSGSIZE);
	KUNIT_EXPECT_EQ(test, recfifo_len(f), 1);
	KUNIT_EXPECT_EQ(test, recfifo_pop(f, buf, 8), 8);
	KUNIT_EXPECT_MEMEQ(test, buf, "abcdefgh", 8);
}

/*
 * A record too big for kmalloc (struct_size() saturates at SIZE_MAX, which
 * kmalloc refuses; __GFP_NOWARN keeps it quiet) fails with -ENOMEM and the
 * FIFO is as it was.
 */
static void recfifo_push_enomem(struct kunit *test)
{
	struct recfifo *f = test->priv;
	gfp_t quiet = GFP_KERNEL | __GFP_NOWARN;
	char buf[4];

	KUNIT_ASSERT_EQ(test, recfifo_push(f, "ok", 2, GFP_KERNEL), 0);
	KUNIT_EXPECT_EQ(test, recfifo_push(f, "x", SIZE_MAX - 8, quiet), -ENOMEM);
	KUNIT_EXPECT_EQ(test, recfifo_push(f, "x", KMALLOC_MAX_SIZE + 1, quiet), -ENOMEM);
	KUNIT_EXPECT_EQ(test, recfifo_len(f), 1);
	KUNIT_EXPECT_EQ(test, recfifo_pop(f, buf, sizeof(buf)), 2);
}

/* Destroying a FIFO that still holds records frees them (kmemu reports any leak). */
static void recfifo_destroy_frees_records(struct kunit *test)
{
	struct recfifo *f = recfifo_create(GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, f);
	for (int i = 0; i < 20; i++)
		KUNIT_ASSERT_EQ(test, recfifo_push(f, "0123456789", i % 10, GFP_KERNEL), 0);
	KUNIT_EXPECT_EQ(test, recfifo_len(f), 20);
	recfifo_destroy(f);
}

static struct kunit_case recfifo_cases[] = {
	KUNIT_CASE(recfifo_keeps_order),
	KUNIT_CASE(recfifo_pop_empty),
	KUNIT_CASE(recfifo_small_buffer),
	KUNIT_CASE(recfifo_push_enomem),
	KUNIT_CASE(recfifo_destroy_frees_records),
	{}
};

static struct kunit_suite recfifo_suite = {
	.name = "recfifo",
	.init = recfifo_case_init,
	.exit = recfifo_case_exit,
	.test_cases = recfifo_cases,
};
kunit_test_suite(recfifo_suite);
