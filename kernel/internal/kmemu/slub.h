/*
 * kmemu/slub.h - the slab allocator's internals (SLUB design): struct
 * kmem_cache and the slab fields of struct page.  The API is <linux/slab.h>.
 *
 * A slab is a page or compound page (order <= 3) whose struct page carries
 * PG_slab, slab_cache, freelist (free objects not owned by a CPU) and the
 * counters in page->private (inuse:16 objects:15 frozen:1).  Free objects
 * hold an in-object free pointer at cache->offset, stored hardened: the
 * pointer XOR cache->random XOR the byte-swapped address it is stored at.
 *
 * cpu_slab (one CPU) is the active slab and its lockless freelist: the
 * fast paths pop and push it with one cmpxchg16b on (freelist, tid), as
 * Linux's this_cpu_cmpxchg_double; an interrupt that used the cache in
 * between bumped tid, so the exchange fails and the fast path starts over.
 * Whatever changes freelist or slab outside the fast path (interrupts off)
 * bumps tid too.  node.partial holds slabs
 * with free objects, under node.list_lock (interrupts off).
 */
#ifndef KMEMU_SLAB_H
#define KMEMU_SLAB_H
#include <linux/types.h>
#include <linux/gfp.h>
#include <linux/list.h>
#include <linux/spinlock.h>
#include <linux/jump_label.h>
#include <linux/slab.h>
#include <linux/poison.h>
#include <kmemu/mm_types.h>
#include <kmemu/slab_common.h>
#include <kmemu/kunit_track.h> /* slab_alloc/slab_free report to KUnit's leak tracking */
#include <kmemu/kmemleak.h>    /* ... and to kmemleak */

/* Public flags and limits are in <linux/slab.h>; these are the allocator's own. */
#define SLAB_KMALLOC 0x00001000u /* kmemu: a kmalloc-N cache */
#define SLAB_DEBUG_FLAGS (SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER)
#define TRACK_DEPTH 4

struct track {
	u64 addr;               /* caller of kmalloc/kfree (0: never) */
	u64 stack[TRACK_DEPTH]; /* trace from the caller (stack[0] == addr) upwards */
};

#define SLUB_MAX_ORDER 3
#define SLAB_NAME_LEN 32

struct kmem_cache_cpu {
	void *freelist;     /* first free object of the active slab (hardened chain) */
	u64 tid;            /* transaction id: bumped by every change of freelist/slab */
	struct page *slab;  /* the active ("frozen") slab, or NULL */
	u64 slab_base_neg;  /* minus its first byte's address (-page_address), with slab:
			     * object + slab_base_neg is the offset in one add, and the
			     * value is no pointer to the slab's first object, so
			     * kmemleak's scan does not take it for a reference (Linux
			     * keeps only the struct slab pointer here) */
	u64 slab_bytes;     /* its size, PAGE_SIZE << order; 0 without an active slab */
	u64 alloc_fast, alloc_slow, free_fast, free_slow;
} __aligned(16);           /* freelist+tid: one cmpxchg16b operand */
_Static_assert(sizeof(struct kmem_cache_cpu) == KMEM_CACHE_CPU_BYTES,
	       "<kmemu/slab_common.h> keeps SLAB's and SLOB's common fields where SLUB's are");

struct kmem_cache_node {
	spinlock_t list_lock;
	u64 nr_partial;
	struct list_head partial;
	u64 nr_slabs;
	u64 total_objects;
};

struct kmem_cache {
	struct kmem_cache_cpu cpu_slab; /* first, as Linux's: the fast paths' operand at offset 0 */
	char name[SLAB_NAME_LEN];
	u32 object_size; /* what the user asked for */
	u32 size;        /* distance between objects */
	u32 align;
	u32 offset;      /* free pointer offset inside the object */
	u32 inuse;       /* object_size rounded up to a word */
	slab_flags_t flags;
	u32 order;       /* slab = 2^order pages */
	u32 objects;     /* objects per slab */
	u32 min_partial;
	s32 refcount;
	u64 random;      /* freelist hardening */
	u32 red_left_pad;   /* Z: bytes of red zone before each object */
	u32 track_offset;   /* U: two struct track after the free pointer */
	u32 orig_size_offset; /* kmalloc with Z or U: the size that was asked for */
	u32 pad;
	u64 errors;         /* debug reports so far */
	void (*ctor)(void *);
	struct kmem_cache_node node;
	struct list_head list; /* slab_caches */
#ifdef CONFIG_KASAN
	u32 kasan_meta_offset; /* struct kasan_meta after each object (<kmemu/kasan.h>) */
	u32 kasan_pad;
#endif
};

