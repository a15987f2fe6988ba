/*
 * kasan/shadow.c - generic KASAN's shadow memory and the compiler's callbacks.
 *
 * Design (Linux's generic KASAN, mm/kasan/generic.c and shadow.c): one shadow
 * byte per 8-byte granule at KASAN_SHADOW_OFFSET + (addr >> 3).  kasan_init()
 * maps real shadow pages (from memblock, before the buddy allocator takes the
 * rest) for the direct map of every RAM range and for the kernel image; the
 * vmalloc and module areas get theirs on demand (kasan_populate_vmalloc, in
 * common.c).  Addresses elsewhere (vmemmap, user space) are not checked.
 *
 * Code built with -fsanitize=kernel-address calls __asan_{load,store}N_noabort
 * before every access ("outline" instrumentation: Linux's CONFIG_KASAN_OUTLINE,
 * --param asan-instrumentation-with-call-threshold=0), so nothing runs against
 * the shadow before kasan_init() has mapped it: until then kasan_ready is false
 * and every check passes.  This file itself is not instrumented.
 *
 * memset/memcpy/memmove are the checked versions here; kernel/string.c builds
 * the raw ones as __memset/__memcpy/__memmove, which uninstrumented files
 * (the allocators) call directly, as Linux's arch/x86 string_64.h arranges.
 */
#include <linux/types.h>
#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/export.h>
#include <linux/align.h>
#include <asm/page.h>
#include <asm/pgtable_64_types.h>
#include <kmemu/kasan.h>
#include <kmemu/memlayout.h>
#include <kmemu/memblock.h>
#include <kmemu/mmu.h>
#include <kmemu/mmzone.h>
#include <kmemu/io.h>
#include "kasan.h"

bool kasan_ready;
int kasan_depth;       /* > 0: checks off (inside a report, inside kasan itself) */
static u64 direct_map_end;  /* one past the highest RAM address in the direct map */
static u64 direct_map_size; /* direct_map_end - PAGE_OFFSET once KASAN is ready, else 0 */
static u64 image_end;       /* one past the kernel image's mapping */

void kasan_poison(const void *addr, u64 size, u8 value)
{
	if (!size)
		return;
	u8 *s = kasan_mem_to_shadow((u64)addr);
	__memset(s, value, (size + KASAN_GRANULE_MASK) >> KASAN_SHADOW_SCALE_SHIFT);
}

/* [addr, addr + size) accessible; a partial last granule gets its byte count. */
void kasan_unpoison(const void *addr, u64 size)
{
	u8 *s = kasan_mem_to_shadow((u64)addr);
	u64 full = size >> KASAN_SHADOW_SCALE_SHIFT;
	__memset(s, 0, full);
	if (size & KASAN_GRANULE_MASK)
		s[full] = (u8)(size & KASAN_GRANULE_MASK);
}

/* Whether addr has shadow at all (direct map of RAM, kernel image, vmalloc, modules). */
bool kasan_has_shadow(u64 a)
{
	if (a >= PAGE_OFFSET && a < direct_map_end)
		return true;
	if (a >= START_KERNEL_MAP && a < image_end)
		return true;
	return (a >= VMALLOC_START && a < VMALLOC_END) || (a >= MODULES_VADDR && a < MODULES_END);
}

/* vmalloc and module ranges: whether both ends have shadow pages mapped yet. */
static bool kasan_shadow_populated(u64 addr, u64 size)
{
	if (addr >= START_KERNEL_MAP && addr < image_end)
		return true;
	return kasan_shadow_mapped((u64)kasan_mem_to_shadow(addr)) &&
	       kasan_shadow_mapped((u64)kasan_mem_to_shadow(addr + size - 1));
}

static __always_inline bool byte_poisoned(u64 a)
{
	s8 v = *(s8 *)kasan_mem_to_shadow(a);
	return v && (s8)(a & KASAN_GRANULE_MASK) >= v;
}

/* Whether any byte of [a, a + n) is inaccessible (n >= 1). */
static bool range_poisoned(u64 a, u64 n)
{
	u64 last = a + n - 1;
	if (byte_poisoned(last))
		return true;
	u8 *s = kasan_mem_to_shadow(a), *e = kasan_mem_to_shadow(last);
	for (; s < e && ((u64)s & 7); s++)
		if (*s)
			return true;
	for (; s + 8 <= e; s += 8) /* eight granules (64 bytes) a step */
		if (*(u64 *)s)
			return true;
	for (; s < e; s++)
		if (*s)
			return true;
	return false;
}

/* The first inaccessible byte of [a, a + n), for the report. */
u64 kasan_first_bad(u64 a, u64 n)
{
	for (u64 i = 0; i < n; i++)
		if (byte_poisoned(a + i))
			return a + i;
	return a;
}

