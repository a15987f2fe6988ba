"""Layer 5: the replay's census mode: after a batch, is every live allocation where
the trace says, and nothing else?  (``m.replay(..., census=True)``; for tests.)

Reads the guest's slot table and checks, against the compiler's record of the
allocations live at that batch's end:

- a live slot holds a pointer exactly when its allocation succeeded in the
  guest, a dead slot holds 0, and no two slots hold the same pointer;
- a slab allocation's pointer is the start of an allocated object of the cache
  the op named (kmalloc: the cache ``kmalloc_slab`` picks for the size and GFP):
  SLUB from one walk of every slab, SLAB from one read of every cache (its live
  objects; ``find_object`` reads every cache too, so it ran once per slot only to
  describe a failure); SLOB keeps no object boundaries, so there the block's page
  must be in use;
- a page allocation's ``struct page`` is a block head, not on a free list;
- a cache the replay created holds exactly the replay's live objects (SLUB: the
  same set of objects; SLOB: the same count of objects out).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from emu.kernel import slab_slab
from emu.kernel.mm import PAGE_OFFSET
from emu.machine.replay_compile import CACHE_ALLOC, KMALLOC, PAGES_ALLOC

if TYPE_CHECKING:
    from emu.machine.core import Machine
    from emu.machine.replay import _Replayer


def check_census(m: Machine, rp: _Replayer, batch_index: int) -> list[str]:
    c = rp.c
    assert c.live_after is not None
    live = c.live_after[batch_index]
    raw = m.read_virt(rp.slots, max(c.nslots, 1) * 8)
    slots = [v for (v,) in struct.iter_unpack("<Q", raw)][: c.nslots]
    problems: list[str] = []
    seen: dict[int, int] = {}
    mem_map = m.read_u64(m.symbol("mem_map"))
    slub = m.slab == "slub"
    objects: dict[str, set[int]] = {}  # SLUB: cache -> its allocated objects, one slab walk
    if slub:
        for sv in m.slabs():
            objects.setdefault(sv.cache.name, set()).update(sv.live)
    elif m.slab == "slab":  # the same per cache name; find_object() only to say what is wrong
        for cv in m.caches():
            objects.setdefault(cv.name, set()).update(slab_slab.live_objects(cv))
    replay_objs: dict[str, set[int]] = {}
    for s, ptr in enumerate(slots):
        rec = live.get(s)
        if rec is None:
            if ptr:
                problems.append(f"slot {s} is free but holds {ptr:#x}")
            continue
        if rec.op in rp.failed:
            if ptr:
                problems.append(f"slot {s}: op {rec.op} failed but the slot holds {ptr:#x}")
            continue
        if not ptr:
            problems.append(f"slot {s}: op {rec.op} succeeded but the slot is empty")
            continue
        if ptr in seen:
            problems.append(f"slots {seen[ptr]} and {s} hold the same pointer {ptr:#x}")
        seen[ptr] = s
        want = None
        if rec.kind == CACHE_ALLOC:
            want = c.caches[rec.cache].name
        elif rec.kind == KMALLOC and m.slab != "slob":
            want = rp.kmalloc_names(rec.size, rec.gfp)
        if want is not None and slub:
            if ptr not in objects.get(want, ()):
                where = next((n for n, objs in objects.items() if ptr in objs), None)
                problems.append(f"slot {s}: {ptr:#x} is " + (f"in {where}" if where else
                                "not an allocated object") + f", op {rec.op} wanted {want}")
            replay_objs.setdefault(want, set()).add(ptr)
            continue
        if want is not None and m.slab == "slab":
            if ptr not in objects.get(want, ()):
                info = m.find_object(ptr)
                problems.append(f"slot {s}: {ptr:#x} (op {rec.op}) is not an allocated object "
                                f"of {want}: {info}")
            continue
        if want is not None or (m.slab == "slob" and rec.kind != PAGES_ALLOC):
            # SLOB keeps no object boundaries: the block's page must be in use, and each
            # created cache's count of objects out must be the trace's (below)
            replay_objs.setdefault(want or "kmalloc", set()).add(ptr)
            page = m.pages((ptr - PAGE_OFFSET) >> 12, 1)[0]
            if page.has("buddy"):
                problems.append(f"slot {s}: {ptr:#x} (op {rec.op}) is on a free page")
            continue
        # a page block: alloc_pages' struct page, or a large kmalloc's address
        pfn = (ptr - mem_map) // 64 if rec.kind != KMALLOC else (ptr - PAGE_OFFSET) >> 12
        page = m.pages(pfn, 1)[0]
        if page.has("buddy") or page.has("tail") or page.has("slab"):
            problems.append(f"slot {s}: pfn {pfn:#x} (op {rec.op}) is not an allocated block head")
    created = {c.caches[i].name for i in rp.created}
    out_now = {cv.name: cv.active_objs for cv in m.caches()} if m.slab == "slob" else {}
    for name in created:
        if name.startswith("kmalloc") or name in rp.existing:
            continue  # a shared kernel cache also holds the kernel's own objects
        if m.slab == "slob":
            if out_now.get(name) != len(replay_objs.get(name, ())):
                problems.append(f"cache {name}: {out_now.get(name)} objects out in the guest, "
                                f"the trace has {len(replay_objs.get(name, ()))} live")
            continue
        if not slub:
            continue
        guest, ours = objects.get(name, set()), replay_objs.get(name, set())
        if guest != ours:
            problems.append(f"cache {name}: {len(guest)} live objects in the guest, the trace "
                            f"has {len(ours)} live ({len(guest - ours)} extra, "
                            f"{len(ours - guest)} missing)")
    return problems


class KmallocNames:
    """The kmalloc cache the guest serves a size from (with the DMA and reclaimable
    families of a GFP), or None when the size goes to the page allocator: the cache
    named as Linux names them (``kmalloc-96``, ``kmalloc-rcl-2k``, ``dma-kmalloc-4M``)
    for the size ``kmalloc_size_roundup`` gives, if the guest has it.  Asked of the
    guest once per (size, family) and kept for one replay."""

    def __init__(self, m: Machine) -> None:
        self.m = m
        self.known: dict[tuple[int, int], str | None] = {}
        self.names = {cv.name for cv in m.caches()}

    def __call__(self, size: int, gfp: int) -> str | None:
        family = gfp & 0x11  # __GFP_DMA | __GFP_RECLAIMABLE choose the family
        key = (size, family)
        if key not in self.known:
            n = self.m.call("kmalloc_size_roundup", size)
            unit = f"{n}" if n < 1024 else f"{n >> 10}k" if n < 1 << 20 else f"{n >> 20}M"
            prefix = "dma-kmalloc-" if family & 0x01 else \
                "kmalloc-rcl-" if family & 0x10 else "kmalloc-"
            name = prefix + unit
            self.known[key] = name if name in self.names else None
        return self.known[key]
