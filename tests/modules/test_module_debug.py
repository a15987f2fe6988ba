"""Debugging inside a module: breakpoints by function and file:line, stepping, locals,
backtraces (the .ko linked at its load addresses), and gdb's add-symbol-file."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from emu import Machine
from emu.debug.session import DebugSession
from tests.debugger import test_repl
from tests.debugger.test_repl import Run

run = test_repl.run  # the REPL runner fixture, shared

SRC = Path(__file__).parent / "src"
MYDEV = str((SRC / "mydev.c").resolve())




def line_of(text: str) -> int:
    """The line number of the first source line containing ``text`` in mydev.c."""
    return next(i for i, ln in enumerate(Path(MYDEV).read_text().splitlines(), 1) if text in ln)


@pytest.mark.kmemu(modules=["src/mydev.c"])
def test_break_step_locals_in_a_module(run: Run, machine: Machine) -> None:
    out = run("break mydev_alloc")
    assert re.match(rf"Breakpoint 1 at 0xffffffffa0000000: file {MYDEV}, line "
                    rf"{line_of('struct rec *r = kmalloc')}\.", out)
    assert run("print count") == "$1 = 0\n"  # a static of the module, at idle
    out = run("call mydev_alloc 5")
    assert f"Breakpoint 1, mydev_alloc (value=5) at {MYDEV}:" in out
    assert "struct rec *r = kmalloc(sizeof(*r), GFP_KERNEL);" in out
    bt = run("bt")
    assert re.match(r"#0  mydev_alloc \(value=5\) at ", bt)
    assert "#1  " in bt and "kmemu_call_return" in bt
    run("next")
    out = run("next")
    assert out.startswith(f"{line_of('r->next = head')}\t")
    locals_ = run("info locals")
    assert re.search(r"^r = 0xffff888[0-9a-f]+$", locals_, re.M)
    assert run("print r->value") == "$2 = 5\n"
    out = run("finish")
    assert "mydev_alloc() returned 0xffff888" in out
    assert run("print count") == "$4 = 1\n"  # finish made $3


@pytest.mark.kmemu(modules=["src/mydev.c"])
def test_break_at_module_file_line_and_step(run: Run) -> None:
    ln = line_of("s += r->value;")
    assert run(f"break mydev.c:{ln}").startswith("Breakpoint 1 at 0xffffffffa0")
    run("call mydev_alloc 7")
    out = run("call mydev_sum")
    assert f"Breakpoint 1, mydev_sum () at {MYDEV}:{ln}" in out
    out = run("step")
    assert out.startswith(f"{line_of('for (struct rec *r = head')}\t")
    assert re.search(r"^s = 7$", run("info locals"), re.M)
    assert run("continue").startswith("mydev_sum() returned 0x7 (7)")


@pytest.mark.kmemu(modules=["src/twin_a.c", "src/twin_b.c"])
def test_break_by_module_qualified_name(run: Run) -> None:
    assert "more than one module" in run("break twin_value")
    run("break twin_b:twin_value")
    out = run("call twin_b:twin_value")
    assert "Breakpoint 1, twin_value () at" in out and "twin_b.c" in out


@pytest.mark.kmemu(modules=["src/mydev.c"])
def test_modules_view_gives_gdb_the_add_symbol_file_command(run: Run, machine: Machine) -> None:
    out = run("modules")
    mod = machine.module("mydev")
    lines = out.splitlines()
    assert lines[0] == f"mydev {mod.size} 0 - Live 0x{mod.base:016x} (O)"
    assert lines[1].startswith(f"add-symbol-file {mod.elf} -s .text 0xffffffffa0000000 ")
    assert f"-s .data {mod.sections['.data']:#x}" in lines[1]
    assert DebugSession(machine).monitor("modules") == out.rstrip("\n")
    assert machine.artifacts is not None and shutil.which("gdb")
    r = subprocess.run(["gdb", "-nx", "-batch", "-ex", lines[1], "-ex", "info line mydev_sum",
                        "-ex", "info address count", str(machine.artifacts.elf)],
                       capture_output=True, text=True, timeout=60)
    assert f"starts at address {mod.symbol('mydev_sum'):#x} <mydev_sum>" in r.stdout
    assert f"static storage at address {mod.sections['.bss']:#x}" in r.stdout


@pytest.mark.kmemu(modules=["src/mydev.c"])
def test_whatis_names_module_sections_and_symbols(machine: Machine) -> None:
    mod = machine.module("mydev")
    w = machine.identify_info(mod.symbol("mydev_sum") + 3)
    assert w.kind == "module"
    assert str(w).splitlines()[0] == (
        f"{mod.symbol('mydev_sum') + 3:#018x}: module mydev, "
        f".text+{mod.symbol('mydev_sum') + 3 - mod.sections['.text']:#x} (text, RX), "
        f"{machine.symbolize(mod.symbol('mydev_sum') + 3)}")
    assert "(read-only data, RO+NX), mydev_banner+0x2/" in machine.identify(
        mod.symbol("mydev_banner") + 2)
    assert "struct module (the loader's own record), RW+NX" in machine.identify(mod.view.addr)
    mod.unload()
    assert "in no loaded module (a freed module's area, not purged yet)" in machine.identify(
        mod.base)
