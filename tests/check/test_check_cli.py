"""``kmemu check failures`` and ``kmemu check irqs`` (in-process, as tests/cli does)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emu.frontend.cli import main

SRC = str(Path(__file__).parent / "src" / "widgets.c")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_failures_finds_the_leak(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "failures", "--mem", "32M", "--module", SRC,
                       "--root", "widgets", "--json", "widget_add_leaky", "4")
    assert code == 1
    got = json.loads(out)
    assert got["allocations"] == 4
    assert [(r["k"], r["site"], r["outcome"]) for r in got["runs"]][-1] == (
        4, "widgets.c:75", "leak")
    assert got["runs"][-1]["leaks"][0].endswith("allocated at widgets.c:69")


def test_check_failures_clean_and_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "failures", "--mem", "32M", "--module", SRC,
                       "--root", "widgets", "widget_add", "4")
    assert code == 0
    assert out.splitlines()[0] == ("widget_add: 4 allocations, 5 runs, 0 not ok (without "
                                   "failures: ok, returned 0)")
    code, _, err = run(capsys, "check", "failures", "widget_add", "four")
    assert code == 2 and "argument 'four' is not an integer" in err


def test_check_irqs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "irqs", "--mem", "32M", "--handler", "0x30",
                       "kmemu_test_nop")
    assert code == 0 and out.startswith("kmemu_test_nop: IRQ 0x30 at each of ")
    code, _, err = run(capsys, "check", "irqs", "kmemu_test_nop")
    assert code == 2 and "needs --handler" in err
