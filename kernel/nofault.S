/*
 * nofault.S - single memory accesses that may fault, each with an exception
 * table entry (<kmemu/extable.h>): on a #PF or #GP the trap handler resumes
 * at the fixup, which returns -EFAULT instead of the access's result.
 *
 *   long kmemu_load_nofault_u8(const u8 *src, u8 *out)   0 / -EFAULT
 *   long kmemu_store_nofault_u8(u8 *dst, u8 val)          0 / -EFAULT
 *
 * copy_{from,to}_kernel_nofault (extable.c) are built on these.  Leaf
 * functions: no frame, nothing saved, so the fixup can simply return.
 */
#include <kmemu/extable.h>

	.code64
	.text

	.globl kmemu_load_nofault_u8
	.type kmemu_load_nofault_u8, @function
kmemu_load_nofault_u8:
1:	movzbl (%rdi), %eax
	movb %al, (%rsi)
	xorl %eax, %eax
	ret
2:	movq $-14, %rax		/* -EFAULT */
	ret
	_ASM_EXTABLE(1b, 2b)
	.size kmemu_load_nofault_u8, . - kmemu_load_nofault_u8

	.globl kmemu_store_nofault_u8
	.type kmemu_store_nofault_u8, @function
kmemu_store_nofault_u8:
1:	movb %sil, (%rdi)
	xorl %eax, %eax
	ret
2:	movq $-14, %rax		/* -EFAULT */
	ret
	_ASM_EXTABLE(1b, 2b)
	.size kmemu_store_nofault_u8, . - kmemu_store_nofault_u8
