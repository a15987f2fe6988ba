"""m.replay(): a kmem trace run inside the guest, checked against the live census
after every batch (census mode), and the result's figures."""

from __future__ import annotations

import struct

import pytest

from emu import BadArgument, Machine
from emu.kernel import tracegen
from emu.machine.replay import ReplayError, ReplayResult
from tests.replay.test_compile import kca, kcf, kf, km

TIMELINE_KEYS = {"op", "held", "requested", "by_cache", "free_by_order", "unusable",
                 "slab_occupancy"}


@pytest.mark.parametrize("version", ["4.19", "6.1"])
def test_census_after_every_batch(machine: Machine, version: str) -> None:
    """Every live allocation is an allocated object of the cache its op named (or a
    page block), slots of freed ones are empty, created caches hold exactly the
    trace's live objects: checked by the guest-state census after each of 5 batches."""
    lines = list(tracegen.generate(2000, seed=11, version=version, live_target=800))
    r = machine.replay(lines, batch=400, census=True, count_ops=50, measure=False)
    assert sum(r.ops.values()) == 2000 and r.ops_run == 2000
    assert len(r.timeline) == 5
    assert r.failures == {} and r.unreadable == 0


def test_census_catches_a_slot_that_lies(machine: Machine) -> None:
    """The census is not a rubber stamp: swap two live pointers of different caches
    between batches and the next batch's check names the slot."""
    trace = [kca(0x10, 192, "s+0x1/0x2"), km(0x20, 64), km(0x30, 64), kf(0x30)]
    rp_slots = {}

    def swap(done: int, total: int, _s: float) -> None:
        if done == 2:
            va = machine.read_u64(machine.symbol("kmemu_replay_slots"))
            a, b = struct.unpack("<QQ", machine.read_virt(va, 16))
            machine.write_virt(va, struct.pack("<QQ", b, a))
            rp_slots["swapped"] = (a, b)

    with pytest.raises(ReplayError, match=r"after op 4: slot 0: .* is in kmalloc-64, op 0 "
                                          r"wanted s:192"):
        machine.replay(trace, batch=2, census=True, count_ops=0, measure=False, progress=swap)
    assert rp_slots


@pytest.mark.kmemu(slab="slab")
def test_census_on_slab_catches_a_slot_that_lies(machine: Machine) -> None:
    """The same lie under SLAB, whose census reads every cache's live objects once per
    batch: the slot is named, with find_object's account of what it points at."""
    trace = [kca(0x10, 192, "s+0x1/0x2"), km(0x20, 64), km(0x30, 64), kf(0x30)]

    def swap(done: int, total: int, _s: float) -> None:
        if done == 2:
            va = machine.read_u64(machine.symbol("kmemu_replay_slots"))
            a, b = struct.unpack("<QQ", machine.read_virt(va, 16))
            machine.write_virt(va, struct.pack("<QQ", b, a))

    with pytest.raises(ReplayError, match=r"after op 4: slot 0: 0x[0-9a-f]+ \(op 0\) is not an "
                                          r"allocated object of s:192: ObjectInfo\(cache="
                                          r"'kmalloc-64'"):
        machine.replay(trace, batch=2, census=True, count_ops=0, measure=False, progress=swap)


def test_kmalloc_kfree_figures_and_waste(machine: Machine) -> None:
    trace = [km(0x100 + i * 0x80, 100, site="a+0x1/0x9") for i in range(3)] + \
        [km(0x900, 30, site="b+0x2/0x9"), kf(0x100), kf(0x180)]
    r = machine.replay(trace, count_ops=6, batch=2)  # ops 0, 2, 4 counted: one per batch
    assert r.ops == {"kfree": 2, "kmalloc": 4}
    assert r.waste_by_call_site == {"a+0x1": 3 * (128 - 100), "b+0x2": 32 - 30}
    assert r.requested == 130 and r.allocated == 128 + 32
    assert r.by_cache["kmalloc-128"]["objects"] == 1
    assert r.by_cache["kmalloc-32"]["requested"] == 30
    assert set(r.insns_per_op) == {"kmalloc", "kfree"} and r.insns_per_op["kmalloc"] > 10
    assert r.ops_per_second > 0 and 0 < r.limit_fraction
    assert r.guest_insns_per_second > 0 and r.register_loop_insns_per_second > 0
    assert r.unusable_text.startswith("Node 0, zone      DMA ")
    assert "kmalloc-128" in r.slabinfo and r.buddyinfo.startswith("Node 0, zone")


