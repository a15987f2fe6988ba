"""Random alloc/free sequences (hypothesis): conservation and full coalescing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from emu.frontend.pytest_plugin import booted_machine

GFPS = ["GFP_KERNEL", "GFP_ATOMIC", "GFP_KERNEL | __GFP_ZERO", "GFP_NOWAIT",
        "GFP_KERNEL | __GFP_DMA", "GFP_KERNEL | __GFP_COMP"]
PAGE_OFFSET = 0xFFFF888000000000


class PageAllocator(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.m = booted_machine(mem="32M")
        self.m.drain_all_pages()
        self.boot_buddyinfo = self.m.buddyinfo()
        self.held: dict[int, int] = {}  # va -> order
        self.bad_frees = 0

    @rule(order=st.integers(0, 5), gfp=st.sampled_from(GFPS))
    def alloc(self, order: int, gfp: str) -> None:
        va = self.m.alloc_pages(f"{gfp} | __GFP_NOWARN", order)
        if not va:
            return
        pfn = (va - PAGE_OFFSET) >> 12
        for other, o in self.held.items():
            opfn = (other - PAGE_OFFSET) >> 12
            assert pfn + (1 << order) <= opfn or opfn + (1 << o) <= pfn, "page handed out twice"
        if "ZERO" in gfp:
            assert self.m.read_virt(va, 4096 << order) == bytes(4096 << order)
        self.m.write_virt(va, b"\x5a" * 64)
        self.held[va] = order

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def free(self, data: st.DataObject) -> None:
        va = data.draw(st.sampled_from(sorted(self.held)))
        self.m.free_pages(va, self.held.pop(va))

    @precondition(lambda self: self.held)
    @rule(data=st.data(), kind=st.sampled_from(["double", "order", "unaligned"]))
    def bad_free(self, data: st.DataObject, kind: str) -> None:
        va = data.draw(st.sampled_from(sorted(self.held)))
        order = self.held[va]
        n = len(self.m.events)
        if kind == "double":
            self.m.free_pages(va, order)
            del self.held[va]
            self.m.free_pages(va, order)
        elif kind == "order":
            self.m.free_pages(va, order + 1 if order < 10 else order - 1)
        else:
            self.m.free_pages(va + 64, order)
        assert [e.kind for e in self.m.events[n:]] == ["bad_page"]
        self.bad_frees += 1

    @invariant()
    def conserved(self) -> None:
        problems = self.m.validate_page_alloc()
        assert problems == [], problems

    def teardown(self) -> None:
        for va, order in list(self.held.items()):
            self.m.free_pages(va, order)
        self.m.drain_all_pages()
        assert self.m.buddyinfo() == self.boot_buddyinfo  # everything coalesced again


TestPageAllocator = pytest.mark.slow(PageAllocator.TestCase)
TestPageAllocator.settings = settings(max_examples=12, stateful_step_count=25, deadline=None,
                                      suppress_health_check=list(HealthCheck))
