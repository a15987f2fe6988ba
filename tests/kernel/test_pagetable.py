"""Tests of emu.kernel.pagetable over page tables built in a fake physical memory."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.core.errors import KmemuError, PageFault
from emu.kernel import pagetable
from emu.kernel.pagetable import (
    LEVELS,
    PAGE_SIZE_1G,
    PAGE_SIZE_2M,
    PAGE_SIZE_4K,
    PTE_ACCESSED,
    PTE_DIRTY,
    PTE_GLOBAL,
    PTE_NX,
    PTE_PCD,
    PTE_PRESENT,
    PTE_PSE,
    PTE_PWT,
    PTE_RW,
    PTE_USER,
    TranslationCache,
    WalkStep,
    canonical,
    format_walk,
    is_canonical,
    iter_mappings,
    split_va,
    translate_range,
    walk,
    walk_pa,
    walk_steps,
)

P, RW, US = PTE_PRESENT, PTE_RW, PTE_USER
TABLE_FLAGS = P | RW | US
LEAF_LEVEL = {PAGE_SIZE_4K: "PTE", PAGE_SIZE_2M: "PMD", PAGE_SIZE_1G: "PUD"}
SHIFT = dict(zip(LEVELS, (39, 30, 21, 12), strict=True))

KERNEL_VA = 0xFFFF888000000000  # Linux's direct map base
USER_VA = 0x0000000000400000


class FakeMemory:
    """Dict-backed guest physical memory with a page-table builder.

    Tables are allocated from ``table_base`` upward; ``map`` creates missing
    intermediate tables with ``table_flags`` and writes the leaf.
    """

    def __init__(self, table_base: int = 0x100_0000) -> None:
        self.mem: dict[int, int] = {}
        self.next_table = table_base
        self.reads = 0
        self.cr3 = self.alloc_table()

    def read_u64(self, pa: int) -> int:
        assert pa % 8 == 0, f"unaligned read {pa:#x}"
        self.reads += 1
        return self.mem.get(pa, 0)

    def alloc_table(self) -> int:
        pa = self.next_table
        self.next_table += PAGE_SIZE_4K
        return pa

    def entry_pa(self, va: int, level: str) -> int:
        """Address of ``va``'s entry at ``level`` (the tables above must exist)."""
        table = self.cr3
        for lvl in LEVELS:
            epa = table + 8 * ((va >> SHIFT[lvl]) & 511)
            if lvl == level:
                return epa
            table = self.mem[epa] & 0x000F_FFFF_FFFF_F000
        raise AssertionError(level)

    def get(self, va: int, level: str) -> int:
        return self.mem.get(self.entry_pa(va, level), 0)

    def set(self, va: int, level: str, value: int) -> None:
        self.mem[self.entry_pa(va, level)] = value

    def update(self, va: int, level: str, *, set_: int = 0, clear: int = 0) -> None:
        self.set(va, level, (self.get(va, level) | set_) & ~clear)

    def map(
        self,
        va: int,
        pa: int,
        size: int = PAGE_SIZE_4K,
        flags: int = P | RW,
        table_flags: int = TABLE_FLAGS,
    ) -> None:
        assert va % size == 0 and pa % size == 0
        leaf = LEAF_LEVEL[size]
        table = self.cr3
        for lvl in LEVELS:
            epa = table + 8 * ((va >> SHIFT[lvl]) & 511)
            if lvl == leaf:
                assert not self.mem.get(epa, 0) & P, f"{va:#x} already mapped at {lvl}"
                self.mem[epa] = pa | flags | (PTE_PSE if size > PAGE_SIZE_4K else 0)
                return
            entry = self.mem.get(epa, 0)
            if not entry & P:
                entry = self.alloc_table() | table_flags
                self.mem[epa] = entry
            assert not (lvl != "PGD" and entry & PTE_PSE), "would descend through a leaf"
            table = entry & 0x000F_FFFF_FFFF_F000


@pytest.fixture
def fm() -> FakeMemory:
    return FakeMemory()


def fault(fm: FakeMemory, va: int, **kw: object) -> PageFault:
    with pytest.raises(PageFault) as info:
        walk(fm.read_u64, fm.cr3, va, **kw)  # type: ignore[arg-type]
    return info.value


# ---------------------------------------------------------------- address helpers


def test_constants() -> None:
    assert (PTE_PRESENT, PTE_RW, PTE_USER, PTE_PWT, PTE_PCD) == (1, 2, 4, 8, 16)
    assert (PTE_ACCESSED, PTE_DIRTY, PTE_PSE, PTE_GLOBAL, PTE_NX) == (
        0x20, 0x40, 0x80, 0x100, 1 << 63)
    assert LEVELS == ("PGD", "PUD", "PMD", "PTE")


