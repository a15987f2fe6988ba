/*
 * kunit.c - the KUnit runner: suites, cases, KTAP output, test-managed memory.
 *
 * Output is KTAP exactly as Linux 6.1 prints it (lib/kunit/test.c and
 * executor.c), so kunit.py and other KTAP parsers read it unchanged:
 *
 *   KTAP version 1                          kunit_print_header()
 *   1..N
 *       KTAP version 1                      kunit_suite_begin()
 *       # Subtest: NAME
 *       1..M
 *       # case: EXPECTATION FAILED at ...   a failed check (kunit_assert.c)
 *       not ok 1 case                       kunit_case_run()
 *       ok 2 other # SKIP reason
 *   # NAME: pass:X fail:Y skip:Z total:T    kunit_suite_end() (when T > 1)
 *   # Totals: pass:X fail:Y skip:Z total:T
 *   not ok 1 NAME
 *
 * Two drivers use the same pieces:
 *  - under QEMU (no host) kunit_run_all() runs every built-in suite at boot;
 *  - under kmemu the host calls kunit_print_header, kunit_suite_begin,
 *    kunit_case_run (once per case, each from the same snapshot),
 *    kunit_case_faulted (after a case died in an oops) and kunit_suite_end,
 *    and concatenates the console text of each call (emu/check/kunit.py); the
 *    statistics the host kept are written to kunit_suite_stats/total_stats.
 *
 * A case runs with kunit_try_catch_save() armed: a failed assertion or
 * kunit_skip() jumps back (kunit_try.S); exit and cleanup run either way,
 * as Linux's catch path does.  While a case runs, every slab object and page
 * block allocated is recorded (kunit_track_*; hooks in slub.c, page_alloc.c,
 * kmalloc.c); what is still live after cleanup is left in kunit_leaks[] for
 * the host (slab pages and SLAB_NOLEAKTRACE caches are the allocators' own).
 */
#include <kunit/test.h>
#include <linux/bug.h>
#include <linux/export.h>
#include <linux/irqflags.h>
#include <linux/panic.h>
#include <linux/preempt.h>
#include <linux/slab.h>
#include <kmemu/bootinfo.h>
#include <kmemu/kunit_track.h>
#include <kmemu/log.h>
#include <kmemu/slub.h>
#include <kmemu/kasan.h>

extern struct kunit_suite *__kunit_suites_start[];
extern struct kunit_suite *__kunit_suites_end[];
extern struct boot_info boot_info;
int kunit_try_catch_save(struct kunit_try_catch *tc) __attribute__((returns_twice));
void __noreturn kunit_try_catch_jump(struct kunit_try_catch *tc);

#define EINTR 4

struct kunit_result_stats {
	unsigned long passed, skipped, failed, total;
};

/* Written by the host before kunit_suite_end (or accumulated by kunit_run_all). */
struct kunit_result_stats kunit_suite_stats, kunit_total_stats;
/* What the last kunit_case_run did, for the host to read in one go. */
struct kunit_case_outcome {
	unsigned long status;             /* enum kunit_status */
	struct kunit_result_stats params; /* per parameter (1 run for a plain case) */
	unsigned long nr_leaks;           /* records in kunit_leaks[] */
	unsigned long leaks_dropped;
} kunit_case_outcome;

/*
 * The layout of what the host reads and writes, as the compiler laid it out:
 * kunit_host_layout[i] is the offset or size named by the i-th string of
 * kunit_host_layout_names.  emu/check/kunit.py reads these two instead of the DWARF
 * (loading the debug info costs seconds; a run should cost milliseconds).
 */
