"""The <linux/...> helpers' semantics, executed in the guest (kernel/lib_test.c),
and the allocator APIs the headers added, called by name from Python.

A ``lib_test_*`` function returns 0 or the line of kernel/lib_test.c whose check
failed; the ``lib_probe_*`` functions return a value compared here.
"""

from __future__ import annotations

import pytest

from emu import Machine

LIST_POISON1 = 0xDEAD000000000100
LIST_POISON2 = 0xDEAD000000000122
SIZE_MAX = (1 << 64) - 1
GFP_KERNEL = 0xCC0


def passes(m: Machine, fn: str, *args: int) -> None:
    line = m.call(fn, *args) & 0xFFFFFFFF
    assert line == 0, f"{fn}: the check at kernel/lib_test.c:{line} failed"


@pytest.mark.parametrize("fn", ["lib_test_list", "lib_test_list_cut_splice", "lib_test_hlist",
                                "lib_test_err", "lib_test_minmax_math", "lib_test_bitmap",
                                "lib_test_string", "lib_test_page_helpers",
                                "lib_test_vmalloc_helpers"])
def test_in_guest(machine: Machine, fn: str) -> None:
    passes(machine, fn)
    assert machine.validate_slab() == []


def test_list_del_poisons_with_linux_values(machine: Machine) -> None:
    assert machine.call("lib_probe_list_poison", 0) == LIST_POISON1
    assert machine.call("lib_probe_list_poison", 1) == LIST_POISON2
    assert machine.call("lib_probe_hlist_poison", 0) == LIST_POISON1
    assert machine.call("lib_probe_hlist_poison", 1) == LIST_POISON2


