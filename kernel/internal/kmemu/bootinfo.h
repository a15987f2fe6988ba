/*
 * bootinfo.h - the block the boot stub fills at physical 0x5000 and hands to
 * _start in %rdi.  Layout is shared with boot/stage2_16.asm and
 * emu/build/image.py (BOOT_INFO_* constants); change all three together.
 *
 *   +0x000 u32 magic        'KMBI'
 *   +0x004 u32 e820_count   entries the BIOS returned (at most 128)
 *   +0x008 u32 boot_drive   BIOS drive number in DL at boot
 *   +0x200 char cmdline[512] NUL-terminated kernel command line (a disk sector)
 *   +0x400 e820 entries, 24 bytes each (base, length, type, ACPI 3.0 attrs)
 */
#ifndef KMEMU_BOOTINFO_H
#define KMEMU_BOOTINFO_H
#include <linux/types.h>

#define BOOT_INFO_MAGIC 0x49424d4b /* "KMBI" */
#define E820_MAX_ENTRIES 128
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
	struct boot_e820_entry e820[E820_MAX_ENTRIES];
} __packed;

/* The kernel's copy, taken before low memory can be reused. */
extern struct boot_info boot_info;

#endif
