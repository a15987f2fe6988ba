/* <asm/barrier.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <asm/barrier.h>

static int flag, data;
int t(void)
{
	data = 1;
	smp_wmb();
	smp_store_release(&flag, 1);
	smp_mb(); smp_rmb(); mb(); rmb(); wmb();
	return smp_load_acquire(&flag) + data;
}
