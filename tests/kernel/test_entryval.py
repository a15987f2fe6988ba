"""The DWARF stack machine behind entry values, on hand-made expressions, and the
scope and call-site lookups on the real kernel ELF."""

from __future__ import annotations

import pytest
from elftools.dwarf.dwarf_expr import DWARFExprOp

from emu import Machine
from emu.kernel.entryval import Context, DwarfScopes, entry_register, evaluate


def op(name: str, *args: object) -> DWARFExprOp:
    return DWARFExprOp(0, name, list(args), 0)


MEM = {0x1000: 0x1122334455667788}


def ctx(entry: int | None = None, cfa: int | None = 0x2000) -> Context:
    return Context({"rbx": 0x1000, "rsp": 0x1ff0, "rip": 0xffffffff80100000}, cfa,
                   lambda a: MEM[a], lambda ops: entry)


@pytest.mark.parametrize("ops, want", [
    ([op("DW_OP_lit7"), op("DW_OP_stack_value")], 7),
    ([op("DW_OP_const2u", 0x1234)], 0x1234),
    ([op("DW_OP_consts", -1)], (1 << 64) - 1),
    ([op("DW_OP_breg3", 8)], 0x1008),  # rbx + 8
    ([op("DW_OP_bregx", 3, -16)], 0x0FF0),
    ([op("DW_OP_reg3")], 0x1000),  # a call value: the register's contents
    ([op("DW_OP_fbreg", -16)], 0x1FF0),  # the frame base is the CFA
    ([op("DW_OP_call_frame_cfa")], 0x2000),
    ([op("DW_OP_breg3", 0), op("DW_OP_deref")], 0x1122334455667788),
    ([op("DW_OP_breg3", 0), op("DW_OP_deref_size", 2)], 0x7788),
    ([op("DW_OP_lit5"), op("DW_OP_lit3"), op("DW_OP_minus")], 2),
    ([op("DW_OP_lit1"), op("DW_OP_lit4"), op("DW_OP_shl"), op("DW_OP_plus_uconst", 1)], 17),
    ([op("DW_OP_lit0"), op("DW_OP_not")], (1 << 64) - 1),
    ([op("DW_OP_addr", 0xffffffff80124000)], 0xffffffff80124000),
    ([op("DW_OP_consts", -8), op("DW_OP_lit2"), op("DW_OP_shra")], (1 << 64) - 2),
    ([op("DW_OP_consts", -7), op("DW_OP_lit2"), op("DW_OP_div")], (1 << 64) - 3),
    ([op("DW_OP_consts", -1), op("DW_OP_lit1"), op("DW_OP_lt")], 1),  # signed compare
    ([op("DW_OP_lit1"), op("DW_OP_lit2"), op("DW_OP_swap"), op("DW_OP_minus")], 1),
    ([op("DW_OP_lit1"), op("DW_OP_dup"), op("DW_OP_plus")], 2),
    ([op("DW_OP_lit1"), op("DW_OP_lit2"), op("DW_OP_drop")], 1),
])
def test_expressions(ops: list, want: int) -> None:
    assert evaluate(ops, ctx()) == want


def test_entry_values_and_what_a_frame_lacks() -> None:
    ev = [op("DW_OP_entry_value", [op("DW_OP_reg4")]), op("DW_OP_stack_value")]
    assert evaluate(ev, ctx(entry=42)) == 42
    assert evaluate(ev, ctx(entry=None)) is None  # the caller does not know it
    assert evaluate([op("DW_OP_breg0", 0)], ctx()) is None  # rax: not saved in a caller
    assert evaluate([op("DW_OP_fbreg", 0)], ctx(cfa=None)) is None
    assert evaluate([op("DW_OP_lit1"), op("DW_OP_piece", 4)], ctx()) is None  # unsupported
    assert evaluate([op("DW_OP_plus")], ctx()) is None  # stack underflow
    assert evaluate([op("DW_OP_lit1"), op("DW_OP_deref")], ctx()) is None  # unreadable


def test_entry_register() -> None:
    assert entry_register([op("DW_OP_reg4")]) == 4
    assert entry_register([op("DW_OP_regx", 12)]) == 12
    assert entry_register([op("DW_OP_breg4", 0)]) is None
    assert entry_register([op("DW_OP_reg4"), op("DW_OP_reg5")]) is None


def test_scopes_and_call_sites_of_the_kernel(machine: Machine) -> None:
    assert machine.artifacts is not None
    scopes = DwarfScopes.load(machine.artifacts.elf)
    assert DwarfScopes.load(machine.artifacts.elf) is scopes  # cached
    fn = machine.symbol("get_page_from_freelist")
    at_entry = {(f, n): ops for f, n, ops in scopes.locations(fn)}
    assert [o.op_name for o in at_entry[("get_page_from_freelist", "order")]] == ["DW_OP_reg4"]
    assert scopes.locations(0x1234) == []  # no code there
    # the call from __alloc_pages passes order in rsi (DWARF register 4): some value
    # the caller can compute after the call returns
    calls = [a for a in range(machine.symbol("__alloc_pages"),
                              machine.symbol("__alloc_pages") + 0x400)
             if scopes.call_site(a)]
    assert calls and any(4 in scopes.call_site(a) for a in calls)


def test_branches() -> None:
    """DW_OP_bra jumps (relative to the end of the branch) when the top is non-zero;
    offsets are where the ops lie in the bytes (a branch is 3 bytes)."""
    def prog(cond: int) -> list:
        return [DWARFExprOp(0, f"DW_OP_lit{cond}", [], 0),
                DWARFExprOp(0, "DW_OP_bra", [4], 1),       # ends at 4: to 8 (lit9)
                DWARFExprOp(0, "DW_OP_lit5", [], 4),
                DWARFExprOp(0, "DW_OP_skip", [1], 5),      # ends at 8: to 9
                DWARFExprOp(0, "DW_OP_lit9", [], 8),
                DWARFExprOp(0, "DW_OP_stack_value", [], 9)]
    assert evaluate(prog(0), ctx()) == 5
    assert evaluate(prog(1), ctx()) == 9
    loop = [DWARFExprOp(0, "DW_OP_skip", [-3], 0), DWARFExprOp(0, "DW_OP_nop", [], 3)]
    assert evaluate(loop, ctx()) is None  # jumps to itself for ever: refused, no hang
