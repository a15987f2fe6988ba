"""Guest RAM costs host memory only where the guest touches it (issue 10, items 4, 5, 9).

RAM is host memory mapped MAP_NORESERVE and handed to Unicorn (``emu.core.ram``);
maps the kernel cannot hold are refused before boot; every guest-memory
accessor checks the range before it makes a host buffer.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emu import BadArgument, HostMemoryError, Machine, PageFault
from emu.core import ram as ram_mod
from emu.firmware.e820 import E820Error, parse_map

GIB = 1 << 30
PAGE_OFFSET = 0xFFFF888000000000
LOW = "0 0x9fc00 usable\n0xf0000 0x100000 reserved\n1M +63M usable\n"

# Boots 64 GiB in a fresh process and reports its peak RSS; touches the top of RAM
# through a snapshot to show the copy-on-write layer covers host-backed RAM.
CHILD = r"""
import json, sys
from emu import Machine
m = Machine.booted(mem="64G")
top = (4 + 61) * (1 << 30) - 4096  # the last page of RAM (61 GiB from 4 GiB up)
m.write_phys(top, b"before")
snap = m.snapshot()
m.write_phys(top, b"after!")
m.restore(snap)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"hwm_kib": hwm, "restored": m.read_phys(top, 6).decode(),
                  "regions": len(list(m.uc.mem_regions())), "state": m.state,
                  "free": m.kmalloc(64) != 0}))
