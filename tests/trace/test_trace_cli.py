"""``kmemu trace`` in-process (as tests/cli does): text, folded stacks, SVG, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emu.frontend.cli import main
from emu.kernel.funcgraph import parse_folded

DEMO = str(Path(__file__).parent / "src" / "trace_demo.c")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_trace_prints_the_graph_then_a_summary(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    svg = tmp_path / "k.svg"
    code, out, err = run(capsys, "trace", "--mem", "64M", "--svg", str(svg), "kmalloc", "64",
                         "GFP_KERNEL")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "# tracer: function_graph"
    assert " 0)               |  kmalloc() {" in lines
    total = int(re.search(r"\((\d+) in kmalloc", lines[-1]).group(1))
    assert re.fullmatch(r"# kmalloc returned 0x[0-9a-f]+; \d+ guest instructions \(\d+ in "
                        r"kmalloc, \d+ in the host's call glue\)", lines[-1])
    assert f" 0)   {total} insns" in out
    assert svg.read_text().startswith("<?xml") and "<title>kmalloc (" in svg.read_text()


def test_trace_folded_and_knobs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "trace", "--mem", "64M", "--folded", "--notrace",
                       "kmemu_deferred_work", "--notrace", "vfree_pending", "vmalloc", "8192")
    assert code == 0
    stacks = parse_folded(out)
    assert all(s[0] == "vmalloc" for s, _ in stacks)
    code, out, _ = run(capsys, "trace", "--mem", "64M", "--depth", "1", "--graph",
                       "kmalloc", "kmalloc", "64", "0xcc0")
    assert code == 0
    body = [ln for ln in out.splitlines() if ln.startswith(" 0)")]
    assert len(body) == 1 and body[0].endswith("|  kmalloc();")


def test_trace_oops_and_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "trace", "--mem", "64M", "--module", DEMO, "demo_oops", "1")
    assert code == 1
    assert "} /* demo_oops */" in out and "/* oops: BUG: kernel NULL pointer" in out
    assert err.startswith("kmemu: BUG: kernel NULL pointer dereference")
    code, _, err = run(capsys, "trace", "--filter", "nope_*", "kmalloc", "64", "0xcc0")
    assert code == 2 and "set_ftrace_filter: 'nope_*' matches no kernel function" in err
    code, _, err = run(capsys, "trace", "kmalloc", "sixty")
    assert code == 2 and "argument 'sixty' is not an integer" in err
    code, _, err = run(capsys, "trace", "kmalloc", "64", "GFP_NOPE")
    assert code == 2 and "GFP_NOPE" in err
    code, _, err = run(capsys, "trace", "--depth", "-2", "kmalloc", "64", "0")
    assert code == 2 and "--depth takes a number >= 0" in err
    code, _, err = run(capsys, "trace", "--svg", "/nonexistent/dir/x.svg", "kmalloc", "64",
                       "0xcc0")
    assert code == 2 and "cannot write /nonexistent/dir/x.svg" in err