/* Check an access; report it when it touches poisoned memory.  false: reported. */
bool kasan_check_range(u64 addr, u64 size, bool write, u64 ip)
{
	if (!size || !kasan_ready || kasan_depth)
		return true;
	if (addr + size < addr) {
		kasan_report(addr, size, write, ip);
		return false;
	}
	if (!kasan_has_shadow(addr) || !kasan_has_shadow(addr + size - 1))
		return true;
	if (addr >= VMALLOC_START && !kasan_shadow_populated(addr, size))
		return true; /* no area was ever there: the access itself faults */
	if (likely(!range_poisoned(addr, size)))
		return true;
	kasan_report(addr, size, write, ip);
	return false;
}

#define RET_IP ((u64)__builtin_return_address(0))

/*
 * The fast path of the fixed-size callbacks: a direct-map address (the common
 * case: slab objects and pages) whose at most three granules are accessible.
 * Anything else takes kasan_check_range(), which decides and reports.
 */
static __always_inline bool fast_ok(u64 addr, u64 size)
{
	u64 off = addr - PAGE_OFFSET;
	if (off >= direct_map_size || off + size > direct_map_size)
		return false;
	u64 last = addr + size - 1;
	if (byte_poisoned(last))
		return false;
	for (u8 *s = kasan_mem_to_shadow(addr), *e = kasan_mem_to_shadow(last); s < e; s++)
		if (*s)
			return false;
	return true;
}

