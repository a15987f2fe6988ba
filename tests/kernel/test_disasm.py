"""emu.kernel.disasm: symbolised Intel-syntax disassembly of the real kernel."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from functools import cache
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from emu import BreakpointHit, Machine
from emu.core.errors import BadArgument, KmemuError
from emu.kernel.disasm import (
    disassemble,
    disassemble_function,
    format_disassembly,
    format_insn,
    function_extent,
)
from emu.kernel.symbols import Symbols

INSN_LINE = re.compile(r"(=>|  ) 0x[0-9a-f]{16} <[\w.]+\+\d+>:\t\S.*")


@cache
def text_section(elf: Path) -> tuple[int, bytes]:
    with elf.open("rb") as f:
        sec = ELFFile(f).get_section_by_name(".text")
        return sec["sh_addr"], sec.data()


def elf_reader(elf: Path):
    base, data = text_section(elf)

    def read(va: int, n: int) -> bytes:
        assert base <= va and va + n <= base + len(data)
        return data[va - base:va - base + n]
    return read


def test_a_whole_function_from_the_elf(machine: Machine) -> None:
    syms = machine.symbols
    start, size = function_extent(syms, "kmalloc")
    insns = disassemble_function(elf_reader(machine.artifacts.elf), syms, "kmalloc",
                                 machine.lines, mark=start)
    assert insns[0].address == start and insns[0].where == "kmalloc+0" and insns[0].current
    assert [i.current for i in insns].count(True) == 1
    assert sum(i.size for i in insns) == size  # contiguous, nothing skipped
    assert all(a.address + a.size == b.address for a, b in zip(insns, insns[1:], strict=False))
    assert insns[0].text == "push rbp"  # Intel syntax; the fast path needs %rbx (cmpxchg16b)
    calls = [i for i in insns if i.mnemonic == "call"]
    assert calls and all(i.targets and re.fullmatch(r"<\w+>", i.comment) for i in calls)
    assert any(i.comment == "<slab_alloc_hooks>" for i in calls)  # behind slab_hooks_key
    jumps = [i for i in insns if i.mnemonic.startswith("j")]
    assert all(re.fullmatch(r"<kmalloc\+\d+>", i.comment) for i in jumps)  # local branches
    # the table of caches is named where kmalloc indexes it
    assert any("<kmalloc_caches>" in i.comment and i.comment.startswith("# 0xffffffff")
               for i in insns)


def test_format(machine: Machine) -> None:
    start = machine.symbol("kmalloc")
    first_jcc = next(i for i in disassemble_function(machine.read_virt, machine.symbols,
                                                     "kmalloc")
                     if i.mnemonic.startswith("j") and i.mnemonic != "jmp")
    off = first_jcc.address - start
    insns = disassemble_function(machine.read_virt, machine.symbols, "kmalloc", machine.lines,
                                 mark=first_jcc.address)
    text = format_disassembly(insns)
    lines = text.splitlines()
    assert re.fullmatch(r"slub\.c:\d+", lines[0])  # source line heading (kmalloc is in slub.c)
    assert lines[1] == f"   {start:#018x} <kmalloc+0>:\tpush rbp"
    marked = [x for x in lines if x.startswith("=> ")]
    assert marked == [x for x in lines if f"<kmalloc+{off}>:" in x]  # one line, the jcc's
    assert marked[0].startswith(f"=> {first_jcc.address:#018x} <kmalloc+{off}>:\t"
                                f"{first_jcc.mnemonic} 0xffffffff")
    assert marked[0].endswith(">") and "<kmalloc+" in marked[0]
    assert all(INSN_LINE.fullmatch(x) or re.fullmatch(r"\S+\.[ch]:\d+", x) for x in lines)
    bare = format_disassembly(insns, show_lines=False).splitlines()
    assert len(bare) == len(insns) and all(INSN_LINE.fullmatch(x) for x in bare)
    assert format_insn(insns[0], show_bytes=True).endswith(f"{'55':<25}push rbp")
    assert format_disassembly([]) == ""


def test_matches_objdump(machine: Machine) -> None:
    """Addresses and mnemonics agree with binutils' own disassembler."""
    if shutil.which("objdump") is None:
        pytest.skip("objdump (binutils) is not installed")
    start, size = function_extent(machine.symbols, "___slab_alloc")
    out = subprocess.run(["objdump", "-d", "-M", "intel", "--no-show-raw-insn",
                          f"--start-address={start:#x}", f"--stop-address={start + size:#x}",
                          str(machine.artifacts.elf)], capture_output=True, text=True,
                         check=True).stdout
    want = [(int(a, 16), m) for a, m in re.findall(r"^\s*([0-9a-f]+):\s+(\S+)", out, re.M)]
    got = [(i.address, i.mnemonic) for i in
           disassemble_function(machine.read_virt, machine.symbols, start)]
    assert [a for a, _ in got] == [a for a, _ in want]
    # objdump spells a few mnemonics differently (cs nopw, movabs ...): compare the rest
    same = sum(g == w for (_, g), (_, w) in zip(got, want, strict=True))
    assert same >= 0.95 * len(got)


