"""slab_debug=FZPU: red zones, poisoning, consistency checks and their reports, in the
spirit of Linux's slab KUnit tests (one machine with debugging on for every cache)."""

from __future__ import annotations

import pytest

from emu import Machine

pytestmark = pytest.mark.kmemu(cmdline="slab_debug=FZPU")


def slab_events(m: Machine, since: int) -> list[str]:
    return [e.message for e in m.events[since:] if e.kind == "slab"]


def test_slab_debug_turned_its_static_key_on_at_boot(machine: Machine) -> None:
    """slab_debug= enabled slub_debug_enabled before any cache existed: every site of
    the key was patched to jump at boot, and the bytes of every key's sites match."""
    keys = {k.name: k for k in machine.static_keys()}
    key = keys["slub_debug_enabled"]
    assert key.enabled and key.sites and key.consistent
    assert {s.state for s in key.sites} == {"jmp"}  # static_branch_unlikely: nop at build
    assert all(k.consistent for k in keys.values())


def test_clean_caches_validate_clean(machine: Machine) -> None:
    assert machine.slab_errors() == 0
    ptrs = [machine.kmalloc(n) for n in (1, 30, 64, 100, 500, 3000)]
    assert machine.slab_errors() == 0
    for p in ptrs:
        machine.kfree(p)
    assert machine.slab_errors() == 0
    assert machine.validate_slab() == []


def test_one_byte_past_a_64_byte_object(machine: Machine) -> None:
    c = machine.kmem_cache_create("TestSlub_RZ_alloc", 64, 0, "SLAB_RED_ZONE")
    p = machine.kmem_cache_alloc(c)
    machine.write_virt(p + 64, b"\x12")
    n = len(machine.events)
    assert machine.slab_errors(c) == 1
    assert slab_events(machine, n) == [
        "BUG TestSlub_RZ_alloc (Not tainted): Right Redzone overwritten"]
    assert "First byte 0x12 instead of 0xcc" in machine.console
    assert "FIX TestSlub_RZ_alloc: Restoring Right Redzone" in machine.console
    assert machine.slab_errors(c) == 0  # repaired
    machine.kmem_cache_free(c, p)
    machine.kmem_cache_destroy(c)


def test_kmalloc_red_zone_starts_at_the_requested_size(machine: Machine) -> None:
    p = machine.kmalloc(18)
    assert machine.kmem_cache_of(p) == "kmalloc-32"
    machine.write_virt(p, b"A" * 18)  # all of what was asked for: fine
    assert machine.slab_errors("kmalloc-32") == 0
    machine.write_virt(p + 18, b"B")  # byte 18 of 32: inside the bucket, past the request
    n = len(machine.events)
    machine.kfree(p)  # the free checks the red zone too
    assert slab_events(machine, n) == ["BUG kmalloc-32 (Not tainted): Right Redzone overwritten"]
    assert machine.slab_errors("kmalloc-32") == 0


def test_use_after_free_breaks_the_poison(machine: Machine) -> None:
    c = machine.kmem_cache_create("TestSlub_UAF", 64, 0, "SLAB_POISON")
    p = machine.kmem_cache_alloc(c)
    machine.kmem_cache_free(c, p)
    assert machine.read_virt(p, 64) == b"\x6b" * 63 + b"\xa5"
    machine.write_virt(p, b"\x00" * 8)  # the first word
    n = len(machine.events)
    assert machine.slab_errors(c) == 1
    assert slab_events(machine, n) == ["BUG TestSlub_UAF (Not tainted): Poison overwritten"]
    machine.write_virt(p + 50, b"\x01")  # the 50th byte
    assert machine.slab_errors(c) == 1
    assert "@offset=" in machine.console and "First byte 0x1 instead of 0x6b" in machine.console
    assert machine.slab_errors(c) == 0


def test_corrupted_free_pointer_is_isolated(machine: Machine) -> None:
    c = machine.kmem_cache_create("TestSlub_FP", 64, 0, "SLAB_CONSISTENCY_CHECKS")
    objs = [machine.kmem_cache_alloc(c) for _ in range(3)]
    for o in objs:
        machine.kmem_cache_free(c, o)
    view = next(v for v in machine.caches() if v.name == "TestSlub_FP")
    machine.write_virt(objs[1] + view.offset, b"\x41" * 8)
    n = len(machine.events)
    machine.slab_errors(c)
    msgs = slab_events(machine, n)
    assert msgs and ("Freechain corrupt" in msgs[0] or "Freepointer corrupt" in msgs[0])
    assert "Isolate corrupted freechain" in machine.console