"""


@pytest.mark.slow
def test_64g_boots_with_little_host_memory() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         timeout=300, env=env, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.splitlines()[-1])
    # 16 Mi struct pages of 64 bytes are written at boot (1 GiB); the rest is never touched.
    assert r["hwm_kib"] < 2 * 1024 * 1024, r
    assert r["restored"] == "before" and r["state"] == "ready" and r["free"]
    assert r["regions"] <= ram_mod.MAX_SPANS


def test_ram_high_in_the_physical_space_boots() -> None:
    m = Machine.booted(e820=parse_map(LOW + "200G +32M usable\n"))
    assert m.read_phys(200 * GIB, 8) == m.read_virt(PAGE_OFFSET + 200 * GIB, 8)
    assert "[mem 0x0000003200000000-0x0000003201ffffff] usable" in m.console


@pytest.mark.parametrize("line", ["4G +1T usable", "255G +2G usable"])
def test_ram_above_the_kernel_limit_is_refused_before_boot(line: str) -> None:
    m = Machine(e820=parse_map(LOW + line + "\n"))
    with pytest.raises(E820Error, match=r"above the 256 GiB .* kmemu kernel supports") as e:
        m.boot()
    assert "\n" not in str(e.value) and m.state == "off"


def test_the_kernel_limit_itself_is_accepted() -> None:
    """RAM ending exactly at 256 GiB passes the check (not booted: that needs 4 GiB)."""
    m = Machine(e820=parse_map(LOW + "255G +1G usable\n"))
    m._syms()  # noqa: SLF001
    m._check_capacity()  # noqa: SLF001 - the check boot() runs first


def test_host_memory_shortage_is_one_line_and_the_machine_stays_off(monkeypatch) -> None:
    monkeypatch.setattr(ram_mod, "available_host_memory", lambda: 512 << 20)
    m = Machine(mem="64G")
    with pytest.raises(HostMemoryError, match=r"booting 64 GiB of guest RAM needs about "
                                              r"1\.062 GiB of host memory; the host has 512 MiB"):
        m.boot()
    assert m.state == "off"


def test_refused_host_mapping_is_one_line(monkeypatch) -> None:
    def refuse(*a: object, **k: object) -> None:
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(ram_mod.mmap, "mmap", refuse)
    m = Machine(mem="4G")
    with pytest.raises(HostMemoryError, match=r"the host refused 3 GiB of memory for guest RAM "
                                              r"at 0x0 \(Cannot allocate memory\); the map needs "
                                              r"4 GiB of host address space"):
        m.boot()
    assert m.state == "off"
    monkeypatch.undo()
    assert m.boot().state == "ready"  # nothing was left half done


def test_coalesce_fills_only_the_smallest_holes() -> None:
    regions = [(i * 0x3000, 0x1000) for i in range(100)] + [(1 << 40, 0x1000)]
    spans = ram_mod.coalesce(regions, max_spans=4)
    assert len(spans) == 4
    assert spans[-1] == (1 << 40, 0x1000)  # the largest hole stays a hole
    assert sum(s for _, s in spans) < 0x3000 * 100 + 0x1000
    assert ram_mod.coalesce(regions[:3]) == [(0, 0x1000), (0x3000, 0x1000), (0x6000, 0x1000)]


def test_many_separate_ranges_cost_few_unicorn_mappings() -> None:
    entries = 120
    text = LOW + "".join(f"{4 * GIB + i * 0x2000:#x} +4K usable\n" for i in range(entries))
    m = Machine.booted(e820=parse_map(text))
    assert len(list(m.uc.mem_regions())) <= ram_mod.MAX_SPANS
    assert sum(line.startswith("BIOS-e820:") for line in m.console.splitlines()) == len(m.e820)
    # a hole inside a mapped span is still not RAM for the host side
    with pytest.raises(BadArgument, match="not RAM"):
        m.read_phys(4 * GIB + 0x1000, 8)
    assert m.read_phys(4 * GIB + 0x2000, 8) == bytes(8)


def test_read_phys_checks_the_range_before_making_a_buffer(machine: Machine) -> None:
    t = time.perf_counter()
    with pytest.raises(BadArgument, match=r"physical range 0x0\+0x280000000 is not RAM"):
        machine.read_phys(0, 10 << 30)
    assert time.perf_counter() - t < 5  # not a 10 GiB allocation (was 57 s); not a timing assert
    with pytest.raises(BadArgument, match="not RAM"):
        machine.write_phys(0x10000000 - 4, b"12345678")  # runs past the end of RAM
    with pytest.raises(BadArgument, match="not RAM"):
        machine.read_phys(0xC0000000, 1)


def test_oversized_accesses_are_refused(machine: Machine) -> None:
    with pytest.raises(BadArgument, match="larger than 1024 MiB; access large ranges in pieces"):
        machine.read_virt(PAGE_OFFSET, 2 << 30)
    with pytest.raises(PageFault):  # 300 MiB of a 256 MiB machine: the walk stops first
        machine.read_virt(PAGE_OFFSET, 300 << 20)
    assert len(machine.read_virt(PAGE_OFFSET + 0x100000, 1 << 20)) == 1 << 20


def test_views_read_struct_pages_in_pieces(machine: Machine, monkeypatch) -> None:
    from emu.machine import page_alloc as page_alloc_api
    whole = machine.pages()
    sizes: list[int] = []
    real = Machine.read_virt

    def spy(self: Machine, va: int, n: int) -> bytes:
        sizes.append(n)
        return real(self, va, n)

    monkeypatch.setattr(page_alloc_api, "PAGES_PER_READ", 4096)
    monkeypatch.setattr(Machine, "read_virt", spy)
    pages = machine.pages()
    assert pages == whole and len(sizes) > 1 and max(sizes) <= 4096 * 64


def _many_entries(n: int, *, holes: bool) -> str:
    """LOW's 3 entries, then 4 KiB ranges from 4 GiB: separated by holes, or touching
    with alternating types (which merge into one Unicorn mapping)."""
    step = 0x2000 if holes else 0x1000
    kinds = ("usable",) if holes else ("usable", "reserved")
    return LOW + "".join(f"{4 * GIB + i * step:#x} +4K {kinds[i % len(kinds)]}\n"
                         for i in range(n - 3))


@pytest.mark.slow
@pytest.mark.parametrize("n, holes", [(16384, True), (10_000, False)],
                         ids=["most-with-holes", "10000-touching"])
def test_long_maps_reach_the_kernel_whole(n: int, holes: bool) -> None:
    """Every entry is collected (in batches moved above 1 MiB), printed and used."""
    m = Machine(e820=parse_map(_many_entries(n, holes=holes)))
    assert len(m.e820) == n
    m.boot()
    bi = m.var("boot_info")
    assert int(bi.e820_count) == n
    assert [(int(bi.e820[i].addr), int(bi.e820[i].size), int(bi.e820[i].type))
            for i in (0, 2559, 2560, n - 1)] == [
        (e.base, e.size, e.type) for e in (m.e820.entries[i] for i in (0, 2559, 2560, n - 1))]
    assert [ln for ln in m.console.splitlines() if ln.startswith("BIOS-e820:")] == m.e820.lines()
    usable = [e for e in m.e820 if e.type == 1]
    assert len(m.memblock()["memory"]) == len(usable)  # the arrays grew past 128
    assert len(list(m.uc.mem_regions())) <= (ram_mod.MAX_SPANS if holes else 2)
    assert m.validate_page_alloc() == []
    p = m.alloc_pages("GFP_KERNEL", 0)
    m.free_pages(p, 0)


@pytest.mark.parametrize("n", [16385, 40_000])
def test_longer_maps_are_refused_before_boot(n: int) -> None:
    m = Machine(e820=parse_map(_many_entries(n, holes=True)))
    want = rf"{n} entries \(after merging\), but .* hold at most 16384 \(E820_MAX_ENTRIES\)"
    with pytest.raises(E820Error, match=want):
        m.boot()
    assert m.state == "off"


def test_the_e820_table_fits_where_the_stub_puts_it() -> None:
    """layout.py mirrors bootinfo.h; the batch buffer is one real-mode segment of the
    low RAM every bootable map has, clear of the bounce buffer; the table lies in
    [1 MiB, 9 MiB) (also bootable RAM) past the end of the kernel."""
    import re

    from emu.build import layout as L
    root = Path(__file__).resolve().parents[2]
    header = (root / "kernel/internal/kmemu/bootinfo.h").read_text()
    assert int(re.search(r"#define E820_MAX_ENTRIES (\d+)", header)[1]) == L.E820_MAX
    assert "#define E820_TABLE_PA (8 * SZ_1M - E820_MAX_ENTRIES * 24UL)" in header
    assert L.E820_TABLE == 8 * 2**20 - 24 * L.E820_MAX
    assert L.BOUNCE_END <= L.E820_BATCH and L.E820_BATCH + L.E820_BATCH_BYTES <= 0x90000
    assert L.E820_BATCH % 16 == 0 and L.E820_BATCH_BYTES <= 0x10000
    assert L.E820_BATCH_BYTES % 24 == 0 and L.E820_BATCH_BYTES % 2 == 0  # words for AH=87h
    kernel_end = Machine()._syms().address("__kernel_end") - L.KERNEL_VIRT  # noqa: SLF001
    assert 2**20 < kernel_end <= L.E820_TABLE


# The CLI in a fresh process, which then reports its own peak RSS on stderr.
CLI_CHILD = r"""
import sys
from emu.frontend.cli import main
code = main(sys.argv[1:])
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(f"HWM {hwm}", file=sys.stderr)
sys.exit(code)
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-c", CLI_CHILD, *args], capture_output=True,
                          text=True, timeout=300, cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


@pytest.mark.slow
def test_cli_watermarks_at_64g() -> None:
    out = _cli("info", "watermarks", "--mem", "64G", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    zones = json.loads(out.stdout)
    assert set(zones) == {"DMA", "DMA32", "Normal", "Movable", "Device"}  # 6.1's zone types
    assert zones["Normal"]["min"] > 0 and zones["Movable"]["managed"] == 0
    hwm_kib = int(out.stderr.split("HWM ")[-1])
    assert hwm_kib < 2 * 1024 * 1024


def test_cli_refuses_ram_above_the_kernel_limit_in_one_line(tmp_path: Path) -> None:
    f = tmp_path / "huge.e820"
    f.write_text(LOW + "4G +1T usable\n")
    out = _cli("boot", "--e820", str(f))
    assert out.returncode == 1 and out.stdout == ""
    lines = [ln for ln in out.stderr.splitlines() if not ln.startswith("HWM ")]
    assert lines == ["kmemu: boot failed: e820 map not bootable: usable RAM ends at "
                     "0x10100000000, above the 256 GiB (0x4000000000) the kmemu kernel "
                     "supports (MAX_SECTIONS)"]
