/*
 * pgtable.c - the kernel's own page tables (phase 4).
 *
 * paging_init() builds init_top_pgt from memblock pages and switches CR3 to
 * it, leaving the boot stub's 1 GiB early tables behind:
 *   - the direct map: every usable E820 range at PAGE_OFFSET + pa, 2 MiB
 *     pages where both addresses are 2 MiB aligned and the range covers the
 *     whole page, 4 KiB pages at the ragged edges; __PAGE_KERNEL (NX, global).
 *     The alias of the image's text and rodata is mapped with 4 KiB pages so
 *     mark_rodata_ro() can make it read-only;
 *   - the kernel image at START_KERNEL_MAP + pa, 4 KiB pages, by section
 *     (kernel.ld): text RW+X, rodata RW+NX, data and bss RW+NX.  Nothing
 *     outside [_stext, __kernel_end) is mapped there.
 * No identity map survives: nothing below PAGE_OFFSET is mapped afterwards,
 * so a NULL dereference faults.  CR0.WP is set, so the kernel's own writes
 * honour read-only pages.
 *
 * mark_rodata_ro() (end of boot, as Linux's mark_readonly()) then clears RW
 * on text and rodata in both the kernel map and the direct map (Linux's
 * set_memory_ro changes every alias; NX changes only the given one, and the
 * direct map is NX already), and debug_checkwx() walks every table for
 * writable-and-executable leaves (CONFIG_DEBUG_WX).
 *
 * Page-table pages come from memblock below EARLY_MAPPED_TOP, because they
 * are written through the early direct map while it is still the one in
 * CR3.  Only boot code calls these functions: no locking.
 */
#include <linux/bug.h>
#include <linux/kernel.h>
#include <linux/printk.h>
#include <kmemu/bootinfo.h>
#include <kmemu/io.h>
#include <kmemu/log.h>
#include <kmemu/memblock.h>
#include <kmemu/memlayout.h>
#include <kmemu/mmu.h>
#include <kmemu/page_alloc.h>

u64 *init_top_pgt;
u64 direct_map_pages[3]; /* 4K, 2M, 1G pages in the direct map */

static u64 *pt_alloc(void)
{
	return memblock_alloc(PAGE_SIZE, PAGE_SIZE);
}

/* The table an entry points to, allocating it if the entry is empty. */
static u64 *pt_next(u64 *entry)
{
	if (!(*entry & _PAGE_PRESENT))
		*entry = __pa(pt_alloc()) | _PAGE_TABLE;
	BUG_ON(*entry & _PAGE_PSE);
	return __va(*entry & PTE_PFN_MASK);
}

static u64 level_end(u64 va, u64 end, unsigned shift)
{
	u64 next = (va | ((1UL << shift) - 1)) + 1;
	return (next - 1) < (end - 1) ? next : end;
}

static void pt_map_pte(u64 *pte, u64 va, u64 end, u64 pa, u64 prot)
{
	for (; va < end; va += PAGE_SIZE, pa += PAGE_SIZE) {
		pte[pte_index(va)] = pa | prot;
		direct_map_pages[0]++;
	}
}

/* large: 2 MiB pages where they fit; false forces 4 KiB (ranges whose protection changes later). */
static void pt_map_pmd(u64 *pmd, u64 va, u64 end, u64 pa, u64 prot, bool large)
{
	for (u64 next; va < end; pa += next - va, va = next) {
		next = level_end(va, end, PMD_SHIFT);
		u64 *e = &pmd[pmd_index(va)];
		if (large && IS_ALIGNED(va | pa, SZ_2M) && next - va == SZ_2M && !(*e & _PAGE_PRESENT)) {
			*e = pa | prot | _PAGE_PSE;
			direct_map_pages[1]++;
			continue;
		}
		pt_map_pte(pt_next(e), va, next, pa, prot);
	}
}

