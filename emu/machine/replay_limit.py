"""Layer 5: the emulator's limit a replay is compared with, measured beside it.

The issue's definition: limit = guest instructions per second on a plain loop
/ guest instructions per op.  The plain loop is ``kmemu_replay_spin`` of
kernel/replay.c (a call, two loads and a store per turn: kernel-shaped).

How it is timed, so that the ratio means the same on a quiet host and on one
shared with other work:

- **Interleaved.**  :class:`LimitMeter` runs the loop in slices between the
  replay's batches, each slice about as long as the batch before it.  The loop
  and the replay thus share the host's load, caches and frequency over the same
  seconds, and their times are summed the same way (no best-of-N on one side
  only: that made the fraction read 15-38% on a loaded host against 55-60% on a
  quiet one for the same trace).
- **Two clocks.**  Every slice and every batch is timed on the thread's CPU time
  (``time.thread_time``: Unicorn runs the guest in the calling thread; time the
  OS gives other processes is not counted) and on the wall clock.  The CPU-time
  figures are the result's main ones (``ops_per_second``, ``limit_fraction``);
  the wall ones sit beside them (``wall_ops_per_second``,
  ``wall_limit_fraction``).  On an idle host the two agree.

The loop's instructions per turn are counted once, before the timed pass (the
counter's hook flushes translated code when it goes, so it must not be taken
away between batches).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emu.machine.core import Machine

SPIN = "kmemu_replay_spin"  # calls, loads, stores: the limit
SPIN_REGS = "kmemu_replay_spin_regs"  # registers only: the emulator's best case, reported beside
MIN_SECONDS = 0.05  # the loop runs at least this long in all (CPU time), however short the replay


def insns_per_turn(m: Machine, fn: str) -> float:
    """Guest instructions per turn of one of kernel/replay.c's loops (counted, not timed:
    the difference between 2000 and 1000 turns, so the call itself cancels out)."""
    with m.count_instructions() as a:
        m.call(fn, 1000)
    with m.count_instructions() as b:
        m.call(fn, 2000)
    return (b[0] - a[0]) / 1000


class LimitMeter:
    """The plain loop, timed in slices on both clocks; :attr:`insns_per_second` is the
    limit's numerator (CPU time), :attr:`wall_insns_per_second` the same on the wall."""

    def __init__(self, m: Machine, fn: str = SPIN) -> None:
        self.m, self.fn = m, fn
        self.per_turn = insns_per_turn(m, fn)
        self.turns = 0
        self.cpu = self.wall = 0.0
        self._rate = 0.0  # insns per CPU second, from the slices so far
        self.slice(0.0)  # a first short slice: the rate the next ones are sized by

    def slice(self, seconds: float) -> None:
        """Run the loop for about ``seconds`` of CPU time (at least 100k turns)."""
        n = 100_000
        if self._rate > 0:
            n = max(n, int(seconds * self._rate / self.per_turn))
        c0, w0 = time.thread_time(), time.perf_counter()
        self.m.call(self.fn, n)
        dc, dw = time.thread_time() - c0, time.perf_counter() - w0
        self.turns += n
        self.cpu += dc
        self.wall += dw
        if self.cpu > 0:
            self._rate = self.turns * self.per_turn / self.cpu

    def top_up(self, seconds: float = MIN_SECONDS) -> None:
        """More slices until the loop has run ``seconds`` of CPU time in all (a short
        replay's slices alone would be too short to time)."""
        while self.cpu < seconds:
            self.slice(min(seconds - self.cpu, 0.01))

    @property
    def insns_per_second(self) -> float:
        return self.turns * self.per_turn / self.cpu if self.cpu > 0 else 0.0

    @property
    def wall_insns_per_second(self) -> float:
        return self.turns * self.per_turn / self.wall if self.wall > 0 else 0.0


def measure_limit(m: Machine, fn: str = SPIN, seconds: float = MIN_SECONDS) -> float:
    """Guest instructions per CPU second on one of kernel/replay.c's loops, run on its
    own for ``seconds`` (the register loop's figure, reported beside the limit)."""
    meter = LimitMeter(m, fn)
    meter.top_up(seconds)
    return meter.insns_per_second
