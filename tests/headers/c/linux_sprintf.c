/* <linux/sprintf.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/sprintf.h>
#include <linux/gfp.h>

int t(char *buf, size_t n, gfp_t gfp, ...)
{
	va_list ap;
	char *s = kasprintf(gfp, "%s-%d", "a", 1);
	int r = sprintf(buf, "%llx", 1ULL) + snprintf(buf, n, "%zu", n) + scnprintf(buf, n, "%p", s);
	va_start(ap, gfp);
	r += vsnprintf(buf, n, "%d", ap) + vscnprintf(buf, n, "%d", ap) + vsprintf(buf, "%d", ap);
	s = kvasprintf(gfp, "%d", ap);
	va_end(ap);
	return r + (s != NULL);
}
