/*
 * host.c - talking to kmemu (<kmemu/abi.h> has the port ABI).
 *
 * host_present is decided once at boot by reading the magic port; under QEMU
 * the read returns all ones and every function here falls back to doing
 * nothing (events) or to QEMU's isa-debug-exit (kmemu_exit).
 *
 * kmemu_req is written by the host while the kernel is idle (or stopped at
 * a breakpoint) and read by the wrappers below and by the call vector.
 * kmemu_batch_ring is written the same way and run by kmemu_batch_run().
 */
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/preempt.h>
#include <linux/printk.h>
#include <linux/build_bug.h>
#include <kmemu/abi.h>
#include <kmemu/io.h>
#include <kmemu/log.h>
#include <kmemu/memlayout.h>

bool host_present;
struct kmemu_call_req kmemu_req;
char kmemu_arg_buf[256]; /* strings the host passes to calls (cache names, ...) */
struct kmemu_batch_op kmemu_batch_ring[KMEMU_BATCH_RING];
u64 kmemu_batch_done;
static_assert(sizeof(struct kmemu_batch_op) == KMEMU_BATCH_OP_WORDS * 8,
	      "the host packs batch ops as KMEMU_BATCH_OP_WORDS u64s");
extern char kmemu_idle_loop[];

void host_detect(void)
{
	host_present = inl(KMEMU_PORT_MAGIC) == KMEMU_MAGIC;
}

/* Tell the host about an event; the host copies it during the out. */
void host_event(struct kmemu_event *ev)
{
	if (!host_present)
		return;
	u64 pa = (u64)ev >= START_KERNEL_MAP ? __pa_symbol(ev) : __pa(ev);
	outl(KMEMU_PORT_EVENT, (u32)pa);
}

void host_ctl(u32 what)
{
	if (host_present)
		outl(KMEMU_PORT_CTL, what);
}

void kmemu_exit(u32 code)
{
	local_irq_disable();
	outl(KMEMU_PORT_EXIT, code);
	for (;;)
		halt();
}

/*
 * The idle loop's stack pointer, which never changes while it runs: a quiet
 * host call ends by going back to it (entry.S, kmemu_call_return).
 */
u64 kmemu_idle_rsp;

/* Leave boot for the idle loop for good, on this stack. */
void kmemu_idle(void)
{
	__asm__ __volatile__("movq %%rsp, kmemu_idle_rsp(%%rip)\n\t"
			     "jmp *%0" :: "r"(kmemu_idle_loop) : "memory");
	__builtin_unreachable();
}

/*
 * Call wrappers: the host sets kmemu_req.fn/args and calls one of these
 * instead of the function itself to choose the calling context.
 */
typedef u64 (*call6_t)(u64, u64, u64, u64, u64, u64);

static u64 call_req(void)
{
	struct kmemu_call_req *q = &kmemu_req;
	q->ret = ((call6_t)q->fn)(q->args[0], q->args[1], q->args[2], q->args[3], q->args[4], q->args[5]);
	q->done = 1;
	return q->ret;
}

u64 kmemu_call_irqs_off(void)
{
	unsigned long flags;
	local_irq_save(flags);
	u64 r = call_req();
	local_irq_restore(flags);
	return r;
}

u64 kmemu_call_preempt_off(void)
{
	preempt_disable();
	u64 r = call_req();
	preempt_enable();
	return r;
}

/*
 * kmemu_batch_run - run kmemu_batch_ring[0..n) back to back (see <kmemu/abi.h>).
 *
 * Called by the host as an ordinary process-context call, so breakpoints,
 * budgets and interrupts work inside a batch as in any call.  Each op's
 * result goes to its ret; kmemu_batch_done is advanced after each op so
 * that, if one dies in an oops (which never returns here), the host knows
 * which.  Returns the number of ops run (n, clamped to the ring).
 */
u64 kmemu_batch_run(u64 n)
{
	if (n > KMEMU_BATCH_RING)
		n = KMEMU_BATCH_RING;
	kmemu_batch_done = 0;
	for (u64 i = 0; i < n; i++) {
		struct kmemu_batch_op *op = &kmemu_batch_ring[i];
		op->ret = ((call6_t)op->fn)(op->args[0], op->args[1], op->args[2],
					    op->args[3], op->args[4], op->args[5]);
		kmemu_batch_done = i + 1;
	}
	return n;
}
