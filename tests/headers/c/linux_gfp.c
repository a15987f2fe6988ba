/* <linux/gfp.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/gfp.h>

unsigned long t(struct page *pg, gfp_t gfp)
{
	struct page *p = alloc_pages(GFP_KERNEL | __GFP_ZERO, 1);
	struct page *q = alloc_page(GFP_ATOMIC);
	unsigned long a = __get_free_pages(GFP_NOWAIT, 0) + __get_free_page(GFP_KERNEL) +
			  get_zeroed_page(GFP_DMA32);
	__free_pages(p, 1);
	__free_page(q);
	free_pages(a, 0);
	free_page(a);
	if (gfpflags_allow_blocking(gfp))
		return (unsigned long)page_address(pg) + page_to_pfn(pfn_to_page(1));
	return (unsigned long)virt_to_page((void *)a);
}
_Static_assert(GFP_KERNEL == 0xcc0 && GFP_ATOMIC == 0x820 && GFP_NOWAIT == 0x800, "linux values");