static void pt_map_pud(u64 *pud, u64 va, u64 end, u64 pa, u64 prot, bool large)
{
	for (u64 next; va < end; pa += next - va, va = next) {
		next = level_end(va, end, PUD_SHIFT);
		pt_map_pmd(pt_next(&pud[pud_index(va)]), va, next, pa, prot, large);
	}
}

static void pt_map_pgd(u64 *pgd, u64 va, u64 end, u64 pa, u64 prot, bool large)
{
	if (va >= end)
		return;
	for (u64 next; va < end; pa += next - va, va = next) {
		next = level_end(va, end, PGDIR_SHIFT);
		pt_map_pud(pt_next(&pgd[pgd_index(va)]), va, next, pa, prot, large);
	}
}

/* Map [va, end) to pa with prot in the kernel's tables (boot only: memblock pages). */
void kernel_map_range(u64 va, u64 end, u64 pa, u64 prot)
{
	u64 saved[2] = { direct_map_pages[0], direct_map_pages[1] };
	pt_map_pgd(init_top_pgt, va, end, pa, prot, true);
	direct_map_pages[0] = saved[0];
	direct_map_pages[1] = saved[1];
}

/*
 * One usable RAM range [b, e) into the direct map, RW+NX.  The part that
 * aliases the image's text and rodata gets 4 KiB pages so mark_rodata_ro()
 * can clear RW on exactly those pages.
 */
static void map_direct_range(u64 b, u64 e)
{
	u64 ro_b = __pa_symbol(_stext), ro_e = __pa_symbol(__end_rodata);
	u64 mid_b = max(b, ro_b), mid_e = min(e, ro_e);

	if (mid_b >= mid_e) {
		pt_map_pgd(init_top_pgt, (u64)__va(b), (u64)__va(e), b, __PAGE_KERNEL, true);
		return;
	}
	pt_map_pgd(init_top_pgt, (u64)__va(b), (u64)__va(mid_b), b, __PAGE_KERNEL, true);
	pt_map_pgd(init_top_pgt, (u64)__va(mid_b), (u64)__va(mid_e), mid_b, __PAGE_KERNEL, false);
	pt_map_pgd(init_top_pgt, (u64)__va(mid_e), (u64)__va(e), mid_e, __PAGE_KERNEL, true);
}

/* [start, end) of the image at its link address, 4 KiB pages, not counted as direct map. */
static void map_image_part(const char *start, const char *end, u64 prot)
{
	u64 saved[2] = { direct_map_pages[0], direct_map_pages[1] };
	pt_map_pgd(init_top_pgt, (u64)start, (u64)end, __pa_symbol(start), prot, false);
	direct_map_pages[0] = saved[0];
	direct_map_pages[1] = saved[1];
}

void paging_init(void)
{
	struct memblock_type *mem = &memblock.memory;

	init_top_pgt = pt_alloc();
	for (u32 i = 0; i < mem->cnt; i++)
		map_direct_range(mem->regions[i].base, mem->regions[i].base + mem->regions[i].size);
	/* text stays writable until mark_rodata_ro(), as in Linux; data is never executable */
	map_image_part(_stext, __start_rodata, __PAGE_KERNEL_EXEC);
	map_image_part(__start_rodata, __end_rodata, __PAGE_KERNEL);
	map_image_part(_sdata, __kernel_end, __PAGE_KERNEL);

	write_cr4(read_cr4() | (1UL << 7)); /* CR4.PGE: global pages */
	write_cr3(__pa(init_top_pgt));
	write_cr0(read_cr0() | X86_CR0_WP);
	printk("x86/mm: direct map: %llu 4k pages, %llu 2M pages; CR3 0x%llx\n", direct_map_pages[0],
	       direct_map_pages[1], read_cr3());
}

