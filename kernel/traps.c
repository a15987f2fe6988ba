/*
 * traps.c - GDT, TSS, IDT, exceptions and the oops.
 *
 * The GDT has Linux's selectors (__KERNEL_CS 0x10, __KERNEL_DS 0x18) and a
 * TSS whose IST1 stack serves #DF, so a blown stack still produces a report.
 * All 256 IDT gates are interrupt gates (IF cleared on entry) into the stubs
 * of entry.S.  do_trap() dispatches: vectors 0..31 are CPU exceptions and
 * end in die() unless an exception table fixup applies (#GP, #PF, see
 * extable.c); 32..255 are interrupts and go to irq_dispatch() in hard-IRQ
 * context.
 *
 * die() prints the oops in Linux's shape, reports a structured event to the
 * host and then either hands control back to the host (jump to
 * kmemu_call_oops on a clean stack) or, without a host, panics.
 * Tables here are written once in trap_init() before interrupts are enabled.
 */
#include <linux/export.h>
#include <linux/bug.h>
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/preempt.h>
#include <linux/printk.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <kmemu/abi.h>
#include <kmemu/extable.h>
#include <kmemu/io.h>
#include <kmemu/kallsyms.h>
#include <kmemu/log.h>
#include <kmemu/memlayout.h>
#include <kmemu/mmu.h>
#include <kmemu/traps.h>
#include <kmemu/module.h>
#include <kmemu/kasan.h>

struct gate {
	u16 off_lo, sel;
	u8 ist, type;
	u16 off_mid;
	u32 off_hi, zero;
} __packed;

struct tss {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3, iomap_base;
} __packed;

struct desc_ptr {
	u16 limit;
	u64 base;
} __packed;

static u64 gdt[8] __aligned(16);
static struct gate idt[256] __aligned(16);
static struct tss tss __aligned(16);
static irq_handler_t irq_handlers[256];
extern char idt_stubs[];
extern char df_stack_top[], boot_stack_top[];
extern char kmemu_call_oops[];

u32 taint_flags;
static u32 die_counter;

static const char *const exc_names[32] = {
	"divide error", "debug", "nmi", "int3", "overflow", "bounds",
	"invalid opcode", "device not available", "double fault",
	"coprocessor segment overrun", "invalid TSS", "segment not present",
	"stack segment", "general protection fault", "page fault", "spurious",
	"coprocessor error", "alignment check", "machine check",
	"SIMD coprocessor error", "virtualization exception",
	"control protection fault", "reserved", "reserved", "reserved",
	"reserved", "reserved", "reserved", "hypervisor injection",
	"VMM communication", "security exception", "reserved",
};

static void set_gate(int vec, void *handler, int ist)
{
	u64 a = (u64)handler;
	idt[vec] = (struct gate){
		.off_lo = (u16)a, .sel = __KERNEL_CS, .ist = (u8)ist,
		.type = 0x8e, /* present, DPL0, 64-bit interrupt gate */
		.off_mid = (u16)(a >> 16), .off_hi = (u32)(a >> 32),
	};
}

static void gdt_init(void)
{
	u64 base = (u64)&tss, limit = sizeof(tss) - 1;

	gdt[0] = 0;
	gdt[1] = 0x00cf9a000000ffffUL; /* 0x08: 32-bit code (unused) */
	gdt[2] = 0x00af9a000000ffffUL; /* 0x10: __KERNEL_CS, 64-bit */
	gdt[3] = 0x00cf92000000ffffUL; /* 0x18: __KERNEL_DS */
	gdt[4] = 0;
	/* 0x28: 64-bit TSS, two slots */
	gdt[5] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89UL << 40) |
		 (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	gdt[6] = base >> 32;
	tss.ist[0] = (u64)df_stack_top;
	tss.rsp[0] = (u64)boot_stack_top;
	tss.iomap_base = sizeof(tss);

	struct desc_ptr p = { sizeof(gdt) - 1, (u64)gdt };
	__asm__ __volatile__(
		"lgdt %0\n\t"
		"movw %w1, %%ds\n\tmovw %w1, %%es\n\tmovw %w1, %%ss\n\t"
		"xorl %%eax, %%eax\n\tmovw %%ax, %%fs\n\tmovw %%ax, %%gs\n\t"
		"pushq %2\n\tleaq 1f(%%rip), %%rax\n\tpushq %%rax\n\tlretq\n1:\n\t"
		"ltr %w3"
		:: "m"(p), "r"(__KERNEL_DS), "i"(__KERNEL_CS), "r"(GDT_TSS_SEL)
		: "rax", "memory");
}

