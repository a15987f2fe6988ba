/*
 * ring_buffer.c - where trace events go (Linux's kernel/trace/ring_buffer.c,
 * one CPU, the writer only: the host is the reader).
 *
 * Contract (layout in <kmemu/trace.h>):
 *   - The buffer is nr_pages pages of one vmalloc area, allocated the first
 *     time an event is turned on (Linux expands its boot-time stub buffer to
 *     trace_buf_size at that moment too), never from interrupt context.
 *   - trace_record_write() appends one record with interrupts off, so an
 *     interrupt's events land whole before or after it (Linux's ring is
 *     lockless with nesting; one CPU with interrupts off is the same order).
 *   - A record that does not fit the rest of the tail page starts the next
 *     page.  When that page is the head (the ring is full): with overwrite
 *     on (Linux's default) the head page is dropped, its entries counted as
 *     overrun and lost_unread; with overwrite off the new record is dropped.
 *   - entries counts readable records; the host's consuming reader moves
 *     head/read_off and adds to read (tracing_read_pipe in Python).
 *   - Timestamps come from trace_clock_read(): the host's clock port under
 *     kmemu (the clock trace_ring.clock names), a per-read counter under QEMU.
 */
#include <linux/errno.h>
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/preempt.h>
#include <linux/string.h>
#include <linux/vmalloc.h>
#include <kmemu/abi.h>
#include <kmemu/io.h>
#include <kmemu/trace.h>

struct trace_ring trace_ring = {
	.size = KMEMU_TRACE_BUF_SIZE_DEFAULT,
	.overwrite = 1,
	.clock = KMEMU_TRACE_CLOCK_LOCAL,
};

#define BUF_PAGE_SIZE (PAGE_SIZE - KMEMU_TRACE_PAGE_HDR)

/* The clock: two port reads under kmemu; without a host, Linux's counter clock. */
u64 trace_clock_read(void)
{
	static u64 counter;
	if (!host_present)
		return ++counter;
	u64 lo = inl(KMEMU_PORT_TRACE_CLOCK);
	return lo | (u64)inl(KMEMU_PORT_TRACE_CLOCK_HI) << 32;
}

static inline struct trace_page_header *ring_page(u32 i)
{
	return (struct trace_page_header *)(trace_ring.pages + (u64)i * PAGE_SIZE);
}

static void page_reset(struct trace_page_header *p)
{
	p->time_stamp = 0;
	p->commit = 0;
	p->entries = 0;
}

/* Forget every record (Linux: writing to the trace file). */
void tracing_reset(void)
{
	unsigned long flags;
	local_irq_save(flags);
	for (u32 i = 0; i < trace_ring.nr_pages; i++)
		page_reset(ring_page(i));
	trace_ring.head = trace_ring.tail = 0;
	trace_ring.read_off = trace_ring.read_entries = 0;
	trace_ring.entries = trace_ring.overrun = trace_ring.dropped = 0;
	trace_ring.read = trace_ring.lost_unread = 0;
	local_irq_restore(flags);
}

/* Pages for trace_ring.size bytes of records: Linux's DIV_ROUND_UP(size, BUF_PAGE_SIZE), at least 2. */
static u32 ring_pages_for(u64 bytes)
{
	u64 n = (bytes + BUF_PAGE_SIZE - 1) / BUF_PAGE_SIZE;
	return n < 2 ? 2 : (u32)n;
}

/* Allocate the buffer if it is not there yet: 0, or -ENOMEM. */
int trace_buffer_alloc(void)
{
	if (trace_ring.pages)
		return 0;
	u32 n = ring_pages_for(trace_ring.size);
	u8 *pages = vmalloc((unsigned long)n * PAGE_SIZE);
	if (!pages)
		return -ENOMEM;
	trace_ring.nr_pages = n;
	trace_ring.pages = pages;
	tracing_reset();
	return 0;
}

