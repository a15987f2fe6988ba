/*
 * kasan/report.c - KASAN's reports, in Linux's words and layout
 * (mm/kasan/report.c, report_generic.c; 6.4's kind names, which split
 * slab-use-after-free from use-after-free and double-free from invalid-free):
 *
 *   ==================================================================
 *   BUG: KASAN: slab-out-of-bounds in mydev_fill+0x3c/0x80 [mydev]
 *   Write of size 1 at addr ffff888003a4c012 by task swapper/0
 *   <CPU line and call trace>
 *   Allocated by task 0: / Freed by task 0:   <their stacks>
 *   The buggy address belongs to the object at ... which belongs to the cache ...
 *   The buggy address is located 0 bytes to the right of
 *    allocated 18-byte region [..., ...)
 *   Memory state around the buggy address:   <five rows of shadow, caret under it>
 *   ==================================================================
 *
 * Each report taints the kernel 'B' (as Linux does), is kept in
 * kasan_records[] (the host reads the stacks from there) and becomes a kasan
 * event; inside a KUnit case it instead marks the case (KUNIT_EXPECT_KASAN_FAIL
 * expects it; any other case fails), as Linux's kasan_kunit hooks do.
 * Checks are off while a report prints (kasan_depth).
 */
#include <linux/types.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/string.h>
#include <linux/align.h>
#include <linux/vmalloc.h>
#include <kmemu/vmap.h>
#include <kunit/test.h>
#include <kmemu/abi.h>
#include <kmemu/memlayout.h>
#include <kmemu/slub.h>
#include <kmemu/traps.h>
#include <kmemu/mmzone.h>
#include <kmemu/page_alloc.h>
#include "kasan.h"

struct kasan_record kasan_records[KASAN_RECORDS];
u64 kasan_nr_reports;   /* reports so far; the last is kasan_records[(n - 1) % KASAN_RECORDS] */

static const char *const kind_names[] = {
	[KASAN_KIND_UNKNOWN] = "unknown-crash",
	[KASAN_KIND_SLAB_OOB] = "slab-out-of-bounds",
	[KASAN_KIND_SLAB_UAF] = "slab-use-after-free",
	[KASAN_KIND_DOUBLE_FREE] = "double-free",
	[KASAN_KIND_INVALID_FREE] = "invalid-free",
	[KASAN_KIND_VMALLOC_OOB] = "vmalloc-out-of-bounds",
	[KASAN_KIND_UAF] = "use-after-free",
	[KASAN_KIND_GLOBAL_OOB] = "global-out-of-bounds",
	[KASAN_KIND_STACK_OOB] = "stack-out-of-bounds",
	[KASAN_KIND_ALLOCA_OOB] = "alloca-out-of-bounds",
	[KASAN_KIND_WILD] = "wild-memory-access",
};

/* The KUnit case running now, and whether it expects a report (kunit.c sets it). */
extern struct kunit *kunit_current;
bool kasan_kunit_expecting;
bool kasan_kunit_found;

/* The bug's kind from the shadow of the first bad byte (report_generic.c). */
static enum kasan_kind kind_of(u64 first_bad)
{
	u8 *s = kasan_mem_to_shadow(first_bad);
	u8 v = *s;
	if (v > 0 && v <= KASAN_GRANULE_MASK)
		v = s[1]; /* a partial granule: the next says why */
	switch (v) {
	case KASAN_PAGE_REDZONE:
	case KASAN_SLAB_REDZONE:
		return KASAN_KIND_SLAB_OOB;
	case KASAN_GLOBAL_REDZONE:
		return KASAN_KIND_GLOBAL_OOB;
	case KASAN_STACK_LEFT:
	case KASAN_STACK_MID:
	case KASAN_STACK_RIGHT:
	case KASAN_STACK_PARTIAL:
		return KASAN_KIND_STACK_OOB;
	case KASAN_PAGE_FREE:
		return KASAN_KIND_UAF;
	case KASAN_SLAB_FREE:
		return KASAN_KIND_SLAB_UAF;
	case KASAN_ALLOCA_LEFT:
	case KASAN_ALLOCA_RIGHT:
		return KASAN_KIND_ALLOCA_OOB;
	case KASAN_VMALLOC_INVALID:
		return KASAN_KIND_VMALLOC_OOB;
	}
	return KASAN_KIND_UNKNOWN;
}

static void print_track(const char *what, const struct kasan_track *t)
{
	printk("%s by task %u:\n", what, t->pid);
	for (u32 i = 0; i < t->nr; i++)
		printk(" %pS\n", (void *)t->stack[i]);
	printk("\n");
}

