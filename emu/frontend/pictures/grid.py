"""The map as a grid of cells, and one colour per owner (shared by every renderer).

A cell covers ``cell_pages`` page frames and shows the owner of most of them
(the first such owner by address on a tie).  The legend counts pages from the
census itself, never cells, so its numbers are the census's.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from emu.core.errors import BadArgument
from emu.kernel.memmap import KINDS, MemoryMap, kind_of

PAGE_SIZE = 4096
LARGE_CELL_PAGES = 512  # 2 MiB
TERMINAL_COLUMNS = 64
TERMINAL_MAX_CELLS = TERMINAL_COLUMNS * 64
PICTURE_PAGE_CELLS_UP_TO = 1 << 16  # one cell per page up to 256 MiB, else 2 MiB cells

# one base colour per kind (RGB); owners of a kind get shades or hues around it
KIND_COLOURS: dict[str, tuple[int, int, int]] = {
    "free": (46, 160, 67), "pcp": (64, 200, 170), "slab": (230, 120, 30),
    "pages": (220, 190, 40), "vmalloc": (50, 110, 220), "module": (200, 60, 200),
    "pagetable": (140, 90, 40), "vmemmap": (120, 70, 190), "kernel": (200, 30, 40),
    "memblock": (110, 120, 130), "kasan": (250, 140, 180), "firmware": (60, 70, 90),
    "hole": (20, 20, 20),
}
# the terminal's character for each kind when there is no colour
KIND_GLYPHS = {"free": ".", "pcp": ",", "slab": "s", "pages": "p", "vmalloc": "v",
               "module": "M", "pagetable": "t", "vmemmap": "m", "kernel": "K",
               "memblock": "b", "kasan": "k", "firmware": "F", "hole": "-"}
# distinct hues for slab caches and other many-owner kinds (cycled, by owner name)
_HUES = ((230, 120, 30), (214, 39, 40), (255, 152, 150), (247, 182, 210), (227, 119, 194),
         (188, 189, 34), (255, 187, 120), (196, 156, 148), (140, 86, 75), (219, 219, 141),
         (158, 218, 229), (23, 190, 207), (174, 199, 232), (152, 223, 138), (197, 176, 213))


@dataclass(frozen=True)
class LegendEntry:
    owner: str
    kind: str
    pages: int  # from the census
    colour: tuple[int, int, int]
    glyph: str

    @property
    def hex(self) -> str:
        r, g, b = self.colour
        return f"#{r:02x}{g:02x}{b:02x}"


@dataclass
class Grid:
    """What every picture draws: the cells (an owner each) and the legend."""

    census: MemoryMap
    cell_pages: int
    columns: int
    cells: list[str]
    legend: dict[str, LegendEntry]

    @property
    def rows(self) -> int:
        return math.ceil(len(self.cells) / self.columns)

    def header(self) -> str:
        n = self.census.max_pfn
        cell = "page" if self.cell_pages == 1 else f"{self.cell_pages} pages"
        return (f"Physical memory: {format_bytes(n * PAGE_SIZE)}, pfn 0x0-{n - 1:#x} "
                f"({n} pages); one cell = {cell} ({format_bytes(self.cell_pages * PAGE_SIZE)})"
                + ("" if self.cell_pages == 1 else ", showing the owner of most of its pages")
                + f"; {self.columns} cells a row")


def format_bytes(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            v = n / (1 << shift)
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{n} B"


def default_cell_pages(max_pfn: int, terminal: bool) -> int:
    """Terminal: the smallest power of two that fits 64 rows of 64 cells.  Pictures:
    one page per cell up to 256 MiB, 2 MiB per cell above."""
    if terminal:
        n = 1
        while math.ceil(max_pfn / n) > TERMINAL_MAX_CELLS:
            n *= 2
        return n
    return 1 if max_pfn <= PICTURE_PAGE_CELLS_UP_TO else LARGE_CELL_PAGES


def owner_colour(owner: str) -> tuple[int, int, int]:
    """Free blocks shade from light (order 0) to dark (order 10); owners of one kind
    that can be many (slab caches, vmalloc callers, modules) get hues by name."""
    kind = kind_of(owner)
    r, g, b = KIND_COLOURS[kind]
    if kind == "free":
        order = int(owner.rsplit(" ", 1)[1])
        t = order / 10  # 0 light .. 1 dark
        return (int(200 - t * 180), int(240 - t * 130), int(200 - t * 170))
    if kind in ("slab", "vmalloc", "module", "kernel", "memblock", "firmware", "pagetable",
                "pages"):
        h = int.from_bytes(hashlib.blake2s(owner.encode(), digest_size=2).digest(), "little")
        if kind == "slab":
            return _HUES[h % len(_HUES)]
        f = 0.7 + (h % 7) * 0.08  # a shade of the kind's colour
        return (min(255, int(r * f)), min(255, int(g * f)), min(255, int(b * f)))
    return (r, g, b)


def make_grid(census: MemoryMap, cell_pages: int, columns: int) -> Grid:
    if not isinstance(cell_pages, int) or cell_pages < 1:
        raise BadArgument(f"cell pages must be a positive number of pages, got {cell_pages!r}")
    if cell_pages > census.max_pfn:
        raise BadArgument(f"{cell_pages} pages per cell is more than the {census.max_pfn} "
                          "pages of the machine")
    ncells = math.ceil(census.max_pfn / cell_pages)
    cells: list[str] = [""] * ncells
    partial: dict[int, dict[str, int]] = {}
    for pfn, count, owner in census:
        end = pfn + count
        first_full = -(-pfn // cell_pages)
        last_full = end // cell_pages  # cells [first_full, last_full) lie inside the run
        if first_full < last_full:
            cells[first_full:last_full] = [owner] * (last_full - first_full)
            if pfn % cell_pages:
                _tally(partial, pfn // cell_pages, owner, first_full * cell_pages - pfn)
            if end % cell_pages:
                _tally(partial, last_full, owner, end - last_full * cell_pages)
        else:  # the run lies within one or two cells
            c = pfn // cell_pages
            while pfn < end:
                upto = min(end, (c + 1) * cell_pages)
                _tally(partial, c, owner, upto - pfn)
                pfn, c = upto, c + 1
    for c, tally in partial.items():
        cells[c] = max(tally.items(), key=lambda kv: kv[1])[0]  # first-seen wins ties
    legend = {o: LegendEntry(o, kind_of(o), n, owner_colour(o), KIND_GLYPHS[kind_of(o)])
              for o, n in census.counts().items()}
    return Grid(census, cell_pages, columns, cells, legend)


def _tally(partial: dict[int, dict[str, int]], cell: int, owner: str, n: int) -> None:
    t = partial.setdefault(cell, {})
    t[owner] = t.get(owner, 0) + n


def picture_columns(ncells: int) -> int:
    """Roughly square pictures: a power of two near sqrt(cells), 16..256."""
    return max(16, min(256, 1 << max(0, math.ceil(math.log2(max(1, math.sqrt(ncells)))))))


__all__ = ["Grid", "KINDS", "LegendEntry", "default_cell_pages", "format_bytes", "make_grid",
           "owner_colour", "picture_columns"]
