"""Booting under different memory maps; what the kernel saw versus what Python gave."""

from __future__ import annotations

from pathlib import Path

import pytest

from emu import Machine
from emu.firmware.e820 import E820Error, default_map, parse_map

HOLEY_MAP = """\
# low RAM, a hole, two RAM ranges with a gap, an ACPI range, RAM above 4 GiB
0x0        0x9fc00     usable
0x9fc00    +1K         reserved
0xf0000    0x100000    reserved
0x100000   0x2000000   usable
0x2800000  0x4000000   usable
0x4000000  +64K        acpi
0x100000000 +32M       usable
"""


def kernel_e820(m: Machine) -> list[tuple[int, int, int]]:
    bi = m.var("boot_info")
    return [(int(bi.e820[i].addr), int(bi.e820[i].size), int(bi.e820[i].type))
            for i in range(int(bi.e820_count))]


@pytest.mark.parametrize("mem", ["16M", "256M", "6G"])
def test_kernel_sees_the_firmware_map(mem: str) -> None:
    m = Machine.booted(mem=mem)
    assert kernel_e820(m) == default_map(mem).to_bios_entries()
    for line in default_map(mem).lines():
        assert line in m.console
    assert "kmemu: host present, waiting for requests" in m.console


def test_6g_has_pci_hole_and_ram_above_4g() -> None:
    m = Machine.booted(mem="6G")
    usable = [(b, s) for b, s, t in kernel_e820(m) if t == 1]
    assert (0x100000000, 3 << 30) in usable
    assert not any(b < 4 << 30 and b + s > 3 << 30 for b, s in usable)
    # the top of RAM is reachable through the direct map
    top = 0x100000000 + (3 << 30) - 8
    va = 0xFFFF888000000000 + top
    assert m.translate(va) == top
    m.write_virt(va, b"kmemu!!!")
    assert m.read_phys(top, 8) == b"kmemu!!!"


def test_user_map_with_holes(tmp_path: Path) -> None:
    f = tmp_path / "holes.e820"
    f.write_text(HOLEY_MAP)
    m = Machine.booted(e820=f)
    assert kernel_e820(m) == parse_map(HOLEY_MAP).to_bios_entries()
    # RAM in the hole is not in the direct map
    with pytest.raises(Exception, match="not present"):
        m.translate(0xFFFF888000000000 + 0x2400000)
    assert m.call("kmemu_selftest") == 0


def test_cmdline_reaches_the_kernel() -> None:
    m = Machine.booted(cmdline="slab_debug=FZPU min_free_kbytes=2048")
    assert "Command line: slab_debug=FZPU min_free_kbytes=2048" in m.console
    assert m.var("boot_info").cmdline.string_() == b"slab_debug=FZPU min_free_kbytes=2048"


def test_bad_configurations_are_refused_before_boot(tmp_path: Path) -> None:
    with pytest.raises(E820Error, match="16 MiB"):
        Machine(mem="8M")
    tiny = tmp_path / "tiny.e820"
    tiny.write_text("0x0 0x9fc00 usable\n0x100000 0x400000 usable\n")
    with pytest.raises(E820Error):
        Machine(e820=tiny)
    with pytest.raises(E820Error, match="overlap"):
        Machine(e820=_overlap(tmp_path))
    with pytest.raises(Exception, match="command line"):
        Machine(cmdline="x" * 600)


def _overlap(tmp_path: Path) -> Path:
    f = tmp_path / "overlap.e820"
    f.write_text("0x0 0x9fc00 usable\n0x100000 0x4000000 usable\n0x200000 0x300000 reserved\n")
    return f


def test_boot_log_is_deterministic() -> None:
    a, b = Machine.booted(), Machine.booted()
    assert a.console == b.console
    assert a.dmesg() == a.console


def test_selftests_pass_under_kmemu(machine: Machine) -> None:
    assert machine.call("kmemu_selftest") == 0
    assert "kmemu selftest: 15 passed, 0 failed" in machine.console


def test_boot_twice_is_refused(machine: Machine) -> None:
    with pytest.raises(Exception, match="boot"):
        machine.boot()
