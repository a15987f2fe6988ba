/* <linux/kmemleak.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/kmemleak.h>

void t(void *a, void *b, void *c, void *d, size_t n)
{
	kmemleak_alloc(a, n, 1, GFP_KERNEL);
	kmemleak_not_leak(a);
	kmemleak_ignore(b);
	kmemleak_no_scan(c);
	kmemleak_scan_area(d, n, GFP_KERNEL);
	kmemleak_free(a);
}
