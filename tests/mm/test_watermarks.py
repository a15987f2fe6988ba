"""Watermark boundaries per GFP mode, order 0 and 3, exactly where Linux's arithmetic says.

The DMA zone is used with __GFP_DMA, so there is no fallback zone and
lowmem_reserve[DMA] is 0.  The expected outcome is computed here, from
Linux's __zone_watermark_ok as documented, and from the zone's actual free
lists: free - (2^order - 1) must exceed min (halved for __GFP_HIGH, and a
further quarter off for callers that cannot block), and an order > 0
request needs a free block of at least that order.
"""

from __future__ import annotations

import pytest

from emu import Machine
from emu.kernel.gfp import parse

from .helpers import ZONE_INDEX, assert_consistent, release, zone

MODES = {
    "GFP_KERNEL": "GFP_KERNEL | __GFP_NORETRY",  # no reclaim possible: fail fast
    "GFP_NOWAIT": "GFP_NOWAIT",
    "GFP_ATOMIC": "GFP_ATOMIC",
    "__GFP_HIGH": "GFP_KERNEL | __GFP_HIGH | __GFP_NORETRY",
}


def effective_min(wmark_min: int, gfp: int) -> int:
    m = wmark_min
    if gfp & 0x20:  # __GFP_HIGH -> ALLOC_MIN_RESERVE
        m -= m // 2
        if not gfp & 0x400:  # cannot block -> ALLOC_NON_BLOCK
            m -= m // 4
    return m


def expected(z, order: int, gfp: int) -> bool:
    # a high-order request that cannot block may use the highatomic reserve
    # (ALLOC_HIGHATOMIC); everyone else does not count it as free
    highatomic = order > 0 and not gfp & 0x400
    free = z.free - ((1 << order) - 1) - (0 if highatomic else z.reserved_highatomic)
    if free <= effective_min(z.watermark["min"], gfp) + z.lowmem_reserve[0]:
        return False
    types = ["Unmovable", "Movable", "Reclaimable"] + (["HighAtomic"] if highatomic else [])
    return order == 0 or any(z.free_by_type[t][o] for o in range(order, 11) for t in types)


def set_dma_free(m: Machine, pages: int) -> None:
    m.drain_all_pages()
    m.call("kmemu_test_hoard_zone", ZONE_INDEX["DMA"], 1 << 40, 0)
    assert zone(m, "DMA").free == 0
    release(m, pages)
    m.drain_all_pages()
    assert zone(m, "DMA").free == pages


def probe(m: Machine, mode: str, order: int) -> bool:
    va = m.alloc_pages(f"{MODES[mode]} | __GFP_DMA | __GFP_NOWARN", order)
    if va:
        m.free_pages(va, order)
        m.drain_all_pages()
    return va != 0


@pytest.mark.parametrize("order", [0, 3])
def test_watermark_boundaries(machine: Machine, order: int) -> None:
    wmin = zone(machine, "DMA").watermark["min"]
    thresholds = {effective_min(wmin, parse(MODES[k])) for k in MODES}
    levels = sorted({t + d + ((1 << order) - 1) for t in thresholds for d in (0, 1, 2)})
    base = machine.snapshot()
    seen = {k: set() for k in MODES}
    for level in levels:
        machine.restore(base)
        set_dma_free(machine, level)
        at_level = machine.snapshot()
        for mode in MODES:
            # each mode from the same state: a high-order atomic success reserves a
            # pageblock (MIGRATE_HIGHATOMIC), which later modes would not count as free
            machine.restore(at_level)
            z = zone(machine, "DMA")
            want = expected(z, order, parse(MODES[mode]))
            got = probe(machine, mode, order)
            assert got == want, f"{mode} order {order} with {level} free pages (min {wmin})"
            seen[mode].add(got)
            assert zone(machine, "DMA").free == level  # the probe gave everything back
        assert_consistent(machine)
    # every mode was seen both failing and succeeding across the levels
    assert all(v == {True, False} for v in seen.values()), seen


def test_reserve_ordering(machine: Machine) -> None:
    """GFP_ATOMIC reaches deeper than __GFP_HIGH, which reaches deeper than GFP_KERNEL."""
    wmin = zone(machine, "DMA").watermark["min"]
    atomic = effective_min(wmin, parse("GFP_ATOMIC"))
    high = effective_min(wmin, parse("GFP_KERNEL | __GFP_HIGH"))
    assert atomic < high < wmin
    set_dma_free(machine, atomic + 1)
    assert probe(machine, "GFP_ATOMIC", 0)
    assert not probe(machine, "__GFP_HIGH", 0)
    assert not probe(machine, "GFP_KERNEL", 0)
    assert not probe(machine, "GFP_NOWAIT", 0)  # no reserves for GFP_NOWAIT
