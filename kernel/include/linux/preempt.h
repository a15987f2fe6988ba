/*
 * <linux/preempt.h> - preempt_count and the context tests, with Linux's
 * bit layout:
 *
 *   bits  0..7   PREEMPT  preempt_disable() depth
 *   bits  8..15  SOFTIRQ
 *   bits 16..19  HARDIRQ  hard interrupt nesting (irq_enter/irq_exit)
 *   bits 20..23  NMI
 *
 * One CPU, so the count is the plain global `preempt_count` (Linux keeps it
 * per CPU); preempt_count() reads it.  The kernel is not preemptible, but
 * preempt_disable() is counted, so in_atomic() sees it.
 */
#ifndef __LINUX_PREEMPT_H
#define __LINUX_PREEMPT_H
#include <linux/compiler.h>
#include <linux/types.h>

#define PREEMPT_BITS 8
#define SOFTIRQ_BITS 8
#define HARDIRQ_BITS 4
#define NMI_BITS 4
#define PREEMPT_SHIFT 0
#define SOFTIRQ_SHIFT (PREEMPT_SHIFT + PREEMPT_BITS)
#define HARDIRQ_SHIFT (SOFTIRQ_SHIFT + SOFTIRQ_BITS)
#define NMI_SHIFT (HARDIRQ_SHIFT + HARDIRQ_BITS)
#define __IRQ_MASK(x) ((1UL << (x)) - 1)
#define PREEMPT_MASK (__IRQ_MASK(PREEMPT_BITS) << PREEMPT_SHIFT)
#define SOFTIRQ_MASK (__IRQ_MASK(SOFTIRQ_BITS) << SOFTIRQ_SHIFT)
#define HARDIRQ_MASK (__IRQ_MASK(HARDIRQ_BITS) << HARDIRQ_SHIFT)
#define NMI_MASK (__IRQ_MASK(NMI_BITS) << NMI_SHIFT)
#define PREEMPT_OFFSET (1UL << PREEMPT_SHIFT)
#define SOFTIRQ_OFFSET (1UL << SOFTIRQ_SHIFT)
#define HARDIRQ_OFFSET (1UL << HARDIRQ_SHIFT)
#define NMI_OFFSET (1UL << NMI_SHIFT)

extern volatile u32 preempt_count;
#define preempt_count() ((int)preempt_count)

#define hardirq_count() (preempt_count() & HARDIRQ_MASK)
#define softirq_count() (preempt_count() & SOFTIRQ_MASK)
#define irq_count() (preempt_count() & (NMI_MASK | HARDIRQ_MASK | SOFTIRQ_MASK))

#define in_nmi() (preempt_count() & NMI_MASK)
#define in_hardirq() (hardirq_count())
#define in_softirq() (softirq_count())
#define in_serving_softirq() (softirq_count() & SOFTIRQ_OFFSET)
#define in_interrupt() (irq_count())
#define in_task() (!(in_nmi() | in_hardirq() | in_serving_softirq()))
#define in_atomic() (preempt_count() != 0)

#define preempt_count_add(val) do { preempt_count += (val); } while (0)
#define preempt_count_sub(val) do { preempt_count -= (val); } while (0)
#define preempt_count_inc() preempt_count_add(1)
#define preempt_count_dec() preempt_count_sub(1)

#define preempt_disable() do { preempt_count_inc(); barrier(); } while (0)
#define preempt_enable_no_resched() do { barrier(); preempt_count_dec(); } while (0)
#define preempt_enable() do { barrier(); preempt_count_dec(); } while (0)
#define preemptible() 0

#endif
