/*
 * mm_types.h - struct page: one per page frame, 64 bytes, in mem_map[].
 *
 *   offset  field
 *        0  flags          PG_* bits below; zone number in bits 62..63
 *        8  lru            free list link (buddy free_area or the pcp list)
 *           | compound_head  tail pages: head address | 1; compound_order
 *           |                in the first tail page
 *           | slab_cache, freelist   (slab pages, the slab issue)
 *       24  slab_list / spare words for the slab allocator
 *       40  private        buddy order while PG_buddy
 *       48  _refcount      1 when allocated (order 0 or compound head), 0 free
 *       52  page_type      PAGE_TYPE_* below on the first page of an allocation
 *                          whose use flags cannot tell (0 otherwise)
 *       56  alloc_order    kmemu debug: order + 1 on the first page of an
 *                          allocation, 0 otherwise (catches wrong-order frees)
 *
 * Who may touch it: the buddy allocator under zone->lock for free pages;
 * the owner of an allocated page for everything but flags' zone bits.
 */
#ifndef KMEMU_MM_TYPES_H
#define KMEMU_MM_TYPES_H
#include <linux/types.h>
#include <linux/list.h>

struct page {
	u64 flags;
	union {
		struct list_head lru;
		struct {
			u64 compound_head;
			u8 compound_order;
		};
		struct {
			void *slab_cache;
			void *freelist;
		};
	};
	union {
		struct list_head slab_list;
		u64 slab_words[2];
	};
	u64 private;
	s32 _refcount;
	u32 page_type;
	u32 alloc_order;
	u32 _pad;
};

_Static_assert(sizeof(struct page) == 64, "struct page must stay 64 bytes");

/* page->flags bits (names as in Linux; numbers are kmemu's own) */
enum pageflags {
	PG_reserved = 0, /* not managed by the buddy allocator */
	PG_buddy = 1,    /* first page of a free block on a buddy list */
	PG_pcp = 2,      /* on the per-cpu free list (kmemu: makes pcp pages visible) */
	PG_head = 3,     /* first page of a compound page */
	PG_tail = 4,     /* kmemu: any other page of a compound page */
	PG_slab = 5,     /* owned by the slab allocator */
	PG_zeroed = 6,   /* spare */
	NR_PAGEFLAGS
};

/*
 * page->page_type values: who holds an allocated block, where PG_* flags
 * cannot say.  Set by the allocating code after alloc_pages(), cleared by it
 * before the free and by the page allocator's free whatever the caller did
 * (as Linux 6.12's free_pages_prepare), so a block freed with the wrong call
 * keeps no stale record for kfree's check; the host's memory census
 * (emu/kernel/memmap.py) reads it.  Linux 6.12 added the same record for
 * large kmalloc (PGTY_large_kmalloc).
 */
#define PAGE_TYPE_LARGE_KMALLOC 1 /* kmalloc above KMALLOC_MAX_CACHE_SIZE */

#define ZONES_PGSHIFT 62
#define PAGE_FLAGS_MASK ((1UL << NR_PAGEFLAGS) - 1)

static inline bool page_flag(const struct page *p, int bit) { return (p->flags >> bit) & 1; }
static inline void set_page_flag(struct page *p, int bit) { p->flags |= 1UL << bit; }
static inline void clear_page_flag(struct page *p, int bit) { p->flags &= ~(1UL << bit); }

#define PageReserved(p) page_flag(p, PG_reserved)
#define PageBuddy(p) page_flag(p, PG_buddy)
#define PagePcp(p) page_flag(p, PG_pcp)
#define PageHead(p) page_flag(p, PG_head)
#define PageTail(p) page_flag(p, PG_tail)
#define PageSlab(p) page_flag(p, PG_slab)

#endif
