/*
 * text_poke.c - write kernel or module code that is mapped read-only.
 *
 * The contract is in <kmemu/text_patching.h>.  The design, Linux's in
 * spirit: code is never written through the mapping it runs from.  A
 * reserved window of TEXT_POKE_PAGES pages at TEXT_POKE_VADDR has its own
 * PTE table, made once at boot from memblock (permanent, like the boot
 * page tables); a poke points the window's PTEs at the physical page(s)
 * behind the target (present, RW, NX, not global), writes through the
 * window, clears the PTEs and invlpg's them, all with interrupts off.  The
 * window is otherwise empty, so a stray write through it faults.
 *
 * Physical addresses come from a walk of init_top_pgt (kernel image: 2 MiB
 * or 4 KiB leaves, module text: 4 KiB vmalloc leaves), so the same code
 * patches both.  The emulator's translated code: QEMU/Unicorn invalidate
 * translations of a physical page when it is written by any alias
 * (tests/kernel/test_jump_label.py checks both directions at run time);
 * the host is told besides, because its snapshots can bring old bytes back.
 */
#include <linux/bug.h>
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/string.h>
#include <kmemu/abi.h>
#include <kmemu/io.h>
#include <kmemu/memblock.h>
#include <kmemu/memlayout.h>
#include <kmemu/mmu.h>
#include <kmemu/text_patching.h>

extern bool host_present;

static u64 *poke_pte; /* the window's PTE table (direct-map address) */
u64 text_pokes;

/* The table under *entry, made from memblock when empty (boot only). */
static u64 *boot_table(u64 *entry)
{
	if (!(*entry & _PAGE_PRESENT))
		*entry = __pa(memblock_alloc(PAGE_SIZE, PAGE_SIZE)) | _PAGE_TABLE;
	BUG_ON(*entry & _PAGE_PSE);
	return __va(*entry & PTE_PFN_MASK);
}

/* Reserve the window's page tables; after paging_init(), while memblock allocates. */
void text_poke_init(void)
{
	u64 va = TEXT_POKE_VADDR;
	u64 *pud = boot_table(&init_top_pgt[pgd_index(va)]);
	u64 *pmd = boot_table(&pud[pud_index(va)]);
	poke_pte = boot_table(&pmd[pmd_index(va)]);
	BUILD_BUG_ON(((TEXT_POKE_VADDR >> 12) & 511) + TEXT_POKE_PAGES > 512);
}

/* Physical address behind a mapped kernel virtual address; ~0 if none. */
u64 text_poke_virt_to_phys(u64 va)
{
	static const unsigned shifts[4] = { PGDIR_SHIFT, PUD_SHIFT, PMD_SHIFT, PAGE_SHIFT };
	u64 *t = init_top_pgt;
	for (int lvl = 0; lvl < 4; lvl++) {
		u64 e = t[(va >> shifts[lvl]) & 511];
		if (!(e & _PAGE_PRESENT))
			return ~0UL;
		if (lvl == 3 || (lvl > 0 && (e & _PAGE_PSE))) {
			u64 mask = (1UL << shifts[lvl]) - 1;
			return ((e & PTE_PFN_MASK) & ~mask) | (va & mask);
		}
		t = __va(e & PTE_PFN_MASK);
	}
	return ~0UL;
}

void *text_poke(void *addr, const void *opcode, size_t len)
{
	u64 va = (u64)addr, off = va & (PAGE_SIZE - 1);
	u64 pages = (off + len + PAGE_SIZE - 1) >> PAGE_SHIFT;
	u64 pte0 = pte_index(TEXT_POKE_VADDR);

	BUG_ON(!poke_pte || !len || len > TEXT_POKE_MAX);
	unsigned long flags;
	local_irq_save(flags);
	for (u64 i = 0; i < pages; i++) {
		u64 pa = text_poke_virt_to_phys((va & PAGE_MASK) + (i << PAGE_SHIFT));
		BUG_ON(pa == ~0UL);
		poke_pte[pte0 + i] = (pa & PAGE_MASK) | _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED |
				     _PAGE_DIRTY | _PAGE_NX;
	}
	memcpy((void *)(TEXT_POKE_VADDR + off), opcode, len);
	for (u64 i = 0; i < pages; i++) {
		poke_pte[pte0 + i] = 0;
		invlpg(TEXT_POKE_VADDR + (i << PAGE_SHIFT));
	}
	text_pokes++;
	local_irq_restore(flags);
	if (host_present)
		outl(KMEMU_PORT_CTL, KMEMU_CTL_TEXT_POKE);
	return addr;
}