@pytest.mark.parametrize(
    ("va", "parts"),
    [
        (0, (0, 0, 0, 0, 0)),
        (0x0000_7FFF_FFFF_FFFF, (255, 511, 511, 511, 0xFFF)),
        (0xFFFF_8880_0000_1234, (273, 0, 0, 1, 0x234)),
        (0xFFFF_FFFF_8000_0000, (511, 510, 0, 0, 0)),
        ((3 << 39) | (5 << 30) | (7 << 21) | (9 << 12) | 11, (3, 5, 7, 9, 11)),
    ],
)
def test_split_va(va: int, parts: tuple[int, ...]) -> None:
    assert split_va(va) == parts


@pytest.mark.parametrize(
    ("va", "ok"),
    [
        (0, True),
        (0x0000_7FFF_FFFF_FFFF, True),
        (0x0000_8000_0000_0000, False),
        (0xFFFF_7FFF_FFFF_FFFF, False),
        (0xFFFF_8000_0000_0000, True),
        ((1 << 64) - 1, True),
        (1 << 64, False),
        (-1, False),
    ],
)
def test_is_canonical(va: int, ok: bool) -> None:
    assert is_canonical(va) is ok


def test_canonical() -> None:
    assert canonical(0x0000_8880_0000_0000) == KERNEL_VA
    assert canonical(0x1234) == 0x1234
    assert canonical(0x0000_7FFF_FFFF_F000) == 0x0000_7FFF_FFFF_F000
    assert canonical(0x1234_8000_0000_0000) == 0xFFFF_8000_0000_0000
    assert is_canonical(canonical(0xDEAD_BEEF_CAFE_F00D))


# ---------------------------------------------------------------- walk: success


def test_walk_4k(fm: FakeMemory) -> None:
    fm.map(KERNEL_VA + 0x5000, 0x7_3000, flags=P | RW | PTE_GLOBAL)
    t = walk(fm.read_u64, fm.cr3, KERNEL_VA + 0x5ABC)
    assert (t.va, t.pa, t.page_size) == (KERNEL_VA + 0x5ABC, 0x7_3ABC, PAGE_SIZE_4K)
    assert (t.writable, t.user, t.nx, t.global_) == (True, False, False, True)
    assert [s.level for s in t.steps] == list(LEVELS)
    assert [s.index for s in t.steps] == [273, 0, 0, 5]
    assert t.steps[0].table_pa == fm.cr3
    assert t.steps[0].entry_pa == fm.cr3 + 8 * 273
    for above, below in zip(t.steps, t.steps[1:], strict=False):
        assert below.table_pa == above.entry & ~0xFFF
        assert below.entry_pa == below.table_pa + 8 * below.index
    assert t.steps[-1].entry == 0x7_3000 | P | RW | PTE_GLOBAL


@pytest.mark.parametrize("offset", [0, 1, 0xFFF])
def test_walk_4k_offsets(fm: FakeMemory, offset: int) -> None:
    fm.map(USER_VA, 0x20_0000, flags=P | RW | US)
    assert walk(fm.read_u64, fm.cr3, USER_VA + offset).pa == 0x20_0000 + offset
    with pytest.raises(PageFault):
        walk(fm.read_u64, fm.cr3, USER_VA + PAGE_SIZE_4K + offset)


def test_walk_2m(fm: FakeMemory) -> None:
    fm.map(KERNEL_VA + PAGE_SIZE_2M, 0x4000_0000, PAGE_SIZE_2M, P | RW | PTE_NX)
    t = walk(fm.read_u64, fm.cr3, KERNEL_VA + PAGE_SIZE_2M + 0x1_2345)
    assert (t.pa, t.page_size) == (0x4001_2345, PAGE_SIZE_2M)
    assert [s.level for s in t.steps] == ["PGD", "PUD", "PMD"]
    assert t.nx and t.writable and not t.user
    last = walk(fm.read_u64, fm.cr3, KERNEL_VA + 2 * PAGE_SIZE_2M - 1)
    assert last.pa == 0x4000_0000 + PAGE_SIZE_2M - 1


def test_walk_1g(fm: FakeMemory) -> None:
    fm.map(KERNEL_VA, 0x1_4000_0000, PAGE_SIZE_1G, P | RW)
    t = walk(fm.read_u64, fm.cr3, KERNEL_VA + 0x2345_6789)
    assert (t.pa, t.page_size) == (0x1_6345_6789, PAGE_SIZE_1G)
    assert [s.level for s in t.steps] == ["PGD", "PUD"]


def test_large_page_pat_bit_is_not_address(fm: FakeMemory) -> None:
    # Bit 12 of a large-page entry is PAT, not part of the frame address.
    fm.map(USER_VA, 0x60_0000, PAGE_SIZE_2M, P | RW | (1 << 12))
    assert walk(fm.read_u64, fm.cr3, USER_VA + 0x10).pa == 0x60_0010


