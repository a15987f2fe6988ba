/*
 * trace.h - kmem/vmalloc trace events and the ring buffer they are written to
 * (Linux's include/trace/events/kmem.h and vmalloc.h, kernel/trace/ring_buffer.c).
 *
 * This header is the ONE definition of the record layout and the event and
 * clock numbers: the host reads the KMEMU_TRACE_* defines from it
 * (emu/build/abi.py) and decodes records with them (emu/kernel/trace_events.py).
 *
 * The buffer (kernel/trace/ring_buffer.c): nr_pages pages of one vmalloc area,
 * used as a ring of "buffer pages".  Each page starts with a 16-byte header
 * { u64 time_stamp of its first record; u32 commit (bytes of records);
 * u32 entries }, then records back to back.  A record is a 16-byte header
 * { u16 type (KMEMU_TRACE_EV_*); u8 flags (Linux's TRACE_FLAG_*); u8
 * preempt_count (Linux's trace_entry.preempt_count: depth, capped at 15);
 * u16 len (whole record, a multiple of 8); u16 nr_fields; u64 ts } followed by
 * nr_fields u64 values in TP_STRUCT__entry order and, for events with a
 * string (kmem_cache_free's name), the NUL-terminated string padded to 8.
 * Timestamps are absolute, not Linux's deltas.  The writer never splits a
 * record across pages; a full ring in overwrite mode (Linux's default) drops
 * its oldest page and counts its entries as overrun, otherwise the new event
 * is dropped and counted.
 *
 * The tracepoints are Linux's: off by default, each behind its own static key
 * (Linux's struct tracepoint key); trace_event_set() turns one on or off.
 */
#ifndef KMEMU_TRACE_H
#define KMEMU_TRACE_H
#include <linux/jump_label.h>
#include <linux/types.h>

/* Event numbers (the record's type), in include/trace/events order. */
#define KMEMU_TRACE_EV_KMEM_CACHE_ALLOC 1
#define KMEMU_TRACE_EV_KMALLOC 2
#define KMEMU_TRACE_EV_KFREE 3
#define KMEMU_TRACE_EV_KMEM_CACHE_FREE 4
#define KMEMU_TRACE_EV_MM_PAGE_FREE 5
#define KMEMU_TRACE_EV_MM_PAGE_FREE_BATCHED 6
#define KMEMU_TRACE_EV_MM_PAGE_ALLOC 7
#define KMEMU_TRACE_EV_MM_PAGE_ALLOC_ZONE_LOCKED 8
#define KMEMU_TRACE_EV_MM_PAGE_PCPU_DRAIN 9
#define KMEMU_TRACE_EV_MM_PAGE_ALLOC_EXTFRAG 10
#define KMEMU_TRACE_EV_ALLOC_VMAP_AREA 11
#define KMEMU_TRACE_EV_PURGE_VMAP_AREA_LAZY 12
#define KMEMU_TRACE_EV_FREE_VMAP_AREA_NOFLUSH 13
#define KMEMU_TRACE_NR_EVENTS 14 /* ids 1..13 */

/* trace_clock= (Linux's names; what kmemu measures: ARCHITECTURE.md "Trace events") */
#define KMEMU_TRACE_CLOCK_LOCAL 0   /* host nanoseconds since the machine was made */
#define KMEMU_TRACE_CLOCK_GLOBAL 1  /* the same clock (one CPU) */
#define KMEMU_TRACE_CLOCK_COUNTER 2 /* guest instructions run: deterministic */
#define KMEMU_TRACE_CLOCK_MONO 3    /* = local */
#define KMEMU_TRACE_CLOCK_BOOT 4    /* = local */

#ifndef NUMA_NO_NODE
#define NUMA_NO_NODE (-1) /* Linux's <linux/numa.h>: the node= of every kmalloc event */
#endif

#define KMEMU_TRACE_PAGE_HDR 16
#define KMEMU_TRACE_REC_HDR 16
#define KMEMU_TRACE_MAX_FIELDS 8
#define KMEMU_TRACE_STR_MAX 32 /* a kmem_cache name (SLAB_NAME_LEN) */
#define KMEMU_TRACE_BUF_SIZE_DEFAULT 1441792 /* Linux's TRACE_BUF_SIZE_DEFAULT */

/* Linux's TRACE_FLAG_* bits of trace_entry.flags */
#define KMEMU_TRACE_FLAG_IRQS_OFF 0x01
#define KMEMU_TRACE_FLAG_NMI 0x04
#define KMEMU_TRACE_FLAG_HARDIRQ 0x08
#define KMEMU_TRACE_FLAG_SOFTIRQ 0x10
#define KMEMU_TRACE_FLAG_BH_OFF 0x80

struct trace_page_header {
	u64 time_stamp;
	u32 commit;  /* bytes of records after the header */
	u32 entries; /* records on this page */
};

struct trace_record {
	u16 type;
	u8 flags;
	u8 preempt_count;
	u16 len;
	u16 nr_fields;
	u64 ts;
	u64 fields[];
};

/* The one (per-CPU in Linux; one CPU here) buffer.  The host reads it. */
struct trace_ring {
	u8 *pages;        /* nr_pages * PAGE_SIZE bytes, vmalloc'ed when first needed */
	u32 nr_pages;
	u32 head;         /* the oldest page */
	u32 tail;         /* the page being written */
	u32 read_off;     /* bytes of the head page a consuming reader has taken */
	u32 read_entries; /* and how many records that was */
	u64 entries;      /* records written and neither overwritten nor consumed */
	u64 overrun;      /* records lost to overwriting */
	u64 dropped;      /* records not written: ring full with overwrite off */
	u64 read;         /* records consumed (trace_pipe) */
	u64 lost_unread;  /* overwritten since the last consuming read: its LOST line */
	u64 size;         /* trace_buf_size / buffer_size_kb in bytes */
	u32 overwrite;    /* the overwrite option (1: Linux's default) */
	u32 clock;        /* KMEMU_TRACE_CLOCK_* */
	u64 nr_enabled;   /* events turned on */
};

