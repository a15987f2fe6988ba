/*
 * vmalloc.c - the vmalloc area: virtually contiguous, physically scattered.
 *
 * Address space: [VMALLOC_START, VMALLOC_END) and, for module_alloc(), the
 * module area [MODULES_VADDR, MODULES_END): two free blocks of one tree,
 * callers choose the range (__vmalloc_node_range's start/end).  Free space lives in a
 * balanced search tree ordered by address and augmented with the largest
 * free block of each subtree (subtree_max_size), so the lowest-address fit
 * is found by descending only into subtrees that can hold the request, and a
 * freed range merges with both neighbours (Linux's design since 5.2).  The
 * tree is a treap (priorities from a hash of the start address: balanced in
 * expectation, deterministic) rather than Linux's red-black tree; split and
 * merge keep the augmentation in one place.  Busy areas sit in a second
 * treap for lookup by address.
 *
 * vfree() unmaps at once but defers the TLB flush and the release of the
 * range: areas wait on purge_list until lazy_max_pages() have collected,
 * then one purge flushes the whole combined range and returns the ranges to
 * the free tree (vm_unmap_aliases() forces it).  vfree() from an interrupt
 * is deferred to process context (kmemu_deferred_work).
 *
 * vmap_lock (interrupts off) protects both trees, purge_list and the lazy
 * counters.  Page allocation and page-table changes happen outside it.
 */
#include <linux/export.h>
#include <linux/bug.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>
#include <kmemu/fault_inject.h>
#include <kmemu/kunit_track.h>
#include <kmemu/kmemleak.h>
#include <kmemu/log.h>
#include <kmemu/memlayout.h>
#include <kmemu/mmu.h>
#include <kmemu/page_alloc.h>
#include <kmemu/slub.h>
#include <kmemu/trace.h>
#include <kmemu/vmap.h>

static DEFINE_SPINLOCK(vmap_lock);
struct vmap_area *free_vmap_root;   /* vmap_lock */
struct vmap_area *busy_vmap_root;   /* vmap_lock */
struct list_head purge_list = LIST_HEAD_INIT(purge_list);
u64 vmap_lazy_nr;      /* pages waiting on purge_list */
u64 vmap_purges;       /* purges so far */
u64 nr_vmalloc_pages;  /* pages mapped by vmalloc now */
static struct kmem_cache *vmap_area_cachep;
static void *deferred_vfree; /* from interrupt context: a chain through the areas */

/* --- the treap ---------------------------------------------------------------------- */

static inline u64 va_size(const struct vmap_area *v) { return v->va_end - v->va_start; }
static inline u64 sub_max(const struct vmap_area *v) { return v ? v->subtree_max_size : 0; }

static void update(struct vmap_area *v)
{
	u64 m = va_size(v);
	m = max(m, sub_max(v->left));
	v->subtree_max_size = max(m, sub_max(v->right));
}

static u64 hash_prio(u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdUL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53UL;
	return x ^ (x >> 33);
}

/* All of a below all of b. */
static struct vmap_area *tmerge(struct vmap_area *a, struct vmap_area *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	if (a->prio > b->prio) {
		a->right = tmerge(a->right, b);
		update(a);
		return a;
	}
	b->left = tmerge(a, b->left);
	update(b);
	return b;
}

/* l: starts < key, r: starts >= key */
static void tsplit(struct vmap_area *t, u64 key, struct vmap_area **l, struct vmap_area **r)
{
	if (!t) {
		*l = *r = NULL;
		return;
	}
	if (t->va_start < key) {
		tsplit(t->right, key, &t->right, r);
		update(t);
		*l = t;
	} else {
		tsplit(t->left, key, l, &t->left);
		update(t);
		*r = t;
	}
}

static void tinsert(struct vmap_area **root, struct vmap_area *v)
{
	struct vmap_area *l, *r;
	v->left = v->right = NULL;
	v->prio = hash_prio(v->va_start);
	update(v);
	tsplit(*root, v->va_start, &l, &r);
	*root = tmerge(tmerge(l, v), r);
}

static void tremove(struct vmap_area **root, struct vmap_area *v)
{
	struct vmap_area *l, *m, *r;
	tsplit(*root, v->va_start, &l, &r);
	tsplit(r, v->va_start + 1, &m, &r);
	*root = tmerge(l, r);
}

/* The area containing addr (busy tree), or NULL. */
static struct vmap_area *tfind(struct vmap_area *t, u64 addr)
{
	while (t) {
		if (addr < t->va_start)
			t = t->left;
		else if (addr >= t->va_end)
			t = t->right;
		else
			return t;
	}
	return NULL;
}

