/*
 * slab_debug.c - SLUB-style debugging: slab_debug=FZPU on the command line,
 * for every cache or for named ones ("slab_debug=FZ,kmalloc-64,widgets").
 *
 *   F  consistency checks on free: the pointer must be an object start of
 *      this cache, not already free ("Invalid object pointer", "Object
 *      already free", "Wrong slab cache")
 *   Z  red zones around each object: 0xbb while free, 0xcc while allocated;
 *      for kmalloc the active red zone starts at the requested size
 *   P  poisoning: a free object holds 0x6b ... 0x6b 0xa5; a changed byte
 *      is a use after free ("Poison overwritten")
 *   U  owner tracking: the allocating and freeing call sites and stacks
 *
 * Each problem prints a report in Linux's shape (BUG <cache> (<taint>):
 * <what>, INFO lines, hex dumps, FIX <cache>: Restoring ...), reaches the
 * host as a KMEMU_EV_SLAB event, is repaired where the bytes are known, and
 * counts in cache->errors.  Debug caches do their checks outside the fast
 * path's interrupts-off window; the object being checked belongs to the
 * caller at that point.
 */
#include <linux/bug.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <kmemu/abi.h>
#include <kmemu/log.h>
#include <kmemu/memlayout.h>
#include <kmemu/page_alloc.h>
#include <kmemu/slub.h>
#include <kmemu/traps.h>

#define TRACK_ALLOC 0
#define TRACK_FREE 1

static slab_flags_t debug_flags;       /* from slab_debug= */
static char debug_names[256];          /* comma-separated cache names, empty: all */
u64 kmalloc_orig_size(struct kmem_cache *s, const void *obj);

/* --- configuration ------------------------------------------------------------ */

void slab_debug_setup(const char *cmdline)
{
	const char *v = cmdline_find(cmdline, "slab_debug");
	if (!v)
		v = cmdline_find(cmdline, "slub_debug"); /* the older name */
	if (!v)
		return;
	if (*v == 0 || *v == ' ' || *v == ',') {
		debug_flags = SLAB_DEBUG_FLAGS; /* bare slab_debug: everything */
	}
	for (; *v && *v != ' ' && *v != ','; v++) {
		switch (*v) {
		case 'F': case 'f': debug_flags |= SLAB_CONSISTENCY_CHECKS; break;
		case 'Z': case 'z': debug_flags |= SLAB_RED_ZONE; break;
		case 'P': case 'p': debug_flags |= SLAB_POISON; break;
		case 'U': case 'u': debug_flags |= SLAB_STORE_USER; break;
		case '-': debug_flags = 0; break;
		default: printk("slab_debug: unknown option '%c' ignored\n", *v); break;
		}
	}
	if (*v == ',') {
		size_t n = 0;
		for (v++; *v && *v != ' ' && n + 1 < sizeof(debug_names); v++)
			debug_names[n++] = *v;
		debug_names[n] = 0;
	}
}

slab_flags_t slab_debug_flags_for(const char *name)
{
	if (!debug_flags || !debug_names[0])
		return debug_flags;
	size_t len = strlen(name);
	for (const char *p = debug_names; *p;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == len && !strncmp(p, name, n))
			return debug_flags;
		p += n + (e ? 1 : 0);
	}
	return 0;
}

/* --- object layout helpers ---------------------------------------------------------- */

static struct track *get_track(struct kmem_cache *s, void *obj, int which)
{
	return (struct track *)((u8 *)obj + s->track_offset) + which;
}

static void set_track(struct kmem_cache *s, void *obj, int which, u64 caller)
{
	if (!(s->flags & SLAB_STORE_USER))
		return;
	struct track *t = get_track(s, obj, which);
	memset(t, 0, sizeof(*t));
	t->addr = caller;
	/* + the allocator's frames below the caller: up to 8 (kcalloc -> kmalloc_other ->
	 * the hooks -> slab_post_alloc -> alloc_debug_processing -> here, and more) */
	u64 trace[TRACK_DEPTH + 8];
	int n = save_stack_trace((u64)__builtin_frame_address(0), trace, TRACK_DEPTH + 8);
	/* skip the allocator's own frames: keep what is above the caller */
	int k = 0;
	for (int i = 0; i < n && k < TRACK_DEPTH; i++)
		if (trace[i] == caller || k)
			t->stack[k++] = trace[i];
}

static void set_orig_size(struct kmem_cache *s, void *obj, u64 size)
{
	if (s->orig_size_offset)
		*(u64 *)((u8 *)obj + s->orig_size_offset) = size;
}

