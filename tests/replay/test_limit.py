"""The replay's speed figures: what ops_per_second and limit_fraction are made of.

Times are never asserted (the host is shared); what is checked is how the figures
are built: the plain loop runs in slices between the batches, each about as long as
the batch before it, both sides on the same clocks, and the ratios are the ratios
of the fields the result reports."""

from __future__ import annotations

import pytest

from emu import Machine
from emu.machine import replay_limit
from emu.machine.replay_limit import SPIN, SPIN_REGS, LimitMeter, insns_per_turn
from tests.replay.test_compile import kf, km


def _trace(n: int) -> list[str]:
    """n kmallocs, then their kfrees (2n ops)."""
    return [km(0x1000 + 0x80 * i) for i in range(n)] + [kf(0x1000 + 0x80 * i) for i in range(n)]


def test_loops_are_counted_per_turn(machine: Machine) -> None:
    """The loops' instructions per turn are counted (deterministic), the kernel-shaped
    loop has the call, loads and stores the register loop lacks."""
    spin, regs = insns_per_turn(machine, SPIN), insns_per_turn(machine, SPIN_REGS)
    assert spin == insns_per_turn(machine, SPIN)
    assert spin == int(spin) and regs == int(regs) and 2 <= regs < spin <= 40


def test_meter_slices_follow_the_time_asked(machine: Machine) -> None:
    meter = LimitMeter(machine)
    assert meter.turns == 100_000 and meter.cpu > 0 and meter.wall > 0
    before = meter.turns
    meter.slice(0.02)  # sized from the first slice's rate: far more than the minimum
    assert meter.turns - before > 100_000
    meter.top_up(0.05)
    assert meter.cpu >= 0.05
    assert meter.insns_per_second == meter.turns * meter.per_turn / meter.cpu


def test_loop_runs_between_the_batches(machine: Machine,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """One slice after every batch, asked for the CPU time that batch took, then the
    top-up; the figures are the ratios of the reported fields."""
    asked: list[float] = []
    real = LimitMeter.slice

    def spy(self: LimitMeter, seconds: float) -> None:
        asked.append(seconds)
        real(self, seconds)

    monkeypatch.setattr(LimitMeter, "slice", spy)
    r = machine.replay(_trace(300), batch=100, count_ops=20, timeline=False)
    assert r.ops_run == 600
    batches = asked[1:7]  # asked[0]: the meter's first slice; after 6 batches, the top-up
    assert asked[0] == 0.0 and len(batches) == 6 and all(s > 0 for s in batches)
    assert sum(batches) == pytest.approx(r.cpu_seconds)
    assert r.ops_per_second == pytest.approx(r.ops_run / r.cpu_seconds)
    assert r.wall_ops_per_second == pytest.approx(r.ops_run / r.seconds)
    assert r.limit_ops_per_second == pytest.approx(r.guest_insns_per_second /
                                                   r.mean_insns_per_op)
    assert r.limit_fraction == pytest.approx(r.ops_per_second / r.limit_ops_per_second)
    wall_limit = r.wall_guest_insns_per_second / r.mean_insns_per_op
    assert r.wall_limit_fraction == pytest.approx(r.wall_ops_per_second / wall_limit)
    assert r.end_to_end_seconds >= r.seconds >= r.cpu_seconds * 0.5
    assert r.end_to_end_ops_per_second == pytest.approx(r.ops_run / r.end_to_end_seconds)


def test_no_measure_no_limit(machine: Machine, monkeypatch: pytest.MonkeyPatch) -> None:
    """measure=False runs no loop at all and leaves the limit's fields at 0."""
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("the loop ran with measure=False")

    monkeypatch.setattr(replay_limit.LimitMeter, "__init__", refuse)
    r = machine.replay(_trace(50), count_ops=0, measure=False, timeline=False)
    assert r.ops_per_second > 0 and r.end_to_end_ops_per_second > 0
    assert r.limit_fraction == r.wall_limit_fraction == r.guest_insns_per_second == 0


def test_timeline_samples_are_capped(machine: Machine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above MAX_SAMPLES batches the timeline keeps every k-th batch and the last; the
    peak is still taken after every batch (the largest held of all batches)."""
    from emu.machine import replay

    monkeypatch.setattr(replay, "MAX_SAMPLES", 2)
    r = machine.replay(_trace(300), batch=100, count_ops=0, measure=False)
    assert [s["op"] for s in r.timeline] == [100, 400, 600]  # batches 0, 3 and the last
    assert r.peak_held >= max(s["held"] for s in r.timeline)
