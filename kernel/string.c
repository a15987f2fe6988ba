/*
 * string.c - <linux/string.h> (memory and string helpers), number parsing
 * (<linux/kernel.h>: simple_strto*, memparse) and command-line lookup.
 * No libc: we build with -ffreestanding and provide the four functions GCC
 * may emit calls to.  memset/memcpy use the string instructions.
 */
#include <linux/errno.h>
#include <linux/export.h>
#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <kmemu/log.h>

/* The value of a hex digit character, or 99 for anything else. */
static unsigned int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return (unsigned int)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (unsigned int)(c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (unsigned int)(c - 'A' + 10);
	return 99;
}

static bool is_hex_digit(char c)
{
	return digit_value(c) < 16;
}

/*
 * String instructions, eight bytes at a time: emulators (QEMU TCG, Unicorn)
 * run each iteration of a rep prefix as its own step, so qwords cost an
 * eighth of what bytes do.  The tail is done bytewise.
 */
void *memset(void *s, int c, size_t n)
{
	void *d = s;
	u64 q = (u8)c * 0x0101010101010101UL;
	size_t words = n / 8, tail = n % 8;
	__asm__ __volatile__("rep stosq" : "+D"(d), "+c"(words) : "a"(q) : "memory");
	__asm__ __volatile__("rep stosb" : "+D"(d), "+c"(tail) : "a"(q) : "memory");
	return s;
}
EXPORT_SYMBOL(memset);

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;
	size_t words = n / 8, tail = n % 8;
	__asm__ __volatile__("rep movsq" : "+D"(d), "+S"(src), "+c"(words) :: "memory");
	__asm__ __volatile__("rep movsb" : "+D"(d), "+S"(src), "+c"(tail) :: "memory");
	return dst;
}
EXPORT_SYMBOL(memcpy);

void *memmove(void *dst, const void *src, size_t n)
{
	u8 *d = dst;
	const u8 *s = src;
	if (d < s)
		return memcpy(dst, src, n);
	while (n--)
		d[n] = s[n];
	return dst;
}
EXPORT_SYMBOL(memmove);

int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x < *y ? -1 : 1;
	return 0;
}
EXPORT_SYMBOL(memcmp);

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}
EXPORT_SYMBOL(strlen);

size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;
	while (n < max && s[n])
		n++;
	return n;
}
EXPORT_SYMBOL(strnlen);

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (u8)*a - (u8)*b;
}
EXPORT_SYMBOL(strcmp);

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (u8)*a - (u8)*b;
		if (!*a)
			return 0;
	}
	return 0;
}
EXPORT_SYMBOL(strncmp);

char *strchr(const char *s, int c)
{
	for (; *s; s++)
		if (*s == (char)c)
			return (char *)s;
	return c ? NULL : (char *)s;
}
EXPORT_SYMBOL(strchr);

/*
 * strscpy - copy src into dst[size], always NUL-terminated when size > 0.
 * Returns the length copied, or -E2BIG when src did not fit (dst then holds
 * the first size - 1 bytes), as Linux's strscpy.
 */
ssize_t strscpy(char *dst, const char *src, size_t size)
{
	size_t n = 0;
	if (!size)
		return -E2BIG;
	while (n + 1 < size && src[n]) {
		dst[n] = src[n];
		n++;
	}
	dst[n] = 0;
	return src[n] ? -E2BIG : (ssize_t)n;
}
EXPORT_SYMBOL(strscpy);

/* memchr - the first byte equal to (u8)c in s[0..n), or NULL. */
void *memchr(const void *s, int c, size_t n)
{
	const u8 *p = s;
	for (; n; n--, p++)
		if (*p == (u8)c)
			return (void *)p;
	return NULL;
}
EXPORT_SYMBOL(memchr);

/* memchr_inv - the first byte NOT equal to (u8)c in s[0..n), or NULL if all are. */
void *memchr_inv(const void *s, int c, size_t n)
{
	const u8 *p = s;
	for (; n; n--, p++)
		if (*p != (u8)c)
			return (void *)p;
	return NULL;
}
EXPORT_SYMBOL(memchr_inv);

/* strrchr - the last (char)c in s (the terminating NUL counts), or NULL. */
char *strrchr(const char *s, int c)
{
	const char *last = NULL;
	do {
		if (*s == (char)c)
			last = s;
	} while (*s++);
	return (char *)last;
}
EXPORT_SYMBOL(strrchr);

