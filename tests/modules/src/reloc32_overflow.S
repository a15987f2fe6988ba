/* R_X86_64_32 of a module address: cannot fit, the loader must refuse. */
	.data
	.globl absolute32
absolute32:
	.long target
target:	.quad 0
	.section .modinfo, "a"
	.asciz "license=GPL"
	.section .note.GNU-stack, "", @progbits
