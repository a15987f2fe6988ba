/*
 * kmemu/memlayout.h - where things live, physically and virtually.
 *
 * Physical (set by the boot stub, boot/):
 *
 *   0x00001000 - 0x00004fff  early page tables (PML4, PDPT low, PDPT high, PD)
 *   0x00005000 - 0x000053ff  struct boot_info (E820 count, command line)
 *   0x00007c00               boot sector, stack below it during boot
 *   0x00008000 - 0x00008fff  stage 2 (16-bit 0x8000, 32-bit 0x8800, 64-bit 0x8c00)
 *   0x00010000 - 0x0007ffff  bounce buffer the kernel is read into by INT 13h
 *   0x00080000 - 0x0008efff  E820 batches the boot stub collects (bootinfo.h)
 *   0x00100000 - ...          kernel image (text, rodata, data, kallsyms, bss)
 *   0x007a0000 - 0x007fffff  E820 table (E820_TABLE_PA, bootinfo.h)
 *
 * Virtual (x86-64, 4-level, the same places Linux uses):
 *
 *   0xffff888000000000 + pa   direct map of all RAM          (__va / __pa)
 *   0xffffc90000000000 ...    vmalloc area (later)
 *   0xffffea0000000000 + pfn*64  vmemmap: struct page for every pfn, backed
 *                                only for 2 MiB sections that hold RAM
 *   0xffffffff80000000 + pa   kernel image                   (__pa_symbol)
 *   0xffffffffa0000000 ...    module area, to MODULES_END (module.c), 4 KiB pages
 *   0xffffffffff400000        text_poke() window, 2 pages (text_patching.h): the
 *                             only writable alias of code, and only during a poke
 */
#ifndef KMEMU_MEMLAYOUT_H
#define KMEMU_MEMLAYOUT_H
#include <linux/types.h>
#include <linux/sizes.h>
#include <asm/page.h>
#include <asm/pgtable_64_types.h>

#define START_KERNEL_MAP 0xffffffff80000000UL
#define KERNEL_LOAD_PA 0x100000UL

#define BOOT_INFO_PA 0x5000UL
#define EARLY_PT_PA 0x1000UL
#define EARLY_PT_END 0x5000UL
/* The early tables map the first 1 GiB at the direct map and the kernel map. */
#define EARLY_MAPPED_TOP SZ_1G

/* text_poke()'s window: two 4 KiB pages past MODULES_END, one reserved PTE table
 * (kmemu's own place; Linux maps a temporary mm instead).  emu/build/layout.py. */
#define TEXT_POKE_VADDR 0xffffffffff400000UL
#define TEXT_POKE_PAGES 2

#define __pa_symbol(va) ((u64)(va) - START_KERNEL_MAP)

/* Linker-script symbols */
extern char __kernel_start[], _stext[], _etext[], __image_end[];
extern char __bss_start[], __bss_end[], __kernel_end[];
/* kernel.ld's permission regions: text RX, rodata RO+NX, data/bss RW+NX (page aligned) */
extern char __start_rodata[], __end_rodata[], _sdata[];

#endif
