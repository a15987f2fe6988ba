/* printk.h - console output, the log ring and formatting. See printk.c. */
#ifndef KMEMU_PRINTK_H
#define KMEMU_PRINTK_H
#include <types.h>

#define LOG_BUF_LEN (64 * 1024)

int printk(const char *fmt, ...) __printf(1, 2);
int vprintk(const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __printf(3, 4);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
#define pr_info(...) printk(__VA_ARGS__)
#define pr_err(...) printk(__VA_ARGS__)
#define pr_warn(...) printk(__VA_ARGS__)

extern char log_buf[LOG_BUF_LEN];
extern u64 log_next; /* total bytes ever logged; log_buf holds the last LOG_BUF_LEN */

#endif
