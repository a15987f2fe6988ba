/*
 * slab/slab_alloc.h - the entry points of SLAB (slab/slab.c) and SLOB
 * (slab/slob.c): each has SLUB's prototype and stands in for it once
 * slab_select() patched SLUB's function into a jmp here.
 */
#ifndef KMEMU_SLAB_ALLOC_H
#define KMEMU_SLAB_ALLOC_H
#include <linux/types.h>
#include <linux/overflow.h>
#include <linux/slab.h>

struct kmem_cache;
#include <kmemu/slab_common.h>
u64 validate_slab_cache(struct kmem_cache *s);

#define SLAB_DECLARE_ENTRIES(p)                                                            \
	void p##kmem_cache_init(void);                                                     \
	struct kmem_cache *p##kmem_cache_create(const char *name, unsigned int size,       \
						unsigned int align, slab_flags_t flags,     \
						void (*ctor)(void *));                      \
	void p##kmem_cache_destroy(struct kmem_cache *s);                                  \
	int p##kmem_cache_shrink(struct kmem_cache *s);                                    \
	u64 p##kmem_cache_shrink_all(void);                                                \
	void *p##kmem_cache_alloc(struct kmem_cache *s, gfp_t gfp);                        \
	void *p##kmem_cache_zalloc(struct kmem_cache *s, gfp_t gfp);                       \
	void p##kmem_cache_free(struct kmem_cache *s, void *obj);                          \
	unsigned int p##kmem_cache_size(struct kmem_cache *s);                             \
	int p##kmem_cache_alloc_bulk(struct kmem_cache *s, gfp_t gfp, size_t nr, void **p); \
	void p##kmem_cache_free_bulk(struct kmem_cache *s, size_t nr, void **p);           \
	void *p##kmalloc(size_t size, gfp_t gfp);                                          \
	void p##kfree(const void *obj);                                                    \
	size_t p##ksize(const void *obj);                                                  \
	void *p##krealloc(const void *obj, size_t new_size, gfp_t gfp);                    \
	size_t p##kmalloc_size_roundup(size_t size);                                       \
	u64 p##validate_slab_cache(struct kmem_cache *s);                                  \
	bool p##kmem_cache_listed(const char *name);                                       \
	u64 p##kmem_cache_errors(struct kmem_cache *s);                                    \
	void *p##kzalloc(size_t size, gfp_t gfp);                                          \
	void *p##kmalloc_array(size_t n, size_t size, gfp_t gfp);                          \
	void *p##kcalloc(size_t n, size_t size, gfp_t gfp);

/*
 * kzalloc, kmalloc_array and kcalloc of SLAB and SLOB: kmalloc for their caller
 * (do_kmalloc(size, gfp, caller), the allocator's kmalloc body), as SLUB's: Linux's
 * are inline, so the trace event's call_site, KUnit's and kmemleak's record and a
 * failure sweep's site are whoever called them.
 */
#define SLAB_DEFINE_KMALLOC_WRAPPERS(p, do_kmalloc)                                        \
	void *p##kzalloc(size_t size, gfp_t gfp)                                           \
	{                                                                                  \
		return do_kmalloc(size, gfp | __GFP_ZERO,                                  \
				  (u64)__builtin_return_address(0));                       \
	}                                                                                  \
	void *p##kmalloc_array(size_t n, size_t size, gfp_t gfp)                           \
	{                                                                                  \
		size_t bytes;                                                              \
		if (check_mul_overflow(n, size, &bytes))                                   \
			return NULL;                                                       \
		return do_kmalloc(bytes, gfp, (u64)__builtin_return_address(0));          \
	}                                                                                  \
	void *p##kcalloc(size_t n, size_t size, gfp_t gfp)                                 \
	{                                                                                  \
		size_t bytes;                                                              \
		if (check_mul_overflow(n, size, &bytes))                                   \
			return NULL;                                                       \
		return do_kmalloc(bytes, gfp | __GFP_ZERO,                                 \
				  (u64)__builtin_return_address(0));                       \
	}

SLAB_DECLARE_ENTRIES(slab_)
SLAB_DECLARE_ENTRIES(slob_)

#endif
