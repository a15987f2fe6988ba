"""Guest memory by physical and virtual address; the walker against the guest's own tables."""

from __future__ import annotations

import pytest

from emu import BadArgument, Machine, PageFault
from emu.kernel import pagetable

PAGE_OFFSET = 0xFFFF888000000000
KERNEL_VIRT = 0xFFFFFFFF80000000


def test_direct_map_translates_to_phys(machine: Machine) -> None:
    for pa in (0x1000, 0x100000, 0x200000, 0x5000000, 0xFFBF000):
        assert machine.translate(PAGE_OFFSET + pa + 0x123) == pa + 0x123


def test_kernel_image_mapping(machine: Machine) -> None:
    kmain = machine.symbol("kmain")
    assert machine.translate(kmain) == kmain - KERNEL_VIRT
    assert machine.translate(kmain, "exec") == kmain - KERNEL_VIRT
    t = machine.walk(kmain)
    # 4 KiB pages, so each section gets its own protection (strict kernel RWX)
    assert t.page_size == 4096 and t.global_ and not t.writable and not t.nx
    with pytest.raises(PageFault, match="not writable"):
        machine.translate(kmain, "write")


def test_direct_map_is_nx_and_covers_exactly_usable_ram(machine: Machine) -> None:
    with pytest.raises(PageFault, match="not executable"):
        machine.translate(PAGE_OFFSET + 0x200000, "exec")
    read = machine._read_u64  # noqa: SLF001 - the walker needs a physical reader
    mapped = []
    for va, pa, size, flags in pagetable.iter_mappings(read, machine.cr3, PAGE_OFFSET,
                                                        PAGE_OFFSET + (1 << 40)):
        assert va - PAGE_OFFSET == pa and flags & pagetable.PTE_NX
        if mapped and mapped[-1][1] == pa:
            mapped[-1] = (mapped[-1][0], pa + size)
        else:
            mapped.append((pa, pa + size))
    # usable RAM less page frame 0, which Linux leaves to the BIOS (trim_bios_range)
    usable = [(max(e.base, 0x1000), e.end) for e in machine.e820 if e.type == 1]
    assert mapped == [((b + 0xFFF) & ~0xFFF, (e & ~0xFFF)) for b, e in usable]


def test_null_and_low_addresses_are_unmapped(machine: Machine) -> None:
    with pytest.raises(PageFault) as ei:
        machine.translate(0)
    assert ei.value.level == "PGD" and "not present" in str(ei.value)
    with pytest.raises(PageFault, match="non-canonical"):
        machine.read_virt(0x0000800000000000, 8)


def test_fault_level_names_where_the_walk_stopped(machine: Machine) -> None:
    # inside the direct map's PGD slot but past the end of RAM: the PUD is empty
    with pytest.raises(PageFault) as ei:
        machine.translate(PAGE_OFFSET + (300 << 30))
    assert ei.value.level == "PUD"


def test_read_write_virt_and_phys_agree(machine: Machine) -> None:
    va = PAGE_OFFSET + 0x3000000 - 4  # straddles a page (and a 2M page) boundary
    machine.write_virt(va, b"ABCDEFGH")
    assert machine.read_phys(0x3000000 - 4, 8) == b"ABCDEFGH"
    machine.write_phys(0x3000000, b"xy")
    assert machine.read_virt(va, 8) == b"ABCDxyGH"
    assert machine.read_u64(va) == int.from_bytes(b"ABCDxyGH", "little")


def test_partial_writes_never_happen(machine: Machine) -> None:
    top = PAGE_OFFSET + machine.e820.ram_top
    before = machine.read_virt(top - 4, 4)
    with pytest.raises(PageFault):
        machine.write_virt(top - 4, b"12345678")
    assert machine.read_virt(top - 4, 4) == before


def test_bad_addresses(machine: Machine) -> None:
    with pytest.raises(BadArgument, match="not RAM"):
        machine.read_phys(0xC0000000, 8)  # the PCI hole of a 256 MiB machine is not RAM
    with pytest.raises(BadArgument):
        machine.read_phys(-1, 8)
    with pytest.raises(BadArgument):
        machine.read_virt(PAGE_OFFSET, -1)
    with pytest.raises(BadArgument):
        machine.translate("kmain")  # type: ignore[arg-type]
    assert machine.call("kmemu_test_nop") == 0


def test_typed_views(machine: Machine) -> None:
    bi = machine.var("boot_info")
    assert int(bi.e820_count) == len(machine.e820)
    assert int(bi.magic) == 0x49424D4B
    ptr = machine.obj("struct boot_info *", machine.symbol("boot_info"))
    assert int(ptr.e820_count) == len(machine.e820)
    assert int(machine.var("preempt_count")) == 0
    with pytest.raises(BadArgument, match="no kernel variable"):
        machine.var("no_such_variable")
    with pytest.raises(BadArgument, match="unknown kernel type"):
        machine.obj("struct no_such_struct", 0)


def test_typed_views_read_live_memory(machine: Machine) -> None:
    machine.raise_irq(0x30)
    assert int(machine.var("irq_test_record").count) == 1
    machine.raise_irq(0x30)
    assert int(machine.var("irq_test_record").count) == 2
