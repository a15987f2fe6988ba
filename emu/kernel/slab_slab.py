"""Views of SLAB (``slab=slab``, kernel/slab/slab.c), computed from guest memory.

Layer 4 (``emu.kernel``).  Caches are on ``slab_kmem_caches`` (C: ``struct
slab_kmem_cache``); each has a CPU array cache, a shared array and one node with
slabs_full/partial/free.  A slab's struct page holds ``slab_cache``, ``freelist``
(the index array: entries ``[active, num)`` are the free object numbers; a full
slab whose array lived in an object has none) and ``private`` = active |
s_mem offset << 16 (the colour).

>>> caches = read_caches(m.program, m.read_virt)   # doctest: +SKIP
>>> print(format_slabinfo(caches))                  # doctest: +SKIP
slabinfo - version: 2.1
...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from emu.kernel.mm import PAGE_OFFSET
from emu.kernel.slab import format_slabtop as slub_slabtop
from emu.kernel.slab import slabinfo_text

Read = Callable[[int, int], bytes]
CFLGS_OBJFREELIST_SLAB = 0x40000000
CFLGS_OFF_SLAB = 0x80000000
RED_INACTIVE = 0x09F911029D74E35B
RED_ACTIVE = 0xD84156C5635688C0


@dataclass
class SlabPage:
    """One slab: its struct page, where objects start (the colour), which are free."""

    page: int  # struct page *
    pfn: int
    list: str  # "full", "partial" or "free": the node list it is on
    active: int  # objects handed out of the slab (some may sit in array caches)
    s_mem: int  # first object
    free_index: list[int]  # object numbers the index array lists as free

    @property
    def colour_offset(self) -> int:
        return self.s_mem - (PAGE_OFFSET + (self.pfn << 12))


@dataclass
class SlabCacheView:
    """One SLAB cache: Linux's slab_def.h fields, the node lists and the array caches."""

    address: int
    name: str
    object_size: int
    size: int  # bytes per object, debug words included
    align: int
    flags: int
    order: int  # gfporder
    objects: int  # num: objects per slab
    limit: int
    batchcount: int
    shared: int  # sharedfactor
    colour: int  # colours
    colour_off: int
    colour_next: int
    obj_offset: int  # Z: red zone word before each object
    cflags: int
    freelist_size: int
    free_limit: int
    free_objects: int  # free objects on slabs (not in arrays)
    nr_slabs: int  # total_slabs
    free_slabs: int
    errors: int
    cpu_entries: list[int]  # the CPU array, oldest first
    cpu_touched: bool
    shared_entries: list[int]  # the shared array
    shared_limit: int
    slabs: list[SlabPage] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def total_objects(self) -> int:
        return self.nr_slabs * self.objects

    @property
    def active_objs(self) -> int:
        """Linux's count: objects not free on a slab (those in array caches count as active)."""
        return self.total_objects - self.free_objects

    @property
    def active_slabs(self) -> int:
        return self.nr_slabs - self.free_slabs

    @property
    def red_left_pad(self) -> int:  # SLUB's name for the same thing, for shared views
        return self.obj_offset

    @property
    def layout(self) -> str:
        """Where each slab's index array lives."""
        if self.cflags & CFLGS_OBJFREELIST_SLAB:
            return "objfreelist"
        return "off-slab" if self.cflags & CFLGS_OFF_SLAB else "on-slab"

    @property
    def debug(self) -> str:
        return "".join(ch for ch, bit in (("Z", 0x400), ("P", 0x800), ("U", 0x10000))
                       if self.flags & bit)

    @property
    def nr_partial(self) -> int:
        return sum(1 for s in self.slabs if s.list == "partial")


_LAYOUTS: dict[int, dict[str, int]] = {}


def _layout(prog) -> dict[str, int]:
    key = id(prog)
    if key not in _LAYOUTS:
        from drgn import offsetof

        kc = prog.type("struct slab_kmem_cache")
        names = ["name", "object_size", "size", "align", "flags", "cpu_cache", "batchcount",
                 "limit", "shared", "num", "gfporder", "colour", "colour_off", "freelist_size",
                 "obj_offset", "cflags", "list", "errors", "allochit", "allocmiss", "freehit",
                 "freemiss", "grown", "reaped", "node.slabs_partial", "node.slabs_full",
                 "node.slabs_free", "node.total_slabs", "node.free_slabs", "node.free_objects",
                 "node.free_limit", "node.colour_next", "node.shared"]
        lay = {n: offsetof(kc, n) for n in names}
        lay["sizeof"] = kc.size
        ac = prog.type("struct array_cache")
        for n in ("avail", "limit", "touched", "entry"):
            lay[f"ac.{n}"] = offsetof(ac, n)
        pg = prog.type("struct page")
        lay["page.slab_list"] = offsetof(pg, "slab_list")
        lay["page.freelist"] = offsetof(pg, "freelist")
        lay["page.private"] = offsetof(pg, "private")
        _LAYOUTS[key] = lay
    return _LAYOUTS[key]


