"""Run control in odd places: stepping whole calls against plain runs, over hlt, with
interrupts, in IRQ context, into an oops; kill in a locked region; snapshots around a
stopped call; register writes that break the machine.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emu import Machine
from emu.core.errors import KmemuError
from emu.debug.session import DebugSession
from emu.kernel.source import find_source

pytestmark = pytest.mark.usefixtures("keep_removed_hooks")
GFP_KERNEL = 0xCC0
KERNEL = Path(__file__).resolve().parents[2] / "kernel"


def test_interrupt_at_idle_does_not_hit_the_next_call(machine: Machine) -> None:
    machine.interrupt()  # e.g. Ctrl-C at the prompt, or a late gdb 0x03
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91  # actual: Interrupted


def test_kill_inside_a_locked_region_lets_the_call_finish(s: DebugSession) -> None:
    """Abandoning new_slab with list_lock held would make the next kmalloc spin or
    panic: kill runs the call to its end instead (points disabled meanwhile)."""
    s.break_("slub.c:110")  # new_slab: inside spin_lock_irqsave(&s->node.list_lock)
    assert s.call("kmalloc", ["64", "GFP_KERNEL"]).reason == "breakpoint"
    assert "ran to its end" in s.kill()
    assert 1 in s.points  # the breakpoint is back for the next call
    s.delete()
    assert s.call("kmalloc", ["64", "GFP_KERNEL"]).reason == "done"


def test_queue_call_rejects_a_too_wide_argument(s: DebugSession) -> None:
    with pytest.raises(KmemuError, match="64 bits"):
        s.queue_call("kmalloc", ["99999999999999999999999", "0"])


def test_bad_stack_pointer_then_continue_is_a_stop(s: DebugSession) -> None:
    s.break_("kmemu_test_add")
    s.call("kmemu_test_add", ["1", "2", "3", "4", "5", "6"])
    s.delete()
    s.m.cpu.set_reg("rsp", 0)  # gdb: set $rsp = 0
    stop = s.cont()  # actual: BadArgument "virtual address ... got -48"
    assert stop.reason in ("oops", "error")


def _line_of(file: str, text: str) -> int:
    lines = find_source(file).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_next_steps_over_inlined_calls(s: DebugSession) -> None:
    """next goes over inlined calls as over real ones, and stops where gdb stops: at
    an inlined call's own line when the step arrives where its body starts (gdb's
    skipped inline frames), shown at the call site; step there enters the body
    without running anything, and next inside it stays in it (gdb 13 on kmemu gdb)."""
    # kmalloc's return line inlines slab_alloc and the whole fast path (slub.c's
    # slab_alloc_nocheck, get_freepointer, cpu_freelist_cmpxchg, ...): next must not stop
    # in them but at one of kmalloc's own lines or end the call
    body = _line_of("slub.c", "void *kmalloc(size_t size, gfp_t gfp)")
    at = _line_of("slub.c", "return slab_alloc(kmalloc_caches[KMALLOC_NORMAL]")
    s.break_(f"slub.c:{at}")
    assert s.call("kmalloc", ["64", "GFP_KERNEL"]).reason == "breakpoint"
    s.delete()
    stop = s.next()
    if stop.reason == "step":  # still in kmalloc: at one of its own lines
        assert s.m.symbolize(s.m.cpu.rip).startswith("kmalloc+"), stop.text
        line = int(stop.text.split("\t", 1)[0])
        assert body <= line <= at + 2, stop.text
        s.cont()
    else:
        assert stop.reason == "done", stop.text
    # __slab_alloc (the slow path of a fresh kmalloc-512): next from the call of
    # ___slab_alloc goes over it to the local_irq_restore line (the return address
    # starts that inlined body: its call site), step enters it, next stays in it
    call = _line_of("slub.c", "void *object = ___slab_alloc(s, gfp);")
    lines = (KERNEL / "slab" / "slub.c").read_text().splitlines()
    restore = next(i for i in range(call + 1, call + 4) if "local_irq_restore" in lines[i - 1])
    s.break_(f"slub.c:{call}")
    stop = s.call("kmalloc", ["512", "GFP_KERNEL"])
    assert stop.reason == "breakpoint" and f"slub.c:{call}" in stop.text, stop.text
    s.delete()
    stop = s.next()
    assert stop.text == f"{restore}\t\tlocal_irq_restore(flags);", stop.text
    assert s.m.symbolize(s.m.cpu.rip).startswith("__slab_alloc+")
    stop = s.step()
    assert re.match(r"arch_local_irq_restore \(flags=\d+\) at \S+irqflags\.h:\d+\n", stop.text), \
        stop.text
    assert s.next().text.endswith("arch_local_irq_enable();")
    s.cont()


def test_finish_reports_the_callers_line(s: DebugSession) -> None:
    s.break_("kmalloc_other")
    s.call("kmalloc", ["256", "GFP_KERNEL"])  # above 192 bytes: kmalloc calls kmalloc_other
    stop = s.finish()
    assert stop.reason == "finish"
    # back at the return address, in kmalloc right after its call: that pc begins the
    # row of kmalloc's closing brace, the line gdb shows (not the call's, as bt would)
    back = s.m.cpu.rip
    assert s.m.symbolize(back).startswith("kmalloc+")
    lines = (KERNEL / "slab" / "slub.c").read_text().splitlines()
    start = _line_of("slub.c", "void *kmalloc(size_t size, gfp_t gfp)")
    end = next(i for i in range(start, len(lines) + 1) if lines[i - 1] == "}")
    assert s.m.lines.lookup(back).line == end
    where = stop.text.splitlines()[1]
    # gdb 13 on kmemu's stub: "0x... in kmalloc (size=<optimized out>, ...) at ...:115"
    assert re.match(rf"0x{back:016x} in kmalloc \(size=.*\) at \S*slub\.c:{end}$",
                    where), stop.text
    assert stop.text.splitlines()[2].startswith(f"{end}\t}}")


@pytest.mark.parametrize("how", ["stepi", "step", "next"])
def test_stepping_whole_calls_matches_plain_runs(machine: Machine, s: DebugSession,
                                                 how: str) -> None:
    snap = machine.snapshot()
    calls = [("kmalloc", 64, GFP_KERNEL), ("kmalloc", 5000, GFP_KERNEL),
             ("vmalloc", 8192), ("kmemu_test_add", 1, 2, 3, 4, 5, 6)]
    ref = [machine.call(*c) for c in calls]
    ref_ram = machine.read_phys(0, 64 << 20)
    machine.restore(snap)
    got = []
    for fn, *args in calls:
        s.queue_call(fn, [str(a) for a in args])
        s.stepi()  # to the function's first instruction
        for _ in range(20000):
            stop = getattr(s, how)()
            if stop.reason != "step":
                break
        assert stop.reason == "done", stop.text
        got.append(stop.value)
    assert got == ref and machine.read_phys(0, 64 << 20) == ref_ram


def test_snapshots_around_a_stopped_call(s: DebugSession) -> None:
    s.snapshot("idle")
    s.break_("kmalloc")
    s.break_("kfree")
    s.call("kmalloc", ["64", "GFP_KERNEL"])
    s.snapshot("in_kmalloc")
    ptr = s.cont().value
    assert s.call("kfree", [hex(ptr)]).reason == "breakpoint"  # another call stopped
    assert "stopped at kmalloc" in s.restore("in_kmalloc")
    assert s.cont().value == ptr
    s.restore("idle")  # older: discards in_kmalloc
    assert list(s.snapshots) == ["idle"] and s.call_in_progress is None
    with pytest.raises(KmemuError, match="no snapshot named"):
        s.restore("in_kmalloc")
    assert s.call("kmalloc", ["64", "GFP_KERNEL"]).reason == "breakpoint"
    assert s.cont().value == ptr


def test_irq_context_call_stops_and_steps(s: DebugSession) -> None:
    s.break_("kmemu_test_add")
    stop = s.call("kmemu_test_add", ["1", "2", "3", "4", "5", "6"], context="irq")
    assert stop.reason == "breakpoint"
    assert "[interrupted by vector 0xec]" in s.backtrace()
    fin = s.finish()
    assert fin.reason == "finish" and fin.value == 91 and "call_irq_handler" in fin.text
    assert s.next().reason == "step"
    done = s.cont()
    assert done.reason == "done" and done.value == 91
    assert s.call("kmemu_test_context", []).value == 0


@pytest.mark.parametrize("how", ["stepi", "step", "next", "finish"])
def test_oops_while_stepping(s: DebugSession, how: str) -> None:
    s.break_("kmemu_test_fault")
    s.call("kmemu_test_fault", ["0", "0"])
    for _ in range(2000):
        stop = getattr(s, how)()
        if stop.reason != "step":
            break
    else:
        s.kill()
        return  # stepi through the oops printing takes longer; no error on the way
    assert stop.reason == "oops" and "NULL pointer dereference" in stop.text
    assert s.call("kmemu_test_add", ["1", "2", "3", "4", "5", "6"]).value == 91


def test_stepping_over_hlt_in_a_sleeping_allocation(machine: Machine, s: DebugSession) -> None:
    from tests.mm.helpers import empty_zone

    for name in ("DMA32", "DMA"):
        empty_zone(machine, name)
    s.break_("mm_wait_for_memory")
    s.call("__get_free_pages", [hex(GFP_KERNEL | 0x8000), "0"])  # __GFP_NOFAIL
    s.delete()
    for _ in range(100):  # through host_ctl(SLEEP), sti and hlt
        prev = machine.read_virt(machine.cpu.rip, 1)
        assert s.stepi().reason == "step"
        if prev == b"\xf4":
            break
    else:
        pytest.fail("no hlt")
    stop = s.cont()
    assert stop.reason == "error" and "waiting for memory" in stop.text
    assert "the call is stopped there" in stop.text  # not silently abandoned
    assert "abandoned where it was" in s.kill()  # it waits again: gdb's kill must end it
    assert s.call("kmemu_test_add", ["1", "2", "3", "4", "5", "6"]).value == 91


def test_interrupt_suspends_and_stepping_goes_on(machine: Machine, s: DebugSession) -> None:
    import threading

    s.queue_call("kmemu_test_spin", ["0"])
    threading.Timer(0.2, s.interrupt).start()
    stop = s.cont()
    assert stop.reason == "interrupted"
    assert s.next().reason == "step"
    assert "abandoned" in s.kill()
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91


def test_segment_register_write_does_not_break_the_machine(s: DebugSession) -> None:
    from emu.frontend.gdbstub.target import MachineTarget

    t = MachineTarget(s)
    s.break_("kmemu_test_add")
    s.call("kmemu_test_add", ["1", "2", "3", "4", "5", "6"])
    try:
        t.write_register("ss", 0x2B)  # gdb: set $ss = 0x2b
    except KmemuError:
        pass  # refusing is fine
    s.kill()
    s.delete()
    stop = s.call("kmemu_test_add", ["1", "2", "3", "4", "5", "6"], context="irq")
    assert stop.reason == "done", stop.text  # actual: #GP oops in common_entry's iretq
