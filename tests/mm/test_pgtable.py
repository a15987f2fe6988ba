"""The kernel's runtime page tables: map/unmap with page-allocator tables, freeing empty
tables, TLB flushes, the preallocated vmalloc PUDs, and the Python dumps."""

from __future__ import annotations

import pytest

from emu import GuestOops, Machine, PageFault
from emu.kernel import pagetable as pt

VMALLOC_START = 0xFFFFC90000000000
VA = VMALLOC_START + 0x40000000 + 0x10000  # a fresh PMD and PTE table
PAGE_OFFSET = 0xFFFF888000000000


def vmap(m: Machine, va: int, n: int, gfp: int = 0xCC0, context: str = "process") -> int:
    arr = m.kzalloc(8 * n)
    assert m.call("kmemu_test_vmap", va, n, gfp, arr, context=context) == 0
    return arr


def pages_of(m: Machine, arr: int, n: int) -> list[int]:
    return [m.page_to_pfn(m.read_u64(arr + 8 * i)) for i in range(n)]


def test_vmalloc_puds_are_preallocated(machine: Machine) -> None:
    pgd = machine.cr3 & ~0xFFF
    for idx in range(402, 466):  # 0xffffc9... to 0xffffe8ff...
        assert machine.read_u64(PAGE_OFFSET + pgd + 8 * idx) & 1, idx


def test_map_translate_unmap(machine: Machine) -> None:
    base_tables = int(machine.var("pgtable_pages"))
    arr = vmap(machine, VA, 5)
    pfns = pages_of(machine, arr, 5)
    for i, pfn in enumerate(pfns):
        t = machine.walk(VA + i * 4096 + 8)
        assert t.pa == pfn * 4096 + 8 and t.page_size == 4096
        assert t.writable and t.nx and t.global_ and not t.user
    assert int(machine.var("pgtable_pages")) == base_tables + 2  # one PMD, one PTE table
    machine.write_virt(VA + 4090, b"crossing")
    assert machine.read_phys(pfns[0] * 4096 + 4090, 6) == b"crossi"
    dump = machine.ptdump(VMALLOC_START, VMALLOC_START + (2 << 30))
    assert f"0x{VA:016x}-0x{VA + 5 * 4096:016x}" in dump and "20K" in dump
    assert "RW" in dump and "GLB NX pte" in dump
    text = machine.pt(VA)
    assert "PTE[ 16]" in text and "P RW A D G NX" in text
    tables = machine.call("kmemu_test_vunmap", VA, 5, arr, 1)
    assert tables == base_tables + 2  # empty now, but vmalloc's tables stay (as Linux's)
    with pytest.raises(PageFault) as ei:
        machine.translate(VA)
    assert ei.value.level == "PTE"  # the walk reaches the kept PTE table
    assert machine.validate_page_alloc() == []
    vmap(machine, VA, 5)  # the same range again: no table allocated
    assert int(machine.var("pgtable_pages")) == base_tables + 2


def test_partial_unmap_keeps_tables(machine: Machine) -> None:
    base_tables = int(machine.var("pgtable_pages"))
    arr = vmap(machine, VA, 4)
    pages = [machine.read_u64(arr + 8 * i) for i in range(4)]
    sub = machine.kzalloc(16)
    machine.write_virt(sub, pages[0].to_bytes(8, "little") + pages[1].to_bytes(8, "little"))
    machine.call("kmemu_test_vunmap", VA, 2, sub, 1)
    with pytest.raises(PageFault) as ei:
        machine.translate(VA)
    assert ei.value.level == "PTE"
    assert machine.translate(VA + 2 * 4096)
    assert int(machine.var("pgtable_pages")) == base_tables + 2
    rest = machine.kzalloc(16)
    machine.write_virt(rest, pages[2].to_bytes(8, "little") + pages[3].to_bytes(8, "little"))
    machine.call("kmemu_test_vunmap", VA + 2 * 4096, 2, rest, 1)
    assert int(machine.var("pgtable_pages")) == base_tables + 2  # empty tables stay


def test_stale_tlb_until_flushed(machine: Machine) -> None:
    arr = vmap(machine, VA, 1)
    machine.write_virt(VA, b"\x42" * 8)
    assert machine.call("kmemu_test_fault", VA, 0) == 0x4242424242424242  # TLB filled
    machine.call("kmemu_test_vunmap", VA, 1, arr, 0)  # no flush
    # the page tables say unmapped...
    with pytest.raises(PageFault):
        machine.translate(VA)
    # ...but the CPU still has the translation cached, as hardware would
    machine.call("kmemu_test_fault", VA, 0)
    machine.call("flush_tlb_kernel_range", VA, VA + 4096)
    with pytest.raises(GuestOops) as ei:
        machine.call("kmemu_test_fault", VA, 0)
    assert ei.value.vector == 14 and ei.value.address == VA


def test_large_flush_drops_global_entries(machine: Machine) -> None:
    n = 40  # more than 32 pages: a full flush
    arr = vmap(machine, VA, n)
    for i in range(n):
        machine.call("kmemu_test_fault", VA + i * 4096, 0)
    flushes = int(machine.var("tlb_flush_all"))
    machine.call("kmemu_test_vunmap", VA, n, arr, 1)
    assert int(machine.var("tlb_flush_all")) == flushes + 1
    with pytest.raises(GuestOops):
        machine.call("kmemu_test_fault", VA + 39 * 4096, 0)


def test_atomic_mapping_in_irq_context(machine: Machine) -> None:
    n = len(machine.events)
    arr = vmap(machine, VA, 3, gfp=0x820, context="irq")  # GFP_ATOMIC, tables included
    assert [e.kind for e in machine.events[n:]] == []
    assert machine.translate(VA + 2 * 4096)
    machine.call("kmemu_test_vunmap", VA, 3, arr, 1)


def test_every_leaf_is_in_the_dump(machine: Machine) -> None:
    ranges = []
    for va, _pa, size, _f in pt.iter_mappings(machine._read_u64, machine.cr3,  # noqa: SLF001
                                               0xFFFF800000000000, 1 << 64):
        ranges.append((va, size))
    dump = machine.ptdump()
    assert dump.count("\n") >= 4 and "---[ High Kernel Mapping ]---" in dump
    total = sum(size for _, size in ranges)
    usable = sum(e.size for e in machine.e820 if e.type == 1)
    assert total >= usable - (1 << 20)  # at least the direct map of usable RAM
