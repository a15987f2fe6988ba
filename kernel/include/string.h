/* string.h - the memory and string functions the kernel uses (string.c). */
#ifndef KMEMU_STRING_H
#define KMEMU_STRING_H
#include <types.h>

void *memset(void *s, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
size_t strscpy(char *dst, const char *src, size_t size);
const char *cmdline_find(const char *cmdline, const char *key);
u64 simple_strtoull(const char *s, const char **end, unsigned int base);
u64 memparse(const char *s, const char **end);

#endif
