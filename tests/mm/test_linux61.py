"""kmemu against a real Linux 6.1 booted on the same memory map (tests/data/linux-6.1-256M).

Booted on Linux's e820 map, zone boundaries, spanned and present equal
Linux's; Linux's formulas reproduce Linux's own figures from its managed
counts and kmemu's from kmemu's; every line of zoneinfo, buddyinfo,
pagetypeinfo and slabinfo has the layout of Linux's line of the same kind
(same text, each number starting or ending in the same column, same order).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from emu import Machine
from emu.kernel import mm

REF = Path(__file__).parents[1] / "data" / "linux-6.1-256M"
pytestmark = pytest.mark.kmemu(e820=str(REF / "e820.txt"))


def ref(name: str) -> str:
    return (REF / name).read_text()


def ref_zones() -> dict[str, dict[str, object]]:
    """Per zone of Linux's zoneinfo: the "key value" figures and protection."""
    out: dict[str, dict[str, object]] = {}
    cur: dict[str, object] = {}
    for line in ref("proc_zoneinfo").splitlines():
        if m := re.match(r"Node 0, zone +(\w+)", line):
            cur = out.setdefault(m[1], {})
        elif m := re.match(r"\s+protection: \((.*)\)", line):
            cur["protection"] = [int(v) for v in m[1].split(", ")]
        elif m := re.match(r"\s+(?:pages )?(\w[\w ]*?):?\s+(\d+)$", line):
            cur.setdefault(m[1].strip(), int(m[2]))
    return out


# --- the numbers ----------------------------------------------------------------------


def test_zone_boundaries_equal_linux(machine: Machine) -> None:
    linux = ref_zones()
    zones = {z.name: z for z in machine.zones()}
    assert list(zones) == list(linux)  # DMA, DMA32, Normal, Movable, Device
    for name, z in zones.items():
        assert (z.spanned, z.present) == (linux[name]["spanned"], linux[name]["present"]), name
        if z.populated:
            assert z.start_pfn == linux[name]["start_pfn"], name
    dmesg = ref("dmesg")
    for line in ["  DMA      [mem 0x0000000000001000-0x0000000000ffffff]",
                 "  DMA32    [mem 0x0000000001000000-0x000000000ffdffff]",
                 "  Normal   empty", "  Device   empty", "Movable zone start for each node",
                 "  node   0: [mem 0x0000000000001000-0x000000000009efff]",
                 "Initmem setup node 0 [mem 0x0000000000001000-0x000000000ffdffff]",
                 "On node 0, zone DMA: 1 pages in unavailable ranges",
                 "On node 0, zone DMA: 97 pages in unavailable ranges",
                 "On node 0, zone DMA32: 32 pages in unavailable ranges"]:
        assert line in dmesg and line in machine.console, line
    total = re.search(r"Memory: \d+K/(\d+)K", dmesg)[1]
    assert f"K/{total}K available" in machine.console


