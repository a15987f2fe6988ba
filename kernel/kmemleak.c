/*
 * kmemleak.c - the kernel memory leak detector (Linux's mm/kmemleak.c design).
 *
 * Tracking.  With kmemleak=on, kmemleak_init() creates two caches of its own
 * (kmemleak_object, kmemleak_scan_area; SLAB_NOLEAKTRACE, so tracking never
 * tracks itself) and turns kmemleak_key on.  From then on every slab object,
 * kmalloc, vmalloc area and page-allocator block the code asks for gets a
 * struct kmemleak_object (start, size, min_count, allocation stack, comm and
 * pid), kept on a list (oldest first) and in a hash of start addresses (the
 * free hooks find it there).  The metadata is allocated nested
 * (fault_nest_enter/exit): it is no allocation the code made, so fail-nth and
 * the failure sweep number allocations the same with kmemleak on or off.
 *
 * The scan (Linux's kmemleak_scan, run on the host's request with interrupts
 * off, so nothing changes under it):
 *  1. an index of every object sorted by start address, for "which object
 *     contains this address" (Linux keeps a search tree up to date on every
 *     allocation; kmemu sorts once per scan, so the hooks stay O(1));
 *  2. every object white (count 0); the gray ones (min_count 0: not_leak)
 *     start the gray list;
 *  3. the roots are scanned: kernel .data and .bss (without the dead part of
 *     the stack and the tables of kmemleak and the other leak trackers, which
 *     hold addresses of tracked objects by design) and the live stack
 *     [sp, boot_stack_top), which holds every interrupted context's saved
 *     registers, and (Linux's too) the struct pages of pages in use.
 *     Every aligned word that points anywhere into an object
 *     (Linux's rule: into, not only at its start), or at the struct page of a
 *     tracked page block, counts a reference; an object whose count reaches
 *     min_count turns gray and joins the gray list;
 *  4. the gray list is scanned the same way, growing as objects turn gray
 *     (an object's scan areas only, if it has any; OBJECT_NO_SCAN and black
 *     ones never);
 *  5. what stays white is unreferenced: its checksum (crc32 of the contents)
 *     is taken, the new ones are marked reported, printed in Linux's format
 *     and reported as kmemleak events; all of them go to kmemleak_leaks[].
 * Deliberate differences, all because the scan stops the world: no minimum
 * age (Linux: 5 s) and no "modified since the last scan, gray for one more"
 * rule, so one scan reports a leak.
 */
#include <linux/bug.h>
#include <linux/export.h>
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/kmemleak.h>
#include <linux/preempt.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/sprintf.h>
#include <linux/stdarg.h>
#include <linux/string.h>
#include <linux/vmalloc.h>
#include <kmemu/abi.h>
#include <kmemu/alloc_hooks.h>
#include <kmemu/fault_inject.h>
#include <kmemu/kmemleak.h>
#include <kmemu/kunit_track.h>
#include <kmemu/log.h>
#include <kmemu/memlayout.h>
#include <kmemu/mmzone.h>
#include <kmemu/page_alloc.h>
#include <kmemu/traps.h>

#define HASH_BITS 13
#define HEX_ROW_SIZE 16
#define HEX_MAX_LINES 2
#define INITIAL_JIFFIES 4294667296UL /* (u32)(-300 * HZ), HZ = 1000 */

bool kmemleak_enabled;
DEFINE_STATIC_KEY_FALSE(kmemleak_key);
struct kmemleak_object **kmemleak_leaks;
u64 kmemleak_nr_leaks;
u64 kmemleak_serial = 1;
char *kmemleak_text;
u64 kmemleak_text_len;

