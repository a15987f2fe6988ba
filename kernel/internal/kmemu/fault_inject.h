/*
 * <kmemu/fault_inject.h> - Linux's fault injection (failslab, fail_page_alloc,
 * fail-nth) and the allocation log the host's failure sweep reads.
 *
 * The allocators call should_failslab() (slab_alloc, where Linux has
 * slab_pre_alloc_hook), should_fail_alloc_page() (__alloc_pages, where Linux has
 * prepare_alloc_pages) and should_fail_vmalloc() (__vmalloc_node_range).  Each
 * is a 5-byte nop while the static key fault_inject_key is off.
 *
 * Two mechanisms share the hooks:
 *  - the attributes (struct fault_attr, Linux's debugfs files with '-' made '_'),
 *    which apply at every hook, nested or not, as in Linux;
 *  - counting (fail-nth, and the log kept while recording): only allocations
 *    the code itself asked for, in task context.  An allocation an allocator
 *    makes for itself (a new slab's pages, vmalloc's vm_struct, page array,
 *    pages and page tables) runs inside fault_nest_enter()/exit() and is not
 *    counted, so the numbering depends on the code under test and not on the
 *    allocator's state.  vmalloc counts as one allocation.
 * The host reads and writes fault_state and the attributes (emu/machine/faults.py);
 * their layout is published in fault_host_layout[] (one definition).
 */
#ifndef KMEMU_FAULT_INJECT_H
#define KMEMU_FAULT_INJECT_H
#include <linux/types.h>
#include <linux/jump_label.h>
#include <linux/compiler.h>

/* Every attribute is a u64 slot, named as Linux's debugfs file with '-' made '_'. */
#define FAULT_ATTR_FIELDS(X)                                                   \
	X(probability) X(interval) X(times) X(space) X(verbose) X(task_filter) \
	X(stacktrace_depth) X(require_start) X(require_end) X(reject_start)    \
	X(reject_end) X(ignore_gfp_wait) X(ignore_gfp_highmem) X(min_order)

#define FAULT_ATTR_FIELD(name) u64 name;
struct fault_attr {
	FAULT_ATTR_FIELDS(FAULT_ATTR_FIELD)
	u64 count;        /* calls that reached the interval test */
	const char *name; /* "failslab", "fail_page_alloc" */
};

extern struct fault_attr failslab, fail_page_alloc;

enum fault_kind {
	FAULT_SLAB = 1,    /* kmem_cache_alloc, kmalloc: size in bytes */
	FAULT_PAGES = 2,   /* the page allocator: size = order */
	FAULT_VMALLOC = 3, /* vmalloc and friends: size in bytes */
};

#define FAULT_FAIL_MAX 8     /* counted allocations one run may be told to fail */
#define FAULT_TRACE_DEPTH 8  /* return addresses kept per logged allocation */
#define FAULT_LOG_MAX 512

/* One counted allocation, in the order they were made. */
struct fault_record {
	u64 kind;
	u64 gfp;
	u64 size;   /* bytes, or the order for FAULT_PAGES */
	u64 failed; /* this one was made to fail */
	u64 trace[FAULT_TRACE_DEPTH]; /* return addresses from the allocator up */
};

/* The counting state, written by the host between runs. */
struct fault_state {
	u64 seq;                    /* counted allocations so far */
	u64 fail_at[FAULT_FAIL_MAX]; /* seq numbers (from 1) that must fail */
	u64 nr_fail_at;
	u64 fired;                  /* how many of them did */
	u64 recording;              /* keep the log */
	u64 nr_records;
	u64 records_dropped;
};

extern bool fault_inject_active; /* mirrors fault_inject_key, for the host */
DECLARE_STATIC_KEY_FALSE(fault_inject_key);
extern u32 fault_nest;
extern struct fault_state fault_state;
extern struct fault_record fault_log[FAULT_LOG_MAX];

struct kmem_cache;
bool __should_failslab(struct kmem_cache *s, gfp_t gfp);
bool __should_failslab_bytes(u64 size, gfp_t gfp);
bool __should_fail_alloc_page(gfp_t gfp, unsigned int order);
bool __should_fail_vmalloc(gfp_t gfp, u64 size);
void fault_inject_setup(const char *cmdline);
void fault_inject_set_active(u64 on);

static __always_inline bool should_failslab(struct kmem_cache *s, gfp_t gfp)
{
	return static_branch_unlikely(&fault_inject_key) && __should_failslab(s, gfp);
}

/* failslab for a slab allocation of no cache (SLOB's kmalloc): size bytes asked for. */
static __always_inline bool should_failslab_bytes(u64 size, gfp_t gfp)
{
	return static_branch_unlikely(&fault_inject_key) && __should_failslab_bytes(size, gfp);
}

static __always_inline bool should_fail_alloc_page(gfp_t gfp, unsigned int order)
{
	return static_branch_unlikely(&fault_inject_key) && __should_fail_alloc_page(gfp, order);
}

static __always_inline bool should_fail_vmalloc(gfp_t gfp, u64 size)
{
	return static_branch_unlikely(&fault_inject_key) && __should_fail_vmalloc(gfp, size);
}

/* Around the allocations an allocator makes for itself: not counted (see above). */
static __always_inline void fault_nest_enter(void) { fault_nest++; }
static __always_inline void fault_nest_exit(void) { fault_nest--; }
/* The value of an allocator's own allocation expression, made nested (one line). */
#define fault_nested(expr)                          \
	({                                          \
		fault_nest_enter();                 \
		__typeof__(expr) __fault_v = (expr); \
		fault_nest_exit();                  \
		__fault_v;                          \
	})

#endif
