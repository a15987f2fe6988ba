/*
 * fault_inject.c - Linux's fault injection for the allocators: failslab,
 * fail_page_alloc and fail-nth, plus the allocation log of the host's failure
 * sweep (see <kmemu/fault_inject.h> for the contract).
 *
 * should_fail() follows lib/fault-inject.c (6.1): probability 0 never fails;
 * task-filter limits failures to task context (kmemu's one context always has
 * make-it-fail); times 0 stops failing (-1: no limit); space lets that many
 * bytes through first; interval fails every n-th call that got that far;
 * then a probability test and the call-chain filter (require-start/end,
 * reject-start/end over stacktrace-depth frames).  A failure is reported
 * ("FAULT_INJECTION: forcing a failure." and, with verbose 2, the stack) unless
 * the request carried __GFP_NOWARN, and becomes a fault_injection event.
 * Differences from Linux, on purpose: no rate limit on the report (tests want
 * every one, as with might_sleep); __GFP_NOWARN silences one request, not the
 * attribute for good (6.1's sticky no_warn); fail-nth counts an allocation
 * whatever ignore-gfp-wait says (Linux's default Y would hide every GFP_KERNEL
 * allocation from it), and only the allocations the code asked for.
 */
#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/preempt.h>
#include <linux/printk.h>
#include <linux/string.h>
#include <kmemu/abi.h>
#include <kmemu/alloc_hooks.h>
#include <kmemu/fault_inject.h>
#include <kmemu/log.h>
#include <kmemu/slub.h>
#include <kmemu/xorshift.h>
#include <kmemu/traps.h>

#define FAULT_STACK_MAX 32 /* Linux's MAX_STACK_TRACE_DEPTH */

/* Linux's FAULT_ATTR_INITIALIZER plus each attribute's own defaults. */
#define FAULT_ATTR_INIT(nm, highmem, order)                                   \
	{ .interval = 1, .times = 1, .verbose = 2, .stacktrace_depth = 32,    \
	  .require_end = ~0ULL, .ignore_gfp_wait = 1,                         \
	  .ignore_gfp_highmem = (highmem), .min_order = (order), .name = (nm) }

struct fault_attr failslab = FAULT_ATTR_INIT("failslab", 0, 0);
struct fault_attr fail_page_alloc = FAULT_ATTR_INIT("fail_page_alloc", 1, 1);

bool fault_inject_active; /* mirrors fault_inject_key, for the host to read */
DEFINE_STATIC_KEY_FALSE(fault_inject_key);
u32 fault_nest;
struct fault_state fault_state;
struct fault_record fault_log[FAULT_LOG_MAX];

/* For the host: the attribute names in slot order, and the sizes it needs. */
#define FAULT_ATTR_NAME(name) #name "\0"
const char fault_attr_names[] = FAULT_ATTR_FIELDS(FAULT_ATTR_NAME);
const unsigned long fault_host_layout[] = {
	sizeof(struct fault_record), FAULT_TRACE_DEPTH, FAULT_LOG_MAX, FAULT_FAIL_MAX,
	offsetof(struct fault_state, fail_at), offsetof(struct fault_state, nr_records),
};

/* prandom_u32(): a fixed xorshift, so runs repeat exactly. */
static u64 fault_random_state = XORSHIFT_SEED;

static u32 fault_random(void)
{
	return (u32)(xorshift64(&fault_random_state) >> 32);
}

/* fail_stacktrace: does the call chain pass the required range and miss the rejected one? */
static noinline bool fail_stacktrace(const struct fault_attr *attr)
{
	bool found = attr->require_start == 0 && attr->require_end == ~0ULL;
	int depth = (int)min_t(u64, attr->stacktrace_depth, FAULT_STACK_MAX);
	if (depth == 0 || (found && !attr->reject_start && !attr->reject_end))
		return found;
	u64 entries[FAULT_STACK_MAX];
	int n = save_stack_trace((u64)__builtin_frame_address(0), entries, depth);
	for (int i = 0; i < n; i++) {
		if (attr->reject_start <= entries[i] && entries[i] < attr->reject_end)
			return false;
		if (attr->require_start <= entries[i] && entries[i] < attr->require_end)
			found = true;
	}
	return found;
}

