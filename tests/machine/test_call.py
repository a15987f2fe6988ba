"""Calling kernel functions by symbol, and the errors for bad calls."""

from __future__ import annotations

import pytest
from unicorn import UC_HOOK_CODE

from emu import BadArgument, BudgetExceeded, Machine
from emu.kernel.symbols import SymbolError


def test_six_register_arguments(machine: Machine) -> None:
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 1 + 4 + 9 + 16 + 25 + 36


def test_results_are_unsigned_64_bit(machine: Machine) -> None:
    assert machine.call("kmemu_test_add", -1, 0, 0, 0, 0, 0) == (1 << 64) - 1
    assert machine.call("kmemu_test_add", 1 << 63, 0, 0, 0, 0, 0) == 1 << 63


def test_call_by_address(machine: Machine) -> None:
    assert machine.call(machine.symbol("kmemu_test_add"), 1, 1, 1, 1, 1, 1) == 21


def test_contexts(machine: Machine) -> None:
    def ctx(context: str) -> dict[str, int]:
        v = machine.call("kmemu_test_context", context=context)
        return {"hardirq": v & 1, "irqs_off": (v >> 1) & 1, "atomic": (v >> 2) & 1,
                "preempt_count": v >> 8}

    assert ctx("process") == {"hardirq": 0, "irqs_off": 0, "atomic": 0, "preempt_count": 0}
    assert ctx("irqs_off") == {"hardirq": 0, "irqs_off": 1, "atomic": 0, "preempt_count": 0}
    assert ctx("preempt_off") == {"hardirq": 0, "irqs_off": 0, "atomic": 1, "preempt_count": 1}
    assert ctx("irq") == {"hardirq": 1, "irqs_off": 1, "atomic": 1, "preempt_count": 1 << 16}
    # nothing leaks into the next call
    assert ctx("process")["preempt_count"] == 0


def test_irq_context_call_passes_arguments(machine: Machine) -> None:
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6, context="irq") == 91
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6, context="irqs_off") == 91


def test_unknown_symbol(machine: Machine) -> None:
    with pytest.raises(SymbolError, match="unknown kernel symbol 'kmallok'"):
        machine.call("kmallok", 1)
    with pytest.raises(SymbolError):
        machine.symbol("no_such_thing")


def test_wrong_argument_count(machine: Machine) -> None:
    with pytest.raises(BadArgument, match=r"kmemu_test_add\(\) takes 6 argument"):
        machine.call("kmemu_test_add", 1, 2)
    with pytest.raises(BadArgument, match="takes 0 argument"):
        machine.call("kmemu_test_nop", 1)


def test_non_integer_arguments(machine: Machine) -> None:
    with pytest.raises(BadArgument, match="argument 2 must be an int"):
        machine.call("kmemu_test_fault", 0, "1")
    with pytest.raises(BadArgument, match="must be an int"):
        machine.call("kmemu_test_fault", 1.5, 0)
    with pytest.raises(BadArgument, match="64 bits"):
        machine.call("kmemu_test_fault", 1 << 64, 0)
    with pytest.raises(BadArgument, match="at most 6"):
        machine.call("kmemu_test_add", *range(7))
    with pytest.raises(BadArgument, match="context"):
        machine.call("kmemu_test_nop", context="softirq")
    with pytest.raises(BadArgument, match="not a function"):
        machine.call("boot_info")
    # and the machine still works
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91


def test_symbolize(machine: Machine) -> None:
    addr = machine.symbol("kmemu_test_add")
    s = machine.symbolize(addr + 4)
    name, rest = s.split("+")
    off, size = rest.split("/")
    assert name == "kmemu_test_add" and int(off, 16) == 4 and int(size, 16) > 4
    assert machine.symbolize(machine.symbol("boot_info")).startswith("boot_info+0x0/")


def test_runaway_guest_hits_the_time_budget(machine: Machine) -> None:
    snap = machine.snapshot()
    with pytest.raises(BudgetExceeded, match="0.2 s") as ei:
        machine.call("kmemu_test_spin", 0, budget_seconds=0.2)
    assert machine.state == "stopped" and ei.value.call.stopped_by == "budget"
    machine.restore(snap)  # a runaway never ends: restore, not abort
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91


def test_instruction_budget(machine: Machine) -> None:
    snap = machine.snapshot()
    with pytest.raises(BudgetExceeded, match="10000 instructions") as ei:
        machine.call("kmemu_test_spin", 0, max_insns=10_000)
    assert 9_900 < ei.value.insns <= 10_000  # stopped before the block that would exceed it
    assert machine.state == "stopped"
    machine.restore(snap)
    assert machine.call("kmemu_test_spin", 100, max_insns=100_000) == 100


def test_instruction_counts_are_deterministic(machine: Machine) -> None:
    counts = []
    for _ in range(3):
        with machine.count_instructions() as n:
            machine.call("kmemu_test_spin", 1000)
        counts.append(n[0])
    assert counts[0] == counts[1] == counts[2]
    with machine.count_instructions() as small:
        machine.call("kmemu_test_spin", 10)
    assert small[0] < counts[0]


def test_user_hooks_work_alongside(machine: Machine) -> None:
    hits: list[int] = []
    addr = machine.symbol("kmemu_test_add")
    h = machine.hook_add(UC_HOOK_CODE, lambda uc, a, s, d: hits.append(a), None, addr, addr)
    try:
        machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6)
        machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6)
    finally:
        machine.uc.hook_del(h)
    assert hits == [addr, addr]
