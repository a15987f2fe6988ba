"""Grouping pages by mobility as Linux 6.1: migrate types, fallback order, stealing.

The decision functions are the kernel's own (can_steal_fallback,
pageblock_claimable, find_suitable_fallback), called at their boundaries; the
state machine drives real allocations of every migrate type and checks, after
every step, the free lists against the pages (validate_page_alloc, which
includes emu.kernel.mm.validate_mobility), /proc/pagetypeinfo against that
census, and that every pageblock whose type changed was taken by the request
that was falling back, as Linux's steal would.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from emu import Machine
from emu.frontend.pytest_plugin import booted_machine
from emu.kernel import mm

UNMOVABLE, MOVABLE, RECLAIMABLE, HIGHATOMIC, ISOLATE = range(5)
GFP_FOR = {UNMOVABLE: "GFP_KERNEL", MOVABLE: "GFP_HIGHUSER_MOVABLE",
           RECLAIMABLE: "GFP_KERNEL | __GFP_RECLAIMABLE"}
PAGE_OFFSET = 0xFFFF888000000000


@pytest.mark.parametrize("order", range(11))
@pytest.mark.parametrize("mt", [UNMOVABLE, MOVABLE, RECLAIMABLE])
def test_can_steal_fallback_thresholds(machine: Machine, order: int, mt: int) -> None:
    # Linux: a whole pageblock or more, half a pageblock's order (4) or more, or a
    # request that is not Movable may take the pageblock
    want = order >= 9 or order >= 4 or mt != MOVABLE
    assert bool(machine.call("can_steal_fallback", order, mt) & 0xFF) == want


@pytest.mark.parametrize("free,alike,want", [
    (255, 0, False), (256, 0, True), (0, 256, True), (200, 55, False), (200, 56, True),
    (512, 0, True), (0, 0, False)])
def test_pageblock_claimed_at_half_a_block(machine: Machine, free: int, alike: int,
                                           want: bool) -> None:
    assert bool(machine.call("pageblock_claimable", free, alike) & 0xFF) == want


def _free_area(m: Machine, nonempty: set[int]) -> int:
    """A struct free_area in guest memory whose lists of these types hold one entry."""
    base = m.kmalloc(256)
    raw = b""
    for t in range(5):
        head, node = base + 16 * t, base + 128 + 16 * t
        raw += struct.pack("<QQ", node, node) if t in nonempty else struct.pack("<QQ", head, head)
    raw += struct.pack("<Q", len(nonempty))
    m.write_virt(base, raw)
    for t in nonempty:
        head, node = base + 16 * t, base + 128 + 16 * t
        m.write_virt(node, struct.pack("<QQ", head, head))
    return base


# Linux 6.1's fallbacks[]: Unmovable -> Reclaimable, Movable; Movable -> Reclaimable,
# Unmovable; Reclaimable -> Unmovable, Movable.  HighAtomic and Isolate are never borrowed.
@pytest.mark.parametrize("start,available,want", [
    (UNMOVABLE, {RECLAIMABLE, MOVABLE}, RECLAIMABLE), (UNMOVABLE, {MOVABLE}, MOVABLE),
    (MOVABLE, {RECLAIMABLE, UNMOVABLE}, RECLAIMABLE), (MOVABLE, {UNMOVABLE}, UNMOVABLE),
    (RECLAIMABLE, {UNMOVABLE, MOVABLE}, UNMOVABLE), (RECLAIMABLE, {MOVABLE}, MOVABLE),
    (UNMOVABLE, {HIGHATOMIC, ISOLATE}, -1), (MOVABLE, set(), -1)])
def test_fallback_order(machine: Machine, start: int, available: set[int], want: int) -> None:
    area = _free_area(machine, available)
    flag = machine.kmalloc(8)
    got = machine.call("find_suitable_fallback", area, 0, start, 0, flag) & 0xFFFFFFFF
    assert (got if got < 1 << 31 else got - (1 << 32)) == want  # an int
    if want != -1:  # order 0: only Unmovable and Reclaimable requests may steal the block
        assert machine.read_virt(flag, 1)[0] == (start != MOVABLE)
    machine.kfree(area)
    machine.kfree(flag)


def test_boot_groups_by_mobility(machine: Machine) -> None:
    assert "Built 1 zonelists, mobility grouping on." in machine.console
    blocks = machine.pageblocks()
    zones = [z for z in machine.zones() if z.populated]
    # every pageblock is Movable at boot but those the kernel's own allocations took
    for z in zones:
        counts = mm.pageblock_counts(z, blocks, lambda pfn: True)
        assert counts["Movable"] > counts["Unmovable"] + counts["Reclaimable"]
        assert counts["HighAtomic"] == counts["Isolate"] == 0
    # the slab allocator's unmovable pages sit in Unmovable pageblocks
    slab_pfns = [p.pfn for p in machine.pages() if p.has("slab")]
    assert slab_pfns
    assert all(blocks[pfn >> 9] & 7 == UNMOVABLE for pfn in slab_pfns)


def test_reclaimable_kmalloc_uses_reclaimable_pageblocks(machine: Machine) -> None:
    before = sum(z.stats["fallback"] for z in machine.zones())
    va = machine.kmalloc(64, "GFP_KERNEL | __GFP_RECLAIMABLE")  # kmalloc-rcl-64's first slab
    pfn = (machine.translate(va)) >> 12
    # no Reclaimable pageblock yet: the page was borrowed (Unmovable's lists first) and
    # its pageblock either became Reclaimable or is marked as lending to another type
    block = machine.pageblocks()[pfn >> 9]
    assert block & 7 == RECLAIMABLE or block & mm.PB_MIXED
    assert sum(z.stats["fallback"] for z in machine.zones()) > before
    machine.kfree(va)
    assert machine.validate_page_alloc() == []


def test_highatomic_reserve(machine: Machine) -> None:
    from .helpers import ZONE_INDEX, release
    dma = machine.zones()[ZONE_INDEX["DMA"]]
    assert dma.reserved_highatomic == 0
    # DMA between its min and low watermarks: the fast path (low) fails, the slow
    # path (min, ALLOC_HIGHATOMIC for a high-order request that cannot block) succeeds
    machine.drain_all_pages()
    machine.call("kmemu_test_hoard_zone", ZONE_INDEX["DMA"], 1 << 40, 0)
    release(machine, dma.watermark["low"] + 4)  # free - 7 <= low: the fast path fails
    machine.drain_all_pages()
    va = machine.alloc_pages("GFP_ATOMIC | __GFP_DMA", 3)
    assert va
    dma = machine.zones()[ZONE_INDEX["DMA"]]
    # the block it came from is set aside: 1% of the zone plus one pageblock at most
    assert dma.reserved_highatomic == 512
    pfn = machine.translate(va) >> 12
    assert machine.pageblocks()[pfn >> 9] & 7 == HIGHATOMIC
    machine.free_pages(va, 3)
    assert sum(machine.zones()[ZONE_INDEX["DMA"]].free_by_type["HighAtomic"]) > 0
    # an order-0 request may not use the reserve: it is not counted as free for it
    assert machine.validate_page_alloc() == []


class Mobility(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.m = booted_machine(mem="32M")
        self.snap = self.m.snapshot()
        self.m.drain_all_pages()
        self.held: dict[int, int] = {}  # va -> order

    def _types(self) -> bytes:
        return bytes(b & 7 for b in self.m.pageblocks())

    @rule(mt=st.sampled_from([UNMOVABLE, MOVABLE, RECLAIMABLE]),
          order=st.sampled_from([0, 0, 0, 1, 2, 3, 4, 5, 9]))
    def alloc(self, mt: int, order: int) -> None:
        before = self._types()
        zones = {z.name: z for z in self.m.zones()}
        va = self.m.alloc_pages(f"{GFP_FOR[mt]} | __GFP_NOWARN | __GFP_NORETRY", order)
        after = self._types()
        changed = [i for i in range(len(after)) if after[i] != before[i]]
        # a steal gives pageblocks to the type that asked, nothing else changes them here
        assert all(after[i] == mt for i in changed), (mt, order, changed)
        if order and va:
            name = "DMA" if (self.m.translate(va) >> 12) < 4096 else "DMA32"
            z = zones[name]
            own = mm.MIGRATE_TYPES[mt]
            fell_back = self.m.zones()[z.index].stats["fallback"] > z.stats["fallback"]
            if fell_back:  # only when its own lists had no block big enough
                assert not any(z.free_by_type[own][o] for o in range(order, 11))
        if va:
            self.held[va] = order

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def free(self, data: st.DataObject) -> None:
        va = data.draw(st.sampled_from(sorted(self.held)))
        before = self._types()
        self.m.free_pages(va, self.held.pop(va))
        assert self._types() == before  # freeing never changes a pageblock's type

    @rule()
    def drain(self) -> None:
        self.m.drain_all_pages()

    @invariant()
    def census(self) -> None:
        assert self.m.validate_page_alloc() == []
        # /proc/pagetypeinfo's free counts are the lists' (walked) counts
        zones = [z for z in self.m.zones() if z.populated]
        text = self.m.pagetypeinfo().splitlines()
        rows = [ln for ln in text if ", type " in ln]
        want = [f"{z.name} {t} " + " ".join(map(str, z.free_by_type[t]))
                for z in zones for t in mm.MIGRATE_TYPES]
        got = [" ".join(ln.replace(",", "").split()[3:4] + ln.split("type")[1].split())
               for ln in rows]
        assert got == want

    def teardown(self) -> None:
        for va, order in list(self.held.items()):
            self.m.free_pages(va, order)
        self.m.drain_all_pages()
        assert self.m.validate_page_alloc() == []
        self.m.restore(self.snap)


TestMobility = pytest.mark.slow(Mobility.TestCase)
TestMobility.settings = settings(max_examples=8, stateful_step_count=25, deadline=None,
                                 suppress_health_check=list(HealthCheck))
