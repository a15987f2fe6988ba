"""Sleeping-in-atomic reports, reclaim through shrinkers, OOM, __GFP_NOFAIL, waiting, kswapd."""

from __future__ import annotations

import pytest

from emu import BudgetExceeded, GuestWaiting, Machine, MachineError
from emu.kernel.gfp import GfpError

from .helpers import assert_consistent, empty_zone, event_kinds, hoard, release, zone

RELEASE_VECTOR = 0x31


def fill_memory(m: Machine) -> int:
    """Hoard order-0 pages until GFP_KERNEL (without reclaim) fails everywhere."""
    n = hoard(m, 1 << 30, "GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN", 0)
    m.drain_all_pages()
    return n


def test_atomic_allocation_in_irq_is_silent(machine: Machine) -> None:
    n = len(machine.events)
    va = machine.alloc_pages("GFP_ATOMIC", 0, context="irq")
    assert va
    machine.free_pages(va, 0, context="irq")
    assert event_kinds(machine, n) == []
    assert "sleeping function" not in machine.console


@pytest.mark.parametrize("context,atomic,irqs_off", [
    ("irq", 1, 1), ("irqs_off", 0, 1), ("preempt_off", 1, 0)])
def test_gfp_kernel_in_atomic_context_is_reported(machine: Machine, context: str, atomic: int,
                                                  irqs_off: int) -> None:
    n = len(machine.events)
    va = machine.alloc_pages("GFP_KERNEL", 0, context=context)
    assert va  # Linux reports and carries on
    ev = [e for e in machine.events[n:] if e.kind == "sleep_in_atomic"]
    assert len(ev) == 1
    assert ev[0].message.startswith("BUG: sleeping function called from invalid context at ")
    assert "page_alloc.c:" in ev[0].message
    assert (ev[0].args[0], ev[0].args[1]) == (atomic, irqs_off)
    assert f"in_atomic(): {atomic}, irqs_disabled(): {irqs_off}" in machine.console
    assert any(s.startswith(("__alloc_pages", "alloc_pages")) for s in ev[0].symbols)
    assert "Comm: kmemu Not tainted" in machine.console  # the report's own dump: not yet
    machine.free_pages(va, 0)
    machine.free_pages(machine.alloc_pages("GFP_KERNEL", 0, context=context), 0)
    assert "Comm: kmemu Tainted: G        W" in machine.console  # __might_resched's taint
    assert_consistent(machine)


def test_direct_reclaim_uses_shrinkers(machine: Machine) -> None:
    hoarded = fill_memory(machine)
    assert hoarded > 50_000
    assert machine.alloc_pages("GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN", 0) == 0
    machine.call("kmemu_test_hoard_shrinker", 1)
    va = machine.alloc_pages("GFP_KERNEL", 0)
    assert va
    freed = machine.call("kmemu_test_hoard_shrinker", 1)
    assert freed > 0
    assert int(machine.var("direct_reclaims")) >= 1
    machine.free_pages(va, 0)
    assert_consistent(machine)


def test_oom_report_and_failure(machine: Machine) -> None:
    fill_memory(machine)
    n = len(machine.events)
    assert machine.alloc_pages("GFP_KERNEL", 0) == 0
    kinds = event_kinds(machine, n)
    assert "oom" in kinds and kinds[-1] == "alloc_fail"
    text = machine.console
    assert "kmemu invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0" in text
    assert "Out of memory and no killable processes..." in text
    assert "Node 0 DMA32 free:" in text and "lowmem_reserve[]:" in text
    assert "kmemu: page allocation failure: order:0, mode:0xcc0(GFP_KERNEL), nodemask=(null)" \
        in text
    # the waits between reclaim rounds were real sleeps that timed out
    assert machine.sleeps == 16
    assert_consistent(machine)


def test_noretry_gives_up_after_one_round(machine: Machine) -> None:
    fill_memory(machine)
    n = len(machine.events)
    sleeps = machine.sleeps
    assert machine.alloc_pages("GFP_KERNEL | __GFP_NORETRY", 0) == 0
    assert "oom" not in event_kinds(machine, n)
    assert machine.sleeps == sleeps
    assert event_kinds(machine, n)[-1] == "alloc_fail"


def test_nowarn_suppresses_the_report_but_not_the_event(machine: Machine) -> None:
    fill_memory(machine)
    mark = len(machine.console)
    n = len(machine.events)
    assert machine.alloc_pages("GFP_NOWAIT | __GFP_NOWARN", 0) == 0
    assert "page allocation failure" not in machine.console[mark:]
    assert event_kinds(machine, n) == ["alloc_fail"]


def test_sleeping_allocation_is_woken_by_an_irq_that_frees(machine: Machine) -> None:
    fill_memory(machine)
    machine.write_virt(machine.symbol("hoard_irq_release"), (64).to_bytes(8, "little"))
    machine.raise_irq(RELEASE_VECTOR, after=1_000_000)  # fires while the guest sleeps
    va = machine.alloc_pages("GFP_KERNEL", 0)
    assert va
    assert int(machine.var("hoard_irq_released")) == 64
    assert machine.sleeps >= 1
    assert "oom-killer" not in machine.console
    machine.free_pages(va, 0)
    assert_consistent(machine)