/* Where the host finds what it reads (emu/machine/kmemleak.py), in this order. */
#define OFF(f) offsetof(struct kmemleak_object, f)
const u64 kmemleak_host_layout[] = {
	sizeof(struct kmemleak_object), OFF(pointer), OFF(size), OFF(flags), OFF(min_count),
	OFF(checksum), OFF(serial), OFF(jiffies), OFF(pid), OFF(trace_len), OFF(comm), OFF(trace),
	KMEMLEAK_MAX_TRACE, KMEMLEAK_COMM_LEN,
};
#undef OFF

struct index_entry {
	u64 start, end;
	struct kmemleak_object *object;
};

/*
 * Everything else kmemleak keeps, in one place the scan leaves out of the
 * roots: the hash holds object addresses by design, and min_addr/max_addr are
 * values that may equal one.
 */
static struct {
	struct kmemleak_object *head, *tail;       /* the object list */
	struct kmemleak_object *hash[1 << HASH_BITS];
	struct kmem_cache *object_cache, *area_cache;
	struct index_entry *index;                 /* sorted by start, per scan */
	u64 index_cap, nr_index, nr_objects, nr_page_objects;
	u64 min_addr, max_addr;
	struct kmemleak_object *gray_head, *gray_tail;
	u64 leaks_cap, text_cap;
	u32 crc_table[256];
} kml;

/* --- metadata ------------------------------------------------------------------- */

static u64 hash_of(u64 ptr)
{
	return ((ptr >> 3) * 0x9e3779b97f4a7c15ULL) >> (64 - HASH_BITS);
}

/* The allocator's own allocation, never tracked, counted or failed by the sweep. */
static void *meta_alloc(struct kmem_cache *c)
{
	return fault_nested(kmem_cache_alloc(c, GFP_ATOMIC | __GFP_NOWARN));
}

/* Linux's behaviour when metadata runs out: say so and stop tracking. */
static void kmemleak_disable(const char *why)
{
	pr_warn("kmemleak: %s\n", why);
	kmemleak_enabled = false;
	pr_info("kmemleak: Kernel memory leak detector disabled\n");
}

/* Linux's text-address test, as ranges (runs on every allocation: no kallsyms). */
static bool text_address(u64 a)
{
	return (a >= (u64)_stext && a < (u64)_etext) || (a >= MODULES_VADDR && a < MODULES_END);
}

/* The return addresses from the hook's caller up (a lean frame-pointer walk). */
static u32 save_trace(u64 rbp, u64 *out)
{
	u32 n = 0;
	while (n < KMEMLEAK_MAX_TRACE && rbp >= PAGE_OFFSET && !(rbp & 7)) {
		u64 *frame = (u64 *)rbp;
		if (!text_address(frame[1]))
			break;
		out[n++] = frame[1];
		if (frame[0] <= rbp)
			break;
		rbp = frame[0];
	}
	return n;
}

/* comm and pid as Linux's create_object records them (kmemu runs one task). */
static void set_task(struct kmemleak_object *o)
{
	const char *comm = in_hardirq() ? "hardirq" : in_serving_softirq() ? "softirq" : "swapper/0";
	o->pid = 0;
	strscpy(o->comm, comm, sizeof(o->comm));
}

static void list_append(struct kmemleak_object *o)
{
	o->next = NULL;
	o->prev = kml.tail;
	if (kml.tail)
		kml.tail->next = o;
	else
		kml.head = o;
	kml.tail = o;
}

static void list_unlink(struct kmemleak_object *o)
{
	if (o->prev)
		o->prev->next = o->next;
	else
		kml.head = o->next;
	if (o->next)
		o->next->prev = o->prev;
	else
		kml.tail = o->prev;
}