/* Print the walk for va in Linux's oops format (never faults: checks P). */
void dump_pagetable(u64 va)
{
	u64 *tbl = __va(read_cr3() & PTE_PFN_MASK);
	static const char *const names[4] = { "PGD", "PUD", "PMD", "PTE" };
	static const unsigned shifts[4] = { PGDIR_SHIFT, PUD_SHIFT, PMD_SHIFT, 12 };
	char line[160];
	int n = 0;

	for (int lvl = 0; lvl < 4; lvl++) {
		u64 e = tbl[(va >> shifts[lvl]) & 511];
		n += snprintf(line + n, sizeof(line) - n, "%s%s %llx", n ? " " : "", names[lvl], e);
		if (lvl == 0 && (e & _PAGE_PRESENT))
			n += snprintf(line + n, sizeof(line) - n, " P4D %llx", e);
		if (!(e & _PAGE_PRESENT) || (lvl && lvl < 3 && (e & _PAGE_PSE)))
			break;
		tbl = __va(e & PTE_PFN_MASK);
	}
	printk("%s\n", line);
}

/*
 * --- Runtime page tables (the vmalloc issue builds on these) -----------------
 *
 * After boot, table pages come from the page allocator (zeroed, counted in
 * pgtable_pages) and are never given back, as in Linux: once vmalloc (or
 * the module area) populated a PMD or PTE table it stays, empty or not, so
 * the next mapping there allocates and zeroes nothing (issue 15: freeing
 * and re-zeroing them was most of a vmalloc+vfree cycle).  The PUD (PDPT)
 * pages under the vmalloc range's PGD slots are allocated once at boot
 * (preallocate_vmalloc_pages), so the top level never changes after boot.  One function per level, same loop shape.
 * Callers serialise changes to a range themselves (vmalloc holds its lock);
 * interrupts may run meanwhile but never touch the same range.
 */

u64 pgtable_pages;       /* runtime page-table pages held from the page allocator */
u64 tlb_flush_pages;     /* invlpg flushes */
u64 tlb_flush_all;       /* full flushes */

static u64 *pt_alloc_rt(gfp_t gfp)
{
	struct page *p = alloc_pages((gfp & ~(__GFP_DMA | __GFP_DMA32 | __GFP_COMP)) | __GFP_ZERO, 0);
	if (!p)
		return NULL;
	pgtable_pages++;
	return page_address(p);
}

/* The table under *entry, allocating it (gfp) if empty; NULL when out of memory. */
static u64 *pt_next_rt(u64 *entry, gfp_t gfp)
{
	if (!(*entry & _PAGE_PRESENT)) {
		u64 *t = pt_alloc_rt(gfp);
		if (!t)
			return NULL;
		*entry = __pa(t) | _PAGE_TABLE;
	}
	return __va(*entry & PTE_PFN_MASK);
}

static int vmap_pte_range(u64 *pte, u64 va, u64 end, struct page **pages, u64 prot)
{
	for (; va < end; va += PAGE_SIZE, pages++) {
		u64 *e = &pte[pte_index(va)];
		if (WARN(*e & _PAGE_PRESENT, "vmap: 0x%llx is already mapped", va))
			return -1;
		*e = (page_to_pfn(*pages) << PAGE_SHIFT) | prot;
	}
	return 0;
}

static int vmap_pmd_range(u64 *pmd, u64 va, u64 end, struct page **pages, u64 prot, gfp_t gfp)
{
	for (u64 next; va < end; pages += (next - va) >> PAGE_SHIFT, va = next) {
		next = level_end(va, end, PMD_SHIFT);
		u64 *pte = pt_next_rt(&pmd[pmd_index(va)], gfp);
		if (!pte || vmap_pte_range(pte, va, next, pages, prot))
			return -1;
	}
	return 0;
}

static int vmap_pud_range(u64 *pud, u64 va, u64 end, struct page **pages, u64 prot, gfp_t gfp)
{
	for (u64 next; va < end; pages += (next - va) >> PAGE_SHIFT, va = next) {
		next = level_end(va, end, PUD_SHIFT);
		u64 *pmd = pt_next_rt(&pud[pud_index(va)], gfp);
		if (!pmd || vmap_pmd_range(pmd, va, next, pages, prot, gfp))
			return -1;
	}
	return 0;
}

