/* A non-GPL module using an EXPORT_SYMBOL_GPL function: refused as unknown. */
#include <linux/module.h>
#include <linux/vmalloc.h>

void proprietary_flush(void)
{
	vm_unmap_aliases();
}
MODULE_LICENSE("Proprietary");
