/*
 * extable.c - the exception table and the nofault copies (Linux's
 * kernel/extable.c, arch/x86/mm/extable.c and mm/maccess.c, much reduced).
 *
 * __ex_table (kernel.ld, rodata) holds { insn, fixup } pairs relative to
 * the entry itself; the image has a handful, so a linear search does.
 * fixup_exception() is called by do_trap() for #PF and #GP before it would
 * die: a faulting instruction with an entry resumes at its fixup (Linux's
 * EX_TYPE_DEFAULT); everything else still oopses.  No state, no locks.
 */
#include <linux/errno.h>
#include <linux/kernel.h>
#include <kmemu/extable.h>
#include <kmemu/traps.h>

extern const struct exception_table_entry __start___ex_table[], __stop___ex_table[];

long kmemu_load_nofault_u8(const u8 *src, u8 *out);
long kmemu_store_nofault_u8(u8 *dst, u8 val);

static u64 ex_insn(const struct exception_table_entry *e)
{
	return (u64)&e->insn + (s64)e->insn;
}

static u64 ex_fixup(const struct exception_table_entry *e)
{
	return (u64)&e->fixup + (s64)e->fixup;
}

/* The entry for the instruction at addr, or NULL. */
const struct exception_table_entry *search_exception_tables(u64 addr)
{
	for (const struct exception_table_entry *e = __start___ex_table; e < __stop___ex_table; e++)
		if (ex_insn(e) == addr)
			return e;
	return NULL;
}

/* True (and regs->rip moved to the fixup) if the faulting instruction has an entry. */
bool fixup_exception(struct pt_regs *regs)
{
	const struct exception_table_entry *e = search_exception_tables(regs->rip);
	if (!e)
		return false;
	regs->rip = ex_fixup(e);
	return true;
}

long copy_from_kernel_nofault(void *dst, const void *src, size_t size)
{
	for (size_t i = 0; i < size; i++)
		if (kmemu_load_nofault_u8((const u8 *)src + i, (u8 *)dst + i))
			return -EFAULT;
	return 0;
}

long copy_to_kernel_nofault(void *dst, const void *src, size_t size)
{
	for (size_t i = 0; i < size; i++)
		if (kmemu_store_nofault_u8((u8 *)dst + i, ((const u8 *)src)[i]))
			return -EFAULT;
	return 0;
}