/* Allocated/Freed stacks and where in the object the address is. */
static void describe_object(struct kasan_record *r, struct kasan_meta *m, struct kmem_cache *s)
{
	u64 obj = r->object;
	bool freed = *(s8 *)kasan_mem_to_shadow(obj) == (s8)KASAN_SLAB_FREE;
	r->alloc = m->alloc;
	if (freed)
		r->free = m->free;
	if (m->alloc.nr)
		print_track("Allocated", &m->alloc);
	if (freed && m->free.nr)
		print_track("Freed", &m->free);
	printk("The buggy address belongs to the object at %px\n"
	       " which belongs to the cache %s of size %u\n", (void *)obj, s->name, s->object_size);
	u64 size = freed ? s->object_size : m->requested;
	r->object_size = size;
	const char *rel = "inside of";
	u64 bytes = r->addr - obj;
	if (r->addr < obj) {
		rel = "to the left of";
		bytes = obj - r->addr;
	} else if (r->addr >= obj + size) {
		rel = "to the right of";
		bytes = r->addr - (obj + size);
	}
	printk("The buggy address is located %llu bytes %s\n"
	       " %s%llu-byte region [%px, %px)\n\n", bytes, rel, freed ? "freed " : "allocated ",
	       size, (void *)obj, (void *)(obj + size));
}

#define KASAN_STACK_FRAME_MAGIC 0x41B58AB3 /* GCC's frame header: magic, description, pc */

static bool parse_u64(const char **s, u64 *v)
{
	while (**s == ' ')
		(*s)++;
	if (**s < '0' || **s > '9')
		return false;
	*v = simple_strtoull(*s, (char **)s, 10);
	return true;
}

/* GCC's frame description "N off size len name[:line] ...": one line per object. */
static void print_frame_objects(const char *d)
{
	u64 n, off, size, len;
	if (!parse_u64(&d, &n))
		return;
	printk("This frame has %llu %s:\n", n, n == 1 ? "object" : "objects");
	while (n-- && parse_u64(&d, &off) && parse_u64(&d, &size) && parse_u64(&d, &len)) {
		while (*d == ' ')
			d++;
		char name[64];
		u64 k = 0;
		for (; k < len && k < sizeof(name) - 1 && d[k] && d[k] != ':'; k++)
			name[k] = d[k];
		name[k] = 0;
		d += len;
		printk(" [%llu, %llu) '%s'\n", off, off + size, name);
	}
}

/* The stack of the one task: which frame the address is in, from GCC's frame header
 * (Linux's print_address_stack_frame). */
static bool describe_stack(u64 addr)
{
	extern char boot_stack[], boot_stack_top[];
	if (addr < (u64)boot_stack || addr >= (u64)boot_stack_top)
		return false;
	printk("The buggy address belongs to stack of task swapper/0\n");
	u64 a = ALIGN_DOWN(addr, KASAN_GRANULE_SIZE);
	/* back over the frame to its left red zone, then to that zone's start */
	while (a > (u64)boot_stack && *kasan_mem_to_shadow(a) != KASAN_STACK_LEFT)
		a -= KASAN_GRANULE_SIZE;
	while (a > (u64)boot_stack && *kasan_mem_to_shadow(a - KASAN_GRANULE_SIZE) == KASAN_STACK_LEFT)
		a -= KASAN_GRANULE_SIZE;
	const u64 *frame = (const u64 *)a;
	if (*kasan_mem_to_shadow(a) != KASAN_STACK_LEFT || frame[0] != KASAN_STACK_FRAME_MAGIC) {
		printk("\n");
		return true;
	}
	printk(" and is located at offset %llu in frame:\n %pS\n\n", addr - a, (void *)frame[2]);
	print_frame_objects((const char *)frame[1]);
	printk("\n");
	return true;
}

static void describe_address(struct kasan_record *r)
{
	void *obj;
	struct kmem_cache *s;
	struct kasan_meta *m = kasan_object_of(r->addr, &obj, &s);
	if (m) {
		r->object = (u64)obj;
		r->cache_size = s->object_size;
		strscpy(r->cache, s->name, sizeof(r->cache));
		describe_object(r, m, s);
		return;
	}
	if (describe_stack(r->addr))
		return;
	if ((r->addr >= (u64)_stext && r->addr < (u64)__kernel_end) ||
	    (r->addr >= MODULES_VADDR && r->addr < MODULES_END)) {
		/* kernel_or_module_addr(): a global (GCC's red zone follows each one) */
		printk("The buggy address belongs to the variable:\n %pS\n\n", (void *)r->addr);
		return;
	}
	if (is_vmalloc_addr((void *)r->addr)) {
		struct vm_struct *vm = find_vm_area((void *)r->addr);
		if (vm) {
			r->object = (u64)vm->addr;
			r->object_size = vm->size;
			printk("The buggy address belongs to the virtual mapping at\n"
			       " [%px, %px) created by:\n %pS\n\n", vm->addr,
			       (void *)((u64)vm->addr + vm->size), (void *)vm->caller);
		}
		return;
	}
	if (r->addr >= PAGE_OFFSET && virt_addr_valid(r->addr)) {
		struct page *p = virt_to_page((void *)r->addr);
		printk("The buggy address belongs to the physical page:\n"
		       "page:%px refcount:%d pfn:0x%lx\n\n", p, p->_refcount, page_to_pfn(p));
	}
}