/* strstr - the first occurrence of needle in haystack ("" matches at once), or NULL. */
char *strstr(const char *haystack, const char *needle)
{
	size_t nl = strlen(needle);
	if (!nl)
		return (char *)haystack;
	for (size_t hl = strlen(haystack); hl >= nl; hl--, haystack++)
		if (!memcmp(haystack, needle, nl))
			return (char *)haystack;
	return NULL;
}
EXPORT_SYMBOL(strstr);

/* kmemdup - a kmalloc'ed copy of src[0..len), or NULL. */
void *kmemdup(const void *src, size_t len, gfp_t gfp)
{
	void *p = kmalloc(len, gfp);
	if (p)
		memcpy(p, src, len);
	return p;
}
EXPORT_SYMBOL(kmemdup);

/* kstrndup - a kmalloc'ed copy of at most max bytes of s, NUL-terminated; NULL for NULL. */
char *kstrndup(const char *s, size_t max, gfp_t gfp)
{
	if (!s)
		return NULL;
	size_t len = strnlen(s, max);
	char *p = kmalloc(len + 1, gfp);
	if (p) {
		memcpy(p, s, len);
		p[len] = 0;
	}
	return p;
}
EXPORT_SYMBOL(kstrndup);

/* kstrdup - a kmalloc'ed copy of s; NULL for NULL or when memory is short. */
char *kstrdup(const char *s, gfp_t gfp)
{
	return s ? kstrndup(s, strlen(s), gfp) : NULL;
}
EXPORT_SYMBOL(kstrdup);

/*
 * cmdline_find - find "key=" (or a bare "key") as a whole word in a command
 * line; returns a pointer to the value after '=' (or to the end of the word).
 */
const char *cmdline_find(const char *cmdline, const char *key)
{
	size_t kl = strlen(key);
	const char *p = cmdline;
	while (*p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, kl) && (p[kl] == '=' || p[kl] == ' ' || !p[kl]))
			return p[kl] == '=' ? p + kl + 1 : p + kl;
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

/*
 * simple_strtoull - parse an unsigned number; base 0 picks 16 for "0x",
 * 8 for a leading "0", else 10 (Linux's rule).  *endp (if given) is set to
 * the first character not used.  Overflow is not detected (as in Linux).
 */
unsigned long long simple_strtoull(const char *cp, char **endp, unsigned int base)
{
	unsigned long long v = 0;
	if (!base) {
		base = 10;
		if (cp[0] == '0') {
			base = 8;
			if ((cp[1] == 'x' || cp[1] == 'X') && is_hex_digit(cp[2])) {
				base = 16;
				cp += 2;
			}
		}
	} else if (base == 16 && cp[0] == '0' && (cp[1] == 'x' || cp[1] == 'X')) {
		cp += 2;
	}
	for (;; cp++) {
		unsigned int d = digit_value(*cp);
		if (d >= base)
			break;
		v = v * base + d;
	}
	if (endp)
		*endp = (char *)cp;
	return v;
}
EXPORT_SYMBOL(simple_strtoull);

unsigned long simple_strtoul(const char *cp, char **endp, unsigned int base)
{
	return (unsigned long)simple_strtoull(cp, endp, base);
}
EXPORT_SYMBOL(simple_strtoul);

long simple_strtol(const char *cp, char **endp, unsigned int base)
{
	if (*cp == '-')
		return -(long)simple_strtoull(cp + 1, endp, base);
	return (long)simple_strtoull(cp, endp, base);
}
EXPORT_SYMBOL(simple_strtol);

/* memparse - a number with an optional K/M/G/T/P/E suffix, as Linux parses sizes. */
unsigned long long memparse(const char *ptr, char **retptr)
{
	char *e;
	unsigned long long v = simple_strtoull(ptr, &e, 0);
	int shift = 0;

	switch (*e) {
	case 'E': case 'e': shift += 10; fallthrough;
	case 'P': case 'p': shift += 10; fallthrough;
	case 'T': case 't': shift += 10; fallthrough;
	case 'G': case 'g': shift += 10; fallthrough;
	case 'M': case 'm': shift += 10; fallthrough;
	case 'K': case 'k': shift += 10; e++; break;
	default: break;
	}
	if (retptr)
		*retptr = e;
	return v << shift;
}
EXPORT_SYMBOL(memparse);
