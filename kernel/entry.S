/*
 * entry.S - interrupt and exception entry, and the host-call trampolines.
 *
 * Every vector has a 16-byte stub in idt_stubs[]: vectors without a CPU error
 * code push a zero so the frame is uniform, then the vector number, then jump
 * to common_entry, which saves the general registers as struct pt_regs
 * (traps.h), calls do_trap(regs) and unwinds with iretq.  %rbp is set to the
 * interrupted frame so stack traces walk through the interruption.
 */
	.code64
	.text

/* Vectors 8, 10-14, 17, 21, 29 and 30 push an error code; the rest get a 0. */
	.balign 16
	.globl idt_stubs
	.type idt_stubs, @function
idt_stubs:
	.set vec, 0
	.rept 256
	.balign 16
	.if !(vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30)
	pushq $0
	.endif
	pushq $vec
	jmp common_entry
	.set vec, vec + 1
	.endr
	.size idt_stubs, . - idt_stubs

	.type common_entry, @function
common_entry:
	pushq %rdi
	pushq %rsi
	pushq %rdx
	pushq %rcx
	pushq %rax
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	cld
	movq %rsp, %rdi
	/* a fake frame record (saved rbp, rip) so the unwinder crosses the trap */
	pushq 17*8(%rsp)        /* regs->rip */
	pushq 4*8+8(%rsp)       /* regs->rbp */
	movq %rsp, %rbp
	/* align the stack for the C call */
	movq %rsp, %rbx
	andq $-16, %rsp
	call do_trap
	movq %rbx, %rsp
	addq $16, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rax
	popq %rcx
	popq %rdx
	popq %rsi
	popq %rdi
	addq $16, %rsp          /* vector, error code */
	iretq
	.size common_entry, . - common_entry

/*
 * kmemu_idle_loop - where the kernel waits for its host.  The host keeps the
 * register state at the hlt and returns here after every call; interrupts
 * delivered while idle return to the jmp.
 *
 * Nothing called it that a debugger could return to (the boot jumps here for
 * good), so its CFI marks it as the outermost frame, as Linux's entry code
 * marks the bottom of a task's stack: the return address is undefined and
 * gdb's and kmemu's backtraces end here cleanly instead of reading the words
 * above the stack as a caller ("previous frame inner to this frame").
 */
	.cfi_sections .debug_frame
	.globl kmemu_idle_loop, kmemu_idle_hlt
	.type kmemu_idle_loop, @function
kmemu_idle_loop:
	.cfi_startproc
	.cfi_def_cfa %rsp, 0
	.cfi_undefined %rip
	sti
	call kmemu_deferred_work  /* kswapd and friends, in process context */
	movl $1, %eax           /* KMEMU_CTL_READY */
	movw $0xc9e8, %dx
	outl %eax, %dx
kmemu_idle_hlt:
	hlt
	jmp kmemu_idle_loop
	.cfi_endproc
	.size kmemu_idle_loop, . - kmemu_idle_loop

/*
 * Return address of every host call: run deferred work, report completion.
 * The result travels in %r12 (callee-saved): the host may stop right after
 * the out, before any later instruction, so nothing may follow it that the
 * host depends on.
 *
 * The host's two words (this return address and, above it, the quiet word)
 * outlive the call: the deferred work runs 16 bytes below them, so the host
 * writes them once and not before every call (Machine._call_fast).  When the
 * quiet word is KMEMU_CALL_QUIET (<kmemu/abi.h>), the host asked for no port
 * write: the call ends in the idle loop's own state (its stack, flags 0x202)
 * at the idle loop's hlt, which stops the emulator by itself, so the host
 * neither takes a port callback nor puts the registers back at idle.
 *
 * The host pushes kmemu_call_return+1 as the return address: debuggers look
 * up a caller at (return address - 1), which must land in this function, not
 * in the one before it.  The CFI marks this as the outermost frame (return
 * address undefined), so gdb's and kmemu's backtraces end here cleanly and
 * gdb's `finish` recognises the frame it returns to.
 */
	.globl kmemu_call_return
	.type kmemu_call_return, @function
kmemu_call_return:
	.cfi_startproc
	.cfi_def_cfa %rsp, 0
	.cfi_undefined %rip
	nop                     /* never executed: calls return just past it */
	movq %rax, %r12
	subq $16, %rsp          /* below the host's two words: they stay as written */
	.cfi_adjust_cfa_offset 16
	call kmemu_deferred_work  /* kswapd and friends, in process context */
	cmpq $0x5154, 16(%rsp)  /* KMEMU_CALL_QUIET above the return address? */
	movl $2, %eax           /* KMEMU_CTL_CALL_DONE */
	movw $0xc9e8, %dx
	je 1f                   /* quiet: the host waits for the idle hlt, no port write */
	nop                     /* five instructions each way, so guest instruction */
	nop                     /* counts do not depend on the host's path */
	nop
	outl %eax, %dx          /* the host stops here: the hlt after it never runs */
	hlt
1:	movq kmemu_idle_rsp(%rip), %rsp  /* the idle loop's state, as the host keeps it */
	pushq $0x202
	popfq
	jmp kmemu_idle_hlt      /* its hlt ends the run: the host finds the CPU idle */
	.cfi_endproc
	.size kmemu_call_return, . - kmemu_call_return

/*
 * A host call that died in an oops ends here (traps.c jumps to it, on the
 * stack the call began with): the outermost frame, like kmemu_call_return.
 */
	.globl kmemu_call_oops
	.type kmemu_call_oops, @function
kmemu_call_oops:
	.cfi_startproc
	.cfi_def_cfa %rsp, 0
	.cfi_undefined %rip
	movl $3, %eax           /* KMEMU_CTL_CALL_OOPS */
	movw $0xc9e8, %dx
	outl %eax, %dx
	hlt
	jmp kmemu_call_oops
	.cfi_endproc
	.size kmemu_call_oops, . - kmemu_call_oops
