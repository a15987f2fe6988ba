"""Layer 5: a parsed kmem trace turned into the guest's replay ops (no machine needed).

:func:`compile_trace` walks the events of an :class:`emu.kernel.tracetext.Trace`
once and decides everything the guest loop must not: which slot of the
guest's pointer table each live allocation uses (the trace's pointers and
pfns are only keys), which kmem_cache a ``kmem_cache_alloc`` goes to, what to
skip and why.  The result is the ops as bytes, ready to be copied into the
ring 4096 at a time, plus what the report needs afterwards.

Rules (ARCHITECTURE.md "Trace replay"):

- A free of a pointer with no live allocation (allocated before the trace
  began, or never) is skipped and counted.  An allocation of a pointer that
  is still live means the trace lost its free (ftrace drops events when its
  buffer overflows): counted as a lost free, and the old allocation is freed
  first, as the traced kernel must have done.
- An allocation the trace shows failing (``ptr=0``, ``page=0``) is skipped: it
  left nothing to free.  ``kfree(NULL)`` is skipped.
- ``kmem_cache_alloc`` prints no cache name (6.1), so caches are keyed by
  (call site, object size).  The name ``kmem_cache_free`` prints for the same
  object (5.12+) names the key's cache; keys without one get
  ``<call site function>:<size>``.  Keys with one name share one cache.
- ``__GFP_NOFAIL`` is dropped (a replay must never wait for memory forever)
  and ``__GFP_HIGHMEM`` too (x86-64 has no highmem; Linux gives such
  requests Normal memory); other flags pass through as the trace gave them.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field

from emu.build.abi import define
from emu.kernel import gfp as gfpmod
from emu.kernel.tracetext import PAGE_ALLOCS, PAGE_FREES, SLAB_ALLOCS, Trace, gfp_of

KMALLOC, KFREE, CACHE_ALLOC, CACHE_FREE, PAGES_ALLOC, PAGES_FREE = (
    define("KMEMU_REPLAY_KMALLOC"), define("KMEMU_REPLAY_KFREE"),
    define("KMEMU_REPLAY_CACHE_ALLOC"), define("KMEMU_REPLAY_CACHE_FREE"),
    define("KMEMU_REPLAY_PAGES_ALLOC"), define("KMEMU_REPLAY_PAGES_FREE"))
#: guest op type -> the Linux event it stands for (the report's per-type names)
OP_NAMES = {KMALLOC: "kmalloc", KFREE: "kfree", CACHE_ALLOC: "kmem_cache_alloc",
            CACHE_FREE: "kmem_cache_free", PAGES_ALLOC: "mm_page_alloc",
            PAGES_FREE: "mm_page_free"}
OP = struct.Struct("<BBHIII")  # struct kmemu_replay_op: type, order, cache, slot, size, gfp
_DROP = gfpmod.GFP_FLAGS["__GFP_NOFAIL"] | gfpmod.GFP_FLAGS["__GFP_HIGHMEM"]
MAX_CACHE_NAME = 31  # kmem_cache_create's limit here (emu.machine.slab)


@dataclass
class CacheSpec:
    """A cache the replay creates when its first op comes."""

    name: str
    object_size: int
    first_op: int
    keys: list[tuple[str, int]] = field(default_factory=list)  # (call site, object size)


@dataclass
class Live:
    """A live allocation, as the compiler tracks it: what frees it, and its sizes."""

    op: int  # index of the allocating op
    kind: int  # KMALLOC, CACHE_ALLOC or PAGES_ALLOC
    slot: int
    cache: int  # CACHE_ALLOC: index into caches
    size: int  # KMALLOC: bytes requested; PAGES_ALLOC: the order
    gfp: int
    req: int  # bytes requested (pages: the block's bytes)
    site: str


@dataclass
class Compiled:
    """What :func:`compile_trace` produced."""

    ops: bytearray = field(default_factory=bytearray)
    n_ops: int = 0
    nslots: int = 0
    caches: list[CacheSpec] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)  # event name -> ops replayed
    skipped: Counter[str] = field(default_factory=Counter)
    lost_frees: int = 0
    req_of: list[int] = field(default_factory=list)  # per op: bytes requested (allocs)
    free_at: dict[int, int] = field(default_factory=dict)  # alloc op -> op freeing it
    requested_after: list[int] = field(default_factory=list)  # per batch end
    peak_requested: int = 0  # the most the trace's live allocations ever asked for
    # (call site, kind, size key) -> [allocations, bytes requested]: waste is priced later
    sites: dict[tuple[str, int, int], list[int]] = field(default_factory=dict)
    live: dict[int, Live] = field(default_factory=dict)  # slot -> allocation, at the end
    live_after: list[dict[int, Live]] | None = None  # per batch end (census mode)
    batch: int = 4096

    @property
    def total_ops(self) -> int:
        return self.n_ops

    def op_at(self, i: int) -> tuple[int, int, int, int, int, int]:
        return OP.unpack_from(self.ops, i * OP.size)


def _site(call_site: str | None) -> str:
    """``__alloc_skb+0x9c/0x1c0`` -> ``__alloc_skb+0x9c`` (the function length is noise)."""
    return (call_site or "?").split("/", 1)[0]


def _func(site: str) -> str:
    return site.split("+", 1)[0]


def _cache_names(trace: Trace) -> dict[tuple[str, int], str]:
    """(call site, object size) of kmem_cache_alloc -> the name kmem_cache_free gave."""
    keyed: dict[int, tuple[str, int]] = {}
    names: dict[tuple[str, int], str] = {}
    for ev in trace.events:
        if ev.event in ("kmem_cache_alloc", "kmem_cache_alloc_node") and ev.ptr:
            keyed[ev.ptr] = key = (_site(ev.call_site), ev.bytes_req)
            if ev.name and key not in names:
                names[key] = ev.name
        elif ev.event == "kmem_cache_free" and ev.ptr in keyed:
            key = keyed.pop(ev.ptr)  # type: ignore[arg-type]
            if ev.name and key not in names:
                names[key] = ev.name
        elif ev.event == "kfree" and ev.ptr in keyed:
            del keyed[ev.ptr]  # type: ignore[arg-type]
    return names


class _Compiler:
    def __init__(self, trace: Trace, batch: int, pages: bool, census: bool) -> None:
        self.c = Compiled(batch=batch, live_after=[] if census else None)
        self.trace, self.pages = trace, pages
        self.slab_live: dict[int, Live] = {}
        self.page_live: dict[int, Live] = {}
        self.free_slots: list[int] = []
        self.requested = 0
        self.names = _cache_names(trace)
        self.cache_of_key: dict[tuple[str, int], int] = {}
        self.cache_of_name: dict[str, int] = {}

    # -- emitting ----------------------------------------------------------------
    def emit(self, kind: int, slot: int, cache: int = 0, size: int = 0, gfp: int = 0,
             order: int = 0, req: int = 0) -> int:
        c = self.c
        i = c.n_ops
        c.ops += OP.pack(kind, order, cache, slot, size, gfp)
        c.req_of.append(req)
        c.n_ops = i + 1
        if c.n_ops % c.batch == 0:
            self.end_batch()
        return i

    def end_batch(self) -> None:
        self.c.requested_after.append(self.requested)
        if self.c.live_after is not None:
            self.c.live_after.append(dict(self.c.live))

    def alloc_slot(self) -> int:
        if self.free_slots:
            return self.free_slots.pop()
        self.c.nslots += 1
        return self.c.nslots - 1

    def free(self, rec: Live) -> None:
        kind = {KMALLOC: KFREE, CACHE_ALLOC: CACHE_FREE, PAGES_ALLOC: PAGES_FREE}[rec.kind]
        order = rec.size if rec.kind == PAGES_ALLOC else 0
        self.requested -= rec.req
        del self.c.live[rec.slot]
        i = self.emit(kind, rec.slot, rec.cache, order=order)
        self.c.free_at[rec.op] = i
        self.free_slots.append(rec.slot)

    def alloc(self, kind: int, cache: int, size: int, gfp: int, req: int, site: str,
              order: int = 0) -> Live:
        slot = self.alloc_slot()
        rec = Live(self.c.n_ops, kind, slot, cache, order if kind == PAGES_ALLOC else size,
                   gfp, req, site)
        self.requested += req
        if self.requested > self.c.peak_requested:
            self.c.peak_requested = self.requested
        self.c.live[slot] = rec
        self.emit(kind, slot, cache, size, gfp, order, req)
        key = (site, kind, cache if kind == CACHE_ALLOC else rec.size)
        s = self.c.sites.setdefault(key, [0, 0])
        s[0] += 1
        s[1] += req
        return rec

    # -- caches --------------------------------------------------------------------
    def cache_for(self, site: str, size: int) -> int:
        key = (site, size)
        idx = self.cache_of_key.get(key)
        if idx is not None:
            return idx
        name = self.names.get(key) or f"{_func(site)}:{size}"
        name = name[:MAX_CACHE_NAME]
        idx = self.cache_of_name.get(name)
        if idx is None:
            idx = len(self.c.caches)
            if idx >= define("KMEMU_REPLAY_CACHES"):
                return -1
            self.c.caches.append(CacheSpec(name, size, self.c.n_ops))
            self.cache_of_name[name] = idx
        spec = self.c.caches[idx]
        spec.object_size = max(spec.object_size, size)
        spec.keys.append(key)
        self.cache_of_key[key] = idx
        return idx

    # -- events ----------------------------------------------------------------------
    def run(self) -> Compiled:
        c = self.c
        for ev in self.trace.events:
            name = ev.event
            if name in SLAB_ALLOCS:
                self.slab_alloc(ev)
            elif name in PAGE_ALLOCS:
                self.page_alloc(ev)
            elif name in PAGE_FREES:
                self.page_free(ev)
            else:
                self.slab_free(ev)
        if c.n_ops % c.batch:
            self.end_batch()
        return c

    def slab_alloc(self, ev) -> None:  # noqa: ANN001
        c = self.c
        if not ev.ptr:
            c.skipped["allocation that failed in the trace"] += 1
            return
        old = self.slab_live.pop(ev.ptr, None)
        if old is not None:
            c.lost_frees += 1
            self.free(old)
        gfp = gfp_of(ev) & ~_DROP
        site = _site(ev.call_site)
        if ev.event.startswith("kmalloc"):
            rec = self.alloc(KMALLOC, 0, ev.bytes_req, gfp, ev.bytes_req, site)
        else:
            idx = self.cache_for(site, ev.bytes_req)
            if idx < 0:
                c.skipped["kmem_cache_alloc beyond the replay's cache limit"] += 1
                return
            rec = self.alloc(CACHE_ALLOC, idx, 0, gfp, ev.bytes_req, site)
        self.slab_live[ev.ptr] = rec
        c.events[ev.event] += 1

    def slab_free(self, ev) -> None:  # noqa: ANN001
        c = self.c
        if not ev.ptr:
            c.skipped[f"{ev.event}(NULL)"] += 1
            return
        rec = self.slab_live.pop(ev.ptr, None)
        if rec is None:
            c.skipped["free of a pointer the trace never allocated"] += 1
            return
        self.free(rec)
        c.events[ev.event] += 1

    def page_alloc(self, ev) -> None:  # noqa: ANN001
        c = self.c
        if not self.pages:
            c.skipped["page event (pages=False)"] += 1
            return
        key = ev.page_key
        if ev.page == 0 or key is None or (ev.page is None and ev.pfn == 0):
            c.skipped["allocation that failed in the trace"] += 1
            return
        old = self.page_live.pop(key, None)
        if old is not None:
            c.lost_frees += 1
            self.free(old)
        gfp = gfp_of(ev) & ~_DROP
        rec = self.alloc(PAGES_ALLOC, 0, 0, gfp, 4096 << ev.order, "mm_page_alloc",
                         order=ev.order)
        self.page_live[key] = rec
        c.events[ev.event] += 1

    def page_free(self, ev) -> None:  # noqa: ANN001
        c = self.c
        if not self.pages:
            c.skipped["page event (pages=False)"] += 1
            return
        rec = self.page_live.pop(ev.page_key, None) if ev.page_key is not None else None
        if rec is None:
            c.skipped["free of a page the trace never allocated"] += 1
            return
        self.free(rec)  # with the allocation's order: the block the guest holds
        c.events[ev.event] += 1


def compile_trace(trace: Trace, batch: int = 4096, pages: bool = True,
                  census: bool = False) -> Compiled:
    """Ops for the guest from a parsed trace (see the module docstring).  ``batch``
    is the number of ops per guest entry (the timeline's sampling step); with
    ``census`` the live allocations after every batch are kept for checking."""
    return _Compiler(trace, batch, pages, census).run()
