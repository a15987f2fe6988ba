"""Layer 5: the page allocator from Python (mixed into :class:`emu.Machine`).

>>> va = m.alloc_pages("GFP_KERNEL | __GFP_ZERO", 0)     # doctest: +SKIP
>>> m.free_pages(va, 0)                                   # doctest: +SKIP
>>> print(m.buddyinfo())                                  # doctest: +SKIP
Node 0, zone      DMA      0      1      ...

GFP flags are accepted by name (``"GFP_ATOMIC | __GFP_NOWARN"``) or as ints;
every call accepts ``context=`` like :meth:`Machine.call`.  Views are
computed in Python from guest memory (:mod:`emu.kernel.mm`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from emu.core.args import check_address, check_int, check_optional_int
from emu.core.errors import BadArgument
from emu.kernel import gfp as gfp_mod
from emu.kernel import mm

if TYPE_CHECKING:
    from emu.machine.core import Machine

PAGES_PER_READ = 1 << 18  # struct pages per bulk read: 16 MiB of host buffer


class PageAllocatorMixin:
    """Page-allocator helpers; ``self`` is a :class:`~emu.machine.core.Machine`."""

    def _gfp(self: Machine, gfp: str | int) -> int:
        return gfp_mod.parse(gfp)

    def alloc_pages(self: Machine, gfp: str | int, order: int = 0, *,
                    context: str = "process") -> int:
        """``__get_free_pages(gfp, order)``: direct-map address of the block, 0 on failure."""
        return self.call("__get_free_pages", self._gfp(gfp), order, context=context)

    def alloc_page_struct(self: Machine, gfp: str | int, order: int = 0, *,
                          context: str = "process") -> int:
        """``alloc_pages(gfp, order)``: the ``struct page *`` (0 on failure)."""
        return self.call("alloc_pages", self._gfp(gfp), order, context=context)

    def free_pages(self: Machine, addr: int, order: int = 0, *, context: str = "process") -> None:
        """``free_pages(addr, order)``; bad frees are reported by the kernel as events."""
        self.call("free_pages", addr, order, context=context)

    def get_zeroed_page(self: Machine, gfp: str | int = "GFP_KERNEL", *,
                        context: str = "process") -> int:
        return self.call("get_zeroed_page", self._gfp(gfp), context=context)

    def drain_all_pages(self: Machine) -> None:
        self.call("drain_all_pages")

    def page_to_pfn(self: Machine, page: int) -> int:
        check_address(page, "struct page address")
        return (page - self.read_u64(self.symbol("mem_map"))) // mm.STRUCT_PAGE_SIZE

    def pfn_to_page(self: Machine, pfn: int) -> int:
        check_int(pfn, "pfn", 0, (1 << 52) - 1)
        return self.read_u64(self.symbol("mem_map")) + pfn * mm.STRUCT_PAGE_SIZE

    def virt_to_pfn(self: Machine, addr: int) -> int:
        return self.translate(addr) >> mm.PAGE_SHIFT

    # views -------------------------------------------------------------------
    def zones(self: Machine) -> list[mm.ZoneView]:
        with self._reads_held():
            return mm.read_zones(self.program)

    def buddyinfo(self: Machine) -> str:
        return mm.format_buddyinfo(self.zones())

    def pagetypeinfo(self: Machine) -> str:
        """``/proc/pagetypeinfo``: free blocks per migrate type, pageblocks per type."""
        max_pfn = self.read_u64(self.symbol("max_pfn"))
        bits = int.from_bytes(self._section_bitmap(max_pfn), "little")
        return mm.format_pagetypeinfo(self.zones(), self.pageblocks(),
                                      lambda pfn: bool(bits >> (pfn // mm.PAGES_PER_SECTION) & 1))

    def pageblocks(self: Machine) -> bytes:
        """``pageblock_flags[]``: per pageblock, its migrate type (``mm.MIGRATE_TYPES``
        index) in bits 0-2 and ``mm.PB_MIXED``."""
        return mm.read_pageblocks(self.program)

    def set_percpu_pagelist_high_fraction(self: Machine, fraction: int) -> None:
        """``sysctl vm.percpu_pagelist_high_fraction``: 0 (pcp high from the low
        watermark) or at least 8 (managed pages / fraction)."""
        check_int(fraction, "percpu_pagelist_high_fraction", 0, (1 << 31) - 1)
        if self.call("kmemu_set_percpu_pagelist_high_fraction", fraction) != 0:
            raise BadArgument(f"percpu_pagelist_high_fraction must be 0 or at least 8, "
                              f"got {fraction}")

    def set_min_free_kbytes(self: Machine, kbytes: int) -> None:
        """``sysctl vm.min_free_kbytes``: watermarks, lowmem_reserve and pcp high follow."""
        check_int(kbytes, "min_free_kbytes", 0, 1 << 40)
        self.call("kmemu_set_min_free_kbytes", kbytes)

    def alloc_debug(self: Machine, *, might_sleep: bool | None = None,
                    bad_page: bool | None = None) -> dict[str, bool]:
        """The allocators' debug checks, both on at boot: ``might_sleep`` (might_sleep's
        "sleeping function called from invalid context" in the page and slab allocators,
        CONFIG_DEBUG_ATOMIC_SLEEP; the slab allocators test it inline behind its own
        static key and take their hooks only to report) and ``bad_page`` (the page
        allocator's checks at free, CONFIG_DEBUG_VM's: double free, a tail or slab page,
        not the start of an allocation, the wrong order; not kfree's address check, which
        is always on).  ``None`` leaves one as it is.  With both off (and no other hook
        on) the fast paths run without their debug checks: one static-key nop each, and
        in the slab allocation paths a jmp over might_sleep's inline check
        (<kmemu/alloc_hooks.h>).  Returns the state before the change, to restore it."""
        now = {v: bool(self.read_virt(self.symbol(v), 1)[0])
               for v in ("debug_atomic_sleep", "page_alloc_debug")}
        want = {"debug_atomic_sleep": now["debug_atomic_sleep"] if might_sleep is None
                else might_sleep, "page_alloc_debug": now["page_alloc_debug"] if bad_page is None
                else bad_page}
        for name, v in want.items():
            if not isinstance(v, bool):
                raise BadArgument(f"alloc_debug: {name} must be True, False or None, not {v!r}")
        if want != now:
            self.call("alloc_debug_set", int(want["debug_atomic_sleep"]),
                      int(want["page_alloc_debug"]))
        return {"might_sleep": now["debug_atomic_sleep"], "bad_page": now["page_alloc_debug"]}

    def zoneinfo(self: Machine) -> str:
        return mm.format_zoneinfo(self.zones())

    def watermarks(self: Machine) -> dict[str, dict[str, int]]:
        return mm.watermarks(self.zones())

    def memblock(self: Machine) -> dict[str, list[tuple[int, int]]]:
        with self._reads_held():
            return mm.read_memblock(self.program)

    def pages(self: Machine, start_pfn: int = 0, count: int | None = None) -> list[mm.PageInfo]:
        """``struct page`` entries decoded in bulk, for the pfns whose struct page
        exists (sections holding RAM); all of them by default."""
        check_int(start_pfn, "start_pfn")
        check_optional_int(count, "count")
        with self._reads_held():
            return [p for run in self._page_runs(start_pfn, count) for p in run.infos()]

    def _page_runs(self: Machine, start_pfn: int = 0,
                   count: int | None = None) -> Iterator[mm.PageRun]:
        """The struct pages of :meth:`pages` as bulk-read runs, in pfn order, read one
        at a time (bounded host buffers: read_virt)."""
        max_pfn = self.read_u64(self.symbol("max_pfn"))
        end = max_pfn if count is None else min(max_pfn, start_pfn + count)
        mem_map = self.read_u64(self.symbol("mem_map"))
        for lo, hi in mm.present_pfn_runs(self._section_bitmap(max_pfn), max_pfn):
            lo, hi = max(lo, start_pfn), min(hi, end)
            for at in range(lo, hi, PAGES_PER_READ):
                yield mm.read_page_run(self.read_virt, mem_map, at, min(hi - at, PAGES_PER_READ))

    def _section_bitmap(self: Machine, max_pfn: int) -> bytes:
        nsec = (max_pfn + mm.PAGES_PER_SECTION - 1) // mm.PAGES_PER_SECTION
        return self.read_virt(self.symbol("section_present"), (nsec + 63) // 64 * 8)

    def ptdump(self: Machine, start: int | None = None, end: int | None = None) -> str:
        """Mapped kernel ranges like Linux's ptdump (``start``/``end`` default to the
        whole upper half)."""
        from emu.kernel.ptdump import ptdump
        check_optional_int(start, "start")
        check_optional_int(end, "end", 0, 1 << 64)
        return ptdump(self._read_u64, self.cr3, 0xFFFF800000000000 if start is None else start,
                      (1 << 64) if end is None else end)

    def pt(self: Machine, va: int) -> str:
        """The page-table walk for ``va``, every level's entry and bits."""
        from emu.kernel.ptdump import format_pt
        check_address(va, "virtual address")
        return format_pt(self._read_u64, self.cr3, va)

    def validate_page_alloc(self: Machine) -> list[str]:
        """Every check of :mod:`emu.kernel.mm` against live memory; [] when consistent."""
        with self._reads_held():
            zones = self.zones()
            census = mm.PageCensus.empty(len(zones))
            free: list[mm.PageInfo] = []  # what validate_mobility looks at
            for run in self._page_runs():
                census.add(run)
                free += run.infos(mm.PG["buddy"] | mm.PG["pcp"])
            return (mm.validate_zones(zones, census)
                    + mm.validate_mobility(zones, free, self.pageblocks()))
