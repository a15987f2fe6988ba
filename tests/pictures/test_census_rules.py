"""The census's classification rules on hand-made struct pages (no machine)."""

from __future__ import annotations

import struct

import pytest

from emu.kernel import memmap as mmap
from emu.kernel.memmap import CensusInput, KernelCounters, Run, census, validate_census

RES, BUDDY, PCP, SLAB = 1, 2, 4, 32
CACHE_A = 0xFFFF888000123400


def page(flags: int = 0, w1: int = 0, private: int = 0, page_type: int = 0,
         alloc_order: int = 0, zone: int = 0) -> bytes:
    return struct.pack("<QQQQQQiIII", flags | zone << 62, w1, 0, 0, 0, private, 0, page_type,
                       alloc_order, 0)


def machine() -> CensusInput:
    """Sections [0, 512) and [1024, 1536) have struct pages; see each range below."""
    pages: dict[int, bytes] = {}
    for pfn in range(0, 260):
        pages[pfn] = page(RES)
    pages[260] = page(SLAB, w1=CACHE_A)  # an order-2 slab
    for pfn in range(261, 264):
        pages[pfn] = page(16)  # tails
    pages[264] = page(PCP)
    pages[265] = page(alloc_order=1)
    pages[266] = page(alloc_order=1)  # a page table (from the walk)
    pages[267] = page(BUDDY, private=0)
    pages[268] = page(BUDDY, private=2)
    pages[272] = page(alloc_order=4, page_type=mmap.PAGE_TYPE_LARGE_KMALLOC)
    pages[280] = page(alloc_order=4)  # one of its pages is vmalloc's
    pages[288] = page(BUDDY, private=5)
    pages[320] = page(BUDDY, private=6)
    pages[384] = page(BUDDY, private=7)
    pages[1024] = page(BUDDY, private=9)

    def read(pfn: int, n: int) -> bytes:
        return b"".join(pages.get(p, page()) for p in range(pfn, pfn + n))

    owners: dict[int, str] = {}
    mmap.paint(owners, 0, 4096, "firmware: BIOS page (pfn 0)")
    mmap.paint(owners, 0x5000, 0x6000, "memblock: boot info")
    owners[266] = mmap.PT_KERNEL
    owners[283] = "vmalloc foo"
    return CensusInput(
        max_pfn=1536, present=[(0, 512), (1024, 1536)], read_pages=read,
        e820=[(0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0x100000, 0x100000, 1),
              (0x200000, 0x100000, 2), (0x400000, 0x200000, 1)],
        memblock_reserved=[(0, 0x100000)], caches={CACHE_A: ("A", 2)}, owners=owners)


EXPECTED = [
    Run(0, 1, "firmware: BIOS page (pfn 0)"),
    Run(1, 4, mmap.MEMBLOCK_UNKNOWN),
    Run(5, 1, "memblock: boot info"),
    Run(6, 0x9F - 6, mmap.MEMBLOCK_UNKNOWN),
    Run(0x9F, 1, "firmware: e820 reserved"),  # the partial page is the firmware's
    Run(0xA0, 0x60, mmap.HOLE),
    Run(256, 4, mmap.RESERVED_UNKNOWN),  # PG_reserved RAM no record names
    Run(260, 4, "slab A"),
    Run(264, 1, mmap.FREE_PCP),
    Run(265, 1, mmap.UNKNOWN_ALLOC),
    Run(266, 1, mmap.PT_KERNEL),
    Run(267, 1, "free order 0"),
    Run(268, 4, "free order 2"),
    Run(272, 8, mmap.LARGE_KMALLOC),
    Run(280, 3, mmap.UNKNOWN_ALLOC),
    Run(283, 1, "vmalloc foo"),
    Run(284, 4, mmap.UNKNOWN_ALLOC),
    Run(288, 32, "free order 5"),
    Run(320, 64, "free order 6"),
    Run(384, 128, "free order 7"),
    Run(512, 256, "firmware: e820 reserved"),  # no struct page: the e820 map says
    Run(768, 256, mmap.HOLE),
    Run(1024, 512, "free order 9"),
]


def test_every_rule_on_hand_made_pages() -> None:
    mm = census(machine())
    assert list(mm) == EXPECTED
    assert mm.problems == []
    t = mm.zones[0]
    assert (t.free, t.pcp, t.managed) == (1 + 4 + 32 + 64 + 128 + 512, 1, 252 + 512)
    assert mm.owner_at(283) == "vmalloc foo" and mm.owner_at(1535) == "free order 9"
    with pytest.raises(IndexError):
        mm.owner_at(1536)
    assert mm.managed_owners[mmap.PT_KERNEL] == 1
    assert mmap.RESERVED_UNKNOWN not in mm.managed_owners


