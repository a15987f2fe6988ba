"""Views of the page allocator, computed in Python from guest memory.

Layer 4 (``emu.kernel``).  Readers take a drgn ``Program`` (see
:mod:`emu.kernel.types`) for the small structures (``struct zone``,
``struct memblock``) and a bulk reader for ``mem_map``; nothing here asks
the kernel to print.  Formatters produce Linux's ``/proc`` text byte for
byte in layout (kmemu has fewer counters; absent ones are left out, not
faked).  Checks live in ``validate_*`` functions apart from the readers.

>>> zones = read_zones(m.program)           # doctest: +SKIP
>>> print(format_buddyinfo(zones))          # doctest: +SKIP
Node 0, zone      DMA      1      1      0      1      2      1      1      0      1      1      3
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

NR_PAGE_ORDERS = 11
MAX_PAGE_ORDER = 10
PAGE_SHIFT = 12
PAGE_OFFSET = 0xFFFF888000000000
STRUCT_PAGE_SIZE = 64
PAGES_PER_SECTION = 512  # 2 MiB sections: the vmemmap is backed per section
ZONES_PGSHIFT = 62
PAGE_FLAGS = ("reserved", "buddy", "pcp", "head", "tail", "slab", "zeroed")
PG = {name: 1 << i for i, name in enumerate(PAGE_FLAGS)}
WMARKS = ("min", "low", "high", "promo")


@dataclass
class ZoneView:
    """One ``struct zone``, read at one moment.  Counts are in pages."""

    index: int
    name: str
    start_pfn: int
    spanned: int
    present: int
    managed: int
    free: int  # nr_free_pages: buddy lists only
    nr_free: list[int]  # free blocks per order
    watermark: dict[str, int]
    boost: int
    lowmem_reserve: list[int]
    pcp_count: int
    pcp_high: int
    pcp_batch: int
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def populated(self) -> bool:
        return self.present != 0

    @property
    def end_pfn(self) -> int:
        return self.start_pfn + self.spanned


def read_zones(prog) -> list[ZoneView]:  # prog: drgn.Program
    """``zones[]`` as :class:`ZoneView` (C: ``struct zone zones[MAX_NR_ZONES]``)."""
    out = []
    zones = prog["zones"]
    for i in range(len(zones)):
        z = zones[i]
        out.append(ZoneView(
            index=i, name=z.name.string_().decode(), start_pfn=int(z.zone_start_pfn),
            spanned=int(z.spanned_pages), present=int(z.present_pages),
            managed=int(z.managed_pages), free=int(z.nr_free_pages),
            nr_free=[int(z.free_area[o].nr_free) for o in range(NR_PAGE_ORDERS)],
            watermark={w: int(z._watermark[k]) for k, w in enumerate(WMARKS)},
            boost=int(z.watermark_boost),
            lowmem_reserve=[int(v) for v in z.lowmem_reserve],
            pcp_count=int(z.pcp.count), pcp_high=int(z.pcp.high), pcp_batch=int(z.pcp.batch),
            stats={"alloc": sum(int(v) for v in z.stat_alloc),
                   "free": sum(int(v) for v in z.stat_free), "fail": int(z.stat_fail),
                   "pcp_refill": int(z.stat_pcp_refill), "pcp_drain": int(z.stat_pcp_drain)},
        ))
    return out


# --- formats -----------------------------------------------------------------------


def format_buddyinfo(zones: list[ZoneView]) -> str:
    """``/proc/buddyinfo``: populated zones, free blocks per order."""
    lines = []
    for z in zones:
        if z.populated:
            lines.append(f"Node 0, zone {z.name:>8} " + "".join(f"{n:6d} " for n in z.nr_free))
    return "\n".join(lines) + "\n"


def format_pagetypeinfo(zones: list[ZoneView]) -> str:
    """``/proc/pagetypeinfo`` with kmemu's single migrate type (Unmovable)."""
    types = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")
    head = "Free pages count per migrate type at order " + "".join(
        f"{o:6d} " for o in range(NR_PAGE_ORDERS))
    out = ["Page block order: 9", "Pages per block:  512", "", head]
    for z in zones:
        if not z.populated:
            continue
        for t in types:
            counts = z.nr_free if t == "Unmovable" else [0] * NR_PAGE_ORDERS
            out.append(f"Node {0:4d}, zone {z.name:>8}, type {t:>12} "
                       + "".join(f"{n:6d} " for n in counts))
    out.append("")
    out.append("Number of blocks type     " + "".join(f"{t:>12} " for t in types))
    for z in zones:
        if z.populated:
            blocks = -(-z.spanned // 512)
            out.append(f"Node {0}, zone {z.name:>8} " + "".join(
                f"{blocks if t == 'Unmovable' else 0:12d} " for t in types))
    return "\n".join(out) + "\n"


def format_zoneinfo(zones: list[ZoneView]) -> str:
    """``/proc/zoneinfo`` (zone part; kmemu has no per-node LRU statistics)."""
    out = []
    for z in zones:
        s = f"Node 0, zone {z.name:>8}"
        s += (f"\n  pages free     {z.free}"
              f"\n        boost    {z.boost}"
              f"\n        min      {z.watermark['min']}"
              f"\n        low      {z.watermark['low']}"
              f"\n        high     {z.watermark['high']}"
              f"\n        promo    {z.watermark['promo']}"
              f"\n        spanned  {z.spanned}"
              f"\n        present  {z.present}"
              f"\n        managed  {z.managed}"
              f"\n        cma      0")
        s += "\n        protection: (" + ", ".join(str(v) for v in z.lowmem_reserve) + ")"
        if not z.populated:
            out.append(s + "\n")
            continue
        s += f"\n      {'nr_free_pages':<12} {z.free}"
        s += (f"\n  pagesets"
              f"\n    cpu: 0"
              f"\n              count:    {z.pcp_count}"
              f"\n              high:     {z.pcp_high}"
              f"\n              batch:    {z.pcp_batch}"
              f"\n  vm stats threshold: 0"
              f"\n  node_unreclaimable:  0"
              f"\n  start_pfn:           {z.start_pfn}\n")
        out.append(s)
    return "".join(out)


def watermarks(zones: list[ZoneView]) -> dict[str, dict[str, int]]:
    """Per zone: min, low, high, managed, free, pcp (pages) and lowmem_reserve."""
    return {z.name: {"min": z.watermark["min"], "low": z.watermark["low"],
                     "high": z.watermark["high"], "managed": z.managed, "free": z.free,
                     "pcp": z.pcp_count, "lowmem_reserve": list(z.lowmem_reserve)}
            for z in zones}


def format_watermarks(zones: list[ZoneView]) -> str:
    rows = [f"{'zone':<8} {'managed':>9} {'free':>9} {'pcp':>5} {'min':>7} {'low':>7} "
            f"{'high':>7}  lowmem_reserve"]
    for z in zones:
        if z.populated:
            rows.append(f"{z.name:<8} {z.managed:>9} {z.free:>9} {z.pcp_count:>5} "
                        f"{z.watermark['min']:>7} {z.watermark['low']:>7} "
                        f"{z.watermark['high']:>7}  {z.lowmem_reserve}")
    return "\n".join(rows) + "\n"


def read_memblock(prog) -> dict[str, list[tuple[int, int]]]:
    """``memblock.memory`` and ``memblock.reserved`` as (base, size) lists."""
    mb = prog["memblock"]
    out: dict[str, list[tuple[int, int]]] = {}
    for kind in ("memory", "reserved"):
        t = getattr(mb, kind)
        out[kind] = [(int(t.regions[i].base), int(t.regions[i].size)) for i in range(int(t.cnt))]
    return out


def format_memblock(mb: dict[str, list[tuple[int, int]]]) -> str:
    """Like ``/sys/kernel/debug/memblock/{memory,reserved}``, both, with headings."""
    out = []
    for kind, regions in mb.items():
        out.append(f"{kind}:")
        for i, (base, size) in enumerate(regions):
            out.append(f"{i:4d}: 0x{base:016x}..0x{base + size - 1:016x}")
    return "\n".join(out) + "\n"


# --- struct page, in bulk ------------------------------------------------------------


@dataclass(frozen=True)
class PageInfo:
    pfn: int
    flags: int
    private: int
    refcount: int
    alloc_order: int  # order + 1 on the first page of an allocation, else 0
    word1: int = 0  # lru.next / compound_head / slab_cache
    word2: int = 0  # lru.prev / compound_order / slab freelist

    @property
    def zone(self) -> int:
        return self.flags >> ZONES_PGSHIFT

    def has(self, name: str) -> bool:
        return bool(self.flags & PG[name])


def read_pages(read: Callable[[int, int], bytes], mem_map: int, start_pfn: int,
               count: int) -> list[PageInfo]:
    """``mem_map[start_pfn : start_pfn + count]`` decoded (one bulk read)."""
    raw = read(mem_map + start_pfn * STRUCT_PAGE_SIZE, count * STRUCT_PAGE_SIZE)
    out = []
    for i, (flags, w1, w2, _, _, private, ref, _, alloc_order, _) in enumerate(
            struct.iter_unpack("<QQQQQQiIII", raw)):
        out.append(PageInfo(start_pfn + i, flags, private, ref, alloc_order, w1, w2))
    return out


def present_pfn_runs(bitmap: bytes, max_pfn: int) -> list[tuple[int, int]]:
    """[lo, hi) pfn runs whose sections are present (C: ``section_present``)."""
    bits = int.from_bytes(bitmap, "little")
    runs: list[tuple[int, int]] = []
    nsec = (max_pfn + PAGES_PER_SECTION - 1) // PAGES_PER_SECTION
    s = 0
    while s < nsec:
        if not bits >> s & 1:
            s += 1
            continue
        e = s
        while e < nsec and bits >> e & 1:
            e += 1
        runs.append((s * PAGES_PER_SECTION, min(e * PAGES_PER_SECTION, max_pfn)))
        s = e
    return runs


def page_flags_text(flags: int) -> str:
    names = [n for n in PAGE_FLAGS if flags & PG[n]]
    return "|".join(names + [f"zone={flags >> ZONES_PGSHIFT}"])


# --- checks ----------------------------------------------------------------------------


@dataclass
class PageCensus:
    """Every managed page classified: on a buddy list, on the pcp list, or allocated."""

    buddy: dict[int, int]  # zone -> pages in free blocks
    pcp: dict[int, int]
    allocated: dict[int, int]
    reserved: dict[int, int]
    problems: list[str]


def page_census(pages: list[PageInfo], nzones: int = 3) -> PageCensus:
    """Classify pages from a full ``mem_map`` read; report structural problems."""
    c = PageCensus({z: 0 for z in range(nzones)}, {z: 0 for z in range(nzones)},
                   {z: 0 for z in range(nzones)}, {z: 0 for z in range(nzones)}, [])
    covered_until = -1
    for p in pages:
        z = p.zone
        if p.pfn < covered_until:
            if p.has("buddy") or p.has("pcp"):
                c.problems.append(f"pfn {p.pfn:#x} is marked free inside another free block")
            continue
        if p.has("reserved"):
            c.reserved[z] += 1
        elif p.has("buddy"):
            order = p.private
            if order > MAX_PAGE_ORDER or p.pfn & ((1 << order) - 1):
                c.problems.append(f"free block at pfn {p.pfn:#x} has bad order {order}")
                continue
            c.buddy[z] += 1 << order
            covered_until = p.pfn + (1 << order)
        elif p.has("pcp"):
            c.pcp[z] += 1
        else:
            c.allocated[z] += 1
    return c


def validate_zones(zones: list[ZoneView], census: PageCensus) -> list[str]:
    """Compare the kernel's counters with what the pages say; [] when consistent."""
    problems = list(census.problems)
    for z in zones:
        blocks = sum(n << o for o, n in enumerate(z.nr_free))
        if blocks != z.free:
            problems.append(f"{z.name}: free_area blocks hold {blocks} pages, "
                            f"nr_free_pages says {z.free}")
        if census.buddy[z.index] != z.free:
            problems.append(f"{z.name}: {census.buddy[z.index]} pages marked buddy, "
                            f"nr_free_pages says {z.free}")
        if census.pcp[z.index] != z.pcp_count:
            problems.append(f"{z.name}: {census.pcp[z.index]} pages marked pcp, "
                            f"pcp.count says {z.pcp_count}")
        total = census.buddy[z.index] + census.pcp[z.index] + census.allocated[z.index]
        if total != z.managed:
            problems.append(f"{z.name}: free {census.buddy[z.index]} + pcp "
                            f"{census.pcp[z.index]} + allocated {census.allocated[z.index]}"
                            f" = {total}, managed says {z.managed}")
    return problems
