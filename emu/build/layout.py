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
BOOT_INFO_E820 = BOOT_INFO + 0x400
E820_MAX = 128
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

# Disk image (LBAs).
STAGE2_LBA = 1
STAGE2_SECTORS = (STAGE2_END - STAGE2_16) // SECTOR
CMDLINE_LBA = STAGE2_LBA + STAGE2_SECTORS
KERNEL_LBA = CMDLINE_LBA + 1
CMDLINE_MAX = 512
MAX_KERNEL_BYTES = BOUNCE_END - BOUNCE
