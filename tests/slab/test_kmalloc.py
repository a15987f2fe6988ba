"""kmalloc size classes, large allocations, the helpers, and the slab views."""

from __future__ import annotations

import pytest

from emu import GuestOops, Machine

ZERO_SIZE_PTR = 16
CLASSES = [(1, 8), (8, 8), (9, 16), (17, 32), (33, 64), (64, 64), (65, 96), (96, 96), (97, 128),
           (128, 128), (129, 192), (192, 192), (193, 256), (257, 512), (513, 1024),
           (1025, 2048), (2049, 4096), (4097, 8192), (8192, 8192)]


def clean(m: Machine) -> None:
    assert m.validate_slab() == []


@pytest.mark.parametrize("size,bucket", CLASSES)
def test_size_classes(machine: Machine, size: int, bucket: int) -> None:
    p = machine.kmalloc(size)
    assert machine.ksize(p) == bucket
    name = f"kmalloc-{bucket // 1024}k" if bucket >= 1024 else f"kmalloc-{bucket}"
    assert machine.kmem_cache_of(p) == name
    assert machine.kmalloc_size_roundup(size) == bucket
    machine.kfree(p)


def test_zero_size_and_null(machine: Machine) -> None:
    assert machine.kmalloc(0) == ZERO_SIZE_PTR
    n = len(machine.events)
    machine.kfree(0)
    machine.kfree(ZERO_SIZE_PTR)
    assert len(machine.events) == n
    assert machine.kmalloc_size_roundup(0) == 0


def test_dma_and_reclaimable_caches(machine: Machine) -> None:
    d = machine.kmalloc(100, "GFP_KERNEL | __GFP_DMA")
    assert machine.kmem_cache_of(d) == "dma-kmalloc-128"
    assert machine.translate(d) < 16 << 20
    r = machine.kmalloc(3000, "GFP_KERNEL | __GFP_RECLAIMABLE")
    assert machine.kmem_cache_of(r) == "kmalloc-rcl-4k"
    machine.kfree(d)
    machine.kfree(r)
    clean(machine)


def test_large_kmalloc_uses_compound_pages(machine: Machine) -> None:
    p = machine.kmalloc(9000)
    assert p % 4096 == 0 and machine.ksize(p) == 16384
    assert machine.kmem_cache_of(p) is None
    pages = machine.pages(machine.virt_to_pfn(p), 4)
    assert pages[0].has("head") and pages[3].has("tail")
    machine.kfree(p)
    big = machine.kmalloc(4 << 20)
    assert big and machine.ksize(big) == 4 << 20
    machine.kfree(big)
    assert machine.kmalloc_size_roundup(9000) == 16384
    n = len(machine.events)
    assert machine.kmalloc((4 << 20) + 1) == 0
    assert [e.kind for e in machine.events[n:]] == ["warn"]
    assert machine.kmalloc((4 << 20) + 1, "GFP_KERNEL | __GFP_NOWARN") == 0
    assert len(machine.events) == n + 1
    assert machine.validate_page_alloc() == []


def test_kzalloc_after_dirty(machine: Machine) -> None:
    p = machine.kmalloc(200)
    machine.write_virt(p, b"\xee" * 256)
    machine.kfree(p)
    q = machine.kzalloc(200)
    assert q == p  # LIFO: the same object comes back
    assert machine.read_virt(q, 256) == bytes(256)


def test_kcalloc_overflow(machine: Machine) -> None:
    assert machine.kcalloc(1 << 62, 8) == 0
    p = machine.kcalloc(10, 8)
    assert machine.read_virt(p, 80) == bytes(80) and machine.ksize(p) == 96
    machine.kfree(p)


def test_krealloc(machine: Machine) -> None:
    p = machine.kmalloc(40)
    machine.write_virt(p, bytes(range(40)))
    assert machine.krealloc(p, 60) == p  # kmalloc-64 is big enough: in place
    q = machine.krealloc(p, 100, "GFP_KERNEL | __GFP_ZERO")
    assert q != p and machine.ksize(q) == 128
    assert machine.read_virt(q, 40) == bytes(range(40))
    assert machine.read_virt(q + 64, 64) == bytes(64)  # the grown part is zero
    assert machine.krealloc(q, 0) == ZERO_SIZE_PTR
    assert machine.find_object(q).allocated is False
    r = machine.krealloc(0, 30)
    assert machine.ksize(r) == 32
    machine.kfree(r)
    clean(machine)


