"""The REPL says what gdb says: each command's output in `kmemu debug` compared line by
line with stock gdb's for the same command against `kmemu gdb` (addresses aside).

One gdb session and one REPL session per module run the same script; each test
compares one command's output.  A step is (gdb's commands, the REPL's command):
gdb starts work with ``monitor call`` and ``continue`` where the REPL says ``call``.
Both machines boot with slab_debug on one other cache, so that kmalloc takes the
allocator's hooks path (a real function, slab_alloc_hooks, between inlined bodies;
tests/gdbstub/conftest.py HOOKS_CMDLINE); at the boot defaults it takes none.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from emu.debug.session import DebugSession
from emu.frontend.debugger.repl import Repl
from emu.frontend.pytest_plugin import booted_machine
from tests.gdbstub.conftest import HOOKS_CMDLINE, gdb_sections

#: __slab_alloc's call of ___slab_alloc, followed by the inlined local_irq_restore
SLOW_CALL = next(i for i, line in enumerate(
    (Path(__file__).parents[2] / "kernel" / "slab" / "slub.c").read_text().splitlines(), 1)
    if "void *object = ___slab_alloc(s, gfp);" in line)

#: a comment line before slab_post_alloc: no code, so a breakpoint there goes to the next line
COMMENT_LINE = next(i for i, line in enumerate(
    (Path(__file__).parents[2] / "kernel" / "slab" / "slub.c").read_text().splitlines(), 1)
    if "After an object was taken" in line)

# (name, gdb commands, REPL command); the last gdb command's output is the one compared
STEPS: list[tuple[str, tuple[str, ...], str]] = [
    # print FUNC(ARGS) at idle: gdb's inferior call, its value typed by the function
    ("p_call", ("p kmalloc(64, 3264)",), "p kmalloc(64, 3264)"),
    ("p_call_last_value", ("p $",), "p $"),
    ("p_call_format", ("p/x kmalloc_size_roundup(100)",), "p/x kmalloc_size_roundup(100)"),
    ("p_call_unknown", ("p nosuch(1)",), "p nosuch(1)"),
    # convenience variables: void until set, then a copy of the value with its type
    ("conv_unset", ("p $foo",), "p $foo"),
    ("conv_pointer", ("set $c = kmalloc_caches[0][6]", "p $c->size * 2"), "p $c->size * 2"),
    ("conv_array", ("set var $s = kmalloc_caches[0][6]->name", "p $s"), "p $s"),
    # the idle loop's CFI marks it outermost
    ("info_frame_outermost", ("info frame",), "info frame"),
    # locations gdb's way: a line without code breaks at the next one that has code
    # (COMMENT_LINE is a comment before slab_post_alloc); unknown names and lines
    ("break_line_without_code", (f"break slub.c:{COMMENT_LINE}",), f"break slub.c:{COMMENT_LINE}"),
    ("break_mid_function_table", ("info breakpoints",), "info breakpoints"),
    ("info_watchpoints_none", ("info watchpoints",), "info watchpoints"),
    ("break_unknown_function", ("break kmallco",), "break kmallco"),
    ("break_line_out_of_range", ("break slub.c:99999",), "break slub.c:99999"),
    ("x_unreadable", ("delete", "x/2xg 0"), "x/2xg 0"),
    # a second breakpoint at the same pc: gdb's note first (deleted at once)
    ("break_same_pc", ("break kmalloc", "break kmalloc"), "break kmalloc"),
    ("break", ("delete", "break kmalloc"), "break kmalloc"),
    ("banner", ("monitor call kmalloc 64 GFP_KERNEL", "continue"), "call kmalloc 64 GFP_KERNEL"),
    ("p_rip", ("p $rip",), "p $rip"),
    ("p_rsp", ("p $rsp",), "p $rsp"),
    ("p_eflags", ("p $eflags",), "p $eflags"),
    ("info_registers", ("info registers rip rsp rax eflags cs fs_base",),
     "info registers rip rsp rax eflags cs fs_base"),
    ("p_int", ("p size",), "p size"),
    # output formats: every letter print takes, on an int, a pointer, a struct, a char
    *((f"p_{f}_{what}", (f"p/{f} {expr}",), f"p/{f} {expr}")
      for f in "xduotzcas" for what, expr in (("int", "size"), ("neg", "-200"),
                                              ("ptr", "kmalloc_caches[0][6]")))
    ,
    ("p_x_struct", ("p/x kmalloc_caches[0][6]->cpu_slab",), "p/x kmalloc_caches[0][6]->cpu_slab"),
    ("p_d_char", ("p/d kmalloc_caches[0][6]->name[1]",), "p/d kmalloc_caches[0][6]->name[1]"),
    ("p_c_wide", ("p/c 321",), "p/c 321"),
    ("p_a_code", ("p/a $rip",), "p/a $rip"),
    ("p_unknown_format", ("p/q size",), "p/q size"),
    ("output", ("output kmalloc_caches[0][6]->cpu_slab",), "output kmalloc_caches[0][6]->cpu_slab"),
    ("output_x", ("output/x size",), "output/x size"),
    ("output_not_in_history", ("p $",), "p $"),
    ("p_meaningless_format", ("p/i size",), "p/i size"),
    ("p_chars", ("p kmalloc_caches[0][6]->name",), "p kmalloc_caches[0][6]->name"),
    ("p_struct", ("p kmalloc_caches[0][6]->cpu_slab",), "p kmalloc_caches[0][6]->cpu_slab"),
    ("p_char", ("p kmalloc_caches[0][6]->name[1]",), "p kmalloc_caches[0][6]->name[1]"),
    # gdb's @: N objects from an lvalue, between the shifts and + - in precedence
    *((f"at_{name}", (f"p {expr}",), f"p {expr}") for name, expr in (
        ("chars", "kmalloc_caches[0][6]->name[0]@4"), ("ints", "kmalloc_caches[0][3]->size@2"),
        ("precedence", "kmalloc_caches[0][6]->name[0]@1+1"), ("not_lvalue", "5@2"),
        ("zero", "kmalloc_caches[0][6]->name[0]@0"),
        ("not_integral", "kmalloc_caches[0][6]->name[0]@kmalloc_caches[0][6]"))),
    ("p_last_value", ("p $",), "p $"),
    ("p_history_back", ("p $$2",), "p $$2"),
    ("whatis", ("whatis kmalloc_caches[0][6]",), "whatis kmalloc_caches[0][6]"),
    ("x_i", ("x/3i $rip",), "x/3i $rip"),
    ("info_symbol", ("info symbol $rip",), "info symbol $rip"),
    ("info_symbol_offset", ("info symbol $rip+3",), "info symbol $rip+3"),
    ("info_line", ("info line kmalloc",), "info line kmalloc"),
    ("info_frame", ("info frame",), "info frame"),
    ("no_symbol", ("p nosuch",), "p nosuch"),
    # kmalloc calls it while a hook is on (slab_debug is, on these machines)
    ("tbreak", ("tbreak slab_alloc_hooks",), "tbreak slab_alloc_hooks"),
    ("condition", ("condition 1 size > 100",), "condition 1 size > 100"),
    ("ignore", ("ignore 1 2",), "ignore 1 2"),
    ("disable", ("disable 1",), "disable 1"),
    ("info_breakpoints", ("info breakpoints",), "info breakpoints"),
    ("enable", ("enable",), "enable"),
    ("tbreak_hit", ("continue",), "continue"),
    ("finish", ("finish",), "finish"),
    ("finish_to_trampoline", ("finish",), "finish"),
    ("watch", ("continue", "delete", "watch kmalloc_caches[0][6]->cpu_slab.alloc_fast"),
     "watch kmalloc_caches[0][6]->cpu_slab.alloc_fast"),
    ("watch_hit", ("monitor call kmalloc 64 GFP_KERNEL", "continue"), "call kmalloc 64 GFP_KERNEL"),
    # the SLUB fast path's counter, written in slab_alloc_nocheck (inlined in slab_alloc_hooks);
    # (its freelist is written by cmpxchg16b: breakpoints.LockedPairGuard stops after it)
    ("watch_inlined", ("delete", "continue", "watch kmalloc_caches[0][6]->cpu_slab.alloc_fast",
                       "monitor call kmalloc 64 GFP_KERNEL", "continue"),
     "call kmalloc 64 GFP_KERNEL"),
    ("disassemble", ("disassemble kmemu_test_spin",), "disassemble kmemu_test_spin"),
    ("flavor_intel", ("set disassembly-flavor intel", "x/2i kmemu_test_spin"),
     "x/2i kmemu_test_spin"),
    ("advance", ("set disassembly-flavor att", "advance kfree"), "advance kfree"),
    # arguments the caller's call site knows: gdb's s=s@entry=VALUE (kmalloc-128's first
    # use: the slow path); locals of the innermost block first; info frame of a caller
    ("banner_entry_values", ("delete", "continue", "break ___slab_alloc",
                             "monitor call kmalloc 128 GFP_KERNEL", "continue"),
     "call kmalloc 128 GFP_KERNEL"),
    ("next_to_call_site", ("next",), "next"),
    ("info_locals_inner_block_first", ("info locals",), "info locals"),
    ("up_entry_values", ("up",), "up"),
    ("info_frame_caller", ("info frame",), "info frame"),
    ("dot_on_a_pointer", ("p s.name",), "p s.name"),
    ("arrow_on_a_struct", ("p s->cpu_slab->tid",), "p s->cpu_slab->tid"),
    ("generic_pointer", ("p *(void *)s",), "p *(void *)s"),
    ("non_pointer", ("p *orig_size",), "p *orig_size"),
    ("no_member", ("p s->nosuch",), "p s->nosuch"),
    ("division_by_zero", ("p orig_size / 0",), "p orig_size / 0"),
    ("p_x_pointer", ("p/x s",), "p/x s"),
    ("p_function", ("p kmalloc",), "p kmalloc"),
    ("ptype_struct", ("ptype s->cpu_slab",), "ptype s->cpu_slab"),
    ("down_to_call_site", ("down",), "down"),
    ("frame_out_of_range", ("frame 99",), "frame 99"),
    ("frame_after_failed_selection", ("frame",), "frame"),
    ("info_line_out_of_range", ("info line slub.c:99999",), "info line slub.c:99999"),
    ("info_symbol_none", ("info symbol 0",), "info symbol 0"),
    ("no_breakpoint_number", ("disable 99",), "disable 99"),
    # next arrives where an inlined body starts: gdb shows its call site; step enters
    # it without running; next stays inside it (kmalloc-512's first use: the slow path)
    ("next_to_inlined_call_site",
     ("delete", "continue", f"break slub.c:{SLOW_CALL}", "monitor call kmalloc 512 GFP_KERNEL",
      "continue", "delete", "next"), "next"),
    ("step_into_inlined_body", ("step",), "step"),
    ("next_inside_inlined_body", ("next",), "next"),
    # a breakpoint hit on the way out: gdb's "Run till exit from" first (kmalloc-192's
    # first use takes the slow path)
    ("finish_stops_at_breakpoint",
     ("delete", "continue", "break kmalloc", "monitor call kmalloc 192 GFP_KERNEL", "continue",
      "break ___slab_alloc", "finish"), "finish"),
    # gdb's enable once (disabled by its next stop) and enable delete (a tbreak then)
    ("enable_once", ("delete", "continue", "break kmalloc", "enable once 1", "info breakpoints"),
     "info breakpoints"),
    ("enable_once_hit", ("monitor call kmalloc 32 GFP_KERNEL", "continue"),
     "call kmalloc 32 GFP_KERNEL"),
    ("enable_once_after", ("info breakpoints",), "info breakpoints"),
    ("enable_delete", ("continue", "enable delete 1", "info breakpoints"), "info breakpoints"),
    ("enable_delete_hit", ("monitor call kmalloc 32 GFP_KERNEL", "continue"),
     "call kmalloc 32 GFP_KERNEL"),
    ("enable_delete_after", ("info breakpoints",), "info breakpoints"),
    # last: kmemu_test_spin(0) spins for ever
    ("stepi_stops_at_breakpoint",
     ("delete", "continue", "break kmemu_test_spin", "monitor call kmemu_test_spin 0",
      "continue", "break irq.c:176", "stepi 100"), "stepi 100"),
]
# the REPL's commands with no counterpart in its transcript (gdb ran them as setup)
REPL_SETUP = {"conv_pointer": ("set $c = kmalloc_caches[0][6]",),
              "conv_array": ("set var $s = kmalloc_caches[0][6]->name",),
              "watch": ("delete",), "x_unreadable": ("delete",), "break": ("delete",),
              "break_same_pc": ("break kmalloc",),
              "watch_inlined": ("delete", "continue",
                                "watch kmalloc_caches[0][6]->cpu_slab.alloc_fast"),
              "flavor_intel": ("set disassembly-flavor intel",),
              "banner_entry_values": ("delete", "continue", "break ___slab_alloc"),
              "advance": ("set disassembly-flavor att",),
              "stepi_stops_at_breakpoint": ("delete", "continue", "break kmemu_test_spin",
                                            "call kmemu_test_spin 0", "break irq.c:176"),
              "finish_stops_at_breakpoint": ("delete", "continue", "break kmalloc",
                                             "call kmalloc 192 GFP_KERNEL", "break ___slab_alloc"),
              "enable_once": ("delete", "continue", "break kmalloc", "enable once 1"),
              "enable_delete": ("continue", "enable delete 1"),
              "next_to_inlined_call_site": ("delete", "continue", f"break slub.c:{SLOW_CALL}",
                                            "call kmalloc 512 GFP_KERNEL", "delete")}


def _gdb_transcript() -> dict[str, str]:
    return gdb_sections([(name, tuple(cmds[:-1]), cmds[-1]) for name, cmds, _ in STEPS],
                        "--cmdline", HOOKS_CMDLINE)


def _repl_transcript() -> dict[str, str]:
    m = booted_machine(cmdline=HOOKS_CMDLINE)
    buf = io.StringIO()
    repl = Repl(DebugSession(m), buf)
    out = {}
    try:
        for name, _, line in STEPS:
            for c in REPL_SETUP.get(name, ()):
                repl.execute(c)
            start = buf.tell()
            repl.execute(line)
            out[name] = buf.getvalue()[start:]
    finally:
        repl.s.kill()
        repl.s.delete()
        m.suspend_on_interrupt = False
    return out


@pytest.fixture(scope="module")
def transcripts() -> tuple[dict[str, str], dict[str, str]]:
    return _gdb_transcript(), _repl_transcript()


#: gdb's warnings about its surroundings, not about the program: the remote protocol's
#: vCont reply, and a source file touched after the (content-cached) kernel was built
GDB_ENVIRONMENT_WARNINGS = ("warning: Invalid remote",
                            "warning: Source file is more recent than executable")


def normalize(text: str) -> list[str]:
    """Lines without what may differ between two runs: addresses and the stub's or the
    REPL's own lines (gdb's "Continuing." and warnings about the remote protocol, blank
    lines, the REPL's "error: ")."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"0x[0-9a-f]+", "0x?", line.rstrip())
        line = re.sub(r"^error: ", "", line)
        if line and line != "Continuing." and not line.startswith(GDB_ENVIRONMENT_WARNINGS):
            lines.append(line)
    return lines


