"""Boot: memblock hand-off, zones, watermarks and their formulas, the boot lines."""

from __future__ import annotations

import math
import re

import pytest

from emu import Machine
from emu.kernel import mm

from .helpers import assert_consistent


def linux_watermarks(managed: dict[str, int], min_free_kbytes: int) -> dict[str, tuple]:
    pages_min = min_free_kbytes >> 2
    lowmem = sum(managed.values())
    out = {}
    for name, mp in managed.items():
        mn = pages_min * mp // lowmem if lowmem else 0
        step = max(mn >> 2, mp * 10 // 10000)
        out[name] = (mn, mn + step, mn + 2 * step)
    return out


@pytest.mark.parametrize("mem", ["16M", "256M", "6G"])
def test_watermarks_follow_linux(mem: str) -> None:
    m = Machine.booted(mem=mem)
    zones = m.zones()
    managed = {z.name: z.managed for z in zones}
    lowmem_kb = sum(managed.values()) * 4
    mfk = min(max(math.isqrt(lowmem_kb * 16), 128), 262144)
    assert int(m.var("min_free_kbytes")) == mfk
    assert f"min_free_kbytes: {mfk}" in m.console
    want = linux_watermarks(managed, mfk)
    for z in zones:
        assert (z.watermark["min"], z.watermark["low"], z.watermark["high"]) == want[z.name]
    # lowmem_reserve: managed pages of the zones above, divided by this zone's ratio
    ratios = [256, 256, 32, 0, 0]  # DMA, DMA32, Normal, Movable, Device
    for i, z in enumerate(zones):
        for j in range(5):
            above = sum(zones[k].managed for k in range(i + 1, j + 1))
            expect = above // ratios[i] if j > i and z.managed and ratios[i] else 0
            assert z.lowmem_reserve[j] == expect, (z.name, j)
    assert_consistent(m)


def test_min_free_kbytes_from_the_command_line() -> None:
    m = Machine.booted(cmdline="min_free_kbytes=8192")
    assert int(m.var("min_free_kbytes")) == 8192
    managed = {z.name: z.managed for z in m.zones()}
    want = linux_watermarks(managed, 8192)
    assert {z.name: (z.watermark["min"], z.watermark["low"], z.watermark["high"])
            for z in m.zones()} == want


def test_zone_spans(machine: Machine) -> None:
    zones = {z.name: z for z in machine.zones()}
    # Linux keeps page frame 0 for the BIOS (trim_bios_range): DMA starts at pfn 1
    assert zones["DMA"].start_pfn == 1 and zones["DMA"].end_pfn == 4096
    assert zones["DMA32"].start_pfn == 4096
    assert not zones["Normal"].populated
    assert "  DMA      [mem 0x0000000000001000-0x0000000000ffffff]" in machine.console
    assert "  Normal   empty" in machine.console and "  Device   empty" in machine.console
    assert "Built 1 zonelists, mobility grouping on.  Total pages: " in machine.console


def test_memory_line(machine: Machine) -> None:
    line = re.search(r"Memory: (\d+)K/(\d+)K available \(.*?(\d+)K reserved", machine.console)
    assert line
    avail, total, reserved = map(int, line.groups())
    zones = machine.zones()
    assert total == sum(z.present for z in zones) * 4
    assert reserved == (sum(z.present for z in zones) - sum(z.managed for z in zones)) * 4
    # available is what the buddy lists held then (after the 64 preallocated vmalloc PUD
    # pages, as in Linux's mem_init); since then only the slab caches allocated
    slab_pages = sum(p.has("slab") or p.has("tail") for p in machine.pages()
                     if not p.has("buddy") and not p.has("pcp") and not p.has("reserved"))
    allocated = sum(z.managed - z.free - z.pcp_count for z in zones)
    assert allocated == slab_pages + 64
    assert avail == (sum(z.free + z.pcp_count for z in zones) + slab_pages) * 4


def test_reserved_memory_is_never_free(machine: Machine) -> None:
    pages = {p.pfn: p for p in machine.pages()}
    kernel_start = machine.symbol("_stext") - 0xFFFFFFFF80000000
    kernel_end = machine.symbol("__kernel_end") - 0xFFFFFFFF80000000
    for pfn in [*range(0, 256), *range(kernel_start >> 12, kernel_end >> 12)]:
        assert pages[pfn].has("reserved"), hex(pfn)
    mb = machine.memblock()
    for base, size in mb["reserved"]:
        for pfn in range(base >> 12, (base + size + 4095) >> 12):
            if pfn in pages:
                assert pages[pfn].has("reserved"), hex(pfn)
    assert "reserved:" in mm.format_memblock(mb)


def test_handover_gives_maximal_aligned_blocks(machine: Machine) -> None:
    # After boot nothing is allocated: any two free buddies of the same order
    # would have been merged, and each block is aligned to its order.
    pages = machine.pages()
    free = {(p.pfn, p.private) for p in pages if p.has("buddy")}
    for pfn, order in free:
        assert pfn % (1 << order) == 0
        if order < 10:
            assert (pfn ^ (1 << order), order) not in free


def test_user_map_with_ram_above_4g_has_a_sparse_mem_map(tmp_path) -> None:
    f = tmp_path / "sparse.e820"
    f.write_text("0 0x9fc00 usable\n0x100000 0x4000000 usable\n0x100000000 +16M usable\n")
    m = Machine.booted(e820=f)
    zones = {z.name: z for z in m.zones()}
    # 16 MiB above 4 GiB: its struct pages (and early tables) are memblock'd top-down
    assert zones["Normal"].present == 4096
    assert 3000 < zones["Normal"].managed < 4096
    va = m.alloc_pages("GFP_KERNEL", 10)
    assert m.translate(va) >= 1 << 32  # served from Normal first
    m.free_pages(va, 10)
    assert_consistent(m)
