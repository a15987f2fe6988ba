"""Sizes near 2**64 in every allocator entry point that rounds a size.

Rounding a size up (to pages, an order, an alignment) wraps to a small number
near the top of the type: vmalloc(2**64-1) used to return a 0-byte area.
Each entry point bounds the size first, as Linux does, and answers NULL
(with Linux's warning where Linux warns); none returns memory.
"""

from __future__ import annotations

import pytest

from emu import Machine

from .helpers import assert_consistent

U64_MAX = (1 << 64) - 1
NEAR_TOP = [U64_MAX, U64_MAX - 1, U64_MAX - 4094, U64_MAX - 4095, 1 << 63, (1 << 63) + 1]


def _kinds(m: Machine, since: int) -> list[str]:
    return [e.kind for e in m.events[since:]]


@pytest.mark.parametrize("size", NEAR_TOP)
def test_vmalloc_refuses_sizes_beyond_ram(machine: Machine, size: int) -> None:
    mark = len(machine.console)
    assert machine.vmalloc(size) == 0
    assert machine.vzalloc(size) == 0
    assert machine.vmalloc_aligned(size, 4096) == 0
    assert f"vmalloc error: size {size}, exceeds total pages" in machine.console[mark:]
    assert machine.validate_vmalloc() == []


def test_vmalloc_nowarn_is_quiet(machine: Machine) -> None:
    mark = len(machine.console)
    assert machine.vmalloc(U64_MAX, "GFP_KERNEL | __GFP_NOWARN") == 0
    assert "vmalloc error" not in machine.console[mark:]


def test_vmalloc_just_below_the_limit_still_works(machine: Machine) -> None:
    va = machine.vmalloc(4096 * 3 - 1)
    assert va
    machine.write_virt(va + 4096 * 3 - 8, b"12345678")  # the rounded-up area is all mapped
    machine.vfree(va)


def test_vrealloc_to_a_wrapping_size_fails_and_keeps_the_area(machine: Machine) -> None:
    va = machine.vmalloc(4096)
    machine.write_virt(va, b"kept")
    assert machine.vrealloc(va, U64_MAX) == 0
    assert machine.read_virt(va, 4) == b"kept"
    machine.vfree(va)


@pytest.mark.parametrize("size", [U64_MAX, 1 << 63, (1 << 31), (1 << 31) + 4096])
def test_kvmalloc_refuses_more_than_int_max(machine: Machine, size: int) -> None:
    """Linux 5.15+: sizes above INT_MAX are refused with one WARN_ON_ONCE."""
    n = len(machine.events)
    assert machine.kvmalloc(size) == 0
    assert machine.kvmalloc(size, "GFP_KERNEL | __GFP_NOWARN") == 0
    assert _kinds(machine, n) == ["warn"]  # once, and not for __GFP_NOWARN


def test_kvmalloc_int_max_boundary(machine: Machine) -> None:
    """INT_MAX itself passes kvmalloc's check: vmalloc then refuses it (more than RAM)."""
    mark = len(machine.console)
    assert machine.kvmalloc((1 << 31) - 1) == 0
    assert "exceeds total pages" in machine.console[mark:]


@pytest.mark.parametrize("size", NEAR_TOP)
def test_kmalloc_family_refuses(machine: Machine, size: int) -> None:
    assert machine.kmalloc(size, "GFP_KERNEL | __GFP_NOWARN") == 0
    assert machine.kzalloc(size, "GFP_KERNEL | __GFP_NOWARN") == 0
    assert machine.kcalloc(2, size, "GFP_KERNEL | __GFP_NOWARN") == 0  # n * size overflows
    assert machine.kcalloc(size, 16, "GFP_KERNEL | __GFP_NOWARN") == 0
    assert machine.kmalloc_size_roundup(size) == size  # above KMALLOC_MAX_SIZE: unchanged
    p = machine.kmalloc(64)
    assert machine.krealloc(p, size, "GFP_KERNEL | __GFP_NOWARN") == 0
    machine.kfree(p)
    assert machine.validate_slab() == []


def test_vmap_refuses_more_pages_than_ram(machine: Machine) -> None:
    """vmap(pages, count): a count above totalram_pages cannot be a real array; the
    array (here NULL) is never read."""
    for count in ((1 << 32) - 1, int(machine.var("totalram_pages")) + 1):
        assert machine.call("vmap", 0, count, 0, 0) == 0
    assert machine.validate_vmalloc() == []


@pytest.mark.parametrize("align", [(1 << 32) - 1, (1 << 32) - 8, 1 << 31, 3, 24])
def test_kmem_cache_create_refuses_wrapping_alignments(machine: Machine, align: int) -> None:
    """calculate_alignment() rounds align up to 8 in 32 bits: 0xffffffff became 0 and
    the layout divided by a zero size (an oops)."""
    mark = len(machine.console)
    assert machine.kmem_cache_create("wrap-align", 64, align) == 0
    assert "kmem_cache_create(wrap-align) failed" in machine.console[mark:]
    assert machine.validate_slab() == []


def test_kmem_cache_create_largest_alignment_works(machine: Machine) -> None:
    c = machine.kmem_cache_create("big-align", 64, 4096)
    assert c
    p = machine.kmem_cache_alloc(c)
    assert p % 4096 == 0
    machine.kmem_cache_free(c, p)
    machine.kmem_cache_destroy(c)


def test_alloc_pages_order_above_max_warns_once(machine: Machine) -> None:
    """Orders 11..2**32-1 reach the kernel (they fit the unsigned int) and fail there."""
    n = len(machine.events)
    for order in (11, 64, (1 << 32) - 1):
        assert machine.alloc_pages("GFP_KERNEL", order) == 0
    assert _kinds(machine, n) == ["warn"]
    assert_consistent(machine)


def test_memblock_refuses_a_wrapping_size(machine: Machine) -> None:
    """memblock_phys_alloc rounds to pages: 2**64-1 wrapped to 0 and "found" a range."""
    for size in (U64_MAX, U64_MAX - 4094):
        assert machine.call("memblock_phys_alloc", size, 4096) == 0


def test_zone_index_is_bounded(machine: Machine) -> None:
    """rmqueue_zone_exact(int zi, ...) is callable: a negative zone or an order above
    MAX_PAGE_ORDER takes nothing instead of indexing outside zones[]."""
    for zi, order in ((-1, 0), (-(1 << 31), 0), (3, 0), (0, 11)):
        assert machine.call("rmqueue_zone_exact", zi, order) == 0
    assert_consistent(machine)