@pytest.mark.parametrize("name", [s[0] for s in STEPS])
def test_repl_prints_what_gdb_prints(name: str, transcripts) -> None:
    gdb, repl = transcripts
    want, got = normalize(gdb[name]), normalize(repl[name])
    if name in ("finish_to_trampoline", "watch_hit", "watch_inlined"):
        # kmemu's own line after gdb's: the host call's end, or who wrote the value
        assert got[:len(want)] == want, (gdb[name], repl[name])
        assert len(got) == len(want) + 1, got
        assert re.match(r"(\(written by |\w+\(\) returned )", got[-1]), got
        return
    if name in ("break_unknown_function", "x_unreadable"):
        # kmemu's words after gdb's: similar names; why the address cannot be read
        # (gdb prints x's address first, the REPL its error line)
        want = [re.sub(r"^0x\?:\s+", "", w) for w in want]
        assert len(got) == len(want) == 1 and got[0].startswith(want[0]), (want, got)
        return
    if name.startswith("output_") or name == "output":
        # gdb's output ends without a newline: the transcript's next section marker
        # ("@@-...") follows on the same line
        want[-1] = want[-1].split("@@-")[0]
    if name == "disassemble":  # capstone and gdb's opcodes differ in a few padding nops
        pairs = [(a, b) for a, b in zip(want, got, strict=True) if "nop" not in a]
        assert all(a == b for a, b in pairs), (gdb[name], repl[name])
        return
    assert got == want, (gdb[name], repl[name])