def _u(raw: bytes, off: int, size: int = 8) -> int:
    return int.from_bytes(raw[off:off + size], "little")


def _array(read: Read, lay: dict[str, int], addr: int) -> tuple[list[int], int, bool]:
    """(entries, limit, touched) of a ``struct array_cache`` (([], 0, False) for NULL)."""
    if not addr:
        return [], 0, False
    head = read(addr, 16)
    avail, limit = _u(head, lay["ac.avail"], 4), _u(head, lay["ac.limit"], 4)
    avail = min(avail, limit, 4096)
    raw = read(addr + lay["ac.entry"], 8 * avail) if avail else b""
    return [_u(raw, 8 * i) for i in range(avail)], limit, bool(_u(head, lay["ac.touched"], 4))


def _slabs(read: Read, lay: dict[str, int], cache_addr: int, raw: bytes, num: int,
           mem_map: int) -> list[SlabPage]:
    out = []
    for name in ("full", "partial", "free"):
        head = cache_addr + lay[f"node.slabs_{name}"]
        p = _u(raw, lay[f"node.slabs_{name}"])
        while p != head and len(out) < 1 << 20:
            page = p - lay["page.slab_list"]
            pr = read(page, 64)
            private = _u(pr, lay["page.private"])
            active, off = private & 0xFFFF, private >> 16
            pfn = (page - mem_map) // 64
            freelist = _u(pr, lay["page.freelist"])
            free = list(read(freelist + active, num - active)) if freelist and active < num \
                else []
            out.append(SlabPage(page, pfn, name, active, PAGE_OFFSET + (pfn << 12) + off, free))
            p = _u(pr, lay["page.slab_list"])
    return out


def read_caches(prog, read: Read | None = None, with_slabs: bool = True) -> list[SlabCacheView]:
    """Every cache on ``slab_kmem_caches``, newest first (Linux's order)."""
    if read is None:
        def read(addr: int, n: int) -> bytes:
            return prog.read(addr, n)
    lay = _layout(prog)
    mem_map = int.from_bytes(read(prog["mem_map"].address_, 8), "little")
    head = prog["slab_kmem_caches"].address_
    out = []
    node = int.from_bytes(read(head, 8), "little")
    while node != head and len(out) < 4096:
        addr = node - lay["list"]
        raw = read(addr, lay["sizeof"])
        cpu, _, touched = _array(read, lay, _u(raw, lay["cpu_cache"]))
        shared, shared_limit, _ = _array(read, lay, _u(raw, lay["node.shared"]))
        num = _u(raw, lay["num"], 4)
        v = SlabCacheView(
            address=addr, name=raw[lay["name"]:lay["name"] + 32].split(b"\0", 1)[0].decode(
                errors="replace"),
            object_size=_u(raw, lay["object_size"], 4), size=_u(raw, lay["size"], 4),
            align=_u(raw, lay["align"], 4), flags=_u(raw, lay["flags"], 4),
            order=_u(raw, lay["gfporder"], 4), objects=num, limit=_u(raw, lay["limit"], 4),
            batchcount=_u(raw, lay["batchcount"], 4), shared=_u(raw, lay["shared"], 4),
            colour=_u(raw, lay["colour"], 4), colour_off=_u(raw, lay["colour_off"], 4),
            colour_next=_u(raw, lay["node.colour_next"], 4),
            obj_offset=_u(raw, lay["obj_offset"], 4), cflags=_u(raw, lay["cflags"], 4),
            freelist_size=_u(raw, lay["freelist_size"], 4),
            free_limit=_u(raw, lay["node.free_limit"], 4),
            free_objects=_u(raw, lay["node.free_objects"]),
            nr_slabs=_u(raw, lay["node.total_slabs"]), free_slabs=_u(raw, lay["node.free_slabs"]),
            errors=_u(raw, lay["errors"]), cpu_entries=cpu, cpu_touched=touched,
            shared_entries=shared, shared_limit=shared_limit,
            stats={k: _u(raw, lay[k]) for k in ("allochit", "allocmiss", "freehit", "freemiss",
                                                 "grown", "reaped")})
        if with_slabs:
            v.slabs = _slabs(read, lay, addr, raw, num, mem_map)
        out.append(v)
        node = _u(raw, lay["list"])
    return out