static int vmap_pgd_range(u64 *pgd, u64 va, u64 end, struct page **pages, u64 prot, gfp_t gfp)
{
	for (u64 next; va < end; pages += (next - va) >> PAGE_SHIFT, va = next) {
		next = level_end(va, end, PGDIR_SHIFT);
		u64 *pud = pt_next_rt(&pgd[pgd_index(va)], gfp);
		if (!pud || vmap_pud_range(pud, va, next, pages, prot, gfp))
			return -1;
	}
	return 0;
}

/*
 * Map pages[] at [va, end) with 4 KiB entries; tables are allocated with gfp
 * (GFP_ATOMIC/GFP_NOWAIT work: nothing here sleeps unless gfp may).  On
 * failure what was mapped stays mapped: the caller unmaps [va, end).
 */
int vmap_pages_range(u64 va, u64 end, struct page **pages, u64 prot, gfp_t gfp)
{
	return vmap_pgd_range(init_top_pgt, va, end, pages, prot, gfp);
}

static void vunmap_pte_range(u64 *pte, u64 va, u64 end)
{
	for (; va < end; va += PAGE_SIZE)
		pte[pte_index(va)] = 0;
}

static void vunmap_pmd_range(u64 *pmd, u64 va, u64 end)
{
	for (u64 next; va < end; va = next) {
		next = level_end(va, end, PMD_SHIFT);
		u64 *e = &pmd[pmd_index(va)];
		if (!(*e & _PAGE_PRESENT) || (*e & _PAGE_PSE))
			continue;
		vunmap_pte_range(__va(*e & PTE_PFN_MASK), va, next); /* the table stays */
	}
}

static void vunmap_pud_range(u64 *pud, u64 va, u64 end)
{
	for (u64 next; va < end; va = next) {
		next = level_end(va, end, PUD_SHIFT);
		u64 *e = &pud[pud_index(va)];
		if (!(*e & _PAGE_PRESENT) || (*e & _PAGE_PSE))
			continue;
		vunmap_pmd_range(__va(*e & PTE_PFN_MASK), va, next); /* the table stays */
	}
}

static void vunmap_pgd_range(u64 *pgd, u64 va, u64 end)
{
	for (u64 next; va < end; va = next) {
		next = level_end(va, end, PGDIR_SHIFT);
		u64 *e = &pgd[pgd_index(va)];
		if (!(*e & _PAGE_PRESENT))
			continue;
		/* PUD pages stay: the vmalloc range's are preallocated and permanent */
		vunmap_pud_range(__va(*e & PTE_PFN_MASK), va, next);
	}
}

/* Clear [va, end)'s PTEs; tables stay, and no TLB flush (see below). */
void vunmap_range_noflush(u64 va, u64 end)
{
	vunmap_pgd_range(init_top_pgt, va, end);
}

/* invlpg page by page for small ranges, everything (globals too) for large ones. */
void flush_tlb_kernel_range(u64 start, u64 end)
{
	if ((end - start) >> PAGE_SHIFT <= 32) {
		for (u64 va = start; va < end; va += PAGE_SIZE)
			invlpg(va);
		tlb_flush_pages += (end - start) >> PAGE_SHIFT;
		return;
	}
	u64 cr4 = read_cr4();
	write_cr4(cr4 & ~(1UL << 7)); /* clearing CR4.PGE flushes global entries too */
	write_cr4(cr4);
	tlb_flush_all++;
}

