"""Views of the slab allocator, computed in Python from guest memory.

Layer 4 (``emu.kernel``).  Mirrors ``kernel/slab/slub.c``: caches on
``slab_caches``, per-cache active slab and CPU freelist, partial list, and
slabs found by scanning ``struct page`` for ``PG_slab``.  Free pointers
are decoded the way ``get_freepointer()`` stores them (hardened).

>>> caches = read_caches(m.program)      # doctest: +SKIP
>>> print(format_slabinfo(caches))       # doctest: +SKIP
slabinfo - version: 2.1
...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from emu.kernel.mm import PAGE_OFFSET, PageInfo

U64 = (1 << 64) - 1
SLAB_FLAGS = {
    "SLAB_CONSISTENCY_CHECKS": 0x100, "SLAB_RED_ZONE": 0x400, "SLAB_POISON": 0x800,
    "SLAB_HWCACHE_ALIGN": 0x2000, "SLAB_CACHE_DMA": 0x4000, "SLAB_STORE_USER": 0x10000,
    "SLAB_RECLAIM_ACCOUNT": 0x20000, "SLAB_PANIC": 0x40000,
}


@dataclass
class CacheView:
    """One ``struct kmem_cache`` (sizes in bytes, counts in objects or slabs)."""

    address: int
    name: str
    object_size: int
    size: int
    align: int
    offset: int
    flags: int
    order: int
    objects: int  # per slab
    min_partial: int
    random: int
    nr_partial: int
    nr_slabs: int
    total_objects: int
    cpu_slab: int  # struct page * of the active slab, 0 if none
    cpu_freelist: int  # first object of the CPU freelist, 0 if empty
    red_left_pad: int = 0  # Z: red zone before each object
    errors: int = 0  # debug reports so far
    track_offset: int = 0  # U: alloc/free struct track (0 when not tracking)
    inuse: int = 0  # object + right red zone

    @property
    def debug(self) -> str:
        """The slab_debug letters in effect (F, Z, P, U)."""
        return "".join(ch for ch, bit in (("F", 0x100), ("Z", 0x400), ("P", 0x800),
                                          ("U", 0x10000)) if self.flags & bit)
    partial: list[tuple[int, int]] = field(default_factory=list)  # (struct page *, inuse)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def partial_free(self) -> int:
        return sum(self.objects - inuse for _, inuse in self.partial)

    @property
    def active_objs(self) -> int:
        """SLUB's count: every object not free on a partial slab (CPU-cached count as active)."""
        return self.total_objects - self.partial_free


_LAYOUTS: dict[int, dict[str, int]] = {}


def _layout(prog) -> dict[str, int]:
    """Byte offsets of the fields we read, from DWARF (once per program)."""
    key = id(prog)
    if key not in _LAYOUTS:
        from drgn import offsetof

        kc = prog.type("struct kmem_cache")
        names = ["name", "object_size", "size", "align", "offset", "flags", "order", "objects",
                 "min_partial", "random", "cpu_slab.freelist", "cpu_slab.slab",
                 "cpu_slab.alloc_fast", "cpu_slab.alloc_slow", "cpu_slab.free_fast",
                 "cpu_slab.free_slow", "node.nr_partial", "node.partial", "node.nr_slabs",
                 "node.total_objects", "list", "red_left_pad", "errors", "track_offset",
                 "inuse"]
        lay = {n: offsetof(kc, n) for n in names}
        lay["sizeof"] = kc.size
        pg = prog.type("struct page")
        lay["page.slab_list"] = offsetof(pg, "slab_list")
        lay["page.private"] = offsetof(pg, "private")
        _LAYOUTS[key] = lay
    return _LAYOUTS[key]


