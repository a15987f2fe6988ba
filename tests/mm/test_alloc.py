"""alloc_pages / free_pages: zones, GFP handling, and bad frees caught without damage."""

from __future__ import annotations

import pytest

from emu import Machine
from emu.kernel.gfp import GfpError

from .helpers import PAGE_OFFSET, assert_consistent, empty_zone, event_kinds, release, zone


def test_alloc_and_free_roundtrip(machine: Machine) -> None:
    machine.drain_all_pages()
    before = machine.buddyinfo()
    va = machine.alloc_pages("GFP_KERNEL", 0)
    assert va and va % 4096 == 0 and va >= PAGE_OFFSET
    machine.write_virt(va, b"x" * 4096)
    machine.free_pages(va, 0)
    assert_consistent(machine)
    machine.drain_all_pages()
    assert machine.buddyinfo() == before


def test_orders_and_alignment(machine: Machine) -> None:
    got = []
    for order in range(11):
        va = machine.alloc_pages("GFP_KERNEL", order)
        assert va and (va - PAGE_OFFSET) % (4096 << order) == 0
        got.append((va, order))
    assert_consistent(machine)
    for va, order in got:
        machine.free_pages(va, order)
    assert_consistent(machine)


def test_order_above_max_warns_once_and_fails(machine: Machine) -> None:
    n = len(machine.events)
    assert machine.alloc_pages("GFP_KERNEL", 11) == 0
    assert machine.alloc_pages("GFP_KERNEL", 12) == 0
    assert event_kinds(machine, n) == ["warn"]
    assert machine.alloc_pages("GFP_KERNEL | __GFP_NOWARN", 11) == 0


def test_gfp_zero_after_dirty_free(machine: Machine) -> None:
    va = machine.alloc_pages("GFP_KERNEL", 2)
    machine.write_virt(va, b"\xaa" * (4096 * 4))
    machine.free_pages(va, 2)
    again = machine.alloc_pages("GFP_KERNEL | __GFP_ZERO", 2)
    assert again == va  # the same block comes straight back (LIFO)
    assert machine.read_virt(again, 4096 * 4) == bytes(4096 * 4)
    machine.free_pages(again, 2)
    page = machine.get_zeroed_page()
    assert machine.read_virt(page, 4096) == bytes(4096)


def test_pcp_fast_path_and_drain(machine: Machine) -> None:
    machine.drain_all_pages()
    dma32 = zone(machine, "DMA32")
    va = machine.alloc_pages("GFP_KERNEL", 0)
    z = zone(machine, "DMA32")
    assert z.pcp_count == dma32.pcp_batch - 1  # refilled one batch, took one
    machine.free_pages(va, 0)
    assert zone(machine, "DMA32").pcp_count == dma32.pcp_batch
    machine.drain_all_pages()
    assert zone(machine, "DMA32").pcp_count == 0
    assert_consistent(machine)


def test_gfp_by_name_and_int_and_errors(machine: Machine) -> None:
    va = machine.alloc_pages(0xCC0, 0)
    machine.free_pages(va, 0)
    with pytest.raises(GfpError, match="did you mean GFP_KERNEL"):
        machine.alloc_pages("GFP_KERNL", 0)
    with pytest.raises(GfpError, match="more than one zone"):
        machine.alloc_pages("GFP_KERNEL | __GFP_DMA | __GFP_DMA32", 0)
    assert machine.call("kmemu_test_nop") == 0


@pytest.mark.kmemu(mem="6G")
def test_zones_on_6g(machine: Machine) -> None:
    normal = machine.alloc_pages("GFP_KERNEL", 0)
    dma32 = machine.alloc_pages("GFP_KERNEL | __GFP_DMA32", 0)
    dma = machine.alloc_pages("GFP_KERNEL | __GFP_DMA", 0)
    assert machine.translate(normal) >= 4 << 30
    assert 16 << 20 <= machine.translate(dma32) < 4 << 30
    assert machine.translate(dma) < 16 << 20
    for va in (normal, dma32, dma):
        machine.free_pages(va, 0)
    assert_consistent(machine)


