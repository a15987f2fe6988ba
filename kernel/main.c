/*
 * main.c - kmain(), phases 4 and 6 of the boot flow (DESIGN.md).
 *
 * Order matters: the boot info is copied out of low memory first, the host
 * is detected before anything is printed (so nothing is sent to kmemu ports
 * under QEMU), traps come up before anything can fault, and memblock must
 * know every reservation before paging_init() allocates page tables.
 * Without a host (QEMU) the self-tests and the built-in KUnit suites run at
 * the end; under kmemu the host runs them on request.
 */
#include <linux/bug.h>
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/preempt.h>
#include <linux/printk.h>
#include <linux/string.h>
#include <kmemu/abi.h>
#include <kmemu/bootinfo.h>
#include <kmemu/fault_inject.h>
#include <kmemu/io.h>
#include <kmemu/log.h>
#include <kmemu/memblock.h>
#include <kmemu/memlayout.h>
#include <kmemu/mmu.h>
#include <kmemu/page_alloc.h>
#include <kmemu/text_patching.h>
#include <kmemu/trace.h>
#include <kmemu/traps.h>
#include <kmemu/kasan.h>
#include <kmemu/kmemleak.h>

struct boot_info boot_info;
enum system_states system_state = SYSTEM_BOOTING;
const char kmemu_banner[] = "kmemu kernel 0.1.0 (x86_64) #1";
u64 kmemu_boot_stage; /* 1 early, 2 paging, 3 ready */

void irq_init(void);
void mm_core_init(void);
void mm_test_init(void);
void kmem_cache_init(void);
void slab_select(const char *cmdline);
void vmalloc_init(void);
int kmemu_selftest(void);
int kunit_run_all(void);
void load_builtin_modules(void);
u64 kmemu_test_fault(u64 addr, u64 write);

static void boot_info_copy(u64 bi_pa)
{
	const struct boot_info *src = __va(bi_pa);
	if (src->magic != BOOT_INFO_MAGIC)
		panic("kmain: bad boot info magic 0x%x at 0x%llx", src->magic, bi_pa);
	memcpy(&boot_info, src, offsetof(struct boot_info, e820));
	boot_info.cmdline[CMDLINE_MAX - 1] = 0;
	if (boot_info.e820_count > E820_MAX_ENTRIES)
		boot_info.e820_count = E820_MAX_ENTRIES;
	if (__pa_symbol(__kernel_end) > E820_TABLE_PA)
		panic("kmain: the kernel (to 0x%llx) overlaps the E820 table at 0x%llx",
		      __pa_symbol(__kernel_end), (u64)E820_TABLE_PA);
	boot_info.e820 = __va(E820_TABLE_PA);
}

/* Constructors (.init_array): GCC's KASAN registers each file's globals from them. */
static void do_ctors(void)
{
	extern void (*__ctors_start[])(void), (*__ctors_end[])(void);
	for (void (**f)(void) = __ctors_start; f < __ctors_end; f++)
		(*f)();
}

void kmain(u64 bi_pa)
{
	kmemu_boot_stage = 1;
	/* mask the legacy PICs: SeaBIOS leaves the timer on IRQ0 = vector 8 (#DF) */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	host_detect();
	trap_init();
	irq_init();
	boot_info_copy(bi_pa);

	printk("%s\n", kmemu_banner);
	printk("Command line: %s\n", boot_info.cmdline);
	e820_setup();
	memblock_reserve(EARLY_PT_PA, EARLY_PT_END - EARLY_PT_PA);
	printk("last_pfn = 0x%llx max_arch_pfn = 0x400000000\n", memblock_end_of_DRAM() >> PAGE_SHIFT);
	if (cmdline_find(boot_info.cmdline, "memblock=debug"))
		memblock_dump();
	paging_init();
	kasan_init();
	do_ctors();
	text_poke_init();
	jump_label_init(); /* before any boot parameter turns a static key on */
	kmemu_boot_stage = 2;
	fault_inject_setup(boot_info.cmdline);
	alloc_debug_set(1, 1); /* might_sleep's and the bad-page checks: on, as a debug kernel */
	mm_core_init();
	slab_select(boot_info.cmdline); /* slab=: before the first cache */
	kmem_cache_init();
	kmemleak_init(boot_info.cmdline); /* kmemleak=on: tracks from here on */
	vmalloc_init();
	trace_init(boot_info.cmdline); /* trace_event= and friends: the buffer is vmalloc'ed */
	mm_test_init();
	mark_rodata_ro(); /* text and rodata read-only from here on, and the W+X check */

	/* kmemu_test=boot_oops: die during boot, to test how failed boots are reported */
	const char *t = cmdline_find(boot_info.cmdline, "kmemu_test");
	if (t && !strncmp(t, "boot_oops", 9))
		kmemu_test_fault(0, 0);

	printk("kmemu: %s\n", host_present ? "host present, waiting for requests" : "no host: running self-tests");
	kmemu_boot_stage = 3;
	system_state = SYSTEM_RUNNING;
	if (host_present)
		kmemu_idle();

	/* like the end of Linux's init: process context with interrupts on */
	local_irq_enable();
	load_builtin_modules();
	int failed = kmemu_selftest();
	/* then the built-in KUnit suites, as Linux runs them at boot (KTAP) */
	failed += kunit_run_all();
	failed += kmemleak_late_scan(); /* kmemleak=on: a leak fails the run */
	kmemu_exit(failed ? 1 : 0);
}
