"""The map as SVG, written by kmemu itself (no dependency).

Each cell is one ``<rect>`` in ``<g id="cells">`` whose ``class`` names the
owner's legend entry (``o3``) and whose ``<title>`` says its pfns and owner
(shown on hover); the legend is ``<g id="legend">`` with the census's counts.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from emu.frontend.pictures.grid import (
    PAGE_SIZE,
    Grid,
    default_cell_pages,
    format_bytes,
    make_grid,
    picture_columns,
)
from emu.kernel.memmap import MemoryMap

CELL = 4  # px
MARGIN = 8
LEGEND_ROW = 16
LEGEND_WIDTH = 380
TOP = 28


def picture_grid(census: MemoryMap, cell_pages: int | None = None) -> Grid:
    n = default_cell_pages(census.max_pfn, terminal=False) if cell_pages is None else cell_pages
    ncells = -(-census.max_pfn // n)
    return make_grid(census, n, picture_columns(ncells))


def render_svg(grid: Grid) -> str:
    owners = list(grid.legend)
    index = {o: i for i, o in enumerate(owners)}
    width = MARGIN * 3 + grid.columns * CELL + LEGEND_WIDTH
    height = max(TOP + grid.rows * CELL, TOP + (len(owners) + 2) * LEGEND_ROW) + MARGIN
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">',
           "<style>" + "".join(f".o{i}{{fill:{grid.legend[o].hex}}}" for i, o in enumerate(owners))
           + "</style>",
           f'<text x="{MARGIN}" y="16">{escape(grid.header())}</text>',
           '<g id="cells">']
    last = grid.census.max_pfn - 1
    for c, owner in enumerate(grid.cells):
        x = MARGIN + (c % grid.columns) * CELL
        y = TOP + (c // grid.columns) * CELL
        first = c * grid.cell_pages
        pfns = (f"pfn {first:#x}" if grid.cell_pages == 1
                else f"pfns {first:#x}-{min(first + grid.cell_pages - 1, last):#x}")
        out.append(f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" '
                   f'class="o{index[owner]}"><title>{pfns}: {escape(owner)}</title></rect>')
    out.append("</g>")
    out.append('<g id="legend">')
    lx = MARGIN * 2 + grid.columns * CELL
    for i, owner in enumerate(owners):
        e = grid.legend[owner]
        y = TOP + i * LEGEND_ROW
        out.append(f'<rect x="{lx}" y="{y}" width="12" height="12" class="o{i}"/>'
                   f'<text x="{lx + 18}" y="{y + 10}" data-owner="{escape(owner)}" '
                   f'data-pages="{e.pages}">{escape(owner)}: {e.pages} pages '
                   f'({format_bytes(e.pages * PAGE_SIZE)})</text>')
    out.append("</g></svg>")
    return "\n".join(out) + "\n"


def write_svg(census: MemoryMap, path: str | Path, cell_pages: int | None = None) -> Grid:
    """Write the map to ``path``; returns the grid it drew."""
    grid = picture_grid(census, cell_pages)
    Path(path).write_text(render_svg(grid), encoding="utf-8")
    return grid