/* Neighbours in the free tree: the block ending at start, the one starting at end. */
static struct vmap_area *tfind_end(struct vmap_area *t, u64 end)
{
	while (t) {
		if (t->va_end == end)
			return t;
		t = end <= t->va_start ? t->left : t->right;
	}
	return NULL;
}

static struct vmap_area *tfind_start(struct vmap_area *t, u64 start)
{
	while (t) {
		if (t->va_start == start)
			return t;
		t = start < t->va_start ? t->left : t->right;
	}
	return NULL;
}

/* Lowest address a in [vstart, vend) with a aligned and [a, a + size) inside one free block. */
static struct vmap_area *find_lowest_fit(struct vmap_area *t, u64 size, u64 align, u64 vstart,
					 u64 vend, u64 *out)
{
	if (!t || t->subtree_max_size < size)
		return NULL;
	struct vmap_area *hit = find_lowest_fit(t->left, size, align, vstart, vend, out);
	if (hit)
		return hit;
	u64 a = ALIGN(max(t->va_start, vstart), align);
	if (a >= t->va_start && a + size <= t->va_end && a + size <= vend) {
		*out = a;
		return t;
	}
	if (t->va_start >= vend)
		return NULL;
	return find_lowest_fit(t->right, size, align, vstart, vend, out);
}

/* Return [start, end) to the free tree, merged with both neighbours. vmap_lock. */
static void insert_free_locked(struct vmap_area *v)
{
	struct vmap_area *prev = tfind_end(free_vmap_root, v->va_start);
	struct vmap_area *next = tfind_start(free_vmap_root, v->va_end);
	if (prev) {
		tremove(&free_vmap_root, prev);
		v->va_start = prev->va_start;
		kmem_cache_free(vmap_area_cachep, prev);
	}
	if (next) {
		tremove(&free_vmap_root, next);
		v->va_end = next->va_end;
		kmem_cache_free(vmap_area_cachep, next);
	}
	v->vm = NULL;
	tinsert(&free_vmap_root, v);
}

/* --- lazy purge ------------------------------------------------------------------------ */

static u64 lazy_max_pages(void)
{
	return (32UL << 20) >> PAGE_SHIFT; /* 32 MiB x (log2(1 CPU) + 1) */
}

static void purge_vmap_area_lazy(void)
{
	unsigned long flags;
	u64 start = ~0ULL, end = 0;
	unsigned int npurged = 0;
	spin_lock_irqsave(&vmap_lock, flags);
	if (list_empty(&purge_list)) {
		spin_unlock_irqrestore(&vmap_lock, flags);
		goto out; /* Linux traces the empty purge too */
	}
	struct vmap_area *v;
	list_for_each_entry(v, &purge_list, list) {
		start = min(start, v->va_start);
		end = max(end, v->va_end);
	}
	flush_tlb_kernel_range(start, end); /* once, for the combined range */
	while (!list_empty(&purge_list)) {
		v = list_first_entry(&purge_list, struct vmap_area, list);
		list_del(&v->list);
		insert_free_locked(v);
		npurged++;
	}
	vmap_lazy_nr = 0;
	vmap_purges++;
	spin_unlock_irqrestore(&vmap_lock, flags);
out:
	trace_purge_vmap_area_lazy(start, end, npurged);
}

void vm_unmap_aliases(void)
{
	purge_vmap_area_lazy();
}
EXPORT_SYMBOL_GPL(vm_unmap_aliases);

/* --- areas ----------------------------------------------------------------------------- */

