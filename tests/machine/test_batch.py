"""m.batch(): many calls in one guest entry (kernel/host.c kmemu_batch_run)."""

from __future__ import annotations

import re

import pytest

from emu import BadArgument, BatchOops, BreakpointHit, GuestOops, Machine
from emu.build.abi import define
from emu.machine.batch import BatchOp


def test_list_of_operations_returns_results_in_order(machine: Machine) -> None:
    res = machine.batch([("kmemu_test_add", 1, 2, 3, 4, 5, 6), ("kmemu_test_nop",),
                         ("kmemu_test_add", 6, 5, 4, 3, 2, 1)])
    assert res == [machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6), 0,
                   machine.call("kmemu_test_add", 6, 5, 4, 3, 2, 1)]


def test_allocations_in_a_batch_are_real_and_freed_by_another(machine: Machine) -> None:
    ptrs = machine.batch([("kmalloc", 64, 0xCC0)] * 50)
    assert len(set(ptrs)) == 50 and all(p for p in ptrs)
    assert all(machine.ksize(p) == 64 for p in ptrs)
    with machine.batch() as b:
        for p in ptrs:
            b.kfree(p)
    assert len(b.results) == 50 and len(b) == 50
    assert machine.kmalloc(64) == ptrs[-1]  # SLUB hands out the last object freed