@pytest.mark.parametrize("op,a,b,expected", [
    (0, 3, 5, 15), (0, 1 << 32, 1 << 32, SIZE_MAX), (0, SIZE_MAX, 1, SIZE_MAX),
    (1, 3, 5, 8), (1, SIZE_MAX, 1, SIZE_MAX), (1, SIZE_MAX - 1, 1, SIZE_MAX),
    (2, 5, 3, 2), (2, 3, 5, SIZE_MAX), (2, SIZE_MAX, 1, SIZE_MAX), (2, 8, SIZE_MAX, SIZE_MAX),
    (3, 1000, 8, 8000), (3, 1 << 62, 4, SIZE_MAX),
    (4, 0, 3, 8 + 3 * 8), (4, 0, 1 << 61, SIZE_MAX), (4, 0, SIZE_MAX // 8, SIZE_MAX),
    (5, 0, 3, 24), (5, 0, 1 << 61, SIZE_MAX),
    (6, 2, 3, 18), (6, 2, 1 << 32, SIZE_MAX),
])
def test_size_helpers_saturate(machine: Machine, op: int, a: int, b: int, expected: int) -> None:
    assert machine.call("lib_probe_size", op, a, b) == expected


def _split(r: int, bits: int = 64) -> tuple[bool, int]:
    return bool(r >> 63), r & ((1 << 63) - 1) if bits == 64 else r & 0xFFFFFFFF


@pytest.mark.parametrize("op,a,b,overflow,result", [
    (0, 2, 3, False, 5), (0, SIZE_MAX, 2, True, 1),
    (1, 5, 3, False, 2), (1, 3, 5, True, (3 - 5) & ((1 << 63) - 1)),
    (2, 1 << 32, 1 << 31, False, 1 << 63 & ((1 << 63) - 1)), (2, 1 << 32, 1 << 32, True, 0),
])
def test_check_overflow_u64(machine: Machine, op: int, a: int, b: int, overflow: bool,
                            result: int) -> None:
    got = machine.call("lib_probe_check_overflow", op, a, b)
    assert _split(got) == (overflow, result)


@pytest.mark.parametrize("op,a,b,overflow,result", [
    (3, 0x7FFFFFFF, 1, True, 0x80000000), (3, -5, 3, False, (-2) & 0xFFFFFFFF),
    (4, -0x80000000, 1, True, 0x7FFFFFFF), (4, 10, 20, False, (-10) & 0xFFFFFFFF),
    (5, 0x10000, 0x10000, True, 0), (5, -3, 7, False, (-21) & 0xFFFFFFFF),
])
def test_check_overflow_s32(machine: Machine, op: int, a: int, b: int, overflow: bool,
                            result: int) -> None:
    got = machine.call("lib_probe_check_overflow", op, a & SIZE_MAX, b & SIZE_MAX)
    assert _split(got, 32) == (overflow, result)


def test_warn_on_once_reports_once_and_returns_the_condition(machine: Machine) -> None:
    n = len(machine.events)
    assert machine.call("lib_test_warn", 0) == 0
    assert len(machine.events) == n
    assert machine.call("lib_test_warn", 1) == 2  # true both times ...
    warns = [e for e in machine.events[n:] if e.kind == "warn"]
    assert len(warns) == 1  # ... but reported once
    assert "lib_test.c" in warns[0].message
    assert machine.call("lib_test_warn", 1) == 2
    assert len([e for e in machine.events[n:] if e.kind == "warn"]) == 1


def test_printk_strips_the_level_prefix(machine: Machine) -> None:
    buf = machine.symbol("kmemu_arg_buf")
    machine.write_virt(buf, b"\x016hello from KERN_INFO\n\0")
    mark = len(machine.console)
    machine.call("printk", buf)
    out = machine.console[mark:]
    assert out == "hello from KERN_INFO\n"


# ------------------------------------------------------------ APIs added with the headers


def test_kmem_cache_zalloc_zeroes_and_kmem_cache_size(machine: Machine) -> None:
    s = machine.kmem_cache_create("zal", 72)
    p = machine.call("kmem_cache_alloc", s, GFP_KERNEL)
    machine.write_virt(p, b"\xaa" * 72)
    machine.call("kmem_cache_free", s, p)
    z = machine.call("kmem_cache_zalloc", s, GFP_KERNEL)
    assert z == p  # LIFO freelist: the dirty object comes back, zeroed
    assert machine.read_virt(z, 72) == bytes(72)
    assert machine.call("kmem_cache_size", s) == 72
    machine.call("kmem_cache_free", s, z)
    machine.call("kmem_cache_destroy", s)
    assert machine.validate_slab() == []


def test_krealloc_array_and_kvcalloc(machine: Machine) -> None:
    p = machine.call("kmalloc_array", 4, 8, GFP_KERNEL)
    machine.write_virt(p, bytes(range(32)))
    q = machine.call("krealloc_array", p, 16, 8, GFP_KERNEL)
    assert q and machine.ksize(q) == 128 and machine.read_virt(q, 32) == bytes(range(32))
    assert machine.call("krealloc_array", q, 1 << 62, 8, GFP_KERNEL) == 0  # overflow: q kept
    assert machine.ksize(q) == 128
    machine.kfree(q)
    v = machine.call("kvcalloc", 1024, 64, GFP_KERNEL)  # 64 KiB: from kmalloc's pages
    assert v and machine.read_virt(v, 65536) == bytes(65536)
    machine.call("kvfree", v)
    assert machine.call("kvcalloc", 1 << 62, 8, GFP_KERNEL) == 0
    assert machine.call("kvmalloc_array", 1 << 62, 8, GFP_KERNEL) == 0
    assert machine.validate_slab() == []


def test_vmalloc_array_vcalloc_and_vmalloc_to_page(machine: Machine) -> None:
    v = machine.call("vcalloc", 3, 4096)
    assert v >> 40 == 0xFFFFC9 and machine.read_virt(v, 3 * 4096) == bytes(3 * 4096)
    assert machine.call("is_vmalloc_addr", v) == 1
    for i in range(3):
        page = machine.call("vmalloc_to_page", v + i * 4096 + 100)
        direct = machine.call("page_address", page)
        assert machine.translate(direct) == machine.translate(v + i * 4096)
        assert machine.call("vmalloc_to_pfn", v + i * 4096) == machine.call("page_to_pfn", page)
    line = next(ln for ln in machine.vmallocinfo().splitlines() if ln.startswith(f"{v:#x}-"))
    assert " 16384 " in line and "vcalloc" not in line  # the caller is vcalloc's caller
    machine.call("vfree", v)
    assert machine.call("vmalloc_array", 1 << 62, 8) == 0
    assert machine.call("vcalloc", 1 << 62, 8) == 0


def test_get_free_pages_family(machine: Machine) -> None:
    a = machine.call("__get_free_pages", GFP_KERNEL, 2)
    assert a and a % (4 * 4096) == 0
    page = machine.call("virt_to_page", a)
    assert machine.call("page_address", page) == a
    assert machine.call("pfn_to_page", machine.call("page_to_pfn", page)) == page
    assert machine.call("virt_addr_valid", a) == 1
    assert machine.call("virt_addr_valid", 0xFFFFC90000000000) == 0
    machine.call("free_pages", a, 2)
    z = machine.call("get_zeroed_page", GFP_KERNEL)
    assert machine.read_virt(z, 4096) == bytes(4096)
    machine.call("free_pages", z, 0)


def test_string_allocators(machine: Machine) -> None:
    buf = machine.symbol("kmemu_arg_buf")
    machine.write_virt(buf, b"slab-cache\0")
    d = machine.call("kstrdup", buf, GFP_KERNEL)
    assert machine.read_virt(d, 11) == b"slab-cache\0"
    assert machine.kmem_cache_of(d) == "kmalloc-16"
    machine.kfree(d)
    assert machine.call("strscpy", buf, buf + 64, 0) == (-7) & SIZE_MAX  # -E2BIG
