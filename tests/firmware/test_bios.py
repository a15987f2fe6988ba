"""The kmemu BIOS (phase 2) answering real-mode code on a real 16-bit Unicorn CPU.

Each test assembles a small snippet with keystone, runs it with
``UC_HOOK_INTR`` wired to :meth:`Bios.interrupt`, then looks at registers,
flags and memory.  Every ``int`` is followed by ``setc`` into a scratch byte so
the tests also prove the *guest* sees the carry flag the BIOS set from Python
(what a ``jc`` in the boot sector depends on), not just ``reg_read``.  Before
each ``int`` the carry is forced to the opposite of the expected result, so a
BIOS that forgot to set or clear it would fail.
"""

from __future__ import annotations

import struct

import pytest
from keystone import KS_ARCH_X86, KS_MODE_16, Ks
from unicorn import UC_ARCH_X86, UC_HOOK_INTR, UC_MODE_16, Uc
from unicorn import x86_const as x86

from emu.core.errors import KmemuError
from emu.firmware.bios import SMAP, Bios, FirmwareError
from emu.firmware.disk import SECTOR, Disk, DiskError
from emu.firmware.e820 import default_map

MIB = 0x100000
CODE = 0x7C00
STACK = 0x7000
SEEN_CF = 0x500  # the guest stores its view of CF here after each int
DAP = 0x6000
BUF = 0x20000
E820_BUF = 0x5000
E820 = default_map("256M").to_bios_entries()


def disk_bytes(sectors: int) -> bytes:
    """Sector n is filled with the byte n (mod 256), so any mix-up shows."""
    return b"".join(bytes([n & 0xFF]) * SECTOR for n in range(sectors))


def make_bios(sectors: int = 32, overlay: dict[int, bytes] | None = None) -> Bios:
    return Bios(Disk(disk_bytes(sectors), overlay), E820)


def reg(uc: Uc, name: str) -> int:
    return uc.reg_read(getattr(x86, f"UC_X86_REG_{name}"))


def cf(uc: Uc) -> int:
    return reg(uc, "EFLAGS") & 1


def run(asm: str, bios: Bios, *, expect_cf: int | None = None,
        regs: dict[str, int] | None = None, setup: dict[int, bytes] | None = None) -> Uc:
    """Run ``asm`` (then ``hlt``) at 0:7C00 with 1 MiB of RAM and the BIOS hooked.

    With ``expect_cf`` given, the carry is set to its opposite right before the
    snippet, the snippet's last instruction must be the ``int``, and the carry
    the guest saw afterwards is checked against what ``reg_read`` reports.
    """
    pre = "" if expect_cf is None else ("clc" if expect_cf else "stc")
    post = "" if expect_cf is None else f"setc byte ptr cs:[{SEEN_CF:#x}]"  # CS is 0
    src = "\n".join(x for x in (pre, asm, post, "hlt") if x)
    code = bytes(Ks(KS_ARCH_X86, KS_MODE_16).asm(src, CODE)[0])
    uc = Uc(UC_ARCH_X86, UC_MODE_16)
    uc.mem_map(0, MIB)
    uc.mem_write(CODE, code)
    uc.mem_write(SEEN_CF, b"\xee")
    for addr, data in (setup or {}).items():
        uc.mem_write(addr, data)
    for name, val in {"SP": STACK, **(regs or {})}.items():
        uc.reg_write(getattr(x86, f"UC_X86_REG_{name}"), val)
    uc.hook_add(UC_HOOK_INTR, lambda u, vector, _: bios.interrupt(u, vector))
    uc.emu_start(CODE, CODE + len(code))
    assert reg(uc, "IP") == CODE + len(code), "the snippet did not run to its end"
    if expect_cf is not None:
        seen = uc.mem_read(SEEN_CF, 1)[0]
        assert seen == cf(uc), "the guest saw a different carry than the registers say"
        assert cf(uc) == expect_cf
    return uc


# --- INT 13h AH=41h: extensions check ----------------------------------------------------


def test_int13_41_extensions_present() -> None:
    uc = run("mov ah, 0x41\nmov bx, 0x55aa\nmov dl, 0x80\nint 0x13", make_bios(), expect_cf=0)
    assert reg(uc, "BX") == 0xAA55
    assert reg(uc, "CX") & 1  # bit 0: fixed-disk access subset (packet / DAP reads)
    assert reg(uc, "AH") != 0  # major version of the extensions (EDD 3.0 = 30h)


