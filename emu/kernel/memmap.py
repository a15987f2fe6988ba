"""The census of physical memory: who holds every page frame (layer 4).

Every pfn from 0 to ``max_pfn`` gets exactly one owner, read from the
kernel's own records, never guessed:

- ``struct page``: ``PG_buddy`` + order (free blocks), ``PG_pcp`` (the per-CPU
  list), ``PG_slab`` + ``slab_cache`` (each cache by name), ``alloc_order``
  (the size of an allocation), ``page_type`` (``PAGE_TYPE_LARGE_KMALLOC``),
  ``PG_reserved`` (not managed by the buddy allocator);
- the page tables under ``cr3``: every table page (kernel's or vmalloc's, by
  the addresses it maps) and the pages behind the vmemmap and KASAN shadow;
- the vmalloc areas' ``pages[]`` arrays, and ``struct module`` for the areas
  that are modules (text, rodata, data, init);
- kernel symbols (the image's sections, ``pageblock_flags``, the e820 table,
  memblock's region arrays), memblock.reserved, and the firmware's e820 map
  (holes and reserved ranges).

What none of these records name is labelled plainly: ``allocated (unknown
owner)`` (a page-allocator block nobody tagged), ``memblock reserved
(unknown owner)``.  :func:`census` is a pure function of a
:class:`CensusInput`, so it can be tested without a machine;
:func:`validate_census` checks the result against the kernel's counters.

>>> mm = census(inp)                                    # doctest: +SKIP
>>> mm[0]
Run(pfn=0, count=1, owner='firmware: BIOS page (pfn 0)')
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from emu.kernel.mm import MAX_PAGE_ORDER, PAGE_SHIFT, PG, STRUCT_PAGE_SIZE, ZONES_PGSHIFT

PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_TYPE_LARGE_KMALLOC = 1  # <kmemu/mm_types.h>
VMALLOC_START = 0xFFFFC90000000000
VMALLOC_END = 0xFFFFE90000000000
VMEMMAP_START = 0xFFFFEA0000000000
VMEMMAP_END = 0xFFFFEB0000000000
KASAN_SHADOW_START = 0xFFFFEC0000000000  # Linux's x86-64 shadow range
KASAN_SHADOW_END = 0xFFFFFC0000000000
MODULES_VADDR = 0xFFFFFFFFA0000000
MODULES_END = 0xFFFFFFFFFF000000
PAGES_PER_READ = 1 << 18  # struct pages per bulk read (16 MiB of host buffer)
_FLAGS = struct.Struct("<Q56x")  # one struct page's flags
E820_NAMES = {2: "e820 reserved", 3: "ACPI data", 4: "ACPI NVS", 5: "unusable",
              7: "persistent memory"}

#: The kinds owners fall into, in legend order; :func:`kind_of` maps an owner to one.
KINDS = ("free", "pcp", "slab", "pages", "vmalloc", "module", "pagetable", "vmemmap",
         "kernel", "memblock", "kasan", "firmware", "hole")

FREE_PCP = "free (pcp list)"
UNKNOWN_ALLOC = "allocated (unknown owner)"
LARGE_KMALLOC = "kmalloc (large)"
PT_KERNEL = "page tables (kernel)"
PT_VMALLOC = "page tables (vmalloc)"
VMEMMAP = "struct pages (vmemmap)"
KASAN_SHADOW = "KASAN shadow"
MEMBLOCK_UNKNOWN = "memblock reserved (unknown owner)"
RESERVED_UNKNOWN = "reserved (unknown owner)"
HOLE = "hole (no RAM)"


def free_owner(order: int) -> str:
    return f"free order {order}"


def kind_of(owner: str) -> str:
    """The kind of an owner label (one of :data:`KINDS`)."""
    for prefix, kind in _PREFIXES:
        if owner.startswith(prefix):
            return kind
    raise ValueError(f"not a census owner: {owner!r}")


_PREFIXES = (("free order ", "free"), (FREE_PCP, "pcp"), ("slab ", "slab"),
             (LARGE_KMALLOC, "pages"), (UNKNOWN_ALLOC, "pages"), ("vmalloc", "vmalloc"),
             ("module ", "module"), ("page tables", "pagetable"), (VMEMMAP, "vmemmap"),
             ("kernel ", "kernel"), ("memblock", "memblock"), (RESERVED_UNKNOWN, "memblock"),
             (KASAN_SHADOW, "kasan"), ("firmware", "firmware"), (HOLE, "hole"))


class Run(NamedTuple):
    """``count`` page frames from ``pfn`` on, all held by ``owner``."""

    pfn: int
    count: int
    owner: str


@dataclass
class ZoneTally:
    """What the census found in one zone (pages)."""

    free: int = 0
    pcp: int = 0
    managed: int = 0  # every page with a struct page that is not PG_reserved


class MemoryMap(list[Run]):
    """The census: a list of :class:`Run` covering pfns ``[0, max_pfn)`` in order."""

    def __init__(self, runs: Iterable[Run], max_pfn: int, zones: dict[int, ZoneTally],
                 problems: list[str], managed_owners: dict[str, int] | None = None) -> None:
        super().__init__(runs)
        self.managed_owners = managed_owners or {}  # owner -> pages the buddy allocator manages
        self.max_pfn = max_pfn
        self.zones = zones  # zone index -> what the struct pages say
        self.problems = problems  # inconsistencies met while classifying

    def counts(self) -> dict[str, int]:
        """Pages per owner, in :data:`KINDS` order, then by pages (most first)."""
        out: dict[str, int] = {}
        for r in self:
            out[r.owner] = out.get(r.owner, 0) + r.count
        return dict(sorted(out.items(), key=lambda kv: (KINDS.index(kind_of(kv[0])),
                                                        _order_key(kv[0]), -kv[1], kv[0])))

    def kind_counts(self) -> dict[str, int]:
        out = dict.fromkeys(KINDS, 0)
        for r in self:
            out[kind_of(r.owner)] += r.count
        return {k: v for k, v in out.items() if v}

    def owner_at(self, pfn: int) -> str:
        i = bisect.bisect_right([r.pfn for r in self], pfn) - 1
        if i < 0 or pfn >= self[i].pfn + self[i].count:
            raise IndexError(f"pfn {pfn:#x} is outside the census (max_pfn {self.max_pfn:#x})")
        return self[i].owner

    def pages_of(self, owner: str) -> int:
        return sum(r.count for r in self if r.owner == owner)


def _order_key(owner: str) -> int:
    return int(owner.rsplit(" ", 1)[1]) if owner.startswith("free order ") else 0


# --- inputs ------------------------------------------------------------------------------


@dataclass
class CensusInput:
    """Everything the census reads, gathered by the machine (layer 5)."""

    max_pfn: int
    present: list[tuple[int, int]]  # [lo, hi) pfn runs that have a struct page
    read_pages: Callable[[int, int], bytes]  # raw struct pages: (first pfn, count)
    e820: list[tuple[int, int, int]]  # (base, size, type) as the kernel read them
    memblock_reserved: list[tuple[int, int]]  # (base, size)
    caches: dict[int, tuple[str, int]]  # struct kmem_cache address -> (name, order)
    #: SLOB's pages, whose struct page names no cache (its pages are shared by all
    #: caches): head pfn -> (list name, order); None under SLUB and SLAB
    slab_pages: dict[int, tuple[str, int]] | None = None
    # pfn -> owner, from page tables, vmalloc areas and named kernel ranges
    owners: dict[int, str] = field(default_factory=dict)


def paint(owners: dict[int, str], start_pa: int, end_pa: int, owner: str) -> None:
    """Give every page overlapping physical ``[start_pa, end_pa)`` to ``owner``
    (later paints win: paint the most specific record last)."""
    for pfn in range(start_pa >> PAGE_SHIFT, (end_pa + PAGE_SIZE - 1) >> PAGE_SHIFT):
        owners[pfn] = owner


# --- page tables -------------------------------------------------------------------------

ReadTable = Callable[[int], tuple[int, ...]]  # physical address -> 512 entries
_ADDR = 0x000FFFFFFFFFF000
_SPAN = (1 << 39, 1 << 30, 1 << 21, 1 << 12)  # what one entry maps at each level


def _canonical(va: int) -> int:
    return va | 0xFFFF000000000000 if va >> 47 & 1 else va


def _table_owner(lo: int, span: int) -> str:
    hi = lo + span
    if (VMALLOC_START <= lo and hi <= VMALLOC_END) or (MODULES_VADDR <= lo and hi <= MODULES_END):
        return PT_VMALLOC
    return PT_KERNEL


def walk_page_tables(read_table: ReadTable, cr3: int,
                     leaf_owners: list[tuple[int, int, str]]) -> dict[int, str]:
    """pfn -> owner for every page-table page under ``cr3`` (``page tables
    (kernel)`` or ``(vmalloc)`` by the addresses the table maps: a table that
    maps only vmalloc or module addresses is vmalloc's) and for the pages that
    leaves inside the ``(va_lo, va_hi, owner)`` ranges map (vmemmap, shadow)."""
    out: dict[int, str] = {}

    def table(pa: int, level: int, base: int) -> None:
        out[pa >> PAGE_SHIFT] = _table_owner(_canonical(base), _SPAN[level] * 512)
        wanted = [(lo, hi, o) for lo, hi, o in leaf_owners
                  if lo < _canonical(base) + _SPAN[level] * 512 and _canonical(base) < hi]
        for i, e in enumerate(read_table(pa)):
            if not e & 1:
                continue
            va = base + i * _SPAN[level]
            leaf = level == 3 or (level in (1, 2) and e & 0x80)
            if not leaf:
                table(e & _ADDR, level + 1, va)
                continue
            cva = _canonical(va)
            for lo, hi, owner in wanted:
                if lo <= cva < hi:
                    first = (e & _ADDR & ~(_SPAN[level] - 1)) >> PAGE_SHIFT
                    for pfn in range(first, first + (_SPAN[level] >> PAGE_SHIFT)):
                        out.setdefault(pfn, owner)
                    break

    table(cr3 & _ADDR, 0, 0)
    return out


# --- the census --------------------------------------------------------------------------


class _Pages:
    """Struct pages of one present run, read in bounded chunks on demand."""

    def __init__(self, read: Callable[[int, int], bytes], lo: int, hi: int) -> None:
        self.read, self.lo, self.hi = read, lo, hi
        self.base, self.buf = -1, b""

    def _load(self, pfn: int) -> int:
        """The offset of ``pfn``'s struct page in the buffer, reading if needed."""
        if not self.base <= pfn < self.base + len(self.buf) // STRUCT_PAGE_SIZE:
            self.base = pfn
            self.buf = self.read(pfn, min(PAGES_PER_READ, self.hi - pfn))
        return (pfn - self.base) * STRUCT_PAGE_SIZE

    def reserved_until(self, pfn: int) -> int:
        """The first pfn from ``pfn`` on (at most ``hi``) that is not PG_reserved."""
        while pfn < self.hi:
            off = self._load(pfn)
            end = min(self.hi, self.base + len(self.buf) // STRUCT_PAGE_SIZE)
            for flags, in _FLAGS.iter_unpack(self.buf[off:(end - self.base) * STRUCT_PAGE_SIZE]):
                if not flags & PG["reserved"]:
                    return pfn
                pfn += 1
        return pfn

    def get(self, pfn: int) -> tuple[int, int, int, int, int]:
        """(flags, word1, private, page_type, alloc_order) of ``pfn``."""
        off = self._load(pfn)
        flags, w1 = struct.unpack_from("<QQ", self.buf, off)
        private, _ref, page_type, alloc_order = struct.unpack_from("<QiII", self.buf, off + 40)
        return flags, w1, private, page_type, alloc_order


class _Runs:
    def __init__(self) -> None:
        self.runs: list[Run] = []
        self.managed: dict[str, int] = {}  # owner -> pages that are not PG_reserved

    def add(self, pfn: int, count: int, owner: str, managed: bool = False) -> None:
        if count <= 0:
            return
        if managed:
            self.managed[owner] = self.managed.get(owner, 0) + count
        last = self.runs[-1] if self.runs else None
        if last and last.owner == owner and last.pfn + last.count == pfn:
            self.runs[-1] = Run(last.pfn, last.count + count, owner)
        else:
            self.runs.append(Run(pfn, count, owner))


class _E820:
    """The firmware's word for a pfn: "RAM", a reserved type's name, or a hole.

    Usable entries count whole pages only (rounded inward, as the kernel feeds
    memblock); other types are rounded outward, so a page shared by RAM and a
    reserved range is the firmware's.  Spans are made disjoint; gaps are holes."""

    def __init__(self, entries: list[tuple[int, int, int]]) -> None:
        raw: list[tuple[int, int, str]] = []
        for base, size, typ in entries:
            if typ == 1:
                lo, hi = (base + PAGE_SIZE - 1) >> PAGE_SHIFT, (base + size) >> PAGE_SHIFT
                name = "RAM"
            else:
                lo, hi = base >> PAGE_SHIFT, (base + size + PAGE_SIZE - 1) >> PAGE_SHIFT
                name = "firmware: " + E820_NAMES.get(typ, f"e820 type {typ}")
            if lo < hi:
                raw.append((lo, hi, name))
        self.spans: list[tuple[int, int, str]] = []
        for lo, hi, name in sorted(raw):
            if self.spans:
                lo = max(lo, self.spans[-1][1])
            if lo < hi:
                self.spans.append((lo, hi, name))
        self.starts = [s[0] for s in self.spans]

    def runs(self, lo: int, hi: int) -> Iterable[tuple[int, int, str]]:
        """[a, b) pieces of pfns [lo, hi) with one firmware word each."""
        i = max(bisect.bisect_right(self.starts, lo) - 1, 0)
        pfn = lo
        while pfn < hi:
            while i < len(self.spans) and self.spans[i][1] <= pfn:
                i += 1
            if i < len(self.spans) and self.spans[i][0] <= pfn:
                end, word = min(hi, self.spans[i][1]), self.spans[i][2]
            else:
                end = min(hi, self.spans[i][0]) if i < len(self.spans) else hi
                word = HOLE
            yield pfn, end, word
            pfn = end


def _in_ranges(starts: list[int], ranges: list[tuple[int, int]], pfn: int) -> bool:
    i = bisect.bisect_right(starts, pfn) - 1
    return i >= 0 and ranges[i][0] <= pfn < ranges[i][1]


def census(inp: CensusInput) -> MemoryMap:
    """Classify every pfn in ``[0, max_pfn)``; see the module docstring for the sources."""
    runs = _Runs()
    e820 = _E820(inp.e820)
    mb = sorted(((b >> PAGE_SHIFT, (b + s + PAGE_SIZE - 1) >> PAGE_SHIFT)
                 for b, s in inp.memblock_reserved))
    mb_starts = [r[0] for r in mb]
    zones: dict[int, ZoneTally] = {}
    problems: list[str] = []
    pfn = 0
    for lo, hi in sorted(inp.present) + [(inp.max_pfn, inp.max_pfn)]:
        for a, b, word in e820.runs(pfn, min(lo, inp.max_pfn)):  # no struct page here
            runs.add(a, b - a, word if word != "RAM" else RESERVED_UNKNOWN)
            if word == "RAM":
                problems.append(f"pfns {a:#x}-{b - 1:#x} are RAM without a struct page")
        if lo >= inp.max_pfn:
            break
        _present(inp, _Pages(inp.read_pages, lo, hi), lo, hi, runs, e820, mb, mb_starts,
                 zones, problems)
        pfn = hi
    return MemoryMap(runs.runs, inp.max_pfn, zones, problems, runs.managed)


def _present(inp: CensusInput, pages: _Pages, lo: int, hi: int, runs: _Runs, e820: _E820,
             mb: list[tuple[int, int]], mb_starts: list[int], zones: dict[int, ZoneTally],
             problems: list[str]) -> None:
    owners = inp.owners
    pfn = lo
    while pfn < hi:
        flags, w1, private, page_type, alloc_order = pages.get(pfn)
        zone = zones.setdefault(flags >> ZONES_PGSHIFT, ZoneTally())
        if flags & PG["reserved"]:
            end = pages.reserved_until(pfn)
            _reserved(pfn, end, owners, runs, e820, mb, mb_starts)
            pfn = end
            continue
        if flags & PG["buddy"]:
            n = 1 << private if private <= MAX_PAGE_ORDER else 1
            if private > MAX_PAGE_ORDER or pfn & (n - 1) or pfn + n > hi:
                problems.append(f"free block at pfn {pfn:#x} has bad order {private}")
                n = 1
            runs.add(pfn, n, free_owner(private if n > 1 or private == 0 else 0), True)
            zone.free += n
            zone.managed += n
            pfn += n
            continue
        if flags & PG["pcp"]:
            runs.add(pfn, 1, FREE_PCP, True)
            zone.pcp += 1
            zone.managed += 1
            pfn += 1
            continue
        if flags & PG["slab"]:
            if inp.slab_pages is not None:
                name, order = inp.slab_pages.get(pfn, (None, 0))
                w1 = pfn << PAGE_SHIFT  # for the message: SLOB's record is the page list
            else:
                name, order = inp.caches.get(w1, (None, 0)) if w1 else ("(no cache recorded)", 0)
            if name is None:
                problems.append(f"slab page at pfn {pfn:#x} names no known cache ({w1:#x})")
                name = f"{w1:#x}"
            n = min(1 << order, hi - pfn)
            runs.add(pfn, n, f"slab {name}", True)
            zone.managed += n
            pfn += n
            continue
        n = min(1 << (alloc_order - 1), hi - pfn) if 0 < alloc_order <= MAX_PAGE_ORDER + 1 else 1
        block = LARGE_KMALLOC if page_type == PAGE_TYPE_LARGE_KMALLOC else UNKNOWN_ALLOC
        for p in range(pfn, pfn + n):
            runs.add(p, 1, owners.get(p, block), True)
        zone.managed += n
        pfn += n


def _reserved(pfn: int, end: int, owners: dict[int, str], runs: _Runs, e820: _E820,
              mb: list[tuple[int, int]], mb_starts: list[int]) -> None:
    """Owners of the PG_reserved pages [pfn, end): the e820 map's word where it is not
    RAM, else a named record, else memblock.reserved, else unknown."""
    for a, b, word in e820.runs(pfn, end):
        if word != "RAM":
            runs.add(a, b - a, word)
            continue
        cur, start = "", a
        for p in range(a, b):
            owner = owners.get(p)
            if owner is None:
                owner = MEMBLOCK_UNKNOWN if _in_ranges(mb_starts, mb, p) else RESERVED_UNKNOWN
            if owner != cur:
                runs.add(start, p - start, cur)
                cur, start = owner, p
        runs.add(start, b - start, cur)


# --- checks ------------------------------------------------------------------------------


@dataclass
class KernelCounters:
    """The kernel's own counters the census must agree with (pages)."""

    totalram: int  # totalram_pages: MemTotal
    zones: dict[int, tuple[str, int, int, int]]  # index -> (name, nr_free_pages, pcp, managed)
    slab: dict[str, int]  # cache name -> node.nr_slabs << order
    vmalloc: int  # nr_vmalloc_pages (VmallocUsed)
    pgtable_runtime: int  # pgtable_pages + the PUD pages preallocated for vmalloc
    vmemmap: int  # present sections * struct pages per section / pages
    kernel_image: int  # [_stext, __kernel_end)


def validate_census(mm: MemoryMap, k: KernelCounters, runtime_tables: int) -> list[str]:
    """The census against itself and the kernel's counters; [] when they agree.
    ``runtime_tables``: page-table pages the census found outside PG_reserved pages."""
    problems = list(mm.problems)
    at = 0
    for r in mm:
        if r.pfn != at or r.count <= 0:
            problems.append(f"run {r} does not start at pfn {at:#x}")
        at = r.pfn + r.count
    if at != mm.max_pfn:
        problems.append(f"the runs end at pfn {at:#x}, max_pfn is {mm.max_pfn:#x}")
    counts = mm.counts()
    kinds = mm.kind_counts()

    def same(what: str, census_pages: int, kernel_pages: int) -> None:
        if census_pages != kernel_pages:
            problems.append(f"{what}: the census has {census_pages} pages, "
                            f"the kernel says {kernel_pages}")

    for z, (name, free, pcp, managed) in k.zones.items():
        t = mm.zones.get(z, ZoneTally())
        same(f"{name} free (nr_free_pages)", t.free, free)
        same(f"{name} pcp (pcp.count)", t.pcp, pcp)
        same(f"{name} managed", t.managed, managed)
    same("MemTotal (totalram_pages)", sum(t.managed for t in mm.zones.values()), k.totalram)
    same("MemFree", kinds.get("free", 0), sum(z[1] for z in k.zones.values()))
    for cache, pages in k.slab.items():
        same(f"slab {cache} (nr_slabs)", counts.get(f"slab {cache}", 0), pages)
    same("Slab", kinds.get("slab", 0), sum(k.slab.values()))
    same("VmallocUsed (nr_vmalloc_pages)", kinds.get("vmalloc", 0) + kinds.get("module", 0),
         k.vmalloc)
    same("page tables from the page allocator (pgtable_pages)", runtime_tables,
         k.pgtable_runtime)
    same("vmemmap", counts.get(VMEMMAP, 0), k.vmemmap)
    same("kernel image", kinds.get("kernel", 0), k.kernel_image)
    return problems
