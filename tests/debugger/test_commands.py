"""Parsing debugger commands: gdb's names and abbreviations, one-line errors, fuzzing."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.frontend.debugger import commands as c
from emu.frontend.debugger.commands import CommandError, parse


@pytest.mark.parametrize("line, expected", [
    ("break kmalloc", c.Break("kmalloc")),
    ("b kmalloc.c:103", c.Break("kmalloc.c:103")),
    ("br *0xffffffff80101b70", c.Break("*0xffffffff80101b70")),
    ("b kmalloc if size > 1000", c.Break("kmalloc", condition="size > 1000")),
    ("b kmalloc if(size>1)", c.Break("kmalloc", condition="(size>1)")),
    ("break", c.Break(None)),
    ("tbreak kfree", c.Break("kfree", temporary=True)),
    ("watch kmalloc_caches[0][6]->cpu_slab.alloc_fast",
     c.Watch("kmalloc_caches[0][6]->cpu_slab.alloc_fast")),
    ("watch -l *0x1000", c.Watch("*0x1000")),
    ("rwatch zones[1].free_area[0].nr_free", c.Watch("zones[1].free_area[0].nr_free", "read")),
    ("awatch x", c.Watch("x", "access")),
    ("delete", c.Delete(None)),
    ("d 1 3-5", c.Delete((1, 3, 4, 5))),
    ("info breakpoints", c.InfoBreakpoints()),
    ("i b", c.InfoBreakpoints()),
    ("info watch", c.InfoBreakpoints(True)),
    ("i r", c.InfoRegisters()),
    ("info registers rip $rsp", c.InfoRegisters(("rip", "rsp"))),
    ("step", c.Step("step")),
    ("s 3", c.Step("step", 3)),
    ("n", c.Step("next")),
    ("next 0x10", c.Step("next", 16)),
    ("si", c.Step("stepi")),
    ("stepi 007", c.Step("stepi", 7)),
    ("step 010", c.Step("step", 8)),  # octal, as in C and gdb
    ("ni 2", c.Step("nexti", 2)),
    ("fin", c.Finish()),
    ("finish", c.Finish()),
    ("c", c.Continue()),
    ("cont", c.Continue()),
    ("u", c.Until()),
    ("until slub.c:200", c.Until("slub.c:200")),
    ("bt", c.Backtrace()),
    ("where 3", c.Backtrace(3)),
    ("backtrace", c.Backtrace()),
    ("frame", c.SelectFrame()),
    ("f 2", c.SelectFrame(2)),
    ("frame 0", c.SelectFrame(0)),
    ("up", c.SelectFrame(None, 1)),
    ("up 3", c.SelectFrame(None, 3)),
    ("down", c.SelectFrame(None, -1)),
    ("do 2", c.SelectFrame(None, -2)),
    ("up 0", c.SelectFrame(None, 0)),  # gdb: reselect the frame
    ("up -1", c.SelectFrame(None, -1)),  # gdb: up -1 is down 1
    ("info locals", c.InfoVariables(False)),
    ("i lo", c.InfoVariables(False)),
    ("info args", c.InfoVariables(True)),
    ("display c->freelist", c.Display("c->freelist")),
    ("disp/x gfp", c.Display("gfp", "x")),
    ("display", c.Display()),
    ("undisplay", c.Undisplay()),
    ("undisplay 1 3-4", c.Undisplay((1, 3, 4))),
    ("delete display 2", c.Undisplay((2,))),
    ("delete display", c.Undisplay()),
    ("info display", c.InfoDisplay()),
    ("x/8xg $rsp", c.Examine(8, "x", "g", "$rsp")),
    ("x/4i $rip", c.Examine(4, "i", None, "$rip")),
    ("x/s 0xffff888000001000", c.Examine(None, "s", None, "0xffff888000001000")),
    ("x/gx $rsp", c.Examine(None, "x", "g", "$rsp")),
    ("x /2wd $rsp + 8", c.Examine(2, "d", "w", "$rsp + 8")),
    ("x", c.Examine()),
    ("disas", c.Disassemble()),
    ("disassemble/r kmalloc", c.Disassemble("kmalloc", raw=True)),
    ("disas/s 0xffffffff80101b70,+32", c.Disassemble("0xffffffff80101b70,+32", source=True)),
    ("list", c.List()),
    ("l kmalloc", c.List("kmalloc")),
    ("p zones[1].free_area[0].nr_free", c.Print("zones[1].free_area[0].nr_free")),
    ("p/x kmalloc_caches[0][6]->size", c.Print("kmalloc_caches[0][6]->size", "x")),
    ("print *(struct kmem_cache *)0xffff888000001000",
     c.Print("*(struct kmem_cache *)0xffff888000001000")),
    ("ptype struct kmem_cache", c.Ptype("struct kmem_cache")),
    ("call kmalloc 100 GFP_KERNEL", c.Call("kmalloc", ("100", "GFP_KERNEL"))),
    ("call kmalloc 100 GFP_KERNEL|__GFP_ZERO", c.Call("kmalloc", ("100", "GFP_KERNEL|__GFP_ZERO"))),
    ("call kmalloc 100 GFP_KERNEL | __GFP_ZERO",
     c.Call("kmalloc", ("100", "GFP_KERNEL|__GFP_ZERO"))),
    ("call kmalloc(100, GFP_KERNEL | __GFP_ZERO)",
     c.Call("kmalloc", ("100", "GFP_KERNEL | __GFP_ZERO"))),
    ("call kfree(kmalloc_caches[0][3])", c.Call("kfree", ("kmalloc_caches[0][3]",))),
    ("call kmemu_idle_loop", c.Call("kmemu_idle_loop")),
    ("irq 0x30", c.Irq(0x30)),
    ("buddyinfo", c.View("buddyinfo")),
    ("slabinfo", c.View("slabinfo")),
    ("slabtop", c.View("slabtop")),
    ("vmallocinfo", c.View("vmallocinfo")),
    ("zoneinfo", c.View("zoneinfo")),
    ("pagetypeinfo", c.View("pagetypeinfo")),
    ("pt zones", c.AddressView("pt", "zones")),
    ("identify $rsp + 8", c.AddressView("identify", "$rsp + 8")),
    ("whatis s->name", c.Whatis("s->name")),
    ("condition 2 size > 64", c.Condition(2, "size > 64")),
    ("condition 2", c.Condition(2)),
    ("ignore 1 999", c.Ignore(1, 999)),
    ("disable", c.Enable(None, False)),
    ("enable 1 3-4", c.Enable((1, 3, 4), True)),
    ("dis 2", c.Enable((2,), False)),
    ("advance slub.c:200", c.Advance("slub.c:200")),
    ("info frame", c.InfoFrame()),
    ("info symbol $rip", c.InfoSymbol("$rip")),
    ("info line", c.InfoLine()),
    ("info line kmalloc", c.InfoLine("kmalloc")),
    ("set disassembly-flavor intel", c.SetFlavor("intel")),
    ("set $c = kmalloc_caches[0][6]", c.SetVar("c", "kmalloc_caches[0][6]")),
    ("set var $n=$c->size == 64", c.SetVar("n", "$c->size == 64")),
    ("snapshot before", c.Snapshot("before")),
    ("restore before", c.Restore("before")),
    ("kill", c.Kill()),
    ("help", c.Help()),
    ("help x", c.Help("x")),
    ("q", c.Quit()),
    ("quit", c.Quit()),
    ("  next  ", c.Step("next")),
])
def test_parse(line: str, expected: c.Command) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize("line", ["", "   ", "# a comment", "  # indented"])
def test_blank_lines_and_comments_are_no_command(line: str) -> None:
    assert parse(line) is None


@pytest.mark.parametrize("line, message", [
    ("frobnicate", "unknown command 'frobnicate'"),
    ("nxt", "did you mean 'next'?"),
    ("w", "ambiguous command 'w': watch, whatis"),
    ("42", "unknown command '42'"),
    ("step x", "step: bad number 'x'"),
    ("step 0", "step: 0 is out of range"),
    ("step 08", "step: bad number '08'"),
    ("next 1 2", "next takes at most one argument"),
    ("bt -1", "backtrace: -1 is out of range"),
    ("x/4qg 0", "x: invalid format letter 'q'"),
    ("x/4xx 0", "x: invalid format letter 'x'"),
    ("x/0x 0", "x: count: 0 is out of range"),
    ("p", "print needs an expression"),
    ("p/f 1", "kmemu does not print floating point"),
    ("p/i 1", 'Format letter "i" is meaningless in "print" command.'),
    ("enable once", "Argument required (one or more breakpoint numbers)."),
    ("set $x =", "set: an expression is needed after '='"),
    ("set foo 1", "set: only 'set $NAME = EXPR'"),
    ("p/xx 1", 'Undefined output format "xx".'),
    ("break/x kmalloc", "break takes no /FORMAT"),
    ("break a b", "one location expected"),
    ("b kmalloc if", "condition missing after 'if'"),
    ("call", "call needs a function"),
    ("call 12 3", "call needs a kernel function name"),
    ("call kmalloc(1,,2)", "empty argument"),
    ("irq", "irq needs a vector"),
    ("irq 256", "irq: 256 is out of range (0..255)"),
    ("irq 0x30 1", "irq takes one vector"),
    ("slabinfo all", "slabinfo takes no arguments"),
    ("pt", "pt needs an address"),
    ("snapshot", "snapshot needs a name"),
    ("restore a b", "restore takes one name"),
    ("info", "info needs a topic"),
    ("info frobs", "unknown info topic 'frobs'"),
    ("info registers 1x", "invalid register name '1x'"),
    ("info b 3", "info breakpoints takes no arguments"),
    ("info locals x", "info locals takes no arguments"),
    ("display/f x", "kmemu does not print floating point"),
    ("display/i $pc", "display/i is not supported: use x/i"),
    ("display/x", "display/x needs an expression"),
    ("undisplay x", "undisplay: bad number 'x'"),
    ("frame x", "frame: bad number 'x'"),
    ("frame -1", "frame: -1 is out of range"),
    ("up x", "up: bad number 'x'"),
    ("down 1 2", "down takes at most one argument (a frame count)"),
    ("delete x", "delete: bad number 'x'"),
    ("delete 5-2", "delete: bad range '5-2'"),
    ("continue 3", "continue takes no arguments"),
    ("quit now", "quit takes no arguments"),
    ("disas/q", "unknown modifier"),
    ("step " + "9" * 5000, "step: bad number"),
])
def test_parse_errors_are_one_line(line: str, message: str) -> None:
    with pytest.raises(CommandError) as info:
        parse(line)
    text = str(info.value)
    assert message in text and len(text.splitlines()) == 1


def test_every_command_has_help_and_a_unique_name() -> None:
    names = [s.name for s in c.COMMANDS] + [a for s in c.COMMANDS for a in s.aliases]
    assert len(names) == len(set(names))
    for spec in c.COMMANDS:
        assert re.match(rf"{spec.name}\b", spec.usage)
        assert spec.summary and spec.group in dict(c.GROUPS)
        assert c.resolve(spec.name) is spec
        for alias in spec.aliases:
            assert c.resolve(alias) is spec


def test_unique_prefixes_resolve_like_gdb() -> None:
    assert c.resolve("disas").name == "disassemble"
    assert c.resolve("wat").name == "watch"
    with pytest.raises(CommandError, match="ambiguous command 'sla': slabinfo, slabtop"):
        c.resolve("sla")


def _check(line: str) -> None:
    try:
        cmd = parse(line)
    except CommandError as e:
        text = str(e)
        assert text and len(text.splitlines()) == 1, repr(text)
        return
    assert cmd is None or dataclasses.is_dataclass(cmd)


@settings(max_examples=600, deadline=None)
@given(st.text(max_size=120))
def test_fuzz_any_text(line: str) -> None:
    _check(line)


WORDS = sorted({s.name for s in c.COMMANDS} | {a for s in c.COMMANDS for a in s.aliases})
TAIL = st.text(alphabet=st.sampled_from(list("0123456789abcdefxgiswbh/$*+-,()[]|&<>.:# \t_"
                                              "\u2028\x0b\x85é")), max_size=40)


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(WORDS), st.sampled_from(["", "/", " ", " /"]), TAIL)
def test_fuzz_command_words_with_arguments(word: str, sep: str, tail: str) -> None:
    _check(word + sep + tail)
