/*
 * <linux/interrupt.h> - for code that runs in or against interrupts: the
 * interrupt flag helpers and the context tests (in_interrupt, in_atomic).
 * kmemu has no request_irq: interrupts are raised by the host (m.irq()).
 */
#ifndef _LINUX_INTERRUPT_H
#define _LINUX_INTERRUPT_H
#include <linux/irqflags.h>
#include <linux/preempt.h>

#endif
