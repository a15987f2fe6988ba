/*
 * kmalloc.c - the kmalloc family on top of the slab caches.
 *
 * Size classes are Linux's: 8, 16, 32, 64, 96, 128, 192, 256, 512, 1k, 2k,
 * 4k, 8k (65-96 -> 96, 129-192 -> 192, otherwise the next power of two),
 * one cache per class and type: kmalloc-N, dma-kmalloc-N (__GFP_DMA) and
 * kmalloc-rcl-N (__GFP_RECLAIMABLE).  Index 1 is the 96-byte class and
 * index 2 the 192-byte one, as in Linux's kmalloc_index().
 *
 * Larger requests, up to 4 MiB, are compound pages straight from the page
 * allocator; kfree() tells the two apart by PG_slab on the head page, so
 * callers never pass a size.  kmalloc_caches[] is written once at boot.
 */
#include <linux/bug.h>
#include <linux/export.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>
#include <kmemu/log.h>
#include <kmemu/memlayout.h>
#include <kmemu/page_alloc.h>
#include <kmemu/slub.h>
#include <kmemu/trace.h>
#include <kmemu/vmap.h>

struct kmem_cache *kmalloc_caches[3][KMALLOC_SHIFT_HIGH + 1];

/* Index for sizes 1..192 by (size - 1) / 8, like Linux's size_index[] (<kmemu/slub.h>). */
const u8 kmalloc_size_index[24] = {
	3, 4, 5, 5, 6, 6, 6, 6, /* 8, 16, 32, 32, 64 x4 */
	1, 1, 1, 1,             /* 96 */
	7, 7, 7, 7,             /* 128 */
	2, 2, 2, 2, 2, 2, 2, 2, /* 192 */
};

static u32 kmalloc_size(unsigned int index)
{
	return index == 1 ? 96 : index == 2 ? 192 : 1u << index;
}

static inline enum kmalloc_cache_type kmalloc_type(gfp_t gfp)
{
	if (likely(!(gfp & (__GFP_DMA | __GFP_RECLAIMABLE))))
		return KMALLOC_NORMAL;
	return gfp & __GFP_DMA ? KMALLOC_DMA : KMALLOC_RECLAIM;
}

/* The cache for 1 <= size <= KMALLOC_MAX_CACHE_SIZE (kmalloc() in slub.c inlines the common type). */
struct kmem_cache *kmalloc_slab(size_t size, gfp_t gfp)
{
	return kmalloc_caches[kmalloc_type(gfp)][kmalloc_index(size)];
}

static void create_kmalloc_cache(int t, unsigned int i)
{
	static const char *const prefix[3] = { "kmalloc-", "kmalloc-rcl-", "dma-kmalloc-" };
	static const slab_flags_t type_flags[3] = { 0, SLAB_RECLAIM_ACCOUNT, SLAB_CACHE_DMA };
	static char names[3][KMALLOC_SHIFT_HIGH + 1][SLAB_NAME_LEN];
	u32 size = kmalloc_size(i);
	char *n = names[t][i];

	if (size >= 1024)
		snprintf(n, SLAB_NAME_LEN, "%s%uk", prefix[t], size / 1024);
	else
		snprintf(n, SLAB_NAME_LEN, "%s%u", prefix[t], size);
	kmalloc_caches[t][i] = kmem_cache_create(n, size, 0, SLAB_KMALLOC | SLAB_PANIC | type_flags[t],
						 NULL);
}

/* In Linux's order: by type, sizes ascending, 96 after 64 and 192 after 128. */
void kmalloc_caches_init(void)
{
	for (int t = 0; t < 3; t++) {
		for (unsigned int i = 3; i <= KMALLOC_SHIFT_HIGH; i++) {
			create_kmalloc_cache(t, i);
			if (i == 6)
				create_kmalloc_cache(t, 1);
			if (i == 7)
				create_kmalloc_cache(t, 2);
		}
	}
}

/* More than KMALLOC_MAX_CACHE_SIZE: a compound block from the page allocator. */
static void *__kmalloc_large(size_t size, gfp_t gfp)
{
	if (size > KMALLOC_MAX_SIZE) {
		WARN(!(gfp & __GFP_NOWARN), "kmalloc: %zu bytes is more than KMALLOC_MAX_SIZE", size);
		return NULL;
	}
	unsigned int order = (unsigned int)get_order(size);
	struct page *page = alloc_pages(gfp | __GFP_COMP, order);
	if (!page)
		return NULL;
	page->page_type = PAGE_TYPE_LARGE_KMALLOC; /* for the memory census */
	return kasan_kmalloc_large(page_address(page), size, order);
}

/* ... traced as Linux's kmalloc_large traces it (a NULL too); caller: kmalloc's caller. */
noinline void *kmalloc_large(size_t size, gfp_t gfp, u64 caller)
{
	void *ret = __kmalloc_large(size, gfp);
	trace_kmalloc(caller, ret, size, PAGE_SIZE << get_order(size), gfp, NUMA_NO_NODE);
	return ret;
}

/* kmalloc() is in slub.c, where it inlines the allocation fast path (as Linux's does). */

/* kzalloc, kmalloc_array and kcalloc are in slub.c too: they inline kmalloc's body. */

static u64 large_size(struct page *head)
{
	return PAGE_SIZE << (PageHead(head) ? head[1].compound_order : 0);
}

/* kmalloc red zone: what was asked for, when the cache records it. */
u64 kmalloc_orig_size(struct kmem_cache *s, const void *obj)
{
	if (!s->orig_size_offset)
		return s->object_size;
	return *(u64 *)((u8 *)obj + s->orig_size_offset);
}

