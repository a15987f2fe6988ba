"""An interrupt at every instruction of kmalloc and kfree, whose handler allocates and
frees from the same cache with GFP_ATOMIC: the cache must validate clean every time
(``m.sweep_irqs``, emu/check/irqs.py).  On each slab allocator: SLUB's lockless fast
path (at the boot defaults: might_sleep's inline check, no hooks; and on the hooks
path), SLAB's and SLOB's interrupts-off sections."""

from __future__ import annotations

import pytest

from emu import Machine
from emu.frontend.pytest_plugin import booted_machine

SLAB_VECTOR = 0x32


@pytest.mark.slow
@pytest.mark.parametrize(("allocator", "hooks"), [
    ("slub", False), ("slub", True), ("slab", False), ("slob", False)],
    ids=["slub-defaults", "slub-hooks", "slab", "slob"])
@pytest.mark.parametrize("op", ["kmalloc", "kfree"])
def test_irq_at_every_instruction(op: str, allocator: str, hooks: bool) -> None:
    """SLUB at the boot defaults (might_sleep's check inline, then the per-CPU freelist
    with no hooks: `kmemu bench`'s path but for that check) and with a feature that
    holds slab_hooks_key on (KUnit's leak tracking, prepared and not recording: the
    hooks path, slab_alloc_hooks / slab_free_hooks)."""
    m = booted_machine(mem="32M", **({} if allocator == "slub" else {"slab": allocator}))
    if hooks:
        m.call("kunit_track_prepare")
    # warm: an active slab with free objects, so the fast and slow paths both occur
    keep = [m.kmalloc(64) for _ in range(3)]
    victim = m.kmalloc(64)
    runs_before = int(m.var("slab_irq_runs"))

    def check(m: Machine, result: int) -> list[str]:
        problems = []
        if op == "kmalloc" and not (result and m.slab_object_allocated(result)
                                    and result not in keep):
            problems.append(f"kmalloc returned {result:#x}")
        if op == "kfree" and m.slab_object_allocated(victim):
            problems.append("the object is still allocated")
        if int(m.var("slab_irq_runs")) != runs_before + 1:
            problems.append("the handler did not run exactly once")
        if int(m.var("slab_irq_failed")):
            problems.append("the handler's GFP_ATOMIC allocation failed")
        return problems

    args = (64, 0xCC0) if op == "kmalloc" else (victim,)
    runs = m.sweep_irqs(op, *args, handler=SLAB_VECTOR, check=check,
                        validate=lambda m: m.validate_slab())
    assert 20 < runs.length < (700 if allocator == "slob" else 400)  # SLOB: first fit walks
    assert len(runs) == runs.length + 1
    assert runs.failures == [], runs
