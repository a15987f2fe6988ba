"""Snapshots: memory, CPU, console and events all come back."""

from __future__ import annotations

import pytest

from emu import BadArgument, GuestOops, Machine

PAGE_OFFSET = 0xFFFF888000000000


def test_restore_brings_back_memory_console_and_events(machine: Machine) -> None:
    snap = machine.snapshot()
    console, events = machine.console, list(machine.events)
    machine.write_virt(PAGE_OFFSET + 0x4000000, b"dirty")
    machine.call("kmemu_test_warn", 1)
    with pytest.raises(GuestOops):
        machine.call("kmemu_test_fault", 0, 1)
    machine.raise_irq(0x30, after=10_000)
    machine.restore(snap)
    assert machine.read_virt(PAGE_OFFSET + 0x4000000, 5) != b"dirty"
    assert machine.console == console and machine.events == events
    assert int(machine.var("irq_test_record").count) == 0
    machine.call("kmemu_test_spin", 100_000)
    assert int(machine.var("irq_test_record").count) == 0  # the timer was restored away


def test_snapshots_nest(machine: Machine) -> None:
    a = machine.snapshot()
    machine.write_phys(0x4000000, b"A")
    b = machine.snapshot()
    machine.write_phys(0x4000000, b"B")
    machine.restore(b)
    assert machine.read_phys(0x4000000, 1) == b"A"
    machine.restore(b)  # the same snapshot twice
    assert machine.read_phys(0x4000000, 1) == b"A"
    machine.restore(a)
    assert machine.read_phys(0x4000000, 1) != b"A"
    # b was taken after a: restoring a discarded it (Unicorn's layers are a stack)
    with pytest.raises(BadArgument, match="discarded"):
        machine.restore(b)
    machine.restore(a)
    c = machine.snapshot()
    machine.write_phys(0x4000000, b"C")
    machine.restore(c)
    assert machine.read_phys(0x4000000, 1) != b"C"


def test_restore_after_a_runaway(machine: Machine) -> None:
    snap = machine.snapshot()
    with pytest.raises(Exception, match="instructions"):
        machine.call("kmemu_test_spin", 0, max_insns=5000)
    machine.restore(snap)
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91


def test_foreign_snapshot_is_refused(machine: Machine) -> None:
    other = Machine.booted(mem="32M")
    with pytest.raises(BadArgument, match="this machine"):
        machine.restore(other.snapshot())
    with pytest.raises(BadArgument):
        machine.restore("snap")  # type: ignore[arg-type]
    assert machine.call("kmemu_test_nop") == 0