def test_failures_are_counted_by_gfp_and_their_frees_do_nothing(machine: Machine) -> None:
    big = 1 << 30  # above KMALLOC_MAX_SIZE: kmalloc returns NULL
    trace = [km(0x10, big, gfp="GFP_KERNEL|__GFP_NOWARN"), km(0x20, 64), kf(0x10), kf(0x20),
             km(0x30, big, gfp="GFP_ATOMIC|__GFP_NOWARN")]
    r = machine.replay(trace, census=True, count_ops=0, measure=False)
    assert r.failures == {"kmalloc": {"GFP_KERNEL|__GFP_NOWARN": 1,
                                      "GFP_ATOMIC|__GFP_NOWARN": 1}}
    assert r.requested == 0 and r.allocated == 0  # a failed allocation holds nothing


def test_everything_freed_leaves_the_created_cache_empty(machine: Machine) -> None:
    lines = [kca(0x1000 + 0x40 * i, 64, "mine+0x1/0x2") for i in range(200)] + \
        [kcf(0x1000 + 0x40 * i, "replay_t") for i in range(200)]
    r = machine.replay(lines, batch=100, census=True, count_ops=0, measure=False)
    assert r.by_cache == {} and r.requested == 0
    assert machine.live_objects("replay_t") == []
    peak = max(s["by_cache"].get("replay_t", 0) for s in r.timeline)
    assert peak >= 200 * 64  # the slabs held them all at the peak
    assert r.peak_requested == 200 * 64 and r.timeline[-1]["requested"] == 0


def test_timeline_samples_once_per_batch(machine: Machine) -> None:
    r = machine.replay(list(tracegen.generate(1000, seed=5)), batch=300, count_ops=0,
                       measure=False)
    assert [s["op"] for s in r.timeline] == [300, 600, 900, 1000]
    for s in r.timeline:
        assert set(s) == TIMELINE_KEYS
        assert len(s["free_by_order"]) == 11 and len(s["unusable"]) == 11
        assert all(0 <= u <= 1 for u in s["unusable"])
        assert all(a <= n for a, n in s["slab_occupancy"].values())
    assert r.timeline[-1]["held"] == r.final_held and r.peak_held >= r.final_held
    assert r.peak_held == max(s["held"] for s in r.timeline)


@pytest.mark.slow
def test_a_realistic_100k_trace_from_a_gzip_file(machine: Machine, tmp_path) -> None:
    p = tracegen.write(tmp_path / "t.txt.gz", 100_000, seed=1)
    r = machine.replay(p, count_ops=200, measure=False)
    assert r.ops_run == 100_000 and r.unreadable == 0
    assert r.peak_held > r.peak_requested * 0.9 > 0
    assert isinstance(ReplayResult(**r.to_dict()), ReplayResult)


def test_bad_input(machine: Machine, tmp_path) -> None:
    with pytest.raises(ReplayError, match="no trace file"):
        machine.replay(str(tmp_path / "none.txt"))
    with pytest.raises(ReplayError, match=r"nothing to replay .*2 unreadable line\(s\); first, "
                                          r"line 1 \(not a trace event line\): junk"):
        machine.replay(["junk", "more junk"])
    with pytest.raises(BadArgument, match="batch must be an int 1..4096"):
        machine.replay([km(1)], batch=0)
    with pytest.raises(BadArgument, match="replay\\(\\) takes"):
        machine.replay(42)  # type: ignore[arg-type]
    with pytest.raises(BadArgument, match="trace line 2 is a bytes, not a str"):
        machine.replay([km(1), b"kfree"])  # type: ignore[list-item]
    with pytest.raises(BadArgument, match="progress must be a callable"):
        machine.replay([km(1)], progress=1)  # type: ignore[arg-type]
    bad = tmp_path / "cut.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(ReplayError, match="cannot read trace"):
        machine.replay(bad)
    assert machine.kmalloc(64)  # the machine is still usable


@pytest.mark.slow
@pytest.mark.parametrize("allocator", ["slab", "slob"])
def test_the_same_trace_on_slab_and_slob(allocator: str) -> None:
    """SLAB and SLOB pass the same census as SLUB (SLOB by pages and counts: it keeps no
    object boundaries), and the trace's requested bytes do not depend on the allocator."""
    from emu.frontend.pytest_plugin import booted_machine

    m = booted_machine(slab=allocator)
    lines = list(tracegen.generate(1500, seed=11, live_target=500))
    r = m.replay(lines, batch=500, census=True, count_ops=50, measure=False)
    ref = booted_machine().replay(lines, batch=500, count_ops=0, measure=False)
    assert r.slab == allocator and r.ops == ref.ops and r.requested == ref.requested
    assert r.final_held > 0 and set(r.timeline[-1]) == TIMELINE_KEYS
    if allocator == "slob":
        assert list(r.timeline[-1]["by_cache"]) == ["slob pages (all caches)"]
    else:
        assert "dentry" in r.timeline[-1]["by_cache"]
