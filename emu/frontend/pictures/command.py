"""``kmemu map``: boot (loading any --module), take the census, draw it.

In the terminal by default (colour when standard output is a terminal, or
``--color always``), or to ``--svg FILE`` / ``--png FILE``; ``--json`` prints
the census itself.  The census is checked against the kernel's counters
first: a disagreement is printed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from emu.core.errors import BadArgument
from emu.frontend.pictures.terminal import render_terminal

if TYPE_CHECKING:
    from emu.machine.core import Machine


def add_parser(sub: argparse._SubParsersAction, machine_opts: Callable[..., None],
               fn: Callable[[argparse.Namespace], int]) -> None:
    p = sub.add_parser("map", help="boot and draw physical memory by owner: a terminal grid, "
                       "--svg FILE or --png FILE (needs kmemu[plot])")
    machine_opts(p, modules=True)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--svg", metavar="FILE", help="write an SVG picture (no dependency)")
    out.add_argument("--png", metavar="FILE", help="write a PNG picture (needs matplotlib: "
                     "pip install 'kmemu[plot]')")
    out.add_argument("--json", action="store_true",
                     help="print the census (runs of pfns and their owners) as JSON")
    p.add_argument("--cell-pages", type=int, metavar="N",
                   help="pages per cell (default: the terminal fits 64x64 cells; pictures "
                   "draw one page per cell up to 256 MiB, 2 MiB per cell above)")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the terminal grid (auto: when standard output is a terminal)")
    p.set_defaults(fn=fn)


def run_map(m: Machine, a: argparse.Namespace) -> int:
    """Draw the machine ``m``'s census as ``a`` asks; 1 when the census disagrees
    with the kernel's counters (the problems go to standard error)."""
    if a.cell_pages is not None and a.cell_pages < 1:
        raise BadArgument(f"--cell-pages must be at least 1, got {a.cell_pages}")
    census = m.memory_map()
    problems = m.validate_memory_map(census)
    if a.json:
        print(json.dumps({"max_pfn": census.max_pfn, "counts": census.counts(),
                          "runs": [list(r) for r in census], "problems": problems}, indent=1))
    elif a.svg or a.png:
        if a.svg:
            from emu.frontend.pictures.svg import write_svg
            grid = write_svg(census, a.svg, a.cell_pages)
        else:
            from emu.frontend.pictures.png import write_png
            grid = write_png(census, a.png, a.cell_pages)
        print(f"{a.svg or a.png}: {grid.header()}; {len(grid.cells)} cells, "
              f"{len(grid.legend)} owners")
    else:
        colour = a.color == "always" or (a.color == "auto" and sys.stdout.isatty())
        print(render_terminal(census, a.cell_pages, colour), end="")
    for p in problems:
        print(f"kmemu map: census: {p}", file=sys.stderr)
    return 1 if problems else 0
