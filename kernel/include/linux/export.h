/*
 * <linux/export.h> - the kernel's export table: the only symbols a module
 * may link against.
 *
 * EXPORT_SYMBOL(sym) places a struct kernel_symbol { address, name } in
 * section __ksymtab, EXPORT_SYMBOL_GPL(sym) in __ksymtab_gpl (only for
 * modules whose MODULE_LICENSE is GPL-compatible); the name string goes to
 * __ksymtab_strings.  kernel.ld keeps the sections in the loaded image
 * between __start___ksymtab/__stop___ksymtab and __start___ksymtab_gpl/
 * __stop___ksymtab_gpl.  Addresses are absolute (not Linux's 32-bit
 * relative form), so a reader needs no relocation: the module loader and
 * emu.kernel.exports read the same table.  sym must be declared before
 * EXPORT_SYMBOL(sym) (its header is included).
 */
#ifndef _LINUX_EXPORT_H
#define _LINUX_EXPORT_H
#include <linux/compiler.h>

struct kernel_symbol {
	unsigned long value; /* the symbol's address */
	const char *name;    /* its name, in __ksymtab_strings */
};

#define ___EXPORT_SYMBOL(sym, sec)                                           \
	static const char __kstrtab_##sym[]                                  \
		__used __section("__ksymtab_strings") __aligned(1) = #sym;   \
	static const struct kernel_symbol __ksymtab_##sym                    \
		__used __section("__ksymtab" sec) __aligned(8) =             \
		{ .value = (unsigned long)&sym, .name = __kstrtab_##sym }

#define EXPORT_SYMBOL(sym) ___EXPORT_SYMBOL(sym, "")
#define EXPORT_SYMBOL_GPL(sym) ___EXPORT_SYMBOL(sym, "_gpl")

#endif
