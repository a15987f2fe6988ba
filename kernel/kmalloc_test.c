/*
 * kmalloc_test.c - KUnit suite "kmalloc-kmemu-test": the kmalloc family's
 * Linux semantics on kmemu's allocator (bucket sizes and ksize, zeroing,
 * ZERO_SIZE_PTR, krealloc keeping contents, kmalloc_size_roundup), and the
 * test-managed allocations of KUnit itself.
 */
#include <kunit/test.h>
#include <linux/slab.h>
#include <asm/page.h>
#include <kmemu/slab_common.h>

/*
 * ksize() is the bucket size of the running allocator (slab=): SLUB's powers
 * of two from 8 plus the 96 and 192 caches; SLAB's the same from 32; SLOB's
 * request rounded up to its 2-byte units (pages above PAGE_SIZE - 8), and
 * kmalloc_size_roundup() is SLOB's 8-byte rounding.
 */
struct bucket_case {
	size_t req, bucket[3], roundup_slob;
};

static const struct bucket_case bucket_cases[] = {
	{ 1, { 8, 32, 2 }, 8 },         { 8, { 8, 32, 8 }, 8 },        { 9, { 16, 32, 10 }, 16 },
	{ 65, { 96, 96, 66 }, 72 },     { 97, { 128, 128, 98 }, 104 }, { 129, { 192, 192, 130 }, 136 },
	{ 193, { 256, 256, 194 }, 200 }, { 4097, { 8192, 8192, 8192 }, 4104 },
};

static void bucket_desc(const struct bucket_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "kmalloc(%zu)", c->req);
}

KUNIT_ARRAY_PARAM(bucket, bucket_cases, bucket_desc);

static void kmalloc_test_ksize_buckets(struct kunit *test)
{
	const struct bucket_case *c = test->param_value;
	void *p = kmalloc(c->req, GFP_KERNEL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, p);
	KUNIT_EXPECT_EQ(test, ksize(p), c->bucket[slab_allocator]);
	KUNIT_EXPECT_EQ(test, kmalloc_size_roundup(c->req),
			slab_allocator == SLAB_ALLOCATOR_SLOB ? c->roundup_slob : c->bucket[slab_allocator]);
	kfree(p);
}

static void kmalloc_test_zero_size(struct kunit *test)
{
	void *p = kmalloc(0, GFP_KERNEL);
	KUNIT_EXPECT_PTR_EQ(test, p, ZERO_SIZE_PTR);
	kfree(p); /* a no-op, as in Linux */
	kfree(NULL);
}

static void kmalloc_test_kzalloc_zeroes(struct kunit *test)
{
	u8 *p = kmalloc(200, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, p);
	memset(p, 0xa5, 200);
	kfree(p);
	u8 *z = kzalloc(200, GFP_KERNEL);
	u8 zero[200];
	memset(zero, 0, sizeof(zero));
	KUNIT_ASSERT_NOT_NULL(test, z);
	KUNIT_EXPECT_MEMEQ(test, z, zero, sizeof(zero));
	kfree(z);
}

static void kmalloc_test_krealloc_keeps_contents(struct kunit *test)
{
	char *p = kmalloc(16, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, p);
	strscpy(p, "kmemu-krealloc", 16);
	char *q = krealloc(p, 1000, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, q);
	KUNIT_EXPECT_STREQ(test, q, "kmemu-krealloc");
	KUNIT_EXPECT_GE(test, ksize(q), 1000);
	kfree(q);
}

static void kmalloc_test_large_is_pages(struct kunit *test)
{
	void *p = kmalloc(3 * PAGE_SIZE, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, p);
	KUNIT_EXPECT_TRUE(test, IS_ALIGNED((u64)p, PAGE_SIZE));
	KUNIT_EXPECT_EQ(test, ksize(p), 4 * PAGE_SIZE);
	kfree(p);
}

static void kmalloc_test_kunit_kmalloc_freed_at_end(struct kunit *test)
{
	u64 *a = kunit_kcalloc(test, 4, sizeof(u64), GFP_KERNEL);
	char *b = kunit_kzalloc(test, 100, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, a);
	KUNIT_ASSERT_NOT_NULL(test, b);
	KUNIT_EXPECT_EQ(test, a[3], 0);
	KUNIT_EXPECT_EQ(test, b[99], 0);
	kunit_kfree(test, a); /* b is freed when the case ends */
}

static struct kunit_case kmalloc_test_cases[] = {
	KUNIT_CASE_PARAM(kmalloc_test_ksize_buckets, bucket_gen_params),
	KUNIT_CASE(kmalloc_test_zero_size),
	KUNIT_CASE(kmalloc_test_kzalloc_zeroes),
	KUNIT_CASE(kmalloc_test_krealloc_keeps_contents),
	KUNIT_CASE(kmalloc_test_large_is_pages),
	KUNIT_CASE(kmalloc_test_kunit_kmalloc_freed_at_end),
	{},
};

static struct kunit_suite kmalloc_test_suite = {
	.name = "kmalloc-kmemu-test",
	.test_cases = kmalloc_test_cases,
};

kunit_test_suite(kmalloc_test_suite);