static void init_object(struct kmem_cache *s, void *obj, u8 red)
{
	u8 *p = obj;
	if (s->flags & SLAB_RED_ZONE) {
		memset(p - s->red_left_pad, red, s->red_left_pad);
		u64 start = red == SLUB_RED_ACTIVE ? kmalloc_orig_size(s, obj) : s->object_size;
		memset(p + start, red, s->inuse - start);
	}
	if ((s->flags & SLAB_POISON) && red == SLUB_RED_INACTIVE) {
		memset(p, POISON_FREE, s->object_size - 1);
		p[s->object_size - 1] = POISON_END;
	}
}

/* Bytes after the metadata up to the next object's left red zone. */
static u64 pad_start(struct kmem_cache *s)
{
	u64 end = s->inuse;
	if (s->offset >= s->inuse)
		end = s->offset + 8;
	if (s->track_offset)
		end = s->track_offset + 2 * sizeof(struct track);
	if (s->orig_size_offset)
		end = s->orig_size_offset + 8;
	return end;
}

void setup_object_debug(struct kmem_cache *s, void *obj)
{
	set_orig_size(s, obj, s->object_size);
	init_object(s, obj, SLUB_RED_INACTIVE);
	if (s->flags & SLAB_POISON) {
		u64 start = pad_start(s), end = s->size - s->red_left_pad;
		if (end > start)
			memset((u8 *)obj + start, POISON_INUSE, end - start);
	}
}

/* --- reports ------------------------------------------------------------------------- */

static struct kmemu_event ev;

static void slab_bug(struct kmem_cache *s, const char *what)
{
	printk("=============================================================================\n");
	printk("BUG %s (%s): %s\n", s->name, print_tainted(), what);
	printk("-----------------------------------------------------------------------------\n\n");
	memset(&ev, 0, sizeof(ev));
	ev.type = KMEMU_EV_SLAB;
	snprintf(ev.msg, sizeof(ev.msg), "BUG %s (%s): %s", s->name, print_tainted(), what);
	ev.args[0] = (u64)s;
}

static void print_track(const char *what, struct track *t)
{
	if (!t->addr)
		return;
	printk("INFO: %s in %pS age=0 cpu=0 pid=0\n", what, (void *)t->addr);
	for (int i = 0; i < TRACK_DEPTH && t->stack[i]; i++)
		printk(" %pS\n", (void *)t->stack[i]);
}

static void hex_dump(const char *label, const u8 *p, u64 len)
{
	char line[100];
	for (u64 off = 0; off < len; off += 16) {
		int n = snprintf(line, sizeof(line), "%-8s %016llx: ", label, (u64)(p + off));
		for (u64 i = off; i < off + 16 && i < len; i++)
			n += snprintf(line + n, sizeof(line) - n, "%02x ", p[i]);
		printk("%s\n", line);
	}
}

static void print_trailer(struct kmem_cache *s, struct page *slab, u8 *obj)
{
	if (s->flags & SLAB_STORE_USER) {
		print_track("Allocated", get_track(s, obj, TRACK_ALLOC));
		print_track("Freed", get_track(s, obj, TRACK_FREE));
	}
	printk("Slab 0x%016llx objects=%u used=%u fp=0x%016llx flags=0x%llx\n", (u64)slab,
	       slab_objects(slab), slab_inuse(slab), (u64)slab->freelist, slab->flags);
	printk("Object 0x%016llx @offset=%llu fp=0x%016llx\n\n", (u64)obj,
	       (u64)(obj - (u8 *)page_address(slab)), (u64)get_freepointer(s, obj));
	if (s->flags & SLAB_RED_ZONE)
		hex_dump("Redzone", obj - s->red_left_pad, s->red_left_pad);
	hex_dump("Object", obj, min_t(u64, s->object_size, 128));
	if (s->flags & SLAB_RED_ZONE)
		hex_dump("Redzone", obj + s->object_size, s->inuse - s->object_size);
}

static void report_done(struct kmem_cache *s, struct page *slab, void *obj, u64 offset)
{
	s->errors++;
	ev.args[1] = (u64)obj;
	ev.args[2] = offset;
	ev.args[3] = (u64)slab;
	ev.nr_trace = save_stack_trace((u64)__builtin_frame_address(0), ev.trace, KMEMU_EV_TRACE);
	host_event(&ev);
	(void)s;
}