def test_nofail_waits_until_the_host_gives_up(machine: Machine) -> None:
    for name in ("DMA32", "DMA"):  # the reserves too: nothing left at all
        empty_zone(machine, name)
    with pytest.raises(GuestWaiting, match="waiting for memory") as ei:
        machine.alloc_pages("GFP_KERNEL | __GFP_NOFAIL", 0)
    # the allocation stays suspended in its wait, and the machine says so
    assert machine.state == "stopped" and ei.value.call.stopped_by == "wait"
    with pytest.raises(MachineError, match="is stopped waiting for memory"):
        machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6)
    # an interrupt raised now is pending for the call: it frees memory, the wait ends
    machine.write_virt(machine.symbol("hoard_irq_release"), (64).to_bytes(8, "little"))
    machine.raise_irq(RELEASE_VECTOR)
    va = ei.value.call.resume()
    assert va and machine.state == "ready"
    machine.free_pages(va, 0)
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91
    assert_consistent(machine)


def test_nofail_without_reclaim_warns_and_fails(machine: Machine) -> None:
    fill_memory(machine)
    n = len(machine.events)
    with pytest.raises(GfpError, match="needs __GFP_DIRECT_RECLAIM"):
        machine.alloc_pages("GFP_NOWAIT | __GFP_NOFAIL", 0)  # Python refuses by default...
    # ...the kernel, given it anyway, warns and fails as Linux does
    assert machine.call("__get_free_pages", 0x8800, 0) == 0
    assert event_kinds(machine, n)[:1] == ["warn"]


def test_kswapd_brings_the_zone_back_to_high(machine: Machine) -> None:
    empty_zone(machine, "DMA")  # no fallback: the pressure stays on DMA32
    dma32 = zone(machine, "DMA32")
    # take pages until the zone is just below low (nothing reclaimable yet)
    target = dma32.free - dma32.watermark["low"] + 40
    hoard(machine, target, "GFP_KERNEL", 0)
    machine.drain_all_pages()
    z = zone(machine, "DMA32")
    assert z.free < z.watermark["low"]
    machine.call("kmemu_test_hoard_shrinker", 1)
    runs = int(machine.var("kswapd_runs"))
    # one more GFP_KERNEL allocation wakes kswapd; it runs when the call returns
    va = machine.alloc_pages("GFP_KERNEL", 0)
    assert int(machine.var("kswapd_runs")) > runs
    z = zone(machine, "DMA32")
    assert z.free >= z.watermark["high"]
    machine.free_pages(va, 0)
    assert_consistent(machine)


def test_nofail_in_irq_context_warns_once_and_spins_quietly(machine: Machine) -> None:
    """GFP_KERNEL | __GFP_NOFAIL in a hard-IRQ handler with memory exhausted: it may
    neither sleep nor fail.  As in Linux it keeps retrying; kmemu reports the bug
    (sleeping in atomic context), the OOM once and one WARNING, then spins without
    printing until the budget stops the call (it used to print an OOM report per
    retry: megabytes of console a second)."""
    for name in ("DMA32", "DMA"):
        empty_zone(machine, name)
    before = machine.snapshot()
    mark, n = len(machine.console), len(machine.events)
    with pytest.raises(BudgetExceeded) as ei:
        machine.call("__get_free_pages", 0x8CC0, 0, context="irq", max_insns=3_000_000)
    text = machine.console[mark:]
    assert event_kinds(machine, n) == ["sleep_in_atomic", "oom", "warn"]
    assert text.count("invoked oom-killer") == 1
    assert text.count("__GFP_NOFAIL allocation (order 0) in atomic context cannot make "
                      "progress") == 1
    assert len(text) < 8192
    # the spinning call stays suspended (it can never end by itself): back to before it
    assert machine.state == "stopped" and ei.value.call.stopped_by == "budget"
    machine.restore(before)
    release(machine, 100)
    machine.drain_all_pages()
    assert machine.alloc_pages("GFP_KERNEL", 0)


def test_nofail_spinning_with_interrupts_on_is_ended_by_an_irq_that_frees(
        machine: Machine) -> None:
    """In atomic context with interrupts enabled (preempt_off) an interrupt can still
    free memory: the spin then takes it and the allocation succeeds."""
    for name in ("DMA32", "DMA"):
        empty_zone(machine, name)
    machine.write_virt(machine.symbol("hoard_irq_release"), (64).to_bytes(8, "little"))
    machine.raise_irq(RELEASE_VECTOR, after=2_000_000)
    va = machine.call("__get_free_pages", 0x8CC0, 0, context="preempt_off",
                      max_insns=50_000_000)
    assert va
    assert int(machine.var("hoard_irq_released")) == 64
    assert machine.console.count("cannot make progress") == 1
    machine.free_pages(va, 0)
    assert_consistent(machine)
