/*
 * <linux/module.h> - what a loadable module declares about itself.
 *
 * module_init(fn): fn (int fn(void)) runs when the module is loaded; a
 * non-zero (negative errno) return fails the load and the module is freed.
 * module_exit(fn): fn (void fn(void)) runs on unload.  As in Linux they are
 * aliases named init_module and cleanup_module, so the loader finds them by
 * name.  They exist only when compiling a module (-DMODULE, which
 * `kmemu cflags` includes); the kmemu kernel itself has no initcalls.
 * MODULE_LICENSE/AUTHOR/DESCRIPTION/... are "tag=value" strings in
 * section .modinfo.  THIS_MODULE is &__this_module, the struct module the
 * module loader provides for each module.
 */
#ifndef _LINUX_MODULE_H
#define _LINUX_MODULE_H
#include <linux/compiler.h>
#include <linux/err.h>
#include <linux/errno.h>
#include <linux/export.h>
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/types.h>

struct module;

#define MODULE_NAME_LEN 56

#ifdef MODULE
extern struct module __this_module;
#define THIS_MODULE (&__this_module)

#define module_init(initfn)                                                  \
	static inline initcall_t __maybe_unused __inittest(void)             \
	{ return initfn; }                                                   \
	int init_module(void) __copy(initfn) __attribute__((alias(#initfn)));

#define module_exit(exitfn)                                                  \
	static inline exitcall_t __maybe_unused __exittest(void)             \
	{ return exitfn; }                                                   \
	void cleanup_module(void) __copy(exitfn) __attribute__((alias(#exitfn)));
#else
#define THIS_MODULE ((struct module *)0)
#endif

#define __MODULE_INFO(tag, name, info)                                       \
	static const char __UNIQUE_ID(name)[] __used __section(".modinfo")   \
		__aligned(1) = __stringify(tag) "=" info
#define MODULE_INFO(tag, info) __MODULE_INFO(tag, tag, info)

/* "GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL" are GPL-compatible. */
#define MODULE_LICENSE(_license) MODULE_INFO(license, _license)
#define MODULE_AUTHOR(_author) MODULE_INFO(author, _author)
#define MODULE_DESCRIPTION(_description) MODULE_INFO(description, _description)
#define MODULE_VERSION(_version) MODULE_INFO(version, _version)
#define MODULE_ALIAS(_alias) MODULE_INFO(alias, _alias)
#define MODULE_SOFTDEP(_softdep) MODULE_INFO(softdep, _softdep)

#endif
