"""Issue 10 item 2: a call cut by its budget at any instruction leaves a sound kernel.

Every entry point below is cut after each of its instructions (``emu.check.sweep``): at
every cut the machine must say "stopped", and ``abort()`` (``resume()`` with the
stopping points off) must return what the uncut call returns and leave a kernel
where a follow-up allocation works and the validators find nothing.  The cut
points are split into chunks so pytest-xdist spreads them over the workers.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from emu import Machine
from emu.check.sweep import budget_sweep, follow_up_allocations
from emu.kernel.gfp import parse as parse_gfp

GFP_KERNEL = parse_gfp("GFP_KERNEL")


def kmalloc_cold(m: Machine) -> tuple:
    """The first kmalloc-64 after boot: the slow path takes a new slab (list_lock held)."""
    return ("kmalloc", 64, GFP_KERNEL)


def kfree_last(m: Machine) -> tuple:
    """kfree of the only object of a fresh slab."""
    return ("kfree", m.kmalloc(64))


def alloc_pages_cold(m: Machine) -> tuple:
    """The first order-0 allocation: the pcp list is refilled from the buddy lists."""
    return ("__get_free_pages", GFP_KERNEL, 0)


def vmalloc_warm(m: Machine) -> tuple:
    """A one-page vmalloc once the vmalloc page tables exist (area, pages, mapping)."""
    m.vfree(m.vmalloc(4096))
    return ("__vmalloc", 4096, GFP_KERNEL)


def vfree_warm(m: Machine) -> tuple:
    """vfree of a one-page area (unmap, free the pages, queue the range lazily)."""
    m.vfree(m.vmalloc(4096))
    return ("vfree", m.vmalloc(4096))


def vmalloc_follow_up(m: Machine) -> None:
    assert m.vmalloc(8192)
    follow_up_allocations(m)


# name: (setup returning the call, follow-up, chunk size, instructions the chunks cover)
SWEEPS: dict[str, tuple[Callable[[Machine], tuple], Callable[[Machine], None], int, int]] = {
    "kmalloc": (kmalloc_cold, follow_up_allocations, 1000, 3000),
    "kfree": (kfree_last, follow_up_allocations, 1000, 1000),
    "alloc_pages": (alloc_pages_cold, follow_up_allocations, 1000, 1000),
    "vmalloc": (vmalloc_warm, vmalloc_follow_up, 700, 3500),
    "vfree": (vfree_warm, vmalloc_follow_up, 1000, 7000),
}
CHUNKS = [(name, lo, min(lo + size, cover))
          for name, (_, _, size, cover) in SWEEPS.items() for lo in range(1, cover, size)]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "lo", "hi"), CHUNKS,
                         ids=[f"{n}-{lo}-{hi}" for n, lo, hi in CHUNKS])
def test_every_cut_point_leaves_a_sound_kernel(machine: Machine, name: str, lo: int,
                                               hi: int) -> None:
    setup, follow_up, _, cover = SWEEPS[name]
    fn, *args = setup(machine)
    report = budget_sweep(machine, fn, *args, cuts=range(lo, hi), follow_up=follow_up,
                          full_every=500)
    assert report.length <= cover, f"{fn} now runs {report.length} instructions: widen the chunks"
    assert not report.failures, str(report)
    assert machine.state == "ready"  # the sweep puts the machine back


def test_the_sweep_finds_a_half_done_call(machine: Machine, monkeypatch) -> None:
    """The sweep can fail: with the old abort (drop the call where it stopped) the
    kmalloc slow path leaves list_lock held and the next kmalloc dies."""
    from emu.debug.stops import StopsMixin

    def drop(self: Machine, call, seconds=None) -> int:
        self._drop(call)  # noqa: SLF001
        return 0

    monkeypatch.setattr(StopsMixin, "_abort", drop)
    report = budget_sweep(machine, "kmalloc", 64, GFP_KERNEL, cuts=range(60, 120))
    assert report.failures, str(report)
    assert all(f.action == "abort" for f in report.failures)
    assert any("___slab_alloc" in f.where for f in report.failures)


def test_steps_inside_counted_runs_are_exact_and_keep_translated_code(machine: Machine,
                                                                     monkeypatch) -> None:
    """Inside ``_counted_runs`` (what the sweep runs in) stepping a call takes exactly
    as many steps as outside, whether its code was translated by a plain run or a
    counted one, and a sweep throws translated code away a few times, not at every cut
    (a count=0 run after a step makes Unicorn flush it all)."""
    from emu.core.cpu import BudgetExceeded

    start = machine.snapshot()

    def stepped() -> tuple[int, int | None]:
        machine.restore(start)
        machine.kmalloc(128)  # a run (plain or counted) that translates the path again
        with pytest.raises(BudgetExceeded) as e:
            machine.call("kmalloc", 64, GFP_KERNEL, max_insns=1)
        call, steps = e.value.call, e.value.insns
        while not call.done:
            call.stepi()
            steps += 1
        return steps, call.result

    plain = stepped()
    assert plain[0] > 1000 and plain[1]  # kmalloc's slow path, every instruction stepped
    with machine._counted_runs():  # noqa: SLF001
        assert stepped() == plain
        assert stepped() == plain
    assert stepped() == plain  # and outside again
    machine.restore(start)

    flushes = []
    uc = machine.uc
    flush = uc.ctl_flush_tb
    monkeypatch.setattr(uc, "ctl_flush_tb", lambda: (flushes.append(1), flush())[1])
    report = budget_sweep(machine, "kmalloc", 64, GFP_KERNEL, cuts=range(1, 201))
    assert not report.failures and len(report.cuts) == 200
    assert len(flushes) < 20, len(flushes)
