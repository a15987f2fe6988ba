/*
 * <linux/init.h> - section markers for code and data used only while
 * starting (__init) or stopping (__exit).  A module's .init.text may be
 * freed once its init function returned; __exit code of a module is only
 * run by unload.  The kernel image keeps both (kernel.ld puts them in .text).
 */
#ifndef _LINUX_INIT_H
#define _LINUX_INIT_H
#include <linux/compiler.h>
#include <linux/types.h>

#ifdef MODULE
#define __exitused
#else
#define __exitused __used
#endif

#define __init __section(".init.text") __cold notrace
#define __initdata __section(".init.data")
#define __initconst __section(".init.rodata")
#define __exit __section(".exit.text") __exitused __cold notrace
#define __exitdata __section(".exit.data")

typedef int (*initcall_t)(void);
typedef void (*exitcall_t)(void);

#endif
