"""Review of frame variables (issue 6): values checked against what the C code says
they must be, in frames above interrupts and exceptions, in loops, after Ctrl-C, and
the REPL's frame commands end to end."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

import pytest

from emu import Machine
from emu.core.errors import KmemuError
from emu.debug.session import DebugSession, SessionError
from emu.frontend.debugger.repl import Repl
from tests.debug.test_frame_variables import interrupted_kmalloc

SLAB_VECTOR = 0x32  # mm_test.c: slab_irq_handler kmallocs slab_irq_size (64) bytes
KERNEL = Path(__file__).resolve().parents[2] / "kernel"


def _line_of(file: str, text: str) -> int:
    lines = (KERNEL / file).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def _vars(machine: Machine, level: int) -> dict:
    return {v.name: v.value for v in machine.frame_variables(level)}


def _present(obj) -> int | None:
    return None if obj.absent_ else int(obj.value_())


def _interrupted_kmalloc(machine: Machine, want: str, with_var: str | None = None):
    """Stop in kfree inside the slab vector's handler, raised during kmalloc(100), with
    ``want`` a frame above the trap frame (and ``with_var`` visible in it, when given);
    returns (call, frames, trap level)."""
    def accept(frames, trap) -> bool:
        return any(f.function == want and (with_var is None or with_var in {
            v.name for v in machine.frame_variables(f.level)}) for f in frames[trap + 1:])

    return interrupted_kmalloc(machine, 100, "kfree", accept, range(1, 400, 3))


def test_frames_above_an_interrupt_show_the_interrupted_call_not_the_handler(
        machine: Machine) -> None:
    # interrupted inside the slab_alloc that kmalloc inlines (its s in scope)
    call, frames, trap = _interrupted_kmalloc(machine, "kmalloc", with_var="s")
    # below the trap frame: the handler's kfree of its own 64-byte object
    p = _vars(machine, 0)["p"]
    assert machine.find_object(int(p)).cache == "kmalloc-64"
    level = next(f.level for f in frames[trap + 1:] if f.function == "kmalloc")
    v = _vars(machine, level)
    assert _present(v["size"]) in (None, 100)  # the interrupted call's size, not 64
    assert _present(v["gfp"]) in (None, 0xCC0)
    s = v["s"]  # optimized out at some interrupted pcs of the fast path; never kmalloc-64
    assert s.absent_ or s.name.string_().decode() == "kmalloc-128"
    assert _vars(machine, len(frames) - 1) == {}  # the trampoline: assembly
    assert call.resume() >= 0xFFFF888000000000


def test_finish_of_a_frame_above_an_interrupt_returns_into_its_caller(
        debug_session: DebugSession) -> None:
    s = debug_session
    _interrupted_kmalloc(s.m, "___slab_alloc")
    level = next(f.level for f in s.frames() if f.function == "___slab_alloc")
    head = s.select_frame(level)
    assert head.startswith(f"#{level}  0x") and " in ___slab_alloc (s=s@entry=0x" in head
    stop = s.finish()
    assert stop.reason == "finish", stop.text
    assert stop.text.startswith(f"Run till exit from #{level}  ")
    assert "Value returned is $1 = (void *) 0xffff888" in stop.text
    assert s.m.symbolize(s.m.cpu.rip).startswith("__slab_alloc+")  # its caller (Linux's frames)
    assert all(f.found_by != "trap frame" for f in s.m.backtrace())  # the IRQ is over
    assert s.frame_level == 0
    assert s.cont().reason == "done"


def test_an_exception_frame_shows_the_faulting_functions_variables(
        debug_session: DebugSession) -> None:
    s = debug_session
    s.break_("die")
    stop = s.call("kmemu_test_fault", ["0x1234", "1"])
    assert stop.reason == "breakpoint" and stop.text.startswith("Breakpoint 1, die (r=r@entry=0x")
    frames = s.m.backtrace()
    trap = next(f for f in frames if f.found_by == "trap frame")
    assert trap.function == "kmemu_test_fault" and trap.vector == 14
    assert s.evaluate("r->rip").value_() == trap.pc  # die's own argument, frame 0
    s.select_frame(trap.level)
    assert s.info_variables(True) == "addr = 4660\nwrite = 1"
    assert s.info_variables(False) == "p = 0x1234"
    assert s.print_expr("p").endswith("= (volatile u64 *) 0x1234")
    with pytest.raises(KmemuError, match="^Cannot access memory at address 0x1234$"):
        s.print_expr("*p")
    assert s.evaluate("$rip").value_() == trap.pc
    assert s.evaluate("$rdi").value_() == 0x1234  # every register of a trap frame is known


def test_a_condition_sees_a_loop_counter_and_its_value_follows_the_loop(
        debug_session: DebugSession) -> None:
    s = debug_session
    line = _line_of("mm_test.c", "struct page *p = alloc_pages((gfp_t)gfp, (unsigned int)order);")
    s.break_(f"mm_test.c:{line}", condition="got == 3")
    stop = s.call("kmemu_test_hoard", ["10", "GFP_KERNEL", "0"])
    assert stop.reason == "breakpoint" and f"mm_test.c:{line}" in stop.text
    assert "got = 3" in s.info_variables(False).splitlines()
    assert "n = 10" in s.info_variables(True).splitlines()
    s.delete()
    s.break_(f"mm_test.c:{line}", condition="got > 6 && n == 10")
    assert s.cont().reason == "breakpoint"
    assert s.evaluate("got").value_() == 7
    s.delete()
    assert s.finish().value == 10
    s.call("kmemu_test_hoard_release", ["100"])


def test_caller_frame_values_match_the_c_code(debug_session: DebugSession) -> None:
    s = debug_session
    s.break_("get_page_from_freelist")
    stop = s.call("alloc_pages", ["GFP_KERNEL", "2"])
    # alloc_flags = ALLOC_WMARK_LOW | ALLOC_KSWAPD (GFP_KERNEL's __GFP_KSWAPD_RECLAIM),
    # no ALLOC_NOFRAGMENT: 256 MiB has no Normal zone, DMA32 is the first one tried
    assert stop.text.startswith("Breakpoint 1, get_page_from_freelist (gfp=gfp@entry=3264, "
                                "order=order@entry=2, alloc_flags=2049, "
                                "highest_zoneidx=highest_zoneidx@entry=2) at /")
    assert s.info_variables(True).splitlines() == [
        "gfp = 3264", "order = 2", "alloc_flags = 2049",
        "highest_zoneidx = 2"]
    assert s.m.backtrace()[1].function == "__alloc_pages_general"
    # gdb's frame 1 is alloc_pages_body, inlined into __alloc_pages_general (frame 2)
    assert s.move_frame(1).startswith("#1  0x") and s.frames()[1].inline
    # alloc_pages_body: hz = gfp_zone(GFP_KERNEL) = ZONE_NORMAL
    assert s.print_expr("hz") == "$1 = 2"
    assert s.print_expr("order") == "$2 = 2"
    assert s.print_expr("gfp", hex=True) == "$3 = 0xcc0"
    assert s.move_frame(1).startswith("#2  __alloc_pages_general (")
    with pytest.raises(KmemuError, match='No symbol "hz"'):  # the caller's scope, as gdb
        s.evaluate("hz")
    stop = s.finish()  # out of the selected frame, back into __alloc_pages
    assert stop.reason == "finish" and stop.value >= 0xFFFFEA0000000000, stop.text
    assert re.search(r"in (__)?alloc_pages \(gfp=.*\) at \S*page_alloc\.c:\d+$",
                     stop.text.splitlines()[1]), stop.text
    page = stop.value  # a struct page *
    stop = s.finish()
    assert stop.reason == "done" and stop.value == page


def test_interrupt_at_idle_frame_variables(debug_session: DebugSession) -> None:
    s = debug_session
    s.break_("test_irq_handler")
    stop = s.irq(0x30)
    assert stop.reason == "breakpoint"
    frames = s.m.backtrace()
    trap = frames[-1]
    assert trap.found_by == "trap frame" and trap.function == "kmemu_idle_loop"
    assert s.evaluate("regs->vector").value_() == 0x30
    assert s.evaluate("regs->rip").value_() == trap.pc
    assert s.info_variables(False) == f"r = {s.m.symbol('irq_test_record'):#x} <irq_test_record>"
    s.select_frame(trap.level)
    assert s.info_variables(False) == "No locals." and s.info_variables(True) == "No arguments."
    with pytest.raises(SessionError, match="cannot go up"):
        s.move_frame(1)
    assert s.cont().reason == "done"


def test_ctrl_c_stop_shows_the_spinning_loops_variables(debug_session: DebugSession) -> None:
    s = debug_session
    threading.Timer(0.2, s.interrupt).start()
    stop = s.call("kmemu_test_spin", ["0"])
    assert stop.reason == "interrupted" and "kmemu_test_spin (n=0)" in stop.text
    i = s.evaluate("i").value_()
    assert i > 0 and s.evaluate("n").value_() == 0
    assert s.value_of("i >= 1") == 1
    s.select_frame(1)
    threading.Timer(0.2, s.interrupt).start()
    assert s.cont().reason == "interrupted"
    assert s.frame_level == 0  # the run selected frame 0 again
    assert s.evaluate("i").value_() > i
    assert "abandoned" in s.kill()


def test_repl_frame_commands_and_numbering_agree_with_bt(machine: Machine) -> None:
    buf = io.StringIO()
    repl = Repl(DebugSession(machine), buf, interactive=False)

    def run(line: str) -> str:
        start = buf.tell()
        repl.execute(line)
        return buf.getvalue()[start:]

    try:
        run("break ___slab_alloc")
        run("call kmalloc 64 GFP_KERNEL")
        bt = run("bt").splitlines()
        assert len(bt) >= 4
        for n, line in enumerate(bt):
            assert run(f"frame {n}").splitlines()[0] == line
        assert run("frame").splitlines()[0] == bt[-1]
        assert run("up").startswith("error: Initial frame selected; you cannot go up.")
        assert run("down 2").splitlines()[0] == bt[-3]
        assert run("frame 99").startswith("error: No frame at level 99.")
        assert run("frame").splitlines()[0] == bt[-3]  # a failed selection keeps it
        assert run("frame 1").splitlines()[0] == bt[1]  # __slab_alloc, the slow path
        assert " in __slab_alloc (" in bt[1]
        assert "orig_size = 64" in run("info args").splitlines()
        assert run("p orig_size").startswith("$")
        assert run("p/x s->size").endswith("0x40\n")
        out = run("info locals")  # flags: local_irq_save's, kept in a callee-saved register
        assert "internal error" not in out and out.startswith("flags = ")
        assert int(run("p flags").split(" = ")[1]) & 0x202 == 0x202  # EFLAGS.IF and bit 1
        assert run("down").splitlines()[0] == bt[0]
        assert run("down").startswith("error: Bottom (innermost) frame selected")
        assert "internal error" not in buf.getvalue()
    finally:
        repl.s.kill()
        repl.s.delete()
        machine.suspend_on_interrupt = False


def test_idle_frame_commands(debug_session: DebugSession) -> None:
    s = debug_session
    assert s.select_frame(0).startswith("#0  kmemu_idle_loop () at ")
    with pytest.raises(SessionError, match="cannot go down"):
        s.move_frame(-1)
    with pytest.raises(SessionError, match=r"^No frame at level 1\.$"):
        s.select_frame(1)
    assert s.variables() == []
    assert re.fullmatch(r"\$1 = 0", s.print_expr("preempt_count"))