void trap_init(void)
{
	gdt_init();
	for (int v = 0; v < 256; v++)
		set_gate(v, idt_stubs + 16 * v, v == 8 ? 1 : 0);
	struct desc_ptr p = { sizeof(idt) - 1, (u64)idt };
	__asm__ __volatile__("lidt %0" :: "m"(p));
}

void set_irq_handler(u8 vector, irq_handler_t fn)
{
	irq_handlers[vector] = fn;
}

/*
 * Frame-pointer unwinding: each frame is [saved rbp][return address].  Stop
 * at a NULL or misaligned rbp, or one outside the kernel's address space.
 */
static bool kernel_addr(u64 a)
{
	return a >= PAGE_OFFSET;
}

int save_stack_trace(u64 rbp, u64 *out, int max)
{
	int n = 0;
	while (n < max && rbp && !(rbp & 7) && kernel_addr(rbp)) {
		u64 *frame = (u64 *)rbp;
		u64 ret = frame[1];
		if (!ret || (!kallsyms_lookup(ret, NULL, NULL) && !is_module_text_address(ret)))
			break;
		out[n++] = ret;
		if (frame[0] <= rbp)
			break;
		rbp = frame[0];
	}
	return n;
}

static bool text_addr(u64 a)
{
	return (a >= (u64)_stext && a < (u64)_etext) || is_module_text_address(a);
}

/*
 * A leaf function keeps no frame, so the frame chain from regs->rbp starts
 * at its caller's caller.  Like Linux's frame-pointer unwinder, report the
 * word at the stack pointer as an unreliable "? " entry when it looks like
 * a return address that the chain does not already start with.
 */
static u64 leaf_return_guess(struct pt_regs *r)
{
	u64 *sp = (u64 *)r->rsp;
	if ((r->rsp & 7) || !kernel_addr(r->rsp))
		return 0;
	u64 cand = sp[0];
	if (!text_addr(cand))
		return 0;
	if (r->rbp && !(r->rbp & 7) && kernel_addr(r->rbp) && ((u64 *)r->rbp)[1] == cand)
		return 0;
	return cand;
}

void show_stack_trace(u64 rbp, u64 rip)
{
	u64 trace[KMEMU_EV_TRACE];
	int n = save_stack_trace(rbp, trace, KMEMU_EV_TRACE);
	printk("Call Trace:\n <TASK>\n");
	if (rip)
		printk(" %pS\n", (void *)rip);
	for (int i = 0; i < n; i++)
		printk(" %pS\n", (void *)trace[i]);
	printk(" </TASK>\n");
}

/* Linux's print_tainted(): one column per taint flag, in bit order, G when not P. */
const char *print_tainted(void)
{
	static const char letters[] = "PFSRMBUDAWCIOELKXT";
	static char buf[40];
	if (!taint_flags)
		return "Not tainted";
	char *p = buf + snprintf(buf, sizeof(buf), "Tainted: ");
	for (int i = 0; letters[i]; i++)
		*p++ = taint_flags & (1U << i) ? letters[i] : i == 0 ? 'G' : ' ';
	*p = 0;
	return buf;
}

static void show_regs(struct pt_regs *r)
{
	printk("CPU: 0 PID: 0 Comm: kmemu %s 0.1.0 #1\n", print_tainted());
	printk("RIP: %04llx:%pS\n", r->cs, (void *)r->rip);
	printk("RSP: %04llx:%016llx EFLAGS: %08llx\n", r->ss, r->rsp, r->rflags);
	printk("RAX: %016llx RBX: %016llx RCX: %016llx\n", r->rax, r->rbx, r->rcx);
	printk("RDX: %016llx RSI: %016llx RDI: %016llx\n", r->rdx, r->rsi, r->rdi);
	printk("RBP: %016llx R08: %016llx R09: %016llx\n", r->rbp, r->r8, r->r9);
	printk("R10: %016llx R11: %016llx R12: %016llx\n", r->r10, r->r11, r->r12);
	printk("R13: %016llx R14: %016llx R15: %016llx\n", r->r13, r->r14, r->r15);
	printk("FS:  0000000000000000(0000) GS:0000000000000000(0000) knlGS:0000000000000000\n");
	printk("CS:  %04llx DS: 0000 ES: 0000 CR0: %016llx\n", r->cs, read_cr0());
	printk("CR2: %016llx CR3: %016llx CR4: %016llx\n", read_cr2(), read_cr3(), read_cr4());
}