def format_slabinfo(caches: Iterable[SlabCacheView]) -> str:
    """``/proc/slabinfo`` version 2.1 as SLAB printed it: tunables and slabdata filled in."""
    return slabinfo_text(caches, lambda c: (c.limit, c.batchcount, c.shared),
                         lambda c: (c.active_slabs, c.nr_slabs, len(c.shared_entries)))


def format_slabtop(caches: Iterable[SlabCacheView]) -> str:
    """A ``slabtop``-like summary, largest memory use first (SLUB's layout: the same
    columns from the same fields)."""
    return slub_slabtop(caches)  # type: ignore[arg-type]


def slots(cache: SlabCacheView, slab: SlabPage) -> list[int]:
    """The object addresses (what callers get) of a slab, in index order."""
    return [slab.s_mem + i * cache.size + cache.obj_offset for i in range(cache.objects)]


def cached(cache: SlabCacheView) -> set[int]:
    """Objects sitting in the CPU or shared array (free to users, active to the slab)."""
    return {e + cache.obj_offset for e in (*cache.cpu_entries, *cache.shared_entries)}


def live_objects(cache: SlabCacheView) -> list[int]:
    """Objects a caller holds: not free in their slab and not in an array cache."""
    arr = cached(cache)
    out = []
    for s in cache.slabs:
        free = set(s.free_index)
        out += [o for i, o in enumerate(slots(cache, s)) if i not in free and o not in arr]
    return sorted(out)


def validate(caches: list[SlabCacheView], slab_pages: dict[int, int]) -> list[str]:
    """Node lists, counters, index arrays and array caches of every cache; [] if
    consistent.  ``slab_pages`` maps each PG_slab head page's struct page to its
    ``slab_cache`` (from a scan of mem_map)."""
    problems: list[str] = []
    per_cache: dict[int, int] = {}
    for cache_addr in slab_pages.values():
        per_cache[cache_addr] = per_cache.get(cache_addr, 0) + 1
    for c in caches:
        problems += _validate_one(c, per_cache.get(c.address, 0))
    return problems


def _validate_one(c: SlabCacheView, pg_slab: int) -> list[str]:
    p: list[str] = []
    n = c.name
    if len(c.slabs) != c.nr_slabs:
        p.append(f"{n}: {len(c.slabs)} slabs on the node lists, total_slabs says {c.nr_slabs}")
    if pg_slab != c.nr_slabs:
        p.append(f"{n}: {pg_slab} PG_slab pages name this cache, total_slabs says {c.nr_slabs}")
    nfree = sum(1 for s in c.slabs if s.list == "free")
    if nfree != c.free_slabs:
        p.append(f"{n}: {nfree} slabs on slabs_free, free_slabs says {c.free_slabs}")
    free_objs = sum(c.objects - s.active for s in c.slabs)
    if free_objs != c.free_objects:
        p.append(f"{n}: {free_objs} free objects on slabs, free_objects says {c.free_objects}")
    want = {"full": lambda a: a == c.objects, "partial": lambda a: 0 < a < c.objects,
            "free": lambda a: a == 0}
    for s in c.slabs:
        if not want[s.list](s.active):
            p.append(f"{n}: slab {s.page:#x} on slabs_{s.list} has {s.active} of "
                     f"{c.objects} objects active")
        if len(s.free_index) != c.objects - s.active or len(set(s.free_index)) != \
                len(s.free_index) or any(i >= c.objects for i in s.free_index):
            p.append(f"{n}: slab {s.page:#x} index array is damaged: {s.free_index[:8]}")
    if len(c.cpu_entries) > c.limit:
        p.append(f"{n}: CPU array holds {len(c.cpu_entries)} > limit {c.limit}")
    arr = [e + c.obj_offset for e in (*c.cpu_entries, *c.shared_entries)]
    if len(set(arr)) != len(arr):
        p.append(f"{n}: an object is in the array caches twice")
    by_slot: dict[int, tuple[SlabPage, int]] = {}
    for s in c.slabs:
        for i, o in enumerate(slots(c, s)):
            by_slot[o] = (s, i)
    for o in arr:
        if o not in by_slot:
            p.append(f"{n}: array cache entry {o:#x} is not an object of this cache")
        elif by_slot[o][1] in by_slot[o][0].free_index:
            p.append(f"{n}: {o:#x} is in an array cache and free in its slab")
    return p