def zone_highsize(low: int, managed: int, batch: int, fraction: int = 0) -> int:
    total = managed // fraction if fraction else low
    return max(total // 1, batch << 2)  # one CPU to split across


def zone_batchsize(managed: int) -> int:
    batch = max(min(managed >> 10, 256) // 4, 1)
    batch += batch // 2
    return max((1 << (batch.bit_length() - 1)) - 1, 1)


def linux_figures(managed: list[int], min_free_kbytes: int) -> list[dict[str, object]]:
    """Linux 6.1's watermarks, protection, pcp and vm stats threshold per zone type."""
    ratio = [256, 256, 32, 0, 0]
    lowmem = sum(managed)
    out = []
    for i, mp in enumerate(managed):
        mn = (min_free_kbytes >> 2) * mp // lowmem
        step = max(mn >> 2, mp * 10 // 10000)
        prot = [0] * 5
        for j in range(i + 1, 5):
            prot[j] = sum(managed[i + 1:j + 1]) // ratio[i] if ratio[i] and mp else 0
        batch = zone_batchsize(mp)
        out.append({"min": mn, "low": mn + step, "high": mn + 2 * step, "protection": prot,
                    "batch": batch, "high_pcp": zone_highsize(mn + step, mp, batch),
                    "threshold": mm.vm_stats_threshold(mp)})
    return out


def test_linux_formulas_give_linux_figures() -> None:
    """The formulas below give Linux's own numbers.  Linux computed min_free_kbytes,
    the watermarks and protection at boot, before its initrd and init memory were
    freed, from a smaller DMA32 managed count than zoneinfo shows now: one such
    count must give all of them at once."""
    linux = ref_zones()
    mfk = int(ref("proc_sys_vm_min_free_kbytes"))
    assert ref("proc_sys_vm_percpu_pagelist_high_fraction").strip() == "0"
    assert ref("proc_sys_vm_watermark_scale_factor").strip() == "10"
    dma = int(linux["DMA"]["managed"])

    def fits(dma32: int) -> bool:
        managed = [dma, dma32, 0, 0, 0]
        if mfk != math.isqrt(sum(managed) * 4 * 16):
            return False
        return all((linux[n]["min"], linux[n]["low"], linux[n]["high"],
                    linux[n]["protection"]) == (w["min"], w["low"], w["high"], w["protection"])
                   for n, w in zip(linux, linux_figures(managed, mfk), strict=True))

    assert any(fits(m) for m in range(40000, int(linux["DMA32"]["managed"]) + 1))
    text = ref("proc_zoneinfo")
    assert re.findall(r"high:  (\d+)", text) == ["41", "535"]  # zone_highsize
    assert re.findall(r"batch: (\d+)", text) == ["1", "15"]
    assert re.findall(r"vm stats threshold: (\d+)", text) == ["2", "4"]
    assert [zone_highsize(int(linux[n]["low"]), int(linux[n]["managed"]),
                          zone_batchsize(int(linux[n]["managed"]))) for n in ("DMA", "DMA32")] \
        == [41, 535]
    assert [mm.vm_stats_threshold(int(linux[n]["managed"])) for n in ("DMA", "DMA32")] == [2, 4]


def test_kmemu_figures_follow_linux_formulas(machine: Machine) -> None:
    zones = machine.zones()
    managed = [z.managed for z in zones]
    mfk = int(machine.var("min_free_kbytes"))
    assert mfk == math.isqrt(sum(managed) * 4 * 16)
    for z, want in zip(zones, linux_figures(managed, mfk), strict=True):
        got = {"min": z.watermark["min"], "low": z.watermark["low"],
               "high": z.watermark["high"], "protection": z.lowmem_reserve}
        assert got == {k: want[k] for k in got}, z.name
        if z.populated:
            assert (z.pcp_batch, z.pcp_high, z.stat_threshold) == (
                want["batch"], want["high_pcp"], want["threshold"]), z.name


def test_percpu_pagelist_high_fraction(machine: Machine) -> None:
    snap = machine.snapshot()
    machine.set_percpu_pagelist_high_fraction(8)
    for z in machine.zones():
        if z.populated:
            assert z.pcp_high == max(z.managed // 8, z.pcp_batch * 4)
    with pytest.raises(Exception, match="0 or at least 8"):
        machine.set_percpu_pagelist_high_fraction(7)
    machine.set_percpu_pagelist_high_fraction(0)
    assert all(z.pcp_high == max(z.watermark["low"], 4 * z.pcp_batch)
               for z in machine.zones() if z.populated)
    machine.set_min_free_kbytes(8192)  # watermarks move, pcp high follows
    z = machine.zones()[1]
    assert z.pcp_high == z.watermark["low"]
    machine.restore(snap)


# --- the layout -----------------------------------------------------------------------

NUM = re.compile(r"\d+")


def shape(line: str) -> tuple[str, list[tuple[int, int]]]:
    """The line's text with numbers blanked, and each number's (start, end) column."""
    return NUM.sub("#", line), [(m.start(), m.end()) for m in NUM.finditer(line)]


def same_layout(mine: str, linux: str) -> bool:
    """Same words in the same places; each number starts or ends where Linux's does
    (left-aligned "key value" fields, or right-aligned table columns)."""
    t1, n1 = shape(mine)
    t2, n2 = shape(linux)
    if re.sub(" +", " ", t1) != re.sub(" +", " ", t2) or len(n1) != len(n2):
        return False
    return all(a[0] == b[0] or a[1] == b[1] for a, b in zip(n1, n2, strict=True))


def match_lines(mine: list[str], linux: list[str]) -> list[str]:
    """Match every kmemu line, in order, to a Linux line of the same layout; the
    Linux lines left over."""
    skipped, i = [], 0
    for line in mine:
        while i < len(linux) and not same_layout(line, linux[i]):
            skipped.append(linux[i])
            i += 1
        assert i < len(linux), f"no Linux line like {line!r}"
        i += 1
    return skipped + linux[i:]


def test_zoneinfo_layout(machine: Machine) -> None:
    left = match_lines(machine.zoneinfo().splitlines(), ref("proc_zoneinfo").splitlines())
    # what kmemu does not have: per-node LRU statistics, vm and NUMA counters
    for line in left:
        assert line == "  per-node stats" or re.match(r"      [a-z_]+ +\d+$", line), line


def test_buddyinfo_layout(machine: Machine) -> None:
    mine, linux = machine.buddyinfo().splitlines(), ref("proc_buddyinfo").splitlines()
    assert len(mine) == len(linux) and match_lines(mine, linux) == []


def test_pagetypeinfo_layout(machine: Machine) -> None:
    mine, linux = machine.pagetypeinfo().splitlines(), ref("proc_pagetypeinfo").splitlines()
    assert len(mine) == len(linux) and match_lines(mine, linux) == []
    # the DMA zone's pageblocks: one Unmovable (its first block, below pfn 1's zone
    # start, is never marked Movable), the rest Movable, as in Linux
    assert mine[-2] == linux[-2]
    blocks = {ln.split()[3]: sum(map(int, ln.split()[4:])) for ln in mine[-2:]}
    assert blocks == {ln.split()[3]: sum(map(int, ln.split()[4:])) for ln in linux[-2:]}


def slab_rows(text: str) -> dict[str, list[int]]:
    return {ln.split()[0]: [int(v) for v in ln.split()[1:6]]
            for ln in text.splitlines()[2:]}


def test_slabinfo_layout_and_kmalloc_caches(machine: Machine) -> None:
    mine_text, linux_text = machine.slabinfo(), ref("proc_slabinfo")
    mine, linux = mine_text.splitlines(), linux_text.splitlines()
    assert mine[:2] == linux[:2]
    for line in mine[2:]:
        assert same_layout(line, linux[2]) or any(same_layout(line, ln) for ln in linux[2:]), line
    m_rows, l_rows = slab_rows(mine_text), slab_rows(linux_text)
    kmalloc = [n for n in m_rows if "kmalloc" in n]
    assert len(kmalloc) >= 39
    for name in kmalloc:  # objsize, objperslab, pagesperslab
        assert m_rows[name][2:] == l_rows[name][2:], name
    # the same order as Linux's list (newest cache first)
    assert kmalloc == [n for n in l_rows if n in m_rows and "kmalloc" in n]


# --- other sizes: Linux's rules where the reference has no file -------------------------


@pytest.mark.parametrize("mem", ["1G", "6G"])
def test_other_sizes_follow_linux_rules(mem: str) -> None:
    from emu.frontend.pytest_plugin import booted_machine
    m = booted_machine(mem=mem)
    zones = {z.name: z for z in m.zones()}
    # pfn 0 is the BIOS's; DMA32 ends at 4 GiB when RAM goes above it (the PCI
    # hole is spanned, not present: Linux shows 1044480 spanned at 6 GiB)
    assert (zones["DMA"].start_pfn, zones["DMA"].spanned) == (1, 4095)
    top = max(b + s for b, s in m.memblock()["memory"]) >> 12
    dma32_end = min(top, 1 << 20)
    assert zones["DMA32"].spanned == dma32_end - 4096
    if top > 1 << 20:
        assert zones["DMA32"].spanned == 1044480
        assert (zones["Normal"].start_pfn, zones["Normal"].spanned) == (1 << 20, top - (1 << 20))
        assert zones["DMA32"].present < zones["DMA32"].spanned
    managed = [z.managed for z in m.zones()]
    figures = linux_figures(managed, int(m.var("min_free_kbytes")))
    for z, want in zip(m.zones(), figures, strict=True):
        if z.populated:
            assert (z.watermark["low"], z.lowmem_reserve, z.pcp_batch, z.pcp_high,
                    z.stat_threshold) == (want["low"], want["protection"], want["batch"],
                                          want["high_pcp"], want["threshold"]), z.name
    assert "mobility grouping on" in m.console
    vm_total = sum(max(z.managed - z.watermark["high"], 0) for z in m.zones()[:3])
    assert f"Total pages: {vm_total}" in m.console
    assert m.validate_page_alloc() == []


def test_no_mobility_grouping_below_ten_megabytes() -> None:
    # Linux: fewer pages above the high watermarks than a pageblock per migrate type
    # (2560) turns grouping off; a 16 MiB machine with a 4 MiB reserve has that few
    m = Machine.booted(mem="16M", cmdline="min_free_kbytes=4096")
    z = m.zones()[0]
    assert z.managed - z.watermark["high"] < 512 * 5
    assert "mobility grouping off" in m.console
    va = m.alloc_pages("GFP_HIGHUSER_MOVABLE", 0)  # every request is Unmovable then
    assert m.pageblocks()[(m.translate(va) >> 12) >> 9] & 7 == 0
    m.free_pages(va, 0)
    assert m.validate_page_alloc() == []
