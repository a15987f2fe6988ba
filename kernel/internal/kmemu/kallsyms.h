/*
 * kallsyms.h - the kernel's own symbol table for text addresses, generated
 * by emu/build (a second link pass) into section .kallsyms:
 *   u64 count; struct { u64 addr; u32 size; u32 name_off; } syms[count];
 *   char names[];  sorted by addr.
 */
#ifndef KMEMU_KALLSYMS_H
#define KMEMU_KALLSYMS_H
#include <linux/types.h>

const char *kallsyms_lookup(u64 addr, u64 *offset, u64 *size);
u64 kallsyms_lookup_name(const char *name);
int sprint_symbol(char *buf, size_t len, u64 addr);

#endif