/* Bytes of [start, start + len) that are not value: report, restore, count. */
static bool check_bytes(struct kmem_cache *s, struct page *slab, u8 *obj, const char *what,
			u8 *start, u8 value, u64 len)
{
	u8 *fault = NULL;
	for (u64 i = 0; i < len; i++)
		if (start[i] != value) {
			fault = start + i;
			break;
		}
	if (!fault)
		return true;
	u8 *end = start + len;
	while (end > fault && end[-1] == value)
		end--;
	char head[64];
	snprintf(head, sizeof(head), "%s overwritten", what);
	slab_bug(s, head);
	printk("INFO: 0x%016llx-0x%016llx @offset=%llu. First byte 0x%x instead of 0x%x\n", (u64)fault,
	       (u64)end - 1, (u64)(fault - (u8 *)page_address(slab)), *fault, value);
	print_trailer(s, slab, obj);
	report_done(s, slab, obj, (u64)(fault - obj));
	memset(fault, value, (u64)(end - fault));
	printk("FIX %s: Restoring %s 0x%016llx-0x%016llx=0x%x\n\n", s->name, what, (u64)fault,
	       (u64)end - 1, value);
	return false;
}

static bool check_object(struct kmem_cache *s, struct page *slab, u8 *obj, u8 val)
{
	bool ok = true;
	if (s->flags & SLAB_RED_ZONE) {
		ok &= check_bytes(s, slab, obj, "Left Redzone", obj - s->red_left_pad, val,
				  s->red_left_pad);
		u64 start = val == SLUB_RED_ACTIVE ? kmalloc_orig_size(s, obj) : s->object_size;
		ok &= check_bytes(s, slab, obj, "Right Redzone", obj + start, val, s->inuse - start);
	}
	if ((s->flags & SLAB_POISON) && val == SLUB_RED_INACTIVE) {
		ok &= check_bytes(s, slab, obj, "Poison", obj, POISON_FREE, s->object_size - 1);
		ok &= check_bytes(s, slab, obj, "Poison", obj + s->object_size - 1, POISON_END, 1);
	}
	if (s->flags & SLAB_POISON) {
		u64 start = pad_start(s), end = s->size - s->red_left_pad;
		if (end > start)
			ok &= check_bytes(s, slab, obj, "Object padding", obj + start, POISON_INUSE,
					  end - start);
	}
	return ok;
}

static bool valid_pointer(struct kmem_cache *s, struct page *slab, void *p)
{
	u8 *base = (u8 *)page_address(slab) + s->red_left_pad;
	u64 off = (u64)((u8 *)p - base);
	return (u8 *)p >= base && off % s->size == 0 && off / s->size < slab_objects(slab);
}

static void object_err(struct kmem_cache *s, struct page *slab, void *obj, const char *what);

/* Walk one hardened chain; a pointer outside the slab ends it (reported, repaired). */
static bool chain_has(struct kmem_cache *s, struct page *slab, void **headp, void *search)
{
	void *prev = NULL, *fp = *headp;
	for (u32 n = 0; fp && n <= slab_objects(slab); n++) {
		if (!valid_pointer(s, slab, fp)) {
			if (prev) {
				object_err(s, slab, prev, "Freechain corrupt");
				set_freepointer_raw(s, prev, NULL);
			} else {
				slab_bug(s, "Freepointer corrupt");
				report_done(s, slab, fp, 0);
				*headp = NULL;
			}
			printk("FIX %s: Isolate corrupted freechain\n", s->name);
			return false;
		}
		if (fp == search)
			return true;
		prev = fp;
		fp = get_freepointer(s, fp);
	}
	return false;
}

static bool on_freelist(struct kmem_cache *s, struct page *slab, void *search)
{
	if (chain_has(s, slab, &slab->freelist, search))
		return true;
	return slab == s->cpu_slab.slab && chain_has(s, slab, &s->cpu_slab.freelist, search);
}

/*
 * Call fn(s, slab, obj, is_free, arg) for every object of every slab of s,
 * found by scanning mem_map for PG_slab pages (full slabs are on no list).
 */
typedef void (*object_fn)(struct kmem_cache *s, struct page *slab, u8 *obj, bool is_free,
			  void *arg);