#define KUNIT_LAYOUT(X)                                                          \
	X("suite.name", offsetof(struct kunit_suite, name))                      \
	X("suite.test_cases", offsetof(struct kunit_suite, test_cases))          \
	X("case.size", sizeof(struct kunit_case))                                \
	X("case.run_case", offsetof(struct kunit_case, run_case))                \
	X("case.name", offsetof(struct kunit_case, name))                        \
	X("stats.size", sizeof(struct kunit_result_stats))                       \
	X("stats.passed", offsetof(struct kunit_result_stats, passed))           \
	X("stats.skipped", offsetof(struct kunit_result_stats, skipped))         \
	X("stats.failed", offsetof(struct kunit_result_stats, failed))           \
	X("stats.total", offsetof(struct kunit_result_stats, total))             \
	X("outcome.size", sizeof(struct kunit_case_outcome))                     \
	X("outcome.status", offsetof(struct kunit_case_outcome, status))         \
	X("outcome.params", offsetof(struct kunit_case_outcome, params))         \
	X("outcome.nr_leaks", offsetof(struct kunit_case_outcome, nr_leaks))     \
	X("outcome.leaks_dropped", offsetof(struct kunit_case_outcome, leaks_dropped)) \
	X("leak.size", sizeof(struct kunit_alloc_record))                        \
	X("leak.ptr", offsetof(struct kunit_alloc_record, ptr))                  \
	X("leak.site", offsetof(struct kunit_alloc_record, site))                \
	X("leak.bytes", offsetof(struct kunit_alloc_record, size))               \
	X("leak.cache", offsetof(struct kunit_alloc_record, cache))              \
	X("leak.kind", offsetof(struct kunit_alloc_record, kind))                \
	X("leak.order", offsetof(struct kunit_alloc_record, order))              \
	X("leak.trace", offsetof(struct kunit_alloc_record, trace))              \
	X("leak.trace_depth", KUNIT_TRACK_DEPTH)                                 \
	X("kmem_cache.name", offsetof(struct kmem_cache, name))
#define KUNIT_LAYOUT_VALUE(name, value) value,
#define KUNIT_LAYOUT_NAME(name, value) name "\0"
const unsigned long kunit_host_layout[] = { KUNIT_LAYOUT(KUNIT_LAYOUT_VALUE) };
const char kunit_host_layout_names[] = KUNIT_LAYOUT(KUNIT_LAYOUT_NAME);

/* ------------------------------------------------------------------ printing */

/* Print s line by line (printk's line buffer is short); one newline at the end. */
static void print_lines(const char *s)
{
	for (;;) {
		const char *nl = strchr(s, '\n');
		if (!nl) {
			printk("%s\n", s);
			return;
		}
		printk("%.*s\n", (int)(nl - s), s);
		s = nl + 1;
		if (!*s)
			return;
	}
}

/* kunit_log(): one message, ended by a newline unless it has one (see test.h). */
void kunit_printk_line(const char *fmt, ...)
{
	static char buf[2560];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	print_lines(buf);
}
EXPORT_SYMBOL_GPL(kunit_printk_line);

static void print_ok_not_ok(const char *indent, enum kunit_status status, unsigned long number,
			    const char *name, const char *comment)
{
	bool skip = status == KUNIT_SKIPPED;
	printk("%s%s %lu %s%s%s\n", indent, kunit_status_to_ok_not_ok(status), number, name,
	       skip ? " # SKIP " : "", skip ? comment : "");
}

/* Linux prints statistics only for more than one subtest (stats_enabled=1). */
static void print_stats(const char *indent, const char *name, struct kunit_result_stats s)
{
	if (s.total > 1)
		printk("%s# %s: pass:%lu fail:%lu skip:%lu total:%lu\n", indent, name, s.passed,
		       s.failed, s.skipped, s.total);
}

static void update_stats(struct kunit_result_stats *s, enum kunit_status status)
{
	if (status == KUNIT_SUCCESS)
		s->passed++;
	else if (status == KUNIT_SKIPPED)
		s->skipped++;
	else
		s->failed++;
	s->total++;
}

void kunit_print_header(unsigned long nr_suites)
{
	printk("KTAP version 1\n1..%lu\n", nr_suites);
}

size_t kunit_suite_num_test_cases(struct kunit_suite *suite)
{
	size_t n = 0;
	struct kunit_case *tc;
	kunit_suite_for_each_test_case(suite, tc)
		n++;
	return n;
}
EXPORT_SYMBOL_GPL(kunit_suite_num_test_cases);

/* ---------------------------------------------------- test-managed memory */

struct kunit_alloc {
	struct list_head node;
	void *ptr;
};

void *kunit_kmalloc_array(struct kunit *test, size_t n, size_t size, gfp_t gfp)
{
	if (size && n > (size_t)-1 / size)
		return NULL;
	struct kunit_alloc *r = kmalloc(sizeof(*r), gfp & ~__GFP_ZERO);
	if (!r)
		return NULL;
	r->ptr = kmalloc(n * size, gfp);
	if (!r->ptr) {
		kfree(r);
		return NULL;
	}
	list_add_tail(&r->node, &test->resources);
	return r->ptr;
}
EXPORT_SYMBOL_GPL(kunit_kmalloc_array);