@pytest.mark.slow
@pytest.mark.kmemu(mem="6G")
def test_fallback_normal_then_dma32_then_dma(machine: Machine) -> None:
    # Exhaust Normal (ignoring watermarks), then the next allocation comes from
    # DMA32; exhaust DMA32 too and GFP_KERNEL lands in DMA only if DMA's
    # lowmem_reserve allows it (it does not: the request could use DMA32).
    empty_zone(machine, "Normal")
    va = machine.alloc_pages("GFP_KERNEL", 0)
    assert 16 << 20 <= machine.translate(va) < 4 << 30  # Normal is empty: DMA32
    machine.free_pages(va, 0)
    empty_zone(machine, "DMA32")
    assert zone(machine, "Normal").free == 0 and zone(machine, "DMA32").free == 0
    dma = zone(machine, "DMA")
    assert dma.free > dma.watermark["min"]
    va = machine.alloc_pages("GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN", 0)
    # DMA free is far below lowmem_reserve[Normal] (= managed DMA32+Normal / 256)
    assert dma.lowmem_reserve[2] > dma.free and va == 0
    va = machine.alloc_pages("GFP_KERNEL | __GFP_DMA", 0)
    assert va and machine.translate(va) < 16 << 20
    machine.free_pages(va, 0)
    release(machine, 1 << 30)
    assert_consistent(machine)


def test_double_free_is_reported_and_harmless(machine: Machine) -> None:
    va = machine.alloc_pages("GFP_KERNEL", 3)
    machine.free_pages(va, 3)
    n = len(machine.events)
    machine.free_pages(va, 3)
    ev = machine.events[n:]
    assert [e.kind for e in ev] == ["bad_page"]
    pfn = machine.virt_to_pfn(va)
    assert ev[0].message == f"BUG: Bad page state in process kmemu  pfn:{pfn:05x}"
    assert "page dumped because: page is already free (double free)" in machine.console
    assert_consistent(machine)


@pytest.mark.parametrize("order,free_order,why", [
    (2, 1, "freed with order 1, allocated with order 2"),
    (0, 3, "freed with order 3, allocated with order 0"),
])
def test_wrong_order_free(machine: Machine, order: int, free_order: int, why: str) -> None:
    # pick a block whose address is aligned for the (wrong) larger order too, so the
    # only thing wrong with the free is the order
    spare = []
    va = machine.alloc_pages("GFP_KERNEL", order)
    while (va - PAGE_OFFSET) % (4096 << free_order):
        spare.append(va)
        va = machine.alloc_pages("GFP_KERNEL", order)
    for s in spare:
        machine.free_pages(s, order)
    machine.free_pages(va, free_order)
    assert f"page dumped because: {why}" in machine.console
    assert machine.events[-1].kind == "bad_page"
    assert_consistent(machine)
    machine.free_pages(va, order)  # the right free still works
    assert_consistent(machine)


def test_bad_addresses(machine: Machine) -> None:
    va = machine.alloc_pages("GFP_KERNEL", 1)
    n = len(machine.events)
    machine.free_pages(va + 8, 0)
    machine.free_pages(va + 4096, 0)  # inside the block, not its start
    machine.free_pages(0xFFFFC90000000000, 0)
    machine.free_pages(machine.symbol("kmain") & ~0xFFF, 0)
    assert event_kinds(machine, n) == ["bad_page"] * 4
    assert "address is not page aligned" in machine.events[n].message
    assert "not in the direct map" in machine.events[n + 2].message
    machine.free_pages(va, 1)
    assert_consistent(machine)


def test_freeing_reserved_memory_is_refused(machine: Machine) -> None:
    n = len(machine.events)
    machine.free_pages(PAGE_OFFSET + 0x100000, 0)  # the kernel image
    assert event_kinds(machine, n) == ["bad_page"]
    assert "PAGE_FLAGS_CHECK_AT_FREE flag(s) set" in machine.console
    assert_consistent(machine)


def test_compound_pages(machine: Machine) -> None:
    va = machine.alloc_pages("GFP_KERNEL | __GFP_COMP", 2)
    pfn = machine.virt_to_pfn(va)
    pages = machine.pages(pfn, 4)
    assert pages[0].has("head") and all(p.has("tail") for p in pages[1:])
    n = len(machine.events)
    machine.free_pages(va + 4096, 0)  # a tail page
    assert event_kinds(machine, n) == ["bad_page"]
    assert "freeing a tail page" in machine.console
    machine.free_pages(va, 2)
    assert not any(p.has("tail") or p.has("head") for p in machine.pages(pfn, 4))
    assert_consistent(machine)
