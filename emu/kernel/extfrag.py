"""Linux's external-fragmentation figures, from a zone's free blocks per order.

Layer 4 (``emu.kernel``).  The two indexes ``/sys/kernel/debug/extfrag/`` shows
(mm/vmstat.c, 6.1), in thousandths as Linux computes them:

- **unusable free space index** (``unusable_index``): the part of the free
  memory that cannot serve an allocation of this order, 0 (none) .. 1000 (all;
  also when nothing is free).
- **fragmentation index** (``extfrag_index``): for an order that would fail,
  whether it fails for lack of memory (towards 0) or because free memory is
  split into pieces too small (towards 1000); ``-1000`` ("-1.000") when a
  block of that order is free, so the allocation would succeed.

Both start from Linux's contig-page info: free pages, free blocks in all, and
free blocks able to serve the order (counted in units of that order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from emu.kernel.mm import NR_PAGE_ORDERS, ZoneView


@dataclass(frozen=True)
class ContigInfo:
    free_pages: int
    free_blocks_total: int
    free_blocks_suitable: int


def contig_info(nr_free: Sequence[int], order: int) -> ContigInfo:
    """Free pages, free blocks, and blocks of at least ``order`` (in order-sized units)."""
    pages = total = suitable = 0
    for o, blocks in enumerate(nr_free):
        total += blocks
        pages += blocks << o
        if o >= order:
            suitable += blocks << (o - order)
    return ContigInfo(pages, total, suitable)


def unusable_index(nr_free: Sequence[int], order: int) -> int:
    """The unusable free space index of ``order``, in thousandths (0..1000)."""
    info = contig_info(nr_free, order)
    if info.free_pages == 0:
        return 1000
    return (info.free_pages - (info.free_blocks_suitable << order)) * 1000 // info.free_pages


def fragmentation_index(nr_free: Sequence[int], order: int) -> int:
    """The fragmentation index of ``order``, in thousandths (-1000, or 0..1000)."""
    info = contig_info(nr_free, order)
    if not info.free_blocks_total:
        return 0
    if info.free_blocks_suitable:
        return -1000
    return 1000 - (1000 + info.free_pages * 1000 // (1 << order)) // info.free_blocks_total


def _thousandths(v: int, width: int) -> str:
    """C's ``"%<width>d.%03d"`` of v / 1000 and v % 1000 (both truncated toward zero)."""
    q = abs(v) // 1000 * (1 if v >= 0 else -1)
    r = abs(v) % 1000 * (1 if v >= 0 else -1)
    return f"{q:{width}d}.{r:03d}"


def _format(zones: list[ZoneView], fn, width: int) -> str:  # noqa: ANN001
    lines = []
    for z in zones:
        if not z.populated:
            continue
        cells = "".join(_thousandths(fn(z.nr_free, o), width) + " " for o in range(NR_PAGE_ORDERS))
        lines.append(f"Node 0, zone {z.name:>8} {cells}")
    return "\n".join(lines) + "\n" if lines else ""


def format_unusable_index(zones: list[ZoneView]) -> str:
    """``/sys/kernel/debug/extfrag/unusable_index``: populated zones, one value per order."""
    return _format(zones, unusable_index, 1)


def format_extfrag_index(zones: list[ZoneView]) -> str:
    """``/sys/kernel/debug/extfrag/extfrag_index``: populated zones, one value per order."""
    return _format(zones, fragmentation_index, 2)