void kunit_kfree(struct kunit *test, const void *ptr)
{
	struct kunit_alloc *r;
	if (!ptr)
		return;
	list_for_each_entry(r, &test->resources, node) {
		if (r->ptr == ptr) {
			list_del(&r->node);
			kfree(r->ptr);
			kfree(r);
			return;
		}
	}
	KUNIT_FAIL(test, "kunit_kfree: %px already freed or not allocated by kunit", ptr);
}
EXPORT_SYMBOL_GPL(kunit_kfree);

/* Free every test-managed block, newest first (Linux releases in reverse). */
void kunit_cleanup(struct kunit *test)
{
	while (!list_empty(&test->resources)) {
		struct kunit_alloc *r = list_entry(test->resources.prev, struct kunit_alloc, node);
		list_del(&r->node);
		kfree(r->ptr);
		kfree(r);
	}
}
EXPORT_SYMBOL_GPL(kunit_cleanup);

/* ------------------------------------------------------------ try / catch */

void kunit_try_catch_throw(struct kunit_try_catch *tc)
{
	if (!tc->armed)
		panic("kunit: an assertion or kunit_skip() outside a running test case");
	/* the case's frames are abandoned: give back what it may have disabled */
	preempt_count = tc->preempt;
	if (tc->flags & X86_EFLAGS_IF)
		local_irq_enable();
	else
		local_irq_disable();
	kunit_try_catch_jump(tc);
}
EXPORT_SYMBOL_GPL(kunit_try_catch_throw);

void kunit_init_test(struct kunit *test, const char *name, char *log)
{
	INIT_LIST_HEAD(&test->resources);
	test->name = name;
	test->log = log;
	test->status = KUNIT_SUCCESS;
	test->status_comment[0] = 0;
	test->try_catch.armed = 0;
}
EXPORT_SYMBOL_GPL(kunit_init_test);

/* The case running now (Linux: current->kunit_test); KASAN reports fail it. */
struct kunit *kunit_current;

/* Run fn(test, arg) so that a throw from inside returns here; false if thrown. */
static bool kunit_try(struct kunit *test, void (*fn)(struct kunit *, void *), void *arg)
{
	struct kunit_try_catch *tc = &test->try_catch;
	local_save_flags(tc->flags);
	tc->preempt = preempt_count;
	if (kunit_try_catch_save(tc)) {
		kasan_unpoison_stack_below((u64)__builtin_frame_address(0));
		tc->armed = 0;
		return false;
	}
	tc->armed = 1;
	fn(test, arg);
	tc->armed = 0;
	return true;
}

static void run_init_and_case(struct kunit *test, void *arg)
{
	struct kunit_suite *suite = ((void **)arg)[0];
	struct kunit_case *tc = ((void **)arg)[1];
	if (suite->init) {
		int ret = suite->init(test);
		if (ret) {
			kunit_err(test, "failed to initialize: %d\n", ret);
			kunit_set_failure(test);
			return;
		}
	}
	tc->run_case(test);
}

static void run_exit(struct kunit *test, void *arg)
{
	struct kunit_suite *suite = arg;
	if (suite->exit)
		suite->exit(test);
}

/* One run of a case (one parameter): init, case, then exit and cleanup always. */
static void run_case_catch_errors(struct kunit_suite *suite, struct kunit_case *tc,
				  struct kunit *test)
{
	void *arg[2] = { suite, tc };
	kunit_init_test(test, tc->name, NULL);
	kunit_current = test;
	kunit_try(test, run_init_and_case, arg);
	kunit_try(test, run_exit, suite);
	kunit_current = NULL;
	kunit_cleanup(test);
	if (test->status == KUNIT_FAILURE)
		tc->status = KUNIT_FAILURE;
	else if (tc->status != KUNIT_FAILURE && test->status == KUNIT_SUCCESS)
		tc->status = KUNIT_SUCCESS;
}