/* One PUD page under every PGD slot of the vmalloc range, for good. */
void preallocate_vmalloc_pages(void)
{
	for (u64 va = VMALLOC_START; va < VMALLOC_END; va += 1UL << PGDIR_SHIFT) {
		u64 *e = &init_top_pgt[pgd_index(va)];
		if (*e & _PAGE_PRESENT)
			continue;
		u64 *pud = pt_alloc_rt(GFP_KERNEL);
		if (!pud)
			panic("preallocate_vmalloc_pages: out of memory");
		pgtable_pages--; /* permanent: not counted as runtime tables */
		*e = __pa(pud) | _PAGE_TABLE;
	}
}

/*
 * Change the protection of [addr, addr + numpages pages), which must be
 * mapped with 4 KiB entries (vmalloc and module areas are): set the bits in
 * `set`, clear those in `clear`, then flush the range.  Linux's
 * set_memory_ro/rw/x/nx do this through change_page_attr.  -1 if a page is
 * not mapped (nothing after it changes).
 */
int set_memory_prot(u64 addr, u64 numpages, u64 set, u64 clear)
{
	static const unsigned shifts[3] = { PGDIR_SHIFT, PUD_SHIFT, PMD_SHIFT };
	for (u64 i = 0; i < numpages; i++) {
		u64 va = addr + (i << PAGE_SHIFT), *t = init_top_pgt;
		for (int lvl = 0; lvl < 3; lvl++) {
			u64 e = t[(va >> shifts[lvl]) & 511];
			if (!(e & _PAGE_PRESENT) || (e & _PAGE_PSE))
				return -1;
			t = __va(e & PTE_PFN_MASK);
		}
		u64 *pte = &t[pte_index(va)];
		if (!(*pte & _PAGE_PRESENT))
			return -1;
		*pte = (*pte | set) & ~clear;
	}
	flush_tlb_kernel_range(addr, addr + (numpages << PAGE_SHIFT));
	return 0;
}

/*
 * --- Strict kernel RWX (CONFIG_STRICT_KERNEL_RWX, CONFIG_DEBUG_WX) ---------------
 */

static const unsigned int level_shift[4] = { PGDIR_SHIFT, PUD_SHIFT, PMD_SHIFT, PAGE_SHIFT };

/*
 * The leaf entry that maps va in the kernel's tables and its size in *level
 * (PG_LEVEL_4K/2M/1G), as Linux's lookup_address(): NULL when a table on the
 * way is missing, else the entry, which may be a non-present PTE.
 */
u64 *lookup_address(u64 va, unsigned int *level)
{
	u64 *t = init_top_pgt;
	*level = PG_LEVEL_NONE;
	for (int lvl = 0; lvl < 4; lvl++) {
		u64 *e = &t[(va >> level_shift[lvl]) & 511];
		bool huge = (lvl == 1 || lvl == 2) && (*e & (_PAGE_PRESENT | _PAGE_PSE)) ==
							 (_PAGE_PRESENT | _PAGE_PSE);
		if (lvl == 3 || huge) {
			*level = PG_LEVEL_4K + (3 - lvl);
			return e;
		}
		if (!(*e & _PAGE_PRESENT))
			return NULL;
		t = __va(*e & PTE_PFN_MASK);
	}
	return NULL;
}

/*
 * The protection the CPU applies to va: the leaf's bits with RW only if
 * every level allows writes and NX if any level forbids execution; 0 when
 * va is not mapped.  (Intermediate entries are _PAGE_TABLE, so in practice
 * the leaf decides, but this is what the hardware does.)
 */
u64 lookup_address_prot(u64 va)
{
	u64 *t = init_top_pgt, rw = _PAGE_RW, nx = 0;
	for (int lvl = 0; lvl < 4; lvl++) {
		u64 e = t[(va >> level_shift[lvl]) & 511];
		if (!(e & _PAGE_PRESENT))
			return 0;
		rw &= e;
		nx |= e & _PAGE_NX;
		if (lvl == 3 || ((lvl == 1 || lvl == 2) && (e & _PAGE_PSE)))
			return ((e & ~(_PAGE_RW | _PAGE_NX)) | rw | nx);
		t = __va(e & PTE_PFN_MASK);
	}
	return 0;
}

