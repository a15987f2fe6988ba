"""vmalloc/vfree over the kernel's own page tables: guard pages, lazy purge, views."""

from __future__ import annotations

import re

import pytest

from emu import GuestOops, Machine, PageFault

VMALLOC_START = 0xFFFFC90000000000


def counts(m: Machine) -> int:
    """Free pages plus runtime page-table pages, slab caches and pcp lists emptied: the
    tables vmalloc populated stay (ARCHITECTURE.md, vmalloc), every other page comes back."""
    m.call("kmem_cache_shrink_all")
    return int(m.var("pgtable_pages")) + sum(z.free for z in m.zones())


def free_blocks(m: Machine) -> list[tuple[int, int]]:
    """The free tree in address order."""
    out: list[tuple[int, int]] = []

    def walk(node) -> None:  # noqa: ANN001 - a drgn Object
        if int(node):
            walk(node.left)
            out.append((int(node.va_start), int(node.va_end)))
            walk(node.right)

    walk(m.var("free_vmap_root"))
    return out


def test_vmalloc_maps_scattered_pages(machine: Machine) -> None:
    v = machine.vmalloc(5 * 4096 + 10)
    assert v == VMALLOC_START
    pas = [machine.translate(v + i * 4096) for i in range(6)]
    assert len({p >> 12 for p in pas}) == 6
    machine.write_virt(v + 4090, b"spans two pages")
    assert machine.read_virt(v + 4090, 15) == b"spans two pages"
    info = machine.vmallocinfo()
    assert re.search(rf"^0x{v:016x}-0x{v + 7 * 4096:016x}   28672 \S+\+0x\w+/0x\w+ pages=6 "
                     r"vmalloc N0=6$", info, re.M)
    assert machine.call("is_vmalloc_addr", v + 100) == 1
    assert machine.call("vmalloc_to_pfn", v + 4096) == pas[1] >> 12
    assert machine.call("find_vm_area", v + 5000) != 0
    machine.vfree(v)


def test_guard_page_write_faults_with_the_area_named(machine: Machine) -> None:
    v = machine.vmalloc(20480)
    with pytest.raises(GuestOops) as ei:
        machine.call("kmemu_test_fault", v + 20480, 1)
    e = ei.value
    assert e.vector == 14 and e.address == v + 20480
    assert e.where.startswith("0 bytes past the end of a 20480-byte vmalloc area allocated at ")
    assert f"BUG: unable to handle page fault for address: {v + 20480:016x}" in e.console
    assert "#PF: supervisor write access in kernel mode" in e.console
    assert "#PF: error_code(0x0002) - not-present page" in e.console
    assert re.search(r"PGD \w+ P4D \w+ PUD \w+ PMD \w+ PTE 0\n", e.console)


def test_vfree_is_lazy_until_the_purge(machine: Machine) -> None:
    v = machine.vmalloc(4096)
    machine.write_virt(v, b"\x11" * 8)
    purges = int(machine.var("vmap_purges"))
    machine.vfree(v)
    assert f"0x{v:016x}-0x{v + 8192:016x}    8192 unpurged vm_area" in machine.vmallocinfo()
    with pytest.raises(PageFault):
        machine.translate(v)  # unmapped in the page tables at once; the range is held
    with pytest.raises(GuestOops) as ei:
        machine.call("kmemu_test_fault", v, 0)
    assert ei.value.where == "0 bytes into a freed 4096-byte vmalloc area (unpurged)"
    machine.purge_vmap()
    assert int(machine.var("vmap_purges")) == purges + 1
    assert "unpurged" not in machine.vmallocinfo()
    with pytest.raises(GuestOops) as ei:
        machine.call("kmemu_test_fault", v, 0)
    assert ei.value.where == "not in any vmalloc area (free, or freed and purged)"


def test_freed_range_is_reused_after_the_purge(machine: Machine) -> None:
    a = machine.vmalloc(8192)
    machine.vfree(a)
    b = machine.vmalloc(8192)
    assert b != a  # the lazily freed range is not reused yet
    machine.purge_vmap()
    c = machine.vmalloc(8192)
    assert c == a  # lowest fit after the purge merged it back
    machine.vfree(b)
    machine.vfree(c)


