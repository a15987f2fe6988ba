/* <linux/irqflags.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/irqflags.h>

int t(void)
{
	unsigned long flags, f2;
	local_irq_save(flags);
	local_save_flags(f2);
	int off = irqs_disabled() && irqs_disabled_flags(f2);
	local_irq_restore(flags);
	local_irq_disable();
	local_irq_enable();
	return off;
}
