"""The README's "Your own code" tour runs as written: the debugger script of
examples/recfifo steps through recfifo_push by recfifo.c:LINE and its transcript
says what the README shows; `kmemu kunit` passes the example's KUnit suite."""

from __future__ import annotations

import re
from pathlib import Path

from emu.frontend.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "recfifo"
SOURCE = EXAMPLE / "recfifo.c"


def line_of(text: str) -> int:
    return next(i for i, ln in enumerate(SOURCE.read_text().splitlines(), 1) if text in ln)


def test_debug_script_steps_through_recfifo_push(capsys) -> None:
    script = (EXAMPLE / "debug.gdb").read_text()
    memcpy = line_of("memcpy(r->data, data, len);")
    assert f"break recfifo.c:{memcpy}\n" in script  # the script follows the source
    assert main(["debug", "--module", str(SOURCE), "--script", str(EXAMPLE / "debug.gdb")]) == 0
    out = capsys.readouterr().out
    assert ("Breakpoint 1 at 0xffffffffa00000"
            in out and f"file {SOURCE}, line {memcpy}.\n" in out)
    assert re.search(rf"Breakpoint 1, recfifo_push \(f=0xffff888[0-9a-f]+, "
                     rf"data=0xffffffff8[0-9a-f]+ <kmemu_banner>, len=5, gfp=[^)]*\) at {SOURCE}:"
                     rf"{memcpy}\n"
                     rf"{memcpy}\t\tmemcpy\(r->data, data, len\);\n", out)
    assert "len = 5\n" in out
    assert "(kmemu) print r->len\n$1 = 5\n" in out
    nxt = line_of("spin_lock_irqsave(&f->lock, flags);")
    assert f"(kmemu) next\n{nxt}\t\tspin_lock_irqsave(&f->lock, flags);\n" in out
    assert f"(kmemu) print r->data[0]\n$2 = {ord('k')} 'k'\n" in out  # "kmemu kernel ..."[0]
    assert "(kmemu) print f->count\n$3 = 0\n" in out
    assert "Value returned is $4 = 0\nrecfifo_push() returned 0x0 (0); the kernel is idle\n" in out
    assert out.endswith("(kmemu) print recfifo_global->count\n$5 = 1\n")
    assert "error" not in out


def test_kunit_passes_the_example_suite(capsys) -> None:
    assert main(["kunit", str(EXAMPLE / "recfifo_kunit.c")]) == 0
    out = capsys.readouterr().out
    for case in ("recfifo_keeps_order", "recfifo_pop_empty", "recfifo_small_buffer",
                 "recfifo_push_enomem", "recfifo_destroy_frees_records"):
        assert f"[PASSED] {case}\n" in out
    assert "Testing complete. Ran 5 tests: passed: 5\n" in out
