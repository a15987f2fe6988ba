"""identify ADDR: emu.kernel.whatis (pure classification) and emu.debug.api (live readers)."""

from __future__ import annotations

import re

import pytest

from emu import Machine
from emu.core.errors import BadArgument, PageFault
from emu.debug.api import DebugInfoMixin, whatis_info
from emu.kernel.mm import PAGE_OFFSET, PG, PageInfo
from emu.kernel.symbols import Symbol, Symbols
from emu.kernel.whatis import (
    Section,
    SlabObject,
    Sources,
    check_address,
    kernel_sections,
    whatis,
)


def W(m: Machine, addr: int) -> str:
    # DebugInfoMixin.identify, called unbound: the Machine need not have the mixin yet
    return DebugInfoMixin.identify(m, addr)


def kind(m: Machine, addr: int) -> str:
    return whatis_info(m, addr).kind


def pfn_of(addr: int) -> int:
    return (addr - PAGE_OFFSET) >> 12


# --- the live kernel --------------------------------------------------------------------------


def test_slab_object_allocated_then_free(machine: Machine) -> None:
    p = machine.kmalloc(100)
    text = W(machine, p + 0x10)
    assert text.splitlines()[0] == f"{p + 0x10:#018x}: direct map, pfn {pfn_of(p):#x} in " \
                                   "zone DMA32"
    assert re.fullmatch(rf"slab object: kmalloc-128 object \d+ of \d+ at {p:#x}, \+0x10 of "
                        r"128 bytes, allocated", text.splitlines()[1]), text
    machine.kfree(p)
    assert whatis_info(machine, p).kind == "slab" and W(machine, p).endswith(", free")


def test_slab_object_index_in_a_multi_page_slab(machine: Machine) -> None:
    ptrs = [machine.kmalloc(2048) for _ in range(3)]
    info = machine.find_object(ptrs[2])
    cache = next(c for c in machine.caches() if c.name == "kmalloc-2k")
    base = ptrs[2] & ~((4096 << cache.order) - 1)
    idx = (ptrs[2] - base) // cache.size
    assert f"kmalloc-2k object {idx} of {cache.objects} at {info.object:#x}" in W(
        machine, ptrs[2] + 1)


@pytest.mark.kmemu(cmdline="slab_debug=U")
def test_slab_owner_tracks(machine: Machine) -> None:
    p = machine.kmalloc(100)
    machine.kfree(p)
    lines = W(machine, p).splitlines()
    assert lines[1].endswith(", free")
    ret = machine.symbolize(machine.call_return_address)
    assert lines[2] == f"  last allocated by: {ret}"  # addr == stack[0]: shown once
    assert lines[3] == f"  last freed by: {ret}"
    # an allocation made inside the kernel: vmalloc's array of struct page pointers
    v = machine.vmalloc(8192)
    area = next(a for a in machine.vmap_areas() if a.start == v)
    owner = W(machine, area.pages).splitlines()[2]
    # kcalloc is inline in Linux: the owner is its caller (kmemu's passes it on)
    assert re.fullmatch(r"  last allocated by: __vmalloc_node_range\+\S+ <- "
                        r"__vmalloc\+\S+ <- kmemu_call_return\+\S+", owner), owner


@pytest.mark.kmemu(cmdline="slab_debug=Z")
def test_slab_red_zone_past_the_object(machine: Machine) -> None:
    p = machine.kmalloc(64)
    info = machine.find_object(p)
    text = W(machine, p + info.size + 2)
    assert f"2 bytes past its {info.size} bytes (red zone" in text


def test_free_buddy_block(machine: Machine) -> None:
    va = machine.alloc_pages("GFP_KERNEL", 2)
    machine.free_pages(va, 2)
    w = whatis_info(machine, va + 3 * 4096 + 5)
    assert w.kind == "free" and w.pfn == pfn_of(va) + 3
    m = re.search(r"free: page (\d+) of an order-(\d+) free block at pfn (0x[0-9a-f]+) "
                  r"\((\d+) pages", str(w))
    assert m, str(w)
    page_no, order, head = int(m[1]), int(m[2]), int(m[3], 16)
    assert head + page_no == w.pfn and order >= 2 and int(m[4]) == 1 << order
    heads = machine.pages(head, 1)
    assert heads[0].has("buddy") and heads[0].private == order  # what the kernel says
    assert f"on zone DMA32's free_area[{order}]" in str(w)


