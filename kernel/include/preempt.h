/*
 * preempt.h - preempt_count and interrupt state, with Linux's bit layout:
 *
 *   bits  0..7   PREEMPT  preempt_disable() depth
 *   bits  8..15  SOFTIRQ
 *   bits 16..19  HARDIRQ  hard interrupt nesting (irq_enter/irq_exit)
 *   bits 20..23  NMI
 *
 * One CPU, so preempt_count is a plain global; only this CPU's code and its
 * interrupt handlers touch it, each restoring what it changed.
 */
#ifndef KMEMU_PREEMPT_H
#define KMEMU_PREEMPT_H
#include <types.h>

#define PREEMPT_SHIFT 0
#define SOFTIRQ_SHIFT 8
#define HARDIRQ_SHIFT 16
#define NMI_SHIFT 20
#define PREEMPT_MASK 0x000000ffU
#define SOFTIRQ_MASK 0x0000ff00U
#define HARDIRQ_MASK 0x000f0000U
#define NMI_MASK 0x00f00000U
#define PREEMPT_OFFSET (1U << PREEMPT_SHIFT)
#define SOFTIRQ_OFFSET (1U << SOFTIRQ_SHIFT)
#define HARDIRQ_OFFSET (1U << HARDIRQ_SHIFT)
#define NMI_OFFSET (1U << NMI_SHIFT)

extern volatile u32 preempt_count;

#define X86_EFLAGS_IF 0x200UL

static inline u64 native_save_fl(void)
{
	u64 f;
	__asm__ __volatile__("pushfq; popq %0" : "=r"(f) :: "memory");
	return f;
}

/*
 * The host sets kmemu_irq_pending while its interrupt controller holds a
 * vector; enabling interrupts then tells it (a port write) so the vector
 * arrives right after the sti.  Without a pending vector it costs a load.
 */
extern volatile u32 kmemu_irq_pending;
void kmemu_irq_window(void);
static inline void local_irq_enable(void)
{
	__asm__ __volatile__("sti" ::: "memory");
	if (unlikely(kmemu_irq_pending))
		kmemu_irq_window();
}
static inline void local_irq_disable(void) { __asm__ __volatile__("cli" ::: "memory"); }
static inline bool irqs_disabled(void) { return !(native_save_fl() & X86_EFLAGS_IF); }
static inline u64 local_irq_save(void) { u64 f = native_save_fl(); local_irq_disable(); return f; }
static inline void local_irq_restore(u64 f) { if (f & X86_EFLAGS_IF) local_irq_enable(); }

static inline void preempt_disable(void) { preempt_count += PREEMPT_OFFSET; barrier(); }
static inline void preempt_enable(void) { barrier(); preempt_count -= PREEMPT_OFFSET; }

#define hardirq_count() (preempt_count & HARDIRQ_MASK)
#define softirq_count() (preempt_count & SOFTIRQ_MASK)
#define in_hardirq() (hardirq_count() != 0)
#define in_nmi() ((preempt_count & NMI_MASK) != 0)
#define in_interrupt() ((preempt_count & (NMI_MASK | HARDIRQ_MASK | SOFTIRQ_MASK)) != 0)
#define in_task() (!in_interrupt())
/* No preemptible kernel: like Linux without CONFIG_PREEMPT_COUNT for locks,
 * but preempt_disable() is counted, so in_atomic() sees it. */
#define in_atomic() (preempt_count != 0)

void irq_enter(void);
void irq_exit(void);

#endif
