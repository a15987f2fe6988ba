"""Page-table dumps in the shape of Linux's ``ptdump`` and of an oops walk.

Layer 4 (``emu.kernel``); built on :mod:`emu.kernel.pagetable`.

>>> print(ptdump(read_u64, cr3, 0xffffc90000000000, 0xffffc90000010000))  # doctest: +SKIP
---[ vmalloc() Area ]---
0xffffc90000000000-0xffffc90000005000          20K     RW                 GLB NX pte
"""

from __future__ import annotations

from collections.abc import Callable

from emu.core.errors import BadArgument
from emu.kernel import pagetable as pt

ReadU64 = Callable[[int], int]
LEVEL_OF_SIZE = {1 << 12: "pte", 1 << 21: "pmd", 1 << 30: "pud"}
# Linux x86-64 address markers (the ones kmemu uses)
MARKERS = [
    (0xFFFF888000000000, "Low Kernel Mapping"),
    (0xFFFFC90000000000, "vmalloc() Area"),
    (0xFFFFE90000000000, "vmalloc() End"),
    (0xFFFFEA0000000000, "Vmemmap"),
    (0xFFFFEB0000000000, "Vmemmap End"),
    (0xFFFFFFFF80000000, "High Kernel Mapping"),
]


def _human(size: int) -> str:
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift}{unit}"
    return f"{size >> 10}K"


def _attrs(flags: int, size: int) -> str:
    return (f"{'USR' if flags & pt.PTE_USER else '   '} "
            f"{'RW' if flags & pt.PTE_RW else 'ro'} "
            f"{'PWT' if flags & pt.PTE_PWT else '   '} "
            f"{'PCD' if flags & pt.PTE_PCD else '   '} "
            f"{'PSE' if size > 4096 else '   '} "
            f"{'GLB' if flags & pt.PTE_GLOBAL else '   '} "
            f"{'NX' if flags & pt.PTE_NX else 'x '} {LEVEL_OF_SIZE[size]}")


ATTR_MASK = pt.PTE_RW | pt.PTE_USER | pt.PTE_PWT | pt.PTE_PCD | pt.PTE_GLOBAL | pt.PTE_NX


def ptdump_ranges(read_u64: ReadU64, cr3: int, start: int,
                  end: int) -> list[tuple[int, int, int, int]]:
    """Mapped ranges as (start, end, flags, leaf size): runs of leaves of one size with
    the same attributes and consecutive virtual addresses."""
    out: list[tuple[int, int, int, int]] = []
    for va, _pa, size, flags in pt.iter_mappings(read_u64, cr3, start, end):
        f = flags & ATTR_MASK
        if out and out[-1][1] == va and out[-1][2] == f and out[-1][3] == size:
            out[-1] = (out[-1][0], va + size, f, size)
        else:
            out.append((va, va + size, f, size))
    return out


def ptdump(read_u64: ReadU64, cr3: int, start: int = 0xFFFF800000000000,
           end: int = 1 << 64) -> str:
    """The kernel's ``/sys/kernel/debug/page_tables/kernel`` view of [start, end).

    ``start`` is a 64-bit address and ``end`` (exclusive) above it, at most 2**64;
    anything else is :class:`emu.core.errors.BadArgument` (never cut to 64 bits)."""
    pt.check_address(start, "ptdump start")
    if end != 1 << 64:
        pt.check_address(end, "ptdump end")
    if start >= end:
        raise BadArgument(f"ptdump range {start:#x}-{end:#x} is empty (END must be above START)")
    lines = []
    markers = iter(m for m in MARKERS if start <= m[0] < end)
    nxt = next(markers, None)
    for s, e, flags, size in ptdump_ranges(read_u64, cr3, start, end):
        while nxt is not None and nxt[0] <= s:
            lines.append(f"---[ {nxt[1]} ]---")
            nxt = next(markers, None)
        lines.append(f"0x{s:016x}-0x{e:016x} {_human(e - s):>12}     {_attrs(flags, size)}")
    return "\n".join(lines) + "\n"


def format_pt(read_u64: ReadU64, cr3: int, va: int) -> str:
    """Every level of the walk for ``va``, with each entry's bits (debugger ``pt``).

    A value over 64 bits is :class:`emu.core.errors.BadArgument`; a non-canonical
    address is said to be one (it has no indices: no walk ever starts)."""
    pt.check_address(va)
    if not pt.is_canonical(va):
        return f"pt 0x{va:016x}: {pt.NON_CANONICAL}\n"
    lines = [f"pt 0x{va:016x}: PGD index {pt.split_va(va)[0]}, PUD {pt.split_va(va)[1]}, "
             f"PMD {pt.split_va(va)[2]}, PTE {pt.split_va(va)[3]}, offset {va & 0xFFF:#x}"]
    for step in pt.walk_steps(read_u64, cr3, va):
        e = step.entry
        bits = [name for name, bit in (("P", pt.PTE_PRESENT), ("RW", pt.PTE_RW),
                                       ("US", pt.PTE_USER), ("A", pt.PTE_ACCESSED),
                                       ("D", pt.PTE_DIRTY), ("PS", pt.PTE_PSE),
                                       ("G", pt.PTE_GLOBAL), ("NX", pt.PTE_NX)) if e & bit]
        target = e & 0x000FFFFFFFFFF000
        lines.append(f"  {step.level}[{step.index:3d}] @0x{step.entry_pa:x} = 0x{e:016x} "
                     f"{' '.join(bits) or 'not present'}"
                     + (f" -> 0x{target:x}" if e & pt.PTE_PRESENT else ""))
    lines.append(f"  {pt.format_walk(pt.walk_steps(read_u64, cr3, va))}")
    return "\n".join(lines) + "\n"