@pytest.mark.parametrize("bx, dl", [(0x1234, 0x80), (0xAA55, 0x80), (0x55AA, 0x81),
                                    (0x55AA, 0x00)])
def test_int13_41_bad_signature_or_drive(bx: int, dl: int) -> None:
    uc = run(f"mov ah, 0x41\nmov bx, {bx:#x}\nmov dl, {dl:#x}\nint 0x13", make_bios(),
             expect_cf=1)
    assert reg(uc, "AH") == 0x01
    assert reg(uc, "BX") == bx  # not turned into AA55 on failure


# --- INT 13h AH=42h: extended read --------------------------------------------------------


def dap(count: int, lba: int, seg: int, off: int, size: int = 16) -> bytes:
    return struct.pack("<BBHHHQ", size, 0, count, off, seg, lba)


def ext_read(bios: Bios, count: int, lba: int, seg: int = BUF >> 4, off: int = 0, *,
             expect_cf: int, ds: int = 0, si: int = DAP, drive: int = 0x80,
             size: int = 16) -> Uc:
    """INT 13h AH=42h with the DAP at DS:SI (placed in memory before the run)."""
    setup = {(ds << 4) + si: dap(count, lba, seg, off, size)}
    asm = (f"mov ax, {ds:#x}\nmov ds, ax\nmov si, {si:#x}\n"
           f"mov ah, 0x42\nmov dl, {drive:#x}\nint 0x13")
    return run(asm, bios, expect_cf=expect_cf, setup=setup)


def test_int13_42_reads_the_right_sectors_to_seg_off() -> None:
    uc = ext_read(make_bios(), 3, 5, seg=0x1234, off=0x0010, expect_cf=0)
    assert reg(uc, "AH") == 0
    at = (0x1234 << 4) + 0x10
    assert bytes(uc.mem_read(at, 3 * SECTOR)) == disk_bytes(8)[5 * SECTOR:]
    assert bytes(uc.mem_read(at - 16, 16)) == bytes(16)  # nothing before the buffer
    assert bytes(uc.mem_read(at + 3 * SECTOR, 16)) == bytes(16)  # nor after it


def test_int13_42_dap_found_through_ds_si() -> None:
    uc = ext_read(make_bios(), 1, 7, ds=0x0700, si=0x0040, expect_cf=0)
    assert bytes(uc.mem_read(BUF, SECTOR)) == bytes([7]) * SECTOR


def test_int13_42_whole_disk_up_to_the_last_sector() -> None:
    uc = ext_read(make_bios(32), 32, 0, expect_cf=0)
    assert bytes(uc.mem_read(BUF, 32 * SECTOR)) == disk_bytes(32)


def test_int13_42_zero_sectors_is_a_no_op() -> None:
    uc = ext_read(make_bios(), 0, 3, expect_cf=0)
    assert bytes(uc.mem_read(BUF, SECTOR)) == bytes(SECTOR)


def test_int13_42_up_to_127_sectors() -> None:
    uc = ext_read(make_bios(200), 127, 1, seg=0x2000, expect_cf=0)
    assert bytes(uc.mem_read(0x20000, 127 * SECTOR)) == disk_bytes(128)[SECTOR:]


def test_int13_42_more_than_127_sectors_is_invalid() -> None:
    uc = ext_read(make_bios(200), 128, 0, expect_cf=1)
    assert reg(uc, "AH") == 0x01
    assert bytes(uc.mem_read(BUF, SECTOR)) == bytes(SECTOR)


def test_int13_42_short_dap_is_invalid() -> None:
    uc = ext_read(make_bios(), 1, 0, size=8, expect_cf=1)
    assert reg(uc, "AH") == 0x01


def test_int13_42_wrong_drive() -> None:
    uc = ext_read(make_bios(), 1, 0, drive=0x81, expect_cf=1)
    assert reg(uc, "AH") == 0x01
    assert bytes(uc.mem_read(BUF, SECTOR)) == bytes(SECTOR)