extern struct list_head slab_caches;
/* On once any cache has SLAB_DEBUG_FLAGS (slab_debug= or kmem_cache_create flags). */
DECLARE_STATIC_KEY_FALSE(slub_debug_enabled);
void slub_debug_enable(void); /* the key on, with its count on slab_hooks_key */
extern struct kmem_cache *kmalloc_caches[3][KMALLOC_SHIFT_HIGH + 1];
enum kmalloc_cache_type { KMALLOC_NORMAL, KMALLOC_RECLAIM, KMALLOC_DMA };

/*
 * kmalloc's size classes (kmalloc.c): size_index[] for 1..192 bytes by
 * (size - 1) / 8, as Linux's size_index[size_index_elem(size)]; above that
 * the next power of two, fls(size - 1).  Index 1 is the 96-byte class and 2
 * the 192-byte one (Linux's kmalloc_index()).
 */
extern const u8 kmalloc_size_index[24];
static __always_inline unsigned int kmalloc_index(u64 size)
{
	if (likely(size - 1 < 192)) /* and size != 0 */
		return kmalloc_size_index[(size - 1) / 8];
	return 64 - (unsigned int)__builtin_clzl(size - 1);
}
void *kmalloc_large(size_t size, gfp_t gfp, u64 caller); /* traced: caller is the call site */

void __kmem_cache_free(struct page *slab, void *obj, u64 caller);
struct kmem_cache *kmalloc_slab(size_t size, gfp_t gfp);
struct page *virt_to_slab(const void *addr);
void kmem_cache_init(void);

/* slab_debug.c */
slab_flags_t slab_debug_flags_for(const char *name);
void setup_object_debug(struct kmem_cache *s, void *obj);
bool alloc_debug_processing(struct kmem_cache *s, struct page *slab, void *obj, u64 orig_size,
			    u64 caller);
bool free_debug_processing(struct kmem_cache *s, struct page *slab, void *obj, u64 caller);
u64 validate_slab_cache(struct kmem_cache *s);
void list_leaked_objects(struct kmem_cache *s);
void kmalloc_update_orig_size(struct kmem_cache *s, void *obj, u64 size);
void slab_debug_setup(const char *cmdline);


/* Hardened free pointers: stored as ptr ^ cache->random ^ bswap64(&slot). */
static inline u64 freeptr_mask(const struct kmem_cache *s, u64 ptr_addr)
{
	return s->random ^ __builtin_bswap64(ptr_addr);
}

static inline void *get_freepointer(const struct kmem_cache *s, void *object)
{
	u64 addr = (u64)object + s->offset;
	return (void *)(*(u64 *)addr ^ freeptr_mask(s, addr));
}

/* Without the double-free check (slub.c's set_freepointer adds it). */
static inline void set_freepointer_raw(const struct kmem_cache *s, void *object, void *fp)
{
	u64 addr = (u64)object + s->offset;
	*(u64 *)addr = (u64)fp ^ freeptr_mask(s, addr);
}

static inline u32 slab_inuse(const struct page *s) { return (u32)(s->private & 0xffff); }
static inline u32 slab_objects(const struct page *s) { return (u32)((s->private >> 16) & 0x7fff); }
static inline bool slab_frozen(const struct page *s) { return (s->private >> 31) & 1; }
static inline void slab_set_counters(struct page *s, u32 inuse, u32 objects, bool frozen)
{
	s->private = (u64)inuse | ((u64)objects << 16) | ((u64)frozen << 31);
}

#endif
