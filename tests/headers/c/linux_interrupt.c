/* <linux/interrupt.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/interrupt.h>

int t(void)
{
	unsigned long flags;
	local_irq_save(flags);
	int r = in_interrupt() || in_atomic() || irqs_disabled();
	local_irq_restore(flags);
	return r;
}
