/*
 * irq.c - preempt_count, hard-IRQ entry/exit and interrupt dispatch.
 *
 * preempt_count (preempt.h) is a single global: one CPU.  irq_enter() adds
 * HARDIRQ_OFFSET, irq_exit() removes it; handlers run with IF clear (the
 * IDT gates are interrupt gates) and may enable interrupts themselves, in
 * which case a nested interrupt stacks another HARDIRQ_OFFSET.
 *
 * local_irq_enable() tells the host it opened an interrupt window (port
 * KMEMU_PORT_CTL, IRQ_WINDOW) when the host has flagged a pending vector
 * (kmemu_irq_pending), so it arrives right after the sti, as on hardware.
 *
 * Two vectors are built in: KMEMU_TEST_VECTOR records the state it saw
 * (irq_test_record) so tests can prove a handler ran in hard-IRQ context,
 * and KMEMU_CALL_VECTOR runs the function the host placed in kmemu_req.
 */
#include <linux/export.h>
#include <linux/bug.h>
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/preempt.h>
#include <linux/printk.h>
#include <kmemu/abi.h>
#include <kmemu/io.h>
#include <kmemu/log.h>
#include <kmemu/traps.h>

volatile u32 preempt_count;
EXPORT_SYMBOL(preempt_count);

struct irq_test_record {
	u64 count;
	u64 vector;
	u32 preempt_count;
	u32 in_hardirq;
	u32 in_interrupt;
	u32 irqs_disabled;
	u64 rip; /* interrupted instruction */
	u64 max_nesting;
};
struct irq_test_record irq_test_record;
u64 irq_count[256];
static u64 irq_depth;

volatile u32 kmemu_irq_pending; /* written by the host, see <linux/irqflags.h> */
EXPORT_SYMBOL(kmemu_irq_pending);

void kmemu_irq_window(void)
{
	if (host_present)
		outl(KMEMU_PORT_CTL, KMEMU_CTL_IRQ_WINDOW);
}
EXPORT_SYMBOL(kmemu_irq_window);

void irq_enter(void)
{
	preempt_count += HARDIRQ_OFFSET;
	barrier();
}

void irq_exit(void)
{
	barrier();
	preempt_count -= HARDIRQ_OFFSET;
}

static void test_irq_handler(struct pt_regs *regs)
{
	struct irq_test_record *r = &irq_test_record;
	r->count++;
	r->vector = regs->vector;
	r->preempt_count = preempt_count;
	r->in_hardirq = !!in_hardirq();
	r->in_interrupt = !!in_interrupt();
	r->irqs_disabled = irqs_disabled();
	r->rip = regs->rip;
	if (irq_depth > r->max_nesting)
		r->max_nesting = irq_depth;
}

typedef u64 (*call6_t)(u64, u64, u64, u64, u64, u64);

/* Runs the host's request (kmemu_req) inside the handler, in hard-IRQ context. */
static void call_irq_handler(struct pt_regs *regs)
{
	struct kmemu_call_req *q = &kmemu_req;
	(void)regs;
	q->ret = ((call6_t)q->fn)(q->args[0], q->args[1], q->args[2], q->args[3], q->args[4], q->args[5]);
	q->done = 1;
}

void irq_dispatch(struct pt_regs *regs, irq_handler_t fn)
{
	irq_enter();
	irq_depth++;
	irq_count[regs->vector]++;
	if (fn) {
		fn(regs);
	} else {
		static struct kmemu_event ev;
		printk("do_IRQ: 0.%llu No irq handler for vector\n", regs->vector);
		ev.type = KMEMU_EV_IRQ_UNHANDLED;
		ev.args[0] = regs->vector;
		snprintf(ev.msg, sizeof(ev.msg), "do_IRQ: 0.%llu No irq handler for vector", regs->vector);
		host_event(&ev);
	}
	irq_depth--;
	irq_exit();
}

void irq_init(void)
{
	set_irq_handler(KMEMU_TEST_VECTOR, test_irq_handler);
	set_irq_handler(KMEMU_CALL_VECTOR, call_irq_handler);
}

/* Helpers the host and the self-tests call. */
u64 kmemu_test_nop(void)
{
	return 0;
}

u64 kmemu_test_add(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f)
{
	return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f;
}

u64 kmemu_test_context(void)
{
	/* bit 0 in_hardirq, bit 1 irqs_disabled, bit 2 in_atomic; preempt_count above */
	return (u64)!!in_hardirq() | (u64)irqs_disabled() << 1 | (u64)in_atomic() << 2 |
	       (u64)preempt_count << 8;
}

u64 kmemu_test_irq_window(void)
{
	u64 before = irq_test_record.count;
	local_irq_disable();
	for (volatile int i = 0; i < 100; i++)
		;
	u64 masked = irq_test_record.count - before;
	local_irq_enable();
	return masked; /* 0 if nothing arrived while IF was clear */
}

u64 kmemu_test_fault(u64 addr, u64 write)
{
	volatile u64 *p = (volatile u64 *)addr;
	if (write) {
		*p = 0x6b6b6b6b6b6b6b6bUL;
		return 0;
	}
	return *p;
}

u64 kmemu_test_bug(void)
{
	BUG();
}

u64 kmemu_test_warn(u64 v)
{
	WARN(v != 0, "kmemu_test_warn: v=%llu", v);
	return v;
}

u64 kmemu_test_divide(u64 a, u64 b)
{
	return a / b;
}

u64 kmemu_test_spin(u64 n)
{
	volatile u64 i = 0;
	while (!n || i < n)
		i++;
	return i;
}

/* Enable interrupts inside whatever context we were called in; report nesting seen. */
u64 kmemu_test_nested(void)
{
	unsigned long flags = arch_local_save_flags();
	local_irq_enable();
	for (volatile int i = 0; i < 50; i++)
		;
	if (!(flags & X86_EFLAGS_IF))
		local_irq_disable();
	return irq_test_record.max_nesting;
}
