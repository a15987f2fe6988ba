/*
 * <kunit/test.h> - Linux's KUnit API for kmemu (built-in suites and modules).
 *
 * Contract (as Linux 6.1's lib/kunit; the text formats are Linux's, written
 * here from its documented behaviour):
 *  - A suite is a struct kunit_suite; kunit_test_suites(&a, &b) puts pointers
 *    to it in the ELF section ".kunit_test_suites", of the kernel image (the
 *    built-in suites, between __kunit_suites_start/_end) or of a module.
 *  - A case is void fn(struct kunit *); KUNIT_CASE(fn) names it by its C name.
 *    Arrays of cases end with an empty entry {}.
 *  - KUNIT_EXPECT_* records a failure and goes on; KUNIT_ASSERT_* and
 *    kunit_skip() end the case at once (kernel/kunit.c jumps back to the
 *    runner with kunit_try_catch_throw; the case's exit and cleanup still run).
 *  - kunit_kmalloc and friends are freed when the case ends.
 *  - The failure text goes to the console in KTAP (see kernel/kunit.c).
 */
#ifndef _KUNIT_TEST_H
#define _KUNIT_TEST_H
#include <linux/types.h>
#include <linux/compiler.h>
#include <linux/err.h>
#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/module.h> /* as Linux's: test modules use MODULE_LICENSE */
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/sprintf.h>
#include <linux/string.h>

#define KUNIT_LOG_SIZE 512
#define KUNIT_PARAM_DESC_SIZE 128
#define KUNIT_STATUS_COMMENT_SIZE 256
/* KTAP nests subtests four spaces deeper */
#define KUNIT_SUBTEST_INDENT "    "
#define KUNIT_SUBSUBTEST_INDENT "        "

struct kunit;
struct kunit_suite;

enum kunit_status {
	KUNIT_SUCCESS,
	KUNIT_FAILURE,
	KUNIT_SKIPPED,
};

enum kunit_assert_type {
	KUNIT_ASSERTION,
	KUNIT_EXPECTATION,
};

/* Where a failed expectation is: __FILE__ and __LINE__ of the macro. */
struct kunit_loc {
	int line;
	const char *file;
};
#define KUNIT_CURRENT_LOC { .file = __FILE__, .line = __LINE__ }

/* Saved callee-saved registers, stack and resume address (kernel/kunit_try.S). */
struct kunit_try_catch {
	u64 regs[8]; /* rbx rbp r12 r13 r14 r15 rsp rip */
	unsigned long flags; /* RFLAGS when the case started (IF restored on a throw) */
	int preempt; /* preempt_count when the case started */
	int armed;
};

struct kunit_case {
	void (*run_case)(struct kunit *test);
	const char *name;
	const void *(*generate_params)(const void *prev, char *desc);
	/* private: internal use only */
	enum kunit_status status;
	char *log;
};

