"""Watchpoints from Python: physical hooks behind a virtual range, old/new values,
the writing instruction, aliases, remapping, and exact re-execution."""

from __future__ import annotations

import pytest

from emu import Machine
from emu.debug.breakpoints import WatchError
from emu.machine.core import WatchpointHit


def _alloc_fast(m: Machine) -> int:
    return int(m.var("kmalloc_caches")[0][6].cpu_slab.alloc_fast.address_)


def test_counting_watch_records_old_new_and_writer(machine: Machine) -> None:
    machine.kfree(machine.kmalloc(64))
    va = _alloc_fast(machine)
    before = machine.read_u64(va)
    with machine.watchpoint(va, 8) as wp:
        for _ in range(3):
            machine.kfree(machine.kmalloc(64))
    assert [h.new - h.old for h in wp.hits] == [1, 1, 1]
    assert wp.hits[0].old == before and wp.hits[-1].new == before + 3
    assert all(h.where.startswith("kmalloc+") for h in wp.hits)  # the inlined fast path
    assert machine.read_u64(va) == before + 3  # counting did not disturb the guest


def test_stopping_watch_runs_the_writer_exactly_once(machine: Machine) -> None:
    """A read-modify-write (addq $1, mem) stopped in its store is not done twice."""
    machine.kfree(machine.kmalloc(64))
    va = _alloc_fast(machine)
    before = machine.read_u64(va)
    wp = machine.watch(va, 8)
    try:
        with pytest.raises(WatchpointHit) as ei:
            machine.kmalloc(64)
        hit = ei.value.hit
        assert (hit.old, hit.new) == (before, before + 1)
        assert machine.read_u64(va) == before + 1
        assert machine.cpu.rip > hit.rip  # stopped just after the writing instruction
        assert "Old value" in str(ei.value) and "New value" in str(ei.value)
        ptr = ei.value.call.resume()
        assert ptr and machine.read_u64(va) == before + 1
    finally:
        wp.remove()
    machine.kfree(ptr)


def test_stopping_on_a_push_keeps_the_stack_right(machine: Machine) -> None:
    """push writes before it moves RSP: stopping in it and resuming must not skew RSP."""
    slot = machine._call_rsp - 16  # noqa: SLF001 - where kmalloc's push %rbp lands
    wp = machine.watch(slot, 8)
    try:
        with pytest.raises(WatchpointHit) as ei:
            machine.kmalloc(64)
        assert ei.value.hit.where.startswith("kmalloc")
        assert machine.cpu.reg("rsp") == slot
        wp.remove()  # the trampoline's deferred work reuses the slot later
        ptr = ei.value.call.resume()
    finally:
        wp.remove()
    assert ptr >= 0xFFFF888000000000
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91


def test_watch_sees_writes_through_another_alias(machine: Machine) -> None:
    """Hooks are physical: watching the direct-map alias catches vmalloc-address writes."""
    area = machine.vmalloc(4096)
    alias = 0xFFFF888000000000 + machine.translate(area)
    with machine.watchpoint(alias + 64, 8) as wp:
        machine.call("memset", area, 0x5A, 4096)
    assert wp.hits and wp.hits[-1].new == 0x5A5A5A5A5A5A5A5A
    assert wp.hits[0].address == alias + 64
    machine.vfree(area)


def test_watch_follows_a_remapped_address(machine: Machine) -> None:
    area = machine.vmalloc(4096)
    wp = machine.watchpoint(area, 8).install()
    try:
        machine.vfree(area)
        machine.purge_vmap()  # unmaps: the PTE write re-resolves the watch
        assert not wp.mapped
        hog = machine.alloc_pages("GFP_KERNEL")  # the old page goes elsewhere
        again = machine.vmalloc(4096)
        if again != area:
            pytest.skip(f"vmalloc reused another address ({again:#x} != {area:#x})")
        assert wp.mapped and wp.chunks[0].pa == machine.translate(area)
        n = len(wp.hits)
        machine.call("memset", area, 1, 8)
        assert len(wp.hits) == n + 1 and wp.hits[-1].new == 0x0101010101010101
    finally:
        wp.remove()
    machine.free_pages(hog)


def test_read_watch(machine: Machine) -> None:
    p = machine.kmalloc(64)
    with machine.watchpoint(p, 8, "read") as wp:
        machine.call("memcpy", p + 8, p, 8)
    assert len(wp.hits) == 1 and wp.hits[0].access == "read"
    machine.kfree(p)


def test_bad_watchpoints(machine: Machine) -> None:
    with pytest.raises(WatchError, match="access"):
        machine.watchpoint(0xFFFF888000001000, 8, "exec")
    with pytest.raises(WatchError, match="size"):
        machine.watchpoint(0xFFFF888000001000, 0)
    with pytest.raises(WatchError, match="address"):
        machine.watchpoint(-1, 8)
    with pytest.raises(WatchError, match="0xdead000000000000..0xdead000000000007 is not "
                       "canonical"):
        machine.watch(0xDEAD000000000000, 8)  # no mapping can ever reach it
    with pytest.raises(WatchError, match="not canonical"):
        machine.watchpoint(0x00007FFFFFFFFFFC, 8)  # runs off the end of the lower half
    wp = machine.watchpoint(0x1000, 8).install()  # unmapped: allowed, waits for a mapping
    assert not wp.mapped
    wp.remove()
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91
