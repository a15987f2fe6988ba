"""Repl.execute against a real booted machine (the `machine` fixture), in-process."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu import Machine
from emu.debug.session import DebugSession
from emu.frontend.debugger.repl import Repl
from emu.kernel.disasm import disassemble_function


class Run:
    """A Repl writing to a buffer; ``run(line)`` returns what that line printed."""

    def __init__(self, m: Machine, interactive: bool = False) -> None:
        self.m = m
        self.buf = io.StringIO()
        self.repl = Repl(DebugSession(m), self.buf, interactive=interactive)

    def __call__(self, line: str) -> str:
        start = self.buf.tell()
        self.repl.execute(line)
        return self.buf.getvalue()[start:]


@pytest.fixture
def run(machine: Machine) -> Iterator[Run]:
    # the allocators' fast paths (debug checks off), as tests/debug: kmalloc's own frame
    machine.alloc_debug(might_sleep=False, bad_page=False)
    r = Run(machine)
    yield r
    r.repl.s.kill()
    r.repl.s.delete()
    machine.suspend_on_interrupt = False


def one_error(text: str, fragment: str) -> None:
    assert text.startswith("error: ") and fragment in text, text
    assert len(text.splitlines()) == 1, text


def test_break_call_finish_and_whatis_the_result(run: Run) -> None:
    assert re.fullmatch(r"Breakpoint 1 at 0xffffffff[0-9a-f]+: file \S*slub\.c, line \d+\.\n",
                        run("break kmalloc"))
    stop = run("call kmalloc 64 GFP_KERNEL")
    assert re.match(r"Breakpoint 1, kmalloc \(size=64, gfp=3264\) at \S*slub\.c:\d+\n\d+\t",
                    stop), stop
    assert re.match(r"#0  kmalloc \(size=64, gfp=3264\) at \S*slub\.c:\d+\n#1 .*"
                    r"kmemu_call_return \(\)", run("bt"))
    done = run("finish")
    ptr = int(re.search(r"kmalloc\(\) returned (0x[0-9a-f]+)", done).group(1), 16)
    assert run.repl.value == ptr
    what = run("identify $")
    assert what.startswith(f"{ptr:#x}: direct map") and "kmalloc-64 object" in what
    assert run("p/x $") == f"$2 = {ptr:#x}\n"  # finish put the value in $1
    assert run.repl.failures == 0


def test_errors_are_one_line_and_the_session_goes_on(run: Run) -> None:
    one_error(run("frobnicate"), "unknown command 'frobnicate'")
    one_error(run("x/4xg 0"), "Cannot access memory at address 0x0")
    one_error(run("p zones["), "syntax error")
    one_error(run("p no_such_variable"), "no_such_variable")
    one_error(run("break no_such_function"), 'Function "no_such_function" not defined.')
    one_error(run("break kmallco"), 'Function "kmallco" not defined. (similar: kmalloc')
    one_error(run("break slub.c:99999"), 'No line 99999 in file "slub.c".')
    one_error(run("break nosuch.c:1"), "No source file named nosuch.c.")
    one_error(run("next"), "the kernel is idle")
    one_error(run("continue"), "The kernel is idle")
    one_error(run("finish"), "the kernel is idle")
    one_error(run("call kmalloc 64"), "kmalloc")
    one_error(run("call kmalloc 64 GFP_BOGUS"), "GFP_BOGUS")
    one_error(run("watch 1 + 2"), "cannot watch")
    one_error(run("delete 42"), "No breakpoint number 42.")
    one_error(run("identify $"), "'$' is the last value printed or returned by a call")
    one_error(run("restore nope"), "no snapshot named 'nope'")
    one_error(run("disas no_such_function"), "no_such_function")
    one_error(run("list no_such_function"), "no_such_function")
    one_error(run("info registers xmm0"), "invalid register 'xmm0'")
    one_error(run("pt"), "pt needs an address")
    one_error(run("x/s 0xffffc90000000000"), "Cannot access memory")
    assert run.repl.failures == 22
    assert "returned 0x5b (91)" in run("call kmemu_test_add 1 2 3 4 5 6")


def test_a_bug_is_an_internal_error_line_and_the_session_goes_on(
        run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object) -> str:
        raise RuntimeError("boom\nsecond line")
    monkeypatch.setattr(run.repl.s, "monitor", boom)
    assert run("slabinfo") == "internal error: RuntimeError: boom\n"
    monkeypatch.undo()
    assert "kmalloc-64" in run("slabinfo")


def test_step_next_stepi_nexti_until(run: Run) -> None:
    run("break kmalloc")
    run("call kmalloc 256 GFP_KERNEL")  # above 192 bytes: three lines, then kmalloc_other
    first = run("next")
    assert re.fullmatch(r"\d+\t.*\n", first)
    line = run("stepi")
    assert re.match(r"0x[0-9a-f]+ in kmalloc \([^)]*\) at \S*slub\.c:\d+\n", line) or \
        re.fullmatch(r"\d+\t.*\n", line)
    assert re.match(r"kmalloc_other \(.*\) at \S*slub\.c:\d+\n\d+\t",
                    run("until kmalloc_other"))
    assert re.fullmatch(r"\d+\t.*\n", run("until"))  # kmalloc_other's next line
    assert "returned" in run("continue")
    assert run.repl.failures == 0


def test_nexti_runs_over_a_call(run: Run, machine: Machine) -> None:
    insns = disassemble_function(machine.read_virt, machine.symbols, "kmalloc")
    call = next(i for i in insns if i.mnemonic == "call" and "kmalloc_other" in i.text)
    run(f"break *{call.address:#x}")
    assert "Breakpoint 1, " in run("call kmalloc 256 GFP_KERNEL")  # above 192: kmalloc_other
    assert machine.cpu.rip == call.address
    run("nexti")
    assert machine.cpu.rip == call.address + call.size
    assert run.repl.s.call_in_progress is not None  # still in kmalloc, after the callee
    assert "returned" in run("continue")
    assert run.repl.failures == 0


def test_empty_line_repeats_only_interactively(machine: Machine) -> None:
    run = Run(machine, interactive=True)
    try:
        run("break kmalloc")
        run("call kmalloc 256 GFP_KERNEL")  # above 192 bytes: kmalloc has three lines to walk
        a = run("next")
        b = run("")
        assert re.fullmatch(r"\d+\t.*\n", b) and a != b
        run("x/2xg $rsp")
        more = run("")
        rsp = machine.cpu.reg("rsp")
        assert more.startswith(f"{rsp + 16:#x}")
        run("finish")
        assert run("") == ""  # finish does not repeat
        batch = Run(machine)
        assert batch("") == "" and batch.repl.failures == 0
    finally:
        run.repl.s.kill()
        run.repl.s.delete()
        machine.suspend_on_interrupt = False


def test_examine_and_disassemble_and_list(run: Run, machine: Machine) -> None:
    run("break kmalloc")
    run("call kmalloc 64 GFP_KERNEL")
    rip = machine.cpu.rip
    x = run("x/4i $rip")
    assert x.startswith(f"=> {rip:#018x} <kmalloc>:\t") and len(x.splitlines()) == 4
    dis = run("disas")
    assert dis.startswith("Dump of assembler code for function kmalloc:\n")
    assert f"=> {rip:#018x} <+0>:" in dis and dis.endswith("End of assembler dump.\n")
    rng = run(f"disas {rip:#x},+8")
    assert rng.startswith(f"Dump of assembler code from {rip:#x} to {rip + 8:#x}:")
    stack = run("x/2xg $rsp")
    ret = machine.read_u64(machine.cpu.reg("rsp"))
    assert stack.startswith(f"{machine.cpu.reg('rsp'):#x}:\t0x{ret:016x}\t")
    assert "<kmemu_call_return+1>" in run("x/a $rsp")
    assert run("x/s kmalloc_caches[0][6]->name").endswith('"kmalloc-64"\n')
    src = run("list")
    assert "void *kmalloc(size_t size, gfp_t gfp)" in src
    last = int(src.splitlines()[-1].split("\t")[0])
    more = run("list")
    assert more.startswith(f"{last + 1}\t")
    assert run.repl.failures == 0


def test_info_print_ptype_and_views(run: Run, machine: Machine) -> None:
    regs = run("info registers rip rsp")
    assert regs.startswith(f"rip            {machine.cpu.rip:#x}") and "rsp" in regs
    free = int(machine.var("zones")[1].free_area[10].nr_free)
    assert run("p zones[1].free_area[10].nr_free") == f"$1 = {free}\n"
    assert run("p/x zones[1].free_area[10].nr_free") == f"$2 = {free:#x}\n"
    buddy = run("buddyinfo")
    assert re.search(rf"zone\s+DMA32(\s+\d+){{10}}\s+{free}\s*$", buddy, re.M), buddy
    assert run("ptype struct kmem_cache").startswith("type = struct kmem_cache {")
    assert run("ptype zones[1].free_area[0].nr_free") == "type = unsigned long long\n"
    assert "PGD" in run("pt zones")
    assert "zones" in run("identify &zones[1]")
    for view in ("slabinfo", "slabtop", "zoneinfo", "pagetypeinfo"):
        assert run(view).strip(), view
    assert run("vmallocinfo") == ""  # no area at boot
    run("call vmalloc 8192")
    assert re.match(r"0x[0-9a-f]+-0x[0-9a-f]+\s+12288 ", run("vmallocinfo"))
    assert "Breakpoints and watchpoints:" in run("help")
    assert run("help b").startswith("break [LOCATION] [if COND]")
    assert run("info breakpoints") == "No breakpoints or watchpoints.\n"
    assert run.repl.failures == 0


def test_watch_tbreak_and_conditions(run: Run) -> None:
    run("call kmalloc 64 GFP_KERNEL")  # the first one creates the slab
    assert run("watch kmalloc_caches[0][6]->cpu_slab.alloc_fast") == \
        "Hardware watchpoint 1: kmalloc_caches[0][6]->cpu_slab.alloc_fast\n"
    stop = run("call kmalloc 64 GFP_KERNEL")
    old, new = (int(v) for v in re.search(r"Old value = (\d+)\nNew value = (\d+)",
                                                stop).groups())
    assert new == old + 1
    assert "returned" in run("continue")
    run("delete 1")
    assert run("tbreak kfree").startswith("Temporary breakpoint 2 at ")
    assert run("call kfree $").startswith("Temporary breakpoint 2, kfree")
    assert "returned" in run("continue")
    run("break kmalloc if size > 1000")
    assert "returned" in run("call kmalloc 64 GFP_KERNEL")
    assert run("call kmalloc 2000 GFP_KERNEL").startswith("Breakpoint 3, kmalloc")
    assert "stop only if size > 1000" in run("info breakpoints")
    assert run.repl.failures == 0


def test_snapshot_restore_and_kill(run: Run) -> None:
    run("snapshot idle")
    first = run("call kmalloc 64 GFP_KERNEL")
    run("restore idle")
    assert run("call kmalloc 64 GFP_KERNEL") == first  # deterministic guest
    run("break kmalloc")
    run("call kmalloc 64 GFP_KERNEL")
    assert "ran to its end" in run("kill")  # dropped halfway, kmalloc could hold a lock
    assert run.repl.s.call_in_progress is None
    assert run.repl.failures == 0


def test_irq_at_idle_and_a_breakpoint_in_its_handler(run: Run, machine: Machine) -> None:
    before = int(machine.var("irq_count")[0x30])
    assert run("irq 0x30") == "IRQ 0x30 delivered; the kernel is idle\n"
    assert int(machine.var("irq_count")[0x30]) == before + 1
    run("break test_irq_handler")
    assert run("irq 0x30").startswith("Breakpoint 1, test_irq_handler (regs=")
    assert "[interrupted by vector 0x30]" in run("bt")
    # inside a stopped call an interrupt is pending until the code runs with IF set: the
    # handler runs with interrupts off, so it is taken at idle, and stops there again
    assert run("irq 0x30") == ("IRQ 0x30 pending: delivered when irq 0x30() runs on with "
                               "interrupts enabled (interrupts are disabled here: it waits "
                               "until they are enabled)\n")
    assert run("continue").startswith("IRQ 0x30 handled; the kernel is idle\n"
                                      "Breakpoint 1, test_irq_handler (regs=")
    assert "the kernel is idle" in run("continue")
    assert int(machine.var("irq_count")[0x30]) == before + 3
    run("delete")
    run("break kmalloc")
    run("call kmalloc 8 GFP_KERNEL")
    assert run("irq 0x30").startswith("IRQ 0x30 pending: delivered when kmalloc() runs on")
    assert "returned 0xffff888" in run("continue")
    assert int(machine.var("irq_count")[0x30]) == before + 4
    assert run.repl.failures == 0


def test_kernel_output_is_shown(run: Run) -> None:
    out = run("call kmemu_test_warn 1")
    assert "WARNING: CPU: 0 PID: 0 at kernel/irq.c" in out
    assert out.rstrip().endswith("returned 0x1 (1); the kernel is idle")
    oops = run("call kmemu_test_fault 0 0")
    assert oops.count("BUG: kernel NULL pointer dereference") == 2  # summary + the log, once
    assert run.repl.failures == 0


INSPECT = st.sampled_from(["p ", "p/x ", "x/2xg ", "x/3i ", "x/s ", "whatis ", "identify ", "pt ",
                           "ptype ", "list ", "disas ", "info registers ", "break ", "watch "])
EXPR = st.text(alphabet=st.sampled_from(list("zones[1].free_area->nr_free*&()+-0x12$rsp "
                                             "kmalloc_caches'\"\\/%<>!~,:")), max_size=30)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(INSPECT, EXPR)
def test_fuzz_inspection_commands_never_break_the_session(run: Run, cmd: str, expr: str) -> None:
    out = run(cmd + expr)
    assert "internal error" not in out, (cmd + expr, out)
    if out.startswith("error: "):
        assert len(out.splitlines()) == 1, out
    run.repl.s.delete()


# Found by the fuzzing above (the engine raised ValueError/TypeError; fixed since).
@pytest.mark.parametrize("line, expected", [
    ("watch kzalloc", "error: cannot watch 'kzalloc'"),  # a function has no size
    ("x/2a 01", "error: Cannot access memory at address 0x1 "),  # 01 is octal, as in C
    ("break 010", "Breakpoint 1 at 0x8\n"),
    ("call kmalloc 064 GFP_KERNEL", "kmalloc() returned 0x"),
])
def test_leading_zeros_and_functions_are_not_internal_errors(run: Run, line: str,
                                                             expected: str) -> None:
    assert run(line).startswith(expected)


# Found by fuzzing run control: two breakpoints at one address pinned the call there.


def test_two_breakpoints_at_one_address_do_not_pin_the_call(run: Run) -> None:
    run("break kmalloc")
    run("break kmalloc")
    assert run("call kmalloc 64 GFP_KERNEL").startswith("Breakpoint 1, kmalloc")
    assert re.fullmatch(r"\d+\t.*\n", run("next")), "next must leave the first line"
    assert "returned" in run("continue")


def test_locals_args_and_frame_selection(run: Run, tmp_path) -> None:
    readline = pytest.importorskip("readline")
    from emu.frontend.debugger.terminal import setup_readline

    setup_readline(run.repl, tmp_path / "history")
    complete = readline.get_completer().__self__.candidates
    assert "slab" not in complete("p ", "sla")  # no such kernel symbol
    run("break ___slab_alloc")
    run("call kmalloc 64 GFP_KERNEL")
    run("step")
    assert "slab" in complete("p ", "sla")  # ___slab_alloc's local variable
    args = run("info args")
    assert re.fullmatch(r"s = 0xffff888[0-9a-f]+\ngfp = 3264\n",
                        args), args
    local = run("info locals")
    assert re.search(r"^c = 0x", local, re.M)
    assert re.search(r"^object = <optimized out>$", local, re.M), local
    assert run("p s->object_size") == "$1 = 64\n"
    up = run("up")  # Linux's two slow-path frames: __slab_alloc -> ___slab_alloc
    assert re.match(r"#1  0x[0-9a-f]+ in __slab_alloc \(s=(s@entry=)?0x[0-9a-f]+, "
                    r"gfp=(gfp@entry=)?3264, orig_size=(orig_size@entry=)?64, "
                    r"caller=(caller@entry=)?\d+\) at \S*slub\.c:\d+\n\d+\t", up), up
    assert run("p orig_size") == "$2 = 64\n"
    assert run("frame").startswith("#1  ")
    # the selected frame's registers, source and code, as gdb shows them
    line = int(re.search(r"at \S*slub\.c:(\d+)", up).group(1))
    assert f"\n{line}\t" in "\n" + run("list")
    regs = run("info registers rip rax")
    assert re.search(r"^rip\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <__slab_alloc\+", regs, re.M), regs
    assert re.search(r"^rax\s+<not saved>$", regs, re.M), regs
    one_error(run("p $rax"), "$rax is not saved in this frame")
    disas = run("disas")
    assert disas.startswith("Dump of assembler code for function __slab_alloc")
    assert "=> 0x" in disas  # the frame's pc is marked
    fast = run("up")  # the fast path that missed, at its call of the slow path: inlined
    assert re.match(r"#2  0x[0-9a-f]+ in slab_alloc_nocheck \(.*\) "
                    r"at \S*slub\.c:\d+\n\d+\t.*__slab_alloc\(", fast), fast
    run("down")
    assert run("up 0").startswith("#1  ") and run("up -1").startswith("#0  ")
    run("up")
    assert "kmemu_call_return" in run("up 99")  # as far as there are frames, like gdb
    one_error(run("up"), "Initial frame selected; you cannot go up.")
    one_error(run("frame 99"), "No frame at level 99.")
    run("frame 1")
    assert run("down").startswith("#0  ")
    one_error(run("down"), "Bottom (innermost) frame selected; you cannot go down.")
    run("frame 1")
    fin = run("finish")
    assert fin.startswith("Run till exit from #1 ") and "Value returned is $" in fin
    assert run("frame").startswith("#0  ")  # the run selected the innermost frame again
    assert "returned 0x" in run("continue")
    assert run("info locals") == "No locals.\n"


def test_display_follows_the_free_list_while_stepping(run: Run) -> None:
    run("break ___slab_alloc")
    run("call kmalloc 64 GFP_KERNEL")
    assert run("display s->cpu_slab.freelist") == "1: s->cpu_slab.freelist = (void *) 0x0\n"
    assert run("display/x gfp") == "2: /x gfp = 0xcc0\n"
    step = run("next")
    assert step.endswith("1: s->cpu_slab.freelist = (void *) 0x0\n2: /x gfp = 0xcc0\n"), step
    assert "2:   y  /x gfp" in run("info display")
    run("undisplay 2")
    fin = run("finish")  # the slow path filled the per-CPU free list
    assert re.search(r"^1: s->cpu_slab.freelist = \(void \*\) 0xffff888[0-9a-f]+$", fin, re.M), fin
    done = run("continue")  # idle: no local s, so nothing is displayed
    assert "returned" in done and "1: " not in done
    one_error(run("undisplay 7"), "No display number 7.")
    one_error(run("display 1 +"), "syntax error")
    # refused, as gdb does
    one_error(run("display nosuchvar"), "No symbol \"nosuchvar\" in current context.")
    one_error(run("display $99"), "history has no $99")
    bad = run("display *(int *)0")  # right but unreadable: kept, shown as an error
    assert re.fullmatch(r"\d+: \*\(int \*\)0 = <error: Cannot access memory at address 0x0>\n", bad)
    run("delete display")
    assert run("info display") == "There are no auto-display expressions now.\n"


def test_bare_dollar_is_the_last_result_outside_quotes_only(run: Run) -> None:
    run("call kmemu_test_add 1 2 3 4 5 6")  # 91
    assert run("p $ + 1") == "$1 = 92\n"
    assert run("p '$'") == "$2 = 36 '$'\n"  # the character, not the result
    assert run("p $$") == "$3 = 92\n"  # gdb's: one back in the value history
    assert run("p $1 * 2") == "$4 = 184\n"
    assert run("p $") == "$5 = 184\n"  # now the last value printed, as in gdb
    assert run("p $$3") == "$6 = 36 '$'\n"
    one_error(run("p $$9"), "History does not go back to $$9.")
