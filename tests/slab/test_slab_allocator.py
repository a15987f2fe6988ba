"""SLAB (slab=slab) as Linux's mm/slab.c had it: magazines, the shared array, node
lists, colouring, where the index array lives, reaping, tunables, slabinfo, debug."""

from __future__ import annotations

import pytest

from emu import BadArgument, Machine
from emu.kernel import slab_slab

pytestmark = pytest.mark.kmemu(slab="slab")


def view(m: Machine, name: str) -> slab_slab.SlabCacheView:
    return next(c for c in m.caches() if c.name == name)


def test_kmalloc_caches_and_tunables_as_linux(machine: Machine) -> None:
    names = [c.name for c in machine.caches()]
    assert "kmalloc-32" in names and "kmalloc-16" not in names and "kmalloc-8" not in names
    assert {"kmalloc-96", "kmalloc-192", "kmalloc-4M", "dma-kmalloc-1M",
            "kmalloc-rcl-2k"} <= set(names)
    # enable_cpucache: limit by size, batchcount (limit + 1) / 2, shared 8 up to a page
    for name, limit, shared in (("kmalloc-64", 120, 8), ("kmalloc-512", 54, 8),
                                ("kmalloc-2k", 24, 8), ("kmalloc-8k", 8, 0),
                                ("kmalloc-256k", 1, 0)):
        c = view(machine, name)
        assert (c.limit, c.batchcount, c.shared) == (limit, (limit + 1) // 2, shared), name
    # calculate_slab_order with slab_max_order 1 (more than 32 MiB of RAM)
    c96 = view(machine, "kmalloc-96")
    assert (c96.order, c96.objects, c96.layout) == (0, 42, "objfreelist")
    assert (c96.colour, c96.colour_off) == (1, 64)  # 4096 - 42 * 96 = 64 bytes left
    assert view(machine, "kmalloc-128").align == 128  # power-of-two kmalloc: natural


def test_magazine_lifo_hits_and_flush_to_the_shared_array(machine: Machine) -> None:
    c = machine.kmem_cache_create("mag", 64)
    objs = [machine.kmem_cache_alloc(c) for _ in range(3)]
    v = view(machine, "mag")
    assert v.stats["allocmiss"] == 1 and v.stats["grown"] == 1  # one refill, one slab
    # a refill from an untouched array takes at most BATCHREFILL_LIMIT (16)
    assert len(v.cpu_entries) == 16 - 3
    machine.kmem_cache_free(c, objs[1])
    assert view(machine, "mag").cpu_entries[-1] == objs[1]  # pushed on top
    assert machine.kmem_cache_alloc(c) == objs[1]  # and popped first (LIFO)
    # fill the CPU array to its limit: the next free flushes batchcount to shared
    many = [machine.kmem_cache_alloc(c) for _ in range(200)]
    for o in many:
        machine.kmem_cache_free(c, o)
    v = view(machine, "mag")
    assert v.limit == 120 and len(v.cpu_entries) <= 120
    assert v.stats["freemiss"] >= 1 and len(v.shared_entries) > 0
    assert len(v.shared_entries) <= v.shared_limit == 8 * v.batchcount
    assert machine.validate_slab() == []
    # an empty CPU array refills from the shared array first (no new slab)
    grown = v.stats["grown"]
    machine.slab_tune("mag", 4, 2, 8)  # small arrays: easy to empty
    v = view(machine, "mag")
    assert (v.limit, v.batchcount) == (4, 2) and v.cpu_entries == []
    got = [machine.kmem_cache_alloc(c) for _ in range(3)]
    assert view(machine, "mag").stats["grown"] == grown and len(set(got)) == 3
    for o in [*got, *objs]:
        machine.kmem_cache_free(c, o)
    machine.kmem_cache_destroy(c)
    assert "mag" not in [x.name for x in machine.caches()]


def test_slabinfo_prints_tunables_and_slabdata(machine: Machine) -> None:
    ptrs = [machine.kmalloc(64) for _ in range(100)]
    info = machine.slabinfo().splitlines()
    assert info[0] == "slabinfo - version: 2.1"
    assert info[1] == ("# name            <active_objs> <num_objs> <objsize> <objperslab> "
                       "<pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : "
                       "slabdata <active_slabs> <num_slabs> <sharedavail>")
    c = view(machine, "kmalloc-64")
    row = next(line for line in info if line.startswith("kmalloc-64 "))
    assert row == (f"kmalloc-64        {c.active_objs:6d} {c.total_objects:6d}     64   64    1"
                   f" : tunables  120   60    8 : slabdata {c.active_slabs:6d} "
                   f"{c.nr_slabs:6d} {len(c.shared_entries):6d}")
    # objects in the arrays count as active, as Linux's get_slabinfo counts them
    assert c.active_objs == c.total_objects - c.free_objects >= 100
    assert set(ptrs) <= set(slab_slab.live_objects(c)) == set(machine.live_objects("kmalloc-64"))
    for p in ptrs:
        machine.kfree(p)
    assert "kmalloc-64" in machine.slabtop()


def test_colouring_cycles_the_first_object(machine: Machine) -> None:
    c = machine.kmem_cache_create("coloured", 200)  # 20 per page, 96 bytes left: 1 colour
    v = view(machine, "coloured")
    assert (v.objects, v.colour, v.colour_off) == (20, 1, 64)
    # 3000 bytes: order 1 holds 2 and leaves 2192 bytes, 34 colours of 64
    c2 = machine.kmem_cache_create("rainbow", 3000)
    v2 = view(machine, "rainbow")
    assert (v2.order, v2.objects, v2.colour, v2.colour_off) == (1, 2, 34, 64)
    objs = [machine.kmem_cache_alloc(c2) for _ in range(6)]  # three slabs, in order
    v2 = view(machine, "rainbow")
    # Linux steps colour_next before it uses it: the first slab gets colour 1
    assert sorted(s.colour_offset for s in v2.slabs) == [64, 128, 192]
    for s_ in v2.slabs:
        assert {o for o in objs if s_.s_mem <= o < s_.s_mem + 6000} == \
            {s_.s_mem, s_.s_mem + 3000}
    for o in objs:
        machine.kmem_cache_free(c2, o)
    objs = [machine.kmem_cache_alloc(c) for _ in range(60)]  # three slabs of 20
    v = view(machine, "coloured")
    assert sorted(s.colour_offset for s in v.slabs) == [0, 0, 0]  # one colour: always 0
    for o in objs:
        machine.kmem_cache_free(c, o)
    assert machine.validate_slab() == []


def test_index_array_on_slab_off_slab_or_in_an_object(machine: Machine) -> None:
    ctor = machine.call("kmemu_test_ctor_cache", 100)  # constructor: not in an object
    v = next(x for x in machine.caches() if x.address == ctor)
    assert v.layout == "on-slab" and v.objects == 4096 // (104 + 1)
    big = machine.call("kmemu_test_ctor_cache", 1024)  # no room left: off the slab
    vb = next(x for x in machine.caches() if x.address == big)
    assert vb.layout == "off-slab" and vb.objects * vb.size == 4096 << vb.order
    o = machine.kmem_cache_alloc(big)
    slab = next(s for s in view(machine, vb.name).slabs if s.active)
    page = machine.pages(slab.pfn, 1)[0]
    assert machine.kmem_cache_of(page.word2) == "kmalloc-32"  # the index array's home
    machine.kmem_cache_free(big, o)
    assert view(machine, "kmalloc-64").layout == "objfreelist"
    assert machine.validate_slab() == []


def test_reap_drains_untouched_arrays_then_free_slabs(machine: Machine) -> None:
    c = machine.kmem_cache_create("reaped", 512)
    objs = [machine.kmem_cache_alloc(c) for _ in range(40)]
    for o in objs:
        machine.kmem_cache_free(c, o)
    v = view(machine, "reaped")
    before = len(v.cpu_entries)
    assert before and v.cpu_touched
    machine.slab_reap()  # touched since the last tick: only cleared
    assert len(view(machine, "reaped").cpu_entries) == before
    machine.slab_reap()  # untouched: (limit + 4) / 5 objects go back
    v = view(machine, "reaped")
    assert len(v.cpu_entries) == before - (v.limit + 4) // 5
    machine.slab_reap(20)
    v = view(machine, "reaped")
    assert v.cpu_entries == [] and v.shared_entries == []
    assert v.nr_slabs == 0 and v.stats["reaped"] >= 1  # free slabs went back, a fifth a tick
    assert machine.validate_slab() == []
    with pytest.raises(BadArgument, match="ticks must be at least 1"):
        machine.slab_reap(0)


def test_tunables_are_checked(machine: Machine) -> None:
    with pytest.raises(BadArgument, match="batchcount <= limit"):
        machine.slab_tune("kmalloc-64", 4, 8, 0)
    with pytest.raises(BadArgument, match="no slab cache named"):
        machine.slab_tune("nope", 4, 2, 0)
    machine.slab_tune("kmalloc-64", 16, 8, 0)
    c = view(machine, "kmalloc-64")
    assert (c.limit, c.batchcount, c.shared, c.shared_entries) == (16, 8, 0, [])
    assert " : tunables   16    8    0 : " in next(
        line for line in machine.slabinfo().splitlines() if line.startswith("kmalloc-64 "))


def test_find_object_counts_array_objects_as_free(machine: Machine) -> None:
    p = machine.kmalloc(100)
    info = machine.find_object(p)
    assert info.cache == "kmalloc-128" and info.allocated and info.offset == 0
    assert machine.find_object(p + 5).offset == 5
    machine.kfree(p)
    assert machine.find_object(p).allocated is False  # in the CPU array now
    owners = machine.slab_page_owners()
    assert owners[machine.virt_to_pfn(p)][0] == "kmalloc-128"


@pytest.mark.kmemu(slab="slab", slab_debug="ZP")
def test_red_zones_and_poison_as_slab_reported_them(machine: Machine) -> None:
    c = machine.kmem_cache_create("dbg", 24)
    v = view(machine, "dbg")
    assert v.debug == "ZP" and v.obj_offset == 8 and v.size == 8 + 24 + 8
    assert v.limit == 32  # Linux's DEBUG builds cap the arrays
    p = machine.kmem_cache_alloc(c)
    assert machine.read_virt(p, 24) == b"\x5a" * 23 + b"\xa5"  # POISON_INUSE handed out
    assert machine.read_u64(p - 8) == slab_slab.RED_ACTIVE == machine.read_u64(p + 24)
    machine.write_virt(p + 24, b"\0")  # one byte into the right red zone
    n = len(machine.console)
    machine.kmem_cache_free(c, p)
    out = machine.console[n:]
    assert "slab error in cache_free_debugcheck(): cache `dbg': memory outside object " \
           "was overwritten" in out
    assert f"{p - 8:x}: redzone 1:0x{slab_slab.RED_ACTIVE:x}" in out
    assert machine.read_virt(p, 24) == b"\x6b" * 23 + b"\xa5"  # POISON_FREE
    q = machine.kmem_cache_alloc(c)
    machine.kmem_cache_free(c, q)
    n = len(machine.console)
    machine.kmem_cache_free(c, q)  # double free: both red zones say inactive
    assert "double free detected" in machine.console[n:]
    machine.write_virt(q + 3, b"\x00")  # use after free
    n = len(machine.console)
    assert machine.kmem_cache_alloc(c) == q
    assert f"Slab corruption (Not tainted): dbg start={q:x}, len=24" in machine.console[n:]
    assert machine.call("kmem_cache_errors", c) == 3


def test_dma_and_reclaimable_kmalloc_caches(machine: Machine) -> None:
    d = machine.kmalloc(100, "GFP_KERNEL | __GFP_DMA")
    assert machine.kmem_cache_of(d) == "dma-kmalloc-128"
    assert machine.translate(d) < 16 << 20  # ZONE_DMA pages
    r = machine.kmalloc(3000, "GFP_KERNEL | __GFP_RECLAIMABLE")
    assert machine.kmem_cache_of(r) == "kmalloc-rcl-4k"
    big = machine.kmalloc(1 << 20)  # SLAB serves it from kmalloc-1M, not the page allocator
    assert machine.kmem_cache_of(big) == "kmalloc-1M" and machine.ksize(big) == 1 << 20
    for p in (d, r, big):
        machine.kfree(p)
    assert machine.validate_slab() == []


def test_the_reap_timer_fires_in_the_middle_of_a_workload(machine: Machine) -> None:
    c = machine.kmem_cache_create("timed", 512)
    objs = [machine.kmem_cache_alloc(c) for _ in range(40)]
    for o in objs:
        machine.kmem_cache_free(c, o)
    machine.slab_reap(2)  # untouched from here: the next tick drains
    before = len(view(machine, "timed").cpu_entries)
    for at in (5, 37, 90):  # lands inside kmalloc/kfree on another cache
        machine.slab_reap_after(at)
        machine.kfree(machine.kmalloc(100))
    assert int(machine.var("slab_reap_irqs")) == 3
    assert len(view(machine, "timed").cpu_entries) < before
    assert machine.validate_slab() == []
