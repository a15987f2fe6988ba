"""Make it last (issue 10): random REPL sessions, then stock gdb on the same machine.

Each hypothesis example is a short session of random command lines (every command
name, alias and prefix, arguments from a hostile vocabulary: addresses over 64 bits,
non-canonical and unmapped ones, huge and negative counts, kmemu's own vectors,
bad formats, random text) run with the breakpoints, watchpoints and stops they
create.  Every line must print what a user can read: never an ``internal error``,
never an exception out of ``execute``, an ``error:`` is one line; afterwards
``kill`` leaves the machine ready.  At the end, the same machine is served by the
gdb stub and a real gdb session must still work on it.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu import Machine
from emu.debug.session import DebugSession
from emu.frontend.debugger import commands as c
from emu.frontend.debugger.repl import Repl
from emu.frontend.gdbstub.server import GdbServer
from emu.frontend.gdbstub.target import MachineTarget

EXAMPLES = 200  # bounded for CI: about 10 s on 2 busy cores
NAMES = sorted({s.name for s in c.COMMANDS} | {a for s in c.COMMANDS for a in s.aliases}
               | {"cont", "disas", "wat", "inf", "del", "fin", "tb"})
ADDRESSES = ["0xffff888000100000", "0x1ffff888000100000", "0xdead000000000000",
             "0xffffc90000000000", "0", "-8", "0x10000000000000000", "18446744073709551615",
             "kmalloc", "kmalloc+4", "kmalloc.c:103", "*kmalloc", "$rsp", "$rip", "$", "$1",
             "zones", "&zones[1]", "kmalloc_caches[0][6]", "*(long *)0xffff888000100000",
             "*(char (*)[1099511627776])0xffff888000000000", "*(char (*)[4194304])0x0",
             "zones[1].free_area[0].nr_free", "*0xffff888000100000", "c->freelist"]
NUMBERS = ["0", "1", "3", "-1", "0xec", "0x30", "0x31", "0x100", "255", "99999999999",
           "0x1ffff888000100000", "010", "1_0", "GFP_KERNEL", "GFP_ATOMIC|__GFP_ZERO"]
FORMATS = ["", "/x", "/d", "/2xg", "/3i", "/s", "/8xb", "/100000xb", "/zz", "/-1x", "/0x"]
CALLS = ["kmalloc 64 GFP_KERNEL", "kmalloc 0 GFP_KERNEL", "kfree $", "kfree 0",
         "vmalloc 8192", "vfree $", "kmemu_test_add 1 2 3 4 5 6", "kmalloc(100, GFP_ATOMIC)",
         "kmalloc 64", "nosuch 1", "kmalloc 0x1ffff888000100000 GFP_KERNEL", "zones 1"]
WORDS = ADDRESSES + NUMBERS + ["if", "size > 100", "display", "locals", "args",
                               "registers", "breakpoints", "rip rsp", "1-3", "a"]
NOISE = st.text(alphabet=st.sampled_from(list("zonesk[1].fre_a->*&()+-0x12$rsp '\"\\/%<>!~,:")),
                max_size=24)


@st.composite
def command_line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["call", "irq", "cmd", "cmd", "cmd", "noise"]))
    if kind == "call":
        return "call " + draw(st.sampled_from(CALLS))
    if kind == "irq":
        return "irq " + draw(st.sampled_from(NUMBERS))
    if kind == "noise":
        return draw(NOISE)
    name = draw(st.sampled_from(NAMES))
    fmt = draw(st.sampled_from(FORMATS))
    args = draw(st.lists(st.sampled_from(WORDS) | NOISE, max_size=3))
    return f"{name}{fmt} {' '.join(args)}".rstrip()


#: Starts that leave a call stopped, so the random lines meet frames, locals and steps.
STOPPED = [[], [], ["break kmalloc", "call kmalloc 64 GFP_KERNEL"],
           ["break kmalloc_other", "call kmalloc 256 GFP_KERNEL", "up"],
           ["call kmalloc 64 GFP_KERNEL", "watch kmalloc_caches[0][6]->cpu_slab.alloc_fast",
            "call kmalloc 64 GFP_KERNEL"],
           ["break vfree", "call vmalloc 8192", "call vfree $"],
           ["snapshot a", "break kmalloc", "call kmalloc 64 GFP_KERNEL", "snapshot b"]]


def one_session(m: Machine, lines: list[str]) -> None:
    buf = io.StringIO()
    s = DebugSession(m)
    repl = Repl(s, buf)
    try:
        for line in lines:
            start = buf.tell()
            repl.execute(line)  # never raises
            out = buf.getvalue()[start:]
            assert "internal error" not in out, (lines, line, out)
            if out.startswith("error: "):
                assert len(out.splitlines()) == 1, (line, out)
    finally:
        s.kill()
        s.delete()
        m.suspend_on_interrupt = False
    assert m.state == "ready", (lines, m.state)


def gdb_session(m: Machine, *commands: str) -> str:
    """Stock gdb in batch mode against a stub serving ``m`` from a thread."""
    gdb = shutil.which("gdb")
    if gdb is None:
        pytest.skip("gdb is not installed (apt-get install gdb; .ci/run installs it)")
    srv = GdbServer(MachineTarget(DebugSession(m)), port=0)
    t = threading.Thread(target=srv.serve, kwargs={"once": True}, daemon=True)
    t.start()
    args = [gdb, "-q", "-batch", "-nx", str(m.artifacts.elf), "-ex", "set pagination off",
            "-ex", f"target remote 127.0.0.1:{srv.port}"]
    for cmd in commands:
        args += ["-ex", cmd]
    try:
        res = subprocess.run(args, capture_output=True, text=True, timeout=60)
    finally:
        srv.close()
        t.join(10)
    return res.stdout + res.stderr


@pytest.mark.kmemu(budget_seconds=20)
def test_random_repl_sessions_then_a_real_gdb_session(machine: Machine) -> None:
    base = machine.snapshot()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.sampled_from(STOPPED), st.lists(command_line(), min_size=1, max_size=8))
    def session(start: list[str], lines: list[str]) -> None:
        machine.restore(base)
        one_session(machine, start + lines)

    session()
    out = gdb_session(machine, "break kmalloc", "monitor call kmalloc 64 GFP_KERNEL",
                      "continue", "bt 2", "finish", "continue", "delete",
                      "monitor call kmemu_test_add 1 2 3 4 5 6", "continue")
    assert re.search(r"Breakpoint 1, kmalloc \(size=64, gfp=3264\)", out), out
    assert re.search(r"#1\s+0x[0-9a-f]+ in kmemu_call_return", out), out
    ptr = re.search(r"Value returned is \$1 = \(void \*\) (0xffff888[0-9a-f]+)", out)
    assert ptr and f"kmalloc() returned {ptr.group(1)}" in out, out
    assert "kmemu_test_add() returned 0x5b (91)" in out, out


@pytest.mark.parametrize("line", [
    "irq 0xec", "x/2xg 0x1ffff888000100000", "identify 0x1ffff888000100000",
    "pt 0xdead000000000000", "watch *(char (*)[1099511627776])0xffff888000000000",
    "watch *(char (*)[4194304])0xffff888000000000", "call kmalloc 0x1ffff888000100000 GFP_KERNEL",
])
def test_the_issue_lines_in_one_session(machine: Machine, line: str) -> None:
    """The lines issue 10 found, as the fuzzer would run them."""
    one_session(machine, [line, "call kmalloc 64 GFP_KERNEL"])
