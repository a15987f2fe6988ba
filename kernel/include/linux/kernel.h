/*
 * <linux/kernel.h> - the grab bag every kernel file includes: types,
 * container_of, ARRAY_SIZE, min/max/clamp, rounding, printk and pr_*,
 * the sprintf family, panic, might_sleep and number parsing.
 */
#ifndef _LINUX_KERNEL_H
#define _LINUX_KERNEL_H
#include <linux/stdarg.h>
#include <linux/align.h>
#include <linux/limits.h>
#include <linux/bitops.h>
#include <linux/build_bug.h>
#include <linux/compiler.h>
#include <linux/container_of.h>
#include <linux/log2.h>
#include <linux/math.h>
#include <linux/minmax.h>
#include <linux/panic.h>
#include <linux/printk.h>
#include <linux/sprintf.h>
#include <linux/types.h>

/* The number of elements of an array (a pointer is a build error). */
#define ARRAY_SIZE(arr) (sizeof(arr) / sizeof((arr)[0]) + __must_be_array(arr))

#define upper_32_bits(n) ((u32)(((n) >> 16) >> 16))
#define lower_32_bits(n) ((u32)((n) & 0xffffffff))
#define upper_16_bits(n) ((u16)((n) >> 16))
#define lower_16_bits(n) ((u16)((n) & 0xffff))

#define __stringify_1(x...) #x
#define __stringify(x...) __stringify_1(x)

/*
 * might_sleep(): say a function may sleep.  Called in atomic context
 * (interrupts off, preempt_disable, an interrupt handler) it prints
 * "BUG: sleeping function called from invalid context at file:line" with
 * the state and a call trace (every time: kmemu has no rate limit clock).
 */
void __might_sleep(const char *file, int line);
#define might_sleep() __might_sleep(__FILE__, __LINE__)
#define might_sleep_if(cond) do { if (cond) might_sleep(); } while (0)

unsigned long long simple_strtoull(const char *cp, char **endp, unsigned int base);
unsigned long simple_strtoul(const char *cp, char **endp, unsigned int base);
long simple_strtol(const char *cp, char **endp, unsigned int base);
unsigned long long memparse(const char *ptr, char **retptr);

#endif
