/*
 * kunit_try.S - how a failed KUNIT_ASSERT_* or kunit_skip() leaves its case.
 *
 * Linux runs each case in a kthread and ends the thread on an assertion;
 * kmemu has no threads, so the runner saves its callee-saved registers,
 * stack pointer and resume address before calling the case
 * (kunit_try_catch_save, which returns 0), and a throw puts them back and
 * resumes there returning 1 (kunit_try_catch_jump), like setjmp/longjmp.
 * The case's frames are abandoned: it must hold no lock (as in Linux, where
 * the dying kthread would keep it too); kunit.c restores the interrupt flag
 * and preempt_count the case started with.
 *
 * Layout: struct kunit_try_catch.regs[8] = rbx rbp r12 r13 r14 r15 rsp rip.
 */
	.code64
	.text

	.cfi_sections .debug_frame
	.globl kunit_try_catch_save
	.type kunit_try_catch_save, @function
kunit_try_catch_save:
	.cfi_startproc
	movq %rbx, 0(%rdi)
	movq %rbp, 8(%rdi)
	movq %r12, 16(%rdi)
	movq %r13, 24(%rdi)
	movq %r14, 32(%rdi)
	movq %r15, 40(%rdi)
	leaq 8(%rsp), %rax      /* the caller's stack pointer after our ret */
	movq %rax, 48(%rdi)
	movq (%rsp), %rax       /* where the caller resumes */
	movq %rax, 56(%rdi)
	xorl %eax, %eax
	ret
	.cfi_endproc
	.size kunit_try_catch_save, . - kunit_try_catch_save

	.globl kunit_try_catch_jump
	.type kunit_try_catch_jump, @function
kunit_try_catch_jump:
	.cfi_startproc
	movq 0(%rdi), %rbx
	movq 8(%rdi), %rbp
	movq 16(%rdi), %r12
	movq 24(%rdi), %r13
	movq 32(%rdi), %r14
	movq 40(%rdi), %r15
	movq 48(%rdi), %rsp
	movl $1, %eax
	jmpq *56(%rdi)
	.cfi_endproc
	.size kunit_try_catch_jump, . - kunit_try_catch_jump
