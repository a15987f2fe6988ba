"""The REPL's ``trace`` command (Repl.execute on the session machine, in-process)."""

from __future__ import annotations

import io
import re

import pytest

from emu import Machine
from emu.debug.session import DebugSession
from emu.frontend.debugger import commands as c
from emu.frontend.debugger.repl import Repl


def repl_run(m: Machine, *lines: str) -> list[str]:
    buf = io.StringIO()
    r = Repl(DebugSession(m), buf, interactive=False)
    out = []
    for line in lines:
        start = buf.tell()
        r.execute(line)
        out.append(buf.getvalue()[start:])
    return out


def test_parse_trace() -> None:
    cmd = c.parse("trace --depth 2 --filter *slab* --filter kmalloc --wall kmalloc 64 "
                  "GFP_KERNEL | __GFP_ZERO")
    assert cmd == c.Trace("kmalloc", ("64", "GFP_KERNEL|__GFP_ZERO"), 2, ("*slab*", "kmalloc"),
                          (), (), True, False)
    assert c.parse("trace --no-irqs --tail kfree 0") == c.Trace("kfree", ("0",), irqs=False,
                                                                  tail=True)
    for bad, msg in [("trace", "usage: trace"), ("trace --depth", "--depth needs a value"),
                     ("trace --depth x kmalloc 1", "bad number"),
                     ("trace --nope kmalloc", "unknown option '--nope'")]:
        with pytest.raises(c.CommandError, match=re.escape(msg)):
            c.parse(bad)


def test_trace_in_the_repl(machine: Machine) -> None:
    graph, folded, bad, tail = repl_run(machine, "trace kmalloc 64 GFP_KERNEL",
                                  "trace --folded --notrace kmemu_deferred_work kmalloc(64, "
                                  "GFP_KERNEL)", "trace --filter zz_nothing* kmalloc 64 0",
                                        # kmalloc_other calls kmalloc_slab: a '}' to name
                                        "trace --tail --depth 2 kmalloc 5000 GFP_KERNEL")
    assert graph.startswith("# tracer: function_graph\n")
    assert " 0)               |  kmalloc() {\n" in graph
    assert re.search(r"^kmalloc returned 0x[0-9a-f]+: \d+ guest instructions$", graph, re.M)
    assert folded.splitlines()[0].startswith("kmalloc ") or folded.startswith("kmalloc;")
    assert bad.startswith("error: set_ftrace_filter: 'zz_nothing*' matches no")
    assert re.search(r"^ 0\)   \d+ insns +\|  } /\* kmalloc \*/$", tail, re.M)
