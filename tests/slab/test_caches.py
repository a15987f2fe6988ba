"""kmem_cache_create and friends: alignment, constructors, bulk, destroy, shrinker."""

from __future__ import annotations

import pytest

from emu import Machine


def test_hwcache_align_rule(machine: Machine) -> None:
    # Linux: cache-line alignment, halved while the object fits in half of it
    for size, want in [(20, 32), (40, 64), (12, 16), (100, 64)]:
        c = machine.kmem_cache_create(f"align{size}", size, 0, "SLAB_HWCACHE_ALIGN")
        view = next(v for v in machine.caches() if v.address == c)
        assert view.align == want and view.size % want == 0, size
        machine.kmem_cache_destroy(c)


def test_create_alloc_free_destroy(machine: Machine) -> None:
    c = machine.kmem_cache_create("widgets", 200)
    objs = [machine.kmem_cache_alloc(c) for _ in range(50)]
    assert len(set(objs)) == 50
    assert all(machine.kmem_cache_of(o) == "widgets" for o in objs)
    for o in objs:
        machine.kmem_cache_free(c, o)
    n = len(machine.events)
    machine.kmem_cache_destroy(c)
    assert len(machine.events) == n
    assert "widgets" not in [v.name for v in machine.caches()]
    assert machine.validate_slab() == []


def test_destroy_with_live_objects_warns_and_keeps_the_cache(machine: Machine) -> None:
    c = machine.kmem_cache_create("leaky", 64)
    o = machine.kmem_cache_alloc(c)
    n = len(machine.events)
    machine.kmem_cache_destroy(c)
    # the leaked objects are listed (a slab report), then Linux's WARN
    assert [e.kind for e in machine.events[n:]] == ["slab", "warn"]
    assert "Slab cache still has objects" in machine.console
    assert "leaky" in [v.name for v in machine.caches()]
    machine.kmem_cache_free(c, o)
    machine.kmem_cache_destroy(c)
    assert "leaky" not in [v.name for v in machine.caches()]


def test_free_into_the_wrong_cache_is_refused(machine: Machine) -> None:
    a = machine.kmem_cache_create("cache_a", 64)
    b = machine.kmem_cache_create("cache_b", 64)
    o = machine.kmem_cache_alloc(a)
    n = len(machine.events)
    machine.kmem_cache_free(b, o)
    assert [e.kind for e in machine.events[n:]] == ["warn"]
    assert machine.find_object(o).allocated
    machine.kmem_cache_free(a, o)
    assert machine.validate_slab() == []


def test_constructor_runs_once_per_object_at_slab_creation(machine: Machine) -> None:
    c = machine.call("kmemu_test_ctor_cache", 48)
    view = next(v for v in machine.caches() if v.address == c)
    calls = int(machine.var("slab_ctor_calls"))
    o1 = machine.kmem_cache_alloc(c)
    assert int(machine.var("slab_ctor_calls")) == calls + view.objects  # one slab's worth
    assert machine.read_virt(o1, 16) == b"\xc7" * 16
    machine.kmem_cache_free(c, o1)
    o2 = machine.kmem_cache_alloc(c)
    assert int(machine.var("slab_ctor_calls")) == calls + view.objects  # not again
    assert machine.read_virt(o2, 16) == b"\xc7" * 16  # the free pointer lives after the object
    machine.kmem_cache_free(c, o2)


def test_bulk(machine: Machine) -> None:
    c = machine.kmem_cache_create("bulky", 32)
    arr = machine.kmalloc(8 * 100)
    assert machine.call("kmem_cache_alloc_bulk", c, 0xCC0, 100, arr) == 100
    objs = [machine.read_u64(arr + 8 * i) for i in range(100)]
    assert len(set(objs)) == 100 and all(machine.kmem_cache_of(o) == "bulky" for o in objs)
    machine.call("kmem_cache_free_bulk", c, 100, arr)
    assert not machine.live_objects("bulky")
    machine.kfree(arr)


def test_bad_cache_names(machine: Machine) -> None:
    with pytest.raises(ValueError):
        machine.kmem_cache_create("x" * 40, 64)
    with pytest.raises(ValueError, match="unknown slab flag"):
        machine.kmem_cache_create("ok", 64, 0, "SLAB_BOGUS")
    assert machine.kmem_cache_create("toolarge", 1 << 20) == 0


def test_slab_shrinker_gives_pages_back_under_pressure(machine: Machine) -> None:
    # Empty slabs up to min_partial stay on the partial list after their objects go
    ptrs = [machine.kmalloc(1024) for _ in range(64)]
    for p in ptrs:
        machine.kfree(p)
    cache = next(c for c in machine.caches() if c.name == "kmalloc-1k")
    assert cache.nr_slabs > 0  # empty slabs still held
    # take every free page without reclaim, then ask for one more page
    machine.drain_all_pages()
    for zone in (1, 0):
        for order in range(10, -1, -1):
            machine.call("kmemu_test_hoard_zone", zone, 1 << 40, order)
    # direct reclaim calls the slab shrinker; __GFP_MEMALLOC may then dip below min
    va = machine.alloc_pages("GFP_KERNEL | __GFP_MEMALLOC", 0)
    assert va
    cache = next(c for c in machine.caches() if c.name == "kmalloc-1k")
    assert cache.nr_slabs == 0
    assert machine.validate_slab() == []