/* fail_dump: Linux's report, then the event (only what was printed becomes one). */
static noinline void fail_dump(const struct fault_attr *attr, u32 kind, gfp_t gfp, u64 size)
{
	static struct kmemu_event ev;
	if (!attr->verbose)
		return;
	printk(KERN_NOTICE "FAULT_INJECTION: forcing a failure.\n"
	       "name %s, interval %llu, probability %llu, space %lld, times %lld\n",
	       attr->name, attr->interval, attr->probability, (s64)attr->space, (s64)attr->times);
	if (attr->verbose > 1)
		dump_stack();
	memset(&ev, 0, sizeof(ev));
	ev.type = KMEMU_EV_FAULT_INJECTION;
	ev.args[0] = kind;
	ev.args[1] = gfp;
	ev.args[2] = size;
	ev.args[3] = fault_state.seq;
	ev.args[4] = attr == &failslab ? 0 : 1;
	snprintf(ev.msg, sizeof(ev.msg), "FAULT_INJECTION: forcing a failure.");
	ev.nr_trace = save_stack_trace((u64)__builtin_frame_address(0), ev.trace, KMEMU_EV_TRACE);
	host_event(&ev);
}

/* The end of every failure, counted or by the attributes: report, spend one of times. */
static bool fault_fail(struct fault_attr *attr, u32 kind, gfp_t gfp, u64 size)
{
	if (!(gfp & __GFP_NOWARN))
		fail_dump(attr, kind, gfp, size);
	if ((s64)attr->times != -1 && attr->times)
		attr->times--;
	return true;
}

/* should_fail: the attribute tests in lib/fault-inject.c's order. */
static bool should_fail(struct fault_attr *attr, s64 size)
{
	if (attr->probability == 0)
		return false;
	if (attr->task_filter && !in_task())
		return false;
	if (attr->times == 0)
		return false;
	if ((s64)attr->space > size) {
		attr->space -= size;
		return false;
	}
	if (attr->interval > 1 && ++attr->count % attr->interval)
		return false;
	if (attr->probability <= fault_random() % 100)
		return false;
	return fail_stacktrace(attr);
}

static bool in_fail_set(u64 seq)
{
	for (u64 i = 0; i < fault_state.nr_fail_at && i < FAULT_FAIL_MAX; i++)
		if (fault_state.fail_at[i] == seq)
			return true;
	return false;
}

/*
 * fault_count: an allocation the code asked for (task context, not inside another
 * allocator).  Numbers it, logs it while recording, and says whether it is one
 * the host asked to fail (fail-nth).
 */
static noinline bool fault_count(u32 kind, gfp_t gfp, u64 size)
{
	if (fault_nest || !in_task() || (!fault_state.nr_fail_at && !fault_state.recording))
		return false;
	u64 seq = ++fault_state.seq;
	bool failing = in_fail_set(seq);
	if (failing)
		fault_state.fired++;
	if (fault_state.recording) {
		if (fault_state.nr_records < FAULT_LOG_MAX) {
			struct fault_record *r = &fault_log[fault_state.nr_records++];
			r->kind = kind;
			r->gfp = gfp;
			r->size = size;
			r->failed = failing;
			memset(r->trace, 0, sizeof(r->trace));
			save_stack_trace((u64)__builtin_frame_address(0), r->trace,
					 FAULT_TRACE_DEPTH);
		} else {
			fault_state.records_dropped++;
		}
	}
	return failing;
}

/* failslab's decision for an allocation of size bytes (the cache's object size). */
static __always_inline bool failslab_decide(u64 size, gfp_t gfp)
{
	if (gfp & __GFP_NOFAIL)
		return false;
	if (fault_count(FAULT_SLAB, gfp, size))
		return fault_fail(&failslab, FAULT_SLAB, gfp, size);
	if (failslab.ignore_gfp_wait && (gfp & __GFP_DIRECT_RECLAIM))
		return false;
	if (should_fail(&failslab, size))
		return fault_fail(&failslab, FAULT_SLAB, gfp, size);
	return false;
}

