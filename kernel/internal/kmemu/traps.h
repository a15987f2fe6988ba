/*
 * kmemu/traps.h - interrupt frames, the IDT, exception handling and taint
 * (traps.c), interrupt entry accounting (irq.c).
 */
#ifndef KMEMU_TRAPS_H
#define KMEMU_TRAPS_H
#include <linux/types.h>

/*
 * Saved by entry.S.  The order matches the pushes in entry.S from the
 * bottom up; vector and error_code sit where Linux keeps orig_ax.
 */
struct pt_regs {
	u64 r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	u64 rax, rcx, rdx, rsi, rdi;
	u64 vector, error_code;
	u64 rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

#define __KERNEL_CS 0x10
#define __KERNEL_DS 0x18
#define GDT_TSS_SEL 0x28

typedef void (*irq_handler_t)(struct pt_regs *regs);

void trap_init(void);
void set_irq_handler(u8 vector, irq_handler_t fn);
void show_stack_trace(u64 rbp, u64 rip);
int save_stack_trace(u64 rbp, u64 *out, int max);
void do_trap(struct pt_regs *regs);

/* Hard interrupt entry/exit: HARDIRQ_OFFSET in preempt_count (irq.c). */
void irq_enter(void);
void irq_exit(void);

/* Linux's taint bits and letters; print_tainted() gives "Tainted: G  W" or "Not tainted". */
extern u32 taint_flags;
#define TAINT_BAD_PAGE (1U << 5) /* 'B' */
#define TAINT_DIE (1U << 7)      /* 'D' */
#define TAINT_WARN (1U << 9)     /* 'W' */
#define TAINT_PROPRIETARY_MODULE (1U << 0) /* 'P': a module with a non-GPL license */
#define TAINT_OOT_MODULE (1U << 12)        /* 'O': an out-of-tree module */
const char *print_tainted(void);

#endif
