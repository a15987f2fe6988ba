"""BIOS services on a real 16-bit Unicorn CPU: registers, carry flag, memory."""

from __future__ import annotations

import struct

import pytest
from keystone import KS_ARCH_X86, KS_MODE_16, Ks
from unicorn import UC_ARCH_X86, UC_HOOK_INTR, UC_MODE_16, Uc
from unicorn import x86_const as x86

from emu.firmware.bios import SMAP, Bios, FirmwareError
from emu.firmware.disk import Disk, DiskError
from emu.firmware.e820 import default_map

CODE = 0x7C00
DAP = 0x6000
BUF = 0x10000


def make_disk(sectors: int = 16) -> bytes:
    return b"".join(bytes([i]) * 512 for i in range(sectors))


def run(asm: str, bios: Bios, regs: dict[str, int] | None = None) -> Uc:
    code = bytes(Ks(KS_ARCH_X86, KS_MODE_16).asm(asm + "\nhlt", CODE)[0])
    uc = Uc(UC_ARCH_X86, UC_MODE_16)
    uc.mem_map(0, 0x110000)
    uc.mem_write(CODE, code)
    for name, val in {"SP": 0x7000, **(regs or {})}.items():
        uc.reg_write(getattr(x86, f"UC_X86_REG_{name}"), val)
    errors: list[Exception] = []

    def on_intr(u: Uc, vector: int, _: object) -> None:
        try:
            bios.interrupt(u, vector)
        except FirmwareError as e:
            errors.append(e)
            u.emu_stop()

    uc.hook_add(UC_HOOK_INTR, on_intr)
    uc.emu_start(CODE, CODE + len(code))
    if errors:
        raise errors[0]
    return uc


def reg(uc: Uc, name: str) -> int:
    return uc.reg_read(getattr(x86, f"UC_X86_REG_{name}"))


def cf(uc: Uc) -> int:
    return reg(uc, "EFLAGS") & 1


def bios(sectors: int = 16, overlay: dict[int, bytes] | None = None) -> Bios:
    return Bios(Disk(make_disk(sectors), overlay), default_map("256M").to_bios_entries())


def test_int13_extensions_check() -> None:
    uc = run("mov ah, 0x41\nmov bx, 0x55aa\nmov dl, 0x80\nint 0x13", bios())
    assert (cf(uc), reg(uc, "BX"), reg(uc, "CX") & 1, reg(uc, "AH")) == (0, 0xAA55, 1, 0x30)
    uc = run("mov ah, 0x41\nmov bx, 0x1234\nmov dl, 0x80\nint 0x13", bios())
    assert cf(uc) == 1 and reg(uc, "AH") == 1
    uc = run("mov ah, 0x41\nmov bx, 0x55aa\nmov dl, 0x81\nint 0x13", bios())
    assert cf(uc) == 1 and reg(uc, "AH") == 1


def dap_read(b: Bios, count: int, lba: int, seg: int = BUF >> 4, off: int = 0) -> Uc:
    asm = (f"mov byte ptr [{DAP:#x}], 16\nmov byte ptr [{DAP + 1:#x}], 0\n"
           f"mov word ptr [{DAP + 2:#x}], {count}\nmov word ptr [{DAP + 4:#x}], {off}\n"
           f"mov word ptr [{DAP + 6:#x}], {seg}\nmov dword ptr [{DAP + 8:#x}], {lba}\n"
           f"mov dword ptr [{DAP + 12:#x}], 0\n"
           f"mov si, {DAP:#x}\nmov ah, 0x42\nmov dl, 0x80\nint 0x13")
    return run(asm, b)


def test_int13_extended_read() -> None:
    uc = dap_read(bios(), 3, 5)
    assert cf(uc) == 0 and reg(uc, "AH") == 0
    want = b"".join(bytes([n]) * 512 for n in (5, 6, 7))
    assert bytes(uc.mem_read(BUF, 3 * 512)) == want


def test_int13_overlay_sector() -> None:
    uc = dap_read(bios(overlay={6: b"\xcc" * 512}), 2, 5)
    assert bytes(uc.mem_read(BUF + 512, 512)) == b"\xcc" * 512


