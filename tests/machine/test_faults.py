"""Guest exceptions become GuestOops; the machine stays usable; faults in a row stay #PF."""

from __future__ import annotations

import re

import pytest

from emu import GuestOops, Machine

UNMAPPED = 0xFFFFC90000001000  # vmalloc area: nothing mapped there yet


def test_page_fault_oops(machine: Machine) -> None:
    with pytest.raises(GuestOops) as ei:
        machine.call("kmemu_test_fault", UNMAPPED, 1)
    e = ei.value
    assert e.vector == 14 and e.address == UNMAPPED and e.error_code == 0x2
    assert e.rip.startswith("kmemu_test_fault+0x")
    text = e.console
    assert f"BUG: unable to handle page fault for address: {UNMAPPED:016x}" in text
    assert "#PF: supervisor write access in kernel mode" in text
    assert "#PF: error_code(0x0002) - not-present page" in text
    # the vmalloc range's PUD pages are preallocated: the walk stops at the PUD
    assert re.search(r"PGD [0-9a-f]+ P4D [0-9a-f]+ PUD 0\n", text)
    assert "RIP: 0010:kmemu_test_fault+0x" in text
    assert "Call Trace:" in text and "---[ end trace" in text
    assert machine.events[-1].kind == "oops"


def test_null_dereference_headline(machine: Machine) -> None:
    with pytest.raises(GuestOops, match="kernel NULL pointer dereference, address: 0+8"):
        machine.call("kmemu_test_fault", 8, 0)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_faults_in_a_row_all_arrive_as_page_faults(machine: Machine, n: int) -> None:
    # Unicorn keeps QEMU's old_exception; unhandled it turns the 2nd fault
    # into #DF and the 3rd into a silent triple fault (UNICORN.md).
    vectors = []
    for i in range(n):
        with pytest.raises(GuestOops) as ei:
            machine.call("kmemu_test_fault", UNMAPPED + i * 0x1000, i & 1)
        vectors.append(ei.value.vector)
    assert vectors == [14] * n
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91


def test_fault_inside_irq_context(machine: Machine) -> None:
    with pytest.raises(GuestOops) as ei:
        machine.call("kmemu_test_fault", UNMAPPED, 0, context="irq")
    assert ei.value.vector == 14
    # the kernel dropped the hard-IRQ nesting when it handed control back
    assert machine.call("kmemu_test_context") == 0


def test_bug_and_divide_error(machine: Machine) -> None:
    with pytest.raises(GuestOops) as ei:
        machine.call("kmemu_test_bug")
    assert ei.value.vector == 6
    assert "kernel BUG at " in ei.value.console and "irq.c:" in ei.value.console
    assert "Oops: invalid opcode: 0000" in ei.value.console
    assert [e.kind for e in machine.events[-2:]] == ["bug", "oops"]
    with pytest.raises(GuestOops, match="divide error") as ei2:
        machine.call("kmemu_test_divide", 1, 0)
    assert ei2.value.vector == 0
    assert machine.call("kmemu_test_divide", 10, 3) == 3


def test_oops_taints_and_restore_cleans(machine: Machine) -> None:
    snap = machine.snapshot()
    with pytest.raises(GuestOops):
        machine.call("kmemu_test_fault", 0, 0)
    with pytest.raises(GuestOops) as ei:
        machine.call("kmemu_test_fault", 0, 0)
    assert re.search(r"Tainted: G .*D", ei.value.console)
    assert "[#2]" in ei.value.console
    machine.restore(snap)
    assert int(machine.var("taint_flags")) == 0
    with pytest.raises(GuestOops) as ei:
        machine.call("kmemu_test_fault", 0, 0)
    assert "Not tainted" in ei.value.console and "[#1]" in ei.value.console


def test_warn_is_an_event_not_an_oops(machine: Machine) -> None:
    assert machine.call("kmemu_test_warn", 7) == 7
    ev = machine.events[-1]
    assert ev.kind == "warn"
    assert ev.message.startswith("WARNING: CPU: 0 PID: 0 at ") and "irq.c:" in ev.message
    assert "kmemu_test_warn: v=7" in machine.console
    assert any(s.startswith("kmemu_test_warn") for s in ev.symbols) or ev.trace
    assert machine.call("kmemu_test_warn", 0) == 0
    assert len([e for e in machine.events if e.kind == "warn"]) == 1