static struct vmap_area *alloc_vmap_area(u64 size, u64 align, u64 vstart, u64 vend, gfp_t gfp)
{
	gfp_t agfp = gfp & (__GFP_RECLAIM | __GFP_HIGH | __GFP_NOWARN | __GFP_NOFAIL | __GFP_IO |
			     __GFP_FS | __GFP_NORETRY);
	struct vmap_area *v = kmem_cache_alloc(vmap_area_cachep, agfp);
	struct vmap_area *rest = kmem_cache_alloc(vmap_area_cachep, agfp);
	if (!v || !rest)
		goto fail;
	for (int attempt = 0; attempt < 2; attempt++) {
		unsigned long flags;
		u64 addr;
		spin_lock_irqsave(&vmap_lock, flags);
		struct vmap_area *blk = find_lowest_fit(free_vmap_root, size, align, vstart, vend, &addr);
		if (blk) {
			tremove(&free_vmap_root, blk);
			u64 bs = blk->va_start, be = blk->va_end;
			/* what is left on each side goes back (blk and rest are reused) */
			if (bs < addr) {
				blk->va_end = addr;
				tinsert(&free_vmap_root, blk);
				blk = NULL;
			}
			if (addr + size < be) {
				struct vmap_area *r = blk ? blk : rest;
				r->va_start = addr + size;
				r->va_end = be;
				tinsert(&free_vmap_root, r);
				if (r == rest)
					rest = NULL;
				else
					blk = NULL;
			}
			if (blk)
				kmem_cache_free(vmap_area_cachep, blk);
			v->va_start = addr;
			v->va_end = addr + size;
			v->vm = NULL;
			tinsert(&busy_vmap_root, v);
			spin_unlock_irqrestore(&vmap_lock, flags);
			trace_alloc_vmap_area(addr, size, align, vstart, vend, 0);
			if (rest)
				kmem_cache_free(vmap_area_cachep, rest);
			if (kasan_populate_vmalloc(addr, size, gfp)) {
				spin_lock_irqsave(&vmap_lock, flags);
				tremove(&busy_vmap_root, v);
				insert_free_locked(v);
				spin_unlock_irqrestore(&vmap_lock, flags);
				return NULL;
			}
			return v;
		}
		spin_unlock_irqrestore(&vmap_lock, flags);
		trace_alloc_vmap_area(vend, size, align, vstart, vend, 1); /* Linux: addr == vend */
		purge_vmap_area_lazy(); /* lazily freed ranges may make room */
	}
	if (!(gfp & __GFP_NOWARN))
		printk("vmap allocation for size %llu failed: use vmalloc=<size> to increase size\n", size);
fail:
	if (v)
		kmem_cache_free(vmap_area_cachep, v);
	if (rest)
		kmem_cache_free(vmap_area_cachep, rest);
	return NULL;
}

/* Busy -> gone: unmap now, free the pages, and queue the range for the lazy purge. */
static void free_vmap_area_lazy(struct vmap_area *v)
{
	struct vm_struct *vm = v->vm;
	kasan_poison_vmalloc(v->va_start, va_size(v));
	u64 mapped = vm->size - ((vm->flags & VM_NO_GUARD) ? 0 : PAGE_SIZE);
	vunmap_range_noflush(v->va_start, v->va_start + mapped);
	if (vm->flags & VM_ALLOC) {
		for (u32 i = 0; i < vm->nr_pages; i++)
			__free_pages(vm->pages[i], 0);
		nr_vmalloc_pages -= vm->nr_pages;
		kfree(vm->pages);
	}
	kfree(vm);
	unsigned long flags;
	bool purge;
	spin_lock_irqsave(&vmap_lock, flags);
	v->vm = NULL;
	list_add_tail(&v->list, &purge_list);
	vmap_lazy_nr += (v->va_end - v->va_start) >> PAGE_SHIFT;
	u64 nr_lazy = vmap_lazy_nr;
	purge = nr_lazy > lazy_max_pages();
	spin_unlock_irqrestore(&vmap_lock, flags);
	trace_free_vmap_area_noflush(v->va_start, nr_lazy, lazy_max_pages());
	if (purge)
		purge_vmap_area_lazy();
}

/* --- vmalloc ------------------------------------------------------------------------------ */

static void vmalloc_fail(struct vmap_area *v, u64 size, gfp_t gfp, const char *why)
{
	if (!(gfp & __GFP_NOWARN)) {
		char msg[96];
		snprintf(msg, sizeof(msg), "vmalloc error: size %llu, %s", size, why);
		warn_alloc(gfp, 0, msg);
	}
	if (v && v->vm)
		free_vmap_area_lazy(v);
}

/*
 * The size is checked against all of RAM before it is rounded up to pages
 * (Linux's order): ALIGN of a size within a page of 2^64 wraps to 0.
 */
