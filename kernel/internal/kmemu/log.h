/*
 * kmemu/log.h - the kernel log ring (printk.c), GFP flags as text (gfp.c)
 * and command-line lookup (string.c).
 */
#ifndef KMEMU_LOG_H
#define KMEMU_LOG_H
#include <linux/types.h>

#define LOG_BUF_LEN (64 * 1024)
extern char log_buf[LOG_BUF_LEN];
extern u64 log_next; /* total bytes ever logged; log_buf holds the last LOG_BUF_LEN */

/* "GFP_KERNEL|__GFP_ZERO": the names Linux prints for %pGg. */
int gfp_format(char *buf, size_t len, gfp_t gfp);

/* The value after "key=" in a space-separated command line, or NULL. */
const char *cmdline_find(const char *cmdline, const char *key);

#endif