def read_caches(prog, read: Callable[[int, int], bytes] | None = None) -> list[CacheView]:
    """Every cache on ``slab_caches`` (C: ``struct kmem_cache``), newest first (Linux's order).

    Each cache is one bulk read decoded with offsets from DWARF (drgn field by
    field is ~50x slower, which matters for tests that validate after every step).
    """
    if read is None:
        def read(addr: int, n: int) -> bytes:
            return prog.read(addr, n)
    lay = _layout(prog)

    def u(raw: bytes, name: str, size: int = 8) -> int:
        return int.from_bytes(raw[lay[name]:lay[name] + size], "little")

    head = prog["slab_caches"].address_
    out = []
    node = int.from_bytes(read(head, 8), "little")
    seen = 0
    while node != head and seen < 4096:
        seen += 1
        addr = node - lay["list"]
        raw = read(addr, lay["sizeof"])
        partial = []
        phead = addr + lay["node.partial"]
        p = u(raw, "node.partial")
        while p != phead and len(partial) < 1 << 20:
            page = p - lay["page.slab_list"]
            pr = read(page + lay["page.private"], 8)
            partial.append((page, int.from_bytes(pr, "little") & 0xFFFF))
            p = int.from_bytes(read(p, 8), "little")
        out.append(CacheView(
            address=addr, name=raw[lay["name"]:lay["name"] + 32].split(b"\0", 1)[0].decode(
                errors="replace"),
            object_size=u(raw, "object_size", 4), size=u(raw, "size", 4),
            align=u(raw, "align", 4), offset=u(raw, "offset", 4), flags=u(raw, "flags", 4),
            order=u(raw, "order", 4), objects=u(raw, "objects", 4),
            min_partial=u(raw, "min_partial", 4), random=u(raw, "random"),
            nr_partial=u(raw, "node.nr_partial"), nr_slabs=u(raw, "node.nr_slabs"),
            total_objects=u(raw, "node.total_objects"), cpu_slab=u(raw, "cpu_slab.slab"),
            cpu_freelist=u(raw, "cpu_slab.freelist"), partial=partial,
            red_left_pad=u(raw, "red_left_pad", 4), errors=u(raw, "errors"),
            track_offset=u(raw, "track_offset", 4), inuse=u(raw, "inuse", 4),
            stats={k: u(raw, f"cpu_slab.{k}") for k in
                   ("alloc_fast", "alloc_slow", "free_fast", "free_slow")},
        ))
        node = u(raw, "list")
    return out


def slabinfo_text(caches: Iterable, tunables: Callable, slabdata: Callable) -> str:
    """``/proc/slabinfo`` version 2.1, one layout for every allocator (Linux's
    slabinfo_show): ``tunables(c)`` gives (limit, batchcount, sharedfactor) and
    ``slabdata(c)`` (active_slabs, num_slabs, sharedavail) of a cache view."""
    lines = ["slabinfo - version: 2.1",
             "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
             " : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs>"
             " <num_slabs> <sharedavail>"]
    for c in caches:
        limit, batch, shared = tunables(c)
        active, num, avail = slabdata(c)
        lines.append(f"{c.name:<17} {c.active_objs:6d} {c.total_objects:6d} {c.size:6d} "
                     f"{c.objects:4d} {1 << c.order:4d} : tunables {limit:4d} {batch:4d} "
                     f"{shared:4d} : slabdata {active:6d} {num:6d} {avail:6d}")
    return "\n".join(lines) + "\n"


def format_slabinfo(caches: Iterable[CacheView]) -> str:
    """``/proc/slabinfo`` as SLUB prints it: no tunables, every slab counted active."""
    return slabinfo_text(caches, lambda c: (0, 0, 0), lambda c: (c.nr_slabs, c.nr_slabs, 0))


def format_slabtop(caches: Iterable[CacheView]) -> str:
    """A ``slabtop``-like summary, largest memory use first."""
    rows = sorted(caches, key=lambda c: -(c.nr_slabs << c.order))
    out = [f"{'OBJS':>7} {'ACTIVE':>7} {'USE':>4} {'OBJ SIZE':>9} {'SLABS':>6} {'OBJ/SLAB':>8} "
           f"{'CACHE SIZE':>10} NAME"]
    for c in rows:
        if not c.total_objects:
            continue
        use = 100 * c.active_objs // c.total_objects
        out.append(f"{c.total_objects:7d} {c.active_objs:7d} {use:3d}% {c.size / 1024:8.2f}K "
                   f"{c.nr_slabs:6d} {c.objects:8d} {(c.nr_slabs << c.order) * 4:9d}K {c.name}")
    return "\n".join(out) + "\n"


