"""The stub's fast paths keep gdb's meaning: parked breakpoints, batched register reads,
single steps without the Ctrl-C watcher (issue 13, speed)."""

from __future__ import annotations

from emu.core.cpu import REGISTER_NAMES
from emu.frontend.gdbstub.protocol import REGISTERS, Protocol
from emu.frontend.gdbstub.server import is_step
from emu.frontend.gdbstub.target import MachineTarget
from emu.frontend.gdbstub.transport import escape
from tests.gdbstub.conftest import bare


def test_a_removed_breakpoint_is_parked_and_does_not_stop(debug_session) -> None:
    s = debug_session
    m = s.m
    p = Protocol(MachineTarget(s))
    add = m.symbol("kmemu_test_add")
    assert p.handle(f"Z0,{add:x},1".encode()) == b"OK"
    point = s.point_at("breakpoint", add)
    assert p.handle(f"z0,{add:x},1".encode()) == b"OK"
    assert p.handle(f"z0,{add:x},1".encode()) == b"E01"  # already removed, as gdb expects
    assert s.point_at("breakpoint", add) is point and not point.bp.enabled
    assert m.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91  # parked: no stop, no hit
    assert point.hits == 0
    assert p.handle(f"Z0,{add:x},1".encode()) == b"OK"  # the same point, on again
    assert s.point_at("breakpoint", add) is point and point.bp.enabled
    assert p.handle(b"qRcmd," + b"call kmemu_test_add 1 2 3 4 5 6".hex().encode()) != b""
    reply = p.handle(b"c")
    assert bare(reply) == b"T05swbreak:;thread:1;" and point.hits == 1
    # the expedited registers are the ones gdb's frame id needs, as 'p' reads them
    assert reply.endswith(b"06:%s;07:%s;10:%s;" % (p.handle(b"p6"), p.handle(b"p7"),
                                                  p.handle(b"p10")))
    assert int.from_bytes(bytes.fromhex(p.handle(b"p10").decode()), "little") == add
    p.handle(b"D")
    assert s.points == {}


def test_g_reads_every_register_as_p_does(debug_session) -> None:
    m = debug_session.m
    p = Protocol(MachineTarget(debug_session))
    g = p.handle(b"g")
    sizes = [size for _, size in REGISTERS]
    offs = [sum(sizes[:i]) * 2 for i in range(len(sizes))]
    assert all(g[o:o + 2 * n] == p.handle(b"p%x" % i)
               for i, (o, n) in enumerate(zip(offs, sizes, strict=True)))
    assert m.cpu.regs(REGISTER_NAMES) == [m.cpu.reg(n) for n in REGISTER_NAMES]


def test_single_steps_are_told_apart_from_continues() -> None:
    assert is_step(b"s") and is_step(b"vCont;s:1") and is_step(b"vCont;s:1;c")
    assert not is_step(b"c") and not is_step(b"vCont;c") and not is_step(b"vCont;x")


def test_escape_leaves_plain_payloads_alone() -> None:
    assert escape(b"0123abcdef") == b"0123abcdef"
    assert escape(b"a$b#c}d*") == b"a}\x04b}\x03c}]d}\x0a"