def test_int13_errors() -> None:
    uc = dap_read(bios(), 128, 0)  # more than 127 sectors
    assert cf(uc) == 1 and reg(uc, "AH") == 1
    uc = dap_read(bios(16), 4, 14)  # past the end of the disk
    assert cf(uc) == 1 and reg(uc, "AH") == 4
    assert struct.unpack("<H", uc.mem_read(DAP + 2, 2))[0] == 0  # nothing transferred
    uc = dap_read(bios(), 4, 0, seg=0xFFFF, off=0)  # buffer crosses 1 MiB
    assert cf(uc) == 1
    uc = run("mov ah, 0x08\nmov dl, 0x80\nint 0x13", bios())  # unsupported function
    assert cf(uc) == 1 and reg(uc, "AH") == 1


def e820_walk(b: Bios, size: int = 24) -> tuple[list[tuple[int, int, int, int]], Uc]:
    out = []
    ebx = 0
    while True:
        uc = run(f"mov eax, 0xe820\nmov edx, {SMAP:#x}\nmov ecx, {size}\nmov di, 0x5000\nint 0x15",
                 b, {"EBX": ebx})
        assert cf(uc) == 0 and reg(uc, "EAX") == SMAP and reg(uc, "ECX") == size
        raw = bytes(uc.mem_read(0x5000, 24))
        base, length, typ, attr = struct.unpack("<QQII", raw)
        out.append((base, length, typ, attr))
        ebx = reg(uc, "EBX")
        if ebx == 0:
            return out, uc


def test_e820_walk_gives_the_map() -> None:
    entries, _ = e820_walk(bios())
    assert [(b, n, t) for b, n, t, _ in entries] == default_map("256M").to_bios_entries()
    assert all(a == 1 for *_, a in entries)


def test_e820_20_byte_entries_leave_the_attribute_alone() -> None:
    b = bios()
    uc = run("mov dword ptr [0x5014], 0x77\nmov eax, 0xe820\nmov edx, 0x534d4150\n"
             "mov ecx, 20\nmov di, 0x5000\nint 0x15", b, {"EBX": 0})
    assert reg(uc, "ECX") == 20
    assert struct.unpack("<I", uc.mem_read(0x5014, 4))[0] == 0x77


@pytest.mark.parametrize("asm", [
    "mov eax, 0xe820\nmov edx, 0x12345678\nmov ecx, 24\nmov di, 0x5000\nint 0x15",
    "mov eax, 0xe820\nmov edx, 0x534d4150\nmov ecx, 16\nmov di, 0x5000\nint 0x15",
    "mov eax, 0xe820\nmov edx, 0x534d4150\nmov ecx, 24\nmov ebx, 99\nmov di, 0x5000\nint 0x15",
    "mov eax, 0xe801\nint 0x15",
])
def test_e820_errors(asm: str) -> None:
    uc = run(asm, bios())
    assert cf(uc) == 1 and reg(uc, "AH") == 0x86


def test_int10_teletype() -> None:
    b = bios()
    run("mov ax, 0x0e41\nint 0x10\nmov ax, 0x0e42\nint 0x10\nmov ax, 0x0300\nint 0x10", b)
    assert bytes(b.tty) == b"AB"


def test_unsupported_vector_is_a_clear_error() -> None:
    with pytest.raises(FirmwareError, match="INT 16h"):
        run("mov ah, 0\nint 0x16", bios())


def test_disk_unit() -> None:
    d = Disk(b"\x01" * 700)
    assert d.sectors == 2
    assert d.read(1, 1)[:188] == b"\x01" * 188 and d.read(1, 1)[188:] == bytes(324)
    with pytest.raises(DiskError, match="outside the disk"):
        d.read(1, 2)
    with pytest.raises(DiskError, match="512 bytes"):
        Disk(bytes(1024), {0: b"short"})
    with pytest.raises(DiskError, match="outside the disk"):
        Disk(bytes(1024), {5: bytes(512)})
