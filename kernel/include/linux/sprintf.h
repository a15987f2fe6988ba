/*
 * <linux/sprintf.h> - formatting into buffers with printk's conversions
 * (%d %u %x %s %p %pS %pGg ...; %p prints the raw address in kmemu).
 * snprintf returns the length the text would have; scnprintf what was written.
 */
#ifndef _LINUX_KERNEL_SPRINTF_H_
#define _LINUX_KERNEL_SPRINTF_H_
#include <linux/compiler.h>
#include <linux/stdarg.h>
#include <linux/types.h>

int sprintf(char *buf, const char *fmt, ...) __printf(2, 3);
int vsprintf(char *buf, const char *fmt, va_list args) __printf(2, 0);
int snprintf(char *buf, size_t size, const char *fmt, ...) __printf(3, 4);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list args) __printf(3, 0);
int scnprintf(char *buf, size_t size, const char *fmt, ...) __printf(3, 4);
int vscnprintf(char *buf, size_t size, const char *fmt, va_list args) __printf(3, 0);
char *kasprintf(gfp_t gfp, const char *fmt, ...) __printf(2, 3) __malloc;
char *kvasprintf(gfp_t gfp, const char *fmt, va_list args) __printf(2, 0) __malloc;

#endif
