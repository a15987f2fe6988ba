/*
 * <kmemu/kmemleak.h> - kmemleak's hooks in the allocators and its scan.
 *
 * kmemleak_init() (after kmem_cache_init) turns tracking on when the command
 * line says kmemleak=on; before that, and without it, nothing is tracked.
 * The allocators call the __kmemleak_* hooks from their out-of-line hook
 * functions (reached through slab_hooks_key / page_hooks_key, on which
 * kmemleak takes a count: <kmemu/alloc_hooks.h>), behind kmemleak's own
 * static key kmemleak_key, so the fast paths stay the shared nop while
 * kmemleak is off and the hook functions pay one more nop.  Allocations an
 * allocator makes for itself (inside fault_nest_enter/exit) and objects of
 * SLAB_NOLEAKTRACE caches are not tracked: only what the code asked for, as
 * KUnit's tracker sees it.  kmemleak_scan_from(sp) colours every object
 * (roots: kernel .data/.bss without kmemleak's and the leak trackers' own
 * tables, the live stack [sp, boot_stack_top), the struct pages of pages in
 * use, modules' writable sections), prints the new
 * unreferenced objects in Linux's format, reports a kmemleak event for each
 * and leaves all unreferenced ones in kmemleak_leaks[] for the host.
 */
#ifndef KMEMU_KMEMLEAK_H
#define KMEMU_KMEMLEAK_H
#include <linux/types.h>
#include <linux/jump_label.h>
#include <linux/kmemleak.h>

#define KMEMLEAK_MAX_TRACE 16 /* Linux's MAX_TRACE */
#define KMEMLEAK_COMM_LEN 16  /* TASK_COMM_LEN */

/* object flags (Linux's OBJECT_*) */
#define OBJECT_ALLOCATED (1U << 0) /* tracked and not freed */
#define OBJECT_REPORTED (1U << 1)  /* printed by a scan already */
#define OBJECT_NO_SCAN (1U << 2)   /* its contents are not scanned */
#define OBJECT_PAGES (1U << 3)     /* a page-allocator block: struct page pointers count */
#define OBJECT_NEW (1U << 4)       /* first reported by the last scan (for the host) */

/* min_count values with a colour of their own (Linux's KMEMLEAK_GREY/BLACK) */
#define KMEMLEAK_GREY 0   /* never a leak, scanned: kmemleak_not_leak() */
#define KMEMLEAK_BLACK -1 /* never a leak, never scanned: kmemleak_ignore() */

struct kmemleak_scan_area {
	struct kmemleak_scan_area *next;
	u64 start;
	u64 size;
};

/* One tracked block (Linux's struct kmemleak_object). */
struct kmemleak_object {
	struct kmemleak_object *next, *prev; /* every tracked object, oldest first */
	struct kmemleak_object *hash_next;   /* bucket of its start address */
	struct kmemleak_object *gray_next;   /* the scan's gray list */
	u64 pointer;                         /* start */
	u64 size;
	u32 flags;                           /* OBJECT_* */
	int min_count;                       /* references needed; GREY/BLACK above */
	int count;                           /* references the current scan found */
	u32 checksum;                        /* crc32 of the contents, at the last scan */
	u64 serial;                          /* allocation order (the host's "since") */
	u64 jiffies;
	int pid;
	u32 trace_len;
	char comm[KMEMLEAK_COMM_LEN];
	u64 trace[KMEMLEAK_MAX_TRACE];       /* return addresses, innermost first */
	struct kmemleak_scan_area *areas;    /* NULL: scan the whole object */
};

extern bool kmemleak_enabled;
DECLARE_STATIC_KEY_FALSE(kmemleak_key);
extern struct kmemleak_object **kmemleak_leaks; /* the last scan's unreferenced objects */
extern u64 kmemleak_nr_leaks;
extern u64 kmemleak_serial;                     /* serial of the next tracked object */
extern char *kmemleak_text;   /* the last scan's unreferenced objects, as the debugfs file */
extern u64 kmemleak_text_len;
extern const u64 kmemleak_host_layout[];        /* offsets the host reads objects with */

/*
 * Not a root: SLAB's boot pool of array caches (slab/slab.c), whose slots keep
 * stale pointers to objects allocated since (Linux marks each array_cache
 * kmemleak_no_scan).  The array caches SLAB kmallocs later are its own
 * (untracked), so never scanned either.
 */
#define SLAB_BOOT_POOL_BYTES (64 * 1024)
extern u8 slab_boot_pool[SLAB_BOOT_POOL_BYTES];

void kmemleak_init(const char *cmdline);
void __kmemleak_slab_alloc(void *object, u64 size, slab_flags_t cache_flags);
void __kmemleak_slab_free(void *object, slab_flags_t cache_flags);
struct page;
void __kmemleak_alloc_pages(struct page *page, unsigned int order);
void __kmemleak_free_pages(struct page *page);
void __kmemleak_vmalloc(const void *addr, u64 size);
void __kmemleak_vfree(const void *addr);
u64 kmemleak_scan_from(u64 sp);
u64 kmemleak_scan_host(u64 idle_sp);
int kmemleak_late_scan(void);
void kmemleak_clear(void);

#define KMEMLEAK_HOOK(call)                                   \
	do {                                                  \
		if (static_branch_unlikely(&kmemleak_key))   \
			call;                                 \
	} while (0)

#endif
