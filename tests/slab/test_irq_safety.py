"""An interrupt at every instruction of kmalloc and kfree, whose handler allocates and
frees from the same cache with GFP_ATOMIC: the cache must validate clean every time."""

from __future__ import annotations

import pytest

from emu import Machine
from emu.frontend.pytest_plugin import booted_machine

SLAB_VECTOR = 0x32


@pytest.fixture(scope="module")
def small() -> Machine:
    return booted_machine(mem="32M")


def insns(m: Machine, fn: str, *args: int) -> int:
    with m.count_instructions() as n:
        m.call(fn, *args)
    return n[0]


@pytest.mark.parametrize("op", ["kmalloc", "kfree"])
def test_irq_at_every_instruction(small: Machine, op: str) -> None:
    m = small
    # warm: an active slab with free objects, so the fast and slow paths both occur
    keep = [m.kmalloc(64) for _ in range(3)]
    victim = m.kmalloc(64)
    base = m.snapshot()
    total = insns(m, "kmalloc", 64, 0xCC0) if op == "kmalloc" else insns(m, "kfree", victim)
    m.restore(base)
    assert 20 < total < 400
    runs_before = int(m.var("slab_irq_runs"))
    for k in range(1, total + 2):
        m.restore(base)
        m.raise_irq(SLAB_VECTOR, after=k)
        if op == "kmalloc":
            p = m.kmalloc(64)
            assert p and m.find_object(p).allocated and p not in keep
        else:
            m.kfree(victim)
            assert not m.find_object(victim).allocated
        m.call("kmemu_test_nop")  # lets a still-pending interrupt in at the idle loop
        assert int(m.var("slab_irq_runs")) == runs_before + 1, k
        assert int(m.var("slab_irq_failed")) == 0
        problems = m.validate_slab()
        assert problems == [], (k, problems)
    m.restore(base)
