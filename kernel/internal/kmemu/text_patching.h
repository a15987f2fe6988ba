/*
 * kmemu/text_patching.h - changing kernel (and module) code at run time.
 *
 * Contract of text_poke(addr, opcode, len):
 *   - writes len bytes (1..TEXT_POKE_MAX) at the code address addr, which may
 *     straddle one page boundary; kernel image or module text;
 *   - never relies on the code being writable where it runs: the page(s)
 *     behind addr are mapped for the duration at TEXT_POKE_VADDR
 *     (<kmemu/memlayout.h>) with a temporary writable, non-executable PTE,
 *     written there, unmapped, and that TLB entry flushed with invlpg
 *     (Linux does the same in spirit with a temporary mm);
 *   - interrupts are off meanwhile, so no handler runs half-patched code on
 *     this CPU (kmemu has one; Linux's SMP path adds int3 breakpoints);
 *   - may not be called from interrupt context; returns addr.
 * Under kmemu it then tells the host (KMEMU_CTL_TEXT_POKE), whose snapshots
 * must know the kernel's code changed (emu/machine/modules.py: code version).
 * text_poke_init() reserves the window's page table; call after paging_init().
 */
#ifndef KMEMU_TEXT_PATCHING_H
#define KMEMU_TEXT_PATCHING_H
#include <linux/types.h>

#define TEXT_POKE_MAX 16

void text_poke_init(void);
void *text_poke(void *addr, const void *opcode, size_t len);
u64 text_poke_virt_to_phys(u64 va); /* ~0 if not mapped */
extern u64 text_pokes; /* how many pokes so far (for views and tests) */

/* jump_label.c (the API is <linux/jump_label.h>) */
struct module;
void jump_label_init(void);
void jump_label_module_init(struct module *mod);
void jump_label_module_drop_init(struct module *mod, u64 lo, u64 hi);
extern u64 jump_label_patched;

#endif