/* Track [ptr, ptr + size); rbp is the hook's frame (the trace starts above it). */
static void create_object(u64 ptr, u64 size, int min_count, u32 flags, u64 rbp)
{
	struct kmemleak_object *o = meta_alloc(kml.object_cache);
	if (!o) {
		kmemleak_disable("Cannot allocate a kmemleak_object structure");
		return;
	}
	*o = (struct kmemleak_object){
		.pointer = ptr, .size = size, .min_count = min_count,
		.flags = OBJECT_ALLOCATED | flags, .jiffies = INITIAL_JIFFIES,
	};
	set_task(o);
	o->trace_len = save_trace(rbp, o->trace);
	unsigned long irqflags;
	local_irq_save(irqflags);
	o->serial = kmemleak_serial++;
	u64 h = hash_of(ptr);
	o->hash_next = kml.hash[h];
	kml.hash[h] = o;
	list_append(o);
	kml.nr_objects++;
	kml.nr_page_objects += !!(flags & OBJECT_PAGES);
	local_irq_restore(irqflags);
}

#define ANY_KIND (~0U)

/*
 * The object starting at ptr whose OBJECT_PAGES flag is kind (ANY_KIND: either),
 * unlinked from the hash if unlink; NULL if untracked.  A slab's first object
 * and the slab's page share an address: kind keeps their hooks apart.
 */
static struct kmemleak_object *find_start(u64 ptr, bool unlink, u32 kind)
{
	struct kmemleak_object **pp = &kml.hash[hash_of(ptr)];
	for (; *pp; pp = &(*pp)->hash_next) {
		struct kmemleak_object *o = *pp;
		if (o->pointer != ptr || (kind != ANY_KIND && (o->flags & OBJECT_PAGES) != kind))
			continue;
		if (unlink)
			*pp = o->hash_next;
		return o;
	}
	return NULL;
}

/* Forget the object at ptr (a block allocated before kmemleak_init is not known). */
static void delete_object(u64 ptr, u32 kind)
{
	unsigned long irqflags;
	local_irq_save(irqflags);
	struct kmemleak_object *o = find_start(ptr, true, kind);
	if (o) {
		list_unlink(o);
		kml.nr_objects--;
		kml.nr_page_objects -= !!(o->flags & OBJECT_PAGES);
	}
	local_irq_restore(irqflags);
	if (!o)
		return;
	while (o->areas) {
		struct kmemleak_scan_area *a = o->areas;
		o->areas = a->next;
		kmem_cache_free(kml.area_cache, a);
	}
	kmem_cache_free(kml.object_cache, o);
}

/* --- hooks (the allocators call these behind kmemleak_key) ------------------------ */

static bool tracked(void)
{
	return kmemleak_enabled && !fault_nest;
}

void __kmemleak_slab_alloc(void *object, u64 size, slab_flags_t cache_flags)
{
	if (tracked() && object && !(cache_flags & SLAB_NOLEAKTRACE))
		create_object((u64)object, size, 1, 0, (u64)__builtin_frame_address(0));
}

void __kmemleak_slab_free(void *object, slab_flags_t cache_flags)
{
	if (kmemleak_enabled && !(cache_flags & SLAB_NOLEAKTRACE))
		delete_object((u64)object, 0);
}

void __kmemleak_alloc_pages(struct page *page, unsigned int order)
{
	if (tracked())
		create_object((u64)page_address(page), PAGE_SIZE << order, 1, OBJECT_PAGES,
			      (u64)__builtin_frame_address(0));
}

void __kmemleak_free_pages(struct page *page)
{
	if (kmemleak_enabled)
		delete_object((u64)page_address(page), OBJECT_PAGES);
}

/*
 * A vmalloc area: Linux asks for two references (its tracked vm_struct holds
 * one); kmemu does not track vmalloc's own bookkeeping, so one.
 */
void __kmemleak_vmalloc(const void *addr, u64 size)
{
	if (tracked())
		create_object((u64)addr, size, 1, 0, (u64)__builtin_frame_address(0));
}

void __kmemleak_vfree(const void *addr)
{
	if (kmemleak_enabled)
		delete_object((u64)addr, 0);
}

/* --- the public API ------------------------------------------------------------------ */

