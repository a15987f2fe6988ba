"""The trace text kmemu writes reads back through the one parser `kmemu replay` uses
(emu.kernel.tracetext), field by field, and replays to the same operations."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from emu import Machine
from emu.frontend.pytest_plugin import booted_machine
from emu.kernel import tracetext

GFP_KERNEL = 0xCC0
REPLAYED = ("kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free", "mm_page_alloc",
            "mm_page_free")


def _kmalloc_class(size: int) -> int:
    """SLUB's kmalloc size class for ``size`` (8, 16, ..., 96, 128, 192, 256, ...)."""
    if size <= 8:
        return 8
    if 64 < size <= 96:
        return 96
    if 128 < size <= 192:
        return 192
    return 1 << (size - 1).bit_length()


def _workload(m: Machine, n: int, seed: int) -> list[tuple[str, int, int]]:
    """n random kmalloc/kfree operations in batches: [(event, ptr, bytes_req)]."""
    rng = random.Random(seed)
    live: list[int] = []
    done: list[tuple[str, int, int]] = []
    while len(done) < n:
        sizes = [rng.choice((8, 24, 64, 100, 192, 500, 1000, 3000)) for _ in range(200)]
        for size, ptr in zip(sizes, m.batch([("kmalloc", s, GFP_KERNEL) for s in sizes]),
                             strict=True):
            done.append(("kmalloc", ptr, size))
            live.append(ptr)
        rng.shuffle(live)
        frees, live = live[:150], live[150:]
        m.batch([("kfree", p) for p in frees])
        done += [("kfree", p, 0) for p in frees]
    m.batch([("kfree", p) for p in live])
    return done + [("kfree", p, 0) for p in live]


@pytest.mark.slow
def test_kmem_text_round_trips_through_the_replay_parser(tmp_path: Path) -> None:
    # A machine of its own, not the session's: the 16 MiB ring buffer is 4,096 pages
    # first written here, and after a snapshot each first write is a Unicorn
    # copy-on-write whose cost grows with the pages already copied (measured: 16 s
    # for this buffer after the session snapshot, 0.13 s on a machine without one).
    m = Machine.booted()
    m.tracing.buffer_size_kb = 16384  # no overwrite: every event stays
    m.tracing.clock = "counter"
    m.tracing.hash_ptr = False  # raw pointers, so they can be compared with the calls'
    m.tracing.enable("kmem:kmalloc", "kmem:kfree", "kmem:kmem_cache_alloc",
                     "kmem:kmem_cache_free", "kmem:mm_page_alloc", "kmem:mm_page_free")
    m.tracing.clear()
    done = _workload(m, 10_000, seed=5)
    text = m.tracing.read()
    trace = tracetext.parse_lines(text.splitlines())
    assert trace.unreadable == 0, trace.first_unreadable
    assert trace.lost_events == 0
    ours = [e for e in trace.events if e.event in ("kmalloc", "kfree")
            and (e.call_site or "").startswith("kmemu_batch_run")]
    assert [(e.event, e.ptr, e.bytes_req) for e in ours] == done
    for e in ours:
        if e.event == "kmalloc":
            assert e.gfp_flags == "GFP_KERNEL" and e.node == -1 and e.accounted is False
            assert e.bytes_alloc == _kmalloc_class(e.bytes_req), e
    # the same text replays to the same operations on a fresh machine
    path = tmp_path / "kmemu.trace"
    path.write_text(text)
    r = booted_machine(mem="256M").replay(str(path))
    assert r.unreadable == 0
    assert r.ops == dict(Counter(e.event for e in trace.events if e.event in REPLAYED))
