/* <linux/vmalloc.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/vmalloc.h>

unsigned long t(struct page **pages, size_t n)
{
	void *a = vmalloc(n), *b = vzalloc(n), *c = vmalloc_array(n, 8), *d = vcalloc(n, 8);
	void *e = __vmalloc(n, GFP_KERNEL | __GFP_ZERO), *f = vmalloc_32(n), *g = vrealloc(a, 2 * n, GFP_KERNEL);
	void *m = vmap(pages, 2, VM_MAP, PAGE_KERNEL);
	unsigned long r = (unsigned long)vmalloc_to_page(b) + vmalloc_to_pfn(c) + is_vmalloc_addr(d) +
			  VMALLOC_START + VMALLOC_END;
	vunmap(m);
	vfree(g); vfree(b); vfree(c); vfree(d); vfree(e); vfree(f);
	return r;
}
