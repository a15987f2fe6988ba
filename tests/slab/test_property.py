"""Random kmalloc/kfree/krealloc/kmem_cache sequences (hypothesis), checked after every step."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from emu.frontend.pytest_plugin import booted_machine

SIZES = st.one_of(st.integers(1, 256), st.sampled_from([512, 1000, 2048, 4096, 8192, 9000]))


class SlabMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.m = booted_machine(mem="32M")
        self.cache = self.m.kmem_cache_create("prop_cache", 72, 0, "SLAB_HWCACHE_ALIGN")
        self.live: dict[int, tuple[int, int | None]] = {}  # addr -> (size, cache or None)
        self.large: set[int] = set()  # kmalloc'ed from the page allocator (> 8 KiB)

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
        if size > 8192:
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
        if (q == p and was_large) or (q != p and size > 8192):
            self.large.add(q)  # in place keeps the old kind of memory

    @invariant()
    def consistent(self) -> None:
        assert self.m.validate_slab() == []
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