/* Five rows of 16 shadow bytes around addr, the caret under its byte. */
static void print_memory_metadata(u64 addr)
{
	u64 row = ALIGN_DOWN(addr, 128) - 2 * 128;
	printk("Memory state around the buggy address:\n");
	for (int i = -2; i <= 2; i++, row += 128) {
		char line[80], *p = line;
		p += snprintf(p, 20, "%c%px:", i ? ' ' : '>', (void *)row);
		const u8 *s = kasan_mem_to_shadow(row);
		for (int j = 0; j < 16; j++)
			p += snprintf(p, 4, " %02x", s[j]);
		printk("%s\n", line);
		if (!i) { /* the caret under the shadow byte of addr */
			u64 col = 3 + 16 + (addr - row) / KASAN_GRANULE_SIZE * 3;
			__memset(line, ' ', col);
			line[col] = '^';
			line[col + 1] = 0;
			printk("%s\n", line);
		}
	}
}

/* The report's start: KUnit bookkeeping; false when the report is to be skipped. */
static struct kasan_record *start_report(void)
{
	kasan_depth++;
	struct kasan_record *r = &kasan_records[kasan_nr_reports % KASAN_RECORDS];
	memset(r, 0, sizeof(*r));
	printk("==================================================================\n");
	return r;
}

static void end_report(struct kasan_record *r, u64 first_bad)
{
	print_memory_metadata(first_bad);
	printk("==================================================================\n");
	taint_flags |= TAINT_BAD_PAGE;
	u64 slot = kasan_nr_reports % KASAN_RECORDS;
	kasan_nr_reports++;
	if (kunit_current) {
		if (kasan_kunit_expecting)
			kasan_kunit_found = true;
		else
			kunit_set_failure(kunit_current);
	} else {
		static struct kmemu_event ev;
		memset(&ev, 0, sizeof(ev));
		ev.type = KMEMU_EV_KASAN;
		snprintf(ev.msg, sizeof(ev.msg), "BUG: KASAN: %s in %pS", kind_names[r->kind],
			 (void *)r->ip);
		u64 args[8] = { r->kind, r->addr, r->size, r->write, r->ip, r->object,
				r->object_size, slot };
		memcpy(ev.args, args, sizeof(args));
		ev.nr_trace = save_stack_trace((u64)__builtin_frame_address(0), ev.trace,
					       KMEMU_EV_TRACE);
		host_event(&ev);
	}
	kasan_depth--;
}

void kasan_report(u64 addr, u64 size, bool write, u64 ip)
{
	if (kasan_depth)
		return;
	struct kasan_record *r = start_report();
	u64 first_bad = addr + size < addr ? addr : kasan_first_bad(addr, size);
	r->kind = addr + size < addr ? KASAN_KIND_WILD : kind_of(first_bad);
	r->addr = addr;
	r->size = size;
	r->write = write;
	r->ip = ip;
	printk("BUG: KASAN: %s in %pS\n", kind_names[r->kind], (void *)ip);
	printk("%s of size %llu at addr %px by task swapper/0\n\n", write ? "Write" : "Read", size,
	       (void *)addr);
	dump_stack();
	printk("\n");
	describe_address(r);
	end_report(r, first_bad);
}

void kasan_report_invalid_free(void *obj, u64 ip, enum kasan_kind kind)
{
	if (kasan_depth)
		return;
	struct kasan_record *r = start_report();
	r->kind = kind;
	r->addr = (u64)obj;
	r->ip = ip;
	r->write = 1;
	printk("BUG: KASAN: %s in %pS\n", kind_names[kind], (void *)ip);
	printk("Free of addr %px by task swapper/0\n\n", obj);
	dump_stack();
	printk("\n");
	describe_address(r);
	end_report(r, (u64)obj);
}

/* KUNIT_EXPECT_KASAN_FAIL's two halves (<kunit/test.h>). */
void kunit_kasan_expect_begin(struct kunit *test)
{
	(void)test;
	kasan_kunit_expecting = true;
	kasan_kunit_found = false;
}
EXPORT_SYMBOL_GPL(kunit_kasan_expect_begin);

bool kunit_kasan_expect_end(struct kunit *test)
{
	(void)test;
	kasan_kunit_expecting = false;
	bool found = kasan_kunit_found;
	kasan_kunit_found = false;
	return found;
}
EXPORT_SYMBOL_GPL(kunit_kasan_expect_end);
