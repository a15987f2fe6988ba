"""Random kmalloc/kfree/krealloc/kmem_cache sequences (hypothesis), checked after every step,
on SLUB, then the same machine on SLAB and SLOB (slab=)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from emu.frontend.pytest_plugin import booted_machine
from emu.kernel import slab_slab

SIZES = st.one_of(st.integers(1, 256), st.sampled_from([512, 1000, 2048, 4096, 8192, 9000]))


class SlabMachine(RuleBasedStateMachine):
    #: the slab allocator booted; where kmalloc switches to whole pages (SLUB: above
    #: 8 KiB; SLAB: never, up to 4 MiB; SLOB: from PAGE_SIZE - 8)
    allocator = "slub"
    large_from = 8193

    def __init__(self) -> None:
        super().__init__()
        self.m = booted_machine(mem="32M", **self._slab_kw())
        self.cache = self.m.kmem_cache_create("prop_cache", 72, 0, "SLAB_HWCACHE_ALIGN")
        self.live: dict[int, tuple[int, int | None]] = {}  # addr -> (size, cache or None)
        self.large: set[int] = set()  # kmalloc'ed from the page allocator (> 8 KiB)

    def _slab_kw(self) -> dict[str, str]:
        return {} if self.allocator == "slub" else {"slab": self.allocator}

    def _check_new(self, addr: int, size: int) -> None:
        assert addr and addr != 16
        for other, (osz, _) in self.live.items():
            assert addr + size <= other or other + osz <= addr, "objects overlap"
        self.m.write_virt(addr, bytes([len(self.live) & 0xFF]) * min(size, 64))

    @rule(size=SIZES)
    def kmalloc(self, size: int) -> None:
        p = self.m.kmalloc(size)
        self._check_new(p, size)
        self.live[p] = (size, None)
        if size >= self.large_from:
            self.large.add(p)

    @rule()
    def cache_alloc(self) -> None:
        p = self.m.kmem_cache_alloc(self.cache)
        self._check_new(p, 72)
        self.live[p] = (72, self.cache)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free(self, data: st.DataObject) -> None:
        p = data.draw(st.sampled_from(sorted(self.live)))
        size, cache = self.live.pop(p)
        self.large.discard(p)
        if cache:
            self.m.kmem_cache_free(cache, p)
        else:
            self.m.kfree(p)

    @precondition(lambda self: any(c is None for _, c in self.live.values()))
    @rule(data=st.data(), size=SIZES)
    def krealloc(self, data: st.DataObject, size: int) -> None:
        p = data.draw(st.sampled_from(sorted(a for a, (_, c) in self.live.items() if c is None)))
        old, _ = self.live.pop(p)
        head = self.m.read_virt(p, min(old, size, 64))
        q = self.m.krealloc(p, size)
        assert self.m.read_virt(q, len(head)) == head  # content kept
        was_large = p in self.large
        self.large.discard(p)
        self._check_new(q, size)
        self.live[q] = (size, None)
        if (q == p and was_large) or (q != p and size >= self.large_from):
            self.large.add(q)  # in place keeps the old kind of memory

    @invariant()
    def consistent(self) -> None:
        assert self.m.validate_slab() == []
        if self.allocator == "slab":  # every object a caller holds, from one read of the caches
            held = {o for c in self.m.caches() for o in slab_slab.live_objects(c)}
            for p in self.live:
                assert (p in held) != (p in self.large), f"{p:#x} is live but not held"
            return
        if self.allocator == "slob":
            for p, (size, _) in self.live.items():
                if p in self.large:
                    assert p % 4096 == 0 and self.m.slab_object_allocated(p) is None
                else:
                    assert self.m.slab_object_allocated(p), f"{p:#x} is live but free"
                    assert self.m.slab_object_allocated(p + size - 1)
            return
        live = {o for s in self.m.slabs() for o in s.live}
        for p in self.live:
            if p in self.large:  # large kmalloc: a compound page, not a slab object
                assert p not in live and p % 4096 == 0
            else:  # slab-backed: must be an allocated object of some slab
                assert p in live, f"{p:#x} is live but not an allocated slab object"

    def teardown(self) -> None:
        for p, (_, cache) in self.live.items():
            if cache:
                self.m.kmem_cache_free(cache, p)
            else:
                self.m.kfree(p)
        self.m.kmem_cache_destroy(self.cache)
        assert self.m.validate_slab() == []


TestSlab = pytest.mark.slow(SlabMachine.TestCase)
TestSlab.settings = settings(max_examples=10, stateful_step_count=25, deadline=None,
                             suppress_health_check=list(HealthCheck))


class PoisonedSlabMachine(SlabMachine):
    """The same sequences with slab_debug=P: every free object carries the poison."""

    def __init__(self) -> None:
        RuleBasedStateMachine.__init__(self)
        self.m = booted_machine(mem="32M", cmdline="slab_debug=P")
        self.cache = self.m.kmem_cache_create("prop_cache", 72, 0, "SLAB_HWCACHE_ALIGN")
        self.live = {}
        self.large = set()

    @invariant()
    def freed_objects_are_poisoned(self) -> None:
        for s in self.m.slabs():
            if s.cache.name != "prop_cache":
                continue
            size = s.cache.object_size
            for obj in s.free:
                assert self.m.read_virt(obj, size) == b"\x6b" * (size - 1) + b"\xa5"


TestPoisonedSlab = pytest.mark.slow(PoisonedSlabMachine.TestCase)
TestPoisonedSlab.settings = settings(max_examples=6, stateful_step_count=20, deadline=None,
                                     suppress_health_check=list(HealthCheck))


class SlabAllocatorMachine(SlabMachine):
    """SLAB: kmalloc-32 .. kmalloc-4M, magazines in between."""

    allocator = "slab"
    large_from = 1 << 30


class SlobMachine(SlabMachine):
    """SLOB: size-prefixed blocks in shared pages, whole pages from PAGE_SIZE - 8."""

    allocator = "slob"
    large_from = 4096 - 8


TestSlabAllocator = SlabAllocatorMachine.TestCase
TestSlabAllocator.settings = settings(max_examples=8, stateful_step_count=25, deadline=None,
                                      suppress_health_check=list(HealthCheck))
TestSlob = SlobMachine.TestCase
TestSlob.settings = settings(max_examples=8, stateful_step_count=25, deadline=None,
                             suppress_health_check=list(HealthCheck))