static void fill_event(struct kmemu_event *ev, u32 type, struct pt_regs *r, u64 addr)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = type;
	ev->args[0] = r->vector;
	ev->args[1] = r->error_code;
	ev->args[2] = r->rip;
	ev->args[3] = addr;
	ev->args[4] = r->rsp;
	ev->args[5] = r->rbp;
	ev->trace[0] = r->rip;
	int n = 1;
	u64 guess = leaf_return_guess(r);
	if (guess)
		ev->trace[n++] = guess;
	ev->nr_trace = n + save_stack_trace(r->rbp, ev->trace + n, KMEMU_EV_TRACE - n);
}

static void page_fault_headline(struct pt_regs *r, u64 cr2, char *msg, size_t len)
{
	u64 ec = r->error_code;
	/* an instruction fetch from a present page: it is NX (Linux's show_fault_oops) */
	if ((ec & 0x11) == 0x11)
		printk("kernel tried to execute NX-protected page - exploit attempt? (uid: 0)\n");
	if (cr2 < PAGE_SIZE)
		snprintf(msg, len, "BUG: kernel NULL pointer dereference, address: %016llx", cr2);
	else
		snprintf(msg, len, "BUG: unable to handle page fault for address: %016llx", cr2);
	printk("%s\n", msg);
	printk("#PF: %s %s in %s mode\n", ec & 4 ? "user" : "supervisor",
	       ec & 16 ? "instruction fetch" : ec & 2 ? "write access" : "read access",
	       ec & 4 ? "user" : "kernel");
	printk("#PF: error_code(0x%04llx) - %s\n", ec,
	       ec & 1 ? (ec & 8 ? "reserved bit violation" : "permissions violation")
		      : "not-present page");
	dump_pagetable(cr2);
}

/* die - the oops.  Never returns to the faulting code. */
static void __noreturn die(struct pt_regs *r)
{
	static struct kmemu_event ev;
	static bool dying;
	u64 cr2 = r->vector == 14 ? read_cr2() : 0;
	char head[KMEMU_EV_MSG];

	if (dying) {
		printk("Kernel panic - not syncing: recursive fault\n");
		kmemu_exit(3);
	}
	dying = true;
	fill_event(&ev, KMEMU_EV_OOPS, r, cr2);
	if (r->vector == 14) {
		page_fault_headline(r, cr2, head, sizeof(head));
		printk("Oops: %04llx [#%u] NOPTI\n", r->error_code, ++die_counter);
	} else {
		snprintf(head, sizeof(head), "Oops: %s: %04llx [#%u] NOPTI",
			 r->vector < 32 ? exc_names[r->vector] : "interrupt", r->error_code,
			 ++die_counter);
		printk("%s\n", head);
	}
	strscpy(ev.msg, head, sizeof(ev.msg));
	show_regs(r);
	u64 guess = leaf_return_guess(r);
	if (guess) {
		u64 trace[KMEMU_EV_TRACE];
		int n = save_stack_trace(r->rbp, trace, KMEMU_EV_TRACE);
		printk("Call Trace:\n <TASK>\n ? %pS\n", (void *)guess);
		for (int i = 0; i < n; i++)
			printk(" %pS\n", (void *)trace[i]);
		printk(" </TASK>\n");
	} else {
		show_stack_trace(r->rbp, 0);
	}
	print_modules();
	if (r->vector == 14)
		printk("CR2: %016llx\n", cr2);
	printk("---[ end trace %016x ]---\n", 0);
	taint_flags |= TAINT_DIE;
	host_event(&ev);
	dying = false;

	if (host_present) {
		/*
		 * Under kmemu everything after boot runs on the host's behalf
		 * (a call or an interrupt it raised): give the CPU back on a
		 * fresh stack with no IRQ nesting.  The host unwinds its request.
		 */
		preempt_count = 0;
		kasan_unpoison_stack_below((u64)boot_stack_top); /* frames that never return */
		__asm__ __volatile__("movq %0, %%rsp\n\txorl %%ebp, %%ebp\n\tjmp *%1"
				     :: "r"((u64)boot_stack_top - 64), "r"(kmemu_call_oops) : "memory");
		__builtin_unreachable();
	}
	panic("Fatal exception");
}

