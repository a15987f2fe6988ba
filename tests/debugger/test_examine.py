"""gdb's x and info registers formats, from plain bytes (no machine)."""

from __future__ import annotations

import pytest

from emu.core.errors import BadArgument, PageFault
from emu.frontend.debugger.examine import (
    AccessError,
    examine,
    format_flags,
    format_registers,
    format_unit,
    read_code,
    unit_size,
)

BASE = 0xFFFF888000001000
MEM = bytes(range(256)) + b"kmalloc-64\0second\0" + b"A" * 300 + b"\0"


def read(addr: int, n: int) -> bytes:
    off = addr - BASE
    if off < 0 or off + n > 0x1000:  # one readable page
        raise PageFault(addr, "PTE", None, "not present")
    return (MEM + bytes(0x1000))[off:off + n]


def where(addr: int) -> str | None:
    return {BASE: "zones", BASE + 16: "zones+16"}.get(addr)


def lines_of(addr: int, count: int, fmt: str, size: str) -> tuple[list[str], int]:
    out: list[str] = []
    nxt = examine(read, addr, count, fmt, size, where, out.append)
    return out, nxt


def test_hex_giants_two_per_line_with_symbol_labels() -> None:
    out, nxt = lines_of(BASE, 4, "x", "g")
    assert out == ["0xffff888000001000 <zones>:\t0x0706050403020100\t0x0f0e0d0c0b0a0908",
                   "0xffff888000001010 <zones+16>:\t0x1716151413121110\t0x1f1e1d1c1b1a1918"]
    assert nxt == BASE + 32


@pytest.mark.parametrize("fmt, size, count, expected", [
    ("x", "b", 3, "0x00\t0x01\t0x02"),
    ("x", "h", 2, "0x0100\t0x0302"),
    ("d", "b", 1, "0"),
    ("u", "w", 1, str(0x03020100)),
    ("o", "b", 2, "0\t01"),
    ("t", "b", 2, "00000000\t00000001"),
    ("z", "w", 1, "0x03020100"),
])
def test_unit_formats(fmt: str, size: str, count: int, expected: str) -> None:
    out, _ = lines_of(BASE, count, fmt, size)
    assert out[0].split(":\t", 1)[1] == expected


def test_signed_chars_and_addresses() -> None:
    assert format_unit(0xFF, "d", 1, where) == "-1"
    assert format_unit(0x41, "c", 1, where) == "65 'A'"
    assert format_unit(0x0A, "c", 1, where) == "10 '\\n'"
    assert format_unit(0x00, "c", 1, where) == "0 '\\000'"
    assert format_unit(BASE + 16, "a", 8, where) == "0xffff888000001010 <zones+16>"
    assert format_unit(0x1234, "a", 8, where) == "0x1234"


def test_strings_stop_at_nul_and_long_ones_are_cut() -> None:
    out, nxt = lines_of(BASE + 256, 3, "s", "b")
    assert out[0] == '0xffff888000001100:\t"kmalloc-64"'
    assert out[1] == '0xffff88800000110b:\t"second"'
    assert out[2] == f'0xffff888000001112:\t"{"A" * 200}"...'
    assert nxt > BASE + 256 + 18 + 200


def test_unreadable_memory_after_some_lines() -> None:
    out: list[str] = []
    with pytest.raises(AccessError, match="Cannot access memory at address 0xffff888000002000"):
        examine(read, BASE + 0x1000 - 16, 4, "x", "g", where, out.append)
    assert len(out) == 1  # the readable line came first
    with pytest.raises(AccessError, match="address 0x0 "):
        examine(read, 0, 1, "x", "g", where, out.append)


def test_read_code_stops_at_an_unreadable_page() -> None:
    assert len(read_code(read, BASE + 0x1000 - 5, 60)) == 5
    with pytest.raises(AccessError):
        read_code(read, 0, 16)


def test_unit_size_defaults_follow_gdb() -> None:
    assert unit_size("x", None, "w") == "w"
    assert unit_size("a", None, "w") == "g"
    assert unit_size("c", None, "g") == "b"
    assert unit_size("x", "h", "w") == "h"


def test_registers() -> None:
    regs = {n: 0 for n in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9",
                           "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags", "cs", "ss",
                           "ds", "es", "fs", "gs", "fs_base", "gs_base", "cr0", "cr2", "cr3",
                           "cr4")}
    regs.update(rax=(1 << 64) - 1, rip=BASE + 16, rflags=0x246, rsp=BASE, cr0=0x80010011,
                cr3=0xffbf000, cr4=0xa0)
    text = format_registers(regs, (), where)
    assert text.splitlines()[0] == "rax            0xffffffffffffffff  -1"  # gdb's columns
    assert "rip            0xffff888000001010  0xffff888000001010 <zones+16>" in text
    assert "eflags         0x246               [ PF ZF IF ]" in text
    # the control registers as gdb shows them on QEMU (kmemu's stub sends none)
    assert "cr0            0x80010011          [ PG WP ET PE ]" in text
    assert "cr3            0xffbf000           [ PDBR=65471 PCID=0 ]" in text
    assert "cr4            0xa0                [ PGE PAE ]" in text
    assert len(text.splitlines()) == 30
    assert format_registers(regs, ("pc", "rflags"), where).splitlines()[1].startswith("eflags")
    with pytest.raises(BadArgument, match="invalid register 'xmm0'"):
        format_registers(regs, ("xmm0",), where)
    assert format_flags(0) == "[ ]"