@pytest.mark.parametrize("count, lba", [(4, 30), (1, 32), (1, 1000), (2, 31)])
def test_int13_42_past_the_end_of_the_disk(count: int, lba: int) -> None:
    uc = ext_read(make_bios(32), count, lba, expect_cf=1)
    assert reg(uc, "AH") == 0x04  # sector not found
    assert struct.unpack("<H", uc.mem_read(DAP + 2, 2))[0] == 0  # DAP count: none transferred
    assert bytes(uc.mem_read(BUF, count * SECTOR)) == bytes(count * SECTOR)


def test_int13_42_buffer_crossing_1mib() -> None:
    # F000:FE00 is 0xFFE00: one sector fits below 1 MiB, two do not.
    uc = ext_read(make_bios(), 1, 9, seg=0xF000, off=0xFE00, expect_cf=0)
    assert bytes(uc.mem_read(0xFFE00, SECTOR)) == bytes([9]) * SECTOR
    uc = ext_read(make_bios(), 2, 9, seg=0xF000, off=0xFE00, expect_cf=1)
    assert bytes(uc.mem_read(0xFFE00, SECTOR)) == bytes(SECTOR)


def test_int13_42_buffer_above_1mib_does_not_wrap_to_0() -> None:
    uc = ext_read(make_bios(), 1, 9, seg=0xFFFF, off=0x0010, expect_cf=1)
    assert bytes(uc.mem_read(0, SECTOR)) == bytes(SECTOR)


def test_int13_42_overlay_sectors_replace_image_sectors() -> None:
    overlay = {6: b"\xcc" * SECTOR, 8: b"cmdline".ljust(SECTOR, b"\0")}
    uc = ext_read(make_bios(overlay=overlay), 4, 5, expect_cf=0)
    got = bytes(uc.mem_read(BUF, 4 * SECTOR))
    assert got[:SECTOR] == bytes([5]) * SECTOR
    assert got[SECTOR:2 * SECTOR] == b"\xcc" * SECTOR
    assert got[2 * SECTOR:3 * SECTOR] == bytes([7]) * SECTOR
    assert got[3 * SECTOR:] == overlay[8]


def test_int13_reset_and_unknown_function() -> None:
    uc = run("mov ah, 0x00\nmov dl, 0x80\nint 0x13", make_bios(), expect_cf=0)
    assert reg(uc, "AH") == 0
    uc = run("mov ah, 0x08\nmov dl, 0x80\nint 0x13", make_bios(), expect_cf=1)
    assert reg(uc, "AH") == 0x01


def test_boot_sector_style_sequence() -> None:
    """Check extensions, then read, in one run, branching on CF like mbr.asm does."""
    asm = f"""
    mov ah, 0x41
    mov bx, 0x55aa
    mov dl, 0x80
    int 0x13
    jc bad
    cmp bx, 0xaa55
    jne bad
    mov si, {DAP:#x}
    mov ah, 0x42
    mov dl, 0x80
    int 0x13
    jc bad
    mov ax, 0x1111
    jmp done
bad:
    mov ax, 0xdead
done:
    nop
"""
    b = make_bios()
    uc = run(asm, b, setup={DAP: dap(2, 3, BUF >> 4, 0)})
    assert reg(uc, "AX") == 0x1111
    assert bytes(uc.mem_read(BUF, 2 * SECTOR)) == disk_bytes(5)[3 * SECTOR:]
    assert [v for v, _ in b.calls] == [0x13, 0x13]
    assert [ax >> 8 for _, ax in b.calls] == [0x41, 0x42]


# --- INT 15h AX=E820h ---------------------------------------------------------------------


def e820_call(bios: Bios, ebx: int, ecx: int = 24, *, edx: int = SMAP, eax: int = 0xE820,
              expect_cf: int = 0, es: int = 0, di: int = E820_BUF) -> Uc:
    asm = (f"mov ax, {es:#x}\nmov es, ax\nmov di, {di:#x}\n"
           f"mov eax, {eax:#x}\nmov edx, {edx:#x}\nmov ecx, {ecx}\nmov ebx, {ebx}\nint 0x15")
    return run(asm, bios, expect_cf=expect_cf,
               setup={(es << 4) + di: b"\xa5" * 32})


def e820_walk(ecx: int) -> list[tuple[Uc, bytes]]:
    b = make_bios()
    out = []
    ebx = 0
    for _ in range(len(E820) + 1):
        uc = e820_call(b, ebx, ecx)
        out.append((uc, bytes(uc.mem_read(E820_BUF, 32))))
        ebx = reg(uc, "EBX")
        if ebx == 0:
            return out
    pytest.fail("EBX never came back 0")


