/* The same call from a GPL module links. */
#include <linux/module.h>
#include <linux/vmalloc.h>

void gpl_user_flush(void)
{
	vm_unmap_aliases();
}
MODULE_LICENSE("GPL v2");