def test_cr3_low_bits_and_pcid_ignored(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x9000)
    for cr3 in (fm.cr3 | 0x018, fm.cr3 | 0xABC, fm.cr3 | (1 << 63) | 0x7):
        assert walk(fm.read_u64, cr3, USER_VA + 8).pa == 0x9008


def test_maxphyaddr_masks_entry_addresses(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0xF_0000_1000)  # 40-bit physical address
    assert walk(fm.read_u64, fm.cr3, USER_VA, maxphyaddr=40).pa == 0xF_0000_1000
    with pytest.raises(ValueError):
        walk(fm.read_u64, fm.cr3, USER_VA, maxphyaddr=64)


def test_walk_does_not_write_memory(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x9000, flags=P | RW | US)
    before = dict(fm.mem)
    walk(fm.read_u64, fm.cr3, USER_VA, "write", user=True)
    assert fm.mem == before


def test_bad_access_rejected(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x9000)
    with pytest.raises(ValueError):
        walk(fm.read_u64, fm.cr3, USER_VA, "execute")


# ---------------------------------------------------------------- walk: faults


@pytest.mark.parametrize("level", LEVELS)
def test_not_present_at_each_level(fm: FakeMemory, level: str) -> None:
    va = KERNEL_VA + 0x3000
    fm.map(va, 0x5000)
    stale = fm.get(va, level) & ~P  # a non-present entry keeps its other bits
    fm.set(va, level, stale)
    f = fault(fm, va + 0x10, access="write")
    assert (f.va, f.level, f.entry, f.reason, f.access) == (
        va + 0x10, level, stale, "not present", "write")
    assert isinstance(f, KmemuError)
    assert f"not present at {level}" in str(f)


def test_not_present_empty_tables(fm: FakeMemory) -> None:
    f = fault(fm, USER_VA)
    assert (f.level, f.entry, f.reason, f.access) == ("PGD", 0, "not present", "read")
    fm.map(USER_VA, 0x5000)
    f = fault(fm, USER_VA + PAGE_SIZE_4K)
    assert (f.level, f.entry) == ("PTE", 0)
    f = fault(fm, USER_VA + PAGE_SIZE_2M)
    assert (f.level, f.entry) == ("PMD", 0)
    f = fault(fm, USER_VA + PAGE_SIZE_1G)
    assert (f.level, f.entry) == ("PUD", 0)


@pytest.mark.parametrize(
    "va", [0x0000_8000_0000_0000, 0xFFFF_7FFF_FFFF_F000, 0x1234_5678_0000_0000, 1 << 64, -8])
def test_non_canonical(fm: FakeMemory, va: int) -> None:
    f = fault(fm, va, access="exec")
    assert (f.va, f.level, f.entry, f.reason, f.access) == (
        va, "VA", None, "non-canonical address", "exec")
    assert fm.reads == 0


@pytest.mark.parametrize("level", LEVELS)
def test_not_writable_at_each_level(fm: FakeMemory, level: str) -> None:
    fm.map(USER_VA, 0x5000, flags=P | RW | US)
    fm.update(USER_VA, level, clear=RW)
    assert walk(fm.read_u64, fm.cr3, USER_VA).pa == 0x5000  # reads still fine
    assert not walk(fm.read_u64, fm.cr3, USER_VA).writable
    for user in (False, True):  # CR0.WP: supervisor writes are checked too
        f = fault(fm, USER_VA, access="write", user=user)
        assert (f.level, f.reason, f.access) == (level, "not writable", "write")
        assert f.entry == fm.get(USER_VA, level)


@pytest.mark.parametrize("level", LEVELS)
def test_no_user_access_at_each_level(fm: FakeMemory, level: str) -> None:
    fm.map(USER_VA, 0x5000, flags=P | RW | US)
    assert walk(fm.read_u64, fm.cr3, USER_VA, user=True).user
    fm.update(USER_VA, level, clear=US)
    assert walk(fm.read_u64, fm.cr3, USER_VA).pa == 0x5000  # supervisor may read
    for access in ("read", "write", "exec"):
        f = fault(fm, USER_VA, access=access, user=True)
        assert (f.level, f.reason, f.access) == (level, "no user access", access)
        assert f.entry == fm.get(USER_VA, level)


@pytest.mark.parametrize("level", LEVELS)
def test_not_executable_at_each_level(fm: FakeMemory, level: str) -> None:
    fm.map(USER_VA, 0x5000, flags=P | US)
    assert walk(fm.read_u64, fm.cr3, USER_VA, "exec").pa == 0x5000
    fm.update(USER_VA, level, set_=PTE_NX)
    f = fault(fm, USER_VA, access="exec")
    assert (f.level, f.reason, f.entry) == (level, "not executable", fm.get(USER_VA, level))
    t = walk(fm.read_u64, fm.cr3, USER_VA)
    assert t.nx
    assert walk(fm.read_u64, fm.cr3, USER_VA, "read", user=True).pa == 0x5000


