"""Stepping a stopped call from Python: stepi, step, next, until, finish,
snapshots inside a stopped call, and Ctrl-C that suspends instead of abandoning."""

from __future__ import annotations

import threading
import time

import pytest

from emu import BreakpointHit, Machine
from emu.machine.core import CallInterrupted, Interrupted


def _stop_in(machine: Machine, fn: str, call: str = "kmalloc", *args: int):
    bp = machine.break_at(fn, temporary=True)
    try:
        with pytest.raises(BreakpointHit) as ei:
            machine.call(call, *(args or (64, 0xCC0)))
    finally:
        bp.remove()
    return ei.value.call


def _line(machine: Machine) -> tuple[str, int]:
    row = machine.lines.lookup(machine.cpu.rip)
    assert row is not None
    return row.file, row.line


def test_stepi_counts_instructions(machine: Machine) -> None:
    call = _stop_in(machine, "kmalloc")
    entry = machine.symbol("kmalloc")
    assert call.rip == entry
    rip = call.stepi(3)
    assert entry < rip < entry + 0x40
    assert call.resume() >= 0xFFFF888000000000


def test_next_walks_lines_of_kmalloc_then_the_call_ends(machine: Machine) -> None:
    call = _stop_in(machine, "kmalloc")
    seen = [_line(machine)]
    while not call.done:
        row = call.next()
        if row is not None:
            # at a line start, or where an inlined call begins (gdb stops at its call site)
            rip = machine.cpu.rip
            assert machine.lines.row_at(rip) is not None or machine.lines.call_site(rip)
            assert machine.symbolize(machine.cpu.rip).startswith("kmalloc")  # never inside callees
            seen.append((row.file, row.line))
    # kmalloc (slub.c): its size-class test, then the inlined allocation
    assert len(seen) >= 2 and all(f == "slub.c" for f, _ in seen)
    assert call.result >= 0xFFFF888000000000 and machine.state == "ready"


def test_step_enters_a_function_with_line_info(machine: Machine) -> None:
    call = _stop_in(machine, "kmalloc", "kmalloc", 256, 0xCC0)  # above 192: kmalloc_other
    for _ in range(20):
        call.step()
        if machine.symbolize(machine.cpu.rip).startswith("kmalloc_other"):
            break
    else:
        pytest.fail("step never entered kmalloc_other")
    fn = machine.symbols.lookup(machine.cpu.rip)[0]
    assert machine.cpu.rip != fn.address  # past the opening line, as gdb's prologue skip
    bt = machine.backtrace()
    assert [f.function for f in bt][-2:] == ["kmalloc", "kmemu_call_return"]
    call.resume()


def test_finish_returns_the_callee_value_to_the_caller(machine: Machine) -> None:
    call = _stop_in(machine, "kmalloc_other", "kmalloc", 256, 0xCC0)
    ptr = call.finish()
    assert ptr >= 0xFFFF888000000000
    assert machine.symbolize(machine.cpu.rip).startswith("kmalloc+")
    assert machine.cpu.reg("rax") == ptr
    assert call.resume() == ptr  # kmalloc returns what kmalloc_other gave it


def test_finish_mid_prologue_uses_cfi(machine: Machine) -> None:
    """kmem_cache_free tests its argument before push %rbp: finish from before the push."""
    cache = int(machine.var("kmalloc_caches")[0][6])
    obj = machine.kmalloc(64)
    call = _stop_in(machine, "kmem_cache_free", "kmem_cache_free", cache, obj)
    call.stepi(2)  # test; je -> before push %rbp
    assert machine.cpu.reg("rsp") % 16 == 8  # nothing pushed yet
    assert call.finish() >= 0xFFFF888000000000 and call.done


def test_until_location_and_until_leaves_the_function(machine: Machine) -> None:
    call = _stop_in(machine, "kmalloc", "kmalloc", 256, 0xCC0)
    call.until("kmalloc_other")
    assert machine.cpu.rip == machine.symbol("kmalloc_other")
    row = call.until()  # no loop in the way: like next
    assert row is not None
    call.resume()


def test_snapshot_inside_a_stopped_call(machine: Machine) -> None:
    call = _stop_in(machine, "kmalloc")
    snap = machine.snapshot()
    first = call.resume()
    machine.restore(snap)
    assert machine.state == "stopped" and machine.cpu.rip == machine.symbol("kmalloc")
    assert call.resume() == first  # the same allocation again: deterministic


def test_interrupt_suspends_a_call_in_a_debug_session(machine: Machine) -> None:
    machine.suspend_on_interrupt = True
    machine.call("kmemu_test_spin", 1)  # symbols loaded: the interrupt comes while it runs
    try:
        t = threading.Timer(0.3, machine.interrupt)
        t.start()
        with pytest.raises(CallInterrupted) as ei:
            machine.call("kmemu_test_spin", 0, budget_seconds=30)
        assert machine.state == "stopped"
        assert machine.symbolize(machine.cpu.rip).startswith("kmemu_test_spin")
        ei.value.call.stepi()
        machine._drop(ei.value.call)  # noqa: SLF001 - a runaway never ends (gdb's kill)
        assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91
    finally:
        machine.suspend_on_interrupt = False


@pytest.mark.parametrize("suspend", [True, False])
def test_interrupt_while_a_call_is_prepared_stops_it_as_it_starts(
        machine: Machine, monkeypatch: pytest.MonkeyPatch, suspend: bool) -> None:
    """interrupt() during the call's preparation (on a fresh process, loading DWARF
    for the argument checks takes long enough for a timer to fire there) is not lost:
    the run stops before the first instruction, as the gdb stub does for Ctrl-C."""
    real = machine._call_values  # noqa: SLF001 - the per-call argument checks

    def interrupted_while_checking(*a: object) -> list[int]:
        machine.interrupt()
        return real(*a)

    monkeypatch.setattr(machine, "_call_values", interrupted_while_checking)
    machine.suspend_on_interrupt = suspend
    try:
        with pytest.raises(CallInterrupted if suspend else Interrupted) as ei:
            machine.call("kmemu_test_spin", 0, budget_seconds=30)
        assert machine.state == "stopped"
        assert machine.cpu.rip == machine.symbol("kmemu_test_spin")  # nothing ran yet
        monkeypatch.undo()
        machine._drop(ei.value.call)  # noqa: SLF001 - a runaway never ends (gdb's kill)
        machine.interrupt()  # while nothing runs: not for the next request
        assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91
    finally:
        machine.suspend_on_interrupt = False


def test_stepping_errors(machine: Machine) -> None:
    from emu.core.errors import BadArgument
    from emu.machine.core import MachineError

    call = _stop_in(machine, "kmalloc")
    with pytest.raises(BadArgument):
        call.stepi(0)
    with pytest.raises(MachineError, match="stopped at a breakpoint"):
        machine.kmalloc(8)  # one call at a time
    call.abort()
    with pytest.raises(MachineError, match="not the one stopped"):
        call.resume()
    assert machine.state == "ready"
    time.sleep(0)
