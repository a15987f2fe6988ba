"""The boot disk: a raw image plus an overlay of sectors the machine replaces.

Layer 2 (``emu.firmware``).  The overlay is how ``Machine(cmdline=...)``
hands over a command line without touching the image file, as a boot
loader's configuration sector would.
"""

from __future__ import annotations

from emu.core.errors import KmemuError

SECTOR = 512


class DiskError(KmemuError):
    """A read outside the disk or a malformed overlay."""


class Disk:
    """A read-only raw disk image in 512-byte sectors.

    >>> d = Disk(bytes(1024))
    >>> d.sectors
    2
    >>> d.read(1, 1) == bytes(512)
    True
    """

    def __init__(self, image: bytes, overlay: dict[int, bytes] | None = None) -> None:
        if len(image) % SECTOR:
            image = image + bytes(SECTOR - len(image) % SECTOR)
        self.image = image
        self.overlay: dict[int, bytes] = {}
        for lba, data in (overlay or {}).items():
            self.put(lba, data)

    @property
    def sectors(self) -> int:
        return len(self.image) // SECTOR

    def put(self, lba: int, data: bytes) -> None:
        if len(data) != SECTOR:
            raise DiskError(f"overlay sector {lba} must be {SECTOR} bytes, got {len(data)}")
        if not 0 <= lba < self.sectors:
            raise DiskError(f"overlay sector {lba} is outside the disk ({self.sectors} sectors)")
        self.overlay[lba] = data

    def read(self, lba: int, count: int) -> bytes:
        if lba < 0 or count < 0 or lba + count > self.sectors:
            raise DiskError(
                f"read of {count} sectors at LBA {lba} is outside the disk ({self.sectors} sectors)"
            )
        out = bytearray(self.image[lba * SECTOR : (lba + count) * SECTOR])
        for s, data in self.overlay.items():
            if lba <= s < lba + count:
                out[(s - lba) * SECTOR : (s - lba + 1) * SECTOR] = data
        return bytes(out)
