"""Issue 10 item 3: nothing a test leaves on the ``machine`` fixture outlives it.

An inner session (pytester, in a subprocess, one worker so the order is fixed)
runs pairs of tests: ``test_leave_X`` deliberately leaves X behind on the
session's machine, ``test_after_X`` (the next test, same machine) must not see
it.  One pair per case: stopping breakpoints, counting breakpoints, watchpoints,
hooks (``hook_add`` and straight on ``uc``), timers, pending interrupts, calls
stopped at a breakpoint or by a budget, an open instruction count, host-side
settings, and a panicked machine.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER = '''
import pytest
from unicorn import UC_HOOK_CODE, UC_HOOK_MEM_WRITE
from emu import BreakpointHit, BudgetExceeded, GuestExit

SEEN = []  # what leftover hooks record, if they ever run again


def test_leave_a_stopping_breakpoint(machine):
    machine.break_at("kmalloc")

def test_after_a_stopping_breakpoint(machine):
    assert machine.kmalloc(64)  # no BreakpointHit


def test_leave_a_call_stopped_at_a_breakpoint(machine):
    machine.break_at("kmalloc")
    with pytest.raises(BreakpointHit):
        machine.kmalloc(64)
    assert machine.state == "stopped"

def test_after_a_call_stopped_at_a_breakpoint(machine):
    assert machine.state == "ready"
    assert machine.kmalloc(64)


def test_leave_a_counting_breakpoint(machine):
    bp = machine.breakpoint("kmalloc").install()
    machine.kmalloc(64)
    assert bp.hits == 1
    SEEN.append(bp)

def test_after_a_counting_breakpoint(machine):
    machine.kmalloc(64)
    assert SEEN.pop().hits == 1  # its hook is gone


def test_leave_a_stopping_watchpoint(machine):
    p = machine.kmalloc(64)
    machine.kfree(p)
    machine.watch(p, 8)  # the free pointer is written by the next kmalloc/kfree

def test_after_a_stopping_watchpoint(machine):
    assert machine._watchpoints == []
    machine.kfree(machine.kmalloc(64))  # no WatchpointHit


def test_leave_hooks(machine):
    machine.hook_add(UC_HOOK_CODE, lambda *a: SEEN.append("hook_add"))
    machine.uc.hook_add(UC_HOOK_MEM_WRITE, lambda *a: SEEN.append("uc.hook_add"))
    machine.uc.ctl_flush_tb()
    machine.call("kmemu_test_nop")
    assert "hook_add" in SEEN and "uc.hook_add" in SEEN
    SEEN.clear()

def test_after_hooks(machine):
    machine.kfree(machine.kmalloc(64))
    assert SEEN == []


def test_leave_a_timer(machine):
    machine.raise_irq(0x30, after=10**9)
    assert machine.irq.has_timers()

def test_after_a_timer(machine):
    assert not machine.irq.has_timers()


def test_leave_a_pending_interrupt(machine):
    machine.break_at("kmemu_test_add")
    with pytest.raises(BreakpointHit):
        machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6)
    machine.raise_irq(0x30)  # pending for the stopped call
    assert machine.irq.has_pending()

def test_after_a_pending_interrupt(machine):
    assert not machine.irq.has_pending()
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91


def test_leave_a_call_stopped_by_its_budget(machine):
    with pytest.raises(BudgetExceeded):
        machine.call("kmalloc", 64, 0xcc0, max_insns=90)
    assert machine.state == "stopped"

def test_after_a_call_stopped_by_its_budget(machine):
    assert machine.state == "ready"
    assert machine.kmalloc(64) and machine.validate_slab() == []


def test_leave_an_open_instruction_count(machine):
    count = machine.count_instructions()
    count.__enter__()
    SEEN.append(count)  # never exited
    assert machine._counter.users == 1

def test_after_an_open_instruction_count(machine):
    assert machine._counter.users == 0 and machine._counter._hook is None
    SEEN.clear()  # the old count ends now: it must not release the next one
    with machine.count_instructions() as n:
        machine.call("kmemu_test_nop")
    assert n[0] > 0 and machine._counter.users == 0


def test_leave_settings(machine):
    machine.budget_seconds = 0.001
    machine.suspend_on_interrupt = True
    machine.echo = SEEN.append

def test_after_settings(machine):
    assert machine.budget_seconds == 60.0
    assert not machine.suspend_on_interrupt and machine.echo is None


def test_leave_a_panicked_machine(machine):
    msg = machine.kmalloc(32)
    machine.write_virt(msg, b"left behind\\0")
    with pytest.raises(GuestExit):
        machine.call("panic", msg)
    assert machine.state == "exited"

def test_after_a_panicked_machine(machine):
    assert machine.state == "ready"
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91
'''

CASES = ["a_stopping_breakpoint", "a_call_stopped_at_a_breakpoint", "a_counting_breakpoint",
         "a_stopping_watchpoint", "hooks", "a_timer", "a_pending_interrupt",
         "a_call_stopped_by_its_budget", "an_open_instruction_count", "settings",
         "a_panicked_machine"]


@pytest.mark.slow
def test_nothing_a_test_leaves_reaches_the_next(pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-v")
    out = result.stdout.str()
    for case in CASES:  # a test per case: each leave/after pair by name
        assert f"test_leave_{case} PASSED" in out, out
        assert f"test_after_{case} PASSED" in out, out
    result.assert_outcomes(passed=2 * len(CASES))
