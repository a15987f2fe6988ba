/* <linux/string.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/string.h>
#include <linux/gfp.h>

size_t t(char *dst, const char *src, size_t n, gfp_t gfp)
{
	char *d = kstrdup(src, gfp), *e = kstrndup(src, n, gfp);
	void *m = kmemdup(src, n, gfp);
	memzero_explicit(dst, n);
	memset(dst, 0, n); memcpy(dst, src, n); memmove(dst, src, n);
	return (size_t)strscpy(dst, src, n) + strlen(src) + strnlen(src, n) +
	       (size_t)(memcmp(dst, src, n) + strcmp(dst, src) + strncmp(dst, src, n)) +
	       (size_t)strchr(src, 'a') + (size_t)strrchr(src, 'a') + (size_t)strstr(src, "a") +
	       (size_t)memchr(src, 0, n) + (size_t)memchr_inv(src, 0, n) + (size_t)d + (size_t)e + (size_t)m;
}
