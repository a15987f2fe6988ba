/*
 * linux/module.h - what a loadable module declares about itself.
 *
 * The module ABI kernel/module.c relies on (the same as Linux's):
 *   - module_init(fn) makes the global symbol init_module an alias of fn,
 *     module_exit(fn) makes cleanup_module one; the loader finds them in the
 *     module's symbol table (Linux reaches them through struct module in
 *     .gnu.linkonce.this_module, which modpost generates; kmemu has no modpost).
 *   - MODULE_LICENSE/AUTHOR/DESCRIPTION/INFO put "tag=value" strings in
 *     .modinfo; the build adds "name=KBUILD_MODNAME" and "srcversion=".
 */
#ifndef _LINUX_MODULE_H
#define _LINUX_MODULE_H
#include <linux/export.h>

typedef int (*initcall_t)(void);
typedef void (*exitcall_t)(void);

#define __init __attribute__((section(".init.text")))
#define __exit __attribute__((section(".exit.text")))

#define __MODULE_INFO_ID2(a, b) a##b
#define __MODULE_INFO_ID(a, b) __MODULE_INFO_ID2(a, b)
#define MODULE_INFO(tag, info)                                                          \
	static const char __MODULE_INFO_ID(__modinfo_##tag, __COUNTER__)[]                   \
		__attribute__((used, section(".modinfo"), aligned(1))) = #tag "=" info

#define MODULE_LICENSE(l) MODULE_INFO(license, l)
#define MODULE_AUTHOR(a) MODULE_INFO(author, a)
#define MODULE_DESCRIPTION(d) MODULE_INFO(description, d)

#define module_init(initfn)                                                             \
	static inline initcall_t __attribute__((unused)) __inittest(void) { return initfn; } \
	int init_module(void) __attribute__((alias(#initfn)))

#define module_exit(exitfn)                                                             \
	static inline exitcall_t __attribute__((unused)) __exittest(void) { return exitfn; } \
	void cleanup_module(void) __attribute__((alias(#exitfn)))


#endif