def test_nx_ignored_without_nxe(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x5000)
    t = walk(fm.read_u64, fm.cr3, USER_VA, "exec", nxe=False)
    assert not t.nx
    # With EFER.NXE clear, bit 63 is reserved.
    fm.update(USER_VA, "PMD", set_=PTE_NX)
    f = fault(fm, USER_VA, access="exec", nxe=False)
    assert (f.level, f.reason) == ("PMD", "reserved bit set")


@pytest.mark.parametrize("size", [PAGE_SIZE_4K, PAGE_SIZE_2M, PAGE_SIZE_1G])
def test_permission_fault_level_on_large_pages(fm: FakeMemory, size: int) -> None:
    fm.map(KERNEL_VA, 0, size, flags=P)
    f = fault(fm, KERNEL_VA + 8, access="write")
    assert (f.level, f.reason) == (LEAF_LEVEL[size], "not writable")
    f = fault(fm, KERNEL_VA + 8, user=True)  # tables are US, the leaf is not
    assert (f.level, f.reason) == (LEAF_LEVEL[size], "no user access")


def test_fault_order(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x5000, flags=P | PTE_NX)  # not user, not writable, not exec
    fm.update(USER_VA, "PUD", clear=RW)
    assert fault(fm, USER_VA, access="write", user=True).reason == "no user access"
    f = fault(fm, USER_VA, access="write")
    assert (f.level, f.reason) == ("PUD", "not writable")  # first level top-down
    # Presence is checked before permissions: a non-present PTE wins.
    fm.update(USER_VA, "PTE", clear=P)
    f = fault(fm, USER_VA, access="write", user=True)
    assert (f.level, f.reason) == ("PTE", "not present")


def test_reserved_bits(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x5000)
    fm.update(USER_VA, "PUD", set_=1 << 45)  # above MAXPHYADDR 40
    f = fault(fm, USER_VA, maxphyaddr=40)
    assert (f.level, f.reason) == ("PUD", "reserved bit set")
    fm.update(USER_VA, "PUD", clear=1 << 45)
    fm.update(USER_VA, "PGD", set_=PTE_PSE)  # no 512 GiB pages
    assert fault(fm, USER_VA).level == "PGD"


def test_misaligned_large_page_reserved(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x20_0000, PAGE_SIZE_2M)
    fm.update(USER_VA, "PMD", set_=0x2000)
    f = fault(fm, USER_VA)
    assert (f.level, f.reason) == ("PMD", "reserved bit set")


# ---------------------------------------------------------------- walk_steps / format_walk


def test_walk_steps_full_and_partial(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x5000)
    full = walk_steps(fm.read_u64, fm.cr3, USER_VA)
    assert full == list(walk(fm.read_u64, fm.cr3, USER_VA).steps)
    assert [s.level for s in walk_steps(fm.read_u64, fm.cr3, USER_VA + 0x1000)] == list(LEVELS)
    assert [s.level for s in walk_steps(fm.read_u64, fm.cr3, USER_VA + PAGE_SIZE_2M)] == [
        "PGD", "PUD", "PMD"]
    assert [s.level for s in walk_steps(fm.read_u64, fm.cr3, USER_VA + PAGE_SIZE_1G)] == [
        "PGD", "PUD"]
    steps = walk_steps(fm.read_u64, fm.cr3, KERNEL_VA)
    assert len(steps) == 1 and steps[0].entry == 0 and steps[0].index == 273


@pytest.mark.parametrize("size", [PAGE_SIZE_2M, PAGE_SIZE_1G])
def test_walk_steps_stop_at_large_page(fm: FakeMemory, size: int) -> None:
    fm.map(KERNEL_VA, 0, size)
    steps = walk_steps(fm.read_u64, fm.cr3, KERNEL_VA + 0x1234)
    assert steps[-1].level == LEAF_LEVEL[size]
    assert steps[-1].entry & PTE_PSE


def test_walk_steps_ignores_permissions_and_non_canonical(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x5000, flags=P | PTE_NX)
    fm.update(USER_VA, "PUD", clear=RW | US)
    assert len(walk_steps(fm.read_u64, fm.cr3, USER_VA)) == 4
    assert walk_steps(fm.read_u64, fm.cr3, 0x0000_8000_0000_0000) == []


def test_format_walk_linux_example() -> None:
    steps = [
        WalkStep("PGD", 0x1000, 0, 0x1000, 0x1003067),
        WalkStep("PUD", 0x1003000, 0, 0x1003000, 0x1004067),
        WalkStep("PMD", 0x1004000, 0, 0x1004000, 0),
    ]
    assert format_walk(steps) == "PGD 1003067 P4D 1003067 PUD 1004067 PMD 0"
    # Anything after the non-present entry is not printed.
    steps.append(WalkStep("PTE", 0, 0, 0, 0x1234063))
    assert format_walk(steps) == "PGD 1003067 P4D 1003067 PUD 1004067 PMD 0"


