/*
 * <linux/printk.h> - printk with Linux's KERN_* level prefixes and the
 * pr_* wrappers.  A message starts with KERN_SOH and a level digit (or 'c'
 * for KERN_CONT); printk strips the prefix.  kmemu's console is the kernel
 * log itself and shows every level (as Linux with ignore_loglevel), so
 * pr_debug output appears when the file defines DEBUG before its includes.
 * Define pr_fmt(fmt) before including to prefix every pr_* message.
 */
#ifndef _LINUX_PRINTK_H
#define _LINUX_PRINTK_H
#include <linux/compiler.h>
#include <linux/stdarg.h>
#include <linux/types.h>

#define KERN_SOH "\001"
#define KERN_SOH_ASCII '\001'
#define KERN_EMERG KERN_SOH "0"   /* system is unusable */
#define KERN_ALERT KERN_SOH "1"   /* action must be taken immediately */
#define KERN_CRIT KERN_SOH "2"    /* critical conditions */
#define KERN_ERR KERN_SOH "3"     /* error conditions */
#define KERN_WARNING KERN_SOH "4" /* warning conditions */
#define KERN_NOTICE KERN_SOH "5"  /* normal but significant condition */
#define KERN_INFO KERN_SOH "6"    /* informational */
#define KERN_DEBUG KERN_SOH "7"   /* debug-level messages */
#define KERN_DEFAULT ""
#define KERN_CONT KERN_SOH "c"    /* continues the previous line */

#define LOGLEVEL_SCHED -2
#define LOGLEVEL_DEFAULT -1
#define LOGLEVEL_EMERG 0
#define LOGLEVEL_ALERT 1
#define LOGLEVEL_CRIT 2
#define LOGLEVEL_ERR 3
#define LOGLEVEL_WARNING 4
#define LOGLEVEL_NOTICE 5
#define LOGLEVEL_INFO 6
#define LOGLEVEL_DEBUG 7

/* The level of a message that has none (Linux's CONFIG_MESSAGE_LOGLEVEL_DEFAULT). */
#define MESSAGE_LOGLEVEL_DEFAULT 4

/* The level of a KERN_* prefix at the start of buf, or 0 if there is none. */
static inline int printk_get_level(const char *buffer)
{
	if (buffer[0] == KERN_SOH_ASCII && buffer[1]) {
		switch (buffer[1]) {
		case '0' ... '7':
		case 'c':
			return buffer[1];
		}
	}
	return 0;
}

/* The text after any KERN_* prefixes. */
static inline const char *printk_skip_level(const char *buffer)
{
	while (printk_get_level(buffer))
		buffer += 2;
	return buffer;
}

int printk(const char *fmt, ...) __printf(1, 2);
int vprintk(const char *fmt, va_list args) __printf(1, 0);

#ifndef pr_fmt
#define pr_fmt(fmt) fmt
#endif

/* Checks the format and arguments, prints nothing. */
#define no_printk(fmt, ...) ({ if (0) printk(fmt, ##__VA_ARGS__); 0; })

#define pr_emerg(fmt, ...) printk(KERN_EMERG pr_fmt(fmt), ##__VA_ARGS__)
#define pr_alert(fmt, ...) printk(KERN_ALERT pr_fmt(fmt), ##__VA_ARGS__)
#define pr_crit(fmt, ...) printk(KERN_CRIT pr_fmt(fmt), ##__VA_ARGS__)
#define pr_err(fmt, ...) printk(KERN_ERR pr_fmt(fmt), ##__VA_ARGS__)
#define pr_warn(fmt, ...) printk(KERN_WARNING pr_fmt(fmt), ##__VA_ARGS__)
#define pr_warning pr_warn
#define pr_notice(fmt, ...) printk(KERN_NOTICE pr_fmt(fmt), ##__VA_ARGS__)
#define pr_info(fmt, ...) printk(KERN_INFO pr_fmt(fmt), ##__VA_ARGS__)
#define pr_cont(fmt, ...) printk(KERN_CONT fmt, ##__VA_ARGS__)
#ifdef DEBUG
#define pr_debug(fmt, ...) printk(KERN_DEBUG pr_fmt(fmt), ##__VA_ARGS__)
#define pr_devel(fmt, ...) printk(KERN_DEBUG pr_fmt(fmt), ##__VA_ARGS__)
#else
#define pr_debug(fmt, ...) no_printk(KERN_DEBUG pr_fmt(fmt), ##__VA_ARGS__)
#define pr_devel(fmt, ...) no_printk(KERN_DEBUG pr_fmt(fmt), ##__VA_ARGS__)
#endif

/* Print the first time only; true when this call printed. */
#define printk_once(fmt, ...) ({                                             \
	static bool __section(".data.once") __print_once;                    \
	bool __ret_print_once = !__print_once;                               \
	if (!__print_once) {                                                 \
		__print_once = true;                                         \
		printk(fmt, ##__VA_ARGS__);                                  \
	}                                                                    \
	unlikely(__ret_print_once); })
#define pr_emerg_once(fmt, ...) printk_once(KERN_EMERG pr_fmt(fmt), ##__VA_ARGS__)
#define pr_alert_once(fmt, ...) printk_once(KERN_ALERT pr_fmt(fmt), ##__VA_ARGS__)
#define pr_crit_once(fmt, ...) printk_once(KERN_CRIT pr_fmt(fmt), ##__VA_ARGS__)
#define pr_err_once(fmt, ...) printk_once(KERN_ERR pr_fmt(fmt), ##__VA_ARGS__)
#define pr_warn_once(fmt, ...) printk_once(KERN_WARNING pr_fmt(fmt), ##__VA_ARGS__)
#define pr_notice_once(fmt, ...) printk_once(KERN_NOTICE pr_fmt(fmt), ##__VA_ARGS__)
#define pr_info_once(fmt, ...) printk_once(KERN_INFO pr_fmt(fmt), ##__VA_ARGS__)

/* "CPU: 0 PID: 0 Comm: kmemu" and the call trace of the caller. */
void dump_stack(void);

#endif
