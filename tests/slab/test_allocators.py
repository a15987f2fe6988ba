"""The slab API on each slab allocator (slab=slub|slab|slob), and how one is chosen.

Tests marked ``all_allocators`` run once per allocator (tests/slab/conftest.py); the
expectations that differ (size classes, constructors, destroy with live objects)
are Linux's for each.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emu import BadArgument, Machine, SlabAllocatorError
from emu.kernel.slab_select import ALLOCATORS, with_slab_choice

ZERO_SIZE_PTR = 16
SIZES = [1, 8, 9, 17, 33, 64, 65, 96, 97, 128, 129, 192, 193, 257, 513, 1025, 2049, 4088,
         4097, 8192, 9000, 70000]


def bucket(allocator: str, size: int) -> int:
    """ksize() of kmalloc(size), as each Linux allocator had it."""
    if allocator == "slob":
        if size >= 4096 - 8:  # whole pages from PAGE_SIZE - minalign up
            return 4096 << max(0, (size - 1).bit_length() - 12)
        return (size + 1) & ~1  # SLOB_UNITs of 2 bytes
    low = 32 if allocator == "slab" else 8
    if size <= low:
        return low
    if 64 < size <= 96:
        return 96
    if 128 < size <= 192:
        return 192
    return 1 << (size - 1).bit_length()


def cache_name(b: int) -> str:
    return f"kmalloc-{b >> 20}M" if b >= 1 << 20 else \
        f"kmalloc-{b >> 10}k" if b >= 1024 else f"kmalloc-{b}"


@pytest.mark.all_allocators
def test_kmalloc_size_classes(machine: Machine, allocator: str) -> None:
    ptrs = []
    for size in SIZES:
        p = machine.kmalloc(size)
        want = bucket(allocator, size)
        assert machine.ksize(p) == want, (size, allocator)
        assert p % 8 == 0
        if allocator == "slob":
            assert machine.kmalloc_size_roundup(size) == (size + 7) & ~7
        else:
            assert machine.kmalloc_size_roundup(size) == want
        if allocator == "slab" or (allocator == "slub" and size <= 8192):
            assert machine.kmem_cache_of(p) == cache_name(want)
        machine.write_virt(p, b"\x5a" * size)
        ptrs.append(p)
    assert len(set(ptrs)) == len(ptrs)
    assert machine.validate_slab() == []
    for p in ptrs:
        machine.kfree(p)
    assert machine.validate_slab() == []
    assert machine.validate_page_alloc() == []


@pytest.mark.all_allocators
def test_zero_size_null_and_too_big(machine: Machine, allocator: str) -> None:
    assert machine.kmalloc(0) == ZERO_SIZE_PTR
    n = len(machine.events)
    machine.kfree(0)
    machine.kfree(ZERO_SIZE_PTR)
    assert machine.ksize(0) == 0 and len(machine.events) == n
    assert machine.kmalloc((4 << 20) + 1) == 0
    assert [e.kind for e in machine.events[n:]] == ["warn"]
    assert machine.kmalloc((4 << 20) + 1, "GFP_KERNEL | __GFP_NOWARN") == 0
    assert len(machine.events) == n + 1
    big = machine.kmalloc(4 << 20)  # KMALLOC_MAX_SIZE: a cache (SLAB) or pages
    assert big and machine.ksize(big) == 4 << 20
    machine.kfree(big)
    assert machine.validate_page_alloc() == []


@pytest.mark.all_allocators
def test_zeroing_realloc_and_sensitive(machine: Machine, allocator: str) -> None:
    p = machine.kmalloc(200)
    machine.write_virt(p, b"\xee" * 200)
    machine.kfree(p)
    q = machine.kzalloc(200)
    assert machine.read_virt(q, 200) == bytes(200)
    z = machine.kcalloc(10, 8)
    assert machine.read_virt(z, 80) == bytes(80) and machine.kcalloc(1 << 62, 8) == 0
    machine.write_virt(q, bytes(range(200)))
    r = machine.krealloc(q, 3000)
    assert machine.read_virt(r, 200) == bytes(range(200)) and machine.ksize(r) >= 3000
    assert machine.krealloc(r, 0) == ZERO_SIZE_PTR
    s = machine.kmalloc(64)
    machine.write_virt(s, b"secret!!" * 8)
    machine.kfree_sensitive(s)
    assert b"secret" not in machine.read_virt(s, 64)
    machine.kfree(z)
    assert machine.validate_slab() == []


@pytest.mark.all_allocators
def test_cache_life_cycle(machine: Machine, allocator: str) -> None:
    c = machine.kmem_cache_create("widgets", 200)
    assert machine.call("kmem_cache_size", c) == 200
    assert "widgets" in [v.name for v in machine.caches()]
    objs = [machine.kmem_cache_alloc(c) for _ in range(50)]
    assert len(set(objs)) == 50
    for o in objs:
        assert machine.slab_object_allocated(o) is True
    for o in objs:
        machine.kmem_cache_free(c, o)
    assert machine.validate_slab() == []
    n = len(machine.events)
    machine.kmem_cache_destroy(c)
    assert len(machine.events) == n
    assert "widgets" not in [v.name for v in machine.caches()]
    assert machine.call("kmem_cache_listed", machine.symbol("kmemu_arg_buf")) in (0, 1)


@pytest.mark.all_allocators
def test_bulk_and_gfp_atomic_in_an_interrupt(machine: Machine, allocator: str) -> None:
    c = machine.kmem_cache_create("bulky", 32)
    arr = machine.kmalloc(8 * 100)
    assert machine.call("kmem_cache_alloc_bulk", c, 0xCC0, 100, arr) == 100
    objs = [machine.read_u64(arr + 8 * i) for i in range(100)]
    assert len(set(objs)) == 100
    machine.call("kmem_cache_free_bulk", c, 100, arr)
    assert all(machine.slab_object_allocated(o) is False for o in objs[:5])
    machine.kfree(arr)
    p = machine.kmalloc(64, "GFP_ATOMIC", context="irq")
    assert p and machine.slab_object_allocated(p)
    machine.kfree(p, context="irq")
    machine.kmem_cache_destroy(c)
    assert machine.validate_slab() == []


@pytest.mark.all_allocators
def test_constructor_as_each_allocator_runs_it(machine: Machine, allocator: str) -> None:
    """SLUB and SLAB construct a slab's objects once, when the slab is made; SLOB
    constructs at every allocation (it keeps no constructed free objects)."""
    c = machine.call("kmemu_test_ctor_cache", 48)
    calls = int(machine.var("slab_ctor_calls"))
    o1 = machine.kmem_cache_alloc(c)
    made = int(machine.var("slab_ctor_calls")) - calls
    assert machine.read_virt(o1, 16) == b"\xc7" * 16
    machine.kmem_cache_free(c, o1)
    o2 = machine.kmem_cache_alloc(c)
    again = int(machine.var("slab_ctor_calls")) - calls - made
    if allocator == "slob":
        assert (made, again) == (1, 1)
    else:
        view = next(v for v in machine.caches() if v.address == c)
        assert (made, again) == (view.objects, 0)
    assert machine.read_virt(o2, 16) == b"\xc7" * 16
    machine.kmem_cache_free(c, o2)


@pytest.mark.all_allocators
def test_destroy_with_live_objects(machine: Machine, allocator: str) -> None:
    c = machine.kmem_cache_create("leaky", 64)
    o = machine.kmem_cache_alloc(c)
    n = len(machine.events)
    machine.kmem_cache_destroy(c)
    kinds = [e.kind for e in machine.events[n:]]
    if allocator == "slob":  # Linux's SLOB keeps nothing per cache: nothing to say
        assert kinds == [] and "leaky" not in [v.name for v in machine.caches()]
        assert machine.slab_object_allocated(o)  # leaked: only kmem_cache_free knew its size
    else:
        assert kinds[-1] == "warn" and "Slab cache still has objects" in machine.console
        assert "leaky" in [v.name for v in machine.caches()]
        machine.kmem_cache_free(c, o)
        machine.kmem_cache_destroy(c)
    assert machine.validate_slab() == []


@pytest.mark.all_allocators
def test_kunit_kmalloc_suite_passes(machine: Machine, allocator: str) -> None:
    from emu.check import kunit

    run = kunit.run_suites(machine, filter="kmalloc-*")
    assert run.cases and not run.failed, run.ktap
    assert not run.leaks, [lk.describe() for _c, lk in run.leaks]


@pytest.mark.all_allocators
def test_a_module_uses_the_chosen_allocator(machine: Machine, allocator: str) -> None:
    src = Path(__file__).parent.parent / "modules" / "src" / "mydev.c"
    mod = machine.load_module(src)
    recs = [machine.call("mydev_alloc", i) for i in range(40)]
    assert len(set(recs)) == 40 and all(machine.slab_object_allocated(r) for r in recs)
    assert machine.validate_slab() == []
    machine.unload_module(mod.name)
    assert machine.validate_slab() == []


@pytest.mark.all_allocators
def test_selftests_pass(machine: Machine, allocator: str) -> None:
    assert machine.call("kmemu_selftest") == 0


# --- choosing --------------------------------------------------------------------


@pytest.mark.all_allocators
def test_only_the_chosen_allocator_is_patched_in(machine: Machine, allocator: str) -> None:
    """SLUB runs its entry points as compiled (nothing patched, no dispatch); SLAB and
    SLOB get a 5-byte jmp at each of SLUB's to their own function."""
    from elftools.elf.elffile import ELFFile

    with open(machine.artifacts.elf, "rb") as f:
        elf = ELFFile(f)
        text = elf.get_section_by_name(".text")
        base, data = text["sh_addr"], text.data()
    for fn in ("kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free", "ksize"):
        addr = machine.symbol(fn)
        now = machine.read_virt(addr, 5)
        if allocator == "slub":
            assert now == data[addr - base:addr - base + 5], fn
        else:
            assert now[0] == 0xE9
            target = addr + 5 + int.from_bytes(now[1:], "little", signed=True)
            assert machine.symbolize(target).startswith(f"{allocator}_{fn}"), fn
    assert machine.read_virt(machine.symbol("slab_allocator"), 1)[0] == ALLOCATORS.index(allocator)
    assert machine.slab == allocator