def test_format_walk_from_tables(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0xABC000, flags=P | RW | PTE_NX)
    pgd, pud, pmd = (fm.get(USER_VA, lvl) for lvl in ("PGD", "PUD", "PMD"))
    line = format_walk(walk_steps(fm.read_u64, fm.cr3, USER_VA))
    assert line == f"PGD {pgd:x} P4D {pgd:x} PUD {pud:x} PMD {pmd:x} PTE 8000000000abc003"
    assert format_walk(walk_steps(fm.read_u64, fm.cr3, KERNEL_VA)) == "PGD 0"
    assert format_walk(walk_steps(fm.read_u64, fm.cr3, USER_VA + PAGE_SIZE_1G)) == (
        f"PGD {pgd:x} P4D {pgd:x} PUD 0")
    assert format_walk([]) == ""


def test_format_walk_large_pages(fm: FakeMemory) -> None:
    fm.map(KERNEL_VA, 0x4000_0000, PAGE_SIZE_1G, P | RW)
    fm.map(USER_VA, 0x20_0000, PAGE_SIZE_2M, P | RW)
    assert format_walk(walk_steps(fm.read_u64, fm.cr3, KERNEL_VA)).endswith("PUD 40000083")
    assert format_walk(walk_steps(fm.read_u64, fm.cr3, USER_VA)).endswith("PMD 200083")
    # Given a too-long list, format_walk still stops at the leaf.
    steps = walk_steps(fm.read_u64, fm.cr3, USER_VA) + [WalkStep("PTE", 0, 0, 0, 1)]
    assert "PTE" not in format_walk(steps)


# ---------------------------------------------------------------- translate_range


def test_translate_range_crossing_pages(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x8000)
    fm.map(USER_VA + 0x1000, 0x3000)  # not contiguous with 0x8000
    chunks = translate_range(fm.read_u64, fm.cr3, USER_VA + 0xFF0, 0x20)
    assert chunks == [(USER_VA + 0xFF0, 0x8FF0, 0x10), (USER_VA + 0x1000, 0x3000, 0x10)]


def test_translate_range_merges_contiguous(fm: FakeMemory) -> None:
    for i, pfn in enumerate([0x10, 0x11, 0x12, 0x40, 0x41]):
        fm.map(USER_VA + i * PAGE_SIZE_4K, pfn * PAGE_SIZE_4K)
    chunks = translate_range(fm.read_u64, fm.cr3, USER_VA + 0x800, 5 * PAGE_SIZE_4K - 0x1000)
    assert chunks == [
        (USER_VA + 0x800, 0x10800, 3 * PAGE_SIZE_4K - 0x800),
        (USER_VA + 3 * PAGE_SIZE_4K, 0x40000, PAGE_SIZE_4K + 0x800),
    ]
    assert sum(n for _, _, n in chunks) == 5 * PAGE_SIZE_4K - 0x1000


def test_translate_range_large_pages(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x4000_0000, PAGE_SIZE_2M)
    fm.map(USER_VA + PAGE_SIZE_2M, 0x4020_0000, PAGE_SIZE_2M)  # contiguous
    fm.reads = 0
    chunks = translate_range(fm.read_u64, fm.cr3, USER_VA + 0x10, 2 * PAGE_SIZE_2M - 0x10)
    assert chunks == [(USER_VA + 0x10, 0x4000_0010, 2 * PAGE_SIZE_2M - 0x10)]
    assert fm.reads == 6  # one walk per large page, not per 4 KiB


def test_translate_range_edges(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x8000, flags=P)
    assert translate_range(fm.read_u64, fm.cr3, USER_VA, 0) == []
    assert translate_range(fm.read_u64, fm.cr3, USER_VA + 5, 1) == [(USER_VA + 5, 0x8005, 1)]
    with pytest.raises(ValueError):
        translate_range(fm.read_u64, fm.cr3, USER_VA, -1)
    with pytest.raises(PageFault) as info:
        translate_range(fm.read_u64, fm.cr3, USER_VA + 0xF00, 0x200)
    assert (info.value.va, info.value.level) == (USER_VA + 0x1000, "PTE")
    with pytest.raises(PageFault) as info:
        translate_range(fm.read_u64, fm.cr3, USER_VA, 0x10, "write")
    assert info.value.reason == "not writable"