def test_everything_back_after_free_and_purge(machine: Machine) -> None:
    before, tables = counts(machine), int(machine.var("pgtable_pages"))
    areas = [machine.vmalloc(n * 4096) for n in (1, 3, 100, 7, 513)]
    grown = int(machine.var("pgtable_pages"))
    assert grown > tables
    for v in areas[::2] + areas[1::2]:
        machine.vfree(v)
    machine.purge_vmap()
    assert counts(machine) == before
    assert int(machine.var("pgtable_pages")) == grown  # the tables stay once made
    areas = [machine.vmalloc(n * 4096) for n in (1, 3, 100, 7, 513)]  # same ranges again
    assert int(machine.var("pgtable_pages")) == grown  # ... and are reused
    for v in areas:
        machine.vfree(v)
    machine.purge_vmap()
    # two free blocks, merged whole again: the vmalloc area and the module area
    assert free_blocks(machine) == [(VMALLOC_START, 0xFFFFE90000000000),
                                    (0xFFFFFFFFA0000000, 0xFFFFFFFFFF000000)]
    assert machine.validate_page_alloc() == []


def test_vfree_of_a_nonexistent_area(machine: Machine) -> None:
    v = machine.vmalloc(4096)
    n = len(machine.events)
    machine.vfree(v + 8)
    machine.vfree(VMALLOC_START + (1 << 30))
    assert [e.kind for e in machine.events[n:]] == ["warn", "warn"]
    assert "Trying to vfree() nonexistent vm area" in machine.console
    assert machine.translate(v)  # still mapped
    machine.vfree(v)


def test_vzalloc_zeroes(machine: Machine) -> None:
    v = machine.vmalloc(3 * 4096)
    machine.write_virt(v, b"\xff" * 3 * 4096)
    machine.vfree(v)
    machine.purge_vmap()
    z = machine.vzalloc(3 * 4096)
    assert machine.read_virt(z, 3 * 4096) == bytes(3 * 4096)
    machine.vfree(z)


def test_atomic_vmalloc_does_not_sleep(machine: Machine) -> None:
    n = len(machine.events)
    v = machine.vmalloc(3 * 4096, "GFP_ATOMIC", context="preempt_off")
    w = machine.vmalloc(4096, "GFP_NOWAIT", context="irqs_off")
    assert v and w and [e.kind for e in machine.events[n:]] == []
    x = machine.vmalloc(4096, "GFP_KERNEL", context="preempt_off")
    kinds = [e.kind for e in machine.events[n:]]
    assert x and kinds and set(kinds) == {"sleep_in_atomic"}  # not rate-limited in kmemu
    assert "vmalloc.c:" in machine.events[n].message
    for a in (v, w, x):
        machine.vfree(a)


def test_vfree_from_irq_is_deferred(machine: Machine) -> None:
    v = machine.vmalloc(4096)
    machine.vfree(v, context="irq")
    # done in process context on the way back: the area is now waiting for the purge
    assert "unpurged vm_area" in machine.vmallocinfo()
    machine.purge_vmap()
    assert machine.vmallocinfo() == ""


def test_out_of_pages_midway_unwinds(machine: Machine) -> None:
    before = counts(machine)
    n = len(machine.events)
    assert machine.vmalloc(250 << 20, "GFP_KERNEL | __GFP_NORETRY") == 0  # more than free
    assert any("vmalloc error: size" in e.message for e in machine.events[n:])
    machine.purge_vmap()
    assert counts(machine) == before
    assert machine.vmallocinfo() == ""


def test_out_of_virtual_space(machine: Machine) -> None:
    start = VMALLOC_START + (2 << 30)
    mark = len(machine.console)
    # two pages plus the guard page do not fit in a two-page range
    assert machine.vmalloc_aligned(2 * 4096, 4096, start, start + 2 * 4096) == 0
    assert "vmap allocation for size 12288 failed" in machine.console[mark:]
    assert machine.vmalloc_aligned(4096, 4096, start, start + 2 * 4096) == start


def test_page_table_pages_are_allocated_pages(machine: Machine) -> None:
    v = machine.vmalloc_aligned(4096, 4096, VMALLOC_START + (3 << 30),
                                VMALLOC_START + (4 << 30))
    steps = machine.walk(v).steps
    for step in steps[1:]:  # the PUD, PMD and PTE tables
        page = machine.pages(step.table_pa >> 12, 1)[0]
        assert not page.has("buddy") and not page.has("pcp") and page.refcount == 1
    assert machine.validate_page_alloc() == []