/* A parameterised case: a nested KTAP block with one line per parameter. */
static void run_params(struct kunit_suite *suite, struct kunit_case *tc, struct kunit *test,
		       struct kunit_result_stats *ps)
{
	char desc[KUNIT_PARAM_DESC_SIZE];
	desc[0] = 0;
	test->param_value = tc->generate_params(NULL, desc);
	test->param_index = 0;
	printk(KUNIT_SUBTEST_INDENT KUNIT_SUBTEST_INDENT "KTAP version 1\n");
	printk(KUNIT_SUBTEST_INDENT KUNIT_SUBTEST_INDENT "# Subtest: %s\n", tc->name);
	while (test->param_value) {
		run_case_catch_errors(suite, tc, test);
		if (!desc[0])
			snprintf(desc, sizeof(desc), "param-%d", test->param_index);
		printk(KUNIT_SUBTEST_INDENT KUNIT_SUBTEST_INDENT "%s %d %s\n",
		       kunit_status_to_ok_not_ok(test->status), test->param_index + 1, desc);
		desc[0] = 0;
		test->param_value = tc->generate_params(test->param_value, desc);
		test->param_index++;
		update_stats(ps, test->status);
	}
}

/* --------------------------------------------------------- the host's entries */

/*
 * Run case `index` of suite as case number `number` of its KTAP block and
 * print its lines.  Returns the case's enum kunit_status; the per-parameter
 * counts are in kunit_case_outcome, what it leaked in kunit_leaks[].
 */
int kunit_case_run(struct kunit_suite *suite, unsigned long index, unsigned long number)
{
	struct kunit_case *tc = &suite->test_cases[index];
	struct kunit test = { .param_value = NULL, .param_index = 0 };
	struct kunit_result_stats ps = { 0 };

	kunit_track_begin();
	tc->status = KUNIT_SKIPPED;
	if (!tc->generate_params) {
		run_case_catch_errors(suite, tc, &test);
		update_stats(&ps, test.status);
	} else {
		run_params(suite, tc, &test, &ps);
	}
	kunit_track_end();
	print_stats(KUNIT_SUBTEST_INDENT, tc->name, ps);
	print_ok_not_ok(KUNIT_SUBTEST_INDENT, tc->status, number, tc->name, test.status_comment);
	kunit_case_outcome.status = tc->status;
	kunit_case_outcome.params = ps;
	kunit_case_outcome.nr_leaks = kunit_nr_leaks;
	kunit_case_outcome.leaks_dropped = kunit_leaks_dropped;
	return tc->status;
}

/*
 * The case died in an oops, or ran past the host's time budget (the host
 * restored the machine to before it): report it as Linux reports a test
 * thread that faulted ("try faulted", as since Linux 6.9; 6.1 only noticed
 * after its 300 s timeout) or that timed out.
 */
void kunit_case_faulted(struct kunit_suite *suite, unsigned long index, unsigned long number, unsigned long timed_out)
{
	struct kunit_case *tc = &suite->test_cases[index];
	struct kunit test;
	kunit_init_test(&test, tc->name, NULL);
	if (timed_out) {
		kunit_err(&test, "try timed out\n");
		kunit_err(&test, "test case timed out\n");
	} else {
		kunit_err(&test, "try faulted\n");
		kunit_err(&test, "internal error occurred preventing test case from running: %d\n",
			  -EINTR);
	}
	print_ok_not_ok(KUNIT_SUBTEST_INDENT, KUNIT_FAILURE, number, tc->name, "");
}

/* suite_init, then the subtest header with `nr_cases` cases; the init's error or 0. */
int kunit_suite_begin(struct kunit_suite *suite, unsigned long nr_cases)
{
	kunit_track_prepare(); /* before the host snapshots the suite */
	suite->status_comment[0] = 0;
	suite->suite_init_err = 0;
	if (suite->suite_init) {
		suite->suite_init_err = suite->suite_init(suite);
		if (suite->suite_init_err) {
			kunit_err(suite, KUNIT_SUBTEST_INDENT "# failed to initialize (%d)",
				  suite->suite_init_err);
			return suite->suite_init_err;
		}
	}
	printk(KUNIT_SUBTEST_INDENT "KTAP version 1\n");
	printk(KUNIT_SUBTEST_INDENT "# Subtest: %s\n", suite->name);
	printk(KUNIT_SUBTEST_INDENT "1..%lu\n", nr_cases);
	return 0;
}

