/*
 * string.c - memory and string helpers, plus command-line parsing.
 * No libc: we build with -ffreestanding and provide the four functions GCC
 * may emit calls to.  memset/memcpy use the string instructions.
 */
#include <string.h>

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

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;
	size_t words = n / 8, tail = n % 8;
	__asm__ __volatile__("rep movsq" : "+D"(d), "+S"(src), "+c"(words) :: "memory");
	__asm__ __volatile__("rep movsb" : "+D"(d), "+S"(src), "+c"(tail) :: "memory");
	return dst;
}

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

int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x < *y ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;
	while (n < max && s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (u8)*a - (u8)*b;
}

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

char *strchr(const char *s, int c)
{
	for (; *s; s++)
		if (*s == (char)c)
			return (char *)s;
	return c ? NULL : (char *)s;
}

/* Copy with truncation; returns the length copied. */
size_t strscpy(char *dst, const char *src, size_t size)
{
	size_t n = 0;
	if (!size)
		return 0;
	while (n + 1 < size && src[n]) {
		dst[n] = src[n];
		n++;
	}
	dst[n] = 0;
	return n;
}

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

u64 simple_strtoull(const char *s, const char **end, unsigned int base)
{
	u64 v = 0;
	if (!base) {
		base = 10;
		if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
			base = 16;
			s += 2;
		}
	}
	for (;; s++) {
		unsigned int d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		if (d >= base)
			break;
		v = v * base + d;
	}
	if (end)
		*end = s;
	return v;
}

/* memparse - a number with an optional K/M/G suffix, as Linux parses sizes. */
u64 memparse(const char *s, const char **end)
{
	const char *e;
	u64 v = simple_strtoull(s, &e, 0);
	switch (*e) {
	case 'G': case 'g':
		v <<= 10;
		/* fall through */
	case 'M': case 'm':
		v <<= 10;
		/* fall through */
	case 'K': case 'k':
		v <<= 10;
		e++;
		break;
	default:
		break;
	}
	if (end)
		*end = e;
	return v;
}

/* What modules may link against (linux/export.h; kernel/module.c resolves only these). */
EXPORT_SYMBOL(memset);
EXPORT_SYMBOL(memcpy);
EXPORT_SYMBOL(memmove);
EXPORT_SYMBOL(memcmp);
EXPORT_SYMBOL(strlen);
EXPORT_SYMBOL(strcmp);
EXPORT_SYMBOL(strncmp);
EXPORT_SYMBOL(strscpy);
