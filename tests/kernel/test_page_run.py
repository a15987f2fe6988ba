"""``PageRun``'s column scan agrees with decoding every struct page."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from emu.kernel.mm import PG, STRUCT_PAGE_SIZE, PageRun

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
