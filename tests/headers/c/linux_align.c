/* <linux/align.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/align.h>

unsigned long t(unsigned long x, void *p)
{
	_Static_assert(ALIGN(13, 8) == 16 && ALIGN_DOWN(13, 8) == 8 && IS_ALIGNED(64, 16), "align");
	return ALIGN(x, 64) + (unsigned long)PTR_ALIGN(p, 16) + (unsigned long)PTR_ALIGN_DOWN(p, 8);
}
