"""Bad input that used to give a silent wrong result or a raw Python error
(issue 10): each case is refused with a one-line KmemuError, before anything
runs, and the machine stays usable."""

from __future__ import annotations

import pytest

from emu import BadArgument, Machine, ModuleError, PageFault
from emu.build.abi import internal_vectors
from emu.debug.breakpoints import LocationError
from emu.firmware.e820 import default_map
from emu.machine.irq import IrqError

PAGE_OFFSET = 0xFFFF888000000000
CALL_VECTOR = 0xEC  # kernel/include/kmemu.h


def usable(m: Machine) -> None:
    assert m.state == "ready"
    assert m.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91


# --- argument ranges from the DWARF parameter types ------------------------------------

def test_order_beyond_unsigned_int_is_refused(machine: Machine) -> None:
    """``unsigned int order``: 2**32 would reach the kernel as 0 and return a page."""
    with pytest.raises(BadArgument, match=r"__get_free_pages\(\) argument 2 \(order, "
                       r"unsigned int\) must be in 0\.\.0xffffffff, got 4294967296"):
        machine.alloc_pages("GFP_KERNEL", 1 << 32)
    with pytest.raises(BadArgument, match=r"alloc_pages\(\) argument 2 \(order"):
        machine.alloc_page_struct("GFP_KERNEL", 1 << 32)  # an alias: DWARF of __alloc_pages
    with pytest.raises(BadArgument, match="order"):
        machine.free_pages(PAGE_OFFSET, 1 << 40)
    usable(machine)


def test_negative_for_unsigned_is_refused(machine: Machine) -> None:
    with pytest.raises(BadArgument, match=r"argument 2 \(order, unsigned int\).*got -1"):
        machine.alloc_pages("GFP_KERNEL", -1)
    with pytest.raises(BadArgument, match=r"kmalloc\(\) argument 1 \(size, size_t\)"):
        machine.kmalloc(-64)
    with pytest.raises(BadArgument, match=r"kfree\(\) argument 1 \(p, void \*\)"):
        machine.kfree(-4096)
    with pytest.raises(BadArgument, match=r"kmem_cache_create\(\) argument 2 \(size, u32\)"):
        machine.kmem_cache_create("too-big", 1 << 32)
    usable(machine)


def test_by_address_calls_are_checked_too(machine: Machine) -> None:
    with pytest.raises(BadArgument, match=r"__get_free_pages\(\) argument 2"):
        machine.call(machine.symbol("__get_free_pages"), 0xCC0, 1 << 32)


def test_signed_parameters_take_negative_values(machine: Machine) -> None:
    """``memset(void *s, int c, size_t n)``: c = -1 is an int; 2**31 is not."""
    buf = machine.symbol("kmemu_arg_buf")
    machine.call("memset", buf, -1, 8)
    assert machine.read_virt(buf, 8) == b"\xff" * 8
    machine.call("memset", buf, -(1 << 31), 8)  # the low byte: 0
    assert machine.read_virt(buf, 8) == bytes(8)
    with pytest.raises(BadArgument, match=r"memset\(\) argument 2 \(c, int\) must be in "
                       r"-2147483648\.\.2147483647, got 2147483648"):
        machine.call("memset", buf, 1 << 31, 8)
    with pytest.raises(BadArgument, match=r"argument 2 \(c, int\)"):
        machine.call("memset", buf, -(1 << 31) - 1, 8)


def test_debugger_calls_are_checked_the_same_way(debug_session) -> None:  # noqa: ANN001
    with pytest.raises(BadArgument, match=r"__get_free_pages\(\) argument 2 \(order"):
        debug_session.call("__get_free_pages", ["GFP_KERNEL", str(1 << 32)])


# --- run limits ---------------------------------------------------------------------

@pytest.mark.parametrize("max_insns", [0, -1, 1.5, "10", True])
def test_max_insns_must_be_positive(machine: Machine, max_insns: object) -> None:
    with pytest.raises(BadArgument, match="max_insns must be a positive instruction count"):
        machine.call("kmemu_test_nop", max_insns=max_insns)
    usable(machine)


@pytest.mark.parametrize("seconds", [0, -1, "x", float("nan"), False])
def test_budget_seconds_must_be_positive(machine: Machine, seconds: object) -> None:
    with pytest.raises(BadArgument, match="budget_seconds must be a positive number"):
        machine.call("kmemu_test_nop", budget_seconds=seconds)
    usable(machine)


def test_budget_seconds_accepts_numbers_and_inf(machine: Machine) -> None:
    assert machine.call("kmemu_test_nop", budget_seconds=5) == 0
    assert machine.call("kmemu_test_nop", budget_seconds=float("inf"), max_insns=1000) == 0


def test_machine_budget_is_checked() -> None:
    with pytest.raises(BadArgument, match="budget_seconds"):
        Machine(budget_seconds=-1)


# --- interrupts ---------------------------------------------------------------------

def test_kmemus_own_vector_is_refused(machine: Machine) -> None:
    """0xec runs the host's call request; raised by hand the guest called NULL."""
    for after in (None, 100):
        with pytest.raises(IrqError, match="vector 0xec is kmemu's own"):
            machine.raise_irq(CALL_VECTOR, after=after)
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6, context="irq") == 91  # still used
    assert not [e for e in machine.events if e.kind == "oops"]
    usable(machine)