def test_live_memory_equals_the_elf(machine: Machine) -> None:
    # a function with no static-key site (kmalloc's slab_hooks_key site is patched at boot)
    start, size = function_extent(machine.symbols, "___slab_alloc")
    live = disassemble(machine.read_virt(start, size), start, machine.symbolize)
    elf = disassemble(elf_reader(machine.artifacts.elf)(start, size), start, machine.symbols)
    assert live == elf  # a %pS symboliser or a Symbols table give the same names


def test_count_mark_and_the_current_rip(machine: Machine) -> None:
    view = next(c for c in machine.caches() if c.name == "kmalloc-512")
    for _ in range(view.objects):  # use up the active slab: the next one takes the slow path
        machine.kmalloc(512)
    bp = machine.break_at("___slab_alloc", temporary=True)
    with pytest.raises(BreakpointHit) as ei:
        machine.kmalloc(512)
    bp.remove()
    try:
        rip = ei.value.call.stepi(3)
        insns = disassemble(machine.read_virt(rip, 64), rip, machine.symbolize, count=4,
                            mark=rip)
        assert len(insns) == 4 and insns[0].current and insns[0].where.startswith(
            "___slab_alloc+")
        assert disassemble(machine.read_virt(rip, 64), rip, machine.symbolize, count=0) == []
    finally:
        ei.value.call.abort()


def test_rip_relative_and_immediate_operands_are_named(machine: Machine) -> None:
    zones = machine.symbol("zones")
    at = machine.symbol("kmalloc")
    disp = zones + 0x10 - (at + 7)
    code = b"\x48\x8b\x05" + struct.pack("<i", disp)  # mov rax, qword ptr [rip + disp]
    code += b"\x48\xc7\xc7" + struct.pack("<i", zones - (1 << 64))  # mov rdi, zones
    code += b"\x48\xc7\xc6\x00\x20\x00\x00"  # mov rsi, 0x2000: small numbers stay plain
    insns = disassemble(code, at, machine.symbolize)
    assert insns[0].text == f"mov rax, qword ptr [rip + {disp:#x}] # {zones + 0x10:#x} <zones+16>"
    assert insns[0].targets == (zones + 0x10,)
    assert insns[1].comment == f"# {zones:#x} <zones>"
    assert insns[2].comment == "" and insns[2].targets == ()


def test_undecodable_bytes(machine: Machine) -> None:
    insns = disassemble(b"\x06\x90\x0f", 0xFFFFFFFF80100000, machine.symbolize)
    assert [i.mnemonic for i in insns] == ["(bad)", "nop", "(bad)"]
    assert [i.size for i in insns] == [1, 1, 1]
    assert disassemble(b"", 0xFFFFFFFF80100000, machine.symbolize) == []
    outside = disassemble(b"\x90", 0x1000, machine.symbolize)
    assert outside[0].where is None and format_insn(outside[0]) == \
        "   0x0000000000001000:\tnop"


def test_function_extent(machine: Machine) -> None:
    syms: Symbols = machine.symbols
    k = syms.by_name["kmalloc"]
    assert function_extent(syms, "kmalloc") == (k.address, k.size)
    assert function_extent(syms, k.address + 10) == (k.address, k.size)
    with pytest.raises(KmemuError, match="unknown kernel symbol 'kmaloc'"):
        function_extent(syms, "kmaloc")
    with pytest.raises(BadArgument, match="not a function"):
        function_extent(syms, "zones")
    with pytest.raises(BadArgument, match="no function contains"):
        function_extent(syms, 0x1000)
    with pytest.raises(BadArgument):
        function_extent(syms, -1)
    with pytest.raises(BadArgument):
        function_extent(syms, 1.5)  # type: ignore[arg-type]
    with pytest.raises(BadArgument):
        disassemble(b"\x90", 0, machine.symbolize, count=-1)
