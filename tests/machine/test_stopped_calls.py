"""Issue 10 item 2: a call the host stops (budget, interrupt(), a wait) stays
suspended where it stopped and the machine says so; never a silently half-done call."""

from __future__ import annotations

import threading

import pytest

from emu import BreakpointHit, BudgetExceeded, Interrupted, Machine, MachineError
from emu.build import source_root
from emu.core.errors import CallStopped
from emu.debug.stops import CannotAbort

GFP_KERNEL = 0xCC0


def in_critical_section(m: Machine) -> bool:
    count = int.from_bytes(m.read_virt(m.symbol("preempt_count"), 4), "little")
    return count != 0 or not m.cpu.irqs_enabled()


def test_the_issue_repro_a_kmalloc_cut_inside_its_lock(machine: Machine) -> None:
    """kmalloc cut in the slab slow path with list_lock held (cut 90 of the first
    kmalloc-64): before, the machine said "ready" and the next kmalloc panicked
    with "spinlock recursion"."""
    with pytest.raises(BudgetExceeded, match=r"more than 90 instructions") as ei:
        machine.call("kmalloc", 64, GFP_KERNEL, max_insns=90)
    e = ei.value
    assert isinstance(e, CallStopped) and e.call is not None
    assert machine.state == "stopped" and e.call.stopped_by == "budget"
    assert e.insns <= 90 and "___slab_alloc" in str(e)  # stopped at a block's start
    e.call.stepi(90 - e.insns)  # inspectable, steppable: on to instruction 90
    assert in_critical_section(machine)  # this is where dropping the call breaks Linux
    assert "kmalloc() is suspended there" in str(e)
    with pytest.raises(MachineError, match=r"kmalloc\(\) is stopped by its budget .*abort\(\)"):
        machine.kmalloc(64)  # refused, saying what to do
    p = e.call.abort()  # runs kmalloc to its end: the object is allocated, the lock dropped
    assert machine.state == "ready" and machine.find_object(p).cache == "kmalloc-64"
    assert machine.kmalloc(64) != p
    assert machine.validate_slab() == [] and machine.validate_page_alloc() == []


def test_resume_after_a_cut_gives_the_uncut_result(machine: Machine) -> None:
    snap = machine.snapshot()
    uncut = machine.kmalloc(64)
    machine.restore(snap)
    with pytest.raises(BudgetExceeded) as ei:
        machine.call("kmalloc", 64, GFP_KERNEL, max_insns=500)
    assert machine.backtrace()[0].function  # inspectable where it stopped
    assert ei.value.call.resume() == uncut
    assert machine.state == "ready"


def test_max_insns_is_exact(machine: Machine) -> None:
    """max_insns=N runs at most N instructions: an N-instruction call completes."""
    with machine.count_instructions() as n:
        machine.call("kmemu_test_spin", 50)
    snap = machine.snapshot()
    assert machine.call("kmemu_test_spin", 50, max_insns=n[0]) == 50
    machine.restore(snap)
    with pytest.raises(BudgetExceeded) as ei:
        machine.call("kmemu_test_spin", 50, max_insns=n[0] - 1)
    assert ei.value.insns <= n[0] - 1


def test_an_interrupt_leaves_the_call_suspended(machine: Machine) -> None:
    machine.call("kmemu_test_spin", 1)  # symbols loaded: the interrupt comes while it runs
    snap = machine.snapshot()
    t = threading.Timer(0.2, machine.interrupt)
    t.start()
    with pytest.raises(Interrupted) as ei:
        machine.call("kmemu_test_spin", 0, budget_seconds=30)
    t.join()
    assert machine.state == "stopped" and ei.value.call.stopped_by == "interrupt"
    assert machine.symbolize(machine.cpu.rip).startswith("kmemu_test_spin")
    with pytest.raises(MachineError, match="stopped by an interrupt"):
        machine.call("kmemu_test_nop")
    machine.restore(snap)
    assert machine.state == "ready" and machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91


def test_a_call_that_cannot_end_cannot_be_aborted(machine: Machine, monkeypatch) -> None:
    snap = machine.snapshot()
    with pytest.raises(BudgetExceeded) as ei:
        machine.call("kmemu_test_spin", 0, max_insns=1000)
    monkeypatch.setattr(Machine, "ABORT_SECONDS", 0.2)
    with pytest.raises(CannotAbort, match=r"kmemu_test_spin\(\) could not be run to its end"):
        ei.value.call.abort()
    assert machine.state == "stopped"  # still says so: only a restore helps
    machine.restore(snap)
    assert machine.call("kmemu_test_nop") == 0


def test_abort_at_a_breakpoint_inside_a_lock_finishes_the_call(machine: Machine) -> None:
    """The same rule for breakpoint stops: abort() used to drop the call there."""
    src = (source_root() / "kernel" / "slab" / "slub.c").read_text().splitlines()
    line = src.index("\ts->node.nr_slabs++;") + 1  # new_slab, inside spin_lock_irqsave(list_lock)
    bp = machine.break_at(f"slub.c:{line}")
    with pytest.raises(BreakpointHit) as ei:
        machine.kmalloc(64)
    assert in_critical_section(machine)
    p = ei.value.call.abort()  # the breakpoint does not stop the finishing run
    assert machine.state == "ready" and machine.find_object(p).cache == "kmalloc-64"
    assert bp._hook is not None  # noqa: SLF001 - still installed for the next call
    bp.remove()
    assert machine.kmalloc(64) and machine.validate_slab() == []


def test_raise_irq_while_stopped_is_pending_for_the_call(machine: Machine) -> None:
    machine.break_at("kmemu_test_add", temporary=True)
    with pytest.raises(BreakpointHit) as ei:
        machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6)
    machine.raise_irq(0x30)  # not delivered now: the call is stopped
    assert machine.irq.has_pending()
    assert ei.value.call.resume() == 91
    assert not machine.irq.has_pending()  # delivered while the call ran on