void kmemleak_alloc(const void *ptr, size_t size, int min_count, gfp_t gfp)
{
	(void)gfp;
	if (kmemleak_enabled && !ZERO_OR_NULL_PTR(ptr))
		create_object((u64)ptr, size, min_count, 0, (u64)__builtin_frame_address(0));
}
EXPORT_SYMBOL(kmemleak_alloc);

void kmemleak_free(const void *ptr)
{
	if (kmemleak_enabled && !ZERO_OR_NULL_PTR(ptr))
		delete_object((u64)ptr, ANY_KIND);
}
EXPORT_SYMBOL(kmemleak_free);

/* Set min_count (and flags) of the object at ptr; Linux warns about an unknown one. */
static void paint_ptr(const void *ptr, int min_count, u32 flags, const char *what)
{
	if (!kmemleak_enabled || ZERO_OR_NULL_PTR(ptr))
		return;
	struct kmemleak_object *o = find_start((u64)ptr, false, ANY_KIND);
	if (!o) {
		pr_warn("kmemleak: Trying to %s unknown object at 0x%px\n", what, ptr);
		return;
	}
	if (min_count != 1)
		o->min_count = min_count;
	o->flags |= flags;
}

void kmemleak_not_leak(const void *ptr)
{
	paint_ptr(ptr, KMEMLEAK_GREY, 0, "color");
}
EXPORT_SYMBOL(kmemleak_not_leak);

void kmemleak_ignore(const void *ptr)
{
	paint_ptr(ptr, KMEMLEAK_BLACK, OBJECT_NO_SCAN, "color");
}
EXPORT_SYMBOL(kmemleak_ignore);

void kmemleak_no_scan(const void *ptr)
{
	paint_ptr(ptr, 1, OBJECT_NO_SCAN, "set no scan flag of");
}
EXPORT_SYMBOL(kmemleak_no_scan);

/* The object containing [ptr, ptr + size) is scanned only in its areas from now on. */
void kmemleak_scan_area(const void *ptr, size_t size, gfp_t gfp)
{
	(void)gfp;
	if (!kmemleak_enabled || !ptr)
		return;
	struct kmemleak_object *o = NULL;
	for (struct kmemleak_object *p = kml.head; p && !o; p = p->next)
		if ((u64)ptr >= p->pointer && (u64)ptr + size <= p->pointer + p->size)
			o = p;
	if (!o) {
		pr_warn("kmemleak: Adding scan area to unknown object at 0x%px\n", ptr);
		return;
	}
	struct kmemleak_scan_area *a = meta_alloc(kml.area_cache);
	if (!a) {
		kmemleak_disable("Cannot allocate a scan area");
		return;
	}
	*a = (struct kmemleak_scan_area){ .next = o->areas, .start = (u64)ptr, .size = size };
	o->areas = a;
}
EXPORT_SYMBOL(kmemleak_scan_area);

/* --- the index ---------------------------------------------------------------------- */

/* Room for n entries in a nested vmalloc (untracked); false if there is none. */
static bool reserve(void **buf, u64 *cap, u64 n, u64 entry)
{
	if (n <= *cap)
		return true;
	u64 want = max_t(u64, n + n / 2, 1024);
	void *p = fault_nested(vmalloc(want * entry));
	if (!p)
		return false;
	fault_nested(({ vfree(*buf); 0; }));
	*buf = p;
	*cap = want;
	return true;
}

static void sift_down(struct index_entry *a, u64 root, u64 n)
{
	for (u64 child; (child = 2 * root + 1) < n; root = child) {
		if (child + 1 < n && a[child + 1].start > a[child].start)
			child++;
		if (a[root].start >= a[child].start)
			return;
		struct index_entry t = a[root];
		a[root] = a[child];
		a[child] = t;
	}
}

/* Heapsort: O(n log n) with no extra memory. */
static void sort_index(struct index_entry *a, u64 n)
{
	for (u64 i = n / 2; i-- > 0;)
		sift_down(a, i, n);
	for (u64 end = n; end-- > 1;) {
		struct index_entry t = a[0];
		a[0] = a[end];
		a[end] = t;
		sift_down(a, 0, end);
	}
}