/*
 * Make text and rodata read-only (end of boot, after everything that may
 * still write them at boot; Linux's mark_rodata_ro()).  set_memory_prot()
 * changes only the address it is given, so the direct map's alias of the
 * same pages is changed too, as Linux's cpa alias processing does for RW
 * changes.  Rodata was mapped NX from the start.
 */
void mark_rodata_ro(void)
{
	u64 start = (u64)_stext, end = (u64)__end_rodata;
	u64 pages = (end - start) >> PAGE_SHIFT;

	if (set_memory_prot(start, pages, 0, _PAGE_RW) ||
	    set_memory_prot((u64)__va(__pa_symbol(start)), pages, 0, _PAGE_RW))
		panic("mark_rodata_ro: the image is not mapped with 4 KiB pages");
	printk("Write protecting the kernel read-only data: %lluk\n", (end - start) >> 10);
	debug_checkwx();
}

struct wx_state {
	u64 pages;  /* 4 KiB pages mapped writable and executable */
	u64 first;  /* the first such address */
};

/*
 * The index of the first nonzero entry of t at or after i, or PTRS_PER_TABLE.
 * One string instruction: most of the vmalloc range's PUD pages are empty.
 */
static int wx_next_used(const u64 *t, int i)
{
	const u64 *p = t + i;
	u64 left = PTRS_PER_TABLE - i;
	bool found;
	if (!left)
		return PTRS_PER_TABLE;
	__asm__("repe scasq" : "+D"(p), "+c"(left), "=@ccnz"(found) : "a"(0UL), "m"(*(const u64(*)[PTRS_PER_TABLE])t));
	return found ? (int)(p - 1 - t) : PTRS_PER_TABLE;
}

static void wx_walk(const u64 *t, int lvl, u64 base, u64 rw, u64 nx, struct wx_state *st)
{
	for (int i = wx_next_used(t, 0); i < PTRS_PER_TABLE; i = wx_next_used(t, i + 1)) {
		u64 e = t[i];
		if (!(e & _PAGE_PRESENT))
			continue;
		u64 va = base + ((u64)i << level_shift[lvl]);
		if (lvl == 0 && i >= 256)
			va |= 0xffff000000000000UL; /* sign-extend bit 47 */
		u64 erw = rw & e, enx = nx | (e & _PAGE_NX);
		if (lvl == 3 || ((lvl == 1 || lvl == 2) && (e & _PAGE_PSE))) {
			if ((erw & _PAGE_RW) && !enx) {
				if (!st->pages)
					st->first = va;
				st->pages += 1UL << (level_shift[lvl] - PAGE_SHIFT);
			}
			continue;
		}
		wx_walk(__va(e & PTE_PFN_MASK), lvl + 1, va, erw, enx, st);
	}
}

/*
 * Walk every table under init_top_pgt (kernel map, direct map, vmemmap,
 * vmalloc, modules: the whole address space) and count the 4 KiB pages
 * mapped both writable and executable.  With report, print Linux's
 * CONFIG_DEBUG_WX lines (a WARN naming the first such address on failure).
 * Temporary mappings such as a text_poke() slot exist only while a poke is
 * in progress, never while this runs.
 */
u64 ptdump_walk_check_wx(bool report)
{
	struct wx_state st = { 0, 0 };
	wx_walk(init_top_pgt, 0, 0, _PAGE_RW, 0, &st);
	if (!report)
		return st.pages;
	if (st.pages) {
		WARN_ONCE(1, "x86/mm: Found insecure W+X mapping at address %pS", (void *)st.first);
		printk("x86/mm: Checked W+X mappings: FAILED, %llu W+X pages found.\n", st.pages);
	} else {
		printk("x86/mm: Checked W+X mappings: passed, no W+X pages found.\n");
	}
	return st.pages;
}

void debug_checkwx(void)
{
	ptdump_walk_check_wx(true);
}
