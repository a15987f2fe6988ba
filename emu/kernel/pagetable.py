"""x86-64 4-level page-table walker over guest physical memory.

A pure function of the page tables: everything here reads guest memory through
a ``read_u64(pa) -> int`` callable and never writes it (the Accessed and Dirty
bits are not set, unlike a real CPU). Levels use Linux's names for 4-level
paging (the P4D level is folded into the PGD)::

    63      48 47    39 38    30 29    21 20    12 11         0
    +---------+--------+--------+--------+--------+------------+
    | sign ext|  PGD   |  PUD   |  PMD   |  PTE   |   offset   |
    +---------+--------+--------+--------+--------+------------+
                (PML4)   (PDPT)   (PD)     (PT)
                         1 GiB    2 MiB    4 KiB   leaf when PSE / at PTE

An entry holds the next table's (or the page's) physical address in bits
``maxphyaddr-1 .. 12`` and flags in the rest (``PTE_*`` below).

>>> from collections import defaultdict
>>> mem = defaultdict(int, {0x1000: 0x2003, 0x2000: 0x3003, 0x3000: 0x4003, 0x4000: 0x5003})
>>> hex(walk(mem.__getitem__, 0x1000, 0x123).pa)
'0x5123'
>>> format_walk(walk_steps(mem.__getitem__, 0x1000, 0x123))
'PGD 2003 P4D 2003 PUD 3003 PMD 4003 PTE 5003'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from emu.core.errors import BadArgument, PageFault

#: Reads one little-endian u64 of guest physical memory at ``pa``.
ReadU64 = Callable[[int], int]

PTE_PRESENT = 1 << 0
PTE_RW = 1 << 1
PTE_USER = 1 << 2
PTE_PWT = 1 << 3
PTE_PCD = 1 << 4
PTE_ACCESSED = 1 << 5
PTE_DIRTY = 1 << 6
PTE_PSE = 1 << 7
PTE_GLOBAL = 1 << 8
PTE_NX = 1 << 63

#: Level names, top to bottom (Linux's names on 4-level x86-64).
LEVELS = ("PGD", "PUD", "PMD", "PTE")
#: Shift of each level's 9-bit index in a virtual address.
LEVEL_SHIFTS = (39, 30, 21, 12)

PAGE_SIZE_4K = 1 << 12
PAGE_SIZE_2M = 1 << 21
PAGE_SIZE_1G = 1 << 30
PTRS_PER_TABLE = 512
ACCESSES = ("read", "write", "exec")

_U64 = (1 << 64) - 1
_VA_BITS = 48
_INDEX_MASK = PTRS_PER_TABLE - 1
# Flag bits of an entry: 11..0 and 63..52 (NX, protection keys, software bits).
_FLAG_BITS = 0xFFF | (0xFFF << 52)
# Levels at which PSE makes the entry a leaf, and the page size it maps.
_LARGE_SIZES = {"PUD": PAGE_SIZE_1G, "PMD": PAGE_SIZE_2M}


@dataclass(frozen=True)
class WalkStep:
    """One entry read during a walk.

    ``table_pa`` is the physical address of the table, ``index`` the 9-bit
    index into it, ``entry_pa`` the address of the entry (``table_pa +
    8 * index``) and ``entry`` its raw 64-bit value.
    """

    level: str
    table_pa: int
    index: int
    entry_pa: int
    entry: int


@dataclass(frozen=True)
class Translation:
    """A successful translation of ``va`` to ``pa``.

    ``writable`` and ``user`` are the effective rights (RW / US set at every
    level), ``nx`` is set when any level has NX (and NX is enabled),
    ``global_`` is the G bit of the leaf entry.
    """

    va: int
    pa: int
    page_size: int
    writable: bool
    user: bool
    nx: bool
    global_: bool
    steps: tuple[WalkStep, ...]

    @property
    def flags(self) -> int:
        """Effective flags of the leaf (see :func:`iter_mappings`)."""
        flags = _effective_flags([s.entry for s in self.steps])
        return flags if self.nx else flags & ~PTE_NX


def addr_mask(maxphyaddr: int = 52) -> int:
    """Mask of the physical-address bits of an entry (bits maxphyaddr-1..12).

    >>> hex(addr_mask(40))
    '0xfffffff000'
    """
    if not 13 <= maxphyaddr <= 52:
        raise ValueError(f"addr_mask: maxphyaddr {maxphyaddr} not in 13..52")
    return ((1 << maxphyaddr) - 1) & ~0xFFF


def split_va(va: int) -> tuple[int, int, int, int, int]:
    """Split ``va`` into (PGD, PUD, PMD, PTE) indices and the page offset.

    >>> split_va(0xffff888000001234)
    (273, 0, 0, 1, 564)
    """
    pgd, pud, pmd, pte = ((va >> s) & _INDEX_MASK for s in LEVEL_SHIFTS)
    return pgd, pud, pmd, pte, va & 0xFFF


def is_canonical(va: int) -> bool:
    """True when ``va`` is a 64-bit address whose bits 63..47 are all equal.

    >>> is_canonical(0x00007fffffffffff), is_canonical(0x0000800000000000)
    (True, False)
    """
    if not 0 <= va <= _U64:
        return False
    top = va >> (_VA_BITS - 1)
    return top == 0 or top == (1 << (64 - _VA_BITS + 1)) - 1


def check_address(addr: object, what: str = "address") -> int:
    """``addr`` as a 64-bit address (an int in 0 .. 2**64-1), or :class:`BadArgument`.

    The one check every front end's address goes through (the REPL, gdb's
    ``monitor``, ``kmemu info pagetable``, :meth:`Machine.pt`, ``identify``):
    nothing is silently cut to 64 bits.

    >>> check_address(1 << 64)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    emu.core.errors.BadArgument: address 0x10000000000000000 is not a 64-bit value (0 .. 0xff...)
    """
    if isinstance(addr, bool) or not isinstance(addr, int):
        raise BadArgument(f"an address must be an int, not {type(addr).__name__}")
    if not 0 <= addr <= _U64:
        shown = f"{addr:#x}" if addr >= 0 else f"-{-addr:#x}"
        raise BadArgument(f"{what} {shown} is not a 64-bit value (0 .. {_U64:#x})")
    return addr


#: What to say about an address no page table can map.
NON_CANONICAL = ("non-canonical address (bits 63..47 are not all equal): no page table can "
                 "map it, an access raises #GP")


def canonical(va: int) -> int:
    """Sign-extend bit 47 of ``va`` into bits 63..48 (a 64-bit unsigned result).

    >>> hex(canonical(0x0000888000000000))
    '0xffff888000000000'
    """
    va &= (1 << _VA_BITS) - 1
    if va >> (_VA_BITS - 1):
        va |= _U64 & ~((1 << _VA_BITS) - 1)
    return va


def _check_access(access: str) -> None:
    if access not in ACCESSES:
        raise BadArgument(f"access must be one of {', '.join(ACCESSES)}; got {access!r}")


def _read_step(read_u64: ReadU64, level: str, table_pa: int, index: int) -> WalkStep:
    entry_pa = table_pa + 8 * index
    return WalkStep(level, table_pa, index, entry_pa, read_u64(entry_pa) & _U64)


def _descend(read_u64: ReadU64, cr3: int, va: int, access: str, nxe: bool,
             maxphyaddr: int) -> list[tuple[str, int, int, int]]:
    """The levels a walk of ``va`` reads, top down to the leaf, as (level, table's
    physical address, index, entry); the faults a present-bit or reserved-bit check
    raises on the way (and a non-canonical address), before any permission check."""
    _check_access(access)
    if not is_canonical(va):
        raise PageFault(va, "VA", None, "non-canonical address", access)
    mask = addr_mask(maxphyaddr)
    table = cr3 & mask
    path = []
    for level, shift in zip(LEVELS, LEVEL_SHIFTS, strict=True):
        index = (va >> shift) & _INDEX_MASK
        entry = read_u64(table + 8 * index) & _U64
        path.append((level, table, index, entry))
        if not entry & PTE_PRESENT:
            raise PageFault(va, level, entry, "not present", access)
        if _reserved(level, entry, maxphyaddr, nxe):
            raise PageFault(va, level, entry, "reserved bit set", access)
        if _is_leaf(level, entry):
            return path
        table = entry & mask
    return path


def _check_permissions(va: int, entries: Sequence[tuple[str, int]], access: str, user: bool,
                       nxe: bool) -> None:
    """The permission faults of a walk whose (level, entry) pairs, top down, were all
    present: ``"no user access"``, ``"not writable"``, ``"not executable"`` in that
    order, each at the first level that denies it."""
    denied = None
    if user:
        denied = next(((lv, e, "no user access") for lv, e in entries if not e & PTE_USER), None)
    if denied is None and access == "write":
        denied = next(((lv, e, "not writable") for lv, e in entries if not e & PTE_RW), None)
    if denied is None and access == "exec" and nxe:
        denied = next(((lv, e, "not executable") for lv, e in entries if e & PTE_NX), None)
    if denied is not None:
        raise PageFault(va, denied[0], denied[1], denied[2], access)


def _leaf_pa(va: int, level: str, entry: int, maxphyaddr: int) -> tuple[int, int]:
    """The physical address ``va`` maps to through leaf ``entry`` at ``level``, and the
    page size."""
    size = _LARGE_SIZES.get(level, PAGE_SIZE_4K)
    return (entry & addr_mask(maxphyaddr) & ~(size - 1)) | (va & (size - 1)), size


def _is_leaf(level: str, entry: int) -> bool:
    return level == "PTE" or (level in _LARGE_SIZES and bool(entry & PTE_PSE))


def _reserved(level: str, entry: int, maxphyaddr: int, nxe: bool) -> bool:
    """Light reserved-bit check of a present entry (what a real CPU faults on)."""
    if entry & (((1 << 52) - 1) & ~((1 << maxphyaddr) - 1)):
        return True  # physical-address bits above MAXPHYADDR
    if entry & PTE_NX and not nxe:
        return True
    if level == "PGD" and entry & PTE_PSE:
        return True
    if level in _LARGE_SIZES and entry & PTE_PSE:
        # A large page's frame must be aligned; bit 12 is PAT, 13.. must be 0.
        return bool(entry & (_LARGE_SIZES[level] - 1) & ~0x1FFF)
    return False


def _effective_flags(entries: Sequence[int]) -> int:
    """Leaf flags with RW/US cleared unless set at every level, NX if at any."""
    flags = entries[-1] & _FLAG_BITS
    for entry in entries:
        flags &= ~(PTE_RW | PTE_USER) | entry
        flags |= entry & PTE_NX
    return flags


def walk(
    read_u64: ReadU64,
    cr3: int,
    va: int,
    access: str = "read",
    user: bool = False,
    nxe: bool = True,
    maxphyaddr: int = 52,
) -> Translation:
    """Translate ``va`` through the tables rooted at ``cr3`` like the MMU does.

    ``cr3`` is the raw register (PCID / PWT / PCD bits and bit 63 are
    ignored); ``access`` is ``"read"``, ``"write"`` or ``"exec"``; ``user``
    means CPL 3; ``nxe`` is EFER.NXE. CR0.WP is assumed set (a write needs RW
    at every level even in supervisor mode); SMEP/SMAP/protection keys are not
    modelled. Raises :class:`PageFault` naming the level where the walk
    stopped: ``"not present"``, ``"reserved bit set"``, then the permission
    faults ``"no user access"``, ``"not writable"``, ``"not executable"``
    (reported at the first level, top down, that denies the access), or
    ``"non-canonical address"`` at level ``"VA"``.

    >>> from collections import defaultdict
    >>> mem = defaultdict(int, {0x1000: 0x2003, 0x2000: 0x40000083})  # PUD: 1 GiB page
    >>> t = walk(mem.__getitem__, 0x1000, 0x12345678)
    >>> hex(t.pa), t.page_size == PAGE_SIZE_1G, [s.level for s in t.steps]
    ('0x52345678', True, ['PGD', 'PUD'])
    >>> walk(mem.__getitem__, 0x1000, 1 << 39, access="write")
    Traceback (most recent call last):
    emu.core.errors.PageFault: cannot write 0x0000008000000000: not present at PGD (entry 0x...)
    """
    steps = [WalkStep(level, table, index, table + 8 * index, entry)
             for level, table, index, entry in _descend(read_u64, cr3, va, access, nxe,
                                                        maxphyaddr)]
    _check_permissions(va, [(s.level, s.entry) for s in steps], access, user, nxe)
    leaf = steps[-1]
    pa, size = _leaf_pa(va, leaf.level, leaf.entry, maxphyaddr)
    return Translation(
        va=va,
        pa=pa,
        page_size=size,
        writable=all(s.entry & PTE_RW for s in steps),
        user=all(s.entry & PTE_USER for s in steps),
        nx=nxe and any(s.entry & PTE_NX for s in steps),
        global_=bool(leaf.entry & PTE_GLOBAL),
        steps=tuple(steps),
    )


def walk_steps(read_u64: ReadU64, cr3: int, va: int, maxphyaddr: int = 52) -> list[WalkStep]:
    """Every entry a walk of ``va`` reads, for a debugger's ``pt ADDR``.

    Stops after a non-present entry or a large-page leaf and never raises
    for the tables' content (no permission or reserved-bit checks); a
    non-canonical ``va`` gives ``[]``.

    >>> from collections import defaultdict
    >>> mem = defaultdict(int, {0x1000: 0x2003})
    >>> [(s.level, hex(s.entry_pa), hex(s.entry)) for s in walk_steps(mem.__getitem__, 0x1000, 0)]
    [('PGD', '0x1000', '0x2003'), ('PUD', '0x2000', '0x0')]
    """
    if not is_canonical(va):
        return []
    mask = addr_mask(maxphyaddr)
    table = cr3 & mask
    steps: list[WalkStep] = []
    for level, shift in zip(LEVELS, LEVEL_SHIFTS, strict=True):
        step = _read_step(read_u64, level, table, (va >> shift) & _INDEX_MASK)
        steps.append(step)
        if not step.entry & PTE_PRESENT or _is_leaf(level, step.entry):
            break
        table = step.entry & mask
    return steps


def translate_range(
    read_u64: ReadU64,
    cr3: int,
    va: int,
    length: int,
    access: str = "read",
    user: bool = False,
    nxe: bool = True,
    maxphyaddr: int = 52,
) -> list[tuple[int, int, int]]:
    """Translate ``[va, va + length)`` into physically contiguous chunks.

    Returns ``(va, pa, n)`` triples in address order; pages that are adjacent
    in both virtual and physical memory are merged into one chunk. Raises
    :class:`PageFault` (see :func:`walk`) for the first page that does not
    translate.

    >>> from collections import defaultdict
    >>> mem = defaultdict(int, {0x1000: 0x2003, 0x2000: 0x3003, 0x3000: 0x4003,
    ...                         0x4000: 0x8003, 0x4008: 0x9003, 0x4010: 0x7003})
    >>> [tuple(map(hex, c)) for c in translate_range(mem.__getitem__, 0x1000, 0xff0, 0x1020)]
    [('0xff0', '0x8ff0', '0x1010'), ('0x2000', '0x7000', '0x10')]
    """
    if length < 0:
        raise ValueError(f"translate_range: negative length {length}")
    chunks: list[tuple[int, int, int]] = []
    end = va + length
    pte_table: tuple[int, int] | None = None  # (va >> 21, PTE page) of the last 4 KiB page
    while va < end:
        if pte_table is not None and va >> 21 == pte_table[0]:
            pa, size = _next_pte(read_u64, pte_table[1], va, access, user, nxe,
                                 maxphyaddr), PAGE_SIZE_4K
        else:
            pa, size, pt = _translate(read_u64, cr3, va, access, user, nxe, maxphyaddr)
            pte_table = (va >> 21, pt) if pt is not None else None
        n = min(end - va, size - (va & (size - 1)))
        if chunks:
            cva, cpa, cn = chunks[-1]
            if cva + cn == va and cpa + cn == pa:
                chunks[-1] = (cva, cpa, cn + n)
                va += n
                continue
        chunks.append((va, pa, n))
        va += n
    return chunks


def walk_pa(read_u64: ReadU64, cr3: int, va: int, access: str = "read", user: bool = False,
            nxe: bool = True, maxphyaddr: int = 52) -> int:
    """``walk(...).pa``, with walk's faults, without building the walk's record (the
    host's reads of guest memory translate every page they touch)."""
    return _translate(read_u64, cr3, va, access, user, nxe, maxphyaddr)[0]


def _translate(read_u64: ReadU64, cr3: int, va: int, access: str, user: bool, nxe: bool,
               maxphyaddr: int) -> tuple[int, int, int | None]:
    """:func:`walk`'s physical address and page size for ``va``, and the PTE page's
    address when the leaf is a PTE (else None); the same faults in the same order, but
    no WalkStep or Translation is made: translate_range and read_virt call it for every
    page, and building those records was most of a walk's cost."""
    path = _descend(read_u64, cr3, va, access, nxe, maxphyaddr)
    _check_permissions(va, [(level, entry) for level, _, _, entry in path], access, user, nxe)
    level, table, _, entry = path[-1]
    pa, size = _leaf_pa(va, level, entry, maxphyaddr)
    return pa, size, table if level == "PTE" else None


def _next_pte(read_u64: ReadU64, table_pa: int, va: int, access: str, user: bool,
              nxe: bool, maxphyaddr: int) -> int:
    """What :func:`walk` gives for ``va`` (its physical address) when a walk with the
    same access of another 4 KiB page under the same PMD entry succeeded: the PGD, PUD
    and PMD entries are the same ones and allowed the access, so only the PTE is read
    and checked, with walk's faults in walk's order (translate_range's pages after the
    first of each 2 MiB)."""
    entry = read_u64(table_pa + 8 * ((va >> 12) & _INDEX_MASK)) & _U64
    if not entry & PTE_PRESENT:
        raise PageFault(va, "PTE", entry, "not present", access)
    if _reserved("PTE", entry, maxphyaddr, nxe):
        raise PageFault(va, "PTE", entry, "reserved bit set", access)
    _check_permissions(va, [("PTE", entry)], access, user, nxe)
    return _leaf_pa(va, "PTE", entry, maxphyaddr)[0]


def iter_mappings(
    read_u64: ReadU64,
    cr3: int,
    start: int = 0,
    end: int = 1 << 64,
    maxphyaddr: int = 52,
) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(va, pa, size, flags)`` for each present leaf, in address order.

    Leaves that overlap ``[start, end)`` are yielded whole (``va`` is the
    leaf's first address, ``size`` 4 KiB, 2 MiB or 1 GiB). ``flags`` are the
    leaf entry's flag bits (11..0 and 63..52) with PTE_RW / PTE_USER cleared
    unless every level sets them and PTE_NX set if any level does. Entries
    that :func:`walk` rejects as reserved are skipped, so each yielded leaf
    translates with a supervisor read. Only entries inside the range are read,
    and non-present entries are not descended into.

    >>> from collections import defaultdict
    >>> mem = defaultdict(int, {0x1000: 0x2003, 0x2000: 0x3003, 0x3000: 0x400083,
    ...                         0x3008: 0x5003, 0x5000: 0x6003})
    >>> [tuple(map(hex, m)) for m in iter_mappings(mem.__getitem__, 0x1000)]
    [('0x0', '0x400000', '0x200000', '0x83'), ('0x200000', '0x6000', '0x1000', '0x3')]
    """
    mask = addr_mask(maxphyaddr)
    start, end = max(start, 0), min(end, 1 << 64)
    if start >= end:
        return
    yield from _iter_table(read_u64, cr3 & mask, 0, 0, (), start, end, mask, maxphyaddr)


def _iter_table(
    read_u64: ReadU64,
    table: int,
    depth: int,
    base: int,
    parents: tuple[int, ...],
    start: int,
    end: int,
    mask: int,
    maxphyaddr: int,
) -> Iterator[tuple[int, int, int, int]]:
    level, shift = LEVELS[depth], LEVEL_SHIFTS[depth]
    size = 1 << shift
    if depth == 0:
        # The PGD's two halves are not contiguous in canonical order.
        indices: Iterator[int] | range = (
            i for i in range(PTRS_PER_TABLE)
            if canonical(i << shift) < end and canonical(i << shift) + size > start
        )
    else:
        lo = max(0, start - base) >> shift
        hi = min(PTRS_PER_TABLE, ((end - 1 - base) >> shift) + 1)
        indices = range(lo, hi)
    for index in indices:
        va = canonical(index << shift) if depth == 0 else base + (index << shift)
        entry = read_u64(table + 8 * index) & _U64
        if not entry & PTE_PRESENT or _reserved(level, entry, maxphyaddr, True):
            continue
        entries = (*parents, entry)
        if _is_leaf(level, entry):
            pa = entry & mask & ~(size - 1)
            yield va, pa, size, _effective_flags(entries)
        else:
            yield from _iter_table(
                read_u64, entry & mask, depth + 1, va, entries, start, end, mask, maxphyaddr
            )


def format_walk(steps: Sequence[WalkStep]) -> str:
    """Format a walk the way a Linux x86-64 oops prints it (``dump_pagetable``).

    Entry values are lowercase hex without ``0x``; on 4-level paging the P4D
    is the PGD entry again. Stops after a non-present or leaf entry.

    >>> format_walk([WalkStep("PGD", 0x1000, 0, 0x1000, 0x1003067),
    ...              WalkStep("PUD", 0x1003000, 0, 0x1003000, 0x1004067),
    ...              WalkStep("PMD", 0x1004000, 0, 0x1004000, 0)])
    'PGD 1003067 P4D 1003067 PUD 1004067 PMD 0'
    """
    parts: list[str] = []
    for step in steps:
        parts.append(f"{step.level} {step.entry:x}")
        present = bool(step.entry & PTE_PRESENT)
        if step.level == "PGD" and present:
            parts.append(f"P4D {step.entry:x}")
        if not present or _is_leaf(step.level, step.entry):
            break
    return " ".join(parts)


class TranslationCache:
    """A TLB: caches successful page translations of one address space.

    Holds ``{va page: (pa page, page size, effective flags)}``; like a TLB it
    is not coherent with the page tables, so call :meth:`invalidate` after
    changing them (or assign :attr:`cr3` and invalidate). Faults are never
    cached; a cached page whose flags deny an access is walked again so the
    :class:`PageFault` names the right level.

    >>> from collections import defaultdict
    >>> mem = defaultdict(int, {0x1000: 0x2003, 0x2000: 0x3003, 0x3000: 0x4003, 0x4000: 0x5003})
    >>> tlb = TranslationCache(mem.__getitem__, 0x1000)
    >>> hex(tlb.translate(0x10)), hex(tlb.translate(0x20, "write")), (tlb.hits, tlb.misses)
    ('0x5010', '0x5020', (1, 1))
    """

    def __init__(
        self, read_u64: ReadU64, cr3: int, *, user: bool = False, nxe: bool = True,
        maxphyaddr: int = 52,
    ) -> None:
        self.read_u64, self.cr3 = read_u64, cr3
        self.user, self.nxe, self.maxphyaddr = user, nxe, maxphyaddr
        self._pages: dict[int, tuple[int, int, int]] = {}
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._pages)

    def _lookup(self, va: int) -> tuple[int, int, int] | None:
        for size in (PAGE_SIZE_4K, PAGE_SIZE_2M, PAGE_SIZE_1G):
            hit = self._pages.get(va & ~(size - 1))
            if hit is not None and hit[1] == size:
                return hit
        return None

    def translate(self, va: int, access: str = "read", user: bool | None = None) -> int:
        """Physical address of ``va`` (``user`` defaults to the cache's mode)."""
        _check_access(access)
        user = self.user if user is None else user
        hit = self._lookup(va)
        if hit is not None:
            pa_page, size, flags = hit
            if not (
                (user and not flags & PTE_USER)
                or (access == "write" and not flags & PTE_RW)
                or (access == "exec" and flags & PTE_NX)
            ):
                self.hits += 1
                return pa_page | (va & (size - 1))
        self.misses += 1
        t = walk(self.read_u64, self.cr3, va, access, user, self.nxe, self.maxphyaddr)
        offset = va & (t.page_size - 1)
        self._pages[va - offset] = (t.pa - offset, t.page_size, t.flags)
        return t.pa

    def invalidate(self, va: int | None = None) -> None:
        """Drop every cached page, or only the one holding ``va`` (``invlpg``)."""
        if va is None:
            self._pages.clear()
            return
        for size in (PAGE_SIZE_4K, PAGE_SIZE_2M, PAGE_SIZE_1G):
            hit = self._pages.get(va & ~(size - 1))
            if hit is not None and hit[1] == size:
                del self._pages[va & ~(size - 1)]