/* Every object white, in the index; the gray ones on the gray list. */
static void build_index(void)
{
	u64 n = 0;
	kml.gray_head = kml.gray_tail = NULL;
	for (struct kmemleak_object *o = kml.head; o; o = o->next) {
		o->count = 0;
		o->gray_next = NULL;
		kml.index[n++] = (struct index_entry){ o->pointer, o->pointer + o->size, o };
	}
	kml.nr_index = n;
	sort_index(kml.index, n);
	kml.min_addr = n ? kml.index[0].start : 0;
	kml.max_addr = 0;
	for (u64 i = 0; i < n; i++)
		kml.max_addr = max_t(u64, kml.max_addr, kml.index[i].end);
}

/* The object whose [start, end) holds v (objects never overlap), or NULL. */
static struct kmemleak_object *lookup(u64 v)
{
	u64 lo = 0, hi = kml.nr_index;
	while (lo < hi) {
		u64 mid = (lo + hi) / 2;
		if (kml.index[mid].start <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || v >= kml.index[lo - 1].end)
		return NULL;
	return kml.index[lo - 1].object;
}

/* A struct page pointer names its page block (alloc_pages() hands out struct pages). */
static struct kmemleak_object *lookup_struct_page(u64 v)
{
	u64 pfn = (v - VMEMMAP_START) / sizeof(struct page);
	if (pfn >= max_pfn)
		return NULL;
	struct kmemleak_object *o = lookup((u64)__va(pfn << PAGE_SHIFT));
	return o && (o->flags & OBJECT_PAGES) ? o : NULL;
}

/* --- colouring ---------------------------------------------------------------------- */

static bool color_white(const struct kmemleak_object *o)
{
	return o->min_count != KMEMLEAK_BLACK && o->count < o->min_count;
}

static bool color_gray(const struct kmemleak_object *o)
{
	return o->min_count != KMEMLEAK_BLACK && o->count >= o->min_count;
}

static void gray_append(struct kmemleak_object *o)
{
	o->gray_next = NULL;
	if (kml.gray_tail)
		kml.gray_tail->gray_next = o;
	else
		kml.gray_head = o;
	kml.gray_tail = o;
}

/* One more reference to o: at min_count it turns gray and will be scanned. */
static void update_refs(struct kmemleak_object *o)
{
	if (!color_white(o))
		return;
	if (++o->count == o->min_count)
		gray_append(o);
}

/* Every aligned word of [start, end) that points into an object other than scanned. */
static void scan_block(u64 start, u64 end, const struct kmemleak_object *scanned)
{
	u64 vmemmap_end = VMEMMAP_START + max_pfn * sizeof(struct page);
	for (const u64 *p = (const u64 *)ALIGN(start, 8); (u64)(p + 1) <= end; p++) {
		u64 v = *p;
		struct kmemleak_object *o = NULL;
		if (v >= kml.min_addr && v < kml.max_addr)
			o = lookup(v);
		if (!o && v >= VMEMMAP_START && v < vmemmap_end && kml.nr_page_objects)
			o = lookup_struct_page(v);
		if (o && o != scanned)
			update_refs(o);
	}
}

/* A gray object's contents: its scan areas if it has any, else all of it. */
static void scan_object(struct kmemleak_object *o)
{
	if (o->flags & OBJECT_NO_SCAN)
		return;
	if (!o->areas) {
		scan_block(o->pointer, o->pointer + o->size, o);
		return;
	}
	for (struct kmemleak_scan_area *a = o->areas; a; a = a->next)
		scan_block(a->start, a->start + a->size, o);
}

/*
 * Kernel data and bss, without ranges that are not roots: kmemleak's own
 * state, the other leak trackers' records (KUnit's, which the failure sweep
 * uses), SLAB's boot array caches (stale pointers to objects) and the stack
 * (scanned from sp only: below it is dead).
 */
static void scan_roots(u64 sp)
{
	extern char _sdata[], __image_end[], __bss_start[], __bss_end[];
	extern char boot_stack[], boot_stack_top[], df_stack_top[];
	const u64 holes[][2] = {
		{ (u64)&kml, (u64)(&kml + 1) },
		{ (u64)kunit_leaks, (u64)(kunit_leaks + KUNIT_TRACK_MAX) },
		{ (u64)boot_stack, (u64)df_stack_top },
		{ (u64)slab_boot_pool, (u64)(slab_boot_pool + SLAB_BOOT_POOL_BYTES) },
	};
	const u64 nr_holes = ARRAY_SIZE(holes);
	scan_block((u64)_sdata, (u64)__image_end, NULL);
	u64 pos = (u64)__bss_start;
	while (pos < (u64)__bss_end) {
		u64 next = (u64)__bss_end, skip_to = next;
		for (u64 i = 0; i < nr_holes; i++)
			if (holes[i][1] > pos && holes[i][0] < next) {
				next = max_t(u64, holes[i][0], pos);
				skip_to = holes[i][1];
			}
		scan_block(pos, next, NULL);
		pos = skip_to;
	}
	if (sp >= (u64)boot_stack && sp < (u64)boot_stack_top)
		scan_block(sp, (u64)boot_stack_top, NULL);
}

/*
 * Linux's struct page scan: the struct pages of pages in use (a block's head
 * has a reference count) are roots, so pages linked through page->lru are
 * found.  A struct page is not a reference to its own block.
 */
static void scan_struct_pages(void)
{
	for (u64 pfn = 0; pfn < max_pfn; pfn++) {
		if (!pfn_valid(pfn)) {
			pfn |= PAGES_PER_SECTION - 1; /* the whole section is absent */
			continue;
		}
		struct page *page = pfn_to_page(pfn);
		if (!page->_refcount)
			continue;
		struct kmemleak_object *self = kml.nr_page_objects ?
			lookup((u64)__va(pfn << PAGE_SHIFT)) : NULL;
		scan_block((u64)page, (u64)(page + 1), self);
	}
}

static void scan_gray_list(void)
{
	for (struct kmemleak_object *o = kml.gray_head; o; o = o->gray_next)
		scan_object(o);
}

/* --- the report ---------------------------------------------------------------------- */

/* crc32(0, p, len) as Linux's crc32_le: reflected 0xedb88320, no inversion. */
static u32 crc32_le(u32 crc, const u8 *p, u64 len)
{
	while (len--)
		crc = (crc >> 8) ^ kml.crc_table[(crc ^ *p++) & 0xff];
	return crc;
}

static void crc32_init(void)
{
	for (u32 i = 0; i < 256; i++) {
		u32 c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (c & 1 ? 0xedb88320U : 0);
		kml.crc_table[i] = c;
	}
}

/*
 * Where a report goes (Linux's warn_or_seq_printf): the console when seq is
 * NULL, else the text buffer the host reads (/sys/kernel/debug/kmemleak's).
 */
struct seq_buf {
	char *buf;
	u64 size, len;
};

static __printf(2, 3) void seq_or_printk(struct seq_buf *seq, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (!seq)
		vprintk(fmt, ap);
	else if (seq->len < seq->size)
		seq->len += vscnprintf(seq->buf + seq->len, seq->size - seq->len, fmt, ap);
	va_end(ap);
}

/* print_hex_dump(DUMP_PREFIX_NONE, rowsize 16, groupsize 1, ascii) with prefix "    ". */
static void hex_dump_line(struct seq_buf *seq, const u8 *p, u64 len)
{
	char line[HEX_ROW_SIZE * 4 + 2];
	u64 lx = 0;
	len = min_t(u64, len, HEX_ROW_SIZE);
	static const char hex[] = "0123456789abcdef";
	for (u64 j = 0; j < len; j++) {
		if (j)
			line[lx++] = ' ';
		line[lx++] = hex[p[j] >> 4];
		line[lx++] = hex[p[j] & 15];
	}
	while (lx < HEX_ROW_SIZE * 3 + 1) /* the ASCII column: rowsize * 2 + rowsize + 1 */
		line[lx++] = ' ';
	for (u64 j = 0; j < len; j++)
		line[lx++] = p[j] >= 0x20 && p[j] < 0x7f ? (char)p[j] : '.';
	line[lx] = 0;
	seq_or_printk(seq, "    %s\n", line);
}

static void hex_dump_object(struct seq_buf *seq, const struct kmemleak_object *o)
{
	u64 len = min_t(u64, o->size, HEX_MAX_LINES * HEX_ROW_SIZE);
	seq_or_printk(seq, "  hex dump (first %llu bytes):\n", len);
	for (u64 i = 0; i < len; i += HEX_ROW_SIZE)
		hex_dump_line(seq, (const u8 *)o->pointer + i, min_t(u64, len - i, HEX_ROW_SIZE));
}

/* One object as /sys/kernel/debug/kmemleak shows it (6.7's backtrace line, with crc). */
static void print_unreferenced(struct seq_buf *seq, const struct kmemleak_object *o)
{
	seq_or_printk(seq, "unreferenced object 0x%08llx (size %llu):\n", o->pointer, o->size);
	seq_or_printk(seq, "  comm \"%s\", pid %d, jiffies %llu\n", o->comm, o->pid, o->jiffies);
	hex_dump_object(seq, o);
	seq_or_printk(seq, "  backtrace (crc %x):\n", o->checksum);
	for (u32 i = 0; i < o->trace_len; i++)
		seq_or_printk(seq, "    [<%px>] %pS\n", (void *)o->trace[i], (void *)o->trace[i]);
}

/* A kmemleak event: args[0] the object, args[1] its size; trace its allocation stack. */
static void report_event(const struct kmemleak_object *o)
{
	struct kmemu_event ev = { .type = KMEMU_EV_KMEMLEAK };
	ev.args[0] = o->pointer;
	ev.args[1] = o->size;
	ev.args[2] = o->serial;
	ev.nr_trace = o->trace_len;
	memcpy(ev.trace, o->trace, o->trace_len * sizeof(u64));
	snprintf(ev.msg, sizeof(ev.msg), "unreferenced object 0x%08llx (size %llu)", o->pointer,
		 o->size);
	host_event(&ev);
}

/*
 * The unreferenced objects: each gets its checksum and goes into
 * kmemleak_leaks[]; the new ones are marked reported, printed and reported as
 * events, then the count is printed, as Linux's verbose scan does.
 */
static u64 collect_leaks(void)
{
	u64 new_leaks = 0;
	kmemleak_nr_leaks = 0;
	for (struct kmemleak_object *o = kml.head; o; o = o->next) {
		if (!color_white(o))
			continue;
		o->checksum = crc32_le(0, (const u8 *)o->pointer, o->size);
		kmemleak_leaks[kmemleak_nr_leaks++] = o;
		o->flags &= ~OBJECT_NEW;
		if (o->flags & OBJECT_REPORTED)
			continue;
		o->flags |= OBJECT_REPORTED | OBJECT_NEW;
		print_unreferenced(NULL, o);
		report_event(o);
		new_leaks++;
	}
	if (new_leaks)
		pr_info("kmemleak: %llu new suspected memory leaks (see /sys/kernel/debug/kmemleak)\n",
			new_leaks);
	return new_leaks;
}

#define TEXT_PER_OBJECT 3072 /* the longest report: 16 frames of up to ~150 bytes, and the rest */

/*
 * The last scan's unreferenced objects as the debugfs file shows them, in
 * kmemleak_text (a nested vmalloc, so never tracked): the host's per-object text.
 */
static void format_leaks(void)
{
	u64 want = kmemleak_nr_leaks * TEXT_PER_OBJECT + 1;
	kmemleak_text_len = 0;
	if (!reserve((void **)&kmemleak_text, &kml.text_cap, want, 1))
		return;
	struct seq_buf seq = { kmemleak_text, kml.text_cap, 0 };
	for (u64 i = 0; i < kmemleak_nr_leaks; i++)
		print_unreferenced(&seq, kmemleak_leaks[i]);
	kmemleak_text_len = seq.len;
}

/*
 * Scan with the stack live from sp up; returns the number of new suspected
 * leaks (printed), or -1 as u64 when kmemleak is off or there was no memory
 * for the index or the result.
 */
u64 kmemleak_scan_from(u64 sp)
{
	if (!kmemleak_enabled)
		return (u64)-1;
	/* room first (vmalloc may sleep); the count only changes with interrupts on */
	u64 room = kml.nr_objects + 64;
	if (!reserve((void **)&kml.index, &kml.index_cap, room, sizeof(*kml.index)) ||
	    !reserve((void **)&kmemleak_leaks, &kml.leaks_cap, room, sizeof(*kmemleak_leaks)))
		return (u64)-1;
	unsigned long irqflags;
	local_irq_save(irqflags);
	u64 new_leaks = (u64)-1;
	if (kml.nr_objects <= kml.index_cap) {
		build_index();
		for (struct kmemleak_object *o = kml.head; o; o = o->next)
			if (color_gray(o))
				gray_append(o);
		scan_roots(sp);
		scan_struct_pages();
		scan_gray_list();
		new_leaks = collect_leaks();
	}
	local_irq_restore(irqflags);
	format_leaks();
	return new_leaks;
}

/* Linux's "echo clear": the reported leaks turn gray for good (never reported again). */
void kmemleak_clear(void)
{
	for (struct kmemleak_object *o = kml.head; o; o = o->next)
		if ((o->flags & OBJECT_REPORTED) && color_white(o))
			o->min_count = KMEMLEAK_GREY;
	kmemleak_nr_leaks = 0;
	kmemleak_text_len = 0;
}

/* The host's scan: the idle stack pointer it passes is where the live stack starts. */
u64 kmemleak_scan_host(u64 idle_sp)
{
	return kmemleak_scan_from(idle_sp);
}

/*
 * Without a host (QEMU): one scan after the self-tests and KUnit suites, with
 * the stack live from here up; 1 if it found unreferenced objects (they are
 * printed), so the run fails, else 0.  Linux's scan thread does its first
 * scan a minute after boot; kmemu's QEMU run ends before that.
 */
int kmemleak_late_scan(void)
{
	if (!kmemleak_enabled)
		return 0;
	u64 n = kmemleak_scan_from((u64)__builtin_frame_address(0));
	return n != (u64)-1 && kmemleak_nr_leaks ? 1 : 0;
}

/* kmemleak=on: the caches and the hooks (after kmem_cache_init). */
void kmemleak_init(const char *cmdline)
{
	const char *v = cmdline_find(cmdline, "kmemleak");
	if (!v || strncmp(v, "on", 2) || (v[2] && v[2] != ' '))
		return;
	crc32_init();
	kml.object_cache = kmem_cache_create("kmemleak_object", sizeof(struct kmemleak_object), 0,
					     SLAB_NOLEAKTRACE | SLAB_PANIC, NULL);
	kml.area_cache = kmem_cache_create("kmemleak_scan_area", sizeof(struct kmemleak_scan_area),
					   0, SLAB_NOLEAKTRACE | SLAB_PANIC, NULL);
	kmemleak_enabled = true;
	static_branch_enable(&kmemleak_key);
	static_branch_inc(&slab_hooks_key); /* the allocators' hooks: <kmemu/alloc_hooks.h> */
	static_branch_inc(&page_hooks_key);
	pr_info("kmemleak: Kernel memory leak detector initialized\n");
}
