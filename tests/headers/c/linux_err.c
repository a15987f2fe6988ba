/* <linux/err.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/err.h>

void *t(long e, void *p)
{
	if (IS_ERR_OR_NULL(p))
		return ERR_CAST(p);
	if (IS_ERR(p) || PTR_ERR_OR_ZERO(p))
		return NULL;
	return e ? ERR_PTR(e) : (void *)PTR_ERR(p);
}