def test_kfree_sensitive_zeroes(machine: Machine) -> None:
    p = machine.kmalloc(64)
    machine.write_virt(p, b"secret!!" * 8)
    machine.kfree_sensitive(p)
    data = machine.read_virt(p, 64)
    assert b"secret" not in data


def test_freelist_is_hardened(machine: Machine) -> None:
    a = machine.kmalloc(64)
    b = machine.kmalloc(64)
    machine.kfree(a)
    machine.kfree(b)  # freelist: b -> a
    cache = next(c for c in machine.caches() if c.name == "kmalloc-64")
    word = machine.read_u64(b + cache.offset)
    assert word != a  # not stored in the clear
    from emu.kernel.slab import decode_freepointer
    assert decode_freepointer(cache, word, b + cache.offset) == a


def test_naive_double_free_is_a_bug(machine: Machine) -> None:
    p = machine.kmalloc(64)
    machine.kfree(p)
    with pytest.raises(GuestOops) as ei:
        machine.kfree(p)
    assert ei.value.vector == 6 and "kernel BUG at kernel/slab/slub.c:" in ei.value.console


def test_slabinfo_matches_the_slabs(machine: Machine) -> None:
    ptrs = [machine.kmalloc(64) for _ in range(100)]
    info = machine.slabinfo().splitlines()
    assert info[0] == "slabinfo - version: 2.1"
    assert info[1].startswith("# name            <active_objs> <num_objs> <objsize>")
    row = next(line for line in info if line.startswith("kmalloc-64 "))
    fields = row.split()
    cache = next(c for c in machine.caches() if c.name == "kmalloc-64")
    slabs = [s for s in machine.slabs() if s.cache.name == "kmalloc-64"]
    assert int(fields[2]) == len(slabs) * cache.objects == cache.total_objects
    assert int(fields[3]) == 64 and int(fields[4]) == 64 and int(fields[5]) == 1
    live = sum(len(s.live) for s in slabs)
    assert live >= 100
    assert machine.live_objects("kmalloc-64") == sorted(o for s in slabs for o in s.live)
    assert set(ptrs) <= set(machine.live_objects("kmalloc-64"))
    for p in ptrs:
        machine.kfree(p)
    clean(machine)
    assert "kmalloc-64" in machine.slabtop()


def test_empty_slabs_go_back_past_min_partial(machine: Machine) -> None:
    ptrs = [machine.kmalloc(2048) for _ in range(200)]
    cache = next(c for c in machine.caches() if c.name == "kmalloc-2k")
    # one CPU: min_objects 8, so Linux's calculation picks order 2 (8 x 2 KiB, no waste)
    assert (cache.order, cache.objects) == (2, 8) and cache.nr_slabs >= 25
    free_before = machine.zones()[1].free
    for p in ptrs:
        machine.kfree(p)
    cache = next(c for c in machine.caches() if c.name == "kmalloc-2k")
    assert cache.nr_partial <= cache.min_partial + 1
    machine.kmem_cache_shrink("kmalloc-2k")
    cache = next(c for c in machine.caches() if c.name == "kmalloc-2k")
    assert cache.nr_slabs == 0
    machine.drain_all_pages()
    assert machine.zones()[1].free > free_before
    clean(machine)
    assert machine.validate_page_alloc() == []


def test_ksize_of_a_page_that_is_no_kmalloc_object_warns_and_is_0(machine: Machine) -> None:
    """Linux's __ksize(): a page that is not a slab is a kmalloc object only as a large
    kmalloc's block (more than KMALLOC_MAX_CACHE_SIZE) at its start; otherwise WARN and
    0 (it used to answer 4096 for any direct-map page)."""
    page = machine.alloc_pages("GFP_KERNEL", 0)
    pair = machine.alloc_pages("GFP_KERNEL | __GFP_COMP", 1)  # 8 KiB: a kmalloc-8k size
    big = machine.kmalloc(16384)
    for addr, want in ((page, 0), (page + 100, 0), (pair, 0), (big + 4096, 0),
                       (big + 8, 0), (big, 16384)):
        n = len(machine.events)
        assert machine.ksize(addr) == want, hex(addr)
        kinds = [e.kind for e in machine.events[n:]]
        assert kinds == ([] if want else ["warn"]), hex(addr)
        assert want or "kernel/kmalloc.c" in machine.events[n].message
    assert machine.ksize(machine.kmalloc(100)) == 128  # slab objects as before
    machine.kfree(big)
    machine.free_pages(page, 0)
    machine.free_pages(pair, 1)
    clean(machine)
