"""SLOB (slab=slob) as Linux's mm/slob.c had it: three lists of partly free pages,
first fit inside a page in 2-byte units, kmalloc's size prefix, whole pages for big
requests, empty pages straight back to the page allocator."""

from __future__ import annotations

import pytest

from emu import Machine
from emu.kernel import slab_slob

pytestmark = pytest.mark.kmemu(slab="slob")


def page_of(m: Machine, addr: int) -> slab_slob.SlobPage:
    pfn = m.virt_to_pfn(addr)
    return next(p for p in m.slabs() if p.pfn == pfn)


def test_kmalloc_prefixes_the_size_and_aligns_powers_of_two(machine: Machine) -> None:
    p = machine.kmalloc(100)
    assert machine.read_u64(p - 8) == 100  # the minalign word before the object
    assert machine.ksize(p) == 100
    q = machine.kmalloc(64)
    assert q % 64 == 0 and machine.read_u64(q - 8) == 64  # power of two: natural alignment
    r = machine.kmalloc(3)
    assert machine.ksize(r) == 4 and machine.read_u64(r - 8) == 3
    for x in (p, q, r):
        assert machine.slab_object_allocated(x) and machine.slab_object_allocated(x - 8)
        machine.kfree(x)
    assert machine.validate_slab() == []


def test_first_fit_reuses_the_first_hole(machine: Machine) -> None:
    a, b, c, d = (machine.kmalloc(40) for _ in range(4))
    assert len({machine.virt_to_pfn(x) for x in (a, b, c, d)}) == 1
    machine.kfree(b)
    machine.kfree(d)
    sp = page_of(machine, a)
    assert (b - 8, 24) in sp.blocks  # b's 48 bytes (prefix included) as 24 units
    # a smaller request fits the first hole: b's block, split (24 bytes: not a power of
    # two, so 8-aligned like b, whatever the page's layout before it)
    e = machine.kmalloc(24)
    assert e == b
    sp = page_of(machine, a)
    assert (b - 8 + 32, 8) in sp.blocks  # what is left of the hole, in units
    for x in (a, c, e):
        machine.kfree(x)
    assert machine.validate_slab() == []


def test_freed_neighbours_merge(machine: Machine) -> None:
    keep = machine.kmalloc(30)  # keeps the page SLOB's
    xs = [machine.kmalloc(30) for _ in range(3)]
    guard = machine.kmalloc(30)  # and the blocks after xs allocated
    assert [x - keep for x in (*xs, guard)] == [40, 80, 120, 160]  # 38 bytes, 8-aligned
    units_before = page_of(machine, keep).units
    machine.kfree(xs[0])
    machine.kfree(xs[2])
    assert len(page_of(machine, keep).blocks) >= 2
    machine.kfree(xs[1])  # joins both: one block where three were
    sp = page_of(machine, keep)
    assert sp.units == units_before + 3 * 19
    # one block: the three, and the 2-byte alignment gaps around them (free already)
    assert (xs[0] - 10, 1 + 3 * (19 + 1)) in sp.blocks
    machine.kfree(keep)
    machine.kfree(guard)
    assert machine.validate_slab() == []


def test_lists_by_size_and_big_requests_take_pages(machine: Machine) -> None:
    small, medium, large = machine.kmalloc(100), machine.kmalloc(600), machine.kmalloc(2000)
    assert page_of(machine, small).list in ("small", None)
    assert page_of(machine, medium).list in ("medium", None)
    assert page_of(machine, large).list in ("large", None)
    info = machine.slob_info()
    assert info["small_pages"] >= 1 and info["medium_pages"] >= 1
    big = machine.kmalloc(4090)  # PAGE_SIZE - 8 and up: whole pages, no prefix
    assert big % 4096 == 0 and machine.ksize(big) == 4096
    assert machine.slab_object_allocated(big) is None  # not a SLOB page
    assert machine.read_u64(machine.symbol("slob_big_pages")) >= 1
    huge = machine.kmalloc(20000)
    assert huge % 4096 == 0 and machine.ksize(huge) == 32768
    for x in (small, medium, large, big, huge):
        machine.kfree(x)
    assert machine.validate_slab() == [] and machine.validate_page_alloc() == []


def test_an_emptied_page_goes_straight_back(machine: Machine) -> None:
    before = machine.read_u64(machine.symbol("slob_pages"))
    xs = [machine.kmalloc(1500) for _ in range(4)]  # large list: two per page
    grown = machine.read_u64(machine.symbol("slob_pages"))
    assert grown > before
    pfns = {machine.virt_to_pfn(x) for x in xs}
    for x in xs:
        machine.kfree(x)
    assert machine.read_u64(machine.symbol("slob_pages")) <= before + 1
    gone = [pfn for pfn in pfns if not machine.pages(pfn, 1)[0].has("slab")]
    assert gone  # no longer SLOB's: back with the page allocator
    assert machine.validate_slab() == []


def test_caches_share_pages_and_construct_every_time(machine: Machine) -> None:
    c = machine.kmem_cache_create("shared", 50)
    o = machine.kmem_cache_alloc(c)
    k = machine.kmalloc(50)
    # no per-cache slabs: both come from the small list, possibly the same page
    assert machine.slab_page_owners()[machine.virt_to_pfn(o)][0].startswith("slob-")
    v = next(x for x in machine.caches() if x.name == "shared")
    assert (v.object_size, v.size, v.allocated) == (50, 50, 1)
    assert machine.cache_info("shared")["allocated"] == 1
    machine.kmem_cache_free(c, o)
    machine.kfree(k)
    machine.kmem_cache_destroy(c)
    assert machine.validate_slab() == []


def test_validate_sees_a_broken_chain(machine: Machine) -> None:
    p = machine.kmalloc(100)
    q = machine.kmalloc(100)
    machine.kfree(p)  # a free block at p - 8 holding (units, next offset)
    saved = machine.read_virt(p - 8, 2)
    machine.write_virt(p - 8, (1000).to_bytes(2, "little", signed=True))
    problems = machine.validate_slab()
    assert problems and "slob page pfn" in problems[0]
    machine.write_virt(p - 8, saved)
    assert machine.validate_slab() == []
    machine.kfree(q)