void *__vmalloc_node_range(u64 size, u64 align, u64 start, u64 end, gfp_t gfp, u64 vm_flags,
			   u64 caller)
{
	if (!size || align > (4UL << 20) || (align & (align - 1)))
		return NULL;
	if (size >> PAGE_SHIFT > totalram_pages) {
		vmalloc_fail(NULL, size, gfp, "exceeds total pages");
		return NULL;
	}
	u64 real = ALIGN(size, PAGE_SIZE);
	align = max_t(u64, align, PAGE_SIZE);
	might_alloc(gfp, __FILE__, __LINE__);
	/*
	 * The one counted allocation of a vmalloc (fail-nth, the failure sweep): what
	 * it allocates inside (vmap_area, vm_struct, the page array, pages, page tables)
	 * runs nested, so only the fault-injection attributes reach those, as in Linux.
	 */
	if (should_fail_vmalloc(gfp, size))
		return NULL;
	fault_nest_enter();
	u64 guard = (vm_flags & VM_NO_GUARD) ? 0 : PAGE_SIZE;
	struct vmap_area *v = alloc_vmap_area(real + guard, align, start, end, gfp);
	if (!v) {
		fault_nest_exit();
		return NULL;
	}
	gfp_t kgfp = gfp & ~(__GFP_ZERO | __GFP_DMA | __GFP_DMA32 | __GFP_HIGHMEM);
	struct vm_struct *vm = kzalloc(sizeof(*vm), kgfp);
	u32 nr = (u32)(real >> PAGE_SHIFT);
	struct page **pages = vm ? kcalloc(nr, sizeof(*pages), kgfp) : NULL;
	if (!pages) {
		kfree(vm);
		vm = NULL;
		unsigned long flags;
		spin_lock_irqsave(&vmap_lock, flags);
		tremove(&busy_vmap_root, v);
		insert_free_locked(v);
		spin_unlock_irqrestore(&vmap_lock, flags);
		vmalloc_fail(NULL, real, gfp, "failed to allocate the page array");
		fault_nest_exit();
		return NULL;
	}
	vm->addr = (void *)v->va_start;
	vm->size = real + guard;
	vm->flags = VM_ALLOC | (vm_flags & VM_NO_GUARD);
	vm->pages = pages;
	vm->caller = caller;
	v->vm = vm;
	for (u32 i = 0; i < nr; i++) {
		pages[i] = alloc_pages((gfp & ~__GFP_HIGHMEM) | __GFP_NOWARN, 0);
		if (!pages[i]) {
			vm->nr_pages = i;
			nr_vmalloc_pages += i;
			unsigned long flags;
			spin_lock_irqsave(&vmap_lock, flags);
			tremove(&busy_vmap_root, v);
			spin_unlock_irqrestore(&vmap_lock, flags);
			vmalloc_fail(v, real, gfp, "page order 0, failed to allocate pages");
			fault_nest_exit();
			return NULL;
		}
	}
	vm->nr_pages = nr;
	nr_vmalloc_pages += nr;
	if (vmap_pages_range(v->va_start, v->va_start + real, pages, __PAGE_KERNEL, kgfp)) {
		unsigned long flags;
		spin_lock_irqsave(&vmap_lock, flags);
		tremove(&busy_vmap_root, v);
		spin_unlock_irqrestore(&vmap_lock, flags);
		vmalloc_fail(v, real, gfp, "failed to map pages");
		fault_nest_exit();
		return NULL;
	}
	kasan_unpoison_vmalloc(v->va_start, size);
	fault_nest_exit();
	kunit_track_alloc(v->va_start, caller, size, 0, KUNIT_ALLOC_VMALLOC, 0);
	KMEMLEAK_HOOK(__kmemleak_vmalloc((void *)v->va_start, real));
	return (void *)v->va_start;
}

void *__vmalloc(unsigned long size, gfp_t gfp)
{
	return __vmalloc_node_range(size, 1, VMALLOC_START, VMALLOC_END, gfp, 0,
				    (u64)__builtin_return_address(0));
}
EXPORT_SYMBOL(__vmalloc);

void *vmalloc(unsigned long size)
{
	return __vmalloc_node_range(size, 1, VMALLOC_START, VMALLOC_END, GFP_KERNEL, 0,
				    (u64)__builtin_return_address(0));
}
EXPORT_SYMBOL(vmalloc);

void *vzalloc(unsigned long size)
{
	return __vmalloc_node_range(size, 1, VMALLOC_START, VMALLOC_END, GFP_KERNEL | __GFP_ZERO, 0,
				    (u64)__builtin_return_address(0));
}
EXPORT_SYMBOL(vzalloc);

void *vmalloc_32(unsigned long size)
{
	return __vmalloc_node_range(size, 1, VMALLOC_START, VMALLOC_END, GFP_KERNEL | __GFP_DMA32, 0,
				    (u64)__builtin_return_address(0));
}
EXPORT_SYMBOL(vmalloc_32);

