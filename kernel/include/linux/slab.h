/*
 * <linux/slab.h> - object caches and the kmalloc family (SLUB semantics).
 *
 * struct kmem_cache is opaque outside the slab allocator.  kmalloc(0)
 * returns ZERO_SIZE_PTR (16), which kfree accepts; sizes above
 * KMALLOC_MAX_CACHE_SIZE (8 KiB) come straight from the page allocator.
 * The _array/calloc forms fail (NULL) when n * size overflows; the kv forms
 * try kmalloc quietly, then vmalloc, and are freed with kvfree.
 * Debug checks: slab_debug=FZPU on the command line, or the SLAB_* debug flags
 * for one cache.
 */
#ifndef _LINUX_SLAB_H
#define _LINUX_SLAB_H
#include <linux/errno.h>
#include <linux/gfp.h>
#include <linux/overflow.h>
#include <linux/types.h>

#define SLAB_CONSISTENCY_CHECKS ((slab_flags_t __force)0x00000100U) /* F */
#define SLAB_RED_ZONE ((slab_flags_t __force)0x00000400U)           /* Z */
#define SLAB_POISON ((slab_flags_t __force)0x00000800U)             /* P */
#define SLAB_HWCACHE_ALIGN ((slab_flags_t __force)0x00002000U)      /* align to a cache line */
#define SLAB_CACHE_DMA ((slab_flags_t __force)0x00004000U)          /* ZONE_DMA pages */
#define SLAB_STORE_USER ((slab_flags_t __force)0x00010000U)         /* U */
#define SLAB_RECLAIM_ACCOUNT ((slab_flags_t __force)0x00020000U)    /* reclaimable (kmalloc-rcl) */
#define SLAB_TEMPORARY SLAB_RECLAIM_ACCOUNT
#define SLAB_PANIC ((slab_flags_t __force)0x00040000U)              /* panic if creation fails */
/* Features kmemu is built without (as Linux with the config off): no effect. */
#define SLAB_ACCOUNT ((slab_flags_t __force)0U)       /* CONFIG_MEMCG_KMEM */
#define SLAB_FAILSLAB ((slab_flags_t __force)0U)      /* CONFIG_FAILSLAB */
#define SLAB_KASAN ((slab_flags_t __force)0U)         /* CONFIG_KASAN */

#define ZERO_SIZE_PTR ((void *)16)
#define ZERO_OR_NULL_PTR(x) ((unsigned long)(x) <= (unsigned long)ZERO_SIZE_PTR)

#define ARCH_KMALLOC_MINALIGN 8
#define ARCH_SLAB_MINALIGN 8
#define KMALLOC_MIN_SIZE 8
#define KMALLOC_SHIFT_LOW 3
#define KMALLOC_SHIFT_HIGH 13 /* 8 KiB: larger requests go to the page allocator */
#define KMALLOC_SHIFT_MAX 22  /* 4 MiB: order MAX_PAGE_ORDER */
#define KMALLOC_MAX_SIZE (1UL << KMALLOC_SHIFT_MAX)
#define KMALLOC_MAX_CACHE_SIZE (1UL << KMALLOC_SHIFT_HIGH)
#define KMALLOC_MAX_ORDER (KMALLOC_SHIFT_MAX - 12)

struct kmem_cache;

struct kmem_cache *kmem_cache_create(const char *name, unsigned int size, unsigned int align,
				     slab_flags_t flags, void (*ctor)(void *));
void kmem_cache_destroy(struct kmem_cache *s);
int kmem_cache_shrink(struct kmem_cache *s);
void *kmem_cache_alloc(struct kmem_cache *s, gfp_t flags) __malloc;
void *kmem_cache_zalloc(struct kmem_cache *s, gfp_t flags) __malloc;
void kmem_cache_free(struct kmem_cache *s, void *objp);
int kmem_cache_alloc_bulk(struct kmem_cache *s, gfp_t flags, size_t size, void **p);
void kmem_cache_free_bulk(struct kmem_cache *s, size_t size, void **p);
unsigned int kmem_cache_size(struct kmem_cache *s);

/* A cache for struct NAME, named "NAME", aligned as the struct is. */
#define KMEM_CACHE(__struct, __flags)                                        \
	kmem_cache_create(#__struct, sizeof(struct __struct),                \
			  __alignof__(struct __struct), (__flags), NULL)

void *kmalloc(size_t size, gfp_t flags) __malloc;
void *kzalloc(size_t size, gfp_t flags) __malloc;
void *kmalloc_array(size_t n, size_t size, gfp_t flags) __malloc;
void *kcalloc(size_t n, size_t size, gfp_t flags) __malloc;
void *krealloc(const void *objp, size_t new_size, gfp_t flags) __must_check;
void *krealloc_array(void *p, size_t new_n, size_t new_size, gfp_t flags) __must_check;
void kfree(const void *objp);
void kfree_sensitive(const void *objp);
size_t ksize(const void *objp);
size_t kmalloc_size_roundup(size_t size);

void *kvmalloc(size_t size, gfp_t flags) __malloc;
void *kvzalloc(size_t size, gfp_t flags) __malloc;
void *kvmalloc_array(size_t n, size_t size, gfp_t flags) __malloc;
void *kvcalloc(size_t n, size_t size, gfp_t flags) __malloc;
void kvfree(const void *addr);
void kvfree_sensitive(const void *addr, size_t len);

#endif
