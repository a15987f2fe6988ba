/*
 * kunit_assert.c - the text of a failed KUnit check, in Linux's words.
 *
 * kunit_do_failed_assertion() builds "EXPECTATION FAILED at FILE:LINE" (or
 * ASSERTION) followed by the check's own explanation, prints it as one
 * kunit_err() message (so only the first line carries "    # case: ") and,
 * for an assertion, ends the case.  The explanations follow Linux's
 * lib/kunit/assert.c formats (with the hex value after each integer, as
 * Linux prints since 6.2): an operand spelled as the literal of its own
 * value is not repeated, a _MSG text comes after a newline, unindented.
 */
#include <kunit/test.h>
#include <linux/export.h>

void kunit_text_add(struct kunit_text *t, const char *fmt, ...)
{
	va_list ap;
	if (t->len + 1 >= t->size)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n < t->size - t->len ? (size_t)n : t->size - t->len - 1;
}
EXPORT_SYMBOL_GPL(kunit_text_add);

static void print_msg(const char *msg, struct kunit_text *out)
{
	if (msg)
		kunit_text_add(out, "\n%s", msg);
}

#define assert_of(a, type) ((const struct type *)(a))

void kunit_fail_assert_format(const struct kunit_assert *a, const char *msg, struct kunit_text *out)
{
	(void)a;
	kunit_text_add(out, "%s", msg ? msg : "");
}
EXPORT_SYMBOL_GPL(kunit_fail_assert_format);

void kunit_unary_assert_format(const struct kunit_assert *a, const char *msg, struct kunit_text *out)
{
	const struct kunit_unary_assert *u = assert_of(a, kunit_unary_assert);
	if (u->expected_true)
		kunit_text_add(out, KUNIT_SUBTEST_INDENT "Expected %s to be true, but is false\n",
			       u->condition);
	else
		kunit_text_add(out, KUNIT_SUBTEST_INDENT "Expected %s to be false, but is true\n",
			       u->condition);
	print_msg(msg, out);
}
EXPORT_SYMBOL_GPL(kunit_unary_assert_format);

void kunit_ptr_not_err_assert_format(const struct kunit_assert *a, const char *msg,
				     struct kunit_text *out)
{
	const struct kunit_ptr_not_err_assert *p = assert_of(a, kunit_ptr_not_err_assert);
	if (!p->value)
		kunit_text_add(out, KUNIT_SUBTEST_INDENT "Expected %s is not null, but is\n", p->text);
	else
		kunit_text_add(out, KUNIT_SUBTEST_INDENT "Expected %s is not error, but is: %ld\n",
			       p->text, (long)p->value);
	print_msg(msg, out);
}
EXPORT_SYMBOL_GPL(kunit_ptr_not_err_assert_format);

/* Is text the decimal spelling of value ("5" for 5)? Then it is not repeated. */
static bool is_literal(const char *text, long long value)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%lld", value);
	return !strcmp(buf, text);
}

static void binary_head(const struct kunit_binary_assert_text *t, struct kunit_text *out)
{
	kunit_text_add(out, KUNIT_SUBTEST_INDENT "Expected %s %s %s, but\n", t->left_text,
		       t->operation, t->right_text);
}

void kunit_binary_assert_format(const struct kunit_assert *a, const char *msg,
				struct kunit_text *out)
{
	const struct kunit_binary_assert *b = assert_of(a, kunit_binary_assert);
	binary_head(b->text, out);
	if (!is_literal(b->text->left_text, b->left_value))
		kunit_text_add(out, KUNIT_SUBSUBTEST_INDENT "%s == %lld (0x%llx)\n",
			       b->text->left_text, b->left_value, (unsigned long long)b->left_value);
	if (!is_literal(b->text->right_text, b->right_value))
		kunit_text_add(out, KUNIT_SUBSUBTEST_INDENT "%s == %lld (0x%llx)",
			       b->text->right_text, b->right_value, (unsigned long long)b->right_value);
	print_msg(msg, out);
}
EXPORT_SYMBOL_GPL(kunit_binary_assert_format);

