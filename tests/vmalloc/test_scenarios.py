"""Scenarios in the spirit of Linux's vmalloc test module (small loop counts here;
the benchmark runs the large ones), checking page tables against the areas."""

from __future__ import annotations

import random

from emu import Machine

VMALLOC_START = 0xFFFFC90000000000


def clean(m: Machine) -> None:
    assert m.validate_vmalloc() == []


def test_fixed_size_alloc_free_loop(machine: Machine) -> None:
    for _ in range(20):
        v = machine.vmalloc(3 * 4096)
        machine.write_virt(v, b"x" * 3 * 4096)
        machine.vfree(v)
    clean(machine)


def test_full_fit_into_one_page_holes(machine: Machine) -> None:
    # a pattern of live areas with one-page holes between them (after the purge)
    areas = [machine.vmalloc(4096) for _ in range(16)]  # each takes 2 pages (guard)
    for v in areas[::2]:
        machine.vfree(v)
    machine.purge_vmap()
    holes = set(areas[::2])
    refill = [machine.vmalloc(4096) for _ in range(8)]  # exactly fits each freed 2-page hole
    assert set(refill) == holes  # lowest fit fills the holes in order
    clean(machine)


def test_long_busy_list_with_churn(machine: Machine) -> None:
    busy = [machine.vmalloc(4096) for _ in range(300)]
    for _ in range(10):
        big = machine.vmalloc(100 * 4096)
        small = machine.vmalloc(4096)
        machine.vfree(big)
        machine.vfree(small)
    clean(machine)
    for v in busy:
        machine.vfree(v)
    machine.purge_vmap()
    assert machine.vmallocinfo() == ""


def test_random_sizes(machine: Machine) -> None:
    rng = random.Random(5)
    live = []
    for _ in range(40):
        if live and rng.random() < 0.4:
            machine.vfree(live.pop(rng.randrange(len(live))))
        else:
            n = rng.randint(1, 100)
            v = machine.vmalloc(n * 4096)
            assert v
            machine.write_virt(v + n * 4096 - 1, b"!")
            live.append(v)
    clean(machine)


def test_fixed_and_random_alignments(machine: Machine) -> None:
    rng = random.Random(7)
    for align in [4096, 8192, 1 << 16, 1 << 20, 4 << 20] + [1 << rng.randint(12, 22)
                                                            for _ in range(5)]:
        v = machine.vmalloc_aligned(rng.randint(1, 8) * 4096, align)
        assert v and v % align == 0, hex(align)
    assert machine.vmalloc_aligned(4096, 8 << 20) == 0  # above 4 MiB: refused
    assert machine.vmalloc_aligned(4096, 3 * 4096) == 0  # not a power of two
    clean(machine)


def test_range_limits(machine: Machine) -> None:
    start = VMALLOC_START + (1 << 30)
    v = machine.vmalloc_aligned(4096, 4096, start, start + 8 * 4096)
    assert v == start
    assert machine.vmalloc_aligned(16 * 4096, 4096, start, start + 8 * 4096) == 0


def test_vrealloc_keeps_content(machine: Machine) -> None:
    v = machine.vmalloc(2 * 4096)
    machine.write_virt(v, bytes(range(256)) * 32)
    w = machine.vrealloc(v, 5 * 4096)
    assert w != v and machine.read_virt(w, 8192) == bytes(range(256)) * 32
    x = machine.vrealloc(w, 3 * 4096, "GFP_KERNEL | __GFP_ZERO")  # shrink: in place
    assert x == w and machine.read_virt(x, 8192) == bytes(range(256)) * 32
    assert machine.read_virt(x + 3 * 4096, 2 * 4096) == bytes(2 * 4096)
    machine.vfree(x)
    clean(machine)


def test_vmap_existing_pages(machine: Machine) -> None:
    pages = [machine.alloc_page_struct("GFP_KERNEL", 0) for _ in range(3)]
    arr = machine.kmalloc(24)
    for i, p in enumerate(pages):
        machine.write_virt(arr + 8 * i, p.to_bytes(8, "little"))
    v = machine.call("vmap", arr, 3, 0, 0)
    assert v
    for i, p in enumerate(pages):
        assert machine.translate(v + i * 4096) >> 12 == machine.page_to_pfn(p)
    assert " vmap" in machine.vmallocinfo()
    machine.call("vunmap", v)
    machine.purge_vmap()
    for p in pages:  # the pages still belong to us
        machine.call("__free_pages", p, 0)
    assert machine.validate_page_alloc() == []


def test_kvmalloc(machine: Machine) -> None:
    small = machine.kvmalloc(100)
    assert machine.kmem_cache_of(small) == "kmalloc-128"
    huge = machine.kvmalloc(8 << 20)  # beyond kmalloc's 4 MiB: vmalloc
    assert VMALLOC_START <= huge < VMALLOC_START + (1 << 40)
    machine.kvfree(small)
    machine.kvfree(huge)
    clean(machine)
