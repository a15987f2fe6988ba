/*
 * selftest.c - built-in self-tests, run at boot when no host is present
 * (QEMU) and callable by the host (kmemu_selftest) under kmemu.  Each test
 * prints one line; the summary line is what `kmemu qemu` looks for.
 *
 * Besides boot and the buddy allocator they cover every allocator (kmalloc
 * size classes, a cache's life cycle with a constructor, slab_debug's red
 * zone and poison checks, vmalloc with its guard page, vmap) and strict
 * kernel RWX (each section's protection read back from the page tables, no
 * W+X page anywhere, writes to text and rodata fault).  Faults that a test
 * provokes on purpose go through the exception table
 * (copy_{from,to}_kernel_nofault), so they are survived on any CPU.  The
 * slab_debug test prints the BUG reports it provokes, as Linux's
 * slub_kunit does.
 *
 * kmemu_test=selftest_fail (test-only) adds a deliberately broken test, so
 * the harnesses can prove they notice a failure.
 */
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/preempt.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>
#include <kmemu/abi.h>
#include <kmemu/bootinfo.h>
#include <kmemu/extable.h>
#include <kmemu/io.h>
#include <kmemu/kallsyms.h>
#include <kmemu/log.h>
#include <kmemu/memblock.h>
#include <kmemu/memlayout.h>
#include <kmemu/mmu.h>
#include <kmemu/page_alloc.h>
#include <kmemu/slub.h>
#include <kmemu/slab_common.h>

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
extern const char kmemu_banner[];
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

/*
 * Every usable page edge is reachable through the direct map: written and
 * restored where the direct map is writable, read where it is the
 * read-only alias of the image's text and rodata.
 */
