/*
 * <linux/string.h> - memory and string functions (kernel/string.c), with
 * Linux's semantics: strscpy returns the length copied or -E2BIG when it
 * truncated (the result is always NUL-terminated if size > 0); kstrdup and
 * kmemdup allocate with kmalloc.
 */
#ifndef _LINUX_STRING_H_
#define _LINUX_STRING_H_
#include <linux/compiler.h>
#include <linux/types.h>

void *memset(void *s, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void *memchr(const void *s, int c, size_t n);
void *memchr_inv(const void *s, int c, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *strrchr(const char *s, int c);
char *strstr(const char *haystack, const char *needle);
ssize_t strscpy(char *dst, const char *src, size_t size);
char *kstrdup(const char *s, gfp_t gfp) __malloc;
char *kstrndup(const char *s, size_t max, gfp_t gfp) __malloc;
void *kmemdup(const void *src, size_t len, gfp_t gfp) __malloc;

/*
 * The KASAN kernel: memset/memcpy/memmove check their range (kernel/kasan/shadow.c);
 * files built without the sanitizer (the allocators) use the raw ones, as Linux's
 * arch/x86/include/asm/string_64.h arranges.
 */
#ifdef CONFIG_KASAN
void *__memset(void *s, int c, size_t n);
void *__memcpy(void *dst, const void *src, size_t n);
void *__memmove(void *dst, const void *src, size_t n);
#endif
#if defined(CONFIG_KASAN) && !defined(__SANITIZE_ADDRESS__)
#define memset __memset
#define memcpy __memcpy
#define memmove __memmove
#endif

/* memset that the compiler may not drop, for clearing secrets. */
static inline void memzero_explicit(void *s, size_t count)
{
	memset(s, 0, count);
	barrier_data(s);
}

#endif
