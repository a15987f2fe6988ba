"""kmemu replay / kmemu compare from the command line (in-process main())."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from emu.frontend.cli import main
from emu.frontend.replay_cmd import PLOT_MIN_BATCH, ProgressBar, format_compare, plot_batch
from emu.kernel import tracegen

FIELDS = {"ops", "skipped", "unreadable", "ops_per_second", "limit_fraction", "peak_held",
          "final_held", "requested", "by_cache", "waste_by_call_site", "failures",
          "insns_per_op", "unusable_index", "extfrag_index", "slabinfo", "buddyinfo", "timeline"}


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    return tracegen.write(tmp_path / "t.txt.gz", 1500, seed=9, version="5.10",
                          layout="trace-cmd")


def test_replay_json_has_the_result_fields_and_no_progress(capsys, trace: Path) -> None:
    assert main(["replay", str(trace), "--json", "--mem", "64M"]) == 0
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert FIELDS <= set(d)
    assert sum(d["ops"].values()) == 1500 and d["unreadable"] == 0 and d["slab"] == "slub"
    assert d["peak_held"] >= d["final_held"] > 0 and d["limit_fraction"] > 0
    assert d["unusable_text"].startswith("Node 0, zone      DMA")
    assert err == ""  # no progress bar: not a terminal, and --json


def test_replay_report_text(capsys, trace: Path) -> None:
    assert main(["replay", str(trace), "--slab", "slub"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("replay on SLUB: 1500 ops from ")
    for words in ("operations by type:", "kmem_cache_alloc", "failures: none",
                  "memory held (pages taken from the buddy allocator): peak",
                  "top call sites by waste", "/sys/kernel/debug/extfrag/unusable_index:",
                  "/sys/kernel/debug/extfrag/extfrag_index:", "/proc/buddyinfo:",
                  "slabinfo - version: 2.1"):
        assert words in out, words


def test_replay_folded_stacks_and_flame_graph(capsys, tmp_path: Path) -> None:
    """--folded/--svg profile the whole replay: the stacks go through the guest's replay
    loop into the allocator, and their counts add up to the guest instructions run."""
    small = tracegen.write(tmp_path / "s.txt", 200, seed=3, version="6.1", layout="ftrace")
    folded, svg = tmp_path / "r.folded", tmp_path / "r.svg"
    assert main(["replay", str(small), "--mem", "64M", "--folded", str(folded),
                 "--svg", str(svg)]) == 0
    out = capsys.readouterr().out
    assert f"wrote folded stacks to {folded}" in out and f"wrote flame graph to {svg}" in out
    stacks = dict(line.rsplit(" ", 1) for line in folded.read_text().splitlines())
    assert any("kmemu_replay_run" in k and ";kmalloc" in k for k in stacks), list(stacks)[:5]
    assert all(int(v) > 0 for v in stacks.values())
    assert svg.read_text().startswith("<?xml") and "kmemu_replay_run" in svg.read_text()


def test_compare_side_by_side(capsys, trace: Path) -> None:
    assert main(["compare", str(trace), "--slab", "slub", "-j", "1", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert list(results) == ["slub"] and results["slub"]["ops_run"] == 1500
    table = format_compare(results)
    assert table.splitlines()[0].split() == ["SLUB"]
    assert any(line.startswith("peak held") for line in table.splitlines())
    assert any(line.startswith("unusable index order 9") for line in table.splitlines())


def test_report_prints_debugfs_and_proc_files_as_linux_does(capsys, trace: Path) -> None:
    """Every line of unusable_index, extfrag_index and buddyinfo ends with the space
    Linux's seq_printf("%... ") leaves, the last one too."""
    assert main(["replay", str(trace), "--mem", "64M"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("Node 0, zone ")]
    assert len(lines) == 3 * 2  # DMA and DMA32 in each of the three files
    assert all(ln.endswith(" ") for ln in lines), lines


@pytest.mark.parametrize(("args", "words"), [
    (["replay", "/nonexistent/trace.txt"], "no trace file '/nonexistent/trace.txt'"),
    (["compare", "TRACE", "--slab", "slub,slub2"], "--slab must be one of slub, slab, slob"),
    (["compare", "TRACE", "--slab", "slub,slub"], "--slab takes distinct allocators"),
    (["compare", "TRACE", "--cmdline", "slab_debug=Z"],  # refused before any boot
     "slob: slab_debug: SLOB has no debug options"),
    (["compare", "TRACE", "--slab", "slub,slab", "--cmdline", "slab=slob"],
     "slub: slab='slub' but the command line says slab=slob"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, trace: Path, args: list[str],
                                          words: str) -> None:
    args = [str(trace) if a == "TRACE" else a for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_slab_choice_passes_through(capsys, trace: Path) -> None:
    assert main(["replay", str(trace), "--slab", "slob", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["slab"] == "slob"


@pytest.mark.slow
def test_replay_plot_draws_a_timeline_of_many_samples(capsys, trace: Path,
                                                     tmp_path: Path) -> None:
    """--plot replays in batches small enough that a short trace's charts are curves:
    1,500 ops in one 4,096-op batch would be a single sample, a line of one point."""
    pytest.importorskip("matplotlib")  # the plot extra; without it: the test below
    pics = tmp_path / "pics"
    assert main(["replay", str(trace), "--json", "--mem", "64M", "--plot", str(pics)]) == 0
    d = json.loads(capsys.readouterr().out)
    ops = [s["op"] for s in d["timeline"]]
    assert len(ops) >= 1500 // 16 and ops == sorted(set(ops)) and ops[-1] == 1500
    assert sorted(p.name for p in pics.iterdir()) == [
        "fragmentation.png", "memory.png", "memory_map.png", "slab_occupancy.png"]
    # the map after the replay, through its census: the caches the replay made own
    # pages (5.10 prints no cache names: function:size), every pfn counted once
    counts = d["memory_map"]
    assert counts["slab __d_alloc:192"] > 0 and counts["slab kmalloc-4k"] > 0
    pfns = int(re.search(r"\((\d+) pages\); one cell = page", d["memory_map_header"])[1])
    assert sum(counts.values()) == pfns > 16000  # --mem 64M


def test_plot_batch() -> None:
    assert plot_batch(1_000_000, 4096) == 4096  # long traces: full batches, no cost
    assert plot_batch(200 * 100, 4096) == 100
    assert plot_batch(50, 4096) == PLOT_MIN_BATCH  # tiny: no batch under the floor


def test_plot_without_the_pictures_module_is_one_line(capsys, trace: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "emu.frontend.plots", None)  # as if not installed
    assert main(["replay", str(trace), "--plot", str(tmp_path / "pics")]) == 2
    err = capsys.readouterr().err
    assert "--plot needs emu.frontend.plots.plot_replay" in err and err.count("\n") == 1


def test_progress_bar_line() -> None:
    s = io.StringIO()
    bar = ProgressBar(s, width=10)
    bar(4096, 8192, 0.004096)
    bar(8192, 8192, 0.008192)
    first, second = s.getvalue().split("\r")[1:]
    assert first.startswith("[#####-----] 4,096/8,192 ops  1,000,000 ops/s  ETA ")
    assert second.startswith("[##########] 8,192/8,192 ops") and second.endswith("\n")