static bool test_direct_map(void)
{
	struct memblock_type *m = &memblock.memory;
	u64 ro_b = __pa_symbol(_stext), ro_e = __pa_symbol(__end_rodata);
	for (u32 i = 0; i < m->cnt; i++) {
		u64 pas[2] = { m->regions[i].base, m->regions[i].base + m->regions[i].size - 8 };
		for (int k = 0; k < 2; k++) {
			volatile u64 *p = __va(pas[k]);
			u64 old = *p;
			if (pas[k] >= ro_b && pas[k] < ro_e)
				continue; /* read above; writing would fault (test_kernel_rwx) */
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

/* --- allocators -------------------------------------------------------------- */

/*
 * Every kmalloc size lands in the running allocator's class (slab=): SLUB's
 * kmalloc-8.. with 96 and 192 and pages above 8k; SLAB's kmalloc-32..4M;
 * SLOB's size prefix (ksize = the request rounded to 2-byte units) and pages
 * from PAGE_SIZE - 8 bytes up.  ksize says so.
 */
static bool test_kmalloc_classes(void)
{
	static const u32 sizes[] = { 1, 8, 9, 64, 65, 96, 97, 129, 193, 1000, 2049, 4097, 8192, 8193,
				     3 * PAGE_SIZE };
	static const u32 want[3][ARRAY_SIZE(sizes)] = {
		[SLAB_ALLOCATOR_SLUB] = { 8, 8, 16, 64, 96, 96, 128, 192, 256, 1024, 4096, 8192, 8192,
					  16384, 16384 },
		[SLAB_ALLOCATOR_SLAB] = { 32, 32, 32, 64, 96, 96, 128, 192, 256, 1024, 4096, 8192, 8192,
					  16384, 16384 },
		[SLAB_ALLOCATOR_SLOB] = { 2, 8, 10, 64, 66, 96, 98, 130, 194, 1000, 2050, 8192, 8192,
					  16384, 16384 },
	};
	u64 page_from = slab_allocator == SLAB_ALLOCATOR_SLOB ? PAGE_SIZE - 8 :
			slab_allocator == SLAB_ALLOCATOR_SLUB ? KMALLOC_MAX_CACHE_SIZE + 1 : ~0UL;
	bool ok = true;
	for (u32 i = 0; i < ARRAY_SIZE(sizes); i++) {
		u8 *p = kmalloc(sizes[i], GFP_KERNEL);
		if (!p)
			return false;
		memset(p, 0x5a, sizes[i]);
		ok &= ksize(p) == want[slab_allocator][i] && IS_ALIGNED((u64)p, 8) &&
		      p[sizes[i] - 1] == 0x5a;
		if (sizes[i] >= page_from) /* the page allocator's: page aligned */
			ok &= IS_ALIGNED((u64)p, PAGE_SIZE);
		kfree(p);
	}
	return ok && ksize(NULL) == 0 && kmalloc(0, GFP_KERNEL) == ZERO_SIZE_PTR;
}

static u32 ctor_calls;

static void selftest_ctor(void *obj)
{
	ctor_calls++;
	memset(obj, 0xc7, 100);
}

/* Whichever allocator runs (slab=): kmem_cache_listed is one of its entry points. */
static bool cache_listed(const char *name)
{
	return kmem_cache_listed(name);
}

/*
 * create -> alloc -> free -> destroy with a constructor: every object comes
 * out constructed (SLUB, SLAB: the ctor ran once per object when its slab was
 * made, not per allocation; SLOB: at every allocation, as Linux's), a freed
 * object keeps its constructed state, and the cache is gone after
 * kmem_cache_destroy.
 */
static bool test_cache_cycle(void)
{
	enum { N = 64 };
	void *objs[N];
	ctor_calls = 0;
	struct kmem_cache *s = kmem_cache_create("selftest_ctor", 100, 0, 0, selftest_ctor);
	if (!s || kmem_cache_size(s) != 100 || !cache_listed("selftest_ctor"))
		return false;
	bool ok = true;
	for (int i = 0; i < N; i++) {
		u8 *o = objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ok &= o && o[0] == 0xc7 && o[99] == 0xc7;
	}
	u32 made = ctor_calls;
	ok &= made >= N;
	for (int i = 0; i < N; i++)
		kmem_cache_free(s, objs[i]);
	u8 *again = kmem_cache_alloc(s, GFP_KERNEL);
	ok &= again && again[0] == 0xc7 && again[50] == 0xc7 &&
	      ctor_calls == made + (slab_allocator == SLAB_ALLOCATOR_SLOB);
	kmem_cache_free(s, again);
	kmem_cache_destroy(s);
	return ok && !cache_listed("selftest_ctor");
}

/*
 * slab_debug=ZP on one cache: a right red zone overrun is reported when the
 * object is freed, a write after free when the poisoned object is handed
 * out again; each once, and a clean alloc/free reports nothing (SLUB and
 * SLAB).  SLOB has no debug options: the cache is refused.
 */
static bool test_slab_debug(void)
{
	if (slab_allocator == SLAB_ALLOCATOR_SLOB)
		return !kmem_cache_create("selftest_debug", 24, 0, SLAB_RED_ZONE | SLAB_POISON, NULL);
	struct kmem_cache *s = kmem_cache_create("selftest_debug", 24, 0, SLAB_RED_ZONE | SLAB_POISON, NULL);
	if (!s)
		return false;
	u8 *p = kmem_cache_alloc(s, GFP_KERNEL);
	u64 before = kmem_cache_errors(s);
	p[24] = 0x00; /* one byte past the object: the right red zone */
	kmem_cache_free(s, p);
	bool redzone = kmem_cache_errors(s) == before + 1;

	p = kmem_cache_alloc(s, GFP_KERNEL);
	kmem_cache_free(s, p);
	bool clean = kmem_cache_errors(s) == before + 1;
	p[3] = 0x00; /* use after free: the poison changes */
	u8 *q = kmem_cache_alloc(s, GFP_KERNEL); /* the same object (LIFO), checked on the way out */
	bool poison = q == p && kmem_cache_errors(s) == before + 2;
	kmem_cache_free(s, q);
	kmem_cache_destroy(s);
	return redzone && clean && poison;
}

/* True when no page of [addr, addr + size) is mapped any more. */
static bool unmapped(const void *addr, u64 size)
{
	for (u64 off = 0; off < size; off += PAGE_SIZE)
		if (lookup_address_prot((u64)addr + off))
			return false;
	return true;
}

static bool prot_is(u64 va, bool rw, bool nx)
{
	u64 p = lookup_address_prot(va);
	return (p & _PAGE_PRESENT) && !!(p & _PAGE_RW) == rw && !!(p & _PAGE_NX) == nx;
}

/*
 * vmalloc: RW+NX pages, the guard page after the area faults (caught by the
 * exception table and survived), and after vfree no PTE maps the area.
 */
static bool test_vmalloc_guard(void)
{
	u8 *p = vmalloc(3 * PAGE_SIZE), b = 0;
	if (!p)
		return false;
	memset(p, 0x3c, 3 * PAGE_SIZE);
	bool ok = prot_is((u64)p, true, true) && prot_is((u64)p + 2 * PAGE_SIZE, true, true);
	ok &= !copy_from_kernel_nofault(&b, p + 3 * PAGE_SIZE - 1, 1) && b == 0x3c;
	ok &= copy_from_kernel_nofault(&b, p + 3 * PAGE_SIZE, 1) == -EFAULT;   /* guard page */
	ok &= copy_to_kernel_nofault(p + 3 * PAGE_SIZE, &b, 1) == -EFAULT;
	vfree(p);
	return ok && unmapped(p, 4 * PAGE_SIZE);
}

/* vmap: existing pages seen through a new contiguous alias, read-only when asked. */
static bool test_vmap(void)
{
	struct page *pages[3];
	bool ok = true;
	for (int i = 0; i < 3; i++)
		if (!(pages[i] = alloc_pages(GFP_KERNEL | __GFP_ZERO, 0)))
			return false;
	u8 *v = vmap(pages, 3, VM_MAP, PAGE_KERNEL);
	ok &= v != NULL;
	for (int i = 0; ok && i < 3; i++) {
		v[i * PAGE_SIZE + 7] = (u8)(0xa0 + i);
		ok &= ((u8 *)page_address(pages[i]))[7] == 0xa0 + i && prot_is((u64)v + i * PAGE_SIZE, true, true);
	}
	if (v) {
		vunmap(v);
		ok &= unmapped(v, 3 * PAGE_SIZE);
	}
	u8 *ro = vmap(pages, 1, VM_MAP, PAGE_KERNEL_RO), x = 1;
	ok &= ro && ro[7] == 0xa0 && prot_is((u64)ro, false, true) &&
	      copy_to_kernel_nofault(ro, &x, 1) == -EFAULT && ro[0] == 0;
	if (ro)
		vunmap(ro);
	for (int i = 0; i < 3; i++)
		__free_pages(pages[i], 0);
	return ok;
}

/* --- strict kernel RWX ---------------------------------------------------------- */

/* Each section's protection read back from the page tables, both aliases, and no W+X anywhere. */
static bool test_kernel_rwx(void)
{
	u64 text = (u64)kmain, rodata = (u64)kmemu_banner;
	bool ok = prot_is(text, false, false) && prot_is(rodata, false, true) &&
		  prot_is((u64)&boot_info, true, true) && prot_is((u64)&passed, true, true);
	ok &= prot_is((u64)__va(__pa_symbol(text)), false, true);   /* direct-map alias of text */
	ok &= prot_is((u64)__va(__pa_symbol(rodata)), false, true);
	ok &= prot_is((u64)__va(__pa_symbol(&boot_info)), true, true);
	ok &= (read_cr0() & X86_CR0_WP) != 0;
	return ok && ptdump_walk_check_wx(false) == 0;
}

/* Writes to rodata and text fault (kernel mode, CR0.WP) and are survived; nothing changes. */
static bool test_rodata_write_faults(void)
{
	char c = 'X';
	u8 code = *(volatile u8 *)kmain;
	bool ok = copy_to_kernel_nofault((void *)kmemu_banner, &c, 1) == -EFAULT;
	ok &= copy_to_kernel_nofault(__va(__pa_symbol(kmemu_banner)), &c, 1) == -EFAULT;
	ok &= copy_to_kernel_nofault((void *)kmain, &c, 1) == -EFAULT;
	return ok && kmemu_banner[0] == 'k' && *(volatile u8 *)kmain == code;
}

/* kmemu_test=selftest_fail: expects rodata to be writable, which it must not be. */
static bool test_deliberately_broken(void)
{
	char c = 'k';
	return copy_to_kernel_nofault((void *)kmemu_banner, &c, 1) == 0;
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
	check(test_kmalloc_classes(), "kmalloc size classes and ksize");
	check(test_cache_cycle(), "cache create/alloc/free/destroy, ctor");
	check(test_slab_debug(), "slab_debug red zone and poison");
	check(test_vmalloc_guard(), "vmalloc guard page faults, vfree");
	check(test_vmap(), "vmap and vunmap");
	check(test_kernel_rwx(), "kernel RWX and no W+X mappings");
	check(test_rodata_write_faults(), "writes to text and rodata fault");
	const char *t = cmdline_find(boot_info.cmdline, "kmemu_test");
	if (t && !strncmp(t, "selftest_fail", 13))
		check(test_deliberately_broken(), "deliberately broken (kmemu_test)");
	printk("kmemu selftest: %d passed, %d failed\n", passed, failed);
	return failed;
}