def test_double_free_and_invalid_free_are_reported_not_done(machine: Machine) -> None:
    p = machine.kmalloc(64)
    machine.kfree(p)
    n = len(machine.events)
    machine.kfree(p)
    assert slab_events(machine, n) == ["BUG kmalloc-64 (Not tainted): Object already free"]
    q = machine.kmalloc(64)
    n = len(machine.events)
    machine.kfree(q + 8)
    msgs = slab_events(machine, n)
    assert len(msgs) == 1 and "Invalid object pointer" in msgs[0]
    assert machine.find_object(q).allocated  # nothing was freed
    machine.kfree(q)
    assert machine.validate_slab() == []


def test_free_into_the_wrong_cache(machine: Machine) -> None:
    a = machine.kmem_cache_create("TestSlub_A", 64)
    b = machine.kmem_cache_create("TestSlub_B", 64)
    o = machine.kmem_cache_alloc(a)
    n = len(machine.events)
    machine.kmem_cache_free(b, o)
    msgs = slab_events(machine, n)
    assert msgs == ["BUG TestSlub_B (Not tainted): Wrong slab cache. TestSlub_B but object is "
                    "from TestSlub_A"]
    assert machine.find_object(o).allocated
    machine.kmem_cache_free(a, o)


def test_padding_is_checked(machine: Machine) -> None:
    c = machine.kmem_cache_create("TestSlub_pad", 50, 0,
                                  "SLAB_POISON | SLAB_STORE_USER | SLAB_HWCACHE_ALIGN")
    p = machine.kmem_cache_alloc(c)
    view = next(v for v in machine.caches() if v.name == "TestSlub_pad")
    pad = view.track_offset + 80  # after the two tracks
    assert pad < view.size - view.red_left_pad  # 64-byte alignment leaves padding
    assert machine.read_virt(p + pad, 1) == b"\x5a"
    machine.write_virt(p + pad, b"\x00")
    assert machine.slab_errors(c) == 1
    assert "Object padding overwritten" in machine.console
    machine.kmem_cache_free(c, p)


def test_cache_info(machine: Machine) -> None:
    p = machine.kmalloc(64)
    info = machine.cache_info("kmalloc-64")
    assert info["debug"] == "FZPU" and info["object_size"] == 64 and info["size"] > 64
    assert info["cpu_free_objects"] >= 0 and info["objects_per_slab"] >= 1
    machine.kfree(p)


def test_owner_tracking(machine: Machine) -> None:
    p = machine.kmalloc(64)
    info = machine.find_object(p)
    assert info.alloc_owner and info.alloc_owner[0].startswith("kmemu_call_return")
    machine.write_virt(p + 64, b"\x00")
    machine.slab_errors("kmalloc-64")
    assert "INFO: Allocated in " in machine.console
    machine.kfree(p)
    machine.kfree(p)
    assert "INFO: Freed in " in machine.console


def test_destroy_lists_leaked_objects(machine: Machine) -> None:
    c = machine.kmem_cache_create("TestSlub_leak", 100)
    o = machine.kmem_cache_alloc(c)
    n = len(machine.events)
    machine.kmem_cache_destroy(c)
    ev = [e for e in machine.events[n:] if e.kind == "slab"]
    assert ev and "Objects remaining in TestSlub_leak on __kmem_cache_shutdown()" in ev[0].message
    assert ev[0].args[4] == o
    assert f"Object 0x{o:016x}" in machine.console
    assert any(e.kind == "warn" for e in machine.events[n:])
    assert "Slab cache still has objects" in machine.console


def test_krealloc_with_red_zones(machine: Machine) -> None:
    p = machine.kmalloc(40)  # kmalloc-64, red zone from byte 40
    machine.write_virt(p, bytes(range(40)))
    q = machine.krealloc(p, 20)  # shrink in place: the red zone now starts at 20
    assert q == p
    machine.write_virt(q + 20, b"\x99")
    n = len(machine.events)
    assert machine.slab_errors("kmalloc-64") == 1
    assert slab_events(machine, n)[0].endswith("Right Redzone overwritten")
    r = machine.krealloc(q, 50, "GFP_KERNEL | __GFP_ZERO")  # grow in place, zeroing 20..50
    assert r == q
    assert machine.read_virt(r, 20) == bytes(range(20))
    assert machine.read_virt(r + 20, 30) == bytes(30)
    s = machine.krealloc(r, 100)  # grow out of the bucket: copy what was asked for
    assert s != r and machine.read_virt(s, 20) == bytes(range(20))
    assert machine.slab_errors() == 0
    machine.kfree(s)