void kunit_binary_ptr_assert_format(const struct kunit_assert *a, const char *msg,
				    struct kunit_text *out)
{
	const struct kunit_binary_ptr_assert *b = assert_of(a, kunit_binary_ptr_assert);
	binary_head(b->text, out);
	kunit_text_add(out, KUNIT_SUBSUBTEST_INDENT "%s == %px\n", b->text->left_text, b->left_value);
	kunit_text_add(out, KUNIT_SUBSUBTEST_INDENT "%s == %px", b->text->right_text, b->right_value);
	print_msg(msg, out);
}
EXPORT_SYMBOL_GPL(kunit_binary_ptr_assert_format);

/* A quoted literal whose inside starts the value is not repeated (Linux compares len-2). */
static bool is_str_literal(const char *text, const char *value)
{
	size_t len = strlen(text);
	if (len < 2 || text[0] != '"' || text[len - 1] != '"')
		return false;
	return !strncmp(text + 1, value, len - 2);
}

void kunit_binary_str_assert_format(const struct kunit_assert *a, const char *msg,
				    struct kunit_text *out)
{
	const struct kunit_binary_str_assert *b = assert_of(a, kunit_binary_str_assert);
	binary_head(b->text, out);
	if (!is_str_literal(b->text->left_text, b->left_value))
		kunit_text_add(out, KUNIT_SUBSUBTEST_INDENT "%s == \"%s\"\n", b->text->left_text,
			       b->left_value);
	if (!is_str_literal(b->text->right_text, b->right_value))
		kunit_text_add(out, KUNIT_SUBSUBTEST_INDENT "%s == \"%s\"", b->text->right_text,
			       b->right_value);
	print_msg(msg, out);
}
EXPORT_SYMBOL_GPL(kunit_binary_str_assert_format);

/* 16 bytes a row; a byte that differs from the other buffer is shown as <xx>. */
static void hexdump(struct kunit_text *out, const u8 *buf, const u8 *other, size_t len)
{
	kunit_text_add(out, KUNIT_SUBSUBTEST_INDENT);
	for (size_t i = 0; i < len; i++) {
		if (i && !(i % 16))
			kunit_text_add(out, "\n" KUNIT_SUBSUBTEST_INDENT);
		if (buf[i] != other[i])
			kunit_text_add(out, "<%02x>", buf[i]);
		else
			kunit_text_add(out, " %02x ", buf[i]);
	}
}

void kunit_mem_assert_format(const struct kunit_assert *a, const char *msg, struct kunit_text *out)
{
	const struct kunit_mem_assert *m = assert_of(a, kunit_mem_assert);
	if (!m->left_value || !m->right_value) {
		kunit_text_add(out, KUNIT_SUBTEST_INDENT "Expected %s is not null, but is\n",
			       !m->left_value ? m->text->left_text : m->text->right_text);
		return;
	}
	binary_head(m->text, out);
	kunit_text_add(out, KUNIT_SUBSUBTEST_INDENT "%s ==\n", m->text->left_text);
	hexdump(out, m->left_value, m->right_value, m->size);
	kunit_text_add(out, "\n");
	kunit_text_add(out, KUNIT_SUBSUBTEST_INDENT "%s ==\n", m->text->right_text);
	hexdump(out, m->right_value, m->left_value, m->size);
	print_msg(msg, out);
}
EXPORT_SYMBOL_GPL(kunit_mem_assert_format);

/*
 * A check failed: mark the case failed, print the report, and for an
 * assertion leave the case (kunit_try_catch_throw does not return).
 * One CPU and cases never run in interrupts, so one static buffer serves.
 */
void kunit_do_failed_assertion(struct kunit *test, const struct kunit_loc *loc,
			       enum kunit_assert_type type, const struct kunit_assert *assert,
			       assert_format_t assert_format, const char *fmt, ...)
{
	static char report[2048];
	char msg[256];
	struct kunit_text out = { report, sizeof(report), 0 };

	kunit_set_failure(test);
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	report[0] = 0;
	kunit_text_add(&out, "%s FAILED at %s:%d\n",
		       type == KUNIT_ASSERTION ? "ASSERTION" : "EXPECTATION", loc->file, loc->line);
	assert_format(assert, fmt ? msg : NULL, &out);
	kunit_err(test, "%s", report);
	if (type == KUNIT_ASSERTION)
		kunit_try_catch_throw(&test->try_catch);
}
EXPORT_SYMBOL_GPL(kunit_do_failed_assertion);