/*
 * ksize: the usable size of a kmalloc'ed object.  A page that is not a slab
 * is only a kmalloc object when it is a large kmalloc's compound block (more
 * than KMALLOC_MAX_CACHE_SIZE) and p is its start; anything else is a
 * caller bug that Linux's __ksize() warns about and answers 0 to.
 */
size_t ksize(const void *p)
{
	if (ZERO_OR_NULL_PTR(p) || !virt_addr_valid((u64)p))
		return 0;
	struct page *head = compound_head(virt_to_page(p));
	if (PageSlab(head))
		return ((struct kmem_cache *)head->slab_cache)->object_size;
	if (WARN_ON(large_size(head) <= KMALLOC_MAX_CACHE_SIZE))
		return 0;
	if (WARN_ON(p != page_address(head)))
		return 0;
	return large_size(head);
}
EXPORT_SYMBOL(ksize);

/* kfree() is in slub.c, where it inlines the free fast path (as Linux's does). */

void kfree_sensitive(const void *p)
{
	size_t ks = ksize(p);
	if (ks)
		memzero_explicit((void *)p, ks);
	kfree(p);
}
EXPORT_SYMBOL(kfree_sensitive);

void *krealloc(const void *p, size_t new_size, gfp_t gfp)
{
	if (ZERO_OR_NULL_PTR(p))
		return kmalloc(new_size, gfp);
	if (!new_size) {
		kfree(p);
		return ZERO_SIZE_PTR;
	}
	size_t ks = ksize(p);
	if (new_size <= ks) { /* the bucket is big enough: in place */
		struct page *slab = virt_to_slab(p);
		if (slab) {
			struct kmem_cache *s = slab->slab_cache;
			u64 old = kmalloc_orig_size(s, p);
			if ((gfp & __GFP_ZERO) && new_size > old)
				memset((u8 *)p + old, 0, new_size - old);
			kmalloc_update_orig_size(s, (void *)p, new_size);
			kasan_krealloc(p, new_size);
		}
		return (void *)p;
	}
	void *ret = kmalloc(new_size, gfp);
	if (ret) {
		struct page *slab = virt_to_slab(p);
		u64 copy = slab ? kmalloc_orig_size(slab->slab_cache, p) : ks;
		memcpy(ret, p, copy); /* only what was asked for: the red zone is not data */
		kfree(p);
	}
	return ret;
}
EXPORT_SYMBOL(krealloc);

/* krealloc to new_n * new_size bytes; NULL (p untouched) when that overflows. */
void *krealloc_array(void *p, size_t new_n, size_t new_size, gfp_t gfp)
{
	size_t bytes;
	if (unlikely(check_mul_overflow(new_n, new_size, &bytes)))
		return NULL;
	return krealloc(p, bytes, gfp);
}
EXPORT_SYMBOL(krealloc_array);

size_t kmalloc_size_roundup(size_t size)
{
	if (!size)
		return 0;
	if (size <= KMALLOC_MAX_CACHE_SIZE)
		return kmalloc_slab(size, 0)->object_size;
	if (size > KMALLOC_MAX_SIZE)
		return size;
	return PAGE_SIZE << get_order(size);
}
EXPORT_SYMBOL(kmalloc_size_roundup);

/*
 * kvmalloc: kmalloc first (without retrying hard or warning, when the size
 * is above a page, as Linux does), vmalloc when that fails or is too big.
 * Sizes above INT_MAX are refused with one warning (Linux 5.15+): no caller
 * has a real reason for them and they are usually an overflowed computation.
 */
void *kvmalloc(size_t size, gfp_t gfp)
{
	gfp_t kgfp = gfp;
	if (unlikely(size > INT_MAX)) {
		WARN_ON_ONCE(!(gfp & __GFP_NOWARN));
		return NULL;
	}
	if (size > PAGE_SIZE)
		kgfp = (gfp | __GFP_NOWARN | __GFP_NORETRY) & ~__GFP_NOFAIL;
	if (size <= KMALLOC_MAX_SIZE) {
		void *p = kmalloc(size, kgfp);
		if (p || size <= PAGE_SIZE)
			return p;
	}
	return __vmalloc_node_range(size, 1, VMALLOC_START, VMALLOC_END, gfp, 0,
				    (u64)__builtin_return_address(0));
}
EXPORT_SYMBOL(kvmalloc);

void *kvzalloc(size_t size, gfp_t gfp)
{
	return kvmalloc(size, gfp | __GFP_ZERO);
}
EXPORT_SYMBOL(kvzalloc);

/* kvmalloc of n * size bytes, or NULL when that overflows. */
void *kvmalloc_array(size_t n, size_t size, gfp_t gfp)
{
	size_t bytes;
	if (unlikely(check_mul_overflow(n, size, &bytes)))
		return NULL;
	return kvmalloc(bytes, gfp);
}
EXPORT_SYMBOL(kvmalloc_array);

void *kvcalloc(size_t n, size_t size, gfp_t gfp)
{
	return kvmalloc_array(n, size, gfp | __GFP_ZERO);
}
EXPORT_SYMBOL(kvcalloc);

void kvfree(const void *p)
{
	if (is_vmalloc_addr(p))
		vfree(p);
	else
		kfree(p);
}
EXPORT_SYMBOL(kvfree);

/* kvfree after clearing the first len bytes (secrets). */
void kvfree_sensitive(const void *p, size_t len)
{
	if (likely(!ZERO_OR_NULL_PTR(p))) {
		memzero_explicit((void *)p, len);
		kvfree(p);
	}
}
EXPORT_SYMBOL(kvfree_sensitive);