/* buffer_size_kb / trace_buf_size: a new, empty buffer of that many bytes (0, -EINVAL, -ENOMEM). */
int tracing_resize(u64 bytes)
{
	if (!bytes || bytes > (1ULL << 32))
		return -EINVAL;
	u8 *old = trace_ring.pages;
	u64 old_size = trace_ring.size;
	trace_ring.size = bytes;
	if (!old)
		return 0; /* allocated with this size when an event is turned on */
	trace_ring.pages = NULL;
	if (trace_buffer_alloc()) {
		trace_ring.pages = old;
		trace_ring.size = old_size;
		return -ENOMEM;
	}
	vfree(old);
	return 0;
}

/* Move the tail to the next page; false when the record must be dropped. */
static bool ring_advance(void)
{
	u32 next = (trace_ring.tail + 1) % trace_ring.nr_pages;
	if (next == trace_ring.head) {
		if (!trace_ring.overwrite)
			return false;
		struct trace_page_header *old = ring_page(next);
		u32 gone = old->entries - trace_ring.read_entries; /* a reader took some already */
		trace_ring.overrun += gone;
		trace_ring.lost_unread += gone;
		trace_ring.entries -= gone;
		trace_ring.head = (next + 1) % trace_ring.nr_pages;
		trace_ring.read_off = trace_ring.read_entries = 0;
	}
	trace_ring.tail = next;
	page_reset(ring_page(next));
	return true;
}

/* Linux's trace_entry flags and preempt depth of the context that raised the event. */
static void record_context(struct trace_record *r, bool irqs_off)
{
	u32 pc = (u32)preempt_count();
	u8 f = irqs_off ? KMEMU_TRACE_FLAG_IRQS_OFF : 0;
	if (pc & NMI_MASK)
		f |= KMEMU_TRACE_FLAG_NMI;
	if (pc & HARDIRQ_MASK)
		f |= KMEMU_TRACE_FLAG_HARDIRQ;
	if (pc & SOFTIRQ_OFFSET)
		f |= KMEMU_TRACE_FLAG_SOFTIRQ;
	if ((pc & SOFTIRQ_MASK) >> (SOFTIRQ_SHIFT + 1))
		f |= KMEMU_TRACE_FLAG_BH_OFF;
	r->flags = f;
	r->preempt_count = (u8)min(pc & 0xffu, 0xfu);
}

/* Append one record: nr u64 fields, then str (may be NULL) NUL-terminated, padded to 8. */
void trace_record_write(u16 type, const u64 *fields, unsigned int nr, const char *str)
{
	unsigned long flags;
	size_t slen = str ? strnlen(str, KMEMU_TRACE_STR_MAX - 1) + 1 : 0;
	u32 len = KMEMU_TRACE_REC_HDR + nr * 8 + (u32)ALIGN(slen, 8);

	if (!trace_ring.pages)
		return;
	local_irq_save(flags);
	struct trace_page_header *p = ring_page(trace_ring.tail);
	if (p->commit + len > BUF_PAGE_SIZE) {
		if (!ring_advance()) {
			trace_ring.dropped++;
			local_irq_restore(flags);
			return;
		}
		p = ring_page(trace_ring.tail);
	}
	struct trace_record *r = (struct trace_record *)((u8 *)(p + 1) + p->commit);
	r->type = type;
	record_context(r, arch_irqs_disabled_flags(flags));
	r->len = (u16)len;
	r->nr_fields = (u16)nr;
	r->ts = trace_clock_read();
	memcpy(r->fields, fields, nr * 8);
	if (str) {
		char *s = (char *)&r->fields[nr];
		memcpy(s, str, slen - 1);
		memset(s + slen - 1, 0, ALIGN(slen, 8) - (slen - 1));
	}
	if (!p->entries)
		p->time_stamp = r->ts;
	p->commit += len;
	p->entries++;
	trace_ring.entries++;
	local_irq_restore(flags);
}
