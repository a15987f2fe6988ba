"""Layer 5: the replay's census mode: after a batch, is every live allocation where
the trace says, and nothing else?  (``m.replay(..., census=True)``; for tests.)

Reads the guest's slot table and checks, against the compiler's record of the
allocations live at that batch's end:

- a live slot holds a pointer exactly when its allocation succeeded in the
  guest, a dead slot holds 0, and no two slots hold the same pointer;
- a slab allocation's pointer is the start of an allocated object of the cache
  the op named (kmalloc: the cache ``kmalloc_slab`` picks for the size and GFP);
- a page allocation's ``struct page`` is a block head, not on a free list;
- a cache the replay created holds exactly the replay's live objects.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from emu.machine.replay_compile import CACHE_ALLOC, KMALLOC

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
    by_cache: dict[int, set[int]] = {}
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
        if rec.kind in (KMALLOC, CACHE_ALLOC):
            info = m.find_object(ptr)
            if info is None or info.object != ptr or not info.allocated:
                problems.append(f"slot {s}: {ptr:#x} (op {rec.op}) is not an allocated object")
                continue
            if rec.kind == CACHE_ALLOC:
                want = c.caches[rec.cache].name
                by_cache.setdefault(rp.created[rec.cache], set()).add(ptr)
            else:
                want = _kmalloc_cache_name(m, rec.size, rec.gfp)
            if info.cache != want:
                problems.append(f"slot {s}: {ptr:#x} is in {info.cache}, op {rec.op} wanted {want}")
        else:
            pfn = (ptr - mem_map) // 64
            page = m.pages(pfn, 1)[0]
            if page.has("buddy") or page.has("tail"):
                problems.append(f"slot {s}: page pfn {pfn:#x} (op {rec.op}) is free or a tail")
    names = {cv.address: cv.name for cv in m.caches()}
    for addr, ptrs in by_cache.items():
        name = names.get(addr)
        if name is None or name.startswith("kmalloc"):
            continue  # a shared kernel cache also holds the kernel's own objects
        guest = set(m.live_objects(name))
        if guest != ptrs:
            problems.append(f"cache {name}: {len(guest)} live objects in the guest, the trace "
                            f"has {len(ptrs)} live ({len(guest - ptrs)} extra, "
                            f"{len(ptrs - guest)} missing)")
    return problems


_KMALLOC_CACHE: dict[tuple[int, int, int], str] = {}


def _kmalloc_cache_name(m: Machine, size: int, gfp: int) -> str:
    key = (id(m), size, gfp & 0x11)  # __GFP_DMA | __GFP_RECLAIMABLE choose the family
    if key not in _KMALLOC_CACHE:
        if size > 8192:
            return "(kmalloc_large pages)"
        addr = m.call("kmalloc_slab", size, gfp & 0x11)
        _KMALLOC_CACHE[key] = next((cv.name for cv in m.caches() if cv.address == addr), "?")
    return _KMALLOC_CACHE[key]
