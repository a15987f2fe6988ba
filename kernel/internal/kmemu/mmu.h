/*
 * mmu.h - x86-64 4-level paging: the address split and the entry bits.
 *
 *  63     48 47      39 38      30 29      21 20      12 11         0
 * +---------+----------+----------+----------+----------+------------+
 * | sign ext| PGD (PML4)| PUD(PDPT)|  PMD (PD)|  PTE (PT)| page offset|
 * +---------+----------+----------+----------+----------+------------+
 *
 * Entry: bit 0 P, 1 RW, 2 US, 3 PWT, 4 PCD, 5 A, 6 D, 7 PS (leaf at PUD/PMD),
 * 8 G, 51..12 physical frame, 63 NX (needs EFER.NXE).
 */
#ifndef KMEMU_MMU_H
#define KMEMU_MMU_H
#include <linux/types.h>
#include <asm/pgtable_types.h>

#define PTE_PFN_MASK 0x000ffffffffff000UL

#define PGDIR_SHIFT 39
#define PUD_SHIFT 30
#define PMD_SHIFT 21
#define PTRS_PER_TABLE 512

#define pgd_index(va) (((va) >> PGDIR_SHIFT) & 511)
#define pud_index(va) (((va) >> PUD_SHIFT) & 511)
#define pmd_index(va) (((va) >> PMD_SHIFT) & 511)
#define pte_index(va) (((va) >> 12) & 511)

/* Leaf protections: __PAGE_KERNEL (data, NX) and __PAGE_KERNEL_EXEC come from
 * <asm/pgtable_types.h>; the functions below take the raw bits. */
/* Intermediate tables: permissive, the leaf decides. */
#define _PAGE_TABLE (_PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY)

extern u64 *init_top_pgt; /* the kernel's PML4, in the direct map */

void paging_init(void);
void kernel_map_range(u64 va, u64 end, u64 pa, u64 prot);

struct page;
int vmap_pages_range(u64 va, u64 end, struct page **pages, u64 prot, gfp_t gfp);
void vunmap_range_noflush(u64 va, u64 end);
void flush_tlb_kernel_range(u64 start, u64 end);
void preallocate_vmalloc_pages(void);
int set_memory_prot(u64 addr, u64 numpages, u64 set, u64 clear);
extern u64 pgtable_pages, tlb_flush_pages, tlb_flush_all;
void dump_pagetable(u64 va);

/* Strict kernel RWX (pgtable.c): see mark_rodata_ro() and ptdump_walk_check_wx(). */
enum pg_level { PG_LEVEL_NONE, PG_LEVEL_4K, PG_LEVEL_2M, PG_LEVEL_1G };
u64 *lookup_address(u64 va, unsigned int *level);
u64 lookup_address_prot(u64 va);
void mark_rodata_ro(void);
u64 ptdump_walk_check_wx(bool report);
void debug_checkwx(void);

#endif