#define DEFINE_ASAN_LOAD_STORE(n)						\
	void __asan_load##n##_noabort(u64 addr);				\
	void __asan_load##n##_noabort(u64 addr)					\
	{ if (!fast_ok(addr, n)) kasan_check_range(addr, n, false, RET_IP); }	\
	EXPORT_SYMBOL(__asan_load##n##_noabort);				\
	void __asan_store##n##_noabort(u64 addr);				\
	void __asan_store##n##_noabort(u64 addr)				\
	{ if (!fast_ok(addr, n)) kasan_check_range(addr, n, true, RET_IP); }	\
	EXPORT_SYMBOL(__asan_store##n##_noabort);				\
	void __asan_report_load##n##_noabort(u64 addr);				\
	void __asan_report_load##n##_noabort(u64 addr)				\
	{ kasan_report(addr, n, false, RET_IP); }				\
	EXPORT_SYMBOL(__asan_report_load##n##_noabort);				\
	void __asan_report_store##n##_noabort(u64 addr);			\
	void __asan_report_store##n##_noabort(u64 addr)				\
	{ kasan_report(addr, n, true, RET_IP); }				\
	EXPORT_SYMBOL(__asan_report_store##n##_noabort);

DEFINE_ASAN_LOAD_STORE(1)
DEFINE_ASAN_LOAD_STORE(2)
DEFINE_ASAN_LOAD_STORE(4)
DEFINE_ASAN_LOAD_STORE(8)
DEFINE_ASAN_LOAD_STORE(16)

void __asan_loadN_noabort(u64 addr, u64 size);
void __asan_loadN_noabort(u64 addr, u64 size)
{
	kasan_check_range(addr, size, false, RET_IP);
}
EXPORT_SYMBOL(__asan_loadN_noabort);

void __asan_storeN_noabort(u64 addr, u64 size);
void __asan_storeN_noabort(u64 addr, u64 size)
{
	kasan_check_range(addr, size, true, RET_IP);
}
EXPORT_SYMBOL(__asan_storeN_noabort);

void __asan_report_load_n_noabort(u64 addr, u64 size);
void __asan_report_load_n_noabort(u64 addr, u64 size)
{
	kasan_report(addr, size, false, RET_IP);
}
EXPORT_SYMBOL(__asan_report_load_n_noabort);

void __asan_report_store_n_noabort(u64 addr, u64 size);
void __asan_report_store_n_noabort(u64 addr, u64 size)
{
	kasan_report(addr, size, true, RET_IP);
}
EXPORT_SYMBOL(__asan_report_store_n_noabort);

/* Called before a noreturn call; nothing to do without stack instrumentation state. */
void __asan_handle_no_return(void);
void __asan_handle_no_return(void) {}
EXPORT_SYMBOL(__asan_handle_no_return);

/* GCC's description of one instrumented global (its asan_global). */
struct kasan_global {
	u64 beg;
	u64 size;
	u64 size_with_redzone;
	const char *name;
	const char *module_name;
	u64 has_dynamic_init;
	void *location;
	u64 odr_indicator;
};

/* The constructors GCC emits for a file with globals: poison each one's red zone. */
void __asan_register_globals(struct kasan_global *g, u64 n);
void __asan_register_globals(struct kasan_global *g, u64 n)
{
	for (u64 i = 0; i < n; i++) {
		u64 end = ALIGN(g[i].beg + g[i].size, KASAN_GRANULE_SIZE);
		kasan_unpoison((void *)g[i].beg, g[i].size);
		kasan_poison((void *)end, g[i].beg + g[i].size_with_redzone - end,
			     KASAN_GLOBAL_REDZONE);
	}
}
EXPORT_SYMBOL(__asan_register_globals);

void __asan_unregister_globals(struct kasan_global *g, u64 n);
void __asan_unregister_globals(struct kasan_global *g, u64 n)
{
	(void)g;
	(void)n;
}
EXPORT_SYMBOL(__asan_unregister_globals);

/* alloca red zones (--param asan-instrument-allocas=1) */
void __asan_alloca_poison(u64 addr, u64 size);
void __asan_alloca_poison(u64 addr, u64 size)
{
	u64 rounded = ALIGN(size, KASAN_GRANULE_SIZE);
	kasan_poison((void *)(addr - 32), 32, KASAN_ALLOCA_LEFT);
	kasan_unpoison((void *)addr, size);
	kasan_poison((void *)(addr + rounded), ALIGN(size, 32) - rounded + 32, KASAN_ALLOCA_RIGHT);
}
EXPORT_SYMBOL(__asan_alloca_poison);

void __asan_allocas_unpoison(u64 top, u64 bottom);
void __asan_allocas_unpoison(u64 top, u64 bottom)
{
	if (top && bottom > top)
		kasan_unpoison((void *)top, bottom - top);
}
EXPORT_SYMBOL(__asan_allocas_unpoison);

/* The checked string functions instrumented code (and modules) call. */
#undef memset
#undef memcpy
#undef memmove
void *memset(void *s, int c, size_t n)
{
	kasan_check_range((u64)s, n, true, RET_IP);
	return __memset(s, c, n);
}
EXPORT_SYMBOL(memset);

void *memcpy(void *d, const void *s, size_t n)
{
	if (kasan_check_range((u64)s, n, false, RET_IP))
		kasan_check_range((u64)d, n, true, RET_IP);
	return __memcpy(d, s, n);
}
EXPORT_SYMBOL(memcpy);

void *memmove(void *d, const void *s, size_t n)
{
	if (kasan_check_range((u64)s, n, false, RET_IP))
		kasan_check_range((u64)d, n, true, RET_IP);
	return __memmove(d, s, n);
}
EXPORT_SYMBOL(memmove);

/* A stack unwound without its epilogues keeps stale red zones: clear what lies below sp. */
void kasan_unpoison_stack_below(u64 sp)
{
	extern char boot_stack[];
	u64 lo = (u64)boot_stack;
	if (kasan_ready && sp > lo && sp - lo <= 32768)
		kasan_unpoison((void *)lo, ALIGN_DOWN(sp, KASAN_GRANULE_SIZE) - lo);
}

/* Map fresh shadow for [start, end) of the address space (boot: memblock pages). */
static u64 map_shadow(u64 start, u64 end, u64 done)
{
	u64 s = max(ALIGN_DOWN((u64)kasan_mem_to_shadow(start), PAGE_SIZE), done);
	u64 e = ALIGN((u64)kasan_mem_to_shadow(end - 1) + 1, PAGE_SIZE);
	if (s >= e)
		return done;
	u64 align = e - s >= SZ_2M ? SZ_2M : PAGE_SIZE;
	void *mem = memblock_alloc(e - s, align);
	kernel_map_range(s, e, __pa(mem), __PAGE_KERNEL);
	return e;
}

/* Shadow pages [from, to) all map one zeroed page, read-only: the direct map's holes
 * (no RAM there: the access itself faults, as with Linux's early zero shadow). */
static void map_zero_shadow(u64 from, u64 to, u64 zero_pa)
{
	for (u64 va = from; va < to; va += PAGE_SIZE)
		kernel_map_range(va, va + PAGE_SIZE, zero_pa, __PAGE_KERNEL & ~_PAGE_RW);
}

/*
 * kasan_init - after paging_init(), before the buddy allocator: shadow for the
 * direct map of every memblock.memory range (holes between them read as
 * "accessible", so a stray access faults at the access, not in the check) and
 * for the kernel image.  memblock.memory is sorted by address.
 */
void kasan_init(void)
{
	struct memblock_type *mem = &memblock.memory;
	u64 done = ALIGN_DOWN((u64)kasan_mem_to_shadow(PAGE_OFFSET), PAGE_SIZE);
	u64 zero_pa = __pa(memblock_alloc(PAGE_SIZE, PAGE_SIZE));
	for (u32 i = 0; i < mem->cnt; i++) {
		u64 b = mem->regions[i].base, e = b + mem->regions[i].size;
		u64 s = ALIGN_DOWN((u64)kasan_mem_to_shadow((u64)__va(b)), PAGE_SIZE);
		map_zero_shadow(done, s, zero_pa);
		done = map_shadow((u64)__va(b), (u64)__va(e), max(done, s));
		direct_map_end = max(direct_map_end, (u64)__va(e));
	}
	image_end = START_KERNEL_MAP + ALIGN(__pa_symbol(__kernel_end), SZ_2M);
	map_shadow(START_KERNEL_MAP, image_end, 0);
	write_cr3(read_cr3()); /* drop any stale translation of the new range */
	kasan_ready = true;
	direct_map_size = direct_map_end - PAGE_OFFSET;
	printk("kasan: KernelAddressSanitizer initialized (generic)\n");
}
