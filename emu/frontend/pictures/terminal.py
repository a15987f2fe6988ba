"""The map in a terminal: a grid of coloured cells (24-bit ANSI) or, without colour,
one character per kind; a header stating the cell size; a legend with counts.

>>> print(render_terminal(m.memory_map(), colour=False))   # doctest: +SKIP
"""

from __future__ import annotations

from emu.frontend.pictures.grid import (
    PAGE_SIZE,
    TERMINAL_COLUMNS,
    Grid,
    default_cell_pages,
    format_bytes,
    make_grid,
)
from emu.kernel.memmap import MemoryMap

BLOCK = "\u2588"  # full block
RESET = "\x1b[0m"


def _fg(rgb: tuple[int, int, int]) -> str:
    r, g, b = rgb
    return f"\x1b[38;2;{r};{g};{b}m"


def terminal_grid(census: MemoryMap, cell_pages: int | None = None) -> Grid:
    n = default_cell_pages(census.max_pfn, terminal=True) if cell_pages is None else cell_pages
    return make_grid(census, n, TERMINAL_COLUMNS)


def render_terminal(census: MemoryMap, cell_pages: int | None = None,
                    colour: bool = True) -> str:
    """The whole picture as text (ends with a newline)."""
    return format_grid(terminal_grid(census, cell_pages), colour)


def format_grid(grid: Grid, colour: bool) -> str:
    lines = [grid.header(), ""]
    step = grid.columns * grid.cell_pages * PAGE_SIZE
    width = max(8, len(f"{(grid.rows - 1) * step:x}"))
    for row in range(grid.rows):
        cells = grid.cells[row * grid.columns:(row + 1) * grid.columns]
        text = []
        last = None
        for owner in cells:
            e = grid.legend[owner]
            if colour:
                if e.colour != last:
                    text.append(_fg(e.colour))
                    last = e.colour
                text.append(BLOCK)
            else:
                text.append(e.glyph)
        lines.append(f"{row * step:#0{width + 2}x} " + "".join(text) + (RESET if colour else ""))
    lines.append("")
    lines += format_legend(grid, colour)
    return "\n".join(lines) + "\n"


def format_legend(grid: Grid, colour: bool) -> list[str]:
    """One line per owner: its swatch, pages and size (the census's counts)."""
    entries = list(grid.legend.values())
    width = max(len(e.owner) for e in entries)
    out = [f"   {'owner':<{width}} {'pages':>9} {'size':>10}"]
    for e in entries:
        swatch = f"{_fg(e.colour)}{BLOCK}{BLOCK}{RESET}" if colour else f"{e.glyph}{e.glyph}"
        out.append(f"{swatch} {e.owner:<{width}} {e.pages:>9} "
                   f"{format_bytes(e.pages * PAGE_SIZE):>10}")
    total = sum(e.pages for e in entries)
    out.append(f"   {'total':<{width}} {total:>9} {format_bytes(total * PAGE_SIZE):>10}")
    return out