def test_translate_range_reads_only_the_pte_after_the_first_page_of_2m(fm: FakeMemory) -> None:
    """Pages after the first of each 2 MiB read their PTE alone (the entries above are
    the ones the first page's walk read and allowed); a new 2 MiB walks again."""
    start = USER_VA + PAGE_SIZE_2M - 4 * PAGE_SIZE_4K
    for i in range(8):  # 4 pages before the 2 MiB boundary, 4 after
        fm.map(start + i * PAGE_SIZE_4K, (0x100 + i) * PAGE_SIZE_4K)
    fm.reads = 0
    chunks = translate_range(fm.read_u64, fm.cr3, start, 8 * PAGE_SIZE_4K)
    assert chunks == [(start, 0x100000, 8 * PAGE_SIZE_4K)]
    assert fm.reads == 2 * (4 + 3)


def _reference_range(fm: FakeMemory, va: int, length: int, access: str, user: bool,
                     nxe: bool, maxphyaddr: int) -> list[tuple[int, int, int]]:
    """translate_range's answer from one walk() per page (or walk's PageFault)."""
    out: list[tuple[int, int, int]] = []
    end = va + length
    while va < end:
        t = walk(fm.read_u64, fm.cr3, va, access, user, nxe, maxphyaddr)
        n = min(end - va, t.page_size - (va & (t.page_size - 1)))
        if out and out[-1][0] + out[-1][2] == va and out[-1][1] + out[-1][2] == t.pa:
            out[-1] = (out[-1][0], out[-1][1], out[-1][2] + n)
        else:
            out.append((va, t.pa, n))
        va += n
    return out


_PTE_FLAGS = st.sampled_from([P, P | RW, P | US, P | RW | US, P | RW | PTE_NX, 0, RW,
                              P | RW | (1 << 51), P | RW | US | PTE_NX])


@settings(max_examples=150)
@given(flags=st.lists(_PTE_FLAGS, min_size=6, max_size=6),
       frames=st.lists(st.integers(0x200, 0x206), min_size=6, max_size=6),
       large=st.booleans(), first=st.integers(0, 5), count=st.integers(1, 6),
       offset=st.integers(0, PAGE_SIZE_4K - 1),
       access=st.sampled_from(["read", "write", "exec"]), user=st.booleans(),
       nxe=st.booleans(), maxphyaddr=st.sampled_from([40, 52]),
       table_flags=st.sampled_from([P | RW | US, P | RW, P | US, P | RW | US | PTE_NX]))
def test_translate_range_is_a_walk_per_page(flags: list[int], frames: list[int], large: bool,
                                            first: int, count: int, offset: int, access: str,
                                            user: bool, nxe: bool, maxphyaddr: int,
                                            table_flags: int) -> None:
    """Same chunks, or the same fault (page, level, reason), as walking every page: six
    4 KiB pages of random PTE flags across a 2 MiB boundary, or a 2 MiB page after
    them, under tables of random flags; walk_pa of each page is walk's pa or fault."""
    fm = FakeMemory()
    base = USER_VA + PAGE_SIZE_2M - 3 * PAGE_SIZE_4K
    for i, (f, pfn) in enumerate(zip(flags, frames, strict=True)):
        if large and i >= 3:
            if i == 3:
                fm.map(base + 3 * PAGE_SIZE_4K, 0x4000_0000, PAGE_SIZE_2M, P | RW | US,
                       table_flags)
            continue
        fm.map(base + i * PAGE_SIZE_4K, pfn * PAGE_SIZE_4K, flags=P, table_flags=table_flags)
        fm.set(base + i * PAGE_SIZE_4K, "PTE", pfn * PAGE_SIZE_4K | f)
    va, length = base + first * PAGE_SIZE_4K + offset, count * PAGE_SIZE_4K
    args = (access, user, nxe, maxphyaddr)
    try:
        want: object = _reference_range(fm, va, length, *args)
    except PageFault as e:
        want = (e.va, e.level, e.entry, e.reason)
    try:
        got: object = translate_range(fm.read_u64, fm.cr3, va, length, *args)
    except PageFault as e:
        got = (e.va, e.level, e.entry, e.reason)
    assert got == want
    for page in range(base, base + 6 * PAGE_SIZE_4K, PAGE_SIZE_4K):
        try:
            want = walk(fm.read_u64, fm.cr3, page + offset, *args).pa
        except PageFault as e:
            want = (e.va, e.level, e.entry, e.reason)
        try:
            got = walk_pa(fm.read_u64, fm.cr3, page + offset, *args)
        except PageFault as e:
            got = (e.va, e.level, e.entry, e.reason)
        assert got == want


# ---------------------------------------------------------------- iter_mappings


