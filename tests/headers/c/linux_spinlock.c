/* <linux/spinlock.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/spinlock.h>

static DEFINE_SPINLOCK(lock);
int t(spinlock_t *other)
{
	unsigned long flags;
	int r;
	spin_lock_init(other);
	spin_lock(&lock); spin_unlock(&lock);
	spin_lock_irq(&lock); spin_unlock_irq(&lock);
	spin_lock_irqsave(other, flags);
	assert_spin_locked(other);
	r = spin_is_locked(other);
	spin_unlock_irqrestore(other, flags);
	if (spin_trylock(&lock)) {
		r++;
		spin_unlock(&lock);
	}
	return r;
}
