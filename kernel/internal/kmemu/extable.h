/*
 * kmemu/extable.h - the kernel's exception table, as Linux's extable.
 *
 * An instruction that may fault on purpose (a probe of memory that may be
 * unmapped or read-only) gets an entry { insn, fixup } in the __ex_table
 * section, both stored relative to the entry's own fields like Linux's
 * struct exception_table_entry.  When a #PF or #GP hits such an
 * instruction, do_trap() resumes at the fixup instead of oopsing
 * (fixup_exception, extable.c).  Only the image's table is searched:
 * modules cannot register entries.
 */
#ifndef KMEMU_EXTABLE_H
#define KMEMU_EXTABLE_H

/* In assembly: one table entry for the instruction at from, resuming at to. */
#define _ASM_EXTABLE(from, to)                   \
	.pushsection __ex_table, "a";            \
	.balign 4;                               \
	.long (from) - .;                        \
	.long (to) - .;                          \
	.popsection

#ifndef __ASSEMBLER__
#include <linux/types.h>

struct exception_table_entry {
	s32 insn, fixup; /* target - address of the field */
};

struct pt_regs;
const struct exception_table_entry *search_exception_tables(u64 addr);
bool fixup_exception(struct pt_regs *regs);

/*
 * Copy size bytes between kernel addresses without oopsing on a fault
 * (Linux's mm/maccess.c): 0, or -EFAULT when a byte could not be read or
 * written (what was copied before it stays copied).
 */
long copy_from_kernel_nofault(void *dst, const void *src, size_t size);
long copy_to_kernel_nofault(void *dst, const void *src, size_t size);
#endif

#endif