def test_one_guest_entry_per_ring(machine: Machine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch longer than the ring runs in ring-sized entries, results in order."""
    ring = define("KMEMU_BATCH_RING")
    entries = []
    real = machine.call

    def counting(fn: object, *a: int, **kw: object) -> int:
        if fn == "kmemu_batch_run":
            entries.append(a[0])
        return real(fn, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(machine, "call", counting)
    n = ring * 2 + 3
    res = machine.batch([("kmemu_test_add", i, 0, 0, 0, 0, 0) for i in range(n)])
    assert entries == [ring, ring, 3]
    assert res == [real("kmemu_test_add", i, 0, 0, 0, 0, 0) for i in range(n)]


def test_bool_results_are_masked_as_in_call(machine: Machine) -> None:
    p = machine.kmalloc(64)
    assert machine.batch([("virt_addr_valid", p)]) == [machine.call("virt_addr_valid", p)]
    machine.kfree(p)


def test_oops_in_the_middle_names_the_operation(machine: Machine) -> None:
    ops = [("kmemu_test_add", 1, 0, 0, 0, 0, 0), ("kmemu_test_add", 2, 0, 0, 0, 0, 0),
           ("kmemu_test_fault", 0x8, 0), ("kmemu_test_nop",)]
    with pytest.raises(BatchOops) as ei:
        machine.batch(ops)
    e = ei.value
    assert isinstance(e, GuestOops)
    assert e.index == 2 and e.op == BatchOp("kmemu_test_fault", (8, 0))
    assert e.results == [machine.call("kmemu_test_add", 1, 0, 0, 0, 0, 0),
                         machine.call("kmemu_test_add", 2, 0, 0, 0, 0, 0)]
    assert str(e).startswith("batch operation 2 (kmemu_test_fault(8, 0)) died: ")
    assert "kernel NULL pointer dereference" in str(e)
    assert e.vector == 14
    assert machine.state == "ready"  # back at idle (tainted), as after a call's oops
    assert machine.batch([("kmemu_test_nop",)]) == [0]


def test_oops_in_a_later_ring_counts_from_the_whole_batch(machine: Machine) -> None:
    ring = define("KMEMU_BATCH_RING")
    ops: list[tuple[object, ...]] = [("kmemu_test_nop",)] * (ring + 5)
    ops.append(("kmemu_test_bug",))
    with pytest.raises(BatchOops) as ei:
        machine.batch(ops)
    assert ei.value.index == ring + 5 and len(ei.value.results) == ring + 5


@pytest.mark.parametrize("ops, words", [
    ("kmalloc", "list of (function, *args)"),
    ([("kmemu_test_nop",), 5], "operation 1 must be a (function, *args) tuple"),
    ([()], "operation 0 must be a (function, *args) tuple"),
    ([("kmemu_test_nop",), ("no_such_function_xyz",)], "batch operation 1: "),
    ([("kmemu_test_add", 1, 2)], "batch operation 0: kmemu_test_add() takes 6"),
    ([("kmemu_test_nop",), ("kmalloc", 64, 1 << 40)], "batch operation 1: kmalloc() argument 2"),
    ([("kmemu_test_nop",), ("kmemu_test_add", "x", 0, 0, 0, 0, 0)],
     "batch operation 1: argument 1 must be an int"),
    ([("kmemu_test_nop",), ("zones",)], "batch operation 1: 'zones' is a kernel variable"),
])
def test_bad_operations_are_refused_before_anything_runs(
        machine: Machine, ops: object, words: str) -> None:
    from emu.core.errors import KmemuError

    with machine.count_instructions() as n:
        with pytest.raises(KmemuError, match=re.escape(words)):
            machine.batch(ops)  # type: ignore[arg-type]
    assert n[0] == 0
    assert machine.batch([("kmemu_test_nop",)]) == [0]


def test_context_manager_checks_each_call_as_it_is_added(machine: Machine) -> None:
    b = machine.batch()
    b.kmalloc(32)
    with pytest.raises(BadArgument, match="batch operation 1: "):
        b.call("kmemu_test_add", 1)
    assert len(b) == 1
    p, = b.run()
    assert p and machine.ksize(p) == 32
    machine.kfree(p)


def test_block_that_raises_runs_nothing(machine: Machine) -> None:
    with pytest.raises(ZeroDivisionError):
        with machine.batch() as b:
            b.kmalloc(64)
            1 / 0  # noqa: B018
    assert b.results is None


def test_a_breakpoint_stops_a_batch_as_it_stops_a_call(machine: Machine) -> None:
    bp = machine.break_at("kmemu_test_nop")
    with pytest.raises(BreakpointHit) as ei:
        machine.batch([("kmemu_test_add", 1, 0, 0, 0, 0, 0), ("kmemu_test_nop",)])
    bp.remove()
    call = ei.value.call
    assert call.name == "kmemu_batch_run"
    assert call.resume() == 2
    assert machine.state == "ready"


def test_refused_while_a_call_is_stopped(machine: Machine) -> None:
    from emu.machine.core import MachineError

    bp = machine.break_at("kmemu_test_nop")
    with pytest.raises(BreakpointHit):
        machine.call("kmemu_test_nop")
    bp.remove()
    with pytest.raises(MachineError, match="is stopped"):
        machine.batch([("kmemu_test_nop",)])


def test_signed_and_int_subclass_arguments_are_packed_as_call_passes_them(
        machine: Machine) -> None:
    """The ring gets each argument as call() passes it: a negative int for a signed
    parameter as its two's complement, an IntEnum as its value (both take the
    checked path of Batch.call, the plain ints the quick one)."""
    import enum

    class Fill(enum.IntEnum):
        ONES = 0xFF

    buf = machine.symbol("kmemu_arg_buf")
    machine.batch([("memset", buf, -1, 8), ("memset", buf + 8, Fill.ONES, 8),
                   ("memset", buf + 16, 0x5A, 8)])
    assert machine.read_virt(buf, 24) == b"\xff" * 16 + b"\x5a" * 8
    with machine.batch() as b:
        b.call("memset", buf, -(1 << 31), 8)  # the low byte: 0
    assert machine.read_virt(buf, 8) == bytes(8)
    assert b.ops[0].args == (buf, -(1 << 31), 8)


def test_a_bad_argument_after_good_ones_names_its_index(machine: Machine) -> None:
    machine.kfree(machine.kmalloc(64))  # plans made: the first two take the quick check
    b = machine.batch()
    b.kmalloc(64)
    b.kmalloc(32)
    with pytest.raises(BadArgument, match=r"batch operation 2: .*kmalloc\(\) argument 1"):
        b.kmalloc(-1)
    with pytest.raises(BadArgument, match=r"batch operation 2: .*argument 1 must be an int"):
        b.call("kfree", 1.5)
    ptrs = b.run()  # the refused ones were never added
    assert len(ptrs) == 2 and machine.find_object(ptrs[1]).cache == "kmalloc-32"
    machine.batch([("kfree", p) for p in ptrs])