void irq_dispatch(struct pt_regs *regs, irq_handler_t fn);

void do_trap(struct pt_regs *regs)
{
	if (regs->vector < 32) {
		/* #GP and #PF on an instruction with an exception table entry resume at its fixup */
		if ((regs->vector == 13 || regs->vector == 14) && fixup_exception(regs))
			return;
		die(regs);
	}
	irq_dispatch(regs, irq_handlers[regs->vector]);
}

void __bug_report(const char *file, int line)
{
	static struct kmemu_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.type = KMEMU_EV_BUG;
	snprintf(ev.msg, sizeof(ev.msg), "kernel BUG at %s:%d!", file, line);
	ev.args[0] = (u64)line;
	printk("------------[ cut here ]------------\n%s\n", ev.msg);
	ev.nr_trace = save_stack_trace((u64)__builtin_frame_address(0), ev.trace, KMEMU_EV_TRACE);
	host_event(&ev);
}
EXPORT_SYMBOL(__bug_report);

void __warn(const char *file, int line, const char *fmt, ...)
{
	static struct kmemu_event ev;
	char extra[96] = "";
	memset(&ev, 0, sizeof(ev));
	ev.type = KMEMU_EV_WARN;
	printk("------------[ cut here ]------------\n");
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(extra, sizeof(extra), fmt, ap);
		va_end(ap);
		printk("%s\n", extra);
	}
	u64 caller = (u64)__builtin_return_address(0);
	snprintf(ev.msg, sizeof(ev.msg), "WARNING: CPU: 0 PID: 0 at %s:%d %pS", file, line, (void *)caller);
	printk("%s\n", ev.msg);
	print_modules();
	printk("CPU: 0 PID: 0 Comm: kmemu %s 0.1.0 #1\n", print_tainted());
	ev.args[0] = (u64)line;
	ev.args[1] = caller;
	ev.nr_trace = save_stack_trace((u64)__builtin_frame_address(0), ev.trace, KMEMU_EV_TRACE);
	show_stack_trace((u64)__builtin_frame_address(0), 0);
	printk("---[ end trace %016x ]---\n", 0);
	taint_flags |= TAINT_WARN;
	host_event(&ev);
}
EXPORT_SYMBOL(__warn);

/* dump_stack - the "CPU: ... Comm:" line and the caller's call trace, as Linux prints them. */
void dump_stack(void)
{
	printk("CPU: 0 PID: 0 Comm: kmemu %s 0.1.0 #1\n", print_tainted());
	show_stack_trace((u64)__builtin_frame_address(0), 0);
}
EXPORT_SYMBOL(dump_stack);

void panic(const char *fmt, ...)
{
	static struct kmemu_event ev;
	va_list ap;
	local_irq_disable();
	memset(&ev, 0, sizeof(ev));
	ev.type = KMEMU_EV_PANIC;
	char *p = ev.msg;
	int n = snprintf(p, sizeof(ev.msg), "Kernel panic - not syncing: ");
	va_start(ap, fmt);
	vsnprintf(p + n, sizeof(ev.msg) - n, fmt, ap);
	va_end(ap);
	printk("%s\n", ev.msg);
	ev.nr_trace = save_stack_trace((u64)__builtin_frame_address(0), ev.trace, KMEMU_EV_TRACE);
	host_event(&ev);
	printk("---[ end Kernel panic - not syncing ]---\n");
	kmemu_exit(2);
}
EXPORT_SYMBOL(panic);

/* spinlock.h: one CPU and interrupts off, so a held lock taken again is a bug. */
void spin_lock_recursion(spinlock_t *lock, unsigned long ip)
{
	panic("BUG: spinlock recursion at %pS (held since %pS)", (void *)ip, (void *)lock->owner_ip);
}
EXPORT_SYMBOL(spin_lock_recursion);
