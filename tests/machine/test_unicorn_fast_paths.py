"""The host's own ways into Unicorn (emu.core.cpu): ``RamReader`` and ``add_code_hook``
behave as the binding's ``mem_read`` and ``hook_add`` do, errors included."""

from __future__ import annotations

import pytest
from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE, UC_HOOK_MEM_READ, UcError

from emu import Machine
from emu.core.cpu import CpuError, RamReader, add_code_hook, delete_hook


def test_ram_reader_reads_what_mem_read_reads(machine: Machine) -> None:
    r = RamReader(machine.uc)
    p = machine.kmalloc(64)
    pa = machine.translate(p)
    machine.write_phys(pa, bytes(range(64)))
    uc = machine.uc
    for at, n in ((pa, 64), (pa + 3, 5), (pa & ~0xFFF, 4096), (0x100000, 3 * 4096 + 7),
                  (0x200000, 1 << 20), (0, 1)):
        assert r.read(at, n) == bytes(uc.mem_read(at, n)), (hex(at), n)
    assert r.read(pa, 8) == bytes(range(8))  # the reused buffer: a later read, new bytes
    assert r.u64(pa + 8) == int.from_bytes(bytes(range(8, 16)), "little")
    big = r.read(0x100000, 1 << 20)
    assert r.read(0x100000, 16) == big[:16]  # a short read after a long one


def test_ram_reader_refuses_unmapped_memory_as_mem_read_does(machine: Machine) -> None:
    r = RamReader(machine.uc)
    with pytest.raises(UcError) as mine:
        r.read(1 << 45, 8)
    with pytest.raises(UcError) as theirs:
        machine.uc.mem_read(1 << 45, 8)
    assert mine.value.errno == theirs.value.errno
    with pytest.raises(UcError):
        r.u64(1 << 45)


def test_code_hooks_see_what_the_bindings_see(machine: Machine) -> None:
    """Per instruction and per block, the same addresses and sizes as hook_add gives."""
    m = machine
    m.kfree(m.kmalloc(64))  # plans made: the call below runs the same code each time
    snap = m.snapshot()
    seen: dict[str, list[tuple[int, int]]] = {"ours": [], "binding": []}
    for htype in (UC_HOOK_CODE, UC_HOOK_BLOCK):
        for who in ("ours", "binding"):
            seen[who] = []

            def record(_uc: object, address: int, size: int, _d: object, who: str = who) -> None:
                seen[who].append((address, size))

            m.restore(snap)
            h = (add_code_hook(m.uc, htype, record) if who == "ours"
                 else m.uc.hook_add(htype, record))
            m.uc.ctl_flush_tb()
            m.kmalloc(64)
            delete_hook(m.uc, h)
        assert seen["ours"] == seen["binding"] and len(seen["ours"]) > 10


def test_an_exception_in_a_code_hook_stops_the_run_and_is_raised(machine: Machine) -> None:
    m = machine
    calls = []

    def boom(_uc: object, address: int, _size: int, _d: object) -> None:
        calls.append(address)
        raise KeyError("from the hook")

    h = add_code_hook(m.uc, UC_HOOK_CODE, boom, m.symbol("kmemu_test_nop"),
                      m.symbol("kmemu_test_nop"))
    m.uc.ctl_flush_tb()
    with pytest.raises(KeyError, match="from the hook"):
        m.call("kmemu_test_nop")
    assert calls == [m.symbol("kmemu_test_nop")]  # stopped at the first
    delete_hook(m.uc, h)
    with pytest.raises(CpuError, match="UC_HOOK_CODE or UC_HOOK_BLOCK"):
        add_code_hook(m.uc, UC_HOOK_MEM_READ, boom)
