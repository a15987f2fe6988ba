"""The map as PNG through matplotlib (the optional ``plot`` extra).

The image is the grid's cells as one RGB pixel block each (``imshow``, no
interpolation), with the legend's census counts beside it.
"""

from __future__ import annotations

from pathlib import Path

from emu.frontend.pictures.grid import PAGE_SIZE, Grid, format_bytes
from emu.frontend.pictures.mpl import pyplot
from emu.frontend.pictures.svg import picture_grid
from emu.kernel.memmap import MemoryMap


def cell_image(grid: Grid) -> list[list[tuple[int, int, int]]]:
    """Rows of RGB colours, one per cell (the last row padded with white)."""
    rows = []
    for r in range(grid.rows):
        cells = grid.cells[r * grid.columns:(r + 1) * grid.columns]
        row = [grid.legend[o].colour for o in cells]
        rows.append(row + [(255, 255, 255)] * (grid.columns - len(row)))
    return rows


def write_png(census: MemoryMap, path: str | Path, cell_pages: int | None = None) -> Grid:
    """Write the map to ``path``; returns the grid it drew."""
    plt = pyplot("a PNG map")
    import numpy  # matplotlib's own dependency
    from matplotlib.patches import Patch

    grid = picture_grid(census, cell_pages)
    image = numpy.asarray(cell_image(grid), dtype=numpy.uint8)  # rows x columns x RGB
    fig, ax = plt.subplots(figsize=(12, 8))
    try:
        ax.imshow(image, interpolation="nearest", aspect="equal")
        row_bytes = grid.columns * grid.cell_pages * PAGE_SIZE
        ticks = list(range(0, grid.rows, max(1, grid.rows // 16)))
        ax.set_yticks(ticks, [f"{t * row_bytes:#x}" for t in ticks], fontsize=7)
        ax.set_xticks([])
        ax.set_title(grid.header(), fontsize=8, wrap=True)
        handles = [Patch(color=[c / 255 for c in e.colour],
                         label=f"{e.owner}: {e.pages} pages ({format_bytes(e.pages * PAGE_SIZE)})")
                   for e in grid.legend.values()]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=7,
                  frameon=False)
        fig.savefig(path, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return grid
