/* <linux/panic.h> - panic(): print "Kernel panic - not syncing: ...", report, stop. */
#ifndef _LINUX_PANIC_H
#define _LINUX_PANIC_H
#include <linux/compiler.h>

void panic(const char *fmt, ...) __printf(1, 2) __noreturn;

#endif