def test_pcp_page(machine: Machine) -> None:
    va = machine.alloc_pages("GFP_KERNEL", 0)
    machine.free_pages(va, 0)
    assert W(machine, va).splitlines()[1] == "free: order-0 page on zone DMA32's per-cpu " \
                                             "list (pcp)"


def test_allocated_pages(machine: Machine) -> None:
    va = machine.alloc_pages("GFP_KERNEL", 2)
    text = W(machine, va + 3 * 4096 + 8)
    assert f"allocated: page 3 of an order-2 block at pfn {pfn_of(va):#x} from the page " \
           "allocator (alloc_pages), refcount 1" in text
    one = machine.alloc_pages("GFP_KERNEL", 0)
    assert f"allocated: an order-0 page at pfn {pfn_of(one):#x} " in W(machine, one)
    comp = machine.alloc_pages("GFP_KERNEL | __GFP_COMP", 1)
    assert f"page 1 of an order-1 block at pfn {pfn_of(comp):#x} (compound)" in W(
        machine, comp + 4096)


def test_vmalloc(machine: Machine) -> None:
    v = machine.vmalloc(20000)
    w = whatis_info(machine, v + 100)
    text = str(w).splitlines()
    size = machine.symbolize(machine.call_return_address).partition("/")[2]
    assert text[0].endswith("vmalloc, 100 bytes inside a 20480-byte vmalloc area allocated "
                            f"at kmemu_call_return+0x1/{size}")
    assert text[1] == f"area {v:#x}-{v + 24576:#x}, 24576 bytes with the guard page, 5 pages, " \
                      "vmalloc"
    pa = machine.translate(v + 100)
    assert text[2] == f"backed by pfn {pa >> 12:#x} (pa {pa:#x}) in zone DMA32"
    assert text[3].startswith(f"allocated: an order-0 page at pfn {pa >> 12:#x}")
    assert w.pfn == pa >> 12 and w.region == "vmalloc"
    guard = W(machine, v + 20480 + 4)
    assert "4 bytes past the end of a 20480-byte vmalloc area" in guard
    assert "not mapped (cannot read" in guard
    machine.vfree(v)
    assert "into a freed 20480-byte vmalloc area (unpurged)" in W(machine, v)


def test_kernel_image(machine: Machine) -> None:
    k = machine.symbol("kmalloc")
    assert W(machine, k + 0x19) == (f"{k + 0x19:#018x}: kernel image, kmalloc+0x19/"
                                    f"{machine.symbols.by_name['kmalloc'].size:#x} (func) in "
                                    f".text, pa {k + 0x19 - 0xFFFFFFFF80000000:#x}")
    zones = machine.symbol("zones")
    size = int(machine.program["zones"][0].type_.size)
    text = W(machine, zones + size + 8)
    assert f"zones+{size + 8:#x}/" in text and "(object: zones[1]._watermark[1]) in .bss" in text
    far = W(machine, 0xFFFFFFFF80000000 + (64 << 20))
    assert "outside the image's sections: not mapped" in far


def test_vmemmap(machine: Machine) -> None:
    mem_map = machine.read_u64(machine.symbol("mem_map"))
    va = machine.alloc_pages("GFP_KERNEL", 0)
    pfn = pfn_of(va)
    text = W(machine, mem_map + 64 * pfn + 40)
    assert text.splitlines()[0].startswith(
        f"{mem_map + 64 * pfn + 40:#018x}: vmemmap, struct page of pfn {pfn:#x} +0x28 "
        f"(private), describing {va:#x}")
    assert text.splitlines()[1].startswith("that page: allocated: an order-0 page")
    max_pfn = machine.read_u64(machine.symbol("max_pfn"))
    beyond = W(machine, mem_map + 64 * (max_pfn + (1 << 20)))
    assert "but that pfn has none" in beyond and "not mapped" in beyond


def test_direct_map_without_ram(machine: Machine) -> None:
    max_pfn = machine.read_u64(machine.symbol("max_pfn"))
    w = whatis_info(machine, PAGE_OFFSET + (max_pfn << 12) + 0x123)
    assert w.kind == "no page" and "not RAM, beyond the last pfn; not mapped" in str(w)
    # the E820 hole below 1 MiB has struct pages (reserved) but no mapping
    hole = whatis_info(machine, PAGE_OFFSET + 0x9F000 + 0x100)
    assert hole.kind == "reserved" and "this address is not mapped" in str(hole)


def test_user_non_canonical_and_unmapped(machine: Machine) -> None:
    assert W(machine, 0) == "0x0000000000000000: user-space address (NULL + 0x0); kmemu " \
                            "maps nothing below the kernel half"
    assert kind(machine, 0x400000) == "user" and "NULL" not in W(machine, 0x400000)
    assert kind(machine, 0x0000800000000000) == "non-canonical"
    assert "raises #GP" in W(machine, 0xDEAD000000000000)
    hole = 0xFFFF800000001000  # kernel half, below the direct map
    assert kind(machine, hole) == "unmapped"
    assert "outside every kmemu region" in W(machine, hole) and "not present at PGD" in W(
        machine, hole)


@pytest.mark.parametrize("bad", [-1, 1 << 64, "0x10", 1.0, True, None])
def test_bad_addresses(machine: Machine, bad: object) -> None:
    with pytest.raises(BadArgument):
        W(machine, bad)  # type: ignore[arg-type]


def test_kernel_sections(machine: Machine) -> None:
    secs = {s.name: s for s in kernel_sections(machine.artifacts.elf)}
    assert {".text", ".data", ".bss"} <= set(secs)
    assert secs[".text"].start <= machine.symbol("kmalloc") < secs[".text"].end


# --- the classifier on fakes ------------------------------------------------------------------


def fake_sources(pages: dict[int, PageInfo], **kw: object) -> Sources:
    def translate(va: int) -> int:
        if PAGE_OFFSET <= va < PAGE_OFFSET + (64 << 12):
            return va - PAGE_OFFSET
        raise PageFault(va, "PGD", 0, "not present")
    syms = Symbols([Symbol("fn", 0xFFFFFFFF80100000, 0x40, "func")])
    base = dict(page=pages.get, translate=translate, symbols=syms, zone_names=["DMA", "DMA32"],
                sections=[Section(".text", 0xFFFFFFFF80100000, 0xFFFFFFFF80101000)],
                max_pfn=64)
    return Sources(**(base | kw))  # type: ignore[arg-type]


def page(pfn: int, *flags: str, private: int = 0, alloc_order: int = 0,
         zone: int = 1) -> PageInfo:
    bits = sum(PG[f] for f in flags) | zone << 62
    return PageInfo(pfn, bits, private, 1, alloc_order)


def test_fake_free_block_head_search() -> None:
    pages = {p: page(p) for p in range(64)}
    pages[16] = page(16, "buddy", private=3)  # pfn 16..23 free
    src = fake_sources(pages)
    w = whatis(PAGE_OFFSET + 21 * 4096, src)
    assert w.kind == "free" and "page 5 of an order-3 free block at pfn 0x10" in str(w)
    assert whatis(PAGE_OFFSET + 24 * 4096, src).kind == "in use"  # just past the block


def test_fake_allocation_and_slab_preference() -> None:
    pages = {p: page(p) for p in range(64)}
    pages[8] = page(8, alloc_order=3)  # order-2 allocation at pfn 8
    src = fake_sources(pages)
    assert "page 2 of an order-2 block at pfn 0x8" in str(whatis(PAGE_OFFSET + 10 * 4096, src))
    obj = SlabObject("cache-x", PAGE_OFFSET + 10 * 4096, -4, 32, True, 0, 8)
    src = fake_sources(pages, slab_object=lambda va: obj)
    text = str(whatis(PAGE_OFFSET + 10 * 4096 - 4, src))
    assert "slab object: cache-x object 0 of 8" in text and "4 bytes before it" in text


def test_fake_reserved_and_holes() -> None:
    src = fake_sources({0: page(0, "reserved", zone=0)})
    assert "reserved" in str(whatis(PAGE_OFFSET + 5, src))
    assert "zone DMA" in str(whatis(PAGE_OFFSET + 5, src))
    hole = whatis(PAGE_OFFSET + 3 * 4096, src)  # no struct page, below max_pfn
    assert hole.kind == "no page" and "in a hole of the physical map" in str(hole)


def test_fake_kernel_image_without_symbol() -> None:
    src = fake_sources({})
    text = str(whatis(0xFFFFFFFF80100800, src))
    assert "kernel image, no symbol in .text" in text


def test_check_address() -> None:
    assert check_address(0) == 0 and check_address((1 << 64) - 1) == (1 << 64) - 1
    with pytest.raises(BadArgument, match="not a 64-bit value"):
        check_address(1 << 64)
