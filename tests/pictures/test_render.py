"""The pictures' content, checked through their data: the cells against the census
(majority owner per cell), the legend's counts against the census's counts."""

from __future__ import annotations

import builtins
import io
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from emu import Machine
from emu.core.errors import BadArgument, KmemuError, PlotUnavailable
from emu.debug.session import DebugSession
from emu.frontend.cli import main
from emu.frontend.debugger.repl import Repl
from emu.frontend.pictures import grid as G
from emu.frontend.pictures.png import cell_image, write_png
from emu.frontend.pictures.svg import picture_grid, render_svg, write_svg
from emu.frontend.pictures.terminal import render_terminal
from emu.kernel.memmap import MemoryMap, Run

SVG = "{http://www.w3.org/2000/svg}"


def small_map() -> MemoryMap:
    runs = [Run(0, 1, "firmware: BIOS page (pfn 0)"), Run(1, 5, "memblock: boot info"),
            Run(6, 3, "kernel text"), Run(9, 1, "slab kmalloc-64"), Run(10, 2, "free order 1"),
            Run(12, 4, "free order 2"), Run(16, 1, "free (pcp list)"),
            Run(17, 15, "hole (no RAM)"), Run(32, 8, "vmalloc foo")]
    return MemoryMap(runs, 40, {}, [])


def majority(census: MemoryMap, cell_pages: int) -> list[str]:
    """Brute force: each page's owner, then the most common one per cell (first wins)."""
    pages = [r.owner for r in census for _ in range(r.count)]
    out = []
    for c in range(0, len(pages), cell_pages):
        tally = Counter(pages[c:c + cell_pages])
        best = max(tally.values())
        out.append(next(o for o in pages[c:c + cell_pages] if tally[o] == best))
    return out


@pytest.mark.parametrize("cell_pages", [1, 2, 3, 4, 7, 16, 40])
def test_cells_are_the_majority_owner(cell_pages: int) -> None:
    m = small_map()
    g = G.make_grid(m, cell_pages, 8)
    assert g.cells == majority(m, cell_pages)
    assert {o: e.pages for o, e in g.legend.items()} == m.counts()


def test_bad_cell_sizes_are_refused() -> None:
    for bad in (0, -1, 41):
        with pytest.raises(BadArgument):
            G.make_grid(small_map(), bad, 8)


def test_default_cell_sizes() -> None:
    assert G.default_cell_pages(65472, terminal=True) == 16  # 4092 cells: 64 rows of 64
    assert G.default_cell_pages(4096, terminal=True) == 1
    assert G.default_cell_pages(65536, terminal=False) == 1  # one page per cell to 256 MiB
    assert G.default_cell_pages(65537, terminal=False) == 512  # then 2 MiB


