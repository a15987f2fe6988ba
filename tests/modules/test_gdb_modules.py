"""Stock gdb sees a module's symbols through the add-symbol-file command kmemu prints."""

from __future__ import annotations

import re
from pathlib import Path

from tests.gdbstub.conftest import start_server

SRC = Path(__file__).parent / "src"


def test_gdb_breaks_in_a_module_function() -> None:
    srv = start_server("--module", str(SRC / "mydev.c"))
    try:
        assert srv.proc.stdout is not None
        line = srv.proc.stdout.readline()
        m = re.match(r"module mydev: \(gdb\) (add-symbol-file \S+/mydev\.ko -s \.text "
                     r"0xffffffffa0000000 .*)$", line)
        assert m, line
        out = srv.gdb(m.group(1), "break mydev_sum", "monitor call mydev_alloc 9",
                      "continue", "monitor call mydev_sum", "continue", "bt 1",
                      "next", "next", "info locals", "monitor modules")
        assert re.search(r"Breakpoint 1 at 0xffffffffa00000[0-9a-f]{2}: file \S+/mydev\.c, "
                         r"line \d+\.", out)
        assert re.search(r"Breakpoint 1, mydev_sum \(\) at \S+/mydev\.c:\d+", out)
        assert re.search(r"#0 +mydev_sum \(\) at \S+/mydev\.c:\d+", out)
        assert re.search(r"^s = 9$", out, re.M)  # stepped through the loop, module DWARF
        assert "mydev 16384 0 - Live 0xffffffffa0000000 (O)" in out
        assert m.group(1) in out  # monitor modules prints the same command
    finally:
        srv.proc.kill()
        srv.proc.wait(timeout=10)


def test_gdb_finds_modules_by_itself_as_shared_libraries() -> None:
    """qXfer:libraries: each module's .ko linked at its load addresses, no command needed."""
    srv = start_server("--module", str(SRC / "mydev.c"))
    try:
        out = srv.gdb("info sharedlibrary", "break mydev_sum", "monitor call mydev_sum",
                      "continue", "info locals")
        assert re.search(r"^0xffffffffa0000000  0xffffffffa000[0-9a-f]{4}  Yes +\S+/mydev\.\w+"
                         r"\.debug\.elf$", out, re.M), out
        assert re.search(r"Breakpoint 1, mydev_sum \(\) at \S+/mydev\.c:\d+", out)
        assert re.search(r"^s = 0$", out, re.M)
    finally:
        srv.proc.kill()
        srv.proc.wait(timeout=10)
