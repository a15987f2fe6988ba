/*
 * spinlock.h - one CPU, so a spinlock is "interrupts off" plus a flag that
 * catches recursion (an interrupt handler can never observe it held,
 * because interrupts are off while it is; recursion means a bug).
 * spin_lock_irqsave() is the only form: every lock here may be taken by
 * code that interrupt handlers also run (GFP_ATOMIC allocations).
 */
#ifndef KMEMU_SPINLOCK_H
#define KMEMU_SPINLOCK_H
#include <types.h>
#include <preempt.h>

typedef struct {
	u32 locked;
	u32 pad;
	u64 owner_ip; /* where it was taken, for the recursion report */
} spinlock_t;

#define __SPIN_LOCK_UNLOCKED { 0, 0, 0 }

void spin_lock_recursion(spinlock_t *lock, u64 ip) __noreturn;

#define spin_lock_irqsave(lock, flags)                                             \
	do {                                                                       \
		(flags) = local_irq_save();                                        \
		if (unlikely((lock)->locked))                                      \
			spin_lock_recursion((lock), (u64)__builtin_return_address(0)); \
		(lock)->locked = 1;                                                \
		(lock)->owner_ip = (u64)__builtin_return_address(0);               \
		preempt_disable();                                                 \
	} while (0)

#define spin_unlock_irqrestore(lock, flags)  \
	do {                                 \
		(lock)->locked = 0;          \
		preempt_enable();            \
		local_irq_restore(flags);    \
	} while (0)

#endif
