"""Layer 5: debugger views over a machine (mixed into :class:`emu.Machine`).

``identify`` gathers what :mod:`emu.kernel.whatis` needs from the other views
(``pages``, ``zones``, ``find_object``, ``vmap_areas``, the page tables) and
lets the pure classifier answer.

>>> print(m.identify(m.kmalloc(100)))     # doctest: +SKIP
0xffff88800ff0a080: direct map, pfn 0xff0a in zone DMA32
slab object: kmalloc-128 object 1 of 32 at 0xffff88800ff0a080, +0x0 of 128 bytes, allocated
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emu.core.errors import KmemuError
from emu.kernel import whatis as whatis_mod
from emu.kernel.mm import PAGE_OFFSET, PAGE_SHIFT, PageInfo

if TYPE_CHECKING:
    from emu.machine.core import Machine


class DebugInfoMixin:
    """``identify`` (which zone, page, slab object or vmalloc area owns an address;
    drgn's identify_address) on a :class:`~emu.machine.core.Machine`."""

    def identify(self: Machine, addr: int) -> str:
        """Which zone / page / slab object / vmalloc area / symbol owns ``addr`` (an
        ``unsigned long`` virtual address), in words.  Raises
        :class:`emu.core.errors.BadArgument` for a value that is not a 64-bit address."""
        return str(whatis_info(self, addr))

    def identify_info(self: Machine, addr: int) -> whatis_mod.Whatis:
        """:meth:`identify` as a :class:`emu.kernel.whatis.Whatis` (``kind``, ``region``,
        ``pfn``, ``lines``)."""
        return whatis_info(self, addr)


def whatis_info(m: Machine, addr: int) -> whatis_mod.Whatis:
    addr = whatis_mod.check_address(addr)
    return whatis_mod.whatis(addr, whatis_sources(m))


_SECTIONS: dict[str, list[whatis_mod.Section]] = {}


def whatis_sources(m: Machine) -> whatis_mod.Sources:
    """Live readers for :func:`emu.kernel.whatis.whatis` (struct pages cached per call)."""
    syms = m._syms()
    assert m.artifacts is not None
    pages: dict[int, PageInfo | None] = {}

    def page(pfn: int) -> PageInfo | None:
        if pfn not in pages:
            try:
                got = m.pages(pfn, 1) if pfn >= 0 else []
            except KmemuError:
                got = []
            pages[pfn] = got[0] if got else None
        return pages[pfn]

    def slab_object(va: int) -> whatis_mod.SlabObject | None:
        if m.slab == "slob":  # no object starts: the free block or allocated run
            blk = m.slob_block(va)
            if blk is None:
                return None
            start, size, free, where = blk
            kind = "free block" if free else "allocated run"
            return whatis_mod.SlabObject(f"SLOB {kind} ({where} page)", start, va - start, size,
                                         not free)
        info = m.find_object(va)
        if info is None:
            return None
        obj = whatis_mod.SlabObject(info.cache, info.object, info.offset, info.size,
                                    info.allocated, alloc_owner=info.alloc_owner,
                                    free_owner=info.free_owner)
        if info.index is not None:  # the allocator knows the slot (colour and all)
            obj.index, obj.objects = info.index, info.objects
            return obj
        cache = next((c for c in m.caches() if c.name == info.cache), None)
        if cache is not None and cache.size:
            # a slab is one naturally aligned buddy block: its first object is at the start
            slab_bytes = 1 << (PAGE_SHIFT + cache.order)
            base = PAGE_OFFSET + ((info.object - PAGE_OFFSET) & ~(slab_bytes - 1))
            obj.index = (info.object - base - cache.red_left_pad) // cache.size
            obj.objects = cache.objects
        return obj

    def page_member(offset: int) -> str | None:
        from drgn.helpers.common.type import member_at_offset

        try:
            return member_at_offset(m.program.type("struct page"), offset)
        except (LookupError, ValueError, TypeError):
            return None

    def member(name: str, offset: int) -> str | None:
        from drgn.helpers.common.type import member_at_offset

        try:
            return member_at_offset(m.program[name].type_, offset)
        except (LookupError, ValueError, TypeError):
            return None

    elf = str(m.artifacts.elf)
    if elf not in _SECTIONS:
        _SECTIONS[elf] = whatis_mod.kernel_sections(elf)
    return whatis_mod.Sources(
        page=page, translate=m.translate, symbols=syms,
        zone_names=[z.name for z in m.zones()], sections=_SECTIONS[elf],
        max_pfn=m.read_u64(m.symbol("max_pfn")), mem_map=m.read_u64(m.symbol("mem_map")),
        slab_object=slab_object, vmap_areas=m.vmap_areas, symbolize=m.symbolize,
        page_member=page_member, member=member, module_at=m.module_part)
