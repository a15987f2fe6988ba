/*
 * kmemu/kasan.h - the Kernel Address Sanitizer (generic KASAN), as Linux does it.
 *
 * Built only in the KASAN variant of the kernel (CONFIG_KASAN, `kmemu boot
 * --kasan`): there the kernel and its modules are compiled with GCC's
 * -fsanitize=kernel-address, every load and store calls __asan_load/storeN
 * (kernel/kasan/generic.c), which checks one shadow byte per 8 bytes of
 * memory at KASAN_SHADOW_OFFSET + (addr >> 3):
 *
 *   0        all 8 bytes accessible        1..7   only the first N are
 *   >= 0x80  none: the value says why (KASAN_* below, Linux's values)
 *
 * The allocators call the kasan_*() hooks below; without CONFIG_KASAN they are
 * empty inlines, so the default build's fast paths do not change at all.
 */
#ifndef KMEMU_KASAN_H
#define KMEMU_KASAN_H
#include <linux/types.h>
#include <linux/gfp.h>

struct kmem_cache;
struct page;

#define KASAN_SHADOW_SCALE_SHIFT 3
#define KASAN_GRANULE_SIZE (1UL << KASAN_SHADOW_SCALE_SHIFT)
#define KASAN_GRANULE_MASK (KASAN_GRANULE_SIZE - 1)
#define KASAN_SHADOW_OFFSET 0xdffffc0000000000UL

/* Shadow byte values (Linux's mm/kasan/kasan.h) */
#define KASAN_PAGE_FREE 0xFF       /* freed page */
#define KASAN_PAGE_REDZONE 0xFE    /* past a large kmalloc's requested size */
#define KASAN_SLAB_REDZONE 0xFC    /* slab red zone, metadata, unallocated object */
#define KASAN_SLAB_FREE 0xFB       /* freed slab object (in the quarantine) */
#define KASAN_GLOBAL_REDZONE 0xF9  /* the red zone GCC puts after a global */
#define KASAN_VMALLOC_INVALID 0xF8 /* vmalloc area past its size, or freed */
#define KASAN_STACK_LEFT 0xF1      /* GCC's stack red zones */
#define KASAN_STACK_MID 0xF2
#define KASAN_STACK_RIGHT 0xF3
#define KASAN_STACK_PARTIAL 0xF4
#define KASAN_ALLOCA_LEFT 0xCA
#define KASAN_ALLOCA_RIGHT 0xCB

/* Report kinds: the index the host reads (emu/machine/kasan.py KASAN_KINDS). */
enum kasan_kind {
	KASAN_KIND_UNKNOWN,
	KASAN_KIND_SLAB_OOB,      /* slab-out-of-bounds */
	KASAN_KIND_SLAB_UAF,      /* slab-use-after-free */
	KASAN_KIND_DOUBLE_FREE,   /* double-free */
	KASAN_KIND_INVALID_FREE,  /* invalid-free */
	KASAN_KIND_VMALLOC_OOB,   /* vmalloc-out-of-bounds */
	KASAN_KIND_UAF,           /* use-after-free (pages) */
	KASAN_KIND_GLOBAL_OOB,    /* global-out-of-bounds */
	KASAN_KIND_STACK_OOB,     /* stack-out-of-bounds */
	KASAN_KIND_ALLOCA_OOB,    /* alloca-out-of-bounds */
	KASAN_KIND_WILD,          /* wild-memory-access */
};

#define KASAN_STACK_DEPTH 8

/* Who allocated or freed an object: pid and the call chain from the allocator's caller. */
struct kasan_track {
	u32 pid;
	u32 nr;
	u64 stack[KASAN_STACK_DEPTH];
};

/* Per-object metadata after the object (in its red zone): the two tracks, the
 * requested size and the quarantine link. */
struct kasan_meta {
	struct kasan_track alloc;
	struct kasan_track free;
	u64 requested;        /* kmalloc's size; object_size for kmem_cache_alloc */
	void *qnext;          /* next object in the quarantine */
};

/*
 * The last reports, for the host (struct layout read by emu/machine/kasan.py;
 * keep them in step).  A report's event carries its slot index in args[7].
 */
#define KASAN_RECORDS 8
struct kasan_record {
	u64 kind;             /* enum kasan_kind */
	u64 addr, size, write, ip;
	u64 object, object_size, cache_size; /* 0 when not a slab object */
	char cache[32];
	struct kasan_track alloc, free;
};

#ifdef CONFIG_KASAN
extern bool kasan_ready;
void kasan_init(void);
void kasan_poison(const void *addr, u64 size, u8 value);
void kasan_unpoison(const void *addr, u64 size);
/* slab */
void kasan_cache_create(struct kmem_cache *s, u32 *end);
void kasan_poison_new_slab(struct kmem_cache *s, struct page *slab);
void kasan_slab_alloc(struct kmem_cache *s, void *obj, u64 size, u64 caller);
bool kasan_slab_free(struct kmem_cache *s, struct page *slab, void *obj, u64 caller);
void kasan_krealloc(const void *obj, u64 new_size);
void kasan_cache_shrink(struct kmem_cache *s);
/* poisons past size; returns p */
void *kasan_kmalloc_large(void *p, u64 size, unsigned int order);
/* pages */
void kasan_alloc_pages(struct page *page, unsigned int order);
void kasan_free_pages(struct page *page, unsigned int order);
/* vmalloc */
int kasan_populate_vmalloc(u64 addr, u64 size, gfp_t gfp);
void kasan_unpoison_vmalloc(u64 addr, u64 size);
void kasan_poison_vmalloc(u64 addr, u64 size);
/* a context that unwound without its epilogues (oops, KUnit's throw): clear its stack */
void kasan_unpoison_stack_below(u64 sp);
#else
static inline void kasan_init(void) {}
static inline void kasan_cache_create(struct kmem_cache *s, u32 *end) { (void)s; (void)end; }
static inline void kasan_poison_new_slab(struct kmem_cache *s, struct page *sl)
{ (void)s; (void)sl; }
static inline void kasan_slab_alloc(struct kmem_cache *s, void *o, u64 n, u64 c)
{ (void)s; (void)o; (void)n; (void)c; }
static inline bool kasan_slab_free(struct kmem_cache *s, struct page *sl, void *o, u64 c)
{ (void)s; (void)sl; (void)o; (void)c; return false; }
static inline void kasan_krealloc(const void *o, u64 n) { (void)o; (void)n; }
static inline void kasan_cache_shrink(struct kmem_cache *s) { (void)s; }
static inline void *kasan_kmalloc_large(void *p, u64 n, unsigned int o)
{ (void)n; (void)o; return p; }
static inline void kasan_alloc_pages(struct page *p, unsigned int o) { (void)p; (void)o; }
static inline void kasan_free_pages(struct page *p, unsigned int o) { (void)p; (void)o; }
static inline int kasan_populate_vmalloc(u64 a, u64 n, gfp_t g) { (void)a; (void)n; (void)g; return 0; }
static inline void kasan_unpoison_vmalloc(u64 a, u64 n) { (void)a; (void)n; }
static inline void kasan_poison_vmalloc(u64 a, u64 n) { (void)a; (void)n; }
static inline void kasan_unpoison_stack_below(u64 sp) { (void)sp; }
#endif

#endif