/* n * size bytes of vmalloc (GFP_KERNEL), or NULL when that overflows. */
void *vmalloc_array(size_t n, size_t size)
{
	size_t bytes;
	if (unlikely(check_mul_overflow(n, size, &bytes)))
		return NULL;
	return __vmalloc_node_range(bytes, 1, VMALLOC_START, VMALLOC_END, GFP_KERNEL, 0,
				    (u64)__builtin_return_address(0));
}
EXPORT_SYMBOL(vmalloc_array);

/* vmalloc_array, zeroed. */
void *vcalloc(size_t n, size_t size)
{
	size_t bytes;
	if (unlikely(check_mul_overflow(n, size, &bytes)))
		return NULL;
	return __vmalloc_node_range(bytes, 1, VMALLOC_START, VMALLOC_END, GFP_KERNEL | __GFP_ZERO, 0,
				    (u64)__builtin_return_address(0));
}
EXPORT_SYMBOL(vcalloc);

bool is_vmalloc_addr(const void *addr)
{
	return (u64)addr >= VMALLOC_START && (u64)addr < VMALLOC_END;
}
EXPORT_SYMBOL(is_vmalloc_addr);

struct vm_struct *find_vm_area(const void *addr)
{
	unsigned long flags;
	spin_lock_irqsave(&vmap_lock, flags);
	struct vmap_area *v = tfind(busy_vmap_root, (u64)addr);
	struct vm_struct *vm = v ? v->vm : NULL;
	spin_unlock_irqrestore(&vmap_lock, flags);
	return vm;
}

struct page *vmalloc_to_page(const void *addr)
{
	u64 va = (u64)addr;
	u64 *t = init_top_pgt;
	static const unsigned shifts[4] = { PGDIR_SHIFT, PUD_SHIFT, PMD_SHIFT, PAGE_SHIFT };
	for (int lvl = 0; lvl < 4; lvl++) {
		u64 e = t[(va >> shifts[lvl]) & 511];
		if (!(e & _PAGE_PRESENT))
			return NULL;
		if (lvl == 3 || (lvl && (e & _PAGE_PSE)))
			return pfn_to_page(((e & PTE_PFN_MASK) + (va & ((1UL << shifts[lvl]) - 1)))
					   >> PAGE_SHIFT);
		t = __va(e & PTE_PFN_MASK);
	}
	return NULL;
}
EXPORT_SYMBOL(vmalloc_to_page);

unsigned long vmalloc_to_pfn(const void *addr)
{
	struct page *p = vmalloc_to_page(addr);
	return p ? page_to_pfn(p) : 0;
}
EXPORT_SYMBOL(vmalloc_to_pfn);

void vfree(const void *addr)
{
	if (!addr)
		return;
	unsigned long flags;
	spin_lock_irqsave(&vmap_lock, flags);
	struct vmap_area *v = tfind(busy_vmap_root, (u64)addr);
	if (!v || v->va_start != (u64)addr || !v->vm) {
		spin_unlock_irqrestore(&vmap_lock, flags);
		WARN(1, "Trying to vfree() nonexistent vm area (%px)", addr);
		return;
	}
	kunit_track_free(addr, KUNIT_ALLOC_VMALLOC);
	KMEMLEAK_HOOK(__kmemleak_vfree(addr));
	if (in_interrupt()) {
		/* unmapping and freeing pages wait for process context (Linux: a workqueue) */
		tremove(&busy_vmap_root, v);
		v->left = deferred_vfree;
		deferred_vfree = v;
		spin_unlock_irqrestore(&vmap_lock, flags);
		return;
	}
	tremove(&busy_vmap_root, v);
	spin_unlock_irqrestore(&vmap_lock, flags);
	free_vmap_area_lazy(v);
}
EXPORT_SYMBOL(vfree);

/* kmemu_deferred_work(): vfree()s that arrived in interrupt context. */
void vfree_deferred_work(void)
{
	unsigned long flags;
	spin_lock_irqsave(&vmap_lock, flags);
	struct vmap_area *v = deferred_vfree;
	deferred_vfree = NULL;
	spin_unlock_irqrestore(&vmap_lock, flags);
	while (v) {
		struct vmap_area *next = v->left;
		free_vmap_area_lazy(v);
		v = next;
	}
}

bool vfree_pending(void)
{
	return READ_ONCE(deferred_vfree) != NULL;
}