/* should_failslab (Linux: __should_failslab, from slab_pre_alloc_hook). */
bool __should_failslab(struct kmem_cache *s, gfp_t gfp)
{
	return failslab_decide(s->object_size, gfp);
}

/* should_failslab_bytes: SLOB's kmalloc, which has no cache (size: the request). */
bool __should_failslab_bytes(u64 size, gfp_t gfp)
{
	return failslab_decide(size, gfp);
}

/* should_fail_alloc_page (Linux: from prepare_alloc_pages). */
bool __should_fail_alloc_page(gfp_t gfp, unsigned int order)
{
	if (gfp & __GFP_NOFAIL)
		return false;
	if (fault_count(FAULT_PAGES, gfp, order))
		return fault_fail(&fail_page_alloc, FAULT_PAGES, gfp, order);
	if (order < fail_page_alloc.min_order)
		return false;
	if (fail_page_alloc.ignore_gfp_highmem && (gfp & __GFP_HIGHMEM))
		return false;
	if (fail_page_alloc.ignore_gfp_wait && (gfp & __GFP_DIRECT_RECLAIM))
		return false;
	if (should_fail(&fail_page_alloc, 1LL << order))
		return fault_fail(&fail_page_alloc, FAULT_PAGES, gfp, order);
	return false;
}

/*
 * should_fail_vmalloc: only counted (fail-nth, the sweep).  Linux has no
 * attribute of its own for vmalloc: the attributes reach its slab and page
 * allocations inside.  A counted failure reports under fail_page_alloc.
 */
bool __should_fail_vmalloc(gfp_t gfp, u64 size)
{
	if (gfp & __GFP_NOFAIL)
		return false;
	if (fault_count(FAULT_VMALLOC, gfp, size))
		return fault_fail(&fail_page_alloc, FAULT_VMALLOC, gfp, size);
	return false;
}

/*
 * fault_inject_set_active - the host's switch for the hooks (after it changed an
 * attribute or armed counting).  The one place that turns them on or off, so the
 * hooks' static key (fault_inject_key) is patched in one place.
 */
void fault_inject_set_active(u64 on)
{
	if (fault_inject_active == !!on)
		return;
	fault_inject_active = !!on;
	if (on) {
		static_branch_enable(&fault_inject_key);
		static_branch_inc(&slab_hooks_key); /* <kmemu/alloc_hooks.h> */
		static_branch_inc(&page_hooks_key);
	} else {
		static_branch_disable(&fault_inject_key);
		static_branch_dec(&slab_hooks_key);
		static_branch_dec(&page_hooks_key);
	}
}

/* setup_fault_attr: "<interval>,<probability>,<space>,<times>", all four or nothing. */
static void setup_fault_attr(struct fault_attr *attr, const char *str)
{
	s64 v[4];
	char *end = (char *)str;
	for (int i = 0; i < 4; i++) {
		const char *p = end;
		v[i] = simple_strtol(p, &end, 0);
		if (end == p || (i < 3 && *end != ',') || (i == 3 && *end && *end != ' ')) {
			printk(KERN_WARNING "FAULT_INJECTION: failed to parse arguments\n");
			return;
		}
		end++;
	}
	attr->interval = (u64)v[0];
	attr->probability = (u64)v[1];
	attr->space = (u64)v[2];
	attr->times = (u64)v[3];
	if (attr->probability)
		fault_inject_set_active(1);
}

/* failslab= and fail_page_alloc= on the command line (Linux's __setup parameters). */
void fault_inject_setup(const char *cmdline)
{
	const char *v = cmdline_find(cmdline, "failslab");
	if (v)
		setup_fault_attr(&failslab, v);
	v = cmdline_find(cmdline, "fail_page_alloc");
	if (v)
		setup_fault_attr(&fail_page_alloc, v);
}
