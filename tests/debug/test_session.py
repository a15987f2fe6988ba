"""DebugSession: what both debugger front ends drive."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emu.core.errors import KmemuError
from emu.debug.session import DebugSession, SessionError


@pytest.fixture
def s(debug_session: DebugSession) -> DebugSession:
    return debug_session  # the plugin's fixture, under a short name


def test_break_call_next_finish_cont(s: DebugSession) -> None:
    bp = s.break_("kmalloc")
    stop = s.call("kmalloc", ["64", "GFP_KERNEL"])
    assert stop.reason == "breakpoint" and stop.point == bp.number
    assert re.match(r"Breakpoint 1, kmalloc \(size=64, gfp=3264\) at \S*slub\.c:\d+\n\d+\t",
                    stop.text), stop.text
    nxt = s.next()
    assert nxt.reason == "step" and re.match(r"\d+\t", nxt.text)
    done = s.finish()
    assert done.reason == "done" and done.value >= 0xFFFF888000000000
    assert s.call_in_progress is None and bp.hits == 1
    assert "breakpoint already hit 1 time" in s.info_breakpoints()


def test_temporary_and_conditional_breakpoints(s: DebugSession) -> None:
    s.break_("kmalloc", condition="size > 1000")
    assert s.call("kmalloc", ["64", "GFP_KERNEL"]).reason == "done"
    stop = s.call("kmalloc", ["4000", "GFP_KERNEL"])
    assert stop.reason == "breakpoint"
    assert s.cont().reason == "done"
    s.delete()
    t = s.break_("kfree", temporary=True)
    ptr = s.call("kmalloc", ["8", "GFP_KERNEL"]).value
    assert s.call("kfree", [hex(ptr)]).text.startswith(f"Temporary breakpoint {t.number}, kfree")
    assert t.number not in s.points
    assert s.cont().reason == "done"
    assert "stop only if" not in s.info_breakpoints()


def test_watch_an_expression(s: DebugSession) -> None:
    s.call("kmalloc", ["64", "GFP_KERNEL"])
    w = s.watch("kmalloc_caches[0][6]->cpu_slab.alloc_fast")
    stop = s.call("kmalloc", ["64", "GFP_KERNEL"])
    assert stop.reason == "watchpoint" and stop.point == w.number
    assert re.search(r"Old value = (\d+)\nNew value = (\d+)", stop.text)
    assert stop.watch.new == stop.watch.old + 1
    assert "hw watchpoint" in s.info_breakpoints()
    assert s.cont().reason == "done"


def test_queued_call_and_stepi_into_it(s: DebugSession) -> None:
    assert s.cont().reason == "idle"
    msg = s.queue_call("kmemu_test_add", ["1", "2", "3", "4", "5", "6"])
    assert "queued" in msg
    stop = s.stepi()
    assert s.m.cpu.rip == s.m.symbol("kmemu_test_add") and stop.reason == "step"
    assert s.cont().value == 91


def test_monitor_views(s: DebugSession) -> None:
    assert s.monitor("buddyinfo").startswith("Node 0, zone")
    assert "kmalloc-64" in s.monitor("slabinfo")
    assert "PGD" in s.monitor("pt zones")
    with pytest.raises(KmemuError, match="unknown monitor command"):
        s.monitor("frobnicate")
    with pytest.raises(KmemuError, match="usage: pt ADDR"):
        s.monitor("pt")
    with pytest.raises(KmemuError, match="takes no arguments"):
        s.monitor("slabinfo extra")


def test_snapshots_by_name(s: DebugSession) -> None:
    s.break_("kmalloc")
    s.call("kmalloc", ["64", "GFP_KERNEL"])
    assert "inside the stopped call" in s.snapshot("in_kmalloc")
    first = s.cont().value
    assert "stopped at kmalloc" in s.restore("in_kmalloc")
    assert s.cont().value == first
    with pytest.raises(SessionError, match="no snapshot named 'nope'"):
        s.restore("nope")
    with pytest.raises(KmemuError, match="snapshot names"):
        s.snapshot("bad name")


def test_errors_leave_the_session_usable(s: DebugSession) -> None:
    with pytest.raises(SessionError, match="idle"):
        s.next()
    with pytest.raises(KmemuError):
        s.break_("no_such_function")
    with pytest.raises(KmemuError):
        s.call("kmalloc", ["64"])  # wrong arity
    with pytest.raises(KmemuError):
        s.call("kmalloc", ["64", "GFP_BOGUS"])
    with pytest.raises(KmemuError):
        s.watch("1 + 2")  # not an lvalue
    with pytest.raises(SessionError, match="No breakpoint number 42."):
        s.delete([42])
    s.break_("kmalloc")
    s.call("kmalloc", ["64", "GFP_KERNEL"])
    with pytest.raises(SessionError, match="a call is stopped"):
        s.call("kmalloc", ["64", "GFP_KERNEL"])
    assert "ran to its end" in s.kill()  # abandoning kmalloc halfway could leave a lock held
    assert s.call("kmemu_test_add", ["1", "2", "3", "4", "5", "6"]).value == 91


def test_oops_during_a_call_is_a_stop(s: DebugSession) -> None:
    stop = s.call("kmemu_test_fault", ["0", "0"])
    assert stop.reason == "oops" and "oops" in stop.text.lower()
    assert s.call("kmemu_test_add", ["1", "2", "3", "4", "5", "6"]).value == 91


def test_ignore_condition_enable_disable(s: DebugSession) -> None:
    """gdb's ignore counts hits without stopping; a disabled breakpoint is not hit."""
    p = s.break_("kmalloc")
    assert s.ignore(p.number, 2) == f"Will ignore next 2 crossings of breakpoint {p.number}."
    for _ in range(2):
        assert s.call("kmalloc", ["64", "GFP_KERNEL"]).reason == "done"
    assert s.call("kmalloc", ["64", "GFP_KERNEL"]).reason == "breakpoint"
    assert p.hits == 3
    s.cont()
    s.enable([p.number], on=False)
    assert s.call("kmalloc", ["64", "GFP_KERNEL"]).reason == "done" and p.hits == 3
    assert "keep n" in s.info_breakpoints()
    s.enable()
    s.condition(p.number, "size > 100")
    assert s.call("kmalloc", ["64", "GFP_KERNEL"]).reason == "done"
    assert s.call("kmalloc", ["200", "GFP_KERNEL"]).reason == "breakpoint"
    assert s.condition(p.number) == f"Breakpoint {p.number} now unconditional."
    s.cont()
    with pytest.raises(KmemuError, match="No breakpoint number 99."):
        s.ignore(99, 1)


