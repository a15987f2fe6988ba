"""GDB remote protocol framing: checksums, escapes, run-length encoding, bad input."""

from __future__ import annotations

import doctest

from hypothesis import given
from hypothesis import strategies as st

from emu.frontend.gdbstub import transport as t


def test_frame_and_checksum() -> None:
    assert t.frame(b"OK") == b"$OK#9a"
    assert t.frame(b"") == b"$#00"
    assert t.checksum(b"g") == 0x67


def test_escapes_round_trip() -> None:
    raw = b"a$b#c}d*e"
    framed = t.frame(raw)
    assert b"}" in framed[1:-3]
    assert t.Decoder().feed(framed) == [t.Packet(raw)]


def test_run_length_decoding() -> None:
    # '0* ' is '0' repeated 1 + (32 - 29) = 4 times
    body = b"0* "
    pkt = b"$" + body + b"#" + f"{t.checksum(body):02x}".encode()
    assert t.Decoder().feed(pkt) == [t.Packet(b"0000")]


TRICKY = st.lists(st.sampled_from(list(b"}]$#*+-a0\x03")), max_size=300).map(bytes)


@given(st.one_of(st.binary(max_size=300), TRICKY), st.booleans())
def test_any_payload_round_trips(data: bytes, rle: bool) -> None:
    assert t.Decoder().feed(t.frame(data, rle=rle)) == [t.Packet(data)]


@given(st.binary(max_size=200), st.integers(1, 7))
def test_split_feeds(data: bytes, chunk: int) -> None:
    framed = b"+" + t.frame(data, rle=True) + b"+"
    d = t.Decoder()
    events = []
    for i in range(0, len(framed), chunk):
        events += d.feed(framed[i:i + chunk])
    assert events == [t.Ack(True), t.Packet(data), t.Ack(True)]


def test_runs_next_to_escapes() -> None:
    for data in (b"}]]]]]]", b"$$$$$$", b"a" * 200, b"}" * 10 + b"]" * 10, b"#" * 7):
        for rle in (False, True):
            assert t.Decoder().feed(t.frame(data, rle=rle)) == [t.Packet(data)], (data, rle)
    assert len(t.frame(b"0" * 64, rle=True)) < 20


def test_bad_checksum_and_garbage() -> None:
    d = t.Decoder()
    out = d.feed(b"$g#00$g#67")
    assert isinstance(out[0], t.BadPacket) and "checksum" in out[0].reason
    assert out[1] == t.Packet(b"g")
    assert isinstance(d.feed(b"$g#zz")[0], t.BadPacket)
    assert d.feed(b"noise-+\x03") == [t.Ack(False), t.Ack(True), t.Interrupt()]


def test_overlong_packet_is_refused_and_the_stream_recovers() -> None:
    d = t.Decoder(max_packet=16)
    out = d.feed(b"$" + b"x" * 40)
    assert isinstance(out[0], t.BadPacket)
    assert d.feed(t.frame(b"qC")) == [t.Packet(b"qC")]


def test_bad_escape_and_rle() -> None:
    for body in (b"abc}", b"*a", b"a*\x01"):
        pkt = b"$" + body + b"#" + f"{t.checksum(body):02x}".encode()
        assert isinstance(t.Decoder().feed(pkt)[0], t.BadPacket)


def test_doctests() -> None:
    assert doctest.testmod(t).failed == 0
