"""m.sweep_irqs: an interrupt at every instruction of a call, each run judged
(emu/check/irqs.py); the slab's own sweep is tests/slab/test_irq_safety.py."""

from __future__ import annotations

import pytest

from emu import KmemuError, Machine

TEST_VECTOR = 0x30  # kernel/irq.c's test vector: counts its deliveries


def test_every_point_and_a_failing_check(machine: Machine) -> None:
    m = machine
    m.kmalloc(64)  # warm: the sweep covers the fast path (a new slab is ~2,000 instructions)
    before = m.read_u64(m.symbol("irq_test_record"))
    seen: list[int] = []

    def check(m: Machine, result: int) -> list[str]:
        seen.append(m.read_u64(m.symbol("irq_test_record")) - before)
        return ["made to fail"] if len(seen) == 5 else []

    runs = m.sweep_irqs("kmalloc", 64, 0xCC0, handler=TEST_VECTOR, check=check)
    assert len(runs) == runs.length + 1 and seen == [1] * len(runs)
    assert [(r.k, r.outcome, r.detail) for r in runs.failures] == [(5, "invalid-state",
                                                                    "made to fail")]
    assert runs[0].where.startswith("kmalloc+0x0/")
    assert runs[-1].where == "(return)"
    assert str(runs).splitlines()[0] == (f"kmalloc: IRQ 0x30 at each of {len(runs)} points "
                                         f"({runs.length} instructions), 1 not ok")
    assert m.read_u64(m.symbol("irq_test_record")) == before  # the machine is back where it was


def test_bad_handler_is_refused(machine: Machine) -> None:
    with pytest.raises(KmemuError, match="handler is the interrupt vector"):
        machine.sweep_irqs("kmalloc", 64, 0xCC0, handler="0x30")
