/* The same call from a GPL module links. */
#include <linux/module.h>

void vm_unmap_aliases(void);

void gpl_user_flush(void)
{
	vm_unmap_aliases();
}
MODULE_LICENSE("GPL v2");
