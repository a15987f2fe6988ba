/*
 * trace_events.c - the kmem and vmalloc trace events: their switches, their
 * boot parameters and what each one records (Linux's kernel/trace/trace_events.c
 * and the TP_fast_assign parts of include/trace/events/kmem.h, vmalloc.h).
 *
 * Contract:
 *   - Every event has its own static key (__tracepoint_<name>, off at boot).
 *     trace_event_set(id, on) flips it; the first event turned on allocates
 *     the ring buffer (Linux expands its buffer then too).  Events raised on
 *     the allocator fast paths sit in those paths' out-of-line hooks, so an
 *     event there also holds the path's shared hook key while it is on.
 *   - Boot parameters, as Linux's: trace_event=LIST (comma-separated
 *     "system:event", "system:", "system:*", "event", "*:*"; a leading '!'
 *     turns off), trace_buf_size=SIZE (memparse: 64k, 1M), trace_clock=NAME
 *     (local, global, counter, mono, boot).  An unknown event is reported
 *     with Linux's "Failed to enable trace event: ..." line.
 *   - Each __trace_<event>() copies TP_STRUCT__entry's fields, in its order,
 *     as u64s into one record (the host formats TP_printk; values computed
 *     in TP_fast_assign, like change_ownership, are computed here).
 */
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <kmemu/alloc_hooks.h>
#include <kmemu/log.h>
#include <kmemu/mmzone.h>
#include <kmemu/page_alloc.h>
#include <kmemu/slub.h>
#include <kmemu/trace.h>

DEFINE_STATIC_KEY_FALSE(__tracepoint_kmem_cache_alloc);
DEFINE_STATIC_KEY_FALSE(__tracepoint_kmalloc);
DEFINE_STATIC_KEY_FALSE(__tracepoint_kfree);
DEFINE_STATIC_KEY_FALSE(__tracepoint_kmem_cache_free);
DEFINE_STATIC_KEY_FALSE(__tracepoint_mm_page_free);
DEFINE_STATIC_KEY_FALSE(__tracepoint_mm_page_free_batched);
DEFINE_STATIC_KEY_FALSE(__tracepoint_mm_page_alloc);
DEFINE_STATIC_KEY_FALSE(__tracepoint_mm_page_alloc_zone_locked);
DEFINE_STATIC_KEY_FALSE(__tracepoint_mm_page_pcpu_drain);
DEFINE_STATIC_KEY_FALSE(__tracepoint_mm_page_alloc_extfrag);
DEFINE_STATIC_KEY_FALSE(__tracepoint_alloc_vmap_area);
DEFINE_STATIC_KEY_FALSE(__tracepoint_purge_vmap_area_lazy);
DEFINE_STATIC_KEY_FALSE(__tracepoint_free_vmap_area_noflush);

/* Which shared fast-path hook key an event hangs on (see trace_event_set). */
enum trace_hook { HOOK_NONE, HOOK_SLAB, HOOK_PAGE };

struct trace_event_call {
	const char *system;
	const char *name;
	struct static_key_false *key;
	enum trace_hook hook;
};

#define EV(sys, n, h) { #sys, #n, &__tracepoint_##n, h }
/* Indexed by KMEMU_TRACE_EV_*; [0] is unused. */
static const struct trace_event_call trace_events[KMEMU_TRACE_NR_EVENTS] = {
	[KMEMU_TRACE_EV_KMEM_CACHE_ALLOC] = EV(kmem, kmem_cache_alloc, HOOK_SLAB),
	[KMEMU_TRACE_EV_KMALLOC] = EV(kmem, kmalloc, HOOK_SLAB),
	[KMEMU_TRACE_EV_KFREE] = EV(kmem, kfree, HOOK_SLAB),
	[KMEMU_TRACE_EV_KMEM_CACHE_FREE] = EV(kmem, kmem_cache_free, HOOK_SLAB),
	[KMEMU_TRACE_EV_MM_PAGE_FREE] = EV(kmem, mm_page_free, HOOK_PAGE),
	[KMEMU_TRACE_EV_MM_PAGE_FREE_BATCHED] = EV(kmem, mm_page_free_batched, HOOK_NONE),
	[KMEMU_TRACE_EV_MM_PAGE_ALLOC] = EV(kmem, mm_page_alloc, HOOK_PAGE),
	[KMEMU_TRACE_EV_MM_PAGE_ALLOC_ZONE_LOCKED] = EV(kmem, mm_page_alloc_zone_locked, HOOK_NONE),
	[KMEMU_TRACE_EV_MM_PAGE_PCPU_DRAIN] = EV(kmem, mm_page_pcpu_drain, HOOK_NONE),
	[KMEMU_TRACE_EV_MM_PAGE_ALLOC_EXTFRAG] = EV(kmem, mm_page_alloc_extfrag, HOOK_NONE),
	[KMEMU_TRACE_EV_ALLOC_VMAP_AREA] = EV(vmalloc, alloc_vmap_area, HOOK_NONE),
	[KMEMU_TRACE_EV_PURGE_VMAP_AREA_LAZY] = EV(vmalloc, purge_vmap_area_lazy, HOOK_NONE),
	[KMEMU_TRACE_EV_FREE_VMAP_AREA_NOFLUSH] = EV(vmalloc, free_vmap_area_noflush, HOOK_NONE),
};

