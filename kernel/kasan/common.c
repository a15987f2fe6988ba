/*
 * kasan/common.c - the allocators' KASAN hooks: slab objects with red zones,
 * kmalloc poisoned from the requested size, the free quarantine, pages and
 * vmalloc areas (Linux's mm/kasan/common.c, generic.c, quarantine.c, shadow.c).
 *
 * Slab layout: kasan_cache_create() appends struct kasan_meta to every object
 * (after the object and the allocator's own words); it is the object's red
 * zone too, since a new slab is poisoned KASAN_SLAB_REDZONE from end to end.
 * kasan_slab_alloc() unpoisons the requested size only (kmalloc(18): byte 18
 * is poisoned) and records who allocated.  kasan_slab_free() catches
 * invalid and double frees, poisons the object KASAN_SLAB_FREE, records who
 * freed it and holds it in a FIFO quarantine (1/32 of RAM, Linux's fraction)
 * so a use after free finds it poisoned, not reused; the oldest objects go
 * back to their slab when the quarantine is over its limit.
 *
 * Pages: freed pages are KASAN_PAGE_FREE, allocated ones accessible; a large
 * kmalloc poisons past its size (KASAN_PAGE_REDZONE).  vmalloc: the shadow of
 * an area is populated (pages mapped) when the area is allocated, the area is
 * KASAN_VMALLOC_INVALID except its requested size, and again all of it once
 * freed.  Shadow pages of vmalloc ranges stay mapped (Linux releases them when
 * it purges areas; kmemu keeps them, which costs 1/8 of the largest vmalloc
 * footprint).
 */
#include <linux/types.h>
#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/export.h>
#include <linux/align.h>
#include <linux/irqflags.h>
#include <asm/page.h>
#include <asm/pgtable_64_types.h>
#include <kmemu/slub.h>
#include <kmemu/page_alloc.h>
#include <kmemu/mmu.h>
#include <kmemu/mmzone.h>
#include <kmemu/traps.h>
#include <kmemu/memlayout.h>
#include <kmemu/io.h>
#include "kasan.h"

/* --- tracks ---------------------------------------------------------- */

static bool text_address(u64 a)
{
	return (a >= (u64)_stext && a < (u64)_etext) || (a >= MODULES_VADDR && a < MODULES_END);
}

/*
 * The call chain from the allocator's caller up (pid 0: kmemu runs one task).
 * Every allocation and free records one, so this is a lean frame-pointer walk
 * (range checks only; save_stack_trace() looks every address up in kallsyms).
 */
void kasan_save_track(struct kasan_track *t, u64 rbp)
{
	u32 n = 0;
	while (n < KASAN_STACK_DEPTH && rbp >= PAGE_OFFSET && !(rbp & 7)) {
		u64 *frame = (u64 *)rbp;
		if (!text_address(frame[1]))
			break;
		t->stack[n++] = frame[1];
		if (frame[0] <= rbp)
			break;
		rbp = frame[0];
	}
	t->pid = 0;
	t->nr = n;
}

static struct kasan_meta *meta_of(struct kmem_cache *s, void *obj)
{
	return (struct kasan_meta *)((u8 *)obj + s->kasan_meta_offset);
}

/* --- slab ------------------------------------------------------------ */

/* Room for the metadata after the object (also its red zone). */
void kasan_cache_create(struct kmem_cache *s, u32 *end)
{
	*end = ALIGN(*end, 8u);
	s->kasan_meta_offset = *end;
	*end += sizeof(struct kasan_meta);
}

/* A new slab: everything is red zone until allocated. */
void kasan_poison_new_slab(struct kmem_cache *s, struct page *slab)
{
	kasan_poison(page_address(slab), PAGE_SIZE << s->order, KASAN_SLAB_REDZONE);
}