def legend_of(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(r"\S\S (.+?) +(\d+) +[\d.]+ (?:GiB|MiB|KiB|B)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def test_terminal_without_colour_has_a_glyph_per_cell_and_the_census_counts() -> None:
    m = small_map()
    text = render_terminal(m, 4, colour=False)
    lines = text.splitlines()
    assert lines[0].startswith("Physical memory: 160 KiB, pfn 0x0-0x27 (40 pages); one cell = "
                               "4 pages (16 KiB), showing the owner of most of its pages")
    glyphs = "".join(G.KIND_GLYPHS[G.kind_of(o)] for o in majority(m, 4))
    assert lines[2] == "0x00000000 " + glyphs
    assert legend_of(text) == m.counts()
    assert lines[-1].split()[:2] == ["total", "40"]
    assert "\x1b[" not in text


def test_terminal_colour_paints_each_cell_in_its_owners_colour() -> None:
    m = small_map()
    text = render_terminal(m, 1, colour=True)
    row = text.splitlines()[2]
    colours = re.findall(r"\x1b\[38;2;(\d+);(\d+);(\d+)m(\u2588+)", row)
    painted = [tuple(int(x) for x in c[:3]) for c in colours for _ in c[3]]
    assert painted == [G.owner_colour(o) for o in majority(m, 1)]
    assert legend_of(re.sub(r"\x1b\[[0-9;]*m", "", text)) == m.counts()


def test_free_blocks_shade_by_order_and_owners_have_distinct_slab_hues() -> None:
    shades = [G.owner_colour(f"free order {o}") for o in range(11)]
    assert len(set(shades)) == 11 and sum(shades[0]) > sum(shades[10])
    assert G.owner_colour("slab kmalloc-64") != G.owner_colour("slab dentry")


def test_svg_has_one_rect_per_cell_with_its_owner() -> None:
    m = small_map()
    g = picture_grid(m, 3)
    root = ET.fromstring(render_svg(g))
    cells = root.find(f"{SVG}g[@id='cells']")
    rects = cells.findall(f"{SVG}rect")
    owners = list(g.legend)
    assert len(rects) == len(g.cells) == 14
    expected = majority(m, 3)
    for i, r in enumerate(rects):
        assert owners[int(r.get("class")[1:])] == expected[i]
        assert r.find(f"{SVG}title").text.endswith(": " + expected[i])
    legend = root.find(f"{SVG}g[@id='legend']")
    assert {t.get("data-owner"): int(t.get("data-pages"))
            for t in legend.findall(f"{SVG}text")} == m.counts()
    style = root.find(f"{SVG}style").text
    for i, o in enumerate(owners):
        assert f".o{i}{{fill:{g.legend[o].hex}}}" in style


def test_png_is_written_from_the_grid(tmp_path: Path) -> None:
    m = small_map()
    g = write_png(m, tmp_path / "m.png", 2)
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cell_image(g)
    flat = [px for row in image for px in row][:len(g.cells)]
    assert flat == [g.legend[o].colour for o in majority(m, 2)]


def hide_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    real = builtins.__import__

    def fake(name: str, *args: object, **kw: object) -> object:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", fake)


def test_png_without_matplotlib_is_one_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    hide_matplotlib(monkeypatch)
    with pytest.raises(PlotUnavailable) as e:
        write_png(small_map(), tmp_path / "m.png")
    assert isinstance(e.value, KmemuError)
    assert str(e.value) == ("a PNG map needs matplotlib, which is not installed: "
                            "pip install 'kmemu[plot]'")
    assert not (tmp_path / "m.png").exists()
    write_svg(small_map(), tmp_path / "m.svg")  # SVG needs nothing
    assert (tmp_path / "m.svg").exists()


# --- front ends on a real machine ---------------------------------------------------------

def test_cli_map_prints_the_census_of_the_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["map", "--mem", "32M", "--color", "never"]) == 0
    text = capsys.readouterr().out
    census = Machine.booted(mem="32M").memory_map()
    assert legend_of(text) == census.counts()
    assert "one cell = 2 pages (8 KiB)" in text.splitlines()[0]


def test_cli_map_json_svg_and_bad_input(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    assert main(["map", "--mem", "32M", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["problems"] == [] and sum(n for _, n, _ in data["runs"]) == data["max_pfn"]
    assert sum(data["counts"].values()) == data["max_pfn"]
    svg = tmp_path / "m.svg"
    assert main(["map", "--mem", "32M", "--svg", str(svg), "--cell-pages", "8"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{svg}: Physical memory: 31.8 MiB") and "1016 cells" in out
    rects = ET.parse(svg).getroot().find(f"{SVG}g[@id='cells']").findall(f"{SVG}rect")
    assert len(rects) == 1016
    assert main(["map", "--mem", "32M", "--cell-pages", "0"]) == 2
    assert capsys.readouterr().err == "kmemu: --cell-pages must be at least 1, got 0\n"


def test_repl_map(machine: Machine, tmp_path: Path) -> None:
    buf = io.StringIO()
    repl = Repl(DebugSession(machine), buf)
    machine.kmalloc(64)
    repl.execute("map 64")
    text = buf.getvalue()
    assert legend_of(text) == machine.memory_map().counts()
    assert "one cell = 64 pages" in text.splitlines()[0] and "census:" not in text
    buf.truncate(0)
    buf.seek(0)
    repl.execute(f"map {tmp_path / 'r.svg'}")
    assert buf.getvalue().startswith(f"{tmp_path / 'r.svg'}: Physical memory")
    assert (tmp_path / "r.svg").exists()
    buf.truncate(0)
    buf.seek(0)
    repl.execute("map notes.txt")
    assert buf.getvalue() == ("error: map: 'notes.txt' is neither FILE.svg/FILE.png nor a "
                              "number of pages per cell; usage: map [FILE.svg|FILE.png] "
                              "[CELL_PAGES]\n")


def test_cli_png_without_matplotlib_fails_before_booting(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    hide_matplotlib(monkeypatch)

    def no_boot(*a: object, **kw: object) -> None:
        raise AssertionError("booted although the PNG cannot be written")

    monkeypatch.setattr(Machine, "booted", no_boot)
    assert main(["map", "--png", str(tmp_path / "m.png")]) == 1
    assert capsys.readouterr().err == ("kmemu: a PNG map needs matplotlib, which is not "
                                       "installed: pip install 'kmemu[plot]'\n")
