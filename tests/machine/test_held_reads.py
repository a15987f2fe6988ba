"""Reads inside ``Machine._reads_held()`` (the views' and validators' scope) answer as
reads outside it do, though they keep each page's translation, page-table pages and the
bytes of each RAM page they touched; a host write inside forgets all of it."""

from __future__ import annotations

import pytest

from emu import KmemuError, Machine

PAGE_OFFSET = 0xFFFF888000000000


def _outcome(fn, *args):
    try:
        return fn(*args)
    except KmemuError as e:
        return (type(e), str(e))


def test_held_reads_answer_as_plain_reads(machine: Machine) -> None:
    p = machine.kmalloc(4096)
    machine.write_virt(p, bytes(range(256)) * 16)
    pa = p - PAGE_OFFSET
    cases = [(p, 8), (p + 4088, 8), (p + 4090, 12), (p + 1, 4095), (p, 4096), (p + 100, 1)]
    phys = [(pa, 8), (pa + 4095, 1), (pa + 4090, 12), (1 << 45, 8), (0xA0000, 8)]
    virt = [*cases, (0xFFFFFFFFFFFFF000, 8), (0x1000, 8)]  # unmapped at the end
    want = ([_outcome(machine.read_virt, va, n) for va, n in virt],
            [_outcome(machine.read_phys, a, n) for a, n in phys])
    with machine._reads_held():  # noqa: SLF001
        got = ([_outcome(machine.read_virt, va, n) for va, n in virt],
               [_outcome(machine.read_phys, a, n) for a, n in phys])
        again = ([_outcome(machine.read_virt, va, n) for va, n in virt],
                 [_outcome(machine.read_phys, a, n) for a, n in phys])
    assert got == want and again == want
    assert all(isinstance(r, bytes) for r in want[0][:len(cases)])


@pytest.mark.parametrize("how", ["write_virt", "write_phys"])
def test_a_host_write_inside_is_seen_by_the_next_read(machine: Machine, how: str) -> None:
    p = machine.kmalloc(64)
    machine.write_virt(p, b"A" * 16)
    with machine._reads_held():  # noqa: SLF001
        assert machine.read_virt(p, 16) == b"A" * 16
        assert machine.read_phys(p - PAGE_OFFSET, 16) == b"A" * 16
        if how == "write_virt":
            machine.write_virt(p + 4, b"BB")
        else:
            machine.write_phys(p - PAGE_OFFSET + 4, b"BB")
        assert machine.read_virt(p, 8) == b"AAAABBAA"
        assert machine.read_phys(p - PAGE_OFFSET, 8) == b"AAAABBAA"
    assert machine.read_virt(p, 8) == b"AAAABBAA"
