/*
 * kmemu/slab_common.h - what the three slab allocators (SLUB in slub.c, SLAB
 * in slab/slab.c, SLOB in slab/slob.c) share, and how one is chosen.
 *
 * One kernel image holds all three.  slab_select() (slab/select.c) reads
 * slab=slub|slab|slob from the command line before kmem_cache_init() and,
 * for SLAB or SLOB, text_pokes a 5-byte `jmp` over the first instruction of
 * every SLUB entry point (kmalloc, kfree, kmem_cache_alloc, ...) to the
 * chosen allocator's function, as Linux's static_call does.  SLUB's code is
 * left as the compiler made it, so choosing costs SLUB nothing; the others
 * pay one jmp per call.
 *
 * Every allocator's cache descriptor starts with the same fields as SLUB's
 * struct kmem_cache (KMEM_CACHE_COMMON, checked with static asserts), so code
 * outside the allocators (failslab, KUnit's leak tracker, KASAN's reports,
 * the host's KUnit view) reads a cache's name, sizes and flags from any of
 * them.  struct kmem_cache stays opaque to modules, as in Linux.
 */
#ifndef KMEMU_SLAB_COMMON_H
#define KMEMU_SLAB_COMMON_H
#include <linux/types.h>
#include <linux/kernel.h>
#include <linux/slab.h>

/* sizeof(struct kmem_cache_cpu) (<kmemu/slub.h>, which checks it) */
#define KMEM_CACHE_CPU_BYTES 80

enum slab_allocator_id {
	SLAB_ALLOCATOR_SLUB = 0,
	SLAB_ALLOCATOR_SLAB = 1,
	SLAB_ALLOCATOR_SLOB = 2,
};

/* The allocator chosen at boot (the host reads it: emu/kernel/slab_select.py). */
extern u8 slab_allocator;

/*
 * The leading fields of every cache descriptor, where SLUB's struct kmem_cache has
 * them: after its per-CPU slot (first there, the fast paths' operand at offset 0),
 * which SLAB and SLOB keep unused, then SLUB's first seven fields.  Code that reads a
 * cache through struct kmem_cache * (its name, sizes, flags) works on all three.
 */
#define KMEM_CACHE_COMMON                                                    \
	u8 slub_cpu_slot[KMEM_CACHE_CPU_BYTES] __aligned(16); /* unused */     \
	char name[32];     /* SLAB_NAME_LEN */                                \
	u32 object_size;   /* what the user asked for */                      \
	u32 size;          /* bytes each object takes, metadata included */    \
	u32 align;                                                            \
	u32 offset;        /* SLUB: free pointer offset; others: 0 */          \
	u32 inuse;         /* SLUB: object + right red zone; others: size */   \
	slab_flags_t flags

#define CACHE_LINE_SIZE 64

/*
 * An object's alignment, as Linux's slab_common.c computes it for all three
 * allocators: SLAB_HWCACHE_ALIGN gives the cache line, halved while the object fits
 * twice; never below the architecture's 8 bytes.
 */
static inline u32 calculate_alignment(slab_flags_t flags, u32 align, u32 size)
{
	if (flags & SLAB_HWCACHE_ALIGN) {
		u32 ralign = CACHE_LINE_SIZE;
		while (size <= ralign / 2)
			ralign /= 2;
		align = max(align, ralign);
	}
	return ALIGN(max(align, 8u), 8u);
}

void slab_select(const char *cmdline);

/* Entry points beyond <linux/slab.h>, patched like the others (slab/select.c). */
struct kmem_cache;
bool kmem_cache_listed(const char *name); /* a cache of this name exists */
u64 kmem_cache_errors(struct kmem_cache *s); /* debug reports about the cache so far */

#endif
