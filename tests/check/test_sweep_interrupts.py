"""An interrupt from outside (Ctrl-C in ``kmemu check``, ``Machine.interrupt()``) ends a
sweep: it is not one more failing point.  The CLI repeats a Ctrl-C for the rest of the
command, so a sweep that recorded it went on, every point after it "did not finish"."""

from __future__ import annotations

import pytest
from unicorn import UC_HOOK_CODE

from emu import Machine
from emu.check.sweep import budget_sweep, follow_up_allocations
from emu.kernel.gfp import parse as parse_gfp
from emu.machine.core import Interrupted

GFP_KERNEL = parse_gfp("GFP_KERNEL")


def interrupt_at(m: Machine, fn: str) -> None:
    """``m.interrupt()`` each time ``fn`` starts, as a Ctrl-C landing there would."""
    at = m.symbol(fn)
    m.hook_add(UC_HOOK_CODE, lambda _uc, _a, _s, _d: m.interrupt(), None, at, at)


def test_an_interrupt_ends_an_irq_sweep(machine: Machine) -> None:
    """The sweep's runs end with a kmemu_test_nop call, interrupted here."""
    m = machine
    interrupt_at(m, "kmemu_test_nop")
    with pytest.raises(Interrupted):
        m.sweep_irqs("kmalloc", 64, GFP_KERNEL, handler=0x32, points=[1, 2, 3])
    assert m.state == "ready"  # the sweep's start, restored


def test_an_interrupt_ends_a_failure_sweep(machine: Machine) -> None:
    m = machine
    interrupt_at(m, "kmemu_test_nop")
    with pytest.raises(Interrupted):
        m.sweep_failures("kmemu_test_nop")
    assert m.state == "ready"


def test_an_interrupt_ends_a_budget_sweep(machine: Machine) -> None:
    m = machine

    def follow_up(m: Machine) -> None:
        follow_up_allocations(m)
        m.call("kmemu_test_nop")

    interrupt_at(m, "kmemu_test_nop")
    with pytest.raises(Interrupted):
        budget_sweep(m, "kmalloc", 64, GFP_KERNEL, cuts=range(10, 20), follow_up=follow_up)
    assert m.state == "ready"
