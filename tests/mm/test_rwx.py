"""Strict kernel RWX (issue 17): the image mapped by section, CR0.WP, the W+X check,
oopses on writes to text and rodata, and the self-tests that check it all in the guest.

Permissions are read back through the host's page-table walker, independently of
the kernel's own checker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emu import Machine
from emu.core.errors import PageFault
from emu.kernel.pagetable import PTE_NX, PTE_RW, iter_mappings
from emu.machine.core import GuestOops

SRC = Path(__file__).resolve().parent.parent / "modules" / "src"
PAGE_OFFSET = 0xFFFF888000000000
KERNEL_VIRT = 0xFFFFFFFF80000000


def wx_pages(m: Machine) -> list[int]:
    """Every leaf mapped writable and executable, as 4 KiB page counts per leaf."""
    return [va for va, _pa, size, flags in iter_mappings(m._read_u64, m.cr3)  # noqa: SLF001
            if flags & PTE_RW and not flags & PTE_NX for _ in range(size // 4096)]


def prot(m: Machine, va: int) -> tuple[bool, bool]:
    t = m.walk(va)
    return t.writable, t.nx


def check_sections(m: Machine) -> None:
    s = m.symbol
    for name in ("_stext", "kmalloc", "kmain"):
        assert prot(m, s(name)) == (False, False), name            # text RX
    for name in ("__start_rodata", "kmemu_banner", "__kallsyms_start"):
        assert prot(m, s(name)) == (False, True), name             # rodata R, NX
    for name in ("_sdata", "boot_info", "__bss_start"):
        assert prot(m, s(name)) == (True, True), name              # data/bss RW, NX
    for name in ("kmalloc", "kmemu_banner"):                       # the direct-map alias
        assert prot(m, PAGE_OFFSET + s(name) - KERNEL_VIRT) == (False, True), name
    assert prot(m, PAGE_OFFSET + s("boot_info") - KERNEL_VIRT) == (True, True)
    assert prot(m, PAGE_OFFSET + 0x8000000) == (True, True)        # plain direct map
    assert wx_pages(m) == []
    for b in ("_stext", "__start_rodata", "__end_rodata", "_sdata", "__kernel_end"):
        assert s(b) % 4096 == 0, b                                 # page-aligned boundaries


def test_every_section_before_and_after_vmalloc_vfree_and_modules(machine: Machine) -> None:
    assert machine.symbol("_stext") < machine.symbol("__start_rodata") < \
        machine.symbol("__end_rodata") == machine.symbol("_sdata")
    check_sections(machine)
    p = machine.call("vmalloc", 3 * 4096)
    assert prot(machine, p) == (True, True)                        # vmalloc NX
    check_sections(machine)
    machine.call("vfree", p)
    with pytest.raises(PageFault):
        machine.walk(p)                                            # no PTE maps the area
    check_sections(machine)
    mod = machine.load_module(SRC / "mydev.c")
    assert prot(machine, mod.sections[".text"]) == (False, False)
    assert prot(machine, mod.sections[".rodata"]) == (False, True)
    assert prot(machine, mod.sections[".data"]) == (True, True)
    check_sections(machine)
    mod.unload()
    check_sections(machine)


def test_boot_log_says_what_linux_says(machine: Machine) -> None:
    size = (machine.symbol("__end_rodata") - machine.symbol("_stext")) >> 10
    log = machine.console
    assert f"\nWrite protecting the kernel read-only data: {size}k\n" in log
    assert "\nx86/mm: Checked W+X mappings: passed, no W+X pages found.\n" in log
    assert log.index("Write protecting") < log.index("Checked W+X") < log.index("kmemu: host")
    assert machine.uc.reg_read(__import__("unicorn").x86_const.UC_X86_REG_CR0) & (1 << 16)


def test_translate_refuses_text_writes_and_data_execution(machine: Machine) -> None:
    with pytest.raises(PageFault, match="not writable at PTE"):
        machine.translate(machine.symbol("kmalloc"), access="write")
    with pytest.raises(PageFault, match="not writable"):
        machine.translate(machine.symbol("kmemu_banner"), access="write")
    for name in ("boot_info", "kmemu_banner"):
        with pytest.raises(PageFault, match="not executable at PTE"):
            machine.translate(machine.symbol(name), access="exec")
    machine.translate(machine.symbol("kmalloc"), access="exec")
    machine.translate(machine.symbol("boot_info"), access="write")


def test_the_debugger_may_still_write_text(machine: Machine) -> None:
    at = machine.symbol("kmemu_banner")
    machine.write_virt(at, b"K")                                   # as gdb's M packet would
    assert machine.read_virt(at, 1) == b"K"
    machine.write_virt(at, b"k")
    assert machine.call("kmemu_selftest") == 0


PF_LINES = (
    r"BUG: unable to handle page fault for address: {addr:016x}\n"
    r"#PF: supervisor write access in kernel mode\n"
    r"#PF: error_code\(0x0003\) - permissions violation\n"
    r"PGD [0-9a-f]+ P4D [0-9a-f]+ PUD [0-9a-f]+ PMD [0-9a-f]+ PTE {pte}\n"
    r"Oops: 0003 \[#1\] NOPTI\n")


@pytest.mark.parametrize("name,section", [("kmalloc", ".text"), ("kmemu_banner", ".rodata")])
def test_writes_to_text_and_rodata_oops(machine: Machine, name: str, section: str) -> None:
    snap = machine.snapshot()
    addr = machine.symbol(name)
    pte = f"{machine.walk(addr).steps[-1].entry:x}"
    with pytest.raises(GuestOops) as ei:
        machine.call("kmemu_test_fault", addr, 1)
    e = ei.value
    assert re.search(PF_LINES.format(addr=addr, pte=pte), e.console), e.console
    assert e.where == f"{section} of the kernel image"
    assert (e.vector, e.address, e.error_code) == (14, addr, 3)
    machine.restore(snap)
    assert machine.call("kmemu_selftest") == 0                    # usable after restore()


def test_write_to_direct_map_alias_and_module_rodata_oops(machine: Machine) -> None:
    snap = machine.snapshot()
    alias = PAGE_OFFSET + machine.symbol("kmemu_banner") - KERNEL_VIRT
    with pytest.raises(GuestOops) as ei:
        machine.call("kmemu_test_fault", alias, 1)
    assert ei.value.where == ".rodata of the kernel image (its direct-map alias)"
    machine.restore(snap)
    mod = machine.load_module(SRC / "mydev.c")
    with pytest.raises(GuestOops) as ei:
        machine.call("kmemu_test_fault", mod.sections[".rodata"], 1)
    assert "#PF: error_code(0x0003) - permissions violation" in ei.value.console
    assert ei.value.where == ".rodata of module mydev"
    machine.restore(snap)


def test_execute_data_oopses_as_nx(machine: Machine) -> None:
    snap = machine.snapshot()
    with pytest.raises(GuestOops) as ei:
        machine.call(machine.symbol("boot_info"))
    out = ei.value.console
    assert "kernel tried to execute NX-protected page - exploit attempt? (uid: 0)" in out
    assert "#PF: supervisor instruction fetch in kernel mode" in out
    assert "#PF: error_code(0x0011) - permissions violation" in out
    assert ei.value.where == ".bss of the kernel image"  # boot_info is bss
    machine.restore(snap)


def test_wx_check_counts_and_warns(machine: Machine) -> None:
    snap = machine.snapshot()
    assert machine.call("ptdump_walk_check_wx", 0) == 0
    p = machine.call("vmalloc", 2 * 4096)
    pte_pa = machine.walk(p).steps[-1].entry_pa                   # make one page W+X
    entry = machine.read_u64(PAGE_OFFSET + pte_pa)
    machine.write_virt(PAGE_OFFSET + pte_pa, (entry & ~PTE_NX).to_bytes(8, "little"))
    assert wx_pages(machine) == [p]
    assert machine.call("ptdump_walk_check_wx", 1) == 1
    assert "x86/mm: Found insecure W+X mapping at address" in machine.console
    assert "x86/mm: Checked W+X mappings: FAILED, 1 W+X pages found." in machine.console
    machine.restore(snap)


def test_selftests_under_kmemu_and_the_broken_one() -> None:
    m = Machine.booted(cmdline="kmemu_test=selftest_fail")
    assert m.call("kmemu_selftest") == 1
    assert "selftest: deliberately broken (kmemu_test) FAILED" in m.console
    assert "kmemu selftest: 15 passed, 1 failed" in m.console
