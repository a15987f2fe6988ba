/*
 * selftest.c - built-in self-tests, run at boot when no host is present
 * (QEMU) and callable by the host (kmemu_selftest) under kmemu.  Each test
 * prints one line; the summary line is what `kmemu qemu` looks for.
 */
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/preempt.h>
#include <linux/printk.h>
#include <linux/string.h>
#include <kmemu/abi.h>
#include <kmemu/io.h>
#include <kmemu/kallsyms.h>
#include <kmemu/log.h>
#include <kmemu/memblock.h>
#include <kmemu/memlayout.h>
#include <kmemu/page_alloc.h>

struct irq_test_record {
	u64 count;
	u64 vector;
	u32 preempt_count;
	u32 in_hardirq;
	u32 in_interrupt;
	u32 irqs_disabled;
	u64 rip;
	u64 max_nesting;
};
extern struct irq_test_record irq_test_record;
void kmain(u64);

static int passed, failed;

static void check(bool ok, const char *name)
{
	printk("selftest: %-32s %s\n", name, ok ? "ok" : "FAILED");
	if (ok)
		passed++;
	else
		failed++;
}

static bool test_format(void)
{
	char b[64];
	snprintf(b, sizeof(b), "%d|%5u|%-4x|%08lx|%s|%c|%%", -42, 7U, 0xabU, 0x1234UL, "hi", 'z');
	if (strcmp(b, "-42|    7|ab  |00001234|hi|z|%"))
		return false;
	snprintf(b, sizeof(b), "%#x %lld %.2s", 255U, -9000000000LL, "abcdef");
	return !strcmp(b, "0xff -9000000000 ab");
}

static bool test_kallsyms(void)
{
	u64 off, size;
	const char *n = kallsyms_lookup((u64)kmain + 3, &off, &size);
	return n && !strcmp(n, "kmain") && off == 3 && size > 3 &&
	       kallsyms_lookup_name("kmain") == (u64)kmain;
}

/* Every usable page edge is reachable through the direct map. */
static bool test_direct_map(void)
{
	struct memblock_type *m = &memblock.memory;
	for (u32 i = 0; i < m->cnt; i++) {
		u64 pas[2] = { m->regions[i].base, m->regions[i].base + m->regions[i].size - 8 };
		for (int k = 0; k < 2; k++) {
			volatile u64 *p = __va(pas[k]);
			u64 old = *p;
			*p = 0x5a5a5a5a00000000UL | i;
			bool ok = *p == (0x5a5a5a5a00000000UL | i);
			*p = old;
			if (!ok)
				return false;
		}
	}
	return m->cnt > 0;
}

static bool test_irq(void)
{
	u64 before = irq_test_record.count;
	__asm__ __volatile__("int %0" :: "i"(KMEMU_TEST_VECTOR) : "memory");
	struct irq_test_record *r = &irq_test_record;
	return r->count == before + 1 && r->vector == KMEMU_TEST_VECTOR && r->in_hardirq &&
	       r->irqs_disabled && (r->preempt_count & HARDIRQ_MASK) && preempt_count == 0;
}

static bool test_preempt(void)
{
	preempt_disable();
	bool in = in_atomic() && !in_interrupt();
	preempt_enable();
	return in && !in_atomic();
}

static u64 total_free(void)
{
	drain_all_pages();
	return nr_free_pages();
}

/* Every order allocates an aligned block, and freeing everything coalesces back. */
static bool test_buddy_roundtrip(void)
{
	struct page *got[NR_PAGE_ORDERS];
	u64 before = total_free();
	for (unsigned int o = 0; o < NR_PAGE_ORDERS; o++) {
		got[o] = alloc_pages(GFP_KERNEL, o);
		if (!got[o] || (page_to_pfn(got[o]) & ((1UL << o) - 1)))
			return false;
	}
	for (unsigned int o = 0; o < NR_PAGE_ORDERS; o++)
		__free_pages(got[o], o);
	return total_free() == before;
}

static bool test_gfp_zero_and_dma(void)
{
	u64 a = __get_free_pages(GFP_KERNEL, 1);
	memset((void *)a, 0xaa, 2 * PAGE_SIZE);
	free_pages(a, 1);
	u64 b = __get_free_pages(GFP_KERNEL | __GFP_ZERO, 1);
	bool zero = true;
	for (u64 i = 0; i < 2 * PAGE_SIZE; i++)
		zero &= ((u8 *)b)[i] == 0;
	free_pages(b, 1);
	u64 d = __get_free_pages(GFP_KERNEL | __GFP_DMA, 0);
	bool low = d && __pa(d) < 0x1000000;
	free_pages(d, 0);
	return zero && low;
}

static bool test_watermarks(void)
{
	for (int i = 0; i < MAX_NR_ZONES; i++) {
		struct zone *z = &zones[i];
		if (populated_zone(z) && !(min_wmark_pages(z) < low_wmark_pages(z) &&
					   low_wmark_pages(z) < high_wmark_pages(z)))
			return false;
	}
	char buf[64];
	gfp_format(buf, sizeof(buf), GFP_KERNEL | __GFP_ZERO);
	return min_free_kbytes >= 128 && !strcmp(buf, "GFP_KERNEL|__GFP_ZERO");
}

int kmemu_selftest(void)
{
	passed = failed = 0;
	check(test_format(), "vsnprintf formats");
	check(test_kallsyms(), "kallsyms lookup");
	check(test_direct_map(), "direct map covers usable RAM");
	check(test_irq(), "interrupt runs in hard-IRQ context");
	check(test_preempt(), "preempt_count accounting");
	check(test_buddy_roundtrip(), "buddy: every order, full coalescing");
	check(test_gfp_zero_and_dma(), "__GFP_ZERO and __GFP_DMA");
	check(test_watermarks(), "watermarks and gfp names");
	printk("kmemu selftest: %d passed, %d failed\n", passed, failed);
	return failed;
}