def test_stepi_n_stops_at_a_breakpoint_it_lands_on(s: DebugSession) -> None:
    """Issue 13 bug 1: `stepi 100` in a loop stops at a breakpoint inside it."""
    s.break_("kmemu_test_spin")
    s.call("kmemu_test_spin", ["0"])
    src = (Path(__file__).resolve().parents[2] / "kernel" / "irq.c").read_text().splitlines()
    start = next(i for i, t in enumerate(src) if "kmemu_test_spin(" in t)
    line = next(i for i in range(start, len(src)) if src[i].strip() == "i++;") + 1
    p = s.break_(f"*{s.m.lines.address('irq.c', line):#x}")  # the loop body
    stop = s.stepi(100)
    assert stop.reason == "breakpoint" and stop.point == p.number and p.hits == 1, stop.text
    assert stop.text.startswith(f"Breakpoint {p.number}, kmemu_test_spin (n=0) at ")
    s.kill()


def test_watch_stops_after_a_cmpxchg16b_write(s: DebugSession) -> None:
    """The SLUB fast path commits (freelist, tid) with cmpxchg16b; a watch on the
    freelist stops right after that instruction, as the CPU's debug trap would, with
    the old and new heads; without stopping watches the guard hooks are gone."""
    s.call("kmalloc", ["64", "GFP_KERNEL"])
    head = int(s.m.var("kmalloc_caches")[0][6].cpu_slab.freelist)
    w = s.watch("kmalloc_caches[0][6]->cpu_slab.freelist")
    assert s.m._pair_guard is not None and s.m._pair_guard.hooks  # noqa: SLF001
    stop = s.call("kmalloc", ["64", "GFP_KERNEL"])
    assert stop.reason == "watchpoint" and stop.point == w.number
    assert stop.watch.old == head and stop.watch.new != head
    prev = s.m.read_virt(stop.watch.rip, 4)
    assert prev[1:3] == b"\x0f\xc7"  # the access's instruction: cmpxchg16b
    assert s.m.cpu.rip > stop.watch.rip  # stopped after it
    assert s.cont().value == head  # the popped object is the call's result
    s.delete([w.number])
    assert s.m._pair_guard is None  # noqa: SLF001