def test_the_debuggers_irq_is_refused_the_same_way(debug_session) -> None:  # noqa: ANN001
    with pytest.raises(IrqError, match="vector 0xec is kmemu's own"):
        debug_session.irq(CALL_VECTOR)
    assert "delivered" in debug_session.irq(0x30).text


def test_refused_vectors_come_from_the_kernel_header(machine: Machine) -> None:
    assert internal_vectors() == {CALL_VECTOR: "KMEMU_CALL_VECTOR"}
    machine.raise_irq(0x30)  # the test vector is a user's to raise
    assert int(machine.var("irq_test_record").vector) == 0x30


# --- breakpoints --------------------------------------------------------------------

@pytest.mark.parametrize("where", [0xDEAD000000000000, "0xdead000000000000",
                                   0x0000800000000000, "0x0000800000000000"])
def test_break_at_non_canonical_is_refused(machine: Machine, where: object) -> None:
    with pytest.raises(LocationError, match="not canonical"):
        machine.break_at(where)  # type: ignore[arg-type]
    usable(machine)


def test_break_at_past_64_bits_is_refused(machine: Machine) -> None:
    with pytest.raises(LocationError, match="not a 64-bit address"):
        machine.break_at("kmemu_test_nop+0x100000000000")


# --- constructor --------------------------------------------------------------------

def test_mem_and_e820_together_are_refused() -> None:
    with pytest.raises(BadArgument, match=r"both mem='abc' and e820= were given"):
        Machine(mem="abc", e820=default_map("256M"))
    with pytest.raises(BadArgument, match="both mem='512M'"):
        Machine("512M", default_map("256M"))


@pytest.mark.parametrize("e820", [[(0, 1 << 20, 1)], 12345, b"0 1M usable", 1.5])
def test_e820_of_the_wrong_type_is_refused(e820: object) -> None:
    with pytest.raises(BadArgument, match="e820 must be a map file's path or an E820Map"):
        Machine(e820=e820)  # type: ignore[arg-type]


def test_e820_alone_and_mem_alone_still_work() -> None:
    assert Machine(e820=default_map("512M")).mem == default_map("512M").usable_bytes
    assert Machine("512M").mem == 512 << 20
    assert Machine().mem == 256 << 20


# --- memory accessors ---------------------------------------------------------------

@pytest.mark.parametrize("data", ["abc", 12, None, [1, 2]])
def test_write_needs_bytes(machine: Machine, data: object) -> None:
    va = machine.kmalloc(64)
    with pytest.raises(BadArgument, match="data must be bytes"):
        machine.write_virt(va, data)  # type: ignore[arg-type]
    with pytest.raises(BadArgument, match="data must be bytes"):
        machine.write_phys(machine.translate(va), data)  # type: ignore[arg-type]
    machine.write_virt(va, bytearray(b"ok"))
    machine.write_virt(va + 2, memoryview(b"!!"))
    assert machine.read_virt(va, 4) == b"ok!!"


def test_translate_access_is_checked(machine: Machine) -> None:
    with pytest.raises(BadArgument, match="access must be one of read, write, exec; "
                       "got 'exec!'"):
        machine.translate(PAGE_OFFSET, access="exec!")


def test_typed_views_of_unmapped_memory_are_page_faults(machine: Machine) -> None:
    """The typed view of an object that is not mapped is refused with the walk's
    words (it used to return a view whose first read raised drgn's FaultError)."""
    with pytest.raises(PageFault, match=r"cannot read 0x0000000000000000: not present at PGD"):
        machine.obj("struct boot_info *", 0)
    with pytest.raises(PageFault, match="non-canonical"):
        machine.obj("u64", 0xDEAD000000000000)
    vmalloc_hole = 0xFFFFC90000000000
    with pytest.raises(PageFault, match="not present"):
        machine.obj("struct kmem_cache", vmalloc_hole)
    end_of_map = 0xFFFF888000000000 + machine.read_u64(machine.symbol("max_pfn")) * 4096
    with pytest.raises(PageFault):  # starts mapped, ends past the direct map
        machine.obj("struct boot_info", end_of_map - 8)
    with pytest.raises(BadArgument, match="address must be an int"):
        machine.obj("int", "0x1000")  # type: ignore[arg-type]
    boot_info = machine.obj("struct boot_info *", machine.symbol("boot_info"))
    assert int(boot_info.e820_count) == int(machine.var("boot_info").e820_count) > 0


@pytest.mark.parametrize("sources, cflags", [((b"x.c",), ()), ((3,), ()), (("x.c",), object()),
                                             (("x.c",), "-O0")])
def test_load_module_refuses_wrong_types(machine: Machine, sources: tuple[object, ...],
                                         cflags: object) -> None:
    """Sources must be paths and cflags a list of strings: one-line ModuleError, nothing
    loaded (a bytes path used to escape as TypeError from pathlib)."""
    with pytest.raises(ModuleError, match="must be a path|cflags must be"):
        machine.load_module(*sources, cflags=cflags)
    assert machine.modules() == [] and machine.state == "ready"
