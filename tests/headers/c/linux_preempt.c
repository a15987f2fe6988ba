/* <linux/preempt.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/preempt.h>

int t(void)
{
	int r;
	preempt_disable();
	r = in_atomic() + in_interrupt() + in_task() + in_hardirq() + in_softirq() + in_nmi() +
	    preempt_count() + (int)hardirq_count() + (int)softirq_count();
	preempt_enable();
	return r;
}