void kasan_slab_alloc(struct kmem_cache *s, void *obj, u64 size, u64 caller)
{
	(void)caller;
	kasan_poison(obj, s->object_size, KASAN_SLAB_REDZONE);
	kasan_unpoison(obj, size);
	struct kasan_meta *m = meta_of(s, obj);
	m->requested = size;
	m->free.nr = 0;
	kasan_save_track(&m->alloc, (u64)__builtin_frame_address(0));
}

/* krealloc() in place: the new size is what is accessible now. */
void kasan_krealloc(const void *obj, u64 new_size)
{
	struct page *slab = virt_to_slab(obj);
	if (!slab)
		return;
	struct kmem_cache *s = slab->slab_cache;
	kasan_poison(obj, s->object_size, KASAN_SLAB_REDZONE);
	kasan_unpoison(obj, new_size);
	meta_of(s, (void *)obj)->requested = new_size;
}

/* The object of this slab whose slot holds addr (Linux's nearest_obj()). */
static void *nearest_obj(struct kmem_cache *s, struct page *slab, u64 addr)
{
	u64 base = (u64)page_address(slab) + s->red_left_pad;
	if (addr < base)
		return (void *)base;
	u64 idx = (addr - base) / s->size;
	if (idx >= s->objects)
		idx = s->objects - 1;
	return (void *)(base + idx * s->size);
}

struct kasan_meta *kasan_object_of(u64 addr, void **object, struct kmem_cache **cache)
{
	if (addr < PAGE_OFFSET || !virt_addr_valid(addr))
		return NULL;
	struct page *slab = virt_to_slab((void *)addr);
	if (!slab)
		return NULL;
	struct kmem_cache *s = slab->slab_cache;
	*object = nearest_obj(s, slab, addr);
	*cache = s;
	return meta_of(s, *object);
}

/* --- quarantine ------------------------------------------------------ */

static void *q_head, *q_tail;
static u64 q_bytes, q_objects;
static bool q_releasing;

static u64 quarantine_max(void)
{
	return (totalram_pages << PAGE_SHIFT) / 32; /* Linux's QUARANTINE_FRACTION */
}

static void quarantine_put(struct kmem_cache *s, void *obj)
{
	meta_of(s, obj)->qnext = NULL;
	if (q_tail) {
		struct page *ts = virt_to_slab(q_tail);
		meta_of(ts->slab_cache, q_tail)->qnext = obj;
	} else {
		q_head = obj;
	}
	q_tail = obj;
	q_bytes += s->size;
	q_objects++;
}

/* Give the oldest objects back to their slabs until under the limit. */
static void quarantine_reduce(u64 limit)
{
	q_releasing = true;
	while (q_head && q_bytes > limit) {
		void *obj = q_head;
		struct page *slab = virt_to_slab(obj);
		struct kmem_cache *s = slab->slab_cache;
		q_head = meta_of(s, obj)->qnext;
		if (!q_head)
			q_tail = NULL;
		q_bytes -= s->size;
		q_objects--;
		__kmem_cache_free(slab, obj, 0);
	}
	q_releasing = false;
}

/* kmem_cache_shrink()/destroy(): the quarantine goes back to the slabs first
 * (Linux empties only the cache's own objects; kmemu empties all of it). */
void kasan_cache_shrink(struct kmem_cache *s)
{
	(void)s;
	if (q_releasing)
		return;
	unsigned long flags;
	local_irq_save(flags);
	quarantine_reduce(0);
	local_irq_restore(flags);
}

/*
 * A free: true when KASAN keeps the object (quarantined, or a bad free it has
 * reported); false lets the allocator free it (objects leaving the quarantine).
 */
