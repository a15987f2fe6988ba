"""Layer 5: the census of physical memory, from a booted machine (mixed into Machine).

>>> mm = m.memory_map()                   # doctest: +SKIP
>>> mm.counts()["struct pages (vmemmap)"]  # doctest: +SKIP
512
>>> m.validate_memory_map()                # doctest: +SKIP
[]

This module gathers the kernel's records (struct pages, page tables, vmalloc
areas, modules, memblock, the e820 table, symbols) and hands them to
:func:`emu.kernel.memmap.census`, which does the classifying.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from emu.build import layout as L
from emu.core.errors import BadArgument
from emu.kernel import memmap as mmap
from emu.kernel import mm
from emu.kernel import vmalloc as vmv

if TYPE_CHECKING:
    from emu.machine.core import Machine


class MemoryMapMixin:
    """``memory_map()`` and its check; ``self`` is a :class:`~emu.machine.core.Machine`."""

    def memory_map(self: Machine) -> mmap.MemoryMap:
        """Who holds every page frame below ``max_pfn``: a list of
        ``Run(pfn, count, owner)`` (see :mod:`emu.kernel.memmap` for the owners)."""
        return mmap.census(self._census_input())

    def validate_memory_map(self: Machine, census: mmap.MemoryMap | None = None) -> list[str]:
        """The census against itself and the kernel's counters (MemTotal, MemFree,
        each zone's free/pcp/managed pages, Slab per cache, VmallocUsed, page-table
        pages, vmemmap, kernel image); [] when everything agrees."""
        if census is None:
            census = self.memory_map()
        elif not isinstance(census, mmap.MemoryMap):
            raise BadArgument(f"census must be what memory_map() returned, got "
                              f"{type(census).__name__}")
        return mmap.validate_census(census, self._kernel_counters(),
                                    sum(n for o, n in census.managed_owners.items()
                                        if mmap.kind_of(o) == "pagetable"))

    # --- gathering ------------------------------------------------------------------------
    def _census_input(self: Machine) -> mmap.CensusInput:
        max_pfn = self.read_u64(self.symbol("max_pfn"))
        mem_map = self.read_u64(self.symbol("mem_map"))

        def read_pages(pfn: int, n: int) -> bytes:
            return self.read_virt(mem_map + pfn * mm.STRUCT_PAGE_SIZE, n * mm.STRUCT_PAGE_SIZE)

        return mmap.CensusInput(
            max_pfn=max_pfn,
            present=mm.present_pfn_runs(self._section_bitmap(max_pfn), max_pfn),
            read_pages=read_pages, e820=self._kernel_e820(),
            memblock_reserved=self.memblock()["reserved"],
            caches={} if self.slab == "slob" else
            {c.address: (c.name, c.order) for c in self.caches()},
            slab_pages=self.slab_page_owners() if self.slab == "slob" else None,
            owners=self._recorded_owners(mem_map))

    def _kernel_e820(self: Machine) -> list[tuple[int, int, int]]:
        """The e820 table as the kernel keeps it (``boot_info.e820``)."""
        bi = self.program["boot_info"]
        count = int(bi.e820_count)
        raw = self.read_virt(int(bi.e820), count * 24)
        return [(b, s, t) for b, s, t, _ in struct.iter_unpack("<QQII", raw)]

    def _pa_symbol(self: Machine, name: str) -> int:
        return self.symbol(name) - L.KERNEL_VIRT

    def _recorded_owners(self: Machine, mem_map: int) -> dict[int, str]:
        """pfn -> owner from every record but struct page, least specific first."""
        owners: dict[int, str] = {}
        paint = mmap.paint
        paint(owners, 0, 1 << 20, "memblock: first 1 MiB (BIOS, boot)")
        paint(owners, L.EARLY_PT, L.BOOT_INFO, "memblock: early page tables")
        paint(owners, L.BOOT_INFO, L.BOOT_INFO + mmap.PAGE_SIZE, "memblock: boot info")
        paint(owners, 0, mmap.PAGE_SIZE, "firmware: BIOS page (pfn 0)")
        paint(owners, self._pa_symbol("_stext"), self._pa_symbol("__start_rodata"),
              "kernel text")
        paint(owners, self._pa_symbol("__start_rodata"), self._pa_symbol("__end_rodata"),
              "kernel rodata")
        paint(owners, self._pa_symbol("_sdata"), self._pa_symbol("__kernel_end"),
              "kernel data+bss")
        bi = self.program["boot_info"]
        e820_pa = self.translate(int(bi.e820))
        paint(owners, e820_pa, e820_pa + int(bi.e820_count) * 24, "memblock: e820 table")
        max_pfn = self.read_u64(self.symbol("max_pfn"))
        pb = self.translate(self.read_u64(self.symbol("pageblock_flags")))
        paint(owners, pb, pb + (max_pfn + mm.PAGEBLOCK_NR_PAGES - 1) // mm.PAGEBLOCK_NR_PAGES,
              "memblock: pageblock flags")
        image = (self._pa_symbol("_stext"), self._pa_symbol("__kernel_end"))
        for kind in ("memory", "reserved"):
            t = self.program["memblock"].member_(kind)
            pa = self.translate(int(t.regions))
            if not image[0] <= pa < image[1]:  # grown from memblock (memblock_double_array)
                paint(owners, pa, pa + int(t.max) * int(t.regions[0].type_.size),
                      "memblock: region arrays")
        leaves = [(mmap.VMEMMAP_START, mmap.VMEMMAP_END, mmap.VMEMMAP),
                  (mmap.KASAN_SHADOW_START, mmap.KASAN_SHADOW_END, mmap.KASAN_SHADOW)]
        owners.update(mmap.walk_page_tables(
            lambda pa: struct.unpack("<512Q", self.read_phys(pa, 4096)), self.cr3, leaves))
        owners.update(self._vmalloc_owners(mem_map))
        return owners

    def _vmalloc_owners(self: Machine, mem_map: int) -> dict[int, str]:
        """pfn -> "vmalloc CALLER" or "module NAME PART" for every page a busy
        vmalloc area's ``pages[]`` holds."""
        mods = self._module_views()
        out: dict[int, str] = {}
        for a in self.vmap_areas():
            if a.state != "busy" or not a.pages or not a.nr_pages:
                continue
            ptrs = struct.unpack(f"<{a.nr_pages}Q", self.read_virt(a.pages, a.nr_pages * 8))
            for i, ptr in enumerate(ptrs):
                out[(ptr - mem_map) // mm.STRUCT_PAGE_SIZE] = self._vmalloc_owner(
                    a, a.start + i * mmap.PAGE_SIZE, mods)
        return out

    def _vmalloc_owner(self: Machine, area: vmv.VmapAreaView, va: int, mods: list) -> str:
        for v in mods:
            where = v.area_of(va)
            if where is None:
                continue
            start, _end, text_end = where
            if start != v.base:
                return f"module {v.name} init"
            part = ("text" if va < text_end else "rodata" if va < v.base + v.ro_size
                    else "data")
            return f"module {v.name} {part}"
        caller = self.symbolize(area.caller).split("+", 1)[0] if area.caller else "?"
        return f"vmalloc {caller}"

    def _kernel_counters(self: Machine) -> mmap.KernelCounters:
        zones = self.zones()
        caches: dict[str, int] = {}
        if self.slab == "slob":  # no counters: its page lists, read apart from struct page
            for name, order in self.slab_page_owners().values():
                caches[name] = caches.get(name, 0) + (1 << order)
        for c in self.caches() if self.slab != "slob" else ():
            caches[c.name] = caches.get(c.name, 0) + (c.nr_slabs << c.order)
        max_pfn = self.read_u64(self.symbol("max_pfn"))
        sections = bin(int.from_bytes(self._section_bitmap(max_pfn), "little")).count("1")
        prealloc = sum(1 for va in range(vmv.VMALLOC_START, vmv.VMALLOC_END, 1 << 39)
                       if self._read_u64(self.cr3 + (va >> 39 & 511) * 8) & 1)
        return mmap.KernelCounters(
            totalram=self.read_u64(self.symbol("totalram_pages")),
            zones={z.index: (z.name, z.free, z.pcp_count, z.managed) for z in zones},
            slab=caches, vmalloc=self.read_u64(self.symbol("nr_vmalloc_pages")),
            pgtable_runtime=self.read_u64(self.symbol("pgtable_pages")) + prealloc,
            vmemmap=sections * mm.PAGES_PER_SECTION * mm.STRUCT_PAGE_SIZE // mmap.PAGE_SIZE,
            kernel_image=(self._pa_symbol("__kernel_end") - self._pa_symbol("_stext"))
            // mmap.PAGE_SIZE)
