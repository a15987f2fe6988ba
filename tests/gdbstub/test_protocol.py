"""GDB protocol handlers against a fake target: every packet the stub serves, and
bad requests answered with errors while the stub keeps going."""

from __future__ import annotations

import doctest

from hypothesis import given, settings
from hypothesis import strategies as st

from emu.frontend.gdbstub import protocol as gp
from emu.frontend.gdbstub.protocol import REGISTERS, FakeTarget, Protocol


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


# --- issue 10: malformed fields are errors, never a guess -----------------------------------

def test_vcont_with_an_unknown_action_is_an_error_and_runs_nothing() -> None:
    p, t = proto()
    assert p.handle(b"vCont;zzz") == b"E01"
    assert t.log == []


def test_bare_vcont_is_an_error_and_runs_nothing() -> None:
    p, t = proto()
    assert p.handle(b"vCont;") == b"E01"
    assert t.log == []


def test_vcont_with_one_bad_action_among_good_ones_runs_nothing() -> None:
    p, t = proto()
    for bad in (b"vCont;c;zzz", b"vCont;s:1;", b"vCont;c:2", b"vCont;Cxx", b"vCont;C5",
                b"vCont;t", b"vCont;r1000,2000", b"vCont;s:-2"):
        assert p.handle(bad) == b"E01", bad
    assert t.log == []


def test_vcont_actions_that_are_fine() -> None:
    p, t = proto()
    assert p.handle(b"vCont;s:1;c") == b"S05" and t.log == ["step"]
    assert p.handle(b"vCont;c:-1") == b"S05" and t.log[-1] == "continue"
    assert p.handle(b"vCont;S05") == b"S05" and t.log[-1] == "step"
    assert p.handle(b"vCont;C00:1") == b"S05" and t.log[-1] == "continue"


def test_negative_register_number_is_an_error_not_the_last_register() -> None:
    p, t = proto()
    t.regs["gs_base"] = 0x1234
    assert p.handle(b"p-1") == b"E01"
    assert p.handle(b"P-1=0000000000000000") == b"E01"
    assert p.handle(f"p{len(REGISTERS):x}".encode()) == b"E01"
    assert p.handle(f"p{len(REGISTERS) - 1:x}".encode()) == (0x1234).to_bytes(8, "little").hex(
    ).encode()


def test_qxfer_with_a_negative_offset_is_an_error_not_an_empty_chunk() -> None:
    p, _ = proto()
    assert p.handle(b"qXfer:features:read:target.xml:-10,10") == b"E00"
    assert p.handle(b"qXfer:features:read:target.xml:10,-10") == b"E00"


def test_qxfer_edge_cases() -> None:
    p, _ = proto()
    size = len(gp.TARGET_XML.encode())
    assert p.handle(b"qXfer:features:read:target.xml:0,0") == b"E00"  # would loop for ever
    assert p.handle(b"qXfer:features:read:other.xml:0,10") == b"E00"
    assert p.handle(b"qXfer:features:read:target.xml:0x0,10") == b"E00"
    assert p.handle(b"qXfer:features:read:target.xml:0,10,3") == b"E00"
    assert p.handle(f"qXfer:features:read:target.xml:{size:x},10".encode()) == b"l"
    assert p.handle(f"qXfer:features:read:target.xml:{size + 1:x},10".encode()) == b"E01"


def test_every_numeric_field_refuses_signs_prefixes_spaces_and_overflow() -> None:
    """int(x, 16) takes '-1', '+1', ' 1', '0x1' and '1_0'; the stub takes hex digits only."""
    p, t = proto()
    t.mem.update({0x10 + i: i for i in range(16)})
    assert p.handle(b"m10,4") == b"00010203"
    bad = [b"m-10,4", b"m+10,4", b"m 10,4", b"m0x10,4", b"m1_0,4", b"m10,-4", b"m10,4,4",
           b"m10", b"m1ffff888000100000,4", b"mffffffffffffffff,2",
           b"M10,2:de ad", b"M10,2:dead,", b"M10,-2:dead", b"M10,2", b"M10,2:d",
           b"X10,-1:a", b"X10,1", b"X-10,1:a",
           b"Z0,-1,1", b"Z0,ffffffff80101000", b"Z0,ffffffff80101000,1,1", b"Z-1,10,1",
           b"Z0,1ffffffff80101000,1", b"z2,10,+8",
           b"P0=0 0000000000000", b"P0=00000000000000000", b"P=00", b"P0",
           b"G" + b"0" * 3, b"G zz",
           b"Hg2", b"Hgzz", b"Hx1", b"T2", b"T-1", b"Tzz", b"T",
           b"c10", b"s10", b"gxx", b"?x", b"D;zz", b"Dxx",
           b"qRcmd,zz", b"qRcmd,616"]
    for packet in bad:
        assert p.handle(packet).startswith(b"E"), packet
    assert t.log == [] and t.bps == set()
    assert t.mem[0x10] == 0  # nothing written
    for good in (b"Hg0", b"Hc-1", b"Hg1", b"T1", b"D;1", b"qAttached:1"):
        assert not p.handle(good).startswith(b"E"), good


def test_z_with_an_unknown_type_is_unsupported() -> None:
    p, t = proto()
    assert p.handle(b"Z5,10,1") == b"" and t.bps == set()


def test_detach_is_recorded_for_the_server() -> None:
    p, t = proto()
    assert not p.detached
    assert p.handle(b"D") == b"OK" and p.detached and t.log == ["detach (resume)"]


def test_the_checksum_is_two_hex_digits() -> None:
    from emu.frontend.gdbstub.transport import BadPacket, Decoder

    body = b"g"  # checksum 0x67
    for cs in (b" 67", b"+67"):  # int(' 6', 16) == 6 would have accepted a wrong form
        assert isinstance(Decoder().feed(b"$" + body + b"#" + cs)[0], BadPacket)
    assert isinstance(Decoder().feed(b"$\x05#+5")[0], BadPacket)  # int('+5', 16) == 5