# --- objects ------------------------------------------------------------------------


def decode_freepointer(cache: CacheView, stored: int, ptr_addr: int) -> int:
    """What ``get_freepointer()`` returns for the word ``stored`` found at ``ptr_addr``."""
    swab = int.from_bytes(ptr_addr.to_bytes(8, "little"), "big")
    return stored ^ cache.random ^ swab


ReadU64 = Callable[[int], int]


def walk_freelist(cache: CacheView, head: int, read_u64: ReadU64, limit: int) -> list[int]:
    """Objects on a hardened freelist starting at ``head`` (stops after ``limit``)."""
    out = []
    obj = head
    while obj and len(out) <= limit:
        out.append(obj)
        addr = obj + cache.offset
        obj = decode_freepointer(cache, read_u64(addr), addr)
    return out


@dataclass
class SlabView:
    page: int  # struct page *
    base: int  # address of the first object
    cache: CacheView
    inuse: int
    frozen: bool
    free: list[int]  # free objects (slab->freelist, plus the CPU freelist if active)

    @property
    def slots(self) -> list[int]:
        pad = self.cache.red_left_pad
        return [self.base + pad + i * self.cache.size for i in range(self.cache.objects)]

    @property
    def live(self) -> list[int]:
        free = set(self.free)
        return [o for o in self.slots if o not in free]


def slabs_from_pages(pages: list[PageInfo], caches: list[CacheView], mem_map: int,
                     read_u64: ReadU64) -> list[SlabView]:
    """Every slab (PG_slab head pages) with its free objects decoded."""
    by_addr = {c.address: c for c in caches}
    out = []
    for p in pages:
        if not p.flags & (1 << 5):  # PG_slab
            continue
        cache = by_addr.get(p.word1)
        if cache is None:
            continue
        page_ptr = mem_map + 64 * p.pfn
        base = PAGE_OFFSET + (p.pfn << 12)
        free = walk_freelist(cache, p.word2, read_u64, cache.objects)
        frozen = bool(p.private >> 31 & 1)
        if frozen and cache.cpu_slab == page_ptr:
            free += walk_freelist(cache, cache.cpu_freelist, read_u64, cache.objects)
        out.append(SlabView(page_ptr, base, cache, p.private & 0xFFFF, frozen, free))
    return out


def validate_slabs(caches: list[CacheView], slabs: list[SlabView]) -> list[str]:
    """Structure and counters of every cache against a walk of its slabs; [] if clean."""
    problems = []
    per_cache: dict[int, list[SlabView]] = {}
    for s in slabs:
        per_cache.setdefault(s.cache.address, []).append(s)
    for c in caches:
        mine = per_cache.get(c.address, [])
        if len(mine) != c.nr_slabs:
            problems.append(f"{c.name}: {len(mine)} slabs in memory, nr_slabs says {c.nr_slabs}")
        if len(mine) * c.objects != c.total_objects:
            problems.append(f"{c.name}: total_objects {c.total_objects} != "
                            f"{len(mine)} slabs * {c.objects}")
        if len(c.partial) != c.nr_partial:
            problems.append(f"{c.name}: {len(c.partial)} partial slabs, nr_partial says "
                            f"{c.nr_partial}")
        for s in mine:
            slots = set(s.slots)
            if len(s.free) > c.objects or len(set(s.free)) != len(s.free):
                problems.append(f"{c.name}: slab {s.page:#x} has a looping or duplicate freelist")
                continue
            bad = [o for o in s.free if o not in slots]
            if bad:
                problems.append(f"{c.name}: slab {s.page:#x} freelist points outside its "
                                f"objects: {bad[0]:#x}")
            if not s.frozen and s.inuse != c.objects - len(s.free):
                problems.append(f"{c.name}: slab {s.page:#x} inuse {s.inuse} but "
                                f"{c.objects - len(s.free)} objects are not free")
    return problems
