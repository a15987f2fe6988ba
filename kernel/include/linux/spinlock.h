/*
 * <linux/spinlock.h> - spinlocks on one CPU: holding one means preemption
 * (and with the _irq/_irqsave forms, interrupts) is off, plus a flag that
 * catches recursion.  Nothing can spin: another holder could only be this
 * CPU itself, so taking a held lock is a bug and reports "BUG: spinlock
 * recursion" (as Linux's CONFIG_DEBUG_SPINLOCK would) with the owner.
 *
 * A lock also taken in interrupt handlers must be taken with the
 * irqsave (or _irq) form everywhere else, as in Linux.
 */
#ifndef __LINUX_SPINLOCK_H
#define __LINUX_SPINLOCK_H
#include <linux/bug.h>
#include <linux/compiler.h>
#include <linux/irqflags.h>
#include <linux/preempt.h>
#include <linux/typecheck.h>
#include <linux/types.h>

typedef struct {
	u32 locked;
	u32 pad;
	u64 owner_ip; /* where it was taken, for the recursion report */
} spinlock_t;

#define __SPIN_LOCK_UNLOCKED(lockname) ((spinlock_t){ .locked = 0, .pad = 0, .owner_ip = 0 })
#define DEFINE_SPINLOCK(x) spinlock_t x = { .locked = 0, .pad = 0, .owner_ip = 0 }
#define spin_lock_init(lock) do { *(lock) = __SPIN_LOCK_UNLOCKED(lock); } while (0)

void spin_lock_recursion(spinlock_t *lock, unsigned long ip) __noreturn;

/* Mark lock held by ip (a macro, not an inline function: the lock sites stay the
 * caller's own lines in the debug info). */
#define __spin_acquire(lock, ip)                                             \
	do {                                                                 \
		if (unlikely((lock)->locked))                                \
			spin_lock_recursion((lock), (ip));                   \
		(lock)->locked = 1;                                          \
		(lock)->owner_ip = (ip);                                     \
	} while (0)

#define _RET_IP_ ((unsigned long)__builtin_return_address(0))
#define _THIS_IP_ ({ __label__ __here; __here: (unsigned long)&&__here; })

#define spin_lock(lock) do { preempt_disable(); __spin_acquire((lock), _RET_IP_); } while (0)
#define spin_unlock(lock) do { (lock)->locked = 0; preempt_enable(); } while (0)
#define spin_lock_irq(lock) do { local_irq_disable(); spin_lock(lock); } while (0)
#define spin_unlock_irq(lock) do { spin_unlock(lock); local_irq_enable(); } while (0)
#define spin_lock_irqsave(lock, flags)                                       \
	do {                                                                 \
		local_irq_save(flags);                                       \
		__spin_acquire((lock), _RET_IP_);                            \
		preempt_disable();                                           \
	} while (0)
#define spin_unlock_irqrestore(lock, flags)                                  \
	do {                                                                 \
		(lock)->locked = 0;                                          \
		preempt_enable();                                            \
		local_irq_restore(flags);                                    \
	} while (0)
/* 1 and the lock taken, or 0 when it is held (then nothing changed). */
#define spin_trylock(lock) ({                                                \
	int __locked = !(lock)->locked;                                      \
	if (__locked)                                                        \
		spin_lock(lock);                                             \
	__locked; })
#define spin_is_locked(lock) ((lock)->locked != 0)
#define assert_spin_locked(lock) BUG_ON(!spin_is_locked(lock))

#endif
