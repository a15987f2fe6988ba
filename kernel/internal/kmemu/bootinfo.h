/*
 * bootinfo.h - the block the boot stub fills at physical 0x5000 and hands to
 * _start in %rdi, and the E820 table it leaves at E820_TABLE_PA.  Layout is
 * shared with boot/stage2_16.asm and emu/build/layout.py (BOOT_INFO_*,
 * E820_TABLE, E820_MAX; a test compares them); change them together.
 *
 *   0x5000 +0x000 u32 magic        'KMBI'
 *          +0x004 u32 e820_count   entries the BIOS returned (at most E820_MAX_ENTRIES)
 *          +0x008 u32 boot_drive   BIOS drive number in DL at boot
 *          +0x200 char cmdline[512] NUL-terminated kernel command line (a disk sector)
 *   E820_TABLE_PA  e820 entries, 24 bytes each (base, length, type, ACPI 3.0
 *          attrs), ending at 8 MiB: inside the [1 MiB, 9 MiB) every bootable map
 *          has as RAM, past the kernel image (kmain checks).  The stub collects
 *          them below 1 MiB in batches and moves each up with INT 15h AH=87h.
 *
 * The kernel copies the header and points boot_info.e820 at the table, which
 * memblock keeps reserved (count * 24 bytes).  The host refuses longer maps
 * before boot.  Linux keeps 128 entries in the zero page and the rest in
 * setup_data, up to its E820_MAX_ENTRIES (320 to 3200 by config).
 */
#ifndef KMEMU_BOOTINFO_H
#define KMEMU_BOOTINFO_H
#include <linux/types.h>

#define BOOT_INFO_MAGIC 0x49424d4b /* "KMBI" */
#define E820_MAX_ENTRIES 16384
#define E820_TABLE_PA (8 * SZ_1M - E820_MAX_ENTRIES * 24UL)
#define CMDLINE_MAX 512

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3
#define E820_NVS 4
#define E820_UNUSABLE 5
#define E820_PMEM 7

struct boot_e820_entry {
	u64 addr;
	u64 size;
	u32 type;
	u32 ext_attr;
} __packed;

struct boot_info {
	u32 magic;
	u32 e820_count;
	u32 boot_drive;
	u8 reserved[0x200 - 12];
	char cmdline[CMDLINE_MAX];
	/* the kernel's copy only: the table at E820_TABLE_PA, through the direct map */
	struct boot_e820_entry *e820;
} __packed;

/* The kernel's copy, taken before low memory can be reused. */
extern struct boot_info boot_info;

#endif
