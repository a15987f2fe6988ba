"""The trace events from the command line (``kmemu boot --print-trace``, the
``--events`` option other subcommands take) and the REPL's ``events`` command."""

from __future__ import annotations

import argparse
import io

import pytest

from emu import Machine
from emu.debug.session import DebugSession
from emu.frontend import events as fe
from emu.frontend.cli import main
from emu.frontend.debugger.repl import Repl
from emu.frontend.pytest_plugin import booted_machine


def test_boot_print_trace(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    src = tmp_path / "alloc.c"
    src.write_text('#include <linux/module.h>\n#include <linux/slab.h>\nMODULE_LICENSE("GPL");\n'
                   'void *keep;\n'
                   'noinline void *grab(void) { return kmalloc(100, GFP_KERNEL); }\n'
                   'static int __init a_init(void) { keep = grab(); '
                   'return keep ? 0 : -ENOMEM; }\nmodule_init(a_init);\n')
    code = main(["boot", "--mem", "32M", "--quiet", "--cmdline",
                 "trace_event=kmem:kmalloc trace_clock=counter", "--module", str(src),
                 "--print-trace"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("# tracer: nop\n#\n# entries-in-buffer/entries-written: ")
    # (a call site in the freed init section would print as a bare address, as in Linux)
    hit = [ln for ln in out.splitlines() if "call_site=grab+" in ln]
    assert len(hit) == 1 and "[alloc] ptr=" in hit[0] and "bytes_req=100 bytes_alloc=128" in hit[0]
    assert hit[0].startswith("          <idle>-0       [000] .....")


def test_events_option_round(capsys: pytest.CaptureFixture[str]) -> None:
    p = argparse.ArgumentParser()
    fe.add_events_option(p)
    args = p.parse_args(["--events", "kmem:kmalloc,kmem:kfree", "--trace-clock", "counter"])
    m = booted_machine(mem="32M")
    assert fe.enable_events(m, args) == ["kmem:kmalloc", "kmem:kfree"]
    m.kfree(m.kmalloc(64))
    fe.print_events(m, args)
    out = capsys.readouterr().out
    body = [ln for ln in out.splitlines() if not ln.startswith("#")]
    assert [ln.split(": ")[1] for ln in body] == ["kmalloc", "kfree"]
    assert m.tracing.clock == "counter"
    m.tracing.clock = "local"
    none = p.parse_args([])
    fe.print_events(m, none)  # no --events: nothing printed
    assert capsys.readouterr().out == ""


def test_repl_events_command() -> None:
    m: Machine = booted_machine(mem="32M")
    buf = io.StringIO()
    repl = Repl(DebugSession(m), buf)

    def run(line: str) -> str:
        start = buf.tell()
        repl.execute(line)
        return buf.getvalue()[start:]

    assert run("events enable kmem:kmalloc") == "enabled: kmem:kmalloc\n"
    assert "* kmem:kmalloc\n  kmem:kfree" in run("events list")
    run("call kmalloc 64 GFP_KERNEL")
    show = run("events show")
    assert "# tracer: nop" in show and "kmalloc: call_site=" in show
    assert "bytes_req=64" in run("events pipe")
    assert run("events pipe") == ""  # consumed
    assert run("events clock counter") == "trace clock: counter\n"
    assert run("events size 16") == "buffer_size_kb: 16\n"
    assert run("events clear") == "trace buffer cleared\n"
    err = run("events enable kmem:nope")
    assert err.startswith("error: no trace event matches 'kmem:nope'") and err.count("\n") == 1
    assert run("events frob").startswith("error: unknown events subcommand 'frob'")
    assert run("events disable").startswith("disabled: ")
    assert "events [list" in run("help events")
    repl.s.kill()
    m.tracing.clock = "local"


def test_kmemu_trace_events_prints_linuxs_trace_file(capsys) -> None:
    from emu.frontend.cli import main
    assert main(["trace", "--events", "kmem:kmalloc,kmem:kfree", "--trace-clock", "counter",
                 "kmalloc", "64", "GFP_KERNEL"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# tracer: nop\n")
    lines = [x for x in out.splitlines() if not x.startswith("#")]
    assert len(lines) == 1 and " kmalloc: call_site=" in lines[0]
    assert "bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 accounted=false" in lines[0]
    assert out.splitlines()[-1].startswith("# kmalloc returned 0xffff888")
