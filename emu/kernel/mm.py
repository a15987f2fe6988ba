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

import functools
import struct
from collections.abc import Callable, Iterable, Iterator
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
WMARKS = ("min", "low", "high")
PAGEBLOCK_ORDER = 9
PAGEBLOCK_NR_PAGES = 1 << PAGEBLOCK_ORDER
# Linux 6.1's migrate types in its order (mmzone.h); the first three have pcp lists
MIGRATE_TYPES = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")
MIGRATE_PCPTYPES = 3
PB_MIGRATETYPE_MASK = 0x7
PB_MIXED = 0x80  # kmemu: free pages of this block may sit on another type's list


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
    reserved_highatomic: int = 0  # pages in HighAtomic pageblocks
    stat_threshold: int = 0  # Linux's vm stats threshold
    # free blocks per migrate type and order, counted by walking the lists (as
    # Linux's pagetypeinfo does), and the pfns of their first pages
    free_by_type: dict[str, list[int]] = field(default_factory=dict)
    free_blocks: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    pcp_by_type: dict[str, list[int]] = field(default_factory=dict)  # pfns per pcp list

    @property
    def populated(self) -> bool:
        return self.present != 0

    @property
    def end_pfn(self) -> int:
        return self.start_pfn + self.spanned


def _walk_list(prog, head: int, limit: int = 1 << 22) -> list[int]:
    """Entry addresses of a ``struct list_head`` list (the head not included)."""
    out = []
    node = prog.read_u64(head)
    while node != head and len(out) < limit:
        out.append(node)
        node = prog.read_u64(node)
    return out