def test_counts_and_kinds() -> None:
    mm = census(machine())
    counts = mm.counts()
    assert sum(counts.values()) == 1536
    assert counts[mmap.UNKNOWN_ALLOC] == 8 and counts[mmap.HOLE] == 0x60 + 256
    assert list(counts)[:6] == [f"free order {o}" for o in (0, 2, 5, 6, 7, 9)]
    kinds = mm.kind_counts()
    assert kinds["pages"] == 16 and kinds["slab"] == 4 and kinds["firmware"] == 258
    assert {mmap.kind_of(o) for o in counts} <= set(mmap.KINDS)
    with pytest.raises(ValueError):
        mmap.kind_of("something else")


def counters(**kw: object) -> KernelCounters:
    base = dict(totalram=764, zones={0: ("DMA", 741, 1, 764)}, slab={"A": 4}, vmalloc=1,
                pgtable_runtime=1, vmemmap=0, kernel_image=0)
    return KernelCounters(**{**base, **kw})  # type: ignore[arg-type]


def test_validation_agrees_and_names_each_disagreement() -> None:
    mm = census(machine())
    assert validate_census(mm, counters(), runtime_tables=1) == []
    bad = validate_census(mm, counters(zones={0: ("DMA", 740, 2, 764)}, slab={"A": 8},
                                       vmalloc=3), runtime_tables=2)
    assert bad == [
        "DMA free (nr_free_pages): the census has 741 pages, the kernel says 740",
        "DMA pcp (pcp.count): the census has 1 pages, the kernel says 2",
        "MemFree: the census has 741 pages, the kernel says 740",
        "slab A (nr_slabs): the census has 4 pages, the kernel says 8",
        "Slab: the census has 4 pages, the kernel says 8",
        "VmallocUsed (nr_vmalloc_pages): the census has 1 pages, the kernel says 3",
        "page tables from the page allocator (pgtable_pages): the census has 2 pages, "
        "the kernel says 1",
    ]


def test_a_gap_in_the_runs_is_reported() -> None:
    mm = census(machine())
    del mm[3]
    assert any("does not start at pfn" in p for p in validate_census(mm, counters(), 1))


def test_a_free_block_with_a_bad_order_is_a_problem_not_a_crash() -> None:
    inp = machine()
    good = inp.read_pages

    def read(pfn: int, n: int) -> bytes:
        raw = bytearray(good(pfn, n))
        if pfn <= 1024 < pfn + n:
            raw[(1024 - pfn) * 64:(1025 - pfn) * 64] = page(BUDDY, private=12)
        return bytes(raw)

    inp.read_pages = read
    mm = census(inp)
    assert mm.problems == ["free block at pfn 0x400 has bad order 12"]
    assert sum(r.count for r in mm) == 1536


def test_a_slab_of_an_unknown_cache_is_named_by_address() -> None:
    inp = machine()
    inp.caches = {}
    mm = census(inp)
    assert mm.owner_at(260) == f"slab {CACHE_A:#x}"
    assert mm.problems == [f"slab page at pfn 0x104 names no known cache ({CACHE_A:#x})"]


def test_page_table_walk_names_tables_and_leaves() -> None:
    """A PGD with one kernel-map slot and one vmalloc slot; a vmemmap 2 MiB leaf."""
    tables: dict[int, list[int]] = {t: [0] * 512 for t in (0x1000, 0x2000, 0x3000, 0x4000,
                                                         0x5000, 0x6000)}
    tables[0x1000][0x192] = 0x2003  # VMALLOC_START's slot -> PUD 0x2000
    tables[0x2000][0] = 0x3003  # -> PMD 0x3000
    tables[0x3000][0] = 0x4003  # -> PTE 0x4000
    tables[0x4000][0] = 0x9000 | 3  # a vmalloc page: not a wanted leaf
    tables[0x1000][0x1D4] = 0x5003  # the vmemmap slot -> PUD 0x5000
    tables[0x5000][0] = 0x6003  # -> PMD 0x6000
    tables[0x6000][1] = 0x400000 | 0x83  # a 2 MiB leaf at vmemmap + 2 MiB
    got = mmap.walk_page_tables(lambda pa: tuple(tables[pa]), 0x1000,
                                [(mmap.VMEMMAP_START, mmap.VMEMMAP_END, mmap.VMEMMAP)])
    assert got[1] == mmap.PT_KERNEL  # the PGD maps everything
    assert got[2] == got[3] == got[4] == mmap.PT_VMALLOC
    assert got[5] == got[6] == mmap.PT_KERNEL
    assert [p for p, o in got.items() if o == mmap.VMEMMAP] == list(range(0x400, 0x600))
    assert 9 not in got


def test_a_slab_page_without_a_cache_pointer_is_counted_page_by_page() -> None:
    inp = machine()
    good = inp.read_pages

    def read(pfn: int, n: int) -> bytes:
        raw = bytearray(good(pfn, n))
        if pfn <= 260 < pfn + n:
            raw[(260 - pfn) * 64:(261 - pfn) * 64] = page(SLAB)  # no slab_cache
        return bytes(raw)

    inp.read_pages = read
    mm = census(inp)
    assert mm.owner_at(260) == "slab (no cache recorded)" and mm.problems == []
    assert mm.owner_at(261) == mmap.UNKNOWN_ALLOC  # the old tails are nobody's now
