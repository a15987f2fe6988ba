"""The PC BIOS services the boot stub uses, answered from Python (phase 2).

Layer 2 (``emu.firmware``).  Real mode only, called from ``UC_HOOK_INTR``:
Unicorn hands us the vector with IP already past the ``int`` instruction
and no frame pushed, so a service sets registers and the carry flag and
returns.  Behaviour follows the documented BIOS interfaces (and what SeaBIOS
does), so the same boot sector works on QEMU:

* INT 10h AH=0Eh teletype output (other video functions are ignored, as a
  BIOS without a screen would);
* INT 13h AH=00h reset, AH=41h extensions check (EDD 3.0, packet access),
  AH=42h extended read from a DAP; drive 80h only; errors set CF and AH
  (01h invalid request, 04h sector not found);
* INT 15h AX=E820h with the 'SMAP' signature, continuation in EBX (0 after
  the last entry), 20- or 24-byte entries (ACPI 3.0 attribute = 1), CF on a
  bad request;
* INT 15h AH=87h, move CX words between any two physical addresses given
  by the source and destination descriptors (+10h, +18h) of the 48-byte GDT
  at ES:SI (how a real-mode loader writes above 1 MiB); CX above 8000h or
  past a descriptor's limit or outside RAM: CF=1, AH=02h;
  other INT 15h functions return CF=1, AH=86h (unsupported).

Any other vector is a :class:`FirmwareError`: the boot code asked for a
service this BIOS does not provide.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Sequence

from unicorn import Uc, UcError
from unicorn import x86_const as x86
from unicorn.unicorn_py3.unicorn import uclib

from emu.core.errors import KmemuError
from emu.firmware.disk import SECTOR, Disk, DiskError

_REG = {name[len("UC_X86_REG_"):]: value for name, value in vars(x86).items()
        if name.startswith("UC_X86_REG_")}
SMAP = 0x534D4150
BOOT_DRIVE = 0x80
CF = 1


class FirmwareError(KmemuError):
    """The boot code did something the emulated BIOS cannot answer."""


class Bios:
    """BIOS services over one disk and one e820 table (list of (base, length, type))."""

    def __init__(self, disk: Disk, e820: Sequence[tuple[int, int, int]]) -> None:
        self.disk = disk
        self.e820 = list(e820)
        self.tty = bytearray()
        self.calls: list[tuple[int, int]] = []  # (vector, AX) for inspection
        self._val = ctypes.c_uint64()

    # helpers -------------------------------------------------------------------
    # Registers through the C API with a reused buffer (self._val): the binding's
    # reg_read costs ~15 us in Python, and a 10,000-entry map makes 100,000 accesses.
    def _r(self, uc: Uc, name: str) -> int:
        self._val.value = 0  # 8- and 16-bit registers fill only the low bytes
        uclib.uc_reg_read(uc._uch, _REG[name], ctypes.byref(self._val))  # noqa: SLF001
        return self._val.value

    def _w(self, uc: Uc, name: str, value: int) -> None:
        self._val.value = value
        uclib.uc_reg_write(uc._uch, _REG[name], ctypes.byref(self._val))  # noqa: SLF001

    def _set_cf(self, uc: Uc, carry: bool) -> None:
        fl = self._r(uc, "EFLAGS")
        self._w(uc, "EFLAGS", (fl | CF) if carry else (fl & ~CF))

    def _fail(self, uc: Uc, ah: int) -> None:
        self._w(uc, "AH", ah)
        self._set_cf(uc, True)

    def _ok(self, uc: Uc) -> None:
        self._w(uc, "AH", 0)
        self._set_cf(uc, False)

    @staticmethod
    def linear(seg: int, off: int) -> int:
        """seg:off as a physical address, without the 8086 wrap at 1 MiB: A20 is on
        (as SeaBIOS leaves it), so FFFF:0010 is 0x100000, not 0."""
        return (seg << 4) + off

    # dispatch ------------------------------------------------------------------
    def interrupt(self, uc: Uc, vector: int) -> None:
        ax = self._r(uc, "AX")
        self.calls.append((vector, ax))
        if vector == 0x10:
            self.int10(uc)
        elif vector == 0x13:
            self.int13(uc)
        elif vector == 0x15:
            self.int15(uc)
        else:
            cs, ip = self._r(uc, "CS"), self._r(uc, "IP")
            raise FirmwareError(
                f"boot code executed INT {vector:02X}h (AX={ax:04X}) at {cs:04X}:{ip:04X}, "
                "which the kmemu BIOS does not provide"
            )

    def int10(self, uc: Uc) -> None:
        if self._r(uc, "AH") == 0x0E:
            self.tty.append(self._r(uc, "AL"))

    def int13(self, uc: Uc) -> None:
        ah, dl = self._r(uc, "AH"), self._r(uc, "DL")
        if dl != BOOT_DRIVE:
            return self._fail(uc, 0x01)
        if ah == 0x00:
            return self._ok(uc)
        if ah == 0x41:
            if self._r(uc, "BX") != 0x55AA:
                return self._fail(uc, 0x01)
            self._w(uc, "BX", 0xAA55)
            self._w(uc, "CX", 0x0001)  # packet (DAP) access supported
            self._w(uc, "AH", 0x30)  # EDD 3.0
            return self._set_cf(uc, False)
        if ah == 0x42:
            return self.extended_read(uc)
        return self._fail(uc, 0x01)

    def extended_read(self, uc: Uc) -> None:
        dap_at = self.linear(self._r(uc, "DS"), self._r(uc, "SI"))
        dap = bytes(uc.mem_read(dap_at, 16))
        size, _, count, off, seg, lba = struct.unpack("<BBHHHQ", dap)
        if size < 16 or count > 127:
            return self._fail(uc, 0x01)
        buf = self.linear(seg, off)
        if buf + count * SECTOR > 0x100000:
            return self._fail(uc, 0x09)  # DMA boundary error: buffer past 1 MiB
        try:
            data = self.disk.read(lba, count)
        except DiskError:
            uc.mem_write(dap_at + 2, b"\0\0")  # nothing transferred
            return self._fail(uc, 0x04)
        uc.mem_write(buf, data)
        self._ok(uc)

    def int15(self, uc: Uc) -> None:
        if self._r(uc, "AH") == 0x87:
            return self.move_block(uc)
        if self._r(uc, "EAX") != 0xE820:
            return self._fail(uc, 0x86)
        if self._r(uc, "EDX") != SMAP or self._r(uc, "ECX") < 20:
            return self._fail(uc, 0x86)
        idx = self._r(uc, "EBX")
        if idx >= len(self.e820):
            return self._fail(uc, 0x86)
        base, length, typ = self.e820[idx]
        size = 24 if self._r(uc, "ECX") >= 24 else 20
        entry = struct.pack("<QQII", base, length, typ, 1)[:size]
        uc.mem_write(self.linear(self._r(uc, "ES"), self._r(uc, "DI")), entry)
        self._w(uc, "EAX", SMAP)
        self._w(uc, "ECX", size)
        self._w(uc, "EBX", 0 if idx + 1 == len(self.e820) else idx + 1)
        self._set_cf(uc, False)

    @staticmethod
    def _descriptor(raw: bytes) -> tuple[int, int]:
        """(base, limit) of an 8-byte segment descriptor (byte granularity)."""
        limit = raw[0] | raw[1] << 8 | (raw[6] & 0x0F) << 16
        base = raw[2] | raw[3] << 8 | raw[4] << 16 | raw[7] << 24
        return base, limit

    def move_block(self, uc: Uc) -> None:
        """INT 15h AH=87h: copy CX words from the source to the destination descriptor."""
        words = self._r(uc, "CX")
        gdt = bytes(uc.mem_read(self.linear(self._r(uc, "ES"), self._r(uc, "SI")), 48))
        (src, src_limit), (dst, dst_limit) = (self._descriptor(gdt[o:o + 8]) for o in (16, 24))
        n = words * 2
        if words > 0x8000 or n > src_limit + 1 or n > dst_limit + 1:
            return self._fail(uc, 0x02)
        try:
            uc.mem_write(dst, bytes(uc.mem_read(src, n)))
        except UcError:
            return self._fail(uc, 0x02)
        self._ok(uc)
