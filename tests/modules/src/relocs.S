/* relocs: one instruction or datum per x86-64 relocation type the loader applies. */
	.text
	.globl reloc_pc32_read
	.type reloc_pc32_read, @function
reloc_pc32_read:		/* R_X86_64_PC32: rip-relative data load */
	movq value(%rip), %rax
	ret

	.globl reloc_32s_read
	.type reloc_32s_read, @function
reloc_32s_read:			/* R_X86_64_32S: absolute address, sign-extended disp32 */
	movq value, %rax
	ret

	.globl reloc_64_read
	.type reloc_64_read, @function
reloc_64_read:			/* R_X86_64_64: movabs of the full address */
	movabsq $value, %rax
	movq (%rax), %rax
	ret

	.globl reloc_plt32_strlen
	.type reloc_plt32_strlen, @function
reloc_plt32_strlen:		/* R_X86_64_PLT32: call an exported kernel function */
	pushq %rbp
	movq %rsp, %rbp
	call strlen@PLT
	popq %rbp
	ret

	.data
	.balign 8
	.globl value
value:	.quad 0x1122334455667788
	.globl ptr64
ptr64:	.quad value + 8		/* R_X86_64_64 with an addend */
	.globl pc64
pc64:	.quad constant - .	/* R_X86_64_PC64 (another section: not resolved by gas) */
	.globl rel32
rel32:	.long constant - .	/* R_X86_64_PC32 in data */
	.globl weak32
weak32:	.long maybe_missing + 0x100	/* R_X86_64_32 against an undefined weak symbol (0) */
	.weak maybe_missing

	.section .rodata
	.balign 8
	.globl constant
constant: .quad 42

	.section .modinfo, "a"
	.asciz "license=GPL"
	.section .note.GNU-stack, "", @progbits
