"""The virtual interrupt controller: delivery through the guest IDT, masking, nesting."""

from __future__ import annotations

import pytest

from emu import Machine
from emu.machine.irq import IrqError

TEST_VECTOR = 0x30
HARDIRQ_OFFSET = 1 << 16


def record(m: Machine) -> dict[str, int]:
    r = m.var("irq_test_record")
    return {k: int(getattr(r, k)) for k in ("count", "vector", "preempt_count", "in_hardirq",
                                            "irqs_disabled", "rip", "max_nesting")}


def test_irq_handler_runs_in_hardirq_context(machine: Machine) -> None:
    machine.raise_irq(TEST_VECTOR)
    r = record(machine)
    assert r["count"] == 1 and r["vector"] == TEST_VECTOR
    assert r["in_hardirq"] == 1 and r["irqs_disabled"] == 1
    assert r["preempt_count"] == HARDIRQ_OFFSET
    # back in process context afterwards
    assert machine.call("kmemu_test_context") == 0
    assert int(machine.var("irq_count")[TEST_VECTOR]) == 1


def test_irq_is_held_while_interrupts_are_disabled(machine: Machine) -> None:
    # The timer fires inside the cli section of kmemu_test_irq_window; the
    # interrupt must wait for the sti.
    machine.raise_irq(TEST_VECTOR, after=30)
    masked = machine.call("kmemu_test_irq_window")
    assert masked == 0
    r = record(machine)
    assert r["count"] == 1
    # right after the sti: in its inlined local_irq_enable, or in kmemu_irq_window (the
    # out that tells the host, <linux/irqflags.h>), never inside the cli loop
    where = machine.symbolize(r["rip"])
    assert where.startswith(("local_irq_enable", "kmemu_irq_window")) or (
        where.startswith("kmemu_test_irq_window+") and machine.lines.lookup(r["rip"]).line
        >= machine.lines.lookup(machine.symbol("kmemu_test_irq_window")).line + 6), where


def test_irq_raised_during_a_call_is_delivered(machine: Machine) -> None:
    machine.raise_irq(TEST_VECTOR, after=200)
    assert machine.call("kmemu_test_spin", 10_000) == 10_000
    r = record(machine)
    assert r["count"] == 1
    assert machine.symbolize(r["rip"]).startswith("kmemu_test_spin")


def test_irqs_off_context_defers_until_restore(machine: Machine) -> None:
    machine.raise_irq(TEST_VECTOR, after=5)
    machine.call("kmemu_test_spin", 1000, context="irqs_off")
    assert record(machine)["count"] == 1  # delivered at local_irq_restore


def test_nested_interrupts(machine: Machine) -> None:
    # The call vector's handler enables interrupts; the pending test IRQ nests.
    machine.raise_irq(TEST_VECTOR, after=3)
    nesting = machine.call("kmemu_test_nested", context="irq")
    r = record(machine)
    assert r["count"] == 1
    assert r["preempt_count"] == 2 * HARDIRQ_OFFSET
    assert nesting == 2


def test_several_pending_vectors_all_arrive(machine: Machine) -> None:
    for _ in range(3):
        machine.raise_irq(TEST_VECTOR, after=50)
    machine.call("kmemu_test_spin", 5000)
    machine.call("kmemu_test_nop")
    assert record(machine)["count"] == 3


def test_unhandled_vector_is_reported(machine: Machine) -> None:
    machine.raise_irq(0x41)
    assert any(e.kind == "irq_unhandled" and e.args[0] == 0x41 for e in machine.events)
    assert "No irq handler for vector" in machine.console


@pytest.mark.parametrize("bad", [3, 256, -1, "0x30"])
def test_bad_vectors(machine: Machine, bad: object) -> None:
    with pytest.raises(IrqError):
        machine.raise_irq(bad)  # type: ignore[arg-type]
    with pytest.raises(IrqError):
        machine.raise_irq(TEST_VECTOR, after=-5)
    assert machine.call("kmemu_test_nop") == 0
