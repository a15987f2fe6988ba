"""GDB protocol handlers against a fake target: every packet the stub serves, and
bad requests answered with errors while the stub keeps going."""

from __future__ import annotations

import doctest

from hypothesis import given, settings
from hypothesis import strategies as st

from emu.gdbstub import protocol as gp
from emu.gdbstub.protocol import REGISTERS, FakeTarget, Protocol


def proto() -> tuple[Protocol, FakeTarget]:
    t = FakeTarget()
    return Protocol(t), t


def test_registers() -> None:
    p, t = proto()
    t.regs["rip"] = 0xFFFFFFFF80101234
    t.regs["eflags"] = 0x246
    g = p.handle(b"g")
    assert len(g) == 2 * sum(s for _, s in REGISTERS)
    rip_off = 2 * 8 * 16
    assert bytes.fromhex(g[rip_off:rip_off + 16].decode()) == (0xFFFFFFFF80101234).to_bytes(8,
                                                                                      "little")
    assert p.handle(b"p10") == (0xFFFFFFFF80101234).to_bytes(8, "little").hex().encode()
    assert p.handle(b"P0=" + (7).to_bytes(8, "little").hex().encode()) == b"OK"
    assert t.regs["rax"] == 7
    assert p.handle(b"G" + g) == b"OK" and t.regs["rax"] == 0
    assert p.handle(b"p11") == (0x246).to_bytes(4, "little").hex().encode()


def test_memory() -> None:
    p, t = proto()
    assert p.handle(b"M1000,4:deadbeef") == b"OK"
    assert p.handle(b"m1000,4") == b"deadbeef"
    assert p.handle(b"X1004,2:\x01\x02") == b"OK"
    assert p.handle(b"m1002,4") == b"beef0102"
    assert p.handle(b"m5000,4") == b"E14"  # unmapped: an error, not a crash


def test_breakpoints_and_run_control() -> None:
    p, t = proto()
    assert p.handle(b"Z0,ffffffff80101000,1") == b"OK"
    assert p.handle(b"Z2,ffff888000001000,8") == b"OK"
    assert (0, 0xFFFFFFFF80101000) in t.bps and (2, 0xFFFF888000001000) in t.bps
    assert p.handle(b"z0,ffffffff80101000,1") == b"OK"
    assert p.handle(b"z0,ffffffff80101000,1") == b"E01"
    assert p.handle(b"vCont?") == b"vCont;c;C;s;S"
    assert p.handle(b"vCont;c") == b"S05" and p.handle(b"vCont;s:1") == b"S05"
    assert p.handle(b"c") == b"S05" and t.log[:3] == ["continue", "step", "continue"]


def test_queries() -> None:
    p, t = proto()
    assert b"qXfer:features:read+" in p.handle(b"qSupported:multiprocess+")
    xml = b""
    off = 0
    while True:
        r = p.handle(f"qXfer:features:read:target.xml:{off:x},100".encode())
        xml += r[1:]
        off += len(r) - 1
        if r[:1] == b"l":
            break
    assert b"i386:x86-64" in xml and b'name="rip"' in xml and b'name="gs_base"' in xml
    assert p.handle(b"qRcmd," + b"buddyinfo".hex().encode()) == b"ran: buddyinfo\n".hex().encode()
    assert p.handle(b"?") == b"S05" and p.handle(b"qAttached") == b"1"
    assert p.handle(b"QStartNoAckMode") == b"OK" and p.no_ack


def test_bad_requests_get_errors_and_the_stub_goes_on() -> None:
    p, t = proto()
    for bad in (b"mzz,4", b"m1000", b"M1000,4:abc", b"P99=00", b"pzz", b"G00", b"Zx",
                b"X1000,5:ab", b"m1000,ffffff"):
        assert p.handle(bad).startswith(b"E"), bad
    assert p.handle(b"Zq") == b"E01"
    assert p.handle(b"unknownpacket") == b""
    assert p.handle(b"?") == b"S05"
    assert p.handle(b"k") is None and t.log[-1] == "detach"


def test_doctests() -> None:
    assert doctest.testmod(gp).failed == 0


PACKET_HEADS = [b"g", b"G", b"p", b"P", b"m", b"M", b"X", b"Z", b"z", b"c", b"s", b"v", b"q",
                b"Q", b"H", b"T", b"?", b"D", b"vCont;", b"qXfer:features:read:target.xml:",
                b"qRcmd,", b"Z2,", b"m ffff", b""]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PACKET_HEADS), st.binary(max_size=60))
def test_fuzz_every_packet_gets_a_reply_and_never_an_exception(head: bytes, tail: bytes) -> None:
    p, _ = proto()
    out = p.handle(head + tail)
    assert out is None or isinstance(out, bytes)
    assert p.handle(b"?") == b"S05"  # still serving


def test_target_description_has_what_gdb_requires() -> None:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(gp.TARGET_XML)
    regs = [r.get("name") for r in root.iter("reg")]
    assert regs == [name for name, _ in REGISTERS]
    assert [int(r.get("regnum")) for r in root.iter("reg")] == list(range(len(regs)))
    assert root.find("feature/flags[@id='i386_eflags']") is not None
    assert {f.get("name") for f in root.iter("feature")} == {"org.gnu.gdb.i386.core",
                                                           "org.gnu.gdb.i386.segments"}
    p, _ = proto()
    assert p.handle(b"p20") == (0x37F).to_bytes(4, "little").hex().encode()  # fctrl