void vmalloc_init(void)
{
	vmap_area_cachep = kmem_cache_create("vmap_area", sizeof(struct vmap_area), 0,
					     SLAB_PANIC | SLAB_NOLEAKTRACE, NULL);
	struct vmap_area *all = kmem_cache_alloc(vmap_area_cachep, GFP_KERNEL);
	all->va_start = VMALLOC_START;
	all->va_end = VMALLOC_END + 1;
	all->vm = NULL;
	tinsert(&free_vmap_root, all);
	/* the module area is a second range of the same allocator (module_alloc) */
	struct vmap_area *mod = kmem_cache_alloc(vmap_area_cachep, GFP_KERNEL);
	mod->va_start = MODULES_VADDR;
	mod->va_end = MODULES_END;
	mod->vm = NULL;
	tinsert(&free_vmap_root, mod);
}

/* --- vmap, vrealloc ---------------------------------------------------------------- */

/*
 * Map count existing pages contiguously with protection prot (kmemu: a
 * zero prot means PAGE_KERNEL); the caller keeps owning the pages.  More
 * pages than RAM has cannot be a real array (Linux refuses it too).
 */
void *vmap(struct page **pages, unsigned int count, unsigned long flags, pgprot_t prot)
{
	u64 size = (u64)count << PAGE_SHIFT;
	u64 guard = (flags & VM_NO_GUARD) ? 0 : PAGE_SIZE;
	if (!count || count > totalram_pages)
		return NULL;
	might_sleep();
	struct vmap_area *v = alloc_vmap_area(size + guard, PAGE_SIZE, VMALLOC_START, VMALLOC_END,
					      GFP_KERNEL);
	if (!v)
		return NULL;
	struct vm_struct *vm = kzalloc(sizeof(*vm), GFP_KERNEL);
	if (vm) {
		vm->addr = (void *)v->va_start;
		vm->size = size + guard;
		vm->flags = VM_MAP | (flags & VM_NO_GUARD);
		vm->nr_pages = count;
		vm->caller = (u64)__builtin_return_address(0);
		v->vm = vm;
	}
	if (!vm || vmap_pages_range(v->va_start, v->va_start + size, pages,
				    pgprot_val(prot) ? pgprot_val(prot) : __PAGE_KERNEL,
				    GFP_KERNEL)) {
		unsigned long fl;
		spin_lock_irqsave(&vmap_lock, fl);
		tremove(&busy_vmap_root, v);
		spin_unlock_irqrestore(&vmap_lock, fl);
		if (vm)
			free_vmap_area_lazy(v);
		else
			kmem_cache_free(vmap_area_cachep, v);
		return NULL;
	}
	kasan_unpoison_vmalloc(v->va_start, size);
	return (void *)v->va_start;
}
EXPORT_SYMBOL(vmap);

/* Undo vmap(): the pages stay with their owner. */
void vunmap(const void *addr)
{
	struct vm_struct *vm = find_vm_area(addr);
	if (WARN(!vm || vm->addr != addr || !(vm->flags & VM_MAP),
		 "Trying to vunmap() nonexistent vm area (%px)", addr))
		return;
	vfree(addr);
}
EXPORT_SYMBOL(vunmap);

/*
 * Resize keeping the content (up to the smaller size): in place when the
 * area already has the pages, else a new area, a copy and a vfree.
 */
void *vrealloc(const void *p, size_t size, gfp_t gfp)
{
	if (!p)
		return __vmalloc_node_range(size, 1, VMALLOC_START, VMALLOC_END, gfp, 0,
					    (u64)__builtin_return_address(0));
	if (!size) {
		vfree(p);
		return NULL;
	}
	struct vm_struct *vm = find_vm_area(p);
	if (WARN(!vm || vm->addr != p || !(vm->flags & VM_ALLOC), "vrealloc: %px is not a vmalloc area", p))
		return NULL;
	u64 have = (u64)vm->nr_pages << PAGE_SHIFT;
	if (size <= have) {
		if (gfp & __GFP_ZERO)
			memset((u8 *)p + size, 0, have - size);
		return (void *)p;
	}
	void *n = __vmalloc_node_range(size, 1, VMALLOC_START, VMALLOC_END, gfp, 0,
				       (u64)__builtin_return_address(0));
	if (!n)
		return NULL;
	memcpy(n, p, have);
	vfree(p);
	return n;
}
EXPORT_SYMBOL(vrealloc);

/* __vmalloc_node_range with the caller filled in (six arguments: callable by the host). */
void *vmalloc_range(u64 size, u64 align, u64 start, u64 end, gfp_t gfp, u64 vm_flags)
{
	return __vmalloc_node_range(size, align, start, end, gfp, vm_flags,
				    (u64)__builtin_return_address(0));
}