def read_zones(prog) -> list[ZoneView]:  # prog: drgn.Program
    """``zones[]`` as :class:`ZoneView` (C: ``struct zone zones[MAX_NR_ZONES]``)."""
    out = []
    zones = prog["zones"]
    mem_map = int(prog["mem_map"])
    lru = 8  # offsetof(struct page, lru)

    def pfns(head: int) -> list[int]:
        return [(a - lru - mem_map) // STRUCT_PAGE_SIZE for a in _walk_list(prog, head)]

    for i in range(len(zones)):
        z = zones[i]
        present = int(z.present_pages)
        free_blocks: dict[tuple[str, int], list[int]] = {}
        pcp_by_type: dict[str, list[int]] = {}
        if present:
            for o in range(NR_PAGE_ORDERS):
                for t, name in enumerate(MIGRATE_TYPES):
                    free_blocks[(name, o)] = pfns(z.free_area[o].free_list[t].address_)
            for t in range(MIGRATE_PCPTYPES):
                pcp_by_type[MIGRATE_TYPES[t]] = pfns(z.pcp.lists[t].address_)
        out.append(ZoneView(
            index=i, name=z.name.string_().decode(), start_pfn=int(z.zone_start_pfn),
            spanned=int(z.spanned_pages), present=present,
            managed=int(z.managed_pages), free=int(z.nr_free_pages),
            nr_free=[int(z.free_area[o].nr_free) for o in range(NR_PAGE_ORDERS)],
            watermark={w: int(z._watermark[k]) for k, w in enumerate(WMARKS)},
            boost=int(z.watermark_boost),
            lowmem_reserve=[int(v) for v in z.lowmem_reserve],
            pcp_count=int(z.pcp.count), pcp_high=int(z.pcp.high), pcp_batch=int(z.pcp.batch),
            stats={"alloc": sum(int(v) for v in z.stat_alloc),
                   "free": sum(int(v) for v in z.stat_free), "fail": int(z.stat_fail),
                   "pcp_refill": int(z.stat_pcp_refill), "pcp_drain": int(z.stat_pcp_drain),
                   "fallback": int(z.stat_fallback)},
            reserved_highatomic=int(z.nr_reserved_highatomic),
            stat_threshold=int(z.stat_threshold),
            free_by_type={t: [len(free_blocks.get((t, o), [])) for o in range(NR_PAGE_ORDERS)]
                          for t in MIGRATE_TYPES},
            free_blocks=free_blocks, pcp_by_type=pcp_by_type,
        ))
    return out


def read_pageblocks(prog) -> bytes:
    """``pageblock_flags[]``: one byte per pageblock up to max_pfn (type | PB_MIXED)."""
    n = (int(prog["max_pfn"]) + PAGEBLOCK_NR_PAGES - 1) // PAGEBLOCK_NR_PAGES
    return prog.read(int(prog["pageblock_flags"]), n)


def pageblock_counts(zone: ZoneView, blocks: bytes,
                     valid: Callable[[int], bool]) -> dict[str, int]:
    """Linux's "Number of blocks type" row: pageblocks of each type, stepping
    from the zone's start pfn by a pageblock over its span (pfns with a struct page)."""
    counts = dict.fromkeys(MIGRATE_TYPES, 0)
    for pfn in range(zone.start_pfn, zone.end_pfn, PAGEBLOCK_NR_PAGES):
        if valid(pfn):
            mt = blocks[pfn >> PAGEBLOCK_ORDER] & PB_MIGRATETYPE_MASK
            if mt < len(MIGRATE_TYPES):
                counts[MIGRATE_TYPES[mt]] += 1
    return counts


def vm_stats_threshold(managed: int, cpus: int = 1) -> int:
    """Linux's calculate_normal_threshold (mm/vmstat.c)."""
    mem = managed >> (27 - PAGE_SHIFT)
    return min(125, 2 * cpus.bit_length() * (1 + mem.bit_length()))


# --- formats -----------------------------------------------------------------------


def format_buddyinfo(zones: list[ZoneView]) -> str:
    """``/proc/buddyinfo``: populated zones, free blocks per order."""
    lines = []
    for z in zones:
        if z.populated:
            lines.append(f"Node 0, zone {z.name:>8} " + "".join(f"{n:6d} " for n in z.nr_free))
    return "\n".join(lines) + "\n"


def format_pagetypeinfo(zones: list[ZoneView], blocks: bytes,
                        valid: Callable[[int], bool]) -> str:
    """``/proc/pagetypeinfo`` as Linux 6.1 prints it: free blocks per migrate type
    and order, then pageblocks per type (populated zones only)."""
    out = [f"Page block order: {PAGEBLOCK_ORDER}", f"Pages per block:  {PAGEBLOCK_NR_PAGES}", "",
           f"{'Free pages count per migrate type at order':<43} "
           + "".join(f"{o:6d} " for o in range(NR_PAGE_ORDERS))]
    for z in zones:
        if not z.populated:
            continue
        for t in MIGRATE_TYPES:
            out.append(f"Node {0:4d}, zone {z.name:>8}, type {t:>12} "
                       + "".join(f"{n:6d} " for n in z.free_by_type[t]))
    out.append("")
    out.append(f"{'Number of blocks type ':<23}" + "".join(f"{t:>12} " for t in MIGRATE_TYPES))
    for z in zones:
        if z.populated:
            counts = pageblock_counts(z, blocks, valid)
            out.append(f"Node {0}, zone {z.name:>8} "
                       + "".join(f"{counts[t]:12d} " for t in MIGRATE_TYPES))
    return "\n".join(out) + "\n"


def format_zoneinfo(zones: list[ZoneView]) -> str:
    """``/proc/zoneinfo`` as Linux 6.1 prints it, every zone type it configures.
    kmemu has no per-node LRU or NUMA statistics: those lines are left out, and
    of the per-zone counters only nr_free_pages is printed."""
    out = []
    for z in zones:
        s = (f"Node 0, zone {z.name:>8}"
             f"\n  pages free     {z.free}"
             f"\n        boost    {z.boost}"
             f"\n        min      {z.watermark['min']}"
             f"\n        low      {z.watermark['low']}"
             f"\n        high     {z.watermark['high']}"
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
              f"\n              count: {z.pcp_count}"
              f"\n              high:  {z.pcp_high}"
              f"\n              batch: {z.pcp_batch}"
              f"\n  vm stats threshold: {z.stat_threshold}"
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
    """``memblock.memory`` and ``memblock.reserved`` as (base, size) lists: each
    ``regions`` array in one read (a 16,384-entry map's regions were 65,000 reads of
    one field each)."""
    from drgn import offsetof, sizeof

    mb = prog["memblock"]
    region = prog.type("struct memblock_region")
    size, at_base, at_size = sizeof(region), offsetof(region, "base"), offsetof(region, "size")
    out: dict[str, list[tuple[int, int]]] = {}
    for kind in ("memory", "reserved"):
        t = getattr(mb, kind)
        n = int(t.cnt)
        raw = prog.read(t.regions.value_(), n * size) if n else b""
        out[kind] = [(struct.unpack_from("<Q", raw, o + at_base)[0],
                      struct.unpack_from("<Q", raw, o + at_size)[0])
                     for o in range(0, n * size, size)]
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


#: struct page as read in bulk: flags, three list/compound/slab words, private,
#: _refcount, kmemu's alloc_order (the rest is padding to 64 bytes)
_STRUCT_PAGE = struct.Struct("<QQQQQQiIII")
_FLAGS_WORD, _PRIVATE_WORD = 0, 5  # u64 indexes of page->flags and page->private


@dataclass(frozen=True)
class PageRun:
    """``mem_map[start_pfn : start_pfn + n]`` from one bulk read.  Views that look at
    every page (the census, the slab walk) read columns of it and decode a
    :class:`PageInfo` only for the pages they keep: a PageInfo per page of a 256 MiB
    machine costs ~80 ms, a column a fraction of a millisecond."""

    start_pfn: int
    raw: bytes

    def column(self, word: int) -> list[int]:
        """The ``word``-th u64 of every struct page (0: flags, 5: private)."""
        return memoryview(self.raw).cast("Q")[word::STRUCT_PAGE_SIZE // 8].tolist()

    def info(self, i: int) -> PageInfo:
        flags, w1, w2, _, _, private, ref, _, alloc_order, _ = _STRUCT_PAGE.unpack_from(
            self.raw, i * STRUCT_PAGE_SIZE)
        return PageInfo(self.start_pfn + i, flags, private, ref, alloc_order, w1, w2)

    def infos(self, any_of: int | None = None) -> list[PageInfo]:
        """Every page decoded, or only those with one of the ``any_of`` flag bits."""
        if any_of is None:
            return [PageInfo(self.start_pfn + i, flags, private, ref, alloc_order, w1, w2)
                    for i, (flags, w1, w2, _, _, private, ref, _, alloc_order, _)
                    in enumerate(_STRUCT_PAGE.iter_unpack(self.raw))]
        return [self.info(i) for i in self.indexes_with(any_of)]

    def indexes_with(self, any_of: int) -> list[int]:
        """Indexes of the pages with one of the ``any_of`` flag bits, ascending.  The scan
        runs at C speed: each byte of ``flags`` holding some of the bits is taken as a
        column (a strided bytes slice), mapped to 0/1 by ``translate`` and searched with
        ``find``; Python runs only per page found (a 256 MiB machine's 65,536 pages
        looked at one by one cost ~2 ms per slab walk)."""
        found: set[int] = set()
        for byte in range(8):
            bits = any_of >> (8 * byte) & 0xFF
            if bits:
                found.update(_finds(self.raw[byte::STRUCT_PAGE_SIZE].translate(
                    _bits_table(bits)), 1))
        return sorted(found)


def _finds(column: bytes, value: int, lo: int = 0, hi: int | None = None) -> Iterator[int]:
    """The indexes of ``value`` in ``column[lo:hi]``, ascending (``bytes.find``: C speed)."""
    i = column.find(value, lo, hi)
    while i >= 0:
        yield i
        i = column.find(value, i + 1, hi)


@functools.cache
def _bits_table(bits: int) -> bytes:
    """A ``bytes.translate`` table: 1 for the byte values with one of ``bits`` set, else 0."""
    return bytes(1 if b & bits else 0 for b in range(256))


def read_page_run(read: Callable[[int, int], bytes], mem_map: int, start_pfn: int,
                  count: int) -> PageRun:
    """``mem_map[start_pfn : start_pfn + count]`` in one bulk read."""
    return PageRun(start_pfn, read(mem_map + start_pfn * STRUCT_PAGE_SIZE,
                                   count * STRUCT_PAGE_SIZE))


def read_pages(read: Callable[[int, int], bytes], mem_map: int, start_pfn: int,
               count: int) -> list[PageInfo]:
    """``mem_map[start_pfn : start_pfn + count]`` decoded (one bulk read)."""
    return read_page_run(read, mem_map, start_pfn, count).infos()


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
    covered_until: int = -1  # the end of the last free block seen (pages are added in order)

    @classmethod
    def empty(cls, nzones: int = 5) -> PageCensus:
        return cls(*({z: 0 for z in range(nzones)} for _ in range(4)), [])

    def add(self, run: PageRun) -> None:
        """Classify the pages of ``run`` (runs come in pfn order); report structural
        problems.

        The counting runs at C speed over byte columns of the bulk read: each page's
        kind (unmarked, reserved, buddy head, pcp: flags byte 0 through a translate
        table) plus four times its zone (flags byte 7) in one byte, counted with
        ``bytes.count`` outside the free blocks.  Python looks only at the free-block
        heads (to know which pages a block covers) and at free marks inside a
        block: a 256 MiB machine's 65,536 pages one by one took ~18 ms."""
        raw, start = run.raw, run.start_pfn
        n = len(raw) // STRUCT_PAGE_SIZE
        flags0 = raw[0::STRUCT_PAGE_SIZE]  # the byte holding PG_reserved, PG_buddy, PG_pcp
        kinds = flags0.translate(_KIND)
        keys = (int.from_bytes(kinds, "little") + int.from_bytes(
            raw[7::STRUCT_PAGE_SIZE].translate(_ZONE_TIMES_4), "little")).to_bytes(n, "little")
        until = self.covered_until - start  # run index where the last free block ends
        covered = [(0, min(until, n))] if until > 0 else []
        found: list[tuple[int, str]] = []
        for i in _finds(kinds, _BUDDY_HEAD):
            if i >= until:  # a head inside a block is reported with the block below
                at = i * STRUCT_PAGE_SIZE + 8 * _PRIVATE_WORD
                order = int.from_bytes(raw[at:at + 8], "little")
                if order > MAX_PAGE_ORDER or (start + i) & ((1 << order) - 1):
                    found.append((i, f"free block at pfn {start + i:#x} has bad order {order}"))
                else:
                    self.buddy[keys[i] >> 2] += 1 << order
                    until = i + (1 << order)
                    covered.append((i + 1, min(until, n)))
        marks = flags0.translate(_bits_table(PG["buddy"] | PG["pcp"]))
        for lo, hi in covered:
            found += [(i, f"pfn {start + i:#x} is marked free inside another free block")
                      for i in _finds(marks, 1, lo, hi)]
        self.problems += [text for _, text in sorted(found)]
        self.covered_until = start + until
        edges = [0, *(x for r in covered for x in r), n]
        outside = b"".join(keys[edges[j]:edges[j + 1]] for j in range(0, len(edges), 2))
        for zone in range(4):
            for counts, kind in ((self.allocated, 0), (self.reserved, 1), (self.pcp, 3)):
                c = outside.count(zone << 2 | kind)
                if c:
                    counts[zone] += c


def _kind_table() -> bytes:
    """Flags byte 0 -> the census kind, in ``add``'s order of precedence: 1 reserved,
    2 buddy (a free block's head), 3 pcp, 0 none of them."""
    def kind(b: int) -> int:
        return (1 if b & PG["reserved"] else 2 if b & PG["buddy"] else
                3 if b & PG["pcp"] else 0)
    assert max(PG["reserved"], PG["buddy"], PG["pcp"]) < 256  # all in flags byte 0
    return bytes(kind(b) for b in range(256))


_KIND = _kind_table()
_BUDDY_HEAD = 2
#: flags byte 7 -> 4 * zone (ZONES_PGSHIFT 62: the zone is that byte's top two bits)
_ZONE_TIMES_4 = bytes((b >> (ZONES_PGSHIFT - 56)) << 2 for b in range(256))


def page_census(runs: Iterable[PageRun], nzones: int = 5) -> PageCensus:
    """Classify pages from a full ``mem_map`` read (its runs in pfn order)."""
    c = PageCensus.empty(nzones)
    for run in runs:
        c.add(run)
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


def validate_mobility(zones: list[ZoneView], pages: list[PageInfo], blocks: bytes) -> list[str]:
    """Grouping by mobility against the pages themselves (``pages``: at least every
    page marked buddy or pcp; the others are not looked at); [] when consistent.

    Every free block is on exactly one free list, of its own order; the lists
    hold exactly the pages marked buddy; a block on another type's list than
    its pageblock's lies in a pageblock marked mixed (a fallback that did not
    take the block, or a pcp page freed as the type its block had before);
    per-type counts add up to nr_free; pcp lists hold exactly the pcp pages,
    each remembering a type its list may hold; the highatomic reserve counts
    the HighAtomic pageblocks.
    """
    problems: list[str] = []
    by_pfn = {p.pfn: p for p in pages if p.has("buddy") or p.has("pcp")}
    listed: dict[int, tuple[str, int]] = {}
    for z in zones:
        if not z.populated:
            continue
        for (t, o), pfns in z.free_blocks.items():
            for pfn in pfns:
                if pfn in listed:
                    problems.append(f"{z.name}: pfn {pfn:#x} is on two free lists")
                listed[pfn] = (t, o)
                p = by_pfn.get(pfn)
                if p is None or not p.has("buddy"):
                    problems.append(f"{z.name}: pfn {pfn:#x} on the {t} order-{o} list "
                                    f"is not marked buddy")
                    continue
                if p.private != o:
                    problems.append(f"{z.name}: pfn {pfn:#x} has order {p.private}, "
                                    f"on the order-{o} list")
                for b in range(pfn, pfn + (1 << o), PAGEBLOCK_NR_PAGES):
                    flags = blocks[b >> PAGEBLOCK_ORDER]
                    block_type = MIGRATE_TYPES[flags & PB_MIGRATETYPE_MASK]
                    if block_type != t and not flags & PB_MIXED:
                        problems.append(f"{z.name}: free block at pfn {pfn:#x} (order {o}) "
                                        f"is on the {t} list, its pageblock is {block_type}")
        for o in range(NR_PAGE_ORDERS):
            per_type = sum(z.free_by_type[t][o] for t in MIGRATE_TYPES)
            if per_type != z.nr_free[o]:
                problems.append(f"{z.name}: order {o}: the type lists hold {per_type} blocks, "
                                f"nr_free says {z.nr_free[o]}")
        on_pcp = 0
        for t, pfns in z.pcp_by_type.items():
            for pfn in pfns:
                on_pcp += 1
                p = by_pfn.get(pfn)
                if p is None or not p.has("pcp"):
                    problems.append(f"{z.name}: pfn {pfn:#x} on the {t} pcp list is not "
                                    f"marked pcp")
                    continue
                remembered = MIGRATE_TYPES[p.private] if p.private < 5 else str(p.private)
                if remembered != t and not (t == "Movable" and remembered == "HighAtomic"):
                    problems.append(f"{z.name}: pcp page {pfn:#x} on the {t} list remembers "
                                    f"type {remembered}")
        if on_pcp != z.pcp_count:
            problems.append(f"{z.name}: the pcp lists hold {on_pcp} pages, count says "
                            f"{z.pcp_count}")
        ha = sum(1 for pfn in range(z.start_pfn & ~(PAGEBLOCK_NR_PAGES - 1), z.end_pfn,
                                    PAGEBLOCK_NR_PAGES)
                 if (blocks[pfn >> PAGEBLOCK_ORDER] & PB_MIGRATETYPE_MASK) == 3)
        if ha * PAGEBLOCK_NR_PAGES != z.reserved_highatomic:
            problems.append(f"{z.name}: {ha} HighAtomic pageblocks, nr_reserved_highatomic "
                            f"says {z.reserved_highatomic}")
    for pfn, p in by_pfn.items():
        if p.has("buddy") and pfn not in listed:
            problems.append(f"pfn {pfn:#x} is marked buddy but on no free list")
    return problems
