"""m.kmalloc / m.kfree: the common case goes straight to Machine._call_fast (plan made,
GFP_KERNEL by name, process context, plain ints, machine idle); everything else takes
call() with its checks.  Each test warms the plans first, so the inline path is the one
being judged, and checks the same behaviour call() gives."""

from __future__ import annotations

import enum

import pytest

from emu import BadArgument, KmemuError, Machine
from emu.debug.stops import BreakpointHit
from emu.machine.core import MachineError


def warm(m: Machine) -> None:
    m.kfree(m.kmalloc(64))
    assert ("kmalloc", 2) in m._call_plans and ("kfree", 1) in m._call_plans  # noqa: SLF001


def test_plans_have_the_bounds_the_inline_checks_assume(machine: Machine) -> None:
    """The wrappers test 0 <= value <= 2**64-1 inline: size_t and void * from DWARF."""
    warm(machine)
    plans = machine._call_plans  # noqa: SLF001
    assert plans[("kmalloc", 2)].bounds[0] == (0, (1 << 64) - 1)
    assert plans[("kfree", 1)].bounds[0] == (0, (1 << 64) - 1)


def test_inline_path_takes_no_extra_calls(machine: Machine, monkeypatch) -> None:  # noqa: ANN001
    """kmalloc(64) and kfree(p) never reach call(): the common case is inline."""
    warm(machine)

    def refuse(*a: object, **k: object) -> int:
        raise AssertionError("call() was used")

    monkeypatch.setattr(machine, "call", refuse)
    p = machine.kmalloc(64)
    assert machine.find_object(p).cache == "kmalloc-64"
    machine.kfree(p)
    assert machine.find_object(p).allocated is False


def test_results_match_call(machine: Machine) -> None:
    warm(machine)
    snap = machine.snapshot()
    a = machine.kmalloc(100)
    machine.restore(snap)
    assert machine.call("kmalloc", 100, 0xCC0) == a  # same state, same object


@pytest.mark.parametrize("size", [-1, 1 << 64, 64.0, "64", True, None])
def test_bad_sizes_are_refused_after_warm_up(machine: Machine, size: object) -> None:
    warm(machine)
    with pytest.raises(BadArgument, match=r"(kmalloc\(\) )?argument 1"):
        machine.kmalloc(size)  # type: ignore[arg-type]
    assert machine.state == "ready" and machine.kmalloc(8)


@pytest.mark.parametrize("addr", [-4096, 1 << 64, 1.5, "p", False])
def test_bad_addresses_are_refused_after_warm_up(machine: Machine, addr: object) -> None:
    warm(machine)
    with pytest.raises(BadArgument, match=r"(kfree\(\) )?argument 1"):
        machine.kfree(addr)  # type: ignore[arg-type]
    assert machine.state == "ready"


def test_int_subclasses_and_other_flags_take_call(machine: Machine) -> None:
    warm(machine)

    class Size(enum.IntEnum):
        SMALL = 32

    p = machine.kmalloc(Size.SMALL)
    assert machine.find_object(p).cache == "kmalloc-32"
    q = machine.kmalloc(64, "GFP_ATOMIC")
    r = machine.kmalloc(64, 0xCC0)
    with pytest.raises(KmemuError, match="unknown GFP flag .GFP_NOPE."):
        machine.kmalloc(64, "GFP_NOPE")
    for x in (p, q, r):
        machine.kfree(x)
    assert machine.validate_slab() == []


def test_contexts_still_work(machine: Machine) -> None:
    warm(machine)
    p = machine.kmalloc(64, "GFP_ATOMIC", context="irq")
    machine.kfree(p, context="irqs_off")
    with pytest.raises(BadArgument, match="context must be one of"):
        machine.kmalloc(64, context="softirq")
    with pytest.raises(BadArgument, match="context must be one of"):
        machine.kfree(p, context="nmi")
    assert machine.state == "ready"


def test_a_stopped_call_is_refused_in_one_line(machine: Machine) -> None:
    warm(machine)
    machine.break_at("kmemu_test_add", temporary=True)
    with pytest.raises(BreakpointHit) as ei:
        machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6)
    with pytest.raises(MachineError, match=r"kmemu_test_add\(\) is stopped at a breakpoint"):
        machine.kmalloc(64)
    with pytest.raises(MachineError, match="is stopped at a breakpoint"):
        machine.kfree(0)
    assert ei.value.call.resume() == 91
    machine.kfree(machine.kmalloc(64))


def test_breakpoints_inside_stop_the_inline_path(machine: Machine) -> None:
    warm(machine)
    machine.break_at("kmalloc", temporary=True)
    with pytest.raises(BreakpointHit) as ei:
        machine.kmalloc(64)
    p = ei.value.call.resume()
    assert machine.find_object(p).cache == "kmalloc-64"
    with machine.breakpoint("kfree") as bp:
        machine.kfree(p)
    assert bp.hits == 1


def test_a_timed_interrupt_is_delivered_during_kmalloc(machine: Machine) -> None:
    warm(machine)
    before = len(machine.irq.delivered)
    machine.raise_irq(0x30, after=5)
    p = machine.kmalloc(64)
    assert not machine.irq.has_pending() and not machine.irq.has_timers()
    assert machine.irq.delivered[before:] == [0x30]  # inside the call, by the careful path
    assert machine.find_object(p).cache == "kmalloc-64"


def test_a_warning_in_kfree_reaches_the_console(machine: Machine) -> None:
    """The inline path keeps the console: kfree's WARN for an address outside the
    direct map (checked on every path) is printed, and the machine goes on."""
    warm(machine)
    mark = len(machine.console)
    machine.kfree(0xFFFF_FFFF_0000_0000)
    assert "is not a kmalloc'ed address" in machine.console[mark:]
    assert machine.state == "ready"
    machine.kfree(machine.kmalloc(64))
