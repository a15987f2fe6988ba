"""Watchpoints in odd places: inside raise_irq, on hot fields (the guest must not
change), on the writing instruction, inside a next over the writer, on a page-table
entry, size 0.
"""

from __future__ import annotations

import hashlib

import pytest

from emu import BreakpointHit, Machine
from emu.core.errors import KmemuError
from emu.debug.session import DebugSession
from tests.debug.conftest import alloc_fast

pytestmark = pytest.mark.usefixtures("keep_removed_hooks")
GFP_KERNEL = 0xCC0


def test_breakpoint_after_watch_stop_and_restore_is_not_skipped(machine: Machine,
                                                                s: DebugSession) -> None:
    machine.kfree(machine.kmalloc(64))  # from here on kmalloc(64) takes the fast path
    snap = machine.snapshot()
    s.watch(alloc_fast(machine), 8)
    stop = s.call("kmalloc", ["64", "GFP_KERNEL"])
    assert stop.reason == "watchpoint"
    y = machine.cpu.rip
    s.delete()
    assert s.cont().reason == "done"
    machine.restore(snap)
    s.break_(y)
    assert s.call("kmalloc", ["64", "GFP_KERNEL"]).reason == "breakpoint"


def test_watchpoint_inside_raise_irq(machine: Machine) -> None:
    wp = machine.watch(machine.symbol("preempt_count"), 4)
    try:
        with pytest.raises(KmemuError):  # actual: "kernel did not return to idle after IRQ"
            machine.raise_irq(0x30)
    finally:
        wp.remove()
    if machine.state == "stopped":  # a fix may leave the handler stopped: let it finish
        machine._suspended.resume()  # noqa: SLF001
    # the guest is not left inside the interrupt handler
    assert machine.call("kmemu_test_context") == 0  # actual: 0x1000005 (in_hardirq, atomic)


def test_watch_size_zero_is_an_error(s: DebugSession) -> None:
    with pytest.raises(KmemuError, match="size"):
        s.watch(0xFFFF888000001000, size=0)


def test_stopping_watches_on_hot_fields_do_not_change_the_guest(machine: Machine) -> None:
    """Stopping watches on slab freelists/tid and on call-stack slots, resumed at every
    stop: same results and same RAM as a run without them."""
    snap = machine.snapshot()

    def workload(call) -> list[int]:
        out, live = [], []
        for i, size in enumerate([8, 64, 64, 200, 1000, 4000, 64, 5000] * 2):
            live.append(call("kmalloc", size, GFP_KERNEL))
            out.append(live[-1])
            if i % 3 == 2:
                call("kfree", live.pop(0))
        v = call("vmalloc", 3 * 4096)
        call("memset", v, 0x11, 3 * 4096)
        call("vfree", v)
        for p in live:
            call("kfree", p)
        return out + [v]

    def ram() -> str:
        return hashlib.sha1(machine.read_phys(0, 64 << 20)).hexdigest()

    ref, ref_ram = workload(machine.call), ram()
    machine.restore(snap)
    c6 = machine.var("kmalloc_caches")[0][6]
    addrs = [int(c6.cpu_slab.freelist.address_), int(c6.cpu_slab.tid.address_),
             int(machine.var("kmalloc_caches")[0][3].cpu_slab.freelist.address_),
             machine._call_rsp - 16, machine._call_rsp - 24]  # noqa: SLF001
    wps = [machine.watch(a, 8) for a in addrs] + [machine.watch(addrs[0], 8, "read")]
    stops = [0]

    def resuming(*a: int) -> int:
        try:
            return machine.call(*a)
        except BreakpointHit as e:
            call = e.call
        while True:
            stops[0] += 1
            try:
                return call.resume()
            except BreakpointHit as e:
                call = e.call

    try:
        got = workload(resuming)
    finally:
        for w in wps:
            w.remove()
    assert stops[0] > 50
    assert got == ref and ram() == ref_ram


def test_watch_and_breakpoint_on_the_writing_instruction(machine: Machine,
                                                         s: DebugSession) -> None:
    machine.kfree(machine.kmalloc(64))
    va = alloc_fast(machine)
    w = s.watch(va, 8)
    stop = s.call("kmalloc", ["64", "GFP_KERNEL"])
    writer = stop.watch.rip
    s.kill()
    s.delete()
    machine.kfree(machine.kmalloc(64))
    before = machine.read_u64(va)
    s.break_(writer)
    w = s.watch(va, 8)
    first = s.call("kmalloc", ["64", "GFP_KERNEL"])
    assert first.reason == "breakpoint" and machine.read_u64(va) == before
    second = s.cont()
    assert second.reason == "watchpoint" and second.point == w.number
    assert (second.watch.old, second.watch.new) == (before, before + 1)
    assert s.cont().reason == "done" and machine.read_u64(va) == before + 1


def test_watch_fires_inside_a_next_over_the_writer(machine: Machine, s: DebugSession) -> None:
    machine.kfree(machine.kmalloc(64))
    va = alloc_fast(machine)
    before = machine.read_u64(va)
    s.break_("kmalloc")
    s.call("kmalloc", ["64", "GFP_KERNEL"])
    w = s.watch(va, 8)
    for _ in range(20):
        stop = s.next()
        if stop.reason != "step":
            break
    assert stop.reason == "watchpoint" and stop.point == w.number
    assert machine.symbolize(machine.cpu.rip).startswith("kmalloc+")  # the fast path inline
    assert s.cont().reason == "done" and machine.read_u64(va) == before + 1


def test_watch_on_a_page_table_entry(machine: Machine, s: DebugSession) -> None:
    from emu.kernel import pagetable

    area = machine.vmalloc(4096)
    pte_pa = list(pagetable.walk_steps(machine._read_u64, machine.cr3, area))[-1].entry_pa  # noqa: SLF001
    pte_va = 0xFFFF888000000000 + pte_pa
    old = machine.read_u64(pte_va)
    s.watch(pte_va, 8)
    s.watch(area, 8)  # its own PTE is in its walk
    stop = s.call("vfree", [hex(area)])
    assert stop.reason == "watchpoint"
    assert (stop.watch.old, stop.watch.new) == (old, 0)
    assert stop.watch.where.startswith("vunmap")
    assert s.cont().reason == "done"
    assert machine.validate_page_alloc() == []