extern struct trace_ring trace_ring;

/* kernel/trace/ring_buffer.c */
void trace_record_write(u16 type, const u64 *fields, unsigned int nr, const char *str);
int trace_buffer_alloc(void);
void tracing_reset(void);
int tracing_resize(u64 bytes);
u64 trace_clock_read(void);

/* kernel/trace/trace_events.c: boot parameters and switching events */
void trace_init(const char *cmdline);
int trace_event_set(u64 id, u64 on);
int trace_set_clock(u64 clock);

/* One static key per event (Linux's __tracepoint_<name>.key). */
DECLARE_STATIC_KEY_FALSE(__tracepoint_kmem_cache_alloc);
DECLARE_STATIC_KEY_FALSE(__tracepoint_kmalloc);
DECLARE_STATIC_KEY_FALSE(__tracepoint_kfree);
DECLARE_STATIC_KEY_FALSE(__tracepoint_kmem_cache_free);
DECLARE_STATIC_KEY_FALSE(__tracepoint_mm_page_free);
DECLARE_STATIC_KEY_FALSE(__tracepoint_mm_page_free_batched);
DECLARE_STATIC_KEY_FALSE(__tracepoint_mm_page_alloc);
DECLARE_STATIC_KEY_FALSE(__tracepoint_mm_page_alloc_zone_locked);
DECLARE_STATIC_KEY_FALSE(__tracepoint_mm_page_pcpu_drain);
DECLARE_STATIC_KEY_FALSE(__tracepoint_mm_page_alloc_extfrag);
DECLARE_STATIC_KEY_FALSE(__tracepoint_alloc_vmap_area);
DECLARE_STATIC_KEY_FALSE(__tracepoint_purge_vmap_area_lazy);
DECLARE_STATIC_KEY_FALSE(__tracepoint_free_vmap_area_noflush);

struct kmem_cache;
struct page;

/* The out-of-line bodies: call them through the trace_*() wrappers below. */
void __trace_kmem_cache_alloc(u64 call_site, const void *ptr, struct kmem_cache *s, u32 gfp,
			      int node);
void __trace_kmalloc(u64 call_site, const void *ptr, u64 bytes_req, u64 bytes_alloc, u32 gfp,
		     int node);
void __trace_kfree(u64 call_site, const void *ptr);
void __trace_kmem_cache_free(u64 call_site, const void *ptr, const struct kmem_cache *s);
void __trace_mm_page_free(const struct page *page, unsigned int order);
void __trace_mm_page_free_batched(const struct page *page);
void __trace_mm_page_alloc(const struct page *page, unsigned int order, u32 gfp, int mt);
void __trace_mm_page_alloc_zone_locked(const struct page *page, unsigned int order, int mt,
				       int percpu_refill);
void __trace_mm_page_pcpu_drain(const struct page *page, unsigned int order, int mt);
void __trace_mm_page_alloc_extfrag(const struct page *page, int alloc_order, int fallback_order,
				   int alloc_mt, int fallback_mt);
void __trace_alloc_vmap_area(u64 addr, u64 size, u64 align, u64 vstart, u64 vend, int failed);
void __trace_purge_vmap_area_lazy(u64 start, u64 end, unsigned int npurged);
void __trace_free_vmap_area_noflush(u64 va_start, u64 nr_lazy, u64 nr_lazy_max);

/*
 * trace_<event>(args): Linux's tracepoint call.  One 5-byte nop while the
 * event is off; the arguments are only evaluated once it is on.
 */
#define __DO_TRACE(event, ...)                                          \
	do {                                                            \
		if (static_branch_unlikely(&__tracepoint_##event))      \
			__trace_##event(__VA_ARGS__);                   \
	} while (0)

#define trace_kmem_cache_alloc(...) __DO_TRACE(kmem_cache_alloc, __VA_ARGS__)
#define trace_kmalloc(...) __DO_TRACE(kmalloc, __VA_ARGS__)
#define trace_kfree(...) __DO_TRACE(kfree, __VA_ARGS__)
#define trace_kmem_cache_free(...) __DO_TRACE(kmem_cache_free, __VA_ARGS__)
#define trace_mm_page_free(...) __DO_TRACE(mm_page_free, __VA_ARGS__)
#define trace_mm_page_free_batched(...) __DO_TRACE(mm_page_free_batched, __VA_ARGS__)
#define trace_mm_page_alloc(...) __DO_TRACE(mm_page_alloc, __VA_ARGS__)
#define trace_mm_page_alloc_zone_locked(...) __DO_TRACE(mm_page_alloc_zone_locked, __VA_ARGS__)
#define trace_mm_page_pcpu_drain(...) __DO_TRACE(mm_page_pcpu_drain, __VA_ARGS__)
#define trace_mm_page_alloc_extfrag(...) __DO_TRACE(mm_page_alloc_extfrag, __VA_ARGS__)
#define trace_alloc_vmap_area(...) __DO_TRACE(alloc_vmap_area, __VA_ARGS__)
#define trace_purge_vmap_area_lazy(...) __DO_TRACE(purge_vmap_area_lazy, __VA_ARGS__)
#define trace_free_vmap_area_noflush(...) __DO_TRACE(free_vmap_area_noflush, __VA_ARGS__)

#endif