/* The shared hook keys of the fast paths (kernel/slab/slub.c, kernel/page_alloc.c). */
static void trace_hook_get(enum trace_hook h, bool on)
{
	struct static_key_false *k = h == HOOK_SLAB ? &slab_hooks_key :
				     h == HOOK_PAGE ? &page_hooks_key : NULL;
	if (!k)
		return;
	if (on)
		static_branch_inc(k);
	else
		static_branch_dec(k);
}

/* Turn event id on (1) or off (0): 0, -EINVAL for an unknown id, -ENOMEM. */
int trace_event_set(u64 id, u64 on)
{
	if (!id || id >= KMEMU_TRACE_NR_EVENTS || on > 1)
		return -EINVAL;
	const struct trace_event_call *ev = &trace_events[id];
	if (static_key_enabled(ev->key) == (bool)on)
		return 0;
	if (on && trace_buffer_alloc())
		return -ENOMEM;
	if (on) {
		trace_hook_get(ev->hook, true);
		static_branch_enable(ev->key);
		trace_ring.nr_enabled++;
	} else {
		static_branch_disable(ev->key);
		trace_hook_get(ev->hook, false);
		trace_ring.nr_enabled--;
	}
	return 0;
}

/* trace_clock: 0 or -EINVAL. */
int trace_set_clock(u64 clock)
{
	if (clock > KMEMU_TRACE_CLOCK_BOOT)
		return -EINVAL;
	trace_ring.clock = (u32)clock;
	return 0;
}

/* Length of s up to (not including) the first c, space or NUL (Linux uses strsep). */
static size_t span_to(const char *s, char c)
{
	size_t n = 0;
	while (s[n] && s[n] != ' ' && s[n] != c)
		n++;
	return n;
}

static bool name_is(const char *s, size_t n, const char *name)
{
	return strlen(name) == n && !strncmp(s, name, n);
}

/*
 * One token of trace_event= (Linux's ftrace_set_clr_event): "sys:ev", "sys:"
 * or "sys:*", "*:*", or a bare word naming an event or a system.  Returns
 * how many events matched.
 */
static int set_clr_event(const char *tok, size_t n, bool on)
{
	const char *colon = memchr(tok, ':', n);
	const char *sys = NULL, *ev = NULL;
	size_t sl = 0, el = 0;
	int hits = 0;

	if (colon) {
		sys = tok, sl = (size_t)(colon - tok);
		ev = colon + 1, el = n - sl - 1;
		if (!sl || name_is(sys, sl, "*"))
			sys = NULL;
		if (!el || name_is(ev, el, "*"))
			ev = NULL;
	}
	for (int id = 1; id < KMEMU_TRACE_NR_EVENTS; id++) {
		const struct trace_event_call *c = &trace_events[id];
		if (!colon && !name_is(tok, n, c->name) && !name_is(tok, n, c->system))
			continue;
		if (colon && ((sys && !name_is(sys, sl, c->system)) || (ev && !name_is(ev, el, c->name))))
			continue;
		if (!trace_event_set((u64)id, on))
			hits++;
	}
	return hits;
}

static const char *const clock_names[] = { "local", "global", "counter", "mono", "boot" };

static void setup_trace_clock(const char *v)
{
	size_t n = span_to(v, ' ');
	for (u32 i = 0; i < ARRAY_SIZE(clock_names); i++)
		if (name_is(v, n, clock_names[i])) {
			trace_ring.clock = i;
			return;
		}
	pr_warn("trace_clock: unknown clock '%.*s'\n", (int)n, v);
}

static void setup_trace_event(const char *v)
{
	size_t len = span_to(v, ' ');
	while (len) {
		size_t n = span_to(v, ',');
		bool on = *v != '!';
		const char *tok = on ? v : v + 1;
		size_t tn = on ? n : n - 1;
		if (tn && !set_clr_event(tok, tn, on))
			pr_warn("Failed to enable trace event: %.*s\n", (int)tn, tok);
		v += n, len -= n;
		if (len)
			v++, len--;
	}
}

