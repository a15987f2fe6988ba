"""Fixed addresses and disk layout shared by the boot stub, kernel and firmware.

Layer 3 (``emu.build``).  These mirror ``kernel/internal/kmemu/memlayout.h`` and
``kernel/internal/kmemu/bootinfo.h``; change them together.
"""

from __future__ import annotations

SECTOR = 512

# Physical memory during boot (see kernel/internal/kmemu/memlayout.h).
EARLY_PT = 0x1000
BOOT_INFO = 0x5000
BOOT_INFO_MAGIC = 0x49424D4B  # "KMBI"
BOOT_INFO_CMDLINE = BOOT_INFO + 0x200
# The boot stub collects the E820 map in batches at E820_BATCH (real mode, segment
# E820_BATCH >> 4; low RAM check_bootable() guarantees) and moves each batch up to the
# table at E820_TABLE (INT 15h AH=87h), in [1 MiB, 9 MiB) past the kernel.  E820_MAX,
# E820_TABLE: E820_MAX_ENTRIES, E820_TABLE_PA in kernel/internal/kmemu/bootinfo.h.
E820_BATCH = 0x80000
E820_BATCH_BYTES = 2560 * 24
E820_MAX = 16384
E820_TABLE = 0x800000 - E820_MAX * 24  # 0x7a0000: ends at 8 MiB
MOVE_GDT = 0x6E00  # 48 bytes: the descriptors of an INT 15h AH=87h move
E820_DEST_VAR = 0x6FE0  # u32: where the next E820 batch goes
E820_MORE_VAR = 0x6FE4  # u8: the last batch was full
DAP_VAR = 0x6F00
DRIVE_VAR = 0x6FF0
BOOT_SECTOR = 0x7C00
STAGE2_16 = 0x8000
STAGE2_32 = 0x8800
STAGE2_64 = 0x8C00
STAGE2_END = 0x9000
BOUNCE = 0x10000
BOUNCE_END = 0x80000
KERNEL_PA = 0x100000
KERNEL_VIRT = 0xFFFFFFFF80000000
PAGE_OFFSET = 0xFFFF888000000000
# text_poke()'s window (TEXT_POKE_VADDR, TEXT_POKE_PAGES in memlayout.h): mapped only
# while the kernel patches its code, so a walk normally finds it empty.
TEXT_POKE_VADDR = 0xFFFFFFFFFF400000
TEXT_POKE_PAGES = 2

# Disk image (LBAs).
STAGE2_LBA = 1
STAGE2_SECTORS = (STAGE2_END - STAGE2_16) // SECTOR
CMDLINE_LBA = STAGE2_LBA + STAGE2_SECTORS
KERNEL_LBA = CMDLINE_LBA + 1
CMDLINE_MAX = 512
MAX_KERNEL_BYTES = BOUNCE_END - BOUNCE
