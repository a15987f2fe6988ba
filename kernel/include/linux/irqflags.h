/*
 * <linux/irqflags.h> - turning interrupts off and on for this CPU.
 *
 * flags are the saved RFLAGS (unsigned long, checked at compile time):
 *   unsigned long flags;
 *   local_irq_save(flags); ... local_irq_restore(flags);
 * Enabling interrupts under kmemu: the host sets kmemu_irq_pending while
 * its interrupt controller holds a vector, and local_irq_enable() then calls
 * kmemu_irq_window() so the vector arrives right after the sti (Unicorn does
 * not deliver on sti by itself).  Without a pending vector it costs a load.
 */
#ifndef _LINUX_TRACE_IRQFLAGS_H
#define _LINUX_TRACE_IRQFLAGS_H
#include <linux/compiler.h>
#include <linux/typecheck.h>
#include <linux/types.h>

#define X86_EFLAGS_IF_BIT 9
#define X86_EFLAGS_IF (1UL << X86_EFLAGS_IF_BIT)

extern volatile u32 kmemu_irq_pending;
/*
 * Every register is the callee's to save (GCC's no_caller_saved_registers),
 * and arch_local_irq_enable() calls it from inline asm that clobbers nothing:
 * the rare call costs the fast paths that re-enable interrupts nothing, no
 * value has to be kept in a callee-saved register across it (GCC does not
 * use the attribute at call sites).  The kernel has no red zone (-mno-red-zone).
 */
__attribute__((no_caller_saved_registers)) void kmemu_irq_window(void);

static __always_inline unsigned long arch_local_save_flags(void)
{
	unsigned long flags;

	__asm__ __volatile__("pushfq; popq %0" : "=r"(flags) : : "memory");
	return flags;
}

static __always_inline void arch_local_irq_disable(void)
{
	__asm__ __volatile__("cli" : : : "memory");
}

static __always_inline void arch_local_irq_enable(void)
{
	/* sti, then one compare of the host's flag in memory (no load into a register) */
	__asm__ goto("sti\n\tcmpl $0, kmemu_irq_pending(%%rip)\n\tjne %l[window]"
		     : : : "memory", "cc" : window);
	return;
window:
	__asm__ __volatile__("call kmemu_irq_window" : : : "memory");
}

static __always_inline unsigned long arch_local_irq_save(void)
{
	unsigned long flags = arch_local_save_flags();

	arch_local_irq_disable();
	return flags;
}

static __always_inline bool arch_irqs_disabled_flags(unsigned long flags)
{
	return !(flags & X86_EFLAGS_IF);
}

/* Interrupts on again only if they were on when flags were saved. */
static __always_inline void arch_local_irq_restore(unsigned long flags)
{
	if (!arch_irqs_disabled_flags(flags))
		arch_local_irq_enable();
}

#define raw_local_irq_disable() arch_local_irq_disable()
#define raw_local_irq_enable() arch_local_irq_enable()
#define raw_local_irq_save(flags) \
	do { typecheck(unsigned long, flags); flags = arch_local_irq_save(); } while (0)
#define raw_local_irq_restore(flags) \
	do { typecheck(unsigned long, flags); arch_local_irq_restore(flags); } while (0)
#define raw_local_save_flags(flags) \
	do { typecheck(unsigned long, flags); flags = arch_local_save_flags(); } while (0)
#define raw_irqs_disabled_flags(flags) \
	({ typecheck(unsigned long, flags); arch_irqs_disabled_flags(flags); })
#define raw_irqs_disabled() arch_irqs_disabled_flags(arch_local_save_flags())

#define local_irq_enable() raw_local_irq_enable()
#define local_irq_disable() raw_local_irq_disable()
#define local_irq_save(flags) raw_local_irq_save(flags)
#define local_irq_restore(flags) raw_local_irq_restore(flags)
#define local_save_flags(flags) raw_local_save_flags(flags)
#define irqs_disabled() raw_irqs_disabled()
#define irqs_disabled_flags(flags) raw_irqs_disabled_flags(flags)

#endif
