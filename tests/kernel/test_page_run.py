"""``PageRun``'s column scans and the page census agree with looking at every struct page."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from emu.kernel.mm import (
    MAX_PAGE_ORDER,
    PG,
    STRUCT_PAGE_SIZE,
    PageCensus,
    PageRun,
    page_census,
)

_flags = st.integers(0, 2**64 - 1) | st.sampled_from([0, *PG.values()])


@given(flags=st.lists(_flags, max_size=300), any_of=st.integers(1, 2**64 - 1) |
       st.sampled_from(list(PG.values())), start=st.integers(0, 1 << 20))
def test_indexes_with_finds_exactly_the_pages_with_a_bit(flags: list[int], any_of: int,
                                                         start: int) -> None:
    raw = b"".join(struct.pack("<Q", f) + bytes(range(1, STRUCT_PAGE_SIZE - 7)) for f in flags)
    run = PageRun(start, raw)
    want = [i for i, f in enumerate(flags) if f & any_of]
    assert run.indexes_with(any_of) == want
    assert [p.pfn for p in run.infos(any_of=any_of)] == [start + i for i in want]
    assert [p.flags for p in run.infos(any_of=any_of)] == [flags[i] for i in want]


def _census_one_by_one(runs: list[PageRun]) -> PageCensus:
    """The census page by page, as ``PageCensus.add`` did before it counted columns."""
    reserved, buddy, pcp = PG["reserved"], PG["buddy"], PG["pcp"]
    c, covered_until = PageCensus.empty(), -1
    for run in runs:
        pfn = run.start_pfn
        for f, private in zip(run.column(0), run.column(5), strict=True):
            zone = f >> 62
            if pfn < covered_until:
                if f & (buddy | pcp):
                    c.problems.append(f"pfn {pfn:#x} is marked free inside another free block")
            elif not f & (reserved | buddy | pcp):
                c.allocated[zone] += 1
            elif f & reserved:
                c.reserved[zone] += 1
            elif f & buddy:
                if private > MAX_PAGE_ORDER or pfn & ((1 << private) - 1):
                    c.problems.append(f"free block at pfn {pfn:#x} has bad order {private}")
                else:
                    c.buddy[zone] += 1 << private
                    covered_until = pfn + (1 << private)
            else:
                c.pcp[zone] += 1
            pfn += 1
    c.covered_until = covered_until
    return c


_marks = st.sampled_from([0, PG["reserved"], PG["buddy"], PG["pcp"], PG["buddy"] | PG["pcp"],
                          PG["reserved"] | PG["buddy"], PG["slab"], PG["head"] | PG["buddy"]])
_page = st.tuples(_marks, st.integers(0, 3), st.integers(0, 12) | st.just(0))


@given(pages=st.lists(_page, max_size=400), cuts=st.lists(st.integers(0, 400), max_size=3),
       start=st.integers(0, 64).map(lambda k: k * 512), gap=st.integers(0, 3))
def test_census_counts_columns_as_page_by_page(pages: list[tuple[int, int, int]],
                                               cuts: list[int], start: int, gap: int) -> None:
    """Free blocks (orders 0..12: some too big, some misaligned), marks inside them, and
    blocks that run on into the next run (the bulk reads' boundaries), or into a hole."""
    raw = b"".join(struct.pack("<QQQQQQQQ", marks | zone << 62, 0, 0, 0, 0, order, 0, 0)
                   for marks, zone, order in pages)
    bounds = sorted({0, len(pages), *(min(c, len(pages)) for c in cuts)})
    runs, pfn = [], start
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        runs.append(PageRun(pfn, raw[lo * STRUCT_PAGE_SIZE:hi * STRUCT_PAGE_SIZE]))
        pfn += hi - lo + gap * 512  # a hole of whole sections between the reads
    assert page_census(runs) == _census_one_by_one(runs)