def test_iter_mappings_order_and_flags(fm: FakeMemory) -> None:
    fm.map(KERNEL_VA + PAGE_SIZE_1G, 0x8000_0000, PAGE_SIZE_1G, P | RW | PTE_GLOBAL)
    fm.map(KERNEL_VA, 0x0, PAGE_SIZE_2M, P | RW | PTE_NX)
    fm.map(USER_VA + PAGE_SIZE_4K, 0x6000, flags=P | US)
    fm.map(USER_VA, 0x5000, flags=P | RW | US)
    fm.map(0xFFFF_FFFF_FFFF_F000, 0x7000)
    fm.update(KERNEL_VA, "PUD", clear=RW)  # the 2 MiB page becomes read-only
    got = list(iter_mappings(fm.read_u64, fm.cr3))
    assert got == [
        (USER_VA, 0x5000, PAGE_SIZE_4K, P | RW | US),
        (USER_VA + PAGE_SIZE_4K, 0x6000, PAGE_SIZE_4K, P | US),
        (KERNEL_VA, 0x0, PAGE_SIZE_2M, P | PTE_PSE | PTE_NX),
        (KERNEL_VA + PAGE_SIZE_1G, 0x8000_0000, PAGE_SIZE_1G, P | RW | PTE_PSE | PTE_GLOBAL),
        (0xFFFF_FFFF_FFFF_F000, 0x7000, PAGE_SIZE_4K, P | RW),
    ]
    vas = [va for va, *_ in got]
    assert vas == sorted(vas)
    for va, pa, _, flags in got:
        t = walk(fm.read_u64, fm.cr3, va)
        assert t.pa == pa and t.flags == flags


def test_iter_mappings_range(fm: FakeMemory) -> None:
    for i in range(4):
        fm.map(USER_VA + i * PAGE_SIZE_4K, 0x10000 + i * PAGE_SIZE_4K)
    fm.map(KERNEL_VA, 0, PAGE_SIZE_2M)
    got = list(iter_mappings(fm.read_u64, fm.cr3, USER_VA + 0x1800, USER_VA + 0x3000))
    assert [va for va, *_ in got] == [USER_VA + 0x1000, USER_VA + 0x2000]
    got = list(iter_mappings(fm.read_u64, fm.cr3, KERNEL_VA + 0x1000, KERNEL_VA + 0x2000))
    assert got == [(KERNEL_VA, 0, PAGE_SIZE_2M, P | RW | PTE_PSE)]  # whole leaf
    assert list(iter_mappings(fm.read_u64, fm.cr3, 0x0000_8000_0000_0000, KERNEL_VA)) == []
    assert list(iter_mappings(fm.read_u64, fm.cr3, 5, 5)) == []


def test_iter_mappings_skips_absent_subtrees(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x5000)
    fm.map(KERNEL_VA, 0x6000)
    fm.reads = 0
    assert len(list(iter_mappings(fm.read_u64, fm.cr3))) == 2
    # The PGD, then the PUD, PMD and PT of each of the two paths; nothing else.
    assert fm.reads == 512 + 2 * 3 * 512
    fm.reads = 0
    assert len(list(iter_mappings(fm.read_u64, fm.cr3, KERNEL_VA, KERNEL_VA + 1))) == 1
    assert fm.reads == 4
    fm.reads = 0
    assert list(iter_mappings(fm.read_u64, fm.cr3, 1 << 39, 1 << 46)) == []
    assert fm.reads == (1 << 46 >> 39) - 1


def test_iter_mappings_skips_reserved(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x20_0000, PAGE_SIZE_2M)
    fm.map(KERNEL_VA, 0x5000)
    fm.update(USER_VA, "PMD", set_=0x4000)  # misaligned 2 MiB frame
    assert [va for va, *_ in iter_mappings(fm.read_u64, fm.cr3)] == [KERNEL_VA]


# ---------------------------------------------------------------- TranslationCache


def test_cache_hits_and_invalidate(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x5000, flags=P | RW | US)
    tlb = TranslationCache(fm.read_u64, fm.cr3)
    assert tlb.translate(USER_VA + 1) == 0x5001
    reads = fm.reads
    assert tlb.translate(USER_VA + 0xFFF, "write") == 0x5FFF
    assert fm.reads == reads and (tlb.hits, tlb.misses) == (1, 1) and len(tlb) == 1
    # Stale until invalidated, like a TLB.
    fm.update(USER_VA, "PTE", clear=0xFFFF_F000)
    fm.update(USER_VA, "PTE", set_=0x9000)
    assert tlb.translate(USER_VA) == 0x5000
    tlb.invalidate()
    assert len(tlb) == 0
    assert tlb.translate(USER_VA) == 0x9000
    assert tlb.misses == 2


def test_cache_invalidate_one_page(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x5000)
    fm.map(USER_VA + PAGE_SIZE_4K, 0x6000)
    tlb = TranslationCache(fm.read_u64, fm.cr3)
    tlb.translate(USER_VA)
    tlb.translate(USER_VA + PAGE_SIZE_4K)
    fm.update(USER_VA, "PTE", clear=P)
    tlb.invalidate(USER_VA + 0x123)
    assert len(tlb) == 1
    assert tlb.translate(USER_VA + PAGE_SIZE_4K) == 0x6000
    with pytest.raises(PageFault) as info:
        tlb.translate(USER_VA)
    assert info.value.level == "PTE"
    assert len(tlb) == 1  # faults are not cached
    tlb.invalidate(KERNEL_VA)  # nothing cached there: no error


