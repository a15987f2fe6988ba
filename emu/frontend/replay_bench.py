"""Layer 6: ``kmemu bench`` rows for trace replay (issue 16 figures).

Every row is "lower is better", as the bench's comparison expects: throughput
as nanoseconds per op, and the distance from the emulator's limit as the ratio
of a replayed op's time to the time the limit allows it (the issue's target,
at least 50% of the limit, is a ratio of at most 2).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from emu.frontend.bench import Row
from emu.kernel import tracegen
from emu.machine.core import Machine


def _rows(label: str, path: Path) -> list[Row]:
    r = Machine.booted().replay(path, timeline=False)
    return [
        Row(f"replay {label}: time per op", 1e9 / r.ops_per_second, "ns", "<= 1000",
            f"{r.ops_per_second:,.0f} ops/s, {r.ops_run} ops"),
        Row(f"replay {label}: time per op / the emulator limit's",
            1 / r.limit_fraction if r.limit_fraction else float("inf"), "x",
            "<= 2", f"limit {r.limit_ops_per_second:,.0f} ops/s = "
            f"{r.guest_insns_per_second / 1e6:.0f}M insns/s / {r.mean_insns_per_op:.1f} insns/op"),
        Row(f"replay {label}: guest instructions per op", round(r.mean_insns_per_op), "insns",
            "", ", ".join(f"{k} {v:.0f}" for k, v in r.insns_per_op.items())),
        Row(f"replay {label}: peak held / peak requested",
            r.peak_held / max(r.peak_requested, 1), "x",
            "", f"peak held {r.peak_held >> 10} KiB, requested {r.peak_requested >> 10} KiB"),
    ]


def replay_rows() -> list[Row]:
    """A realistic mixed 100k-op trace and a kmalloc/kfree-only one, each on a fresh machine."""
    with tempfile.TemporaryDirectory(prefix="kmemu-bench-") as d:
        mixed = tracegen.write(Path(d) / "mixed.txt.gz", 100_000, seed=1)
        km = tracegen.write(Path(d) / "kmalloc.txt.gz", 100_000, seed=2, mix=(1.0, 1.0))
        return _rows("100k mixed ops (6.1 text)", mixed) + _rows("100k kmalloc/kfree", km)
