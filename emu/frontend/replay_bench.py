"""Layer 6: ``kmemu bench`` rows for trace replay (issue 16 figures).

Every row is "lower is better", as the bench's comparison expects: throughput
as nanoseconds per op, and the distance from the emulator's limit as the ratio
of a replayed op's time to the time the limit allows it (the issue's target,
at least 50% of the limit, is a ratio of at most 2).

What the figures are (``emu.machine.replay`` and ``emu.machine.replay_limit``):
the replay's time is the ring writes and guest runs, on the thread's CPU time (a
loaded host's other processes left out) with the wall clock beside it; the
limit's plain loop runs in slices between the batches on the same clocks, so the
ratio is a same-run one on a loaded host too.  "End to end" is the whole
``m.replay()`` on the wall clock (parse, compile, batches, samples, report's
reads; not the limit's loop or the counting twin).  Each allocator replays the
same trace file on its own fresh machine.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from emu.frontend.bench import Row
from emu.kernel import tracegen
from emu.machine.core import Machine

ALLOCATORS = ("slub", "slab", "slob")


def _load() -> str:
    try:
        return f"host load {os.getloadavg()[0]:.1f}"
    except OSError:
        return "host load unknown"


def _rows(label: str, trace: Path, slab: str) -> list[Row]:
    r = Machine.booted(slab=slab).replay(trace, timeline=False)
    what = f"replay {label} on {slab.upper()}"
    return [
        Row(f"{what}: time per op (CPU time)", 1e9 / r.ops_per_second, "ns", "<= 1000",
            f"{r.ops_per_second:,.0f} ops/s, {r.ops_run} ops, {_load()}"),
        Row(f"{what}: time per op (wall clock)", 1e9 / r.wall_ops_per_second, "ns", "",
            f"{r.wall_ops_per_second:,.0f} ops/s"),
        Row(f"{what}: time per op / the emulator limit's",
            1 / r.limit_fraction if r.limit_fraction else float("inf"), "x",
            "<= 2", f"{r.limit_fraction:.0%} of the limit ({r.wall_limit_fraction:.0%} on the "
            f"wall clock); limit {r.limit_ops_per_second:,.0f} ops/s = "
            f"{r.guest_insns_per_second / 1e6:.0f}M insns/s / {r.mean_insns_per_op:.1f} insns/op"),
        Row(f"{what}: guest instructions per op", round(r.mean_insns_per_op), "insns",
            "", ", ".join(f"{k} {v:.0f}" for k, v in r.insns_per_op.items())),
        Row(f"{what}: end to end, time per op", 1e9 / r.end_to_end_ops_per_second, "ns", "",
            f"{r.end_to_end_seconds:.2f} s in all, of which parse and compile "
            f"{r.parse_seconds:.2f} s"),
        Row(f"{what}: peak held / peak requested",
            r.peak_held / max(r.peak_requested, 1), "x",
            "", f"peak held {r.peak_held >> 10} KiB, requested {r.peak_requested >> 10} KiB"),
    ]


def replay_rows(allocators: tuple[str, ...] = ALLOCATORS, ops: int = 100_000) -> list[Row]:
    """A kmalloc/kfree-only trace of ``ops`` ops and a realistic mixed one, on each
    allocator."""
    size = f"{ops // 1000}k" if ops % 1000 == 0 else f"{ops}-op"
    with tempfile.TemporaryDirectory(prefix="kmemu-bench-") as d:
        km = tracegen.write(Path(d) / "kmalloc.txt.gz", ops, seed=2, mix=(1.0, 1.0))
        mixed = tracegen.write(Path(d) / "mixed.txt.gz", ops, seed=1)
        rows: list[Row] = []
        for slab in allocators:
            rows += _rows(f"{size} kmalloc/kfree", km, slab)
            rows += _rows(f"{size} mixed ops (6.1 text)", mixed, slab)
        return rows