/* suite_exit, the statistics lines and the suite's own result line. */
void kunit_suite_end(struct kunit_suite *suite, unsigned long number)
{
	enum kunit_status status = KUNIT_SKIPPED;
	if (!suite->suite_init_err) {
		if (suite->suite_exit)
			suite->suite_exit(suite);
		print_stats("", suite->name, kunit_suite_stats);
		if (kunit_total_stats.total > 1)
			printk("# Totals: pass:%lu fail:%lu skip:%lu total:%lu\n",
			       kunit_total_stats.passed, kunit_total_stats.failed,
			       kunit_total_stats.skipped, kunit_total_stats.total);
	}
	if (suite->suite_init_err || kunit_suite_stats.failed)
		status = KUNIT_FAILURE;
	else if (kunit_suite_stats.passed)
		status = KUNIT_SUCCESS;
	print_ok_not_ok("", status, number, suite->name, suite->status_comment);
}

/* -------------------------------------------- the executor (no host: QEMU) */

/* Shell-style match of * and ? (Linux's glob_match without classes). */
static bool glob_match(const char *pat, const char *s)
{
	if (!*pat)
		return !*s;
	if (*pat == '*')
		return glob_match(pat + 1, s) || (*s && glob_match(pat, s + 1));
	if (!*s)
		return false;
	return (*pat == '?' || *pat == *s) && glob_match(pat + 1, s + 1);
}

/* kunit.filter_glob=SUITE[.CASE] from the command line, split in two. */
static void filter_from_cmdline(char *suite_glob, char *case_glob, size_t size)
{
	const char *f = cmdline_find(boot_info.cmdline, "kunit.filter_glob");
	size_t i = 0, j = 0;
	strscpy(suite_glob, "*", size);
	strscpy(case_glob, "*", size);
	if (!f)
		return;
	for (; f[i] && f[i] != ' ' && f[i] != '.' && i + 1 < size; i++)
		suite_glob[i] = f[i];
	suite_glob[i] = 0;
	if (f[i] != '.')
		return;
	for (i++; f[i] && f[i] != ' ' && j + 1 < size; i++, j++)
		case_glob[j] = f[i];
	case_glob[j] = 0;
}

static unsigned long matching_cases(struct kunit_suite *s, const char *case_glob)
{
	unsigned long n = 0;
	struct kunit_case *tc;
	kunit_suite_for_each_test_case(s, tc)
		n += glob_match(case_glob, tc->name);
	return n;
}

static bool run_one_suite(struct kunit_suite *s, const char *case_glob, unsigned long number)
{
	struct kunit_result_stats ss = { 0 }, ts = { 0 };
	unsigned long index = 0, pos = 0;
	struct kunit_case *tc;

	if (!kunit_suite_begin(s, matching_cases(s, case_glob))) {
		kunit_suite_for_each_test_case(s, tc) {
			if (glob_match(case_glob, tc->name)) {
				kunit_case_run(s, index, ++pos);
				update_stats(&ss, kunit_case_outcome.status);
				ts.passed += kunit_case_outcome.params.passed;
				ts.failed += kunit_case_outcome.params.failed;
				ts.skipped += kunit_case_outcome.params.skipped;
				ts.total += kunit_case_outcome.params.total;
			}
			index++;
		}
	}
	kunit_suite_stats = ss;
	kunit_total_stats = ts;
	kunit_suite_end(s, number);
	return s->suite_init_err || ss.failed;
}

/*
 * Linux's entry for one suite (what a module's suites go through there):
 * run it whole, numbered after the suites run before it.  true if it failed.
 */
int kunit_run_tests(struct kunit_suite *suite)
{
	static unsigned long suite_counter;
	return run_one_suite(suite, "*", ++suite_counter);
}
EXPORT_SYMBOL_GPL(kunit_run_tests);

/* Run every built-in suite the filter selects; the number of failed suites. */
int kunit_run_all(void)
{
	char suite_glob[128], case_glob[128];
	unsigned long n = 0, number = 0;
	int failed = 0;

	filter_from_cmdline(suite_glob, case_glob, sizeof(suite_glob));
	for (struct kunit_suite **s = __kunit_suites_start; s < __kunit_suites_end; s++)
		n += glob_match(suite_glob, (*s)->name) && matching_cases(*s, case_glob);
	if (!n)
		return 0;
	kunit_print_header(n);
	for (struct kunit_suite **s = __kunit_suites_start; s < __kunit_suites_end; s++)
		if (glob_match(suite_glob, (*s)->name) && matching_cases(*s, case_glob))
			failed += run_one_suite(*s, case_glob, ++number);
	return failed;
}
