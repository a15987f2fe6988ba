"""Views of SLOB (``slab=slob``, kernel/slab/slob.c), computed from guest memory.

Layer 4 (``emu.kernel``).  SLOB has no per-cache slabs: pages (PG_slab, no
``slab_cache``) are shared by every cache and kmalloc; the partly free ones sit on
``free_slob_small`` / ``free_slob_medium`` / ``free_slob_large``.  Inside a page
the free blocks form a chain of 2-byte units: a block of more than one unit holds
its size and then the offset of the next free block, a one-unit block holds minus
that offset; the chain ends at the page's end.  ``struct page``: ``freelist`` = the
first free block, ``private`` = free units | 1 << 16 while on a list.  There is no
/proc/slabinfo (as in Linux) and no record of where allocated blocks start.

>>> pages = read_pages(m.program, m.read_virt, slab_pfns)   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from emu.kernel.mm import PAGE_OFFSET

Read = Callable[[int, int], bytes]
SLOB_UNIT = 2
PAGE_UNITS = 4096 // SLOB_UNIT
ON_LIST = 1 << 16
LISTS = ("small", "medium", "large")
NO_SLABINFO = ("SLOB has no /proc/slabinfo (Linux's SLOB never had one: it keeps no "
               "per-cache slabs); use m.slob_info() or m.caches()")


@dataclass
class SlobCacheView:
    """A SLOB cache descriptor: sizes and how many objects are out."""

    address: int
    name: str
    object_size: int
    size: int  # object_size rounded to SLOB units
    align: int
    flags: int
    allocated: int  # objects handed out and not freed

    @property
    def active_objs(self) -> int:
        return self.allocated


@dataclass
class SlobPage:
    """One SLOB page and its free blocks, as (address, units)."""

    pfn: int
    page: int  # struct page *
    units: int  # free units, as struct page says
    list: str | None  # "small", "medium", "large", or None (full: on no list)
    blocks: list[tuple[int, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def free_bytes(self) -> int:
        return self.units * SLOB_UNIT

    def is_free(self, addr: int) -> bool:
        return any(b <= addr < b + u * SLOB_UNIT for b, u in self.blocks)


def _s16(raw: bytes, off: int) -> int:
    return int.from_bytes(raw[off:off + 2], "little", signed=True)


def walk_blocks(page_bytes: bytes, base: int, first: int) -> tuple[list[tuple[int, int]],
                                                                   list[str]]:
    """The free chain of one page (``page_bytes`` = its 4096 bytes) from ``first``."""
    blocks: list[tuple[int, int]] = []
    problems: list[str] = []
    cur = first
    while cur and len(blocks) <= PAGE_UNITS:
        off = cur - base
        if not 0 <= off < 4096 or off % SLOB_UNIT:
            problems.append(f"free chain leaves the page at {cur:#x}")
            break
        u0 = _s16(page_bytes, off)
        if u0 < 0:
            units, nxt = 1, -u0
        else:
            units, nxt = u0, _s16(page_bytes, off + 2)
        blocks.append((cur, units))
        if nxt * SLOB_UNIT >= 4096 or nxt <= 0:
            if nxt * SLOB_UNIT != 4096:
                problems.append(f"free block {cur:#x} has next offset {nxt}")
            break
        if base + nxt * SLOB_UNIT <= cur + units * SLOB_UNIT - SLOB_UNIT:
            problems.append(f"free chain goes backwards or overlaps at {cur:#x}")
            break
        cur = base + nxt * SLOB_UNIT
    return blocks, problems


def _list_members(prog, read: Read, name: str, page_list_off: int) -> list[int]:
    head = prog[f"free_slob_{name}"].address_
    out = []
    p = int.from_bytes(read(head, 8), "little")
    while p != head and len(out) < 1 << 20:
        out.append(p - page_list_off)
        p = int.from_bytes(read(p, 8), "little")
    return out


def read_pages(prog, read: Read, slab_pages: list[tuple[int, int, int, int]]) -> list[SlobPage]:
    """Every SLOB page: ``slab_pages`` holds (pfn, struct page *, freelist, private) of
    each PG_slab page; list membership comes from the three free lists."""
    from drgn import offsetof

    off = offsetof(prog.type("struct page"), "slab_list")
    on = {pg: name for name in LISTS for pg in _list_members(prog, read, name, off)}
    out = []
    for pfn, page, freelist, private in slab_pages:
        base = PAGE_OFFSET + (pfn << 12)
        sp = SlobPage(pfn, page, private & 0xFFFF, on.get(page))
        if private & ON_LIST and sp.list is None:
            sp.problems.append("marked on a free list but on none")
        if sp.units:
            sp.blocks, chain_problems = walk_blocks(read(base, 4096), base, freelist)
            sp.problems += chain_problems
        out.append(sp)
    return out


def read_caches(prog, read: Read) -> list[SlobCacheView]:
    """Every cache on ``slob_caches``, newest first."""
    from drgn import offsetof

    t = prog.type("struct slob_kmem_cache")
    lay = {n: offsetof(t, n) for n in ("name", "object_size", "size", "align", "flags", "list",
                                        "allocated")}
    head = prog["slob_caches"].address_
    out = []
    node = int.from_bytes(read(head, 8), "little")
    while node != head and len(out) < 4096:
        addr = node - lay["list"]
        raw = read(addr, t.size)

        def u(name: str, size: int = 4, raw: bytes = raw) -> int:
            return int.from_bytes(raw[lay[name]:lay[name] + size], "little")
        name = raw[lay["name"]:lay["name"] + 32].split(b"\0", 1)[0]
        out.append(SlobCacheView(addr, name.decode(errors="replace"),
                                 u("object_size"), u("size"), u("align"), u("flags"),
                                 u("allocated", 8)))
        node = u("list", 8)
    return out


def validate(pages: list[SlobPage], counted_pages: int) -> list[str]:
    """Each page's chain against its free-unit count and list; [] if consistent.
    ``counted_pages`` is the kernel's ``slob_pages``."""
    problems = []
    if counted_pages != len(pages):
        problems.append(f"slob_pages says {counted_pages}, {len(pages)} PG_slab pages found")
    for sp in pages:
        where = f"slob page pfn {sp.pfn:#x}"
        problems += [f"{where}: {p}" for p in sp.problems]
        chain = sum(u for _, u in sp.blocks)
        if chain != sp.units:
            problems.append(f"{where}: free chain has {chain} units, the page says {sp.units}")
        if sp.units and sp.list is None:
            problems.append(f"{where}: {sp.units} free units but on no free list")
        if not sp.units and sp.list is not None:
            problems.append(f"{where}: full but on free_slob_{sp.list}")
        if sp.units >= PAGE_UNITS:
            problems.append(f"{where}: empty but not given back to the page allocator")
    return problems


def info(pages: list[SlobPage], big_pages: int) -> dict[str, object]:
    """What SLOB holds: pages per list, free bytes, whole-page allocations."""
    per = {name: [p for p in pages if p.list == name] for name in LISTS}
    return {"pages": len(pages), "full_pages": sum(1 for p in pages if p.list is None),
            **{f"{n}_pages": len(v) for n, v in per.items()},
            **{f"{n}_free_bytes": sum(p.free_bytes for p in v) for n, v in per.items()},
            "free_bytes": sum(p.free_bytes for p in pages),
            "largest_free_block": max((u * SLOB_UNIT for p in pages for _, u in p.blocks),
                                      default=0),
            "big_pages": big_pages}
