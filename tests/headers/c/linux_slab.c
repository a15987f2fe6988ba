/* <linux/slab.h> compiles alone, with the module flags and -Werror, and its API is usable. */
#include <linux/slab.h>

struct thing { int a; long b; };
static void ctor(void *p) { (void)p; }
long t(size_t n, gfp_t gfp)
{
	struct kmem_cache *c = KMEM_CACHE(thing, SLAB_HWCACHE_ALIGN | SLAB_ACCOUNT);
	struct kmem_cache *d = kmem_cache_create("hdr", 40, 8, SLAB_POISON | SLAB_RED_ZONE, ctor);
	void *objs[4];
	void *p = kmem_cache_alloc(c, gfp), *z = kmem_cache_zalloc(d, gfp);
	void *k = kmalloc(n, gfp), *kz = kzalloc(n, GFP_KERNEL), *ka = kmalloc_array(n, 8, gfp);
	void *kc = kcalloc(n, 8, gfp), *kr = krealloc(k, n * 2, gfp), *kra = krealloc_array(ka, n, 16, gfp);
	void *v = kvmalloc(n, gfp), *vz = kvzalloc(n, gfp), *vc = kvcalloc(n, 4, gfp),
	     *va = kvmalloc_array(n, 4, gfp);
	long r = (long)ksize(kz) + (long)kmalloc_size_roundup(n) + kmem_cache_size(c) +
		 kmem_cache_alloc_bulk(d, gfp, 4, objs) + ZERO_OR_NULL_PTR(kc) + (long)KMALLOC_MAX_SIZE;
	kmem_cache_free_bulk(d, 4, objs);
	kmem_cache_free(c, p);
	kmem_cache_free(d, z);
	kmem_cache_shrink(c);
	kmem_cache_destroy(c);
	kmem_cache_destroy(d);
	kfree(kr); kfree(kra); kfree_sensitive(kz); kfree(kc);
	kvfree(v); kvfree(vz); kvfree(vc); kvfree_sensitive(va, n);
	return r;
}