static void for_each_object(struct kmem_cache *s, object_fn fn, void *arg)
{
	unsigned long flags;
	local_irq_save(flags);
	for (u64 pfn = 0; pfn < max_pfn; pfn++) {
		if (!pfn_valid(pfn))
			continue;
		struct page *slab = pfn_to_page(pfn);
		if (!PageSlab(slab) || slab->slab_cache != s)
			continue;
		u8 *base = (u8 *)page_address(slab) + s->red_left_pad;
		for (u32 i = 0; i < slab_objects(slab); i++) {
			u8 *obj = base + (u64)i * s->size;
			fn(s, slab, obj, on_freelist(s, slab, obj), arg);
		}
	}
	local_irq_restore(flags);
}

static void leaked_one(struct kmem_cache *s, struct page *slab, u8 *obj, bool is_free, void *arg)
{
	u64 *n = arg;
	(void)s;
	if (is_free)
		return;
	printk("Object 0x%016llx @offset=%llu\n", (u64)obj, (u64)(obj - (u8 *)page_address(slab)));
	if (*n < 4)
		ev.args[4 + *n] = (u64)obj;
	(*n)++;
}

/* List what is still allocated when a cache is destroyed. */
void list_leaked_objects(struct kmem_cache *s)
{
	char what[80];
	snprintf(what, sizeof(what), "Objects remaining in %s on __kmem_cache_shutdown()", s->name);
	slab_bug(s, what);
	u64 n = 0;
	for_each_object(s, leaked_one, &n);
	report_done(s, NULL, NULL, n);
}

static void object_err(struct kmem_cache *s, struct page *slab, void *obj, const char *what)
{
	if (!slab) {
		slab_bug(s, what);
		report_done(s, slab, obj, 0);
		return;
	}
	slab_bug(s, what);
	print_trailer(s, slab, obj);
	report_done(s, slab, obj, 0);
}

bool alloc_debug_processing(struct kmem_cache *s, struct page *slab, void *obj, u64 orig_size,
			    u64 caller)
{
	check_object(s, slab, obj, SLUB_RED_INACTIVE);
	set_orig_size(s, obj, orig_size);
	init_object(s, obj, SLUB_RED_ACTIVE);
	set_track(s, obj, TRACK_ALLOC, caller);
	return true;
}

bool free_debug_processing(struct kmem_cache *s, struct page *slab, void *obj, u64 caller)
{
	if (s->flags & SLAB_CONSISTENCY_CHECKS) {
		if (slab->slab_cache != s) {
			char what[96];
			snprintf(what, sizeof(what), "Wrong slab cache. %s but object is from %s", s->name,
				 ((struct kmem_cache *)slab->slab_cache)->name);
			object_err(s, slab, obj, what);
			return false;
		}
		u8 *base = (u8 *)page_address(slab) + s->red_left_pad;
		u64 off = (u64)((u8 *)obj - base);
		if ((u8 *)obj < base || off % s->size || off / s->size >= slab_objects(slab)) {
			char what[64];
			snprintf(what, sizeof(what), "Invalid object pointer 0x%016llx", (u64)obj);
			slab_bug(s, what);
			report_done(s, slab, obj, 0);
			return false;
		}
		if (on_freelist(s, slab, obj)) {
			object_err(s, slab, obj, "Object already free");
			return false;
		}
	}
	/* red zone damage is reported and repaired; the object is freed anyway */
	check_object(s, slab, obj, SLUB_RED_ACTIVE);
	set_track(s, obj, TRACK_FREE, caller);
	init_object(s, obj, SLUB_RED_INACTIVE);
	return true;
}

/*
 * Walk every slab of the cache (by scanning mem_map for PG_slab pages that
 * belong to it) and check every object: free ones inactive and poisoned,
 * allocated ones with active red zones.  Returns the errors found.
 */
static void check_one(struct kmem_cache *s, struct page *slab, u8 *obj, bool is_free, void *arg)
{
	(void)arg;
	if (s->flags & (SLAB_RED_ZONE | SLAB_POISON))
		check_object(s, slab, obj, is_free ? SLUB_RED_INACTIVE : SLUB_RED_ACTIVE);
}

u64 validate_slab_cache(struct kmem_cache *s)
{
	u64 before = s->errors;
	for_each_object(s, check_one, NULL);
	return s->errors - before;
}

/* krealloc in place: the kmalloc red zone moves to the new requested size. */
void kmalloc_update_orig_size(struct kmem_cache *s, void *obj, u64 size)
{
	if (!(s->flags & SLAB_DEBUG_FLAGS) || !s->orig_size_offset)
		return;
	set_orig_size(s, obj, size);
	init_object(s, obj, SLUB_RED_ACTIVE);
}