def test_e820_walk_24_byte_entries_gives_exactly_the_map() -> None:
    got = []
    for uc, raw in e820_walk(24):
        assert reg(uc, "EAX") == SMAP
        assert reg(uc, "ECX") == 24
        base, length, typ, attr = struct.unpack_from("<QQII", raw)
        assert attr == 1  # ACPI 3.0 extended attributes: bit 0 "enabled"
        assert raw[24:] == b"\xa5" * 8  # nothing written past the entry
        got.append((base, length, typ))
    assert got == E820


def test_e820_walk_20_byte_entries() -> None:
    got = []
    for uc, raw in e820_walk(20):
        assert reg(uc, "EAX") == SMAP
        assert reg(uc, "ECX") == 20
        assert raw[20:] == b"\xa5" * 12  # the attribute is not written
        got.append(struct.unpack_from("<QQI", raw))
    assert got == E820


def test_e820_larger_buffer_gets_24_bytes() -> None:
    uc = e820_call(make_bios(), 0, 32)
    assert reg(uc, "ECX") == 24


def test_e820_continuation_values() -> None:
    b = make_bios()
    seen = [reg(e820_call(b, i), "EBX") for i in range(len(E820))]
    assert seen == [*range(1, len(E820)), 0]


def test_e820_entry_goes_to_es_di() -> None:
    uc = e820_call(make_bios(), 3, es=0x0400, di=0x0010)
    assert struct.unpack("<QQI", uc.mem_read(0x4010, 20)) == E820[3]


@pytest.mark.parametrize("edx, ecx, ebx", [
    (0x12345678, 24, 0),   # bad signature
    (SMAP, 19, 0),         # buffer too small
    (SMAP, 0, 0),
    (SMAP, 24, len(E820)),  # continuation out of range
    (SMAP, 24, 0xFFFFFFFF),
])
def test_e820_bad_requests_set_cf(edx: int, ecx: int, ebx: int) -> None:
    uc = e820_call(make_bios(), ebx, ecx, edx=edx, expect_cf=1)
    assert bytes(uc.mem_read(E820_BUF, 24)) == b"\xa5" * 24  # nothing written


@pytest.mark.parametrize("ax", [0xE801, 0x8800, 0xC000, 0xE821])
def test_int15_other_functions_unsupported(ax: int) -> None:
    uc = run(f"mov ax, {ax:#x}\nint 0x15", make_bios(), expect_cf=1)
    assert reg(uc, "AH") == 0x86


# --- INT 15h AH=87h -------------------------------------------------------------------------
GDT_AT = 0x6000


def move_gdt(src: int, dst: int, limit: int = 0xFFFF) -> bytes:
    """The 48-byte table AH=87h takes: source descriptor at +10h, destination at +18h."""
    def desc(base: int) -> bytes:
        return struct.pack("<HHBBBB", limit & 0xFFFF, base & 0xFFFF, base >> 16 & 0xFF, 0x93,
                           limit >> 16 & 0xF, base >> 24)
    return bytes(16) + desc(src) + desc(dst) + bytes(16)


def move_call(cx: int, gdt: bytes, expect_cf: int) -> Uc:
    data = bytes(range(256)) * 4
    return run(f"mov si, {GDT_AT:#x}\nmov cx, {cx:#x}\nmov ah, 0x87\nint 0x15", make_bios(),
               expect_cf=expect_cf,
               setup={GDT_AT: gdt, 0x30000: data, 0x40000: b"\xa5" * 0x400})


def test_int15_87h_moves_cx_words_between_the_descriptors() -> None:
    uc = move_call(0x100, move_gdt(0x30000, 0x40010), expect_cf=0)
    assert reg(uc, "AH") == 0
    assert bytes(uc.mem_read(0x40010, 0x200)) == (bytes(range(256)) * 2)
    assert bytes(uc.mem_read(0x40000, 0x10)) == b"\xa5" * 16  # nothing around it
    assert bytes(uc.mem_read(0x40210, 0x10)) == b"\xa5" * 16


