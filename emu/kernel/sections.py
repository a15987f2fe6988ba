"""Which section of the kernel image, or of a module, an address falls in.

Layer 4: pure functions over addresses the caller reads (linker symbols of
the image, section addresses and sizes of a module).  Used to say where a
page fault hit (``GuestOops.where``): a write to ``.rodata of the kernel
image`` reads differently from a write to a vmalloc area.

The image's permission regions are those of ``kernel/kernel.ld``:
``[_stext, __start_rodata)`` text, ``[__start_rodata, __end_rodata)``
rodata (with the export tables, kallsyms and built-in module images),
``[_sdata, __bss_start)`` data, ``[__bss_start, __kernel_end)`` bss.  The
direct map holds a second alias of the same pages.

>>> b = ImageBounds(0x1000, 0x3000, 0x4000, 0x5000, 0x6000, 0x10000)
>>> image_section(0x3008, b, direct_map_base=0x100000)
'.rodata of the kernel image'
>>> image_section(0x100000 + 0x1000 - 0x1000 + 0x1008, b, 0x100000, phys_base=0x1000)
'.text of the kernel image (its direct-map alias)'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ImageBounds:
    """The image's linker labels (virtual addresses at the kernel map)."""

    stext: int
    start_rodata: int
    end_rodata: int
    sdata: int
    bss_start: int
    kernel_end: int

    def regions(self) -> list[tuple[str, int, int]]:
        return [(".text", self.stext, self.start_rodata),
                (".rodata", self.start_rodata, self.end_rodata),
                (".data", self.sdata, self.bss_start),
                (".bss", self.bss_start, self.kernel_end)]


def image_section(addr: int, b: ImageBounds, direct_map_base: int,
                  phys_base: int | None = None) -> str | None:
    """``'.rodata of the kernel image'`` and the like, or None outside the image.

    ``phys_base`` is the physical address of ``_stext``; with it, addresses in
    the direct map's alias of the image are named too."""
    for name, lo, hi in b.regions():
        if lo <= addr < hi:
            return f"{name} of the kernel image"
    if phys_base is None:
        return None
    alias = addr - direct_map_base - phys_base + b.stext
    for name, lo, hi in b.regions():
        if lo <= alias < hi:
            return f"{name} of the kernel image (its direct-map alias)"
    return None


def module_section(addr: int, module: str, sections: Iterable[tuple[str, int, int]]) -> str | None:
    """``'.rodata of module hello'`` for ``(name, address, size)`` sections, or None.

    >>> module_section(0x2010, "hello", [(".text", 0x1000, 0x20), (".rodata", 0x2000, 0x40)])
    '.rodata of module hello'
    """
    for name, lo, size in sections:
        if lo <= addr < lo + max(size, 1):
            return f"{name} of module {module}"
    return None
