"""recfifo.c tested from Python: kmemu loads the module into a booted kernel (the
``modules=`` marker, before the session snapshot), calls its functions by name, reads
its records back from guest memory, counts slab slow-path entries and interrupts an
insert at every instruction."""

from __future__ import annotations

import struct

import drgn
import pytest
from drgn.helpers.linux.list import list_for_each_entry

from emu import Machine, gfp

pytestmark = pytest.mark.kmemu(modules=["recfifo.c"])

GFP_KERNEL = gfp.parse("GFP_KERNEL")
GFP_ATOMIC = gfp.parse("GFP_ATOMIC")
GFP_NOWARN = gfp.parse("GFP_KERNEL | __GFP_NOWARN")
ENODATA, EMSGSIZE, ENOMEM = 61, 90, 12
SLAB_VECTOR = 0x32  # kmemu's test vector: its handler kmallocs 64 bytes GFP_ATOMIC and frees them


def push(m: Machine, fifo: int, data: bytes, flags: int = GFP_KERNEL, **kw: object) -> int:
    """recfifo_push with data copied into a guest buffer; the errno-style int it returns."""
    buf = m.kmalloc(max(len(data), 1))
    m.write_virt(buf, data)
    ret = m.call("recfifo_push", fifo, buf, len(data), flags, **kw)  # type: ignore[arg-type]
    m.kfree(buf)
    return struct.unpack("<i", struct.pack("<I", ret & 0xFFFFFFFF))[0]


def pop(m: Machine, fifo: int, size: int = 256) -> bytes | int:
    """recfifo_pop into a guest buffer: the bytes, or the negative errno."""
    buf = m.kmalloc(size)
    n = struct.unpack("<q", struct.pack("<Q", m.call("recfifo_pop", fifo, buf, size)))[0]
    data = m.read_virt(buf, n) if n >= 0 else n
    m.kfree(buf)
    return data


def fifo(m: Machine, addr: int) -> drgn.Object:
    """A typed ``struct recfifo *`` at addr, from the module's own DWARF."""
    return drgn.Object(m.var("recfifo_global").prog_, "struct recfifo *", value=addr)


def records(m: Machine, addr: int) -> list[bytes]:
    """The FIFO's records read straight from guest memory, walking its list_head."""
    f = fifo(m, addr)
    return [m.read_virt(r.data.address_, int(r.len))
            for r in list_for_each_entry("struct rec", f.head.address_of_(), "node")]


def test_push_pop_in_order(machine: Machine) -> None:
    f = machine.call("recfifo_create", GFP_KERNEL)
    for word in (b"alpha", b"be", b"", b"gamma-delta"):
        assert push(machine, f, word) == 0
    assert machine.call("recfifo_len", f) == 4
    assert records(machine, f) == [b"alpha", b"be", b"", b"gamma-delta"]
    assert pop(machine, f) == b"alpha"
    assert pop(machine, f, size=1) == -EMSGSIZE  # "be" stays at the head
    assert records(machine, f) == [b"be", b"", b"gamma-delta"]
    assert [pop(machine, f) for _ in range(3)] == [b"be", b"", b"gamma-delta"]
    assert pop(machine, f) == -ENODATA
    machine.call("recfifo_destroy", f)
    assert machine.validate_slab() == []


def test_records_are_kmalloced_with_struct_size(machine: Machine) -> None:
    f = machine.call("recfifo_create", GFP_KERNEL)
    assert push(machine, f, b"x" * 40) == 0  # 24-byte header + 40 bytes: a kmalloc-64 object
    node = fifo(machine, f).head.next.value_()
    obj = machine.find_object(node)
    assert obj is not None and obj.allocated and obj.cache == "kmalloc-64"


def test_too_big_fails_with_enomem_and_changes_nothing(machine: Machine) -> None:
    f = machine.call("recfifo_create", GFP_KERNEL)
    assert push(machine, f, b"keep") == 0
    before = machine.kmalloc(8)
    machine.kfree(before)
    assert machine.call("recfifo_push", f, before, 1 << 40, GFP_NOWARN) & 0xFFFFFFFF == \
        (-ENOMEM) & 0xFFFFFFFF
    assert records(machine, f) == [b"keep"]
    assert "WARNING" not in machine.console
    assert machine.validate_slab() == []


def test_slab_slow_path_hit_counts(machine: Machine) -> None:
    """One push is one kmalloc; the slow path (___slab_alloc) is taken only when the
    CPU slab runs out, so 200 pushes into kmalloc-64 take it a few times, not 200."""
    f = machine.call("recfifo_create", GFP_KERNEL)
    with machine.breakpoint("___slab_alloc") as slow, machine.breakpoint("kmalloc") as fast:
        for i in range(200):
            assert push(machine, f, bytes([i]) * 40) == 0
    assert fast.hits >= 200  # the pushes, plus the test's own buffers
    assert 1 <= slow.hits < 20, slow.hits
    assert machine.call("recfifo_len", f) == 200
    assert records(machine, f)[-1] == bytes([199]) * 40


def test_push_and_pop_from_interrupt_context(machine: Machine) -> None:
    f = machine.call("recfifo_create", GFP_KERNEL)
    assert push(machine, f, b"from-irq", GFP_ATOMIC, context="irq") == 0
    assert push(machine, f, b"from-process") == 0
    assert records(machine, f) == [b"from-irq", b"from-process"]


def test_an_interrupt_at_every_instruction_of_a_push(machine: Machine) -> None:
    """The slab vector's handler allocates from kmalloc-64, the cache a 40-byte record
    uses, at each instruction of recfifo_push: the FIFO stays intact every time, and
    validate_slab() (every slab's freelist, counters and red zones) is clean."""
    m = machine
    f = m.call("recfifo_create", GFP_KERNEL)
    assert push(m, f, b"first") == 0
    data = m.kmalloc(40)
    m.write_virt(data, b"r" * 40)
    base = m.snapshot()
    with m.count_instructions() as n:
        m.call("recfifo_push", f, data, 40, GFP_KERNEL)
    total = n[0]
    assert 20 < total < 1000
    runs = int(m.var("slab_irq_runs"))
    for k in range(1, total + 2):
        m.restore(base)
        m.raise_irq(SLAB_VECTOR, after=k)
        assert m.call("recfifo_push", f, data, 40, GFP_KERNEL) == 0
        m.call("kmemu_test_nop")  # an interrupt still pending (irqs were off) comes in here
        assert int(m.var("slab_irq_runs")) == runs + 1, k
        assert int(m.var("slab_irq_failed")) == 0
        assert records(m, f) == [b"first", b"r" * 40], k
        if k % 16 == 0 or k > total:  # the full slab check costs ~0.2 s: every 16th cut
            assert m.validate_slab() == [], k
    m.restore(base)


def test_unload_frees_everything(machine: Machine) -> None:
    """module_exit destroys recfifo_global with every record still in it."""
    m = machine
    g = m.read_u64(m.module("recfifo").symbol("recfifo_global"))
    for i in range(50):
        assert push(m, g, bytes([i]) * 40) == 0
    head = fifo(m, g).head.address_of_()
    objs = [g] + [r.value_() for r in list_for_each_entry("struct rec", head, "node")]
    assert len(objs) == 51 and all(m.find_object(a).allocated for a in objs)
    m.unload_module("recfifo")
    assert "recfifo: gone" in m.console
    assert not any(m.find_object(a).allocated for a in objs)
    assert m.validate_slab() == []