#define KUNIT_CASE(test_name) { .run_case = test_name, .name = #test_name }
#define KUNIT_CASE_PARAM(test_name, gen_params) \
	{ .run_case = test_name, .name = #test_name, .generate_params = gen_params }

struct kunit_suite {
	const char name[256];
	int (*suite_init)(struct kunit_suite *suite);
	void (*suite_exit)(struct kunit_suite *suite);
	int (*init)(struct kunit *test);
	void (*exit)(struct kunit *test);
	struct kunit_case *test_cases;
	/* private: internal use only */
	char status_comment[KUNIT_STATUS_COMMENT_SIZE];
	void *debugfs;
	char *log;
	int suite_init_err;
};

struct kunit {
	void *priv;
	/* private: internal use only */
	const char *name;
	char *log;
	struct kunit_try_catch try_catch;
	const void *param_value;
	int param_index;
	enum kunit_status status;
	struct list_head resources; /* kunit_kmalloc'd blocks, freed at the end */
	char status_comment[KUNIT_STATUS_COMMENT_SIZE];
};

/*
 * KUNIT_ARRAY_PARAM(name, array, get_desc): name##_gen_params walks array for
 * KUNIT_CASE_PARAM; get_desc(param, desc) (or NULL) names each parameter.
 */
#define KUNIT_ARRAY_PARAM(name, array, get_desc)                                      \
	static const void *name##_gen_params(const void *prev, char *desc)           \
	{                                                                            \
		const __typeof__((array)[0]) *__next =                               \
			prev ? (const __typeof__((array)[0]) *)prev + 1 : (array);   \
		void (*__get_desc)(const __typeof__((array)[0]) *, char *) = get_desc; \
		if ((size_t)(__next - (array)) >= ARRAY_SIZE(array))                 \
			return NULL;                                                 \
		if (__get_desc)                                                      \
			__get_desc(__next, desc);                                    \
		return __next;                                                       \
	}

#define kunit_suite_for_each_test_case(suite, test_case) \
	for (test_case = (suite)->test_cases; test_case->run_case; test_case++)

#define __KUNIT_CAT2(a, b) a##b
#define __KUNIT_CAT(a, b) __KUNIT_CAT2(a, b)
#define __kunit_test_suites(unique_array, ...)                                      \
	static struct kunit_suite *unique_array[]                                   \
	__aligned(sizeof(struct kunit_suite *)) __used                              \
	__attribute__((section(".kunit_test_suites"))) = { __VA_ARGS__ }
#define kunit_test_suites(__suites...) \
	__kunit_test_suites(__KUNIT_CAT(__kunit_suites_, __COUNTER__), ##__suites)
#define kunit_test_suite(suite) kunit_test_suites(&suite)
#define kunit_test_init_section_suites(__suites...) kunit_test_suites(__suites)
#define kunit_test_init_section_suite(suite) kunit_test_suites(&suite)

/* -------------------------------------------------------------- runner API */
size_t kunit_suite_num_test_cases(struct kunit_suite *suite);
void kunit_init_test(struct kunit *test, const char *name, char *log);
int kunit_run_tests(struct kunit_suite *suite);
void __noreturn kunit_try_catch_throw(struct kunit_try_catch *try_catch);

static inline void kunit_set_failure(struct kunit *test)
{
	WRITE_ONCE(test->status, KUNIT_FAILURE);
}

static inline const char *kunit_status_to_ok_not_ok(enum kunit_status status)
{
	return status == KUNIT_FAILURE ? "not ok" : "ok";
}

/* ------------------------------------------------------ test-managed memory */
void *kunit_kmalloc_array(struct kunit *test, size_t n, size_t size, gfp_t gfp);
void kunit_kfree(struct kunit *test, const void *ptr);
void kunit_cleanup(struct kunit *test);

static inline void *kunit_kmalloc(struct kunit *test, size_t size, gfp_t gfp)
{
	return kunit_kmalloc_array(test, 1, size, gfp);
}

static inline void *kunit_kzalloc(struct kunit *test, size_t size, gfp_t gfp)
{
	return kunit_kmalloc(test, size, gfp | __GFP_ZERO);
}

static inline void *kunit_kcalloc(struct kunit *test, size_t n, size_t size, gfp_t gfp)
{
	return kunit_kmalloc_array(test, n, size, gfp | __GFP_ZERO);
}

/* ----------------------------------------------------------------- logging */

/*
 * kmemu keeps no per-test log buffer (no debugfs), so kunit_log is a printk
 * of one line: kunit_printk_line() ends the message with a newline unless it
 * already has one, as Linux's record-based printk does.
 */
#define kunit_log(lvl, test_or_suite, fmt, ...) \
	do { (void)(test_or_suite); kunit_printk_line(fmt, ##__VA_ARGS__); } while (0)
void kunit_printk_line(const char *fmt, ...) __printf(1, 2);

#define kunit_printk(lvl, test, fmt, ...) \
	kunit_log(lvl, test, KUNIT_SUBTEST_INDENT "# %s: " fmt, (test)->name, ##__VA_ARGS__)
#define kunit_info(test, fmt, ...) kunit_printk(KERN_INFO, test, fmt, ##__VA_ARGS__)
#define kunit_warn(test, fmt, ...) kunit_printk(KERN_WARNING, test, fmt, ##__VA_ARGS__)
#define kunit_err(test, fmt, ...) kunit_printk(KERN_ERR, test, fmt, ##__VA_ARGS__)

#define kunit_mark_skipped(test_or_suite, fmt, ...)                                  \
	do {                                                                         \
		WRITE_ONCE((test_or_suite)->status, KUNIT_SKIPPED);                  \
		scnprintf((test_or_suite)->status_comment, KUNIT_STATUS_COMMENT_SIZE, \
			  fmt, ##__VA_ARGS__);                                       \
	} while (0)

#define kunit_skip(test_or_suite, fmt, ...)                                  \
	do {                                                                 \
		kunit_mark_skipped((test_or_suite), fmt, ##__VA_ARGS__);     \
		kunit_try_catch_throw(&((test_or_suite)->try_catch));        \
	} while (0)

/* -------------------------------------------------------------- assertions */
struct kunit_assert {
	int unused;
};

/* The failure text being built (Linux's string_stream): a bounded buffer. */
struct kunit_text {
	char *buf;
	size_t size;
	size_t len;
};
void kunit_text_add(struct kunit_text *t, const char *fmt, ...) __printf(2, 3);

/* Appends the explanation of a failed check; msg is the user's _MSG text or NULL. */
typedef void (*assert_format_t)(const struct kunit_assert *assert, const char *msg,
				struct kunit_text *out);

struct kunit_binary_assert_text {
	const char *operation;
	const char *left_text;
	const char *right_text;
};

struct kunit_fail_assert {
	struct kunit_assert assert;
};

struct kunit_unary_assert {
	struct kunit_assert assert;
	const char *condition;
	bool expected_true;
};

struct kunit_ptr_not_err_assert {
	struct kunit_assert assert;
	const char *text;
	const void *value;
};

struct kunit_binary_assert {
	struct kunit_assert assert;
	const struct kunit_binary_assert_text *text;
	long long left_value;
	long long right_value;
};

struct kunit_binary_ptr_assert {
	struct kunit_assert assert;
	const struct kunit_binary_assert_text *text;
	const void *left_value;
	const void *right_value;
};

struct kunit_binary_str_assert {
	struct kunit_assert assert;
	const struct kunit_binary_assert_text *text;
	const char *left_value;
	const char *right_value;
};

struct kunit_mem_assert {
	struct kunit_assert assert;
	const struct kunit_binary_assert_text *text;
	const void *left_value;
	const void *right_value;
	size_t size;
};

void kunit_fail_assert_format(const struct kunit_assert *a, const char *msg, struct kunit_text *out);
void kunit_unary_assert_format(const struct kunit_assert *a, const char *msg, struct kunit_text *out);
void kunit_ptr_not_err_assert_format(const struct kunit_assert *a, const char *msg, struct kunit_text *out);
void kunit_binary_assert_format(const struct kunit_assert *a, const char *msg, struct kunit_text *out);
void kunit_binary_ptr_assert_format(const struct kunit_assert *a, const char *msg, struct kunit_text *out);
void kunit_binary_str_assert_format(const struct kunit_assert *a, const char *msg, struct kunit_text *out);
void kunit_mem_assert_format(const struct kunit_assert *a, const char *msg, struct kunit_text *out);

/* Print the failure (and, for an assertion, end the case); fmt may be NULL. */
void kunit_do_failed_assertion(struct kunit *test, const struct kunit_loc *loc,
			       enum kunit_assert_type type, const struct kunit_assert *assert,
			       assert_format_t assert_format, const char *fmt, ...);

/* Initializers, as macros so their commas do not split _KUNIT_FAILED's arguments. */
#define KUNIT_INIT_UNARY_ASSERT_STRUCT(cond, expect_true) \
	{ .condition = (cond), .expected_true = (expect_true) }
#define KUNIT_INIT_PTR_NOT_ERR_STRUCT(txt, val) { .text = (txt), .value = (val) }
#define KUNIT_INIT_BINARY_ASSERT_STRUCT(assert_class, txt, left_val, right_val)          \
	{ .text = (txt),                                                                 \
	  .left_value = (__typeof__(((struct assert_class *)0)->left_value))(left_val),   \
	  .right_value = (__typeof__(((struct assert_class *)0)->right_value))(right_val) }
#define KUNIT_INIT_MEM_ASSERT_STRUCT(txt, left_val, right_val, size_val) \
	{ .text = (txt), .left_value = (left_val), .right_value = (right_val), .size = (size_val) }

/*
 * The comparison in the operands' own types.  Tests compare u64 results with
 * int literals (KUNIT_EXPECT_EQ(test, ksize(p), 8)) and kmemu builds with
 * -Wextra -Werror: -Wsign-compare is off for this one expression, as it is
 * in Linux's default build.
 */
#define __KUNIT_COMPARE(l, op, r) ({                                        \
	_Pragma("GCC diagnostic push")                                          \
	_Pragma("GCC diagnostic ignored \"-Wsign-compare\"")                    \
	bool __ok = (l) op (r);                                                 \
	_Pragma("GCC diagnostic pop")                                           \
	__ok; })

#define _KUNIT_FAILED(test, assert_type, assert_class, assert_format, INITIALIZER, fmt, ...) \
	do {                                                                          \
		static const struct kunit_loc __loc = KUNIT_CURRENT_LOC;              \
		const struct assert_class __assertion = INITIALIZER;                  \
		kunit_do_failed_assertion(test, &__loc, assert_type,                  \
					  &__assertion.assert, assert_format,         \
					  fmt, ##__VA_ARGS__);                        \
	} while (0)

#define KUNIT_SUCCEED(test) do { (void)(test); } while (0)

#define KUNIT_FAIL_ASSERTION(test, assert_type, fmt, ...) \
	_KUNIT_FAILED(test, assert_type, kunit_fail_assert, kunit_fail_assert_format, {}, \
		      fmt, ##__VA_ARGS__)

#define KUNIT_FAIL(test, fmt, ...) \
	KUNIT_FAIL_ASSERTION(test, KUNIT_EXPECTATION, fmt, ##__VA_ARGS__)

#define KUNIT_UNARY_ASSERTION(test, assert_type, condition, expect_true, fmt, ...)      \
	do {                                                                        \
		if (likely(!!(condition) == !!(expect_true)))                       \
			break;                                                      \
		_KUNIT_FAILED(test, assert_type, kunit_unary_assert,                \
			      kunit_unary_assert_format,                            \
			      KUNIT_INIT_UNARY_ASSERT_STRUCT(#condition, expect_true), \
			      fmt, ##__VA_ARGS__);                                  \
	} while (0)

/* Compared in the operands' own types, printed as long long (as Linux does). */
#define KUNIT_BASE_BINARY_ASSERTION(test, assert_class, format_func, assert_type, left,     \
				    op, right, fmt, ...)                              \
	do {                                                                        \
		const __typeof__(left) __left = (left);                             \
		const __typeof__(right) __right = (right);                          \
		static const struct kunit_binary_assert_text __text = {             \
			.operation = #op, .left_text = #left, .right_text = #right, \
		};                                                                  \
		if (likely(__KUNIT_COMPARE(__left, op, __right)))                   \
			break;                                                      \
		_KUNIT_FAILED(test, assert_type, assert_class, format_func,         \
			      KUNIT_INIT_BINARY_ASSERT_STRUCT(assert_class, &__text, __left, __right), \
			      fmt, ##__VA_ARGS__);                                  \
	} while (0)

#define KUNIT_BINARY_INT_ASSERTION(test, assert_type, left, op, right, fmt, ...)  \
	KUNIT_BASE_BINARY_ASSERTION(test, kunit_binary_assert, kunit_binary_assert_format, \
				    assert_type, left, op, right, fmt, ##__VA_ARGS__)

#define KUNIT_BINARY_PTR_ASSERTION(test, assert_type, left, op, right, fmt, ...)  \
	KUNIT_BASE_BINARY_ASSERTION(test, kunit_binary_ptr_assert,                \
				    kunit_binary_ptr_assert_format, assert_type, left, op, \
				    right, fmt, ##__VA_ARGS__)

#define KUNIT_BINARY_STR_ASSERTION(test, assert_type, left, op, right, fmt, ...)    \
	do {                                                                        \
		const char *__left = (left);                                        \
		const char *__right = (right);                                      \
		static const struct kunit_binary_assert_text __text = {             \
			.operation = #op, .left_text = #left, .right_text = #right, \
		};                                                                  \
		if (likely(strcmp(__left, __right) op 0))                           \
			break;                                                      \
		_KUNIT_FAILED(test, assert_type, kunit_binary_str_assert,           \
			      kunit_binary_str_assert_format,                       \
			      KUNIT_INIT_BINARY_ASSERT_STRUCT(kunit_binary_str_assert, &__text, \
							      __left, __right),     \
			      fmt, ##__VA_ARGS__);                                  \
	} while (0)

#define KUNIT_MEM_ASSERTION(test, assert_type, left, op, right, size_, fmt, ...)    \
	do {                                                                        \
		const void *__left = (left);                                        \
		const void *__right = (right);                                      \
		const size_t __size = (size_);                                      \
		static const struct kunit_binary_assert_text __text = {             \
			.operation = #op, .left_text = #left, .right_text = #right, \
		};                                                                  \
		if (likely(__left && __right) &&                                    \
		    likely(memcmp(__left, __right, __size) op 0))                   \
			break;                                                      \
		_KUNIT_FAILED(test, assert_type, kunit_mem_assert,                  \
			      kunit_mem_assert_format,                              \
			      KUNIT_INIT_MEM_ASSERT_STRUCT(&__text, __left, __right, __size), \
			      fmt, ##__VA_ARGS__);                                  \
	} while (0)


#define KUNIT_PTR_NOT_ERR_OR_NULL_MSG_ASSERTION(test, assert_type, ptr, fmt, ...)   \
	do {                                                                        \
		const __typeof__(ptr) __ptr = (ptr);                                \
		if (!IS_ERR_OR_NULL(__ptr))                                 \
			break;                                                      \
		_KUNIT_FAILED(test, assert_type, kunit_ptr_not_err_assert,          \
			      kunit_ptr_not_err_assert_format,                      \
			      KUNIT_INIT_PTR_NOT_ERR_STRUCT(#ptr, __ptr),           \
			      fmt, ##__VA_ARGS__);                                  \
	} while (0)

/* Every check as KUNIT_EXPECT_x (goes on) and KUNIT_ASSERT_x (ends the case). */
#define KUNIT_EXPECT_TRUE_MSG(test, condition, fmt, ...) \
	KUNIT_UNARY_ASSERTION(test, KUNIT_EXPECTATION, condition, true, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_FALSE_MSG(test, condition, fmt, ...) \
	KUNIT_UNARY_ASSERTION(test, KUNIT_EXPECTATION, condition, false, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_EQ_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_INT_ASSERTION(test, KUNIT_EXPECTATION, left, ==, right, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_NE_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_INT_ASSERTION(test, KUNIT_EXPECTATION, left, !=, right, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_LT_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_INT_ASSERTION(test, KUNIT_EXPECTATION, left, <, right, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_LE_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_INT_ASSERTION(test, KUNIT_EXPECTATION, left, <=, right, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_GT_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_INT_ASSERTION(test, KUNIT_EXPECTATION, left, >, right, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_GE_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_INT_ASSERTION(test, KUNIT_EXPECTATION, left, >=, right, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_PTR_EQ_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_PTR_ASSERTION(test, KUNIT_EXPECTATION, left, ==, right, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_PTR_NE_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_PTR_ASSERTION(test, KUNIT_EXPECTATION, left, !=, right, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_NULL_MSG(test, ptr, fmt, ...) \
	KUNIT_BINARY_PTR_ASSERTION(test, KUNIT_EXPECTATION, ptr, ==, NULL, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_NOT_NULL_MSG(test, ptr, fmt, ...) \
	KUNIT_BINARY_PTR_ASSERTION(test, KUNIT_EXPECTATION, ptr, !=, NULL, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_NOT_ERR_OR_NULL_MSG(test, ptr, fmt, ...) \
	KUNIT_PTR_NOT_ERR_OR_NULL_MSG_ASSERTION(test, KUNIT_EXPECTATION, ptr, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_STREQ_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_STR_ASSERTION(test, KUNIT_EXPECTATION, left, ==, right, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_STRNEQ_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_STR_ASSERTION(test, KUNIT_EXPECTATION, left, !=, right, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_MEMEQ_MSG(test, left, right, size, fmt, ...) \
	KUNIT_MEM_ASSERTION(test, KUNIT_EXPECTATION, left, ==, right, size, fmt, ##__VA_ARGS__)
#define KUNIT_EXPECT_MEMNEQ_MSG(test, left, right, size, fmt, ...) \
	KUNIT_MEM_ASSERTION(test, KUNIT_EXPECTATION, left, !=, right, size, fmt, ##__VA_ARGS__)

#define KUNIT_EXPECT_TRUE(test, condition) KUNIT_EXPECT_TRUE_MSG(test, condition, NULL)
#define KUNIT_EXPECT_FALSE(test, condition) KUNIT_EXPECT_FALSE_MSG(test, condition, NULL)
#define KUNIT_EXPECT_EQ(test, left, right) KUNIT_EXPECT_EQ_MSG(test, left, right, NULL)
#define KUNIT_EXPECT_NE(test, left, right) KUNIT_EXPECT_NE_MSG(test, left, right, NULL)
#define KUNIT_EXPECT_LT(test, left, right) KUNIT_EXPECT_LT_MSG(test, left, right, NULL)
#define KUNIT_EXPECT_LE(test, left, right) KUNIT_EXPECT_LE_MSG(test, left, right, NULL)
#define KUNIT_EXPECT_GT(test, left, right) KUNIT_EXPECT_GT_MSG(test, left, right, NULL)
#define KUNIT_EXPECT_GE(test, left, right) KUNIT_EXPECT_GE_MSG(test, left, right, NULL)
#define KUNIT_EXPECT_PTR_EQ(test, left, right) KUNIT_EXPECT_PTR_EQ_MSG(test, left, right, NULL)
#define KUNIT_EXPECT_PTR_NE(test, left, right) KUNIT_EXPECT_PTR_NE_MSG(test, left, right, NULL)
#define KUNIT_EXPECT_NULL(test, ptr) KUNIT_EXPECT_NULL_MSG(test, ptr, NULL)
#define KUNIT_EXPECT_NOT_NULL(test, ptr) KUNIT_EXPECT_NOT_NULL_MSG(test, ptr, NULL)
#define KUNIT_EXPECT_NOT_ERR_OR_NULL(test, ptr) KUNIT_EXPECT_NOT_ERR_OR_NULL_MSG(test, ptr, NULL)
#define KUNIT_EXPECT_STREQ(test, left, right) KUNIT_EXPECT_STREQ_MSG(test, left, right, NULL)
#define KUNIT_EXPECT_STRNEQ(test, left, right) KUNIT_EXPECT_STRNEQ_MSG(test, left, right, NULL)
#define KUNIT_EXPECT_MEMEQ(test, left, right, size) \
	KUNIT_EXPECT_MEMEQ_MSG(test, left, right, size, NULL)
#define KUNIT_EXPECT_MEMNEQ(test, left, right, size) \
	KUNIT_EXPECT_MEMNEQ_MSG(test, left, right, size, NULL)

#define KUNIT_ASSERT_FAILURE(test, fmt, ...) \
	KUNIT_FAIL_ASSERTION(test, KUNIT_ASSERTION, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_TRUE_MSG(test, condition, fmt, ...) \
	KUNIT_UNARY_ASSERTION(test, KUNIT_ASSERTION, condition, true, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_FALSE_MSG(test, condition, fmt, ...) \
	KUNIT_UNARY_ASSERTION(test, KUNIT_ASSERTION, condition, false, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_EQ_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_INT_ASSERTION(test, KUNIT_ASSERTION, left, ==, right, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_NE_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_INT_ASSERTION(test, KUNIT_ASSERTION, left, !=, right, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_LT_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_INT_ASSERTION(test, KUNIT_ASSERTION, left, <, right, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_LE_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_INT_ASSERTION(test, KUNIT_ASSERTION, left, <=, right, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_GT_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_INT_ASSERTION(test, KUNIT_ASSERTION, left, >, right, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_GE_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_INT_ASSERTION(test, KUNIT_ASSERTION, left, >=, right, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_PTR_EQ_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_PTR_ASSERTION(test, KUNIT_ASSERTION, left, ==, right, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_PTR_NE_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_PTR_ASSERTION(test, KUNIT_ASSERTION, left, !=, right, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_NULL_MSG(test, ptr, fmt, ...) \
	KUNIT_BINARY_PTR_ASSERTION(test, KUNIT_ASSERTION, ptr, ==, NULL, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_NOT_NULL_MSG(test, ptr, fmt, ...) \
	KUNIT_BINARY_PTR_ASSERTION(test, KUNIT_ASSERTION, ptr, !=, NULL, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_NOT_ERR_OR_NULL_MSG(test, ptr, fmt, ...) \
	KUNIT_PTR_NOT_ERR_OR_NULL_MSG_ASSERTION(test, KUNIT_ASSERTION, ptr, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_STREQ_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_STR_ASSERTION(test, KUNIT_ASSERTION, left, ==, right, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_STRNEQ_MSG(test, left, right, fmt, ...) \
	KUNIT_BINARY_STR_ASSERTION(test, KUNIT_ASSERTION, left, !=, right, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_MEMEQ_MSG(test, left, right, size, fmt, ...) \
	KUNIT_MEM_ASSERTION(test, KUNIT_ASSERTION, left, ==, right, size, fmt, ##__VA_ARGS__)
#define KUNIT_ASSERT_MEMNEQ_MSG(test, left, right, size, fmt, ...) \
	KUNIT_MEM_ASSERTION(test, KUNIT_ASSERTION, left, !=, right, size, fmt, ##__VA_ARGS__)

#define KUNIT_ASSERT_TRUE(test, condition) KUNIT_ASSERT_TRUE_MSG(test, condition, NULL)
#define KUNIT_ASSERT_FALSE(test, condition) KUNIT_ASSERT_FALSE_MSG(test, condition, NULL)
#define KUNIT_ASSERT_EQ(test, left, right) KUNIT_ASSERT_EQ_MSG(test, left, right, NULL)
#define KUNIT_ASSERT_NE(test, left, right) KUNIT_ASSERT_NE_MSG(test, left, right, NULL)
#define KUNIT_ASSERT_LT(test, left, right) KUNIT_ASSERT_LT_MSG(test, left, right, NULL)
#define KUNIT_ASSERT_LE(test, left, right) KUNIT_ASSERT_LE_MSG(test, left, right, NULL)
#define KUNIT_ASSERT_GT(test, left, right) KUNIT_ASSERT_GT_MSG(test, left, right, NULL)
#define KUNIT_ASSERT_GE(test, left, right) KUNIT_ASSERT_GE_MSG(test, left, right, NULL)
#define KUNIT_ASSERT_PTR_EQ(test, left, right) KUNIT_ASSERT_PTR_EQ_MSG(test, left, right, NULL)
#define KUNIT_ASSERT_PTR_NE(test, left, right) KUNIT_ASSERT_PTR_NE_MSG(test, left, right, NULL)
#define KUNIT_ASSERT_NULL(test, ptr) KUNIT_ASSERT_NULL_MSG(test, ptr, NULL)
#define KUNIT_ASSERT_NOT_NULL(test, ptr) KUNIT_ASSERT_NOT_NULL_MSG(test, ptr, NULL)
#define KUNIT_ASSERT_NOT_ERR_OR_NULL(test, ptr) KUNIT_ASSERT_NOT_ERR_OR_NULL_MSG(test, ptr, NULL)
#define KUNIT_ASSERT_STREQ(test, left, right) KUNIT_ASSERT_STREQ_MSG(test, left, right, NULL)
#define KUNIT_ASSERT_STRNEQ(test, left, right) KUNIT_ASSERT_STRNEQ_MSG(test, left, right, NULL)
#define KUNIT_ASSERT_MEMEQ(test, left, right, size) \
	KUNIT_ASSERT_MEMEQ_MSG(test, left, right, size, NULL)
#define KUNIT_ASSERT_MEMNEQ(test, left, right, size) \
	KUNIT_ASSERT_MEMNEQ_MSG(test, left, right, size, NULL)

/*
 * KUNIT_EXPECT_KASAN_FAIL(test, expression): the expression must make KASAN
 * report (Linux's mm/kasan/kasan_test.c macro).  A report in a case without it
 * fails the case.  In a kernel without KASAN the case fails without running
 * the expression (it would corrupt memory unchecked): boot the KASAN variant.
 */
#ifdef CONFIG_KASAN
void kunit_kasan_expect_begin(struct kunit *test);
bool kunit_kasan_expect_end(struct kunit *test);
#define KUNIT_EXPECT_KASAN_FAIL(test, expression) do {				\
	kunit_kasan_expect_begin(test);						\
	barrier();								\
	expression;								\
	barrier();								\
	if (!kunit_kasan_expect_end(test))					\
		KUNIT_FAIL(test, "KASAN failure expected in \"" #expression	\
			   "\", but none occurred");				\
} while (0)
#else
#define KUNIT_EXPECT_KASAN_FAIL(test, expression)				\
	KUNIT_FAIL(test, "KASAN failure expected in \"" #expression		\
		   "\", but this kernel has no KASAN (boot the KASAN variant)")
#endif

#endif
