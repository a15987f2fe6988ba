"""Counting breakpoints: which path an allocation took, locations, conditions."""

from __future__ import annotations

import pytest

from emu import Machine
from emu.debug.breakpoints import LocationError
from emu.kernel.lines import LineError


def test_fast_and_slow_path_of_kmalloc(machine: Machine) -> None:
    machine.kfree(machine.kmalloc(64))  # an active slab with free objects exists now
    with machine.breakpoint("___slab_alloc") as slow, machine.breakpoint("kmem_cache_alloc"):
        machine.kmalloc(64)
    assert slow.hits == 0  # the fast path
    caches = {c.name: c for c in machine.caches()}
    n = caches["kmalloc-64"].objects
    with machine.breakpoint("___slab_alloc") as slow:
        ptrs = [machine.kmalloc(64) for _ in range(n + 1)]
    assert slow.hits >= 1  # the active slab ran out: the slow path refilled it
    assert all(s.startswith(("__slab_alloc", "kmem_cache_alloc", "kmalloc"))
               for s in slow.caller_symbols)  # Linux's frames: __slab_alloc calls it
    for p in ptrs:
        machine.kfree(p)


def test_breakpoint_is_gone_after_the_with(machine: Machine) -> None:
    with machine.breakpoint("kmemu_test_add") as bp:
        machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6)
    machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6)
    assert bp.hits == 1


def test_locations(machine: Machine) -> None:
    base = machine.symbol("kmemu_test_add")
    assert machine.breakpoint("kmemu_test_add+4").address == base + 4
    assert machine.breakpoint(f"{base:#x}").address == base
    assert machine.breakpoint(base).address == base
    line = machine.lines.lookup(base + 8)
    assert line is not None and line.file.endswith("irq.c")
    bp = machine.breakpoint(f"irq.c:{line.line}")
    assert machine.symbolize(bp.address).startswith("kmemu_test_add")
    with bp:
        machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6)
    assert bp.hits >= 1


def test_conditions(machine: Machine) -> None:
    from unicorn import x86_const as x86

    def big(m: Machine) -> bool:
        return m.uc.reg_read(x86.UC_X86_REG_RDI) > 1000

    with machine.breakpoint("kmalloc", condition=big) as bp:
        for size in (10, 5000, 20, 3000):
            machine.kfree(machine.kmalloc(size))
    assert bp.hits == 2


def test_bad_locations(machine: Machine) -> None:
    with pytest.raises(Exception, match="unknown kernel symbol"):
        machine.breakpoint("no_such_function")
    # another kernel's name for the slab slow path points at ours (Linux's)
    with pytest.raises(Exception, match=r"'slab_alloc_slow'; similar: .*\b___slab_alloc\b"):
        machine.breakpoint("slab_alloc_slow")
    with pytest.raises(Exception, match=r"'kmallco'; similar: kmalloc\b"):
        machine.breakpoint("kmallco")
    with pytest.raises(LineError, match="no source file"):
        machine.breakpoint("nosuchfile.c:10")
    with pytest.raises(LineError, match="no code at"):
        machine.breakpoint("slub.c:1")
    with pytest.raises(LocationError):
        machine.breakpoint("")
    with pytest.raises(LocationError):
        machine.breakpoint("kmalloc + + 3")
    assert machine.call("kmemu_test_nop") == 0


def test_stop_inside_a_call_and_resume(machine: Machine) -> None:
    from emu import BreakpointHit

    bp = machine.break_at("kmemu_test_add")
    with pytest.raises(BreakpointHit) as ei:
        machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6)
    hit = ei.value
    assert hit.where.startswith("kmemu_test_add+0x0/")
    assert hit.call.rip == machine.symbol("kmemu_test_add")
    with pytest.raises(Exception, match="stopped at a breakpoint"):
        machine.call("kmemu_test_nop")  # one thing at a time
    rip = hit.call.stepi()
    assert rip != machine.symbol("kmemu_test_add")
    assert hit.call.resume() == 91
    bp.remove()
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91


def test_stop_in_the_slab_slow_path_then_finish_the_kmalloc(machine: Machine) -> None:
    from emu import BreakpointHit

    view = next(c for c in machine.caches() if c.name == "kmalloc-256")
    ptrs = [machine.kmalloc(256) for _ in range(view.objects)]  # use up the active slab
    machine.break_at("___slab_alloc", temporary=True)
    with pytest.raises(BreakpointHit) as ei:
        machine.kmalloc(256)
    assert ei.value.where.startswith("___slab_alloc")
    p = ei.value.call.resume()
    assert machine.find_object(p).cache == "kmalloc-256"
    assert machine.kmalloc(256)  # temporary: it did not stop again
    for q in ptrs + [p]:
        machine.kfree(q)


def test_abort_a_stopped_call(machine: Machine) -> None:
    from emu import BreakpointHit

    bp = machine.break_at("kmemu_test_add")
    with pytest.raises(BreakpointHit) as ei:
        machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6)
    ei.value.call.abort()
    bp.remove()
    assert machine.call("kmemu_test_nop") == 0
    with pytest.raises(Exception, match="not the one stopped"):
        ei.value.call.resume()


def test_finish_returns_the_functions_value(machine: Machine) -> None:
    from emu import BreakpointHit

    machine.break_at("kmalloc_slab", temporary=True)
    with pytest.raises(BreakpointHit) as ei:
        machine.call("kmalloc_slab", 100, 0xCC0)
    assert ei.value.call.finish() == machine.kmem_cache("kmalloc-128")  # the call's result
    machine.break_at("slab_post_alloc", temporary=True)  # __GFP_ZERO: the memset
    with pytest.raises(BreakpointHit) as ei:
        machine.call("kzalloc", 40, 0xCC0)
    obj = ei.value.call.finish()  # back in kmalloc, with slab_post_alloc's result
    assert machine.find_object(obj).cache == "kmalloc-64"
    assert ei.value.call.resume() == obj
    machine.kfree(obj)
