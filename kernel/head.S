/*
 * head.S - phase 4 entry.  The boot stub jumps here in long mode with the
 * early page tables (1 GiB at the direct map and at the kernel map) and
 * %rdi = physical address of struct boot_info.  We take our own stack,
 * clear .bss and call kmain(); nothing here touches the boot info itself.
 */
	.section .text.head, "ax"
	.code64
	.globl _start
	.type _start, @function
_start:
	cli
	cld
	movq %rdi, %r12
	leaq boot_stack_top(%rip), %rsp
	xorl %ebp, %ebp
	leaq __bss_start(%rip), %rdi
	leaq __bss_end(%rip), %rcx
	subq %rdi, %rcx
	shrq $3, %rcx           /* .bss is 4 KiB aligned and sized (kernel.ld) */
	xorl %eax, %eax
	rep stosq
	movq %r12, %rdi
	call kmain
1:	hlt
	jmp 1b
	.size _start, . - _start

	.section .bss.stack, "aw", @nobits
	.balign 4096
	.globl boot_stack, boot_stack_top
boot_stack:
	.skip 32768
boot_stack_top:
	.globl df_stack_top
	.skip 8192
df_stack_top:
