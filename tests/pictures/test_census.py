"""m.memory_map() on a booted machine: every pfn once, owners where the kernel put
them, totals equal to the kernel's own counters (validate_memory_map)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu import Machine
from emu.build import layout as L
from emu.firmware.e820 import parse_map
from emu.kernel import memmap as mmap
from emu.kernel import pagetable

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def owners_of(m: Machine, va: int, pages: int) -> set[str]:
    mm = m.memory_map()
    return {mm.owner_at(m.translate(va + i * 4096) >> 12) for i in range(pages)}


def test_boot_census_covers_every_pfn_once_and_agrees_with_the_kernel(machine: Machine) -> None:
    mm = machine.memory_map()
    max_pfn = machine.read_u64(machine.symbol("max_pfn"))
    assert mm.max_pfn == max_pfn and mm[0].pfn == 0
    for a, b in zip(mm, mm[1:], strict=False):
        assert a.pfn + a.count == b.pfn and a.owner != b.owner, (a, b)
    assert mm[-1].pfn + mm[-1].count == max_pfn
    assert machine.validate_memory_map(mm) == []
    zones = machine.zones()
    kinds = mm.kind_counts()
    assert kinds["free"] == sum(z.free for z in zones)
    assert kinds["pcp"] == sum(z.pcp_count for z in zones)
    assert sum(mm.managed_owners.values()) == sum(z.managed for z in zones) \
        == machine.read_u64(machine.symbol("totalram_pages"))


def test_boot_owners_are_where_the_records_say(machine: Machine) -> None:
    m = machine
    mm = m.memory_map()
    sym = m.symbol
    counts = mm.counts()
    assert counts["kernel text"] == (sym("__start_rodata") - sym("_stext")) // 4096
    assert mm.owner_at((sym("_stext") - L.KERNEL_VIRT) >> 12) == "kernel text"
    assert mm.owner_at((sym("_sdata") - L.KERNEL_VIRT) >> 12) == "kernel data+bss"
    assert mm.owner_at(0) == "firmware: BIOS page (pfn 0)"
    assert mm.owner_at(0x9F) == "firmware: e820 reserved"  # 0x9fc00: a partial page
    assert mm.owner_at(0xA0) == mmap.HOLE  # the legacy VGA hole: in no e820 entry
    assert mm.owner_at(L.BOOT_INFO >> 12) == "memblock: boot info"
    assert mm.owner_at(m.cr3 >> 12) == mmap.PT_KERNEL  # init_top_pgt
    assert counts[mmap.VMEMMAP] == 256 * 1024 * 1024 // 4096 * 64 // 4096  # 256 MiB of pages
    assert mm.owner_at(m.translate(m.pfn_to_page(0x1234)) >> 12) == mmap.VMEMMAP
    pb = m.translate(m.read_u64(sym("pageblock_flags")))
    assert mm.owner_at(pb >> 12) == "memblock: pageblock flags"
    # the 64 PUD pages preallocated under the vmalloc PGD slots
    assert counts[mmap.PT_VMALLOC] == 64


def test_each_kind_of_allocation_shows_up_as_its_owner(machine: Machine) -> None:
    m = machine
    before = m.memory_map().counts()
    objs = [m.kmalloc(64) for _ in range(200)]  # more than one slab's worth
    m.kmem_cache_create("census_test", 200)
    obj = m.kmem_cache_alloc("census_test")
    big = m.kmalloc(20000)  # order 3: the page allocator, tagged PAGE_TYPE_LARGE_KMALLOC
    pages = m.alloc_pages("GFP_KERNEL", 2)
    v = m.vmalloc(5 * 4096)
    mm = m.memory_map()
    assert m.validate_memory_map(mm) == []
    assert {mm.owner_at(m.virt_to_pfn(o)) for o in objs} == {"slab kmalloc-64"}
    assert mm.owner_at(m.virt_to_pfn(obj)) == "slab census_test"
    assert owners_of(m, big, 8) == {mmap.LARGE_KMALLOC}
    assert owners_of(m, pages, 4) == {mmap.UNKNOWN_ALLOC}
    assert owners_of(m, v, 5) == {"vmalloc kmemu_call_return"}  # the host call's trampoline
    counts = mm.counts()
    assert counts["slab kmalloc-64"] >= before.get("slab kmalloc-64", 0) + 3
    assert counts[mmap.LARGE_KMALLOC] == before.get(mmap.LARGE_KMALLOC, 0) + 8
    cache = next(c for c in m.caches() if c.name == "census_test")
    assert counts["slab census_test"] == cache.nr_slabs << cache.order
    # vmalloc's PTE table is vmalloc's page table (never freed, as in Linux)
    pte_table = pagetable.walk_steps(m._read_u64, m.cr3, v)[-2].entry & 0xFFFFFFFFFF000
    assert mm.owner_at(pte_table >> 12) == mmap.PT_VMALLOC


def test_a_freed_large_kmalloc_loses_its_tag(machine: Machine) -> None:
    """kfree clears page_type: the same block given out again is nobody's kmalloc."""
    m = machine
    big = m.kmalloc(20000)
    m.kfree(big)
    again = m.alloc_pages("GFP_KERNEL", 3)
    assert again == big  # the buddy allocator hands the block back (deterministic guest)
    assert owners_of(m, again, 8) == {mmap.UNKNOWN_ALLOC}
    assert m.validate_memory_map() == []


def test_slobs_large_kmalloc_is_tagged_and_untagged_as_slubs() -> None:
    """SLOB's whole-page kmalloc is kmalloc's in the census too, and nobody's once freed."""
    m = Machine.booted(slab="slob")
    big = m.kmalloc(20000)
    assert owners_of(m, big, 8) == {mmap.LARGE_KMALLOC}
    assert m.validate_memory_map() == []
    m.kfree(big)
    again = m.alloc_pages("GFP_KERNEL", 3)
    assert again == big
    assert owners_of(m, again, 8) == {mmap.UNKNOWN_ALLOC}


def test_a_loaded_module_is_named_by_part_and_gone_after_unload(machine: Machine) -> None:
    m = machine
    mod = m.load_module(EXAMPLES / "recfifo" / "recfifo.c")
    mm = m.memory_map()
    assert m.validate_memory_map(mm) == []
    parts = {o: n for o, n in mm.counts().items() if o.startswith("module recfifo ")}
    view = mod.view
    assert parts["module recfifo text"] == view.text_size // 4096
    assert parts["module recfifo rodata"] == (view.ro_size - view.text_size) // 4096
    assert sum(parts.values()) == (view.size + 4095) // 4096
    assert mm.owner_at(m.translate(view.base) >> 12) == "module recfifo text"
    m.unload_module("recfifo")
    assert not any(o.startswith("module ") for o in m.memory_map().counts())


def test_validation_catches_a_counter_that_lies(machine: Machine) -> None:
    m = machine
    m.vmalloc(3 * 4096)
    addr = m.symbol("nr_vmalloc_pages")
    true = m.read_u64(addr)
    m.write_virt(addr, (true + 1).to_bytes(8, "little"))
    assert m.validate_memory_map() == [
        f"VmallocUsed (nr_vmalloc_pages): the census has {true} pages, "
        f"the kernel says {true + 1}"]


@pytest.mark.kmemu(mem="6G")
def test_census_above_4g_has_the_pci_hole_and_no_struct_pages_there(machine: Machine) -> None:
    """6G: RAM to 3 GiB (less ACPI and reserved at the top), the PCI hole (no struct
    pages: the census asks the e820 map), the BIOS ROM below 4 GiB, RAM above."""
    mm = machine.memory_map()
    assert machine.validate_memory_map(mm) == []
    assert mmap.Run(0xC0000, 0xFFFC0 - 0xC0000, mmap.HOLE) in mm
    assert mmap.Run(0xFFFC0, 0x40, "firmware: e820 reserved") in mm
    assert mm.owner_at(0xBFFC0) == "firmware: ACPI data"
    assert mm.owner_at(0x100000) != mmap.HOLE and mm.max_pfn == 0x1C0000
    assert sum(mm.counts().values()) == mm.max_pfn


OPS = st.lists(st.one_of(
    st.tuples(st.just("kmalloc"), st.integers(1, 3 * 8192)),
    st.tuples(st.just("pages"), st.integers(0, 3)),
    st.tuples(st.just("vmalloc"), st.integers(1, 24)),
    st.tuples(st.just("free"), st.integers(0, 63))), max_size=14)


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_any_mix_of_allocations_keeps_the_census_exact(machine: Machine, ops: list) -> None:
    """After any sequence of allocations and frees, the census agrees with the kernel
    and every live allocation's pages carry the owner its allocator records."""
    m = machine
    snap = m.snapshot()
    try:
        live: list[tuple[str, int, int]] = []  # (kind, address, size or order or pages)
        for kind, n in ops:
            if kind == "free":
                if live:
                    what, addr, size = live.pop(n % len(live))
                    if what == "kmalloc":
                        m.kfree(addr)
                    elif what == "vmalloc":
                        m.vfree(addr)
                    else:
                        m.free_pages(addr, size)
                continue
            addr = {"kmalloc": m.kmalloc, "pages": lambda o: m.alloc_pages("GFP_KERNEL", o),
                    "vmalloc": lambda p: m.vmalloc(p * 4096)}[kind](n)
            assert addr
            live.append((kind, addr, n))
        mm = m.memory_map()
        assert m.validate_memory_map(mm) == []
        for kind, addr, n in live:
            if kind == "kmalloc" and n <= 8192:
                assert mm.owner_at(m.virt_to_pfn(addr)).startswith("slab kmalloc-")
            elif kind == "kmalloc":
                pages = 1 << max(0, (n - 1).bit_length() - 12)
                assert owners_of(m, addr, pages) == {mmap.LARGE_KMALLOC}
            elif kind == "pages":
                assert owners_of(m, addr, 1 << n) == {mmap.UNKNOWN_ALLOC}
            else:
                assert owners_of(m, addr, n) == {"vmalloc kmemu_call_return"}
    finally:
        m.restore(snap)


@pytest.mark.kmemu(kasan=True)
def test_kasan_shadow_is_its_own_owner(machine: Machine) -> None:
    m = machine
    v = m.vmalloc(3 * 4096)
    mm = m.memory_map()
    assert m.validate_memory_map(mm) == []
    shadow = m.translate(0xDFFFFC0000000000 + (v >> 3))  # vmalloc's shadow: page allocator
    assert mm.owner_at(shadow >> 12) == mmap.KASAN_SHADOW
    direct = m.translate(0xDFFFFC0000000000 + (0xFFFF888000200000 >> 3))  # memblock's
    assert mm.owner_at(direct >> 12) == mmap.KASAN_SHADOW
    assert mm.counts()[mmap.KASAN_SHADOW] > 256 * 1024 * 1024 // 8 // 4096 - 1


def test_a_long_e820_map_grows_memblock_and_the_census_says_so() -> None:
    """400 RAM pages above 4 GiB, each its own e820 entry: memblock's arrays double
    from memblock twice (128 -> 256 -> 512 regions); the live arrays are named, the
    256-entry one they grew out of stays reserved with no record of why."""
    low = "0 +0x9fc00 usable\n0xf0000 +0x10000 reserved\n0x100000 +0xff00000 usable\n"
    text = low + "".join(f"{(4 << 30) + i * 0x2000:#x} +4K usable\n" for i in range(400))
    m = Machine(e820=parse_map(text))
    m.boot()
    mm = m.memory_map()
    assert m.validate_memory_map(mm) == []
    counts = mm.counts()
    assert counts["memblock: region arrays"] == 2  # the new memory array: 512 * 16 bytes
    assert counts[mmap.MEMBLOCK_UNKNOWN] == 1
    assert counts["memblock: e820 table"] == 3  # 403 entries of 24 bytes
    ram_above_4g = sum(r.count for r in mm if r.pfn >= 1 << 20 and r.owner != mmap.HOLE)
    assert ram_above_4g == 400
