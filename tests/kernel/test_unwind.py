"""emu.kernel.unwind: backtraces from CFI and frame pointers, on the live kernel and on fakes."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from emu import BreakpointHit, Machine
from emu.kernel.symbols import Symbol, Symbols
from emu.kernel.unwind import (
    PT_REGS,
    CfiRow,
    CfiTable,
    Fde,
    Frame,
    format_backtrace,
    unwind,
)

LINE = re.compile(r"#\d+ +0x[0-9a-f]{16} in (\S+\+0x[0-9a-f]+/0x[0-9a-f]+|\?\?)"
                  r"( at \S+:\d+)?( \[interrupted by vector 0x[0-9a-f]+\])?")


def trace(m: Machine, cfi: CfiTable | None | str = "elf", **kw: object) -> list[Frame]:
    table = CfiTable.load(m.artifacts.elf) if cfi == "elf" else cfi
    return unwind(m.registers(), m.read_u64, table, m.symbols, m.lines, **kw)  # type: ignore[arg-type]


def names(frames: list[Frame]) -> list[str | None]:
    return [f.function for f in frames]


@pytest.fixture
def stopped(machine: Machine) -> Iterator[Callable[..., object]]:
    """stop(where, fn, *args): the call ``fn(*args)`` stopped at the breakpoint ``where``."""
    calls = []

    def stop(where: str, fn, *args, **kw):
        bp = machine.break_at(where, temporary=True)
        try:
            fn(*args, **kw)
        except BreakpointHit as e:
            calls.append(e.call)
            return e.call
        finally:
            bp.remove()
        raise AssertionError(f"{where} was not reached")

    yield stop
    for c in calls:
        if not c.done:
            c.abort()


def fill_active_slab(m: Machine, cache: str, size: int) -> None:
    view = next(c for c in m.caches() if c.name == cache)
    for _ in range(view.objects):
        m.kmalloc(size)


# --- the live kernel --------------------------------------------------------------------------


def test_at_function_entry(machine: Machine, stopped) -> None:
    fill_active_slab(machine, "kmalloc-256", 256)
    stopped("___slab_alloc", machine.kmalloc, 256)
    rsp = machine.cpu.reg("rsp")
    frames = trace(machine)
    # kmalloc(256): kmalloc_other (above 192 bytes), no hooks at the boot defaults
    # (might_sleep's check is inline: <kmemu/alloc_hooks.h>)
    assert names(frames) == ["___slab_alloc", "__slab_alloc", "kmalloc_other", "kmalloc",
                             "kmemu_call_return"]
    f0, f1 = frames[0], frames[1]
    assert (f0.offset, f0.found_by, f0.cfa, f0.sp) == (0, "registers", rsp + 8, rsp)
    assert f1.pc == machine.read_u64(rsp) and f1.sp == rsp + 8 and f1.found_by == "cfi"
    assert f0.file == "slub.c" and f0.line == machine.lines.lookup(f0.pc).line
    assert frames[-1].pc == machine.call_return_address
    assert all(a.sp < b.sp for a, b in zip(frames, frames[1:], strict=False))
    assert machine.backtrace() == frames  # what the Machine hands the debugger


def test_every_instruction_of_a_shrink_wrapped_prologue(machine: Machine, stopped) -> None:
    # before kmalloc's mov %rsp, %rbp: frame pointers alone are wrong there
    call = stopped("kmalloc", machine.kmalloc, 100)
    first = trace(machine)
    assert names(first) == ["kmalloc", "kmemu_call_return"]
    fp_wrong_somewhere = False
    for _ in range(12):
        frames = trace(machine)
        assert names(frames) == ["kmalloc", "kmemu_call_return"], format_backtrace(frames)
        assert frames[1].pc == first[1].pc and frames[0].cfa == first[0].cfa
        fp_only = trace(machine, cfi=None)
        fp_wrong_somewhere |= [f.pc for f in fp_only] != [f.pc for f in frames]
        call.stepi()
    assert fp_wrong_somewhere  # CFI is what makes these right


def test_mid_prologue_of_a_deep_function(machine: Machine, stopped) -> None:
    fill_active_slab(machine, "kmalloc-256", 256)
    call = stopped("___slab_alloc", machine.kmalloc, 256)
    want = names(trace(machine))
    callers = [f.pc for f in trace(machine)[1:]]
    for _ in range(10):
        call.stepi()
        frames = trace(machine)
        assert names(frames) == want and [f.pc for f in frames[1:]] == callers


def test_deep_inside_the_page_allocator(machine: Machine, stopped) -> None:
    fill_active_slab(machine, "kmalloc-2k", 2048)
    call = stopped("get_page_from_freelist", machine.kmalloc, 2048)
    call.stepi(20)  # well past the prologue
    frames = trace(machine)
    assert names(frames)[0] == "get_page_from_freelist"
    assert names(frames)[-5:] == ["___slab_alloc", "__slab_alloc", "kmalloc_other", "kmalloc",
                                  "kmemu_call_return"]
    # past the prologue the frame-pointer chain agrees with CFI
    assert [f.pc for f in trace(machine, cfi=None)] == [f.pc for f in frames]
    assert all(f.file and f.line for f in frames)


def test_through_an_interrupt(machine: Machine, stopped) -> None:
    stopped("kmalloc", machine.kmalloc, 64, context="irq")
    frames = trace(machine)
    assert names(frames) == ["kmalloc", "call_irq_handler", "irq_dispatch", "do_trap",
                             "common_entry", "kmemu_idle_loop"]
    last = frames[-1]
    assert last.found_by == "trap frame" and last.vector == 0xEC
    assert last.pc == machine.symbol("kmemu_idle_hlt") + 1  # the instruction after hlt
    assert format_backtrace(frames).splitlines()[-1].endswith("[interrupted by vector 0xec]")


def test_other_call_contexts(machine: Machine, stopped) -> None:
    stopped("kmalloc", machine.kmalloc, 64, context="irqs_off")
    assert names(trace(machine)) == ["kmalloc", "call_req", "kmemu_call_irqs_off",
                                     "kmemu_call_return"]


def test_max_frames_and_format(machine: Machine, stopped) -> None:
    fill_active_slab(machine, "kmalloc-256", 256)
    stopped("___slab_alloc", machine.kmalloc, 256)
    assert len(trace(machine, max_frames=2)) == 2
    text = format_backtrace(trace(machine))
    lines = text.splitlines()
    assert lines[0].startswith("#0  0xffffffff") and " in ___slab_alloc+0x0/0x" in lines[0]
    assert all(LINE.fullmatch(line) for line in lines), text
    # ___slab_alloc <- __slab_alloc <- kmalloc_other <- kmalloc (slub.c)
    assert " in kmalloc+0x" in lines[3] and " at slub.c:" in lines[3]


def test_pt_regs_layout_matches_dwarf(machine: Machine) -> None:
    from drgn import offsetof

    t = machine.program.type("struct pt_regs")
    assert [offsetof(t, n) for n in PT_REGS] == [8 * i for i in range(len(PT_REGS))]
    assert t.size == 8 * len(PT_REGS)


def test_cfi_of_a_shrink_wrapped_function(machine: Machine) -> None:
    cfi = CfiTable.load(machine.artifacts.elf)
    assert CfiTable.load(machine.artifacts.elf) is cfi  # cached
    k = machine.symbol("kmalloc")
    entry = cfi.row(k)
    assert (entry.cfa_reg, entry.cfa_offset, entry.rule(16)) == (7, 8, ("offset", -8))
    size = machine.symbols.by_name["kmalloc"].size
    framed = [r for r in (cfi.row(a) for a in range(k, k + size)) if r and r.cfa_reg == 6]
    assert framed and framed[0].rule(6) == ("offset", -16)  # rbp saved once framed
    assert not cfi.covers(machine.symbol("common_entry"))  # assembly: frame pointers
    assert cfi.text is not None and cfi.text[0] <= k < cfi.text[1]


# --- fakes: stop conditions and bad memory --------------------------------------------------

TEXT = (0x1000, 0x2000)
SYMS = Symbols([Symbol("inner", 0x1000, 0x100, "func"), Symbol("middle", 0x1100, 0x100, "func"),
                Symbol("outer", 0x1200, 0x100, "func"), Symbol("stub", 0x1300, 0x10, "func")])


@dataclass
class FakeLine:
    address: int
    file: str
    line: int


class FakeLines:
    def lookup(self, addr: int) -> FakeLine | None:
        return FakeLine(addr & ~0xF, "fake.c", addr >> 4 & 0xFFF) if addr >= 0x1000 else None


def framed_cfi(*starts: int) -> CfiTable:
    """Each function pushes rbp at +1 and sets rbp at +4 (the usual prologue)."""
    fdes = []
    for s in starts:
        rows = (CfiRow(s, 7, 8, ((16, ("offset", -8)),)),
                CfiRow(s + 1, 7, 16, ((6, ("offset", -16)), (16, ("offset", -8)))),
                CfiRow(s + 4, 6, 16, ((6, ("offset", -16)), (16, ("offset", -8)))))
        fdes.append(Fde(s, s + 0x100, rows, tuple(r.pc for r in rows)))
    return CfiTable(fdes, TEXT)


class Stack(dict):
    def read(self, addr: int) -> int:
        if addr not in self:
            raise RuntimeError(f"unmapped {addr:#x}")
        return self[addr]


def chain() -> tuple[dict[str, int], Stack]:
    """inner (framed) <- middle (framed) <- outer (framed) <- 0."""
    st = Stack()
    # outer's frame record at 0x9f00, middle's at 0x9e00, inner's at 0x9d00
    st[0x9F00], st[0x9F08] = 0, 0  # outer: saved rbp, return address 0 (the end)
    st[0x9E00], st[0x9E08] = 0x9F00, 0x1250  # middle -> outer+0x50
    st[0x9D00], st[0x9D08] = 0x9E00, 0x1150  # inner -> middle+0x50
    return {"rip": 0x1020, "rsp": 0x9CF0, "rbp": 0x9D00}, st


def test_fake_chain_with_cfi_and_frame_pointers() -> None:
    regs, st = chain()
    for cfi in (framed_cfi(0x1000, 0x1100, 0x1200), None):
        frames = unwind(regs, st.read, cfi, SYMS, FakeLines())
        assert names(frames) == ["inner", "middle", "outer"]
        assert [f.pc for f in frames] == [0x1020, 0x1150, 0x1250]
        assert frames[1].line == 0x114F >> 4  # the call instruction's line (at pc-1)
        assert frames[0].cfa == 0x9D10


def test_fake_unreadable_memory_ends_the_trace() -> None:
    regs, st = chain()
    del st[0x9E08]  # middle's return address cannot be read
    frames = unwind(regs, st.read, framed_cfi(0x1000, 0x1100, 0x1200), SYMS)
    assert names(frames) == ["inner", "middle"]
    assert unwind(regs, lambda a: 1 // 0, None, SYMS) == unwind(regs, {}.__getitem__, None,
                                                                 SYMS)
    assert len(unwind(regs, lambda a: 1 // 0, None, SYMS)) == 1


def test_fake_stops_outside_text_and_on_a_stack_that_does_not_grow() -> None:
    regs, st = chain()
    st[0x9E08] = 0xDEAD0000  # not kernel text
    assert names(unwind(regs, st.read, None, SYMS)) == ["inner", "middle"]
    regs, st = chain()
    st[0x9D00] = 0x9C00  # inner's saved rbp points below its own frame
    st[0x9C00], st[0x9C08] = 0x9D00, 0x1250
    assert names(unwind(regs, st.read, None, SYMS)) == ["inner", "middle"]
    regs, st = chain()
    st[0x9D00] = 0x9D00  # rbp pointing at itself
    assert len(unwind(regs, st.read, None, SYMS, max_frames=64)) <= 2


def test_fake_outermost_function_ends_the_trace() -> None:
    regs, st = chain()
    frames = unwind(regs, st.read, None, SYMS, outermost=frozenset({"middle"}))
    assert names(frames) == ["inner", "middle"]


def test_fake_frame_zero_at_entry_without_cfi_uses_rsp() -> None:
    st = Stack({0x9CF0: 0x1150, 0x9E00: 0x9F00, 0x9E08: 0x1250, 0x9F00: 0, 0x9F08: 0})
    frames = unwind({"rip": 0x1000, "rsp": 0x9CF0, "rbp": 0x9E00}, st.read, None, SYMS)
    assert names(frames) == ["inner", "middle", "outer"]
    assert frames[1].found_by == "function entry" and frames[0].cfa == 0x9CF8


def test_fake_frame_zero_outside_text_is_still_shown() -> None:
    frames = unwind({"rip": 0x5, "rsp": 0x9000, "rbp": 0}, Stack().read, None, SYMS)
    assert len(frames) == 1 and frames[0].function is None
    assert format_backtrace(frames) == "#0  0x0000000000000005 in ??\n"


def test_fake_trap_frame() -> None:
    syms = Symbols([*SYMS.sorted, Symbol("common_entry", 0x1400, 0x60, "func"),
                    Symbol("do_trap", 0x1500, 0x40, "func")])
    st = Stack()
    fake = 0x9800  # the fake frame record common_entry builds; pt_regs just above it
    regs_at = fake + 16
    saved = {n: 0 for n in PT_REGS} | {"rip": 0x1100, "rsp": 0x9F80, "rbp": 0x9F00,
                                        "vector": 0x30, "rbx": 7}
    for i, n in enumerate(PT_REGS):
        st[regs_at + 8 * i] = saved[n]
    st[fake], st[fake + 8] = saved["rbp"], saved["rip"]
    st[0x9700], st[0x9708] = fake, 0x1430  # do_trap's frame record -> common_entry+0x30
    st[0x9F80] = 0x1250  # middle was interrupted at its first instruction: ra at [rsp]
    st[0x9F00], st[0x9F08] = 0, 0
    cfi = framed_cfi(0x1100, 0x1200, 0x1500)
    frames = unwind({"rip": 0x1520, "rsp": 0x96F0, "rbp": 0x9700}, st.read, cfi, syms)
    assert names(frames) == ["do_trap", "common_entry", "middle", "outer"]
    assert frames[2].found_by == "trap frame" and frames[2].vector == 0x30
    assert frames[2].registers["rbx"] == 7 and frames[2].offset == 0
    assert frames[3].pc == 0x1250  # CFI at middle+0 (exact pc, not pc-1): ra at [rsp]


def test_missing_registers() -> None:
    with pytest.raises(KeyError):
        unwind({"rsp": 1}, Stack().read, None, SYMS)
