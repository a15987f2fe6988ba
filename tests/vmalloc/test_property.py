"""vmalloc/vfree/vmap mixed with page-allocator traffic (hypothesis): after every step
the page tables match the areas and the page allocator is consistent; at the end,
after freeing everything and purging, page-table and free-page counts are back."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from emu.frontend.pytest_plugin import booted_machine


class VmallocMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.m = booted_machine(mem="32M")
        self.m.call("kmem_cache_shrink_all")
        # page-table pages vmalloc populates stay; every other page comes back
        self.boot = int(self.m.var("pgtable_pages")) + sum(z.free for z in self.m.zones())
        self.areas: dict[int, int] = {}  # addr -> pages
        self.pages: list[tuple[int, int]] = []  # (va, order) from the page allocator

    @rule(n=st.integers(1, 40), zero=st.booleans())
    def vmalloc(self, n: int, zero: bool) -> None:
        v = self.m.vmalloc(n * 4096, "GFP_KERNEL | __GFP_ZERO" if zero else "GFP_KERNEL")
        if v:
            if zero:
                assert self.m.read_virt(v, n * 4096) == bytes(n * 4096)
            self.m.write_virt(v + n * 4096 - 8, b"tail!!!!")
            self.areas[v] = n

    @precondition(lambda self: self.areas)
    @rule(data=st.data())
    def vfree(self, data: st.DataObject) -> None:
        v = data.draw(st.sampled_from(sorted(self.areas)))
        del self.areas[v]
        self.m.vfree(v)

    @rule(order=st.integers(0, 4))
    def page_traffic(self, order: int) -> None:
        va = self.m.alloc_pages("GFP_KERNEL | __GFP_NOWARN", order)
        if va:
            self.pages.append((va, order))

    @precondition(lambda self: self.pages)
    @rule()
    def free_page(self) -> None:
        va, order = self.pages.pop(0)
        self.m.free_pages(va, order)

    @rule()
    def purge(self) -> None:
        self.m.purge_vmap()

    @invariant()
    def consistent(self) -> None:
        assert self.m.validate_vmalloc() == []
        for v, n in self.areas.items():
            assert self.m.read_virt(v + n * 4096 - 8, 8) == b"tail!!!!"

    def teardown(self) -> None:
        for v in list(self.areas):
            self.m.vfree(v)
        for va, order in self.pages:
            self.m.free_pages(va, order)
        self.m.purge_vmap()
        self.m.call("kmem_cache_shrink_all")
        after = int(self.m.var("pgtable_pages")) + sum(z.free for z in self.m.zones())
        assert after == self.boot
        assert self.m.validate_page_alloc() == []


TestVmalloc = VmallocMachine.TestCase
TestVmalloc.settings = settings(max_examples=8, stateful_step_count=25, deadline=None,
                                suppress_health_check=list(HealthCheck))