bool kasan_slab_free(struct kmem_cache *s, struct page *slab, void *obj, u64 caller)
{
	if (q_releasing)
		return false;
	if (nearest_obj(s, slab, (u64)obj) != obj) {
		kasan_report_invalid_free(obj, caller, KASAN_KIND_INVALID_FREE);
		return true;
	}
	s8 shadow = *(s8 *)kasan_mem_to_shadow((u64)obj);
	if (shadow < 0) {
		kasan_report_invalid_free(obj, caller, shadow == (s8)KASAN_SLAB_FREE ?
					  KASAN_KIND_DOUBLE_FREE : KASAN_KIND_INVALID_FREE);
		return true;
	}
	kasan_poison(obj, s->object_size, KASAN_SLAB_FREE);
	struct kasan_meta *m = meta_of(s, obj);
	kasan_save_track(&m->free, (u64)__builtin_frame_address(0));
	unsigned long flags;
	local_irq_save(flags);
	quarantine_put(s, obj);
	if (q_bytes > quarantine_max())
		quarantine_reduce(quarantine_max() / 2);
	local_irq_restore(flags);
	return true;
}

/* --- pages ----------------------------------------------------------- */

void kasan_alloc_pages(struct page *page, unsigned int order)
{
	if (kasan_ready)
		kasan_unpoison(page_address(page), PAGE_SIZE << order);
}

void kasan_free_pages(struct page *page, unsigned int order)
{
	if (kasan_ready)
		kasan_poison(page_address(page), PAGE_SIZE << order, KASAN_PAGE_FREE);
}

void *kasan_kmalloc_large(void *p, u64 size, unsigned int order)
{
	u64 start = ALIGN((u64)p + size, KASAN_GRANULE_SIZE);
	kasan_unpoison(p, size);
	kasan_poison((void *)start, (u64)p + (PAGE_SIZE << order) - start, KASAN_PAGE_REDZONE);
	return p;
}

/* --- vmalloc --------------------------------------------------------- */

bool kasan_shadow_mapped(u64 va)
{
	u64 *t = __va(read_cr3() & PTE_PFN_MASK);
	u64 e = t[pgd_index(va)];
	if (!(e & _PAGE_PRESENT))
		return false;
	e = ((u64 *)__va(e & PTE_PFN_MASK))[pud_index(va)];
	if (!(e & _PAGE_PRESENT) || (e & _PAGE_PSE))
		return e & _PAGE_PRESENT;
	e = ((u64 *)__va(e & PTE_PFN_MASK))[pmd_index(va)];
	if (!(e & _PAGE_PRESENT) || (e & _PAGE_PSE))
		return e & _PAGE_PRESENT;
	return ((u64 *)__va(e & PTE_PFN_MASK))[pte_index(va)] & _PAGE_PRESENT;
}

/* Map shadow pages for [addr, addr + size) where there are none yet, then
 * poison all of it (Linux's kasan_populate_vmalloc); -ENOMEM on failure. */
int kasan_populate_vmalloc(u64 addr, u64 size, gfp_t gfp)
{
	u64 s = ALIGN_DOWN((u64)kasan_mem_to_shadow(addr), PAGE_SIZE);
	u64 e = ALIGN((u64)kasan_mem_to_shadow(addr + size - 1) + 1, PAGE_SIZE);
	gfp_t sgfp = (gfp & ~(__GFP_HIGHMEM | __GFP_DMA | __GFP_DMA32)) | __GFP_ZERO | __GFP_NOWARN;
	for (u64 va = s; va < e; va += PAGE_SIZE) {
		if (kasan_shadow_mapped(va))
			continue;
		struct page *p = alloc_pages(sgfp, 0);
		if (!p)
			return -ENOMEM;
		if (vmap_pages_range(va, va + PAGE_SIZE, &p, __PAGE_KERNEL, sgfp)) {
			__free_pages(p, 0);
			return -ENOMEM;
		}
	}
	kasan_poison((void *)addr, size, KASAN_VMALLOC_INVALID);
	return 0;
}

void kasan_unpoison_vmalloc(u64 addr, u64 size)
{
	kasan_unpoison((void *)addr, size);
}

void kasan_poison_vmalloc(u64 addr, u64 size)
{
	kasan_poison((void *)addr, size, KASAN_VMALLOC_INVALID);
}
