"""Layer 5: the slab allocator and kmalloc from Python (mixed into :class:`emu.Machine`).

>>> p = m.kmalloc(100)            # doctest: +SKIP
>>> m.ksize(p)                    # doctest: +SKIP
128
>>> m.kfree(p)                    # doctest: +SKIP

Every call accepts ``context=`` like :meth:`Machine.call`; GFP flags by name or int.
Views (``slabinfo``, ``find_object``) are computed from guest memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from emu.core.args import check_address, check_str
from emu.core.errors import BadArgument, KmemuError
from emu.kernel import slab as slabv
from emu.kernel.gfp import parse as parse_gfp
from emu.kernel.mm import PAGE_OFFSET, PG

if TYPE_CHECKING:
    from emu.machine.core import Machine


def parse_slab_flags(flags: str | int) -> int:
    if isinstance(flags, int) and not isinstance(flags, bool):
        return flags
    if not isinstance(flags, str):
        raise BadArgument(f"slab flags must be names or an int, got {flags!r}")
    out = 0
    for tok in (t.strip() for t in flags.split("|")):
        if not tok:
            continue
        if tok not in slabv.SLAB_FLAGS:
            raise BadArgument(f"unknown slab flag {tok!r}; known: {', '.join(slabv.SLAB_FLAGS)}")
        out |= slabv.SLAB_FLAGS[tok]
    return out


@dataclass
class ObjectInfo:
    """Where an address lives in the slab allocator."""

    cache: str
    object: int  # start of the object
    offset: int  # addr - object
    size: int  # the cache's object_size
    allocated: bool
    alloc_owner: list[str] | None = None  # U: caller and stack of the last allocation
    free_owner: list[str] | None = None  # U: ... of the last free


class SlabMixin:
    """kmalloc family and kmem_cache_* on a :class:`~emu.machine.core.Machine`."""

    # kmalloc family ----------------------------------------------------------
    def kmalloc(self: Machine, size: int, gfp: str | int = "GFP_KERNEL", *,
                context: str = "process") -> int:
        if context == "process":  # call()'s default: the hot path passes no keywords
            return self.call("kmalloc", size, parse_gfp(gfp))
        return self.call("kmalloc", size, parse_gfp(gfp), context=context)

    def kzalloc(self: Machine, size: int, gfp: str | int = "GFP_KERNEL", *,
                context: str = "process") -> int:
        return self.call("kzalloc", size, parse_gfp(gfp), context=context)

    def kcalloc(self: Machine, n: int, size: int, gfp: str | int = "GFP_KERNEL", *,
                context: str = "process") -> int:
        return self.call("kcalloc", n, size, parse_gfp(gfp), context=context)

    def krealloc(self: Machine, addr: int, size: int, gfp: str | int = "GFP_KERNEL", *,
                 context: str = "process") -> int:
        return self.call("krealloc", addr, size, parse_gfp(gfp), context=context)

    def kfree(self: Machine, addr: int, *, context: str = "process") -> None:
        if context == "process":
            self.call("kfree", addr)
        else:
            self.call("kfree", addr, context=context)

    def kfree_sensitive(self: Machine, addr: int, *, context: str = "process") -> None:
        self.call("kfree_sensitive", addr, context=context)

    def ksize(self: Machine, addr: int, *, context: str = "process") -> int:
        return self.call("ksize", addr, context=context)

    def kmalloc_size_roundup(self: Machine, size: int) -> int:
        return self.call("kmalloc_size_roundup", size)

    # caches ------------------------------------------------------------------
    def kmem_cache_create(self: Machine, name: str, size: int, align: int = 0,
                          flags: str | int = 0, *, context: str = "process") -> int:
        """Create a cache; returns the ``struct kmem_cache *`` (0 on failure)."""
        raw = check_str(name, "cache name").encode()
        if not raw or len(raw) > 31 or b"\0" in raw:
            raise BadArgument(f"cache name must be 1..31 bytes without NUL, got {name!r}")
        buf = self.symbol("kmemu_arg_buf")
        self.write_virt(buf, raw + b"\0")
        return self.call("kmem_cache_create", buf, size, align, parse_slab_flags(flags), 0,
                         context=context)

    def kmem_cache(self: Machine, name: str) -> int:
        """The ``struct kmem_cache *`` of a cache by name."""
        check_str(name, "cache name")
        for c in self.caches():
            if c.name == name:
                return c.address
        raise BadArgument(f"no slab cache named {name!r}")

    def _cache_ptr(self: Machine, cache: int | str) -> int:
        return self.kmem_cache(cache) if isinstance(cache, str) else cache

    def kmem_cache_alloc(self: Machine, cache: int | str, gfp: str | int = "GFP_KERNEL", *,
                         context: str = "process") -> int:
        return self.call("kmem_cache_alloc", self._cache_ptr(cache), parse_gfp(gfp),
                         context=context)

    def kmem_cache_free(self: Machine, cache: int | str, addr: int, *,
                        context: str = "process") -> None:
        self.call("kmem_cache_free", self._cache_ptr(cache), addr, context=context)

    def kmem_cache_shrink(self: Machine, cache: int | str) -> None:
        self.call("kmem_cache_shrink", self._cache_ptr(cache))

    def kmem_cache_destroy(self: Machine, cache: int | str, *, context: str = "process") -> None:
        self.call("kmem_cache_destroy", self._cache_ptr(cache), context=context)

    # views -----------------------------------------------------------------------
    def caches(self: Machine) -> list[slabv.CacheView]:
        with self._reads_held():
            return slabv.read_caches(self.program, self.read_virt)

    def slabinfo(self: Machine) -> str:
        return slabv.format_slabinfo(self.caches())

    def slabtop(self: Machine) -> str:
        return slabv.format_slabtop(self.caches())

    def slabs(self: Machine) -> list[slabv.SlabView]:
        with self._reads_held():
            return self._slabs(self.caches())

    def _slabs(self: Machine, caches: list[slabv.CacheView]) -> list[slabv.SlabView]:
        """Every slab: the PG_slab pages of mem_map (only those decoded) and their freelists."""
        mem_map = self.read_u64(self.symbol("mem_map"))
        slab_pages = [p for run in self._page_runs() for p in run.infos(PG["slab"])]
        return slabv.slabs_from_pages(slab_pages, caches, mem_map, self.read_u64)

    def validate_slab(self: Machine) -> list[str]:
        """Counters of every cache against a walk of all its slabs; [] when consistent."""
        with self._reads_held():
            caches = self.caches()
            return slabv.validate_slabs(caches, self._slabs(caches))

    def live_objects(self: Machine, cache: str) -> list[int]:
        check_str(cache, "cache name")
        return sorted(o for s in self.slabs() if s.cache.name == cache for o in s.live)

    def find_object(self: Machine, addr: int) -> ObjectInfo | None:
        """Which cache and object ``addr`` belongs to (None if not slab memory).

        Reads only the struct page of ``addr`` (and its compound head) and that
        slab's freelists, so it is cheap enough to call per object.
        """
        check_address(addr)
        if not PAGE_OFFSET <= addr < PAGE_OFFSET + (1 << 46):
            return None
        mem_map = self.read_u64(self.symbol("mem_map"))
        pfn = (addr - PAGE_OFFSET) >> 12
        try:
            page = self.pages(pfn, 1)
        except KmemuError:
            return None
        if not page:
            return None
        p = page[0]
        if p.has("tail") and p.word1 & 1:
            head_pfn = ((p.word1 - 1) - mem_map) // 64
            p = self.pages(head_pfn, 1)[0]
        if not p.has("slab"):
            return None
        cache = next((c for c in self.caches() if c.address == p.word1), None)
        if cache is None:
            return None
        slab = slabv.slabs_from_pages([p], [cache], mem_map, self.read_u64)[0]
        first = slab.base + cache.red_left_pad
        idx = (addr - first) // cache.size if addr >= first else 0
        if idx >= cache.objects:
            return None
        obj = first + idx * cache.size
        info = ObjectInfo(cache.name, obj, addr - obj, cache.object_size, obj not in slab.free)
        if cache.track_offset:
            info.alloc_owner = self._track(obj + cache.track_offset)
            info.free_owner = self._track(obj + cache.track_offset + 40)
        return info

    def _track(self: Machine, addr: int) -> list[str] | None:
        addr0, *stack = (self.read_u64(addr + 8 * i) for i in range(5))  # struct track
        if stack and stack[0] == addr0:  # the saved trace starts at the caller itself
            stack = stack[1:]
        return [self.symbolize(w) for w in (addr0, *stack) if w] or None

    def cache_info(self: Machine, name: str) -> dict[str, object]:
        """Per-cache details: sizes, layout, slab order, partial count, CPU free objects."""
        check_str(name, "cache name")
        c = next((v for v in self.caches() if v.name == name), None)
        if c is None:
            raise BadArgument(f"no slab cache named {name!r}")
        cpu_free = len(slabv.walk_freelist(c, c.cpu_freelist, self.read_u64, c.objects))
        return {"name": c.name, "object_size": c.object_size, "size": c.size,
                "objects_per_slab": c.objects, "order": c.order, "align": c.align,
                "slabs": c.nr_slabs, "partial": c.nr_partial, "cpu_free_objects": cpu_free,
                "active_objs": c.active_objs, "num_objs": c.total_objects, "debug": c.debug,
                "errors": c.errors}

    def slab_errors(self: Machine, cache: int | str | None = None, *,
                    context: str = "process") -> int:
        """Run the kernel's ``validate_slab_cache`` on one cache (or all) and return
        the number of errors it reported (each also arrives as a ``slab`` event)."""
        targets = [self._cache_ptr(cache)] if cache is not None else [c.address for c in
                                                                       self.caches()]
        return sum(self.call("validate_slab_cache", c, context=context) for c in targets)

    def kmem_cache_of(self: Machine, addr: int) -> str | None:
        info = self.find_object(addr)
        return info.cache if info else None
