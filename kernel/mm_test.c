/*
 * mm_test.c - kernel-side helpers for page-allocator tests (host calls and
 * the QEMU self-tests).  Not part of the allocator.
 *
 * The hoard is a list of order-0 pages a test takes to create memory
 * pressure.  Its shrinker ("kmemu-test-hoard", registered on demand) gives
 * them back under reclaim, and vector KMEMU_RELEASE_VECTOR frees
 * hoard_irq_release pages from an interrupt handler, so tests can watch a
 * sleeping allocation wake up.  hoard is touched with interrupts off.
 */
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>
#include <kmemu/abi.h>
#include <kmemu/log.h>
#include <kmemu/memlayout.h>
#include <kmemu/mmu.h>
#include <kmemu/page_alloc.h>
#include <kmemu/slub.h>
#include <kmemu/traps.h>
#include <kmemu/vmap.h>

#define KMEMU_RELEASE_VECTOR 0x31

static struct list_head hoard = LIST_HEAD_INIT(hoard);
u64 hoard_pages;
u64 hoard_irq_release;    /* pages the release vector frees per interrupt */
u64 hoard_irq_released;   /* total freed from interrupt context */
static bool hoard_shrinker_on;

static void hoard_add(struct page *p, unsigned int order)
{
	p->private = order;
	unsigned long flags;
	local_irq_save(flags);
	list_add(&p->lru, &hoard);
	hoard_pages += 1UL << order;
	local_irq_restore(flags);
}

/* Most recently hoarded first; returns the number of blocks freed. */
u64 kmemu_test_hoard_release(u64 n);

/* Take up to n blocks of the given order; the block's order is kept in page->private. */
u64 kmemu_test_hoard(u64 n, u64 gfp, u64 order)
{
	u64 got = 0;
	for (; got < n; got++) {
		struct page *p = alloc_pages((gfp_t)gfp, (unsigned int)order);
		if (!p)
			break;
		hoard_add(p, (unsigned int)order);
	}
	return got;
}

u64 kmemu_test_hoard_release(u64 n)
{
	u64 done = 0;
	while (done < n) {
		unsigned long flags;
		local_irq_save(flags);
		if (list_empty(&hoard)) {
			local_irq_restore(flags);
			break;
		}
		struct page *p = list_first_entry(&hoard, struct page, lru);
		unsigned int order = (unsigned int)p->private;
		list_del(&p->lru);
		p->private = 0;
		hoard_pages -= 1UL << order;
		local_irq_restore(flags);
		__free_pages(p, order);
		done++;
	}
	return done;
}

struct page *rmqueue_zone_exact(int zi, unsigned int order);

/* Take every free block of at least this order from zone zi (no watermarks). */
u64 kmemu_test_hoard_zone(u64 zi, u64 n, u64 order)
{
	u64 got = 0;
	if (zi >= MAX_NR_ZONES || order > MAX_PAGE_ORDER)
		return 0;
	for (; got < n; got++) {
		struct page *p = rmqueue_zone_exact((int)zi, (unsigned int)order);
		if (!p)
			break;
		hoard_add(p, (unsigned int)order);
	}
	return got;
}

static u64 hoard_count(struct shrinker *s, struct shrink_control *sc)
{
	(void)s;
	(void)sc;
	return hoard_pages ? hoard_pages : SHRINK_EMPTY;
}

static u64 hoard_scan(struct shrinker *s, struct shrink_control *sc)
{
	(void)s;
	u64 freed = kmemu_test_hoard_release(sc->nr_to_scan);
	return freed ? freed : SHRINK_STOP;
}

static struct shrinker hoard_shrinker = {
	.name = "kmemu-test-hoard",
	.count_objects = hoard_count,
	.scan_objects = hoard_scan,
	.batch = 32,
};

u64 kmemu_test_hoard_shrinker(u64 on)
{
	if (on && !hoard_shrinker_on)
		register_shrinker(&hoard_shrinker);
	else if (!on && hoard_shrinker_on)
		unregister_shrinker(&hoard_shrinker);
	hoard_shrinker_on = on;
	return hoard_shrinker.nr_freed_total;
}

static void release_irq_handler(struct pt_regs *regs)
{
	(void)regs;
	hoard_irq_released += kmemu_test_hoard_release(hoard_irq_release);
}

void mm_test_slab_init(void);

void mm_test_init(void)
{
	set_irq_handler(KMEMU_RELEASE_VECTOR, release_irq_handler);
	mm_test_slab_init();
}

/* Allocate and free one order-N block; 1 on success (for instruction counts). */
u64 kmemu_test_alloc_free(u64 gfp, u64 order)
{
	struct page *p = alloc_pages((gfp_t)gfp, (unsigned int)order);
	if (!p)
		return 0;
	__free_pages(p, (unsigned int)order);
	return 1;
}

/* --- slab test hooks --------------------------------------------------------- */

#define KMEMU_SLAB_VECTOR 0x32
u64 slab_irq_size = 64;  /* what the slab vector's handler kmallocs */
u64 slab_irq_runs;
u64 slab_irq_failed;
u64 slab_ctor_calls;

static void slab_irq_handler(struct pt_regs *regs)
{
	(void)regs;
	u8 *p = kmalloc(slab_irq_size, GFP_ATOMIC);
	slab_irq_runs++;
	if (!p) {
		slab_irq_failed++;
		return;
	}
	memset(p, 0x5a, slab_irq_size);
	kfree(p);
}

static void test_ctor(void *obj)
{
	slab_ctor_calls++;
	memset(obj, 0xc7, 16);
}

/* A cache whose constructor counts its calls and stamps 16 bytes of 0xc7. */
u64 kmemu_test_ctor_cache(u64 size)
{
	return (u64)kmem_cache_create("kmemu_ctor_test", (u32)size, 0, 0, test_ctor);
}

void mm_test_slab_init(void)
{
	set_irq_handler(KMEMU_SLAB_VECTOR, slab_irq_handler);
}

/* --- page-table test hooks -------------------------------------------------------- */

/* Map n fresh pages at va (__PAGE_KERNEL); returns 0 or -1.  Page pointers go in pages_out. */
u64 kmemu_test_vmap(u64 va, u64 n, u64 gfp, struct page **pages_out)
{
	for (u64 i = 0; i < n; i++) {
		pages_out[i] = alloc_pages((gfp_t)gfp, 0);
		if (!pages_out[i])
			return (u64)-1;
	}
	return (u64)(s64)vmap_pages_range(va, va + n * PAGE_SIZE, pages_out, __PAGE_KERNEL, (gfp_t)gfp);
}

/* Unmap [va, va + n pages), free the pages, flush the TLB if asked. */
u64 kmemu_test_vunmap(u64 va, u64 n, struct page **pages, u64 flush)
{
	vunmap_range_noflush(va, va + n * PAGE_SIZE);
	if (flush)
		flush_tlb_kernel_range(va, va + n * PAGE_SIZE);
	for (u64 i = 0; i < n; i++)
		if (pages[i])
			__free_pages(pages[i], 0);
	return pgtable_pages;
}

/* --- vmalloc test hooks ------------------------------------------------------------- */

/* n live areas of size bytes (the long-busy-list scenario); returns how many were made. */
u64 kmemu_test_vmalloc_many(u64 n, u64 size)
{
	u64 i = 0;
	for (; i < n; i++)
		if (!vmalloc(size))
			break;
	return i;
}
