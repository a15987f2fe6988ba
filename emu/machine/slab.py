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

from emu.core.args import U64, check_address, check_int, check_str
from emu.core.errors import BadArgument, KmemuError, SlabAllocatorError
from emu.kernel import slab as slabv
from emu.kernel import slab_slab, slab_slob
from emu.kernel.gfp import parse as parse_gfp
from emu.kernel.mm import PAGE_OFFSET, PG, PageInfo

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
    """Where an address lives in the slab allocator (SLUB or SLAB)."""

    cache: str
    object: int  # start of the object
    offset: int  # addr - object
    size: int  # the cache's object_size
    allocated: bool
    alloc_owner: list[str] | None = None  # U: caller and stack of the last allocation
    free_owner: list[str] | None = None  # U: ... of the last free
    index: int | None = None  # slot in its slab (SLAB: counted from the colour offset)
    objects: int | None = None  # slots per slab


#: The plan keys (function, argument count) of the hottest wrappers (kmalloc, kfree).
_KMALLOC = ("kmalloc", 2)
_KFREE = ("kfree", 1)
_GFP_KERNEL = parse_gfp("GFP_KERNEL")


class SlabMixin:
    """kmalloc family and kmem_cache_* on a :class:`~emu.machine.core.Machine`."""

    # kmalloc family ----------------------------------------------------------
    def kmalloc(self: Machine, size: int, gfp: str | int = "GFP_KERNEL", *,
                context: str = "process") -> int:
        # The common case, checked inline and handed straight to _call_fast: the plan
        # already made (the first call makes it through call()), process context,
        # GFP_KERNEL by name, a plain int size_t, the machine idle.  Anything else
        # (other flags, contexts, bad input, a stopped machine) takes call() and its
        # checks and one-line errors.  See ARCHITECTURE.md "The host round trip".
        plan = self._call_plans.get(_KMALLOC)
        if (plan is not None and gfp == "GFP_KERNEL" and context == "process"
                and type(size) is int and 0 <= size <= U64 and self.state == "ready"):
            self._interrupted = False  # _begin_request, as call() does
            return self._call_fast(plan, (size, _GFP_KERNEL))
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
        plan = self._call_plans.get(_KFREE)  # the common case inline, as kmalloc's
        if (plan is not None and context == "process" and type(addr) is int
                and 0 <= addr <= U64 and self.state == "ready"):
            self._interrupted = False
            self._call_fast(plan, (addr,))
            return
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
    # SLUB's views are the first branch of each; SLAB's and SLOB's readers live in
    # emu.kernel.slab_slab / slab_slob.  A view an allocator does not have raises
    # SlabAllocatorError naming it.
    def _only(self: Machine, what: str, *allocators: str) -> None:
        if self.slab not in allocators:
            names = " and ".join(a.upper() for a in allocators)
            raise SlabAllocatorError(f"{what}: this machine runs {self.slab.upper()} (slab="
                                     f"{self.slab}); only {names} "
                                     f"{'has' if len(allocators) == 1 else 'have'} it")

    def _kread(self: Machine, va: int, n: int) -> bytes:
        """read_virt, with direct-map addresses (every slab object and page) read by
        physical address: no page-table walk per read (views read thousands)."""
        end = self.__dict__.get("_direct_map_end")
        if end is None:  # max_pfn is fixed once the machine has booted
            end = self.__dict__["_direct_map_end"] = PAGE_OFFSET + (
                self.read_u64(self.symbol("max_pfn")) << 12)
        if PAGE_OFFSET <= va and va + n <= end:
            return self.read_phys(va - PAGE_OFFSET, n)
        return self.read_virt(va, n)

    def caches(self: Machine) -> list:
        """The slab caches, newest first: :class:`emu.kernel.slab.CacheView` (SLUB),
        :class:`emu.kernel.slab_slab.SlabCacheView` (SLAB) or
        :class:`emu.kernel.slab_slob.SlobCacheView` (SLOB)."""
        with self._reads_held():
            if self.slab == "slab":
                return slab_slab.read_caches(self.program, self._kread)
            if self.slab == "slob":
                return slab_slob.read_caches(self.program, self._kread)
            return slabv.read_caches(self.program, self.read_virt)

    def slabinfo(self: Machine) -> str:
        """``/proc/slabinfo`` as the running allocator prints it (SLOB has none: raises)."""
        if self.slab == "slob":
            raise SlabAllocatorError(slab_slob.NO_SLABINFO)
        if self.slab == "slab":
            return slab_slab.format_slabinfo(self.caches())
        return slabv.format_slabinfo(self.caches())

    def slabtop(self: Machine) -> str:
        if self.slab == "slob":
            raise SlabAllocatorError("slabtop: " + slab_slob.NO_SLABINFO)
        if self.slab == "slab":
            return slab_slab.format_slabtop(self.caches())
        return slabv.format_slabtop(self.caches())

    def _slab_head_pages(self: Machine) -> list[PageInfo]:
        """The PG_slab pages (slab heads), found from the flags words alone: decoding
        only these makes a scan of mem_map ~20x cheaper than ``pages()``."""
        return [p for run in self._page_runs() for p in run.infos(any_of=PG["slab"])]

    def slabs(self: Machine) -> list:
        """Every slab: SLUB's :class:`SlabView`, SLAB's :class:`SlabPage` or SLOB's
        :class:`SlobPage` (pages shared by all caches)."""
        with self._reads_held():
            return self._slabs()

    def _slabs(self: Machine) -> list:
        if self.slab == "slab":
            return [s for c in self.caches() for s in c.slabs]
        if self.slab == "slob":
            return self._slob_pages()
        mem_map = self.read_u64(self.symbol("mem_map"))
        return slabv.slabs_from_pages(self._slab_head_pages(), self.caches(), mem_map,
                                      self.read_u64)

    def _slob_pages(self: Machine) -> list[slab_slob.SlobPage]:
        mem_map = self.read_u64(self.symbol("mem_map"))
        raw = [(p.pfn, mem_map + 64 * p.pfn, p.word2, p.private)
               for p in self._slab_head_pages()]
        return slab_slob.read_pages(self.program, self._kread, raw)

    def validate_slab(self: Machine) -> list[str]:
        """Counters of every cache against a walk of all its slabs; [] when consistent
        (SLOB: every page's free chain against its count and list)."""
        with self._reads_held():
            return self._validate_slab()

    def _validate_slab(self: Machine) -> list[str]:
        if self.slab == "slob":
            return slab_slob.validate(self._slob_pages(), self.read_u64(self.symbol("slob_pages")))
        caches = self.caches()
        mem_map = self.read_u64(self.symbol("mem_map"))
        if self.slab == "slab":
            owners = {mem_map + 64 * p.pfn: p.word1 for p in self._slab_head_pages()}
            return slab_slab.validate(caches, owners)
        return slabv.validate_slabs(caches, slabv.slabs_from_pages(
            self._slab_head_pages(), caches, mem_map, self.read_u64))

    def slab_page_owners(self: Machine) -> dict[int, tuple[str, int]]:
        """Who owns each slab page: head pfn -> (cache name, or "slob-small" / "slob-medium"
        / "slob-large" / "slob-full" for SLOB's shared pages; order)."""
        if self.slab == "slob":
            return {p.pfn: (f"slob-{p.list or 'full'}", 0) for p in self._slob_pages()}
        names = {c.address: (c.name, c.order) for c in self.caches()}
        return {p.pfn: names.get(p.word1, ("?", 0)) for p in self._slab_head_pages()}

    def live_objects(self: Machine, cache: str) -> list[int]:
        check_str(cache, "cache name")
        self._only("live_objects (SLOB keeps no record of where its blocks start)",
                   "slub", "slab")
        if self.slab == "slab":
            c = next((v for v in self.caches() if v.name == cache), None)
            return slab_slab.live_objects(c) if c else []
        return sorted(o for s in self.slabs() if s.cache.name == cache for o in s.live)

    def find_object(self: Machine, addr: int) -> ObjectInfo | None:
        """Which cache and object ``addr`` belongs to (None if not slab memory).

        Reads only the struct page of ``addr`` (and its compound head) and that
        slab's freelists, so it is cheap enough to call per object.  SLOB keeps no
        object boundaries: raises SlabAllocatorError.
        """
        check_address(addr)
        self._only("find_object (SLOB keeps no record of where its blocks start)",
                   "slub", "slab")
        if not PAGE_OFFSET <= addr < PAGE_OFFSET + (1 << 46):
            return None
        with self._reads_held():  # its page, the caches and the slab, each read once
            return self._find_object(addr)

    def _find_object(self: Machine, addr: int) -> ObjectInfo | None:
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
        if self.slab == "slab":
            return self._find_slab_object(addr, p.word1, mem_map + 64 * p.pfn)
        cache = next((c for c in self.caches() if c.address == p.word1), None)
        if cache is None:
            return None
        slab = slabv.slabs_from_pages([p], [cache], mem_map, self.read_u64)[0]
        first = slab.base + cache.red_left_pad
        idx = (addr - first) // cache.size if addr >= first else 0
        if idx >= cache.objects:
            return None
        obj = first + idx * cache.size
        info = ObjectInfo(cache.name, obj, addr - obj, cache.object_size, obj not in slab.free,
                          index=idx, objects=cache.objects)
        if cache.track_offset:
            info.alloc_owner = self._track(obj + cache.track_offset)
            info.free_owner = self._track(obj + cache.track_offset + 40)
        return info

    def slob_block(self: Machine, addr: int) -> tuple[int, int, bool, str] | None:
        """SLOB: (start, bytes, free, list) of the free block holding ``addr``, or of the
        allocated run between two free blocks (SLOB records no object starts); None
        outside SLOB's pages."""
        self._only("slob_block", "slob")
        sp = self._slob_page_of(addr)
        if sp is None:
            return None
        where = f"slob-{sp.list or 'full'}"
        base = PAGE_OFFSET + (sp.pfn << 12)
        start, end = base, base + 4096
        for b, u in sp.blocks:
            if b <= addr < b + 2 * u:
                return b, 2 * u, True, where
            if b + 2 * u <= addr:
                start = b + 2 * u
            elif b > addr:
                end = min(end, b)
        return start, end - start, False, where

    def slab_object_allocated(self: Machine, addr: int) -> bool | None:
        """Whether ``addr`` lies in an allocated slab object (None: not slab memory).
        Works on all three allocators: SLOB answers from its free chains (an address
        in a SLOB page and in no free block is allocated)."""
        if self.slab != "slob":
            info = self.find_object(addr)
            return None if info is None else info.allocated
        with self._reads_held():
            sp = self._slob_page_of(addr)
        return None if sp is None else not sp.is_free(addr)

    def _slob_page_of(self: Machine, addr: int) -> slab_slob.SlobPage | None:
        """The SLOB page holding ``addr`` (None: not a slab page of the direct map)."""
        check_address(addr)
        if not PAGE_OFFSET <= addr < PAGE_OFFSET + (1 << 46):
            return None
        try:
            page = self.pages((addr - PAGE_OFFSET) >> 12, 1)
        except KmemuError:
            return None
        if not page or not page[0].has("slab"):
            return None
        mem_map = self.read_u64(self.symbol("mem_map"))
        p = page[0]
        sp = slab_slob.read_pages(self.program, self._kread,
                                  [(p.pfn, mem_map + 64 * p.pfn, p.word2, p.private)])[0]
        return sp

    def _find_slab_object(self: Machine, addr: int, cache_addr: int,
                          page: int) -> ObjectInfo | None:
        cache = next((c for c in self.caches() if c.address == cache_addr), None)
        slab = next((s for s in cache.slabs if s.page == page), None) if cache else None
        if cache is None or slab is None or addr < slab.s_mem:
            return None
        idx = (addr - slab.s_mem) // cache.size
        if idx >= cache.objects:
            return None  # the colour or the on-slab index array, not an object
        obj = slab.s_mem + idx * cache.size + cache.obj_offset
        free = idx in slab.free_index or obj in slab_slab.cached(cache)
        info = ObjectInfo(cache.name, obj, addr - obj, cache.object_size, not free,
                          index=idx, objects=cache.objects)
        if cache.flags & 0x10000:  # SLAB_STORE_USER: the last caller, one word
            who = self.read_u64(slab.s_mem + (idx + 1) * cache.size - 8)
            if who:
                if free:
                    info.free_owner = [self.symbolize(who)]
                else:
                    info.alloc_owner = [self.symbolize(who)]
        return info

    def _track(self: Machine, addr: int) -> list[str] | None:
        addr0, *stack = (self.read_u64(addr + 8 * i) for i in range(5))  # struct track
        if stack and stack[0] == addr0:  # the saved trace starts at the caller itself
            stack = stack[1:]
        return [self.symbolize(w) for w in (addr0, *stack) if w] or None

    def cache_info(self: Machine, name: str) -> dict[str, object]:
        """Per-cache details: sizes, layout, slab order, partial count, CPU free objects
        (SLAB: tunables, colouring and array caches too; SLOB: sizes and objects out)."""
        check_str(name, "cache name")
        c = next((v for v in self.caches() if v.name == name), None)
        if c is None:
            raise BadArgument(f"no slab cache named {name!r}")
        if self.slab == "slob":
            return {"name": c.name, "object_size": c.object_size, "size": c.size,
                    "align": c.align, "allocated": c.allocated}
        if self.slab == "slab":
            return {"name": c.name, "object_size": c.object_size, "size": c.size,
                    "objects_per_slab": c.objects, "order": c.order, "align": c.align,
                    "slabs": c.nr_slabs, "partial": c.nr_partial, "free_slabs": c.free_slabs,
                    "cpu_free_objects": len(c.cpu_entries),
                    "shared_free_objects": len(c.shared_entries),
                    "active_objs": c.active_objs, "num_objs": c.total_objects,
                    "limit": c.limit, "batchcount": c.batchcount, "shared": c.shared,
                    "colour": c.colour, "colour_off": c.colour_off, "layout": c.layout,
                    "debug": c.debug, "errors": c.errors, **c.stats}
        cpu_free = len(slabv.walk_freelist(c, c.cpu_freelist, self.read_u64, c.objects))
        return {"name": c.name, "object_size": c.object_size, "size": c.size,
                "objects_per_slab": c.objects, "order": c.order, "align": c.align,
                "slabs": c.nr_slabs, "partial": c.nr_partial, "cpu_free_objects": cpu_free,
                "active_objs": c.active_objs, "num_objs": c.total_objects, "debug": c.debug,
                "errors": c.errors}

    # SLAB and SLOB only ------------------------------------------------------------
    def slab_reap(self: Machine, ticks: int = 1) -> int:
        """SLAB's cache_reap, ``ticks`` times (each is one of Linux's 2 s reap timer
        runs; the node-level part runs every second tick).  Returns slabs freed."""
        self._only("slab_reap", "slab")
        check_int(ticks, "ticks")
        if ticks < 1:
            raise BadArgument(f"ticks must be at least 1, got {ticks}")
        return sum(self.call("slab_cache_reap") for _ in range(ticks))

    def slab_reap_after(self: Machine, insns: int) -> None:
        """SLAB's reap timer: one cache_reap tick from an interrupt ``insns`` guest
        instructions from now (in the middle of whatever runs then)."""
        self._only("slab_reap_after", "slab")
        check_int(insns, "insns")
        self.raise_irq(self.read_virt(self.symbol("slab_reap_vector"), 1)[0], after=insns)

    def slab_tune(self: Machine, cache: int | str, limit: int, batchcount: int,
                  shared: int) -> None:
        """SLAB's tunables, as ``echo "NAME LIMIT BATCHCOUNT SHARED" > /proc/slabinfo``."""
        self._only("slab_tune", "slab")
        for v, what in ((limit, "limit"), (batchcount, "batchcount"), (shared, "shared")):
            check_int(v, what)
        if not (1 <= batchcount <= limit <= 1024 and 0 <= shared <= 8):
            raise BadArgument(f"SLAB tunables need 1 <= batchcount <= limit <= 1024 and "
                              f"0 <= shared <= 8, got {limit} {batchcount} {shared}")
        err = self.call("slab_tune_cpucache", self._cache_ptr(cache), limit, batchcount, shared)
        if err:
            raise BadArgument(f"slab_tune: the kernel refused ({err - (1 << 64)})")

    def slob_info(self: Machine) -> dict[str, object]:
        """SLOB's pages by free list, free bytes and whole-page allocations."""
        self._only("slob_info", "slob")
        return slab_slob.info(self._slob_pages(), self.read_u64(self.symbol("slob_big_pages")))

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