@pytest.mark.parametrize("cx, limit, dst", [
    (0x8001, 0xFFFF, 0x40000),     # more than 64 KiB
    (0x100, 0xFF, 0x40000),        # past the descriptors' limit
    (0x100, 0xFFFF, 0x01000000),   # the destination is not RAM (1 MiB here)
])
def test_int15_87h_bad_moves_set_cf_and_ah_02(cx: int, limit: int, dst: int) -> None:
    uc = move_call(cx, move_gdt(0x30000, dst, limit), expect_cf=1)
    assert reg(uc, "AH") == 0x02
    assert bytes(uc.mem_read(0x40000, 0x400)) == b"\xa5" * 0x400  # nothing moved


# --- INT 10h and unsupported vectors ------------------------------------------------------


def test_int10_teletype_appends_to_tty() -> None:
    b = make_bios()
    b.tty.extend(b">")
    asm = "\n".join(f"mov ax, {0x0E00 | c:#x}\nmov bx, 7\nint 0x10" for c in b"hi\r\n")
    run(asm + "\nmov ax, 0x0300\nint 0x10\nmov ax, 0x0e21\nint 0x10", b)
    assert bytes(b.tty) == b">hi\r\n!"  # AH=03h (cursor) is ignored, not printed


def test_teletype_loop_like_the_boot_sector() -> None:
    msg = 0x600
    asm = f"""
    mov si, {msg:#x}
next:
    lodsb
    test al, al
    jz done
    mov ah, 0x0e
    mov bx, 7
    int 0x10
    jmp next
done:
    nop
"""
    b = make_bios()
    run(asm, b, setup={msg: b"kmemu: ok\r\n\0"})
    assert bytes(b.tty) == b"kmemu: ok\r\n"


@pytest.mark.parametrize("vector", [0x16, 0x12, 0x1A, 0x80])
def test_unsupported_vector_raises_firmware_error(vector: int) -> None:
    with pytest.raises(FirmwareError, match=f"INT {vector:02X}h") as exc:
        run(f"mov ax, 0x1234\nint {vector:#x}", make_bios())
    assert "AX=1234" in str(exc.value)
    assert isinstance(exc.value, KmemuError)


# --- Disk -------------------------------------------------------------------------------


def test_disk_reads_whole_sectors() -> None:
    d = Disk(disk_bytes(8))
    assert d.sectors == 8
    assert d.read(0, 8) == disk_bytes(8)
    assert d.read(2, 3) == bytes([2]) * SECTOR + bytes([3]) * SECTOR + bytes([4]) * SECTOR
    assert d.read(7, 1) == bytes([7]) * SECTOR
    assert d.read(8, 0) == b""


def test_disk_pads_a_partial_last_sector() -> None:
    d = Disk(b"\x01" * (SECTOR + 100))
    assert d.sectors == 2
    assert d.read(1, 1) == b"\x01" * 100 + bytes(SECTOR - 100)
    assert Disk(b"").sectors == 0


@pytest.mark.parametrize("lba, count", [(0, 9), (8, 1), (-1, 1), (0, -1), (100, 1)])
def test_disk_read_outside(lba: int, count: int) -> None:
    with pytest.raises(DiskError, match="outside the disk"):
        Disk(disk_bytes(8)).read(lba, count)


def test_disk_overlay_replaces_sectors_without_touching_the_image() -> None:
    image = disk_bytes(8)
    d = Disk(image, {0: b"\x11" * SECTOR, 7: b"\x77" * SECTOR})
    assert d.read(0, 1) == b"\x11" * SECTOR
    assert d.read(6, 2) == bytes([6]) * SECTOR + b"\x77" * SECTOR
    assert d.read(1, 6) == image[SECTOR:7 * SECTOR]
    assert d.image == image
    d.put(3, b"\x33" * SECTOR)
    assert d.read(3, 1) == b"\x33" * SECTOR


@pytest.mark.parametrize("overlay, message", [
    ({0: b"short"}, "512 bytes"),
    ({0: bytes(SECTOR + 1)}, "512 bytes"),
    ({8: bytes(SECTOR)}, "outside the disk"),
    ({-1: bytes(SECTOR)}, "outside the disk"),
])
def test_disk_overlay_validation(overlay: dict[int, bytes], message: str) -> None:
    with pytest.raises(DiskError, match=message):
        Disk(disk_bytes(8), overlay)


def test_disk_error_is_a_kmemu_error() -> None:
    assert issubclass(DiskError, KmemuError)
