/*
 * linux/export.h - EXPORT_SYMBOL(): the kernel's explicit list of what a
 * loadable module may link against (kernel/module.c resolves a module's
 * undefined symbols against this table and nothing else).
 *
 * Each export is a struct kernel_symbol { value, name } in section
 * __ksymtab (or __ksymtab_gpl for EXPORT_SYMBOL_GPL: only modules whose
 * MODULE_LICENSE is GPL-compatible see those), bounded by the linker symbols
 * __start___ksymtab/__stop___ksymtab and __start___ksymtab_gpl/
 * __stop___ksymtab_gpl (kernel.ld).  The names live in __ksymtab_strings.
 * Linux 6.1 stores 32-bit relative offsets here; kmemu stores absolute
 * values, which is the layout Linux used before CONFIG_HAVE_ARCH_PREL32_RELOCATIONS.
 */
#ifndef _LINUX_EXPORT_H
#define _LINUX_EXPORT_H

struct kernel_symbol {
	unsigned long value;
	const char *name;
};

#define ___EXPORT_SYMBOL(sym, sec)                                                           \
	extern typeof(sym) sym;                                                              \
	static const char __kstrtab_##sym[]                                                  \
		__attribute__((used, section("__ksymtab_strings"), aligned(1))) = #sym;         \
	static const struct kernel_symbol __ksymtab_##sym                                    \
		__attribute__((used, section(sec), aligned(8))) = { (unsigned long)&sym,          \
								     __kstrtab_##sym }

#define EXPORT_SYMBOL(sym) ___EXPORT_SYMBOL(sym, "__ksymtab")
#define EXPORT_SYMBOL_GPL(sym) ___EXPORT_SYMBOL(sym, "__ksymtab_gpl")

extern const struct kernel_symbol __start___ksymtab[], __stop___ksymtab[];
extern const struct kernel_symbol __start___ksymtab_gpl[], __stop___ksymtab_gpl[];

#endif
