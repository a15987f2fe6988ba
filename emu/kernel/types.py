"""Typed views of kernel memory through drgn (DWARF types, live guest memory).

Layer 4 (``emu.kernel``).  drgn reads guest memory through a callable we
give it, which goes through the guest page tables, so every value is read
live at the moment it is used:

>>> prog = kernel_program(elf_path, read_virt)   # doctest: +SKIP
>>> prog["boot_info"].e820_count                 # doctest: +SKIP
Object(prog, 'u32', value=7)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from emu.core.errors import KmemuError, PageFault

ReadVirt = Callable[[int, int], bytes]
KERNEL_HALF = 0xFFFF800000000000


class TypeError_(KmemuError, TypeError):
    """A type or expression drgn could not resolve against the kernel's DWARF."""


def kernel_program(elf: Path, read_virt: ReadVirt,
                   modules: Sequence[tuple[Path, tuple[int, int]]] = ()):  # -> drgn.Program
    """A drgn Program over the kernel ELF with memory read through ``read_virt``;
    ``modules`` adds loaded modules: (ELF linked at the load addresses, [start, end))."""
    import drgn

    prog = drgn.Program(drgn.Platform(drgn.Architecture.X86_64,
                                      drgn.PlatformFlags.IS_64_BIT
                                      | drgn.PlatformFlags.IS_LITTLE_ENDIAN))

    def reader(address: int, count: int, offset: int, physical: bool) -> bytes:
        try:
            return read_virt(address, count)
        except PageFault as e:
            raise drgn.FaultError(str(e), address) from None

    prog.add_memory_segment(KERNEL_HALF, (1 << 64) - KERNEL_HALF, reader)
    module = prog.extra_module(str(elf), 0, create=True)
    # The module's address range lets drgn map a pc to its DWARF: stack traces
    # with local variables (emu.kernel.scope) need it.
    module.address_range = _image_range(elf)
    module.try_file(str(elf), force=True)
    for path, rng in modules:
        extra = prog.extra_module(str(path), 0, create=True)
        extra.address_range = rng
        extra.try_file(str(path), force=True)
    return prog


def _image_range(elf: Path) -> tuple[int, int]:
    """``[start, end)`` of the kernel's loaded segments (virtual addresses)."""
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as f:
        loads = [s for s in ELFFile(f).iter_segments() if s["p_type"] == "PT_LOAD"
                 and s["p_vaddr"] >= KERNEL_HALF]
    if not loads:
        raise TypeError_(f"{elf}: no loadable segment in the kernel half")
    return (min(s["p_vaddr"] for s in loads),
            max(s["p_vaddr"] + s["p_memsz"] for s in loads))
