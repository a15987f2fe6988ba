"""The fast path's quiet end and the call frame it keeps (ARCHITECTURE.md "Quiet ends").

A quiet call ends in the idle loop's own state (the guest puts RSP and RFLAGS back
and stops at the idle hlt), and the two words the host wrote on the call's stack
(return address, KMEMU_CALL_QUIET) stay for the next call.  ``CallEntry.frame_ok``
is the whole contract: anything that may have run or written there clears it, and
the next call writes the frame again.  Each test damages the frame the way one of
those events could and checks that the next call still returns its result."""

from __future__ import annotations

import struct

import pytest
from unicorn import x86_const as x86

from emu import BreakpointHit, Machine
from emu.build.abi import define


def idle_regs(m: Machine) -> tuple[int, int, int]:
    cpu = m.cpu
    assert cpu is not None
    return cpu.reg("rsp"), cpu.rip, m.uc.reg_read(x86.UC_X86_REG_RFLAGS)


def frame_words(m: Machine) -> tuple[int, int]:
    return struct.unpack("<QQ", m.read_virt(m._call_rsp - 8, 16))  # noqa: SLF001


def test_a_quiet_call_ends_in_the_idle_state_and_keeps_its_frame(machine: Machine) -> None:
    m = machine
    before = (m._idle_rsp, m._idle_rip, 0x202)  # noqa: SLF001
    assert m._quiet_end == m._idle_rip  # noqa: SLF001 - the boot check found the quiet end
    p = m.kmalloc(64)
    assert idle_regs(m) == before
    assert m._entry.frame_ok  # noqa: SLF001
    assert frame_words(m) == (m.call_return_address, define("KMEMU_CALL_QUIET"))
    m.kfree(p)
    assert idle_regs(m) == before and m._entry.frame_ok  # noqa: SLF001


def test_a_host_write_over_the_frame_is_written_again(machine: Machine) -> None:
    m = machine
    m.call("kmemu_test_nop")
    m.write_virt(m._call_rsp - 8, b"\xcc" * 16)  # noqa: SLF001 - as a gdb M packet could
    assert not m._entry.frame_ok  # noqa: SLF001
    assert m.call("kmemu_test_add", 2, 3, 0, 0, 0, 0) == 8
    assert frame_words(m) == (m.call_return_address, define("KMEMU_CALL_QUIET"))


def test_restore_to_a_snapshot_without_the_frame(machine: Machine) -> None:
    """Memory goes back with the snapshot: so does frame_ok (taken before any quiet
    call wrote the frame, or after), and the next call writes it if it must."""
    m = machine
    m.write_virt(m._call_rsp - 8, b"\0" * 16)  # noqa: SLF001 - no frame in this snapshot
    bare = m.snapshot()
    m.call("kmemu_test_nop")
    framed = m.snapshot()
    m.write_virt(m._call_rsp - 8, b"\xcc" * 16)  # noqa: SLF001
    m.restore(framed)  # the newer first: restoring the older discards it
    assert m._entry.frame_ok  # noqa: SLF001 - the snapshot's memory holds it
    assert frame_words(m) == (m.call_return_address, define("KMEMU_CALL_QUIET"))
    assert m.call("kmemu_test_add", 6, 7, 0, 0, 0, 0) == 20
    m.restore(bare)
    assert frame_words(m) == (0, 0) and not m._entry.frame_ok  # noqa: SLF001
    assert m.call("kmemu_test_add", 4, 5, 0, 0, 0, 0) == 14


def test_other_runs_clear_it_and_calls_go_on(machine: Machine) -> None:
    """A careful call (instruction budget), a call in irq context and an interrupt
    at idle all run through _run, whose guest code may push over the frame (and
    does: an interrupt at idle runs on the idle stack, 512 bytes above the call's)."""
    m = machine
    m.call("kmemu_test_nop")
    assert m.call("kmemu_test_add", 1, 1, 0, 0, 0, 0, max_insns=10_000) == 3
    assert not m._entry.frame_ok  # noqa: SLF001
    assert m.call("kmemu_test_add", 1, 2, 0, 0, 0, 0) == 5 and m._entry.frame_ok  # noqa: SLF001
    assert m.call("kmemu_test_add", 2, 2, 0, 0, 0, 0, context="irq") == 6
    assert not m._entry.frame_ok  # noqa: SLF001
    assert idle_regs(m) == (m._idle_rsp, m._idle_rip, 0x202)  # noqa: SLF001 - as after any call
    assert m.call("kmemu_test_add", 2, 3, 0, 0, 0, 0) == 8
    # an interrupt at idle runs on the idle stack, which the call's stack lies below: a
    # deep one (printk's report of a sleeping allocation) writes over the frame for real
    p = m.kmalloc(64, "GFP_KERNEL", context="irq")
    assert frame_words(m) != (m.call_return_address, define("KMEMU_CALL_QUIET"))
    assert m.call("kmemu_test_add", 3, 3, 0, 0, 0, 0) == 9 and m._entry.frame_ok  # noqa: SLF001
    m.kfree(p)
    assert idle_regs(m) == (m._idle_rsp, m._idle_rip, 0x202)  # noqa: SLF001


def test_the_port_end_counts_what_the_quiet_end_counts(
        machine: Machine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel or stack without the quiet end (here: the host told not to use it)
    ends every call with the CALL_DONE port write and the host's register write;
    both ends are five instructions, so the count does not depend on which ran.
    (monkeypatch: the session's machine is shared, and the next test wants its
    quiet end back.)"""
    m = machine
    m.call("kmemu_test_nop")
    with m.count_instructions() as quiet:
        m.call("kmemu_test_nop")
    monkeypatch.setattr(m._entry, "_quiet", 0)  # noqa: SLF001 - as _find_quiet_end's 0
    monkeypatch.setattr(m, "_quiet_end", 0)
    m._entry.frame_ok = False  # noqa: SLF001
    with m.count_instructions() as port:
        assert m.call("kmemu_test_add", 1, 2, 0, 0, 0, 0) == 5
    with m.count_instructions() as port_nop:
        m.call("kmemu_test_nop")
    assert frame_words(m)[1] == 0 and not m._entry.frame_ok  # noqa: SLF001
    assert idle_regs(m) == (m._idle_rsp, m._idle_rip, 0x202)  # noqa: SLF001
    assert quiet[0] == port_nop[0] == 35 and port[0] > 35



@pytest.mark.parametrize("how", ["irq at idle", "call in irq context"])
def test_stepping_an_interrupt_past_its_iret(machine: Machine, how: str) -> None:
    """The quiet end is the idle hlt, where an interrupt at idle also returns: stepped
    through its iret, it goes on round the idle loop to CTL_READY and ends there (it
    was taken for a call's end: "kernel did not return to idle after IRQ 0x30")."""
    m = machine
    where = "test_irq_handler" if how == "irq at idle" else "kmemu_test_add"
    m.break_at(where, temporary=True)
    with pytest.raises(BreakpointHit) as ei:
        if how == "irq at idle":
            m.raise_irq(define("KMEMU_TEST_VECTOR"))
        else:
            m.call("kmemu_test_add", 1, 2, 0, 0, 0, 0, context="irq")
    call = ei.value.call
    for _ in range(500):
        call.stepi()
        if call.done:
            break
    assert call.done and m.state == "ready"
    assert call.result == (0 if how == "irq at idle" else 5)
    assert idle_regs(m) == (m._idle_rsp, m._idle_rip, 0x202)  # noqa: SLF001 - both ends
    assert m.call("kmemu_test_add", 2, 3, 0, 0, 0, 0) == 8