/* The boot parameters; runs once vmalloc works (the buffer is vmalloc'ed). */
void trace_init(const char *cmdline)
{
	const char *v = cmdline_find(cmdline, "trace_buf_size");
	if (v) {
		u64 size = memparse(v, NULL);
		if (size)
			trace_ring.size = size;
	}
	v = cmdline_find(cmdline, "trace_clock");
	if (v)
		setup_trace_clock(v);
	v = cmdline_find(cmdline, "trace_event");
	if (v)
		setup_trace_event(v);
}

/* --- what each event records (TP_STRUCT__entry order) ------------------------------ */

static u64 pfn_or_none(const struct page *page)
{
	return page ? page_to_pfn(page) : ~0ULL; /* Linux: -1UL for a failed allocation */
}

#define WRITE(id, str, ...)                                                      \
	do {                                                                     \
		const u64 f_[] = { __VA_ARGS__ };                               \
		trace_record_write(KMEMU_TRACE_EV_##id, f_, ARRAY_SIZE(f_), str); \
	} while (0)

void __trace_kmem_cache_alloc(u64 call_site, const void *ptr, struct kmem_cache *s, u32 gfp,
			      int node)
{
	bool accounted = gfp & __GFP_ACCOUNT; /* kmemu has no SLAB_ACCOUNT caches */
	WRITE(KMEM_CACHE_ALLOC, NULL, call_site, (u64)ptr, s->object_size, s->size, gfp,
	      (u64)(s64)node, accounted);
}

void __trace_kmalloc(u64 call_site, const void *ptr, u64 bytes_req, u64 bytes_alloc, u32 gfp,
		     int node)
{
	WRITE(KMALLOC, NULL, call_site, (u64)ptr, bytes_req, bytes_alloc, gfp, (u64)(s64)node);
}

void __trace_kfree(u64 call_site, const void *ptr)
{
	WRITE(KFREE, NULL, call_site, (u64)ptr);
}

void __trace_kmem_cache_free(u64 call_site, const void *ptr, const struct kmem_cache *s)
{
	WRITE(KMEM_CACHE_FREE, s->name, call_site, (u64)ptr);
}

void __trace_mm_page_free(const struct page *page, unsigned int order)
{
	WRITE(MM_PAGE_FREE, NULL, page_to_pfn(page), order);
}

void __trace_mm_page_free_batched(const struct page *page)
{
	WRITE(MM_PAGE_FREE_BATCHED, NULL, page_to_pfn(page));
}

void __trace_mm_page_alloc(const struct page *page, unsigned int order, u32 gfp, int mt)
{
	WRITE(MM_PAGE_ALLOC, NULL, pfn_or_none(page), order, gfp, (u64)(s64)mt);
}

void __trace_mm_page_alloc_zone_locked(const struct page *page, unsigned int order, int mt,
				       int percpu_refill)
{
	WRITE(MM_PAGE_ALLOC_ZONE_LOCKED, NULL, pfn_or_none(page), order, (u64)(s64)mt,
	      (u64)(s64)percpu_refill);
}

void __trace_mm_page_pcpu_drain(const struct page *page, unsigned int order, int mt)
{
	WRITE(MM_PAGE_PCPU_DRAIN, NULL, pfn_or_none(page), order, (u64)(s64)mt);
}

void __trace_mm_page_alloc_extfrag(const struct page *page, int alloc_order, int fallback_order,
				   int alloc_mt, int fallback_mt)
{
	int change_ownership = alloc_mt == get_pfnblock_migratetype(page_to_pfn(page));
	WRITE(MM_PAGE_ALLOC_EXTFRAG, NULL, page_to_pfn(page), (u64)(s64)alloc_order,
	      (u64)(s64)fallback_order, (u64)(s64)alloc_mt, (u64)(s64)fallback_mt,
	      (u64)change_ownership);
}

void __trace_alloc_vmap_area(u64 addr, u64 size, u64 align, u64 vstart, u64 vend, int failed)
{
	WRITE(ALLOC_VMAP_AREA, NULL, addr, size, align, vstart, vend, (u64)(s64)failed);
}

void __trace_purge_vmap_area_lazy(u64 start, u64 end, unsigned int npurged)
{
	WRITE(PURGE_VMAP_AREA_LAZY, NULL, start, end, npurged);
}

void __trace_free_vmap_area_noflush(u64 va_start, u64 nr_lazy, u64 nr_lazy_max)
{
	WRITE(FREE_VMAP_AREA_NOFLUSH, NULL, va_start, nr_lazy, nr_lazy_max);
}