def test_bad_choices_are_refused_before_boot() -> None:
    with pytest.raises(BadArgument, match="slab must be one of slub, slab, slob"):
        Machine(slab="slub2")
    with pytest.raises(BadArgument, match="slab=foo: unknown slab allocator"):
        Machine(cmdline="quiet slab=foo")
    with pytest.raises(BadArgument, match="command line says slab=slob"):
        Machine(slab="slab", cmdline="slab=slob")
    with pytest.raises(BadArgument, match="SLOB has no debug options"):
        Machine(slab="slob", slab_debug="Z")
    with pytest.raises(BadArgument, match="SLAB has no F option"):
        Machine(slab="slab", slab_debug="FZ")
    with pytest.raises(BadArgument, match="KASAN works with SLUB only"):
        Machine(slab="slob", kasan=True)
    assert with_slab_choice("", "slab", "ZP", False) == "slab=slab"
    assert Machine(slab="slab", slab_debug="ZPU").slab == "slab"


def test_the_guest_says_plainly_what_it_ignores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the host's check (as a raw command line under QEMU would be), the kernel
    logs the unknown value and keeps SLUB."""
    import emu.machine.core as core

    monkeypatch.setattr(core, "with_slab_choice", lambda cmdline, *a: cmdline)
    m = Machine(mem="32M", cmdline="slab=slub2")
    m.boot()
    assert "slab=slub2: unknown slab allocator (slub, slab or slob); using slub" in m.console
    assert m.read_virt(m.symbol("slab_allocator"), 1)[0] == 0
    assert "SLUB: HWalign=64" in m.console


@pytest.mark.all_allocators
def test_debug_flags_each_allocator_lacks_are_refused(machine: Machine, allocator: str) -> None:
    n = len(machine.console)
    c = machine.kmem_cache_create("checked", 64, 0, "SLAB_CONSISTENCY_CHECKS")
    if allocator == "slub":
        assert c
        return
    assert c == 0
    msg = "SLAB has no consistency checks" if allocator == "slab" else "SLOB has no debug options"
    assert msg in machine.console[n:]
    rz = machine.kmem_cache_create("redzoned", 64, 0, "SLAB_RED_ZONE")
    assert bool(rz) == (allocator == "slab")


def test_views_an_allocator_lacks_say_so(machine: Machine) -> None:
    with pytest.raises(SlabAllocatorError, match="runs SLUB .*only SLAB has it"):
        machine.slab_reap()
    with pytest.raises(SlabAllocatorError, match="only SLOB has it"):
        machine.slob_info()


@pytest.mark.kmemu(slab="slob")
def test_slob_has_no_slabinfo(machine: Machine) -> None:
    with pytest.raises(SlabAllocatorError, match="SLOB has no /proc/slabinfo"):
        machine.slabinfo()
    with pytest.raises(SlabAllocatorError, match="SLOB keeps no record"):
        machine.find_object(machine.kmalloc(64))
    with pytest.raises(SlabAllocatorError, match="only SLUB and SLAB have it"):
        machine.live_objects("kmalloc-64")