def test_cache_large_page(fm: FakeMemory) -> None:
    fm.map(KERNEL_VA, 0x4000_0000, PAGE_SIZE_2M)
    tlb = TranslationCache(fm.read_u64, fm.cr3)
    assert tlb.translate(KERNEL_VA + 0x1000) == 0x4000_1000
    assert tlb.translate(KERNEL_VA + 0x1F_FFFF) == 0x401F_FFFF
    assert tlb.translate(KERNEL_VA) == 0x4000_0000
    assert (tlb.hits, tlb.misses, len(tlb)) == (2, 1, 1)
    tlb.invalidate(KERNEL_VA + 0x12_3456)
    assert len(tlb) == 0


def test_cache_permission_faults_name_level(fm: FakeMemory) -> None:
    fm.map(USER_VA, 0x5000, flags=P | US | PTE_NX)
    fm.update(USER_VA, "PMD", clear=US)
    tlb = TranslationCache(fm.read_u64, fm.cr3)
    assert tlb.translate(USER_VA) == 0x5000
    for access, user, level, reason in [
        ("write", False, "PTE", "not writable"),
        ("exec", False, "PTE", "not executable"),
        ("read", True, "PMD", "no user access"),
    ]:
        with pytest.raises(PageFault) as info:
            tlb.translate(USER_VA, access, user=user)
        assert (info.value.level, info.value.reason) == (level, reason)
    user_tlb = TranslationCache(fm.read_u64, fm.cr3, user=True)
    with pytest.raises(PageFault):
        user_tlb.translate(USER_VA)
    assert tlb.hits == 0 and tlb.misses == 4


# ---------------------------------------------------------------- properties

_INDEX = st.sampled_from([0, 1, 2, 255, 256, 273, 510, 511])
_FLAGS = st.sets(st.sampled_from([RW, US, PTE_NX, PTE_GLOBAL, PTE_ACCESSED, PTE_DIRTY]))
_REGION = st.tuples(
    st.sampled_from([PAGE_SIZE_4K, PAGE_SIZE_4K, PAGE_SIZE_2M, PAGE_SIZE_1G]),
    _INDEX, _INDEX, _INDEX, _INDEX,
    st.integers(0, (1 << 20) - 1),  # frame number, in units of the page size
    _FLAGS,
)


@settings(max_examples=150, deadline=None)
@given(regions=st.lists(_REGION, max_size=24), offsets=st.data())
def test_walk_agrees_with_map(regions: list, offsets: st.DataObject) -> None:
    fm = FakeMemory(table_base=1 << 45)  # tables apart from mapped frames
    expected: dict[int, tuple[int, int, int]] = {}
    for size, i4, i3, i2, i1, frame, flag_set in regions:
        va = canonical((i4 << 39) | (i3 << 30) | (i2 << 21) | (i1 << 12)) & ~(size - 1)
        if any(v < va + size and va < v + s for v, (_, s, _) in expected.items()):
            continue  # overlaps an earlier region
        flags = P | sum(flag_set)
        fm.map(va, frame * size, size, flags)
        expected[va] = (frame * size, size, flags | (PTE_PSE if size > PAGE_SIZE_4K else 0))

    for va, (pa, size, flags) in expected.items():
        off = offsets.draw(st.integers(0, size - 1))
        t = walk(fm.read_u64, fm.cr3, va + off)
        assert (t.pa, t.page_size) == (pa + off, size)
        assert t.writable == bool(flags & RW) and t.user == bool(flags & US)
        assert t.nx == bool(flags & PTE_NX) and t.global_ == bool(flags & PTE_GLOBAL)
        assert len(t.steps) == LEVELS.index(LEAF_LEVEL[size]) + 1
        if not flags & RW:
            assert fault(fm, va + off, access="write").level == LEAF_LEVEL[size]
        assert translate_range(fm.read_u64, fm.cr3, va, size) == [(va, pa, size)]

    got = list(iter_mappings(fm.read_u64, fm.cr3))
    assert got == sorted((va, pa, s, f) for va, (pa, s, f) in expected.items())

    probe = offsets.draw(st.integers(0, (1 << 48) - 1))
    probe = canonical(probe)
    hit = [v for v, (_, s, _) in expected.items() if v <= probe < v + s]
    if hit:
        pa, size, _ = expected[hit[0]]
        assert walk(fm.read_u64, fm.cr3, probe).pa == pa + probe - hit[0]
    else:
        f = fault(fm, probe)
        assert f.reason == "not present" and f.entry == 0
        assert format_walk(walk_steps(fm.read_u64, fm.cr3, probe)).endswith(f"{f.level} 0")


def test_doctests() -> None:
    result = doctest.testmod(pagetable, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
