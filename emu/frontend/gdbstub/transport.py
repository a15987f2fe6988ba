"""GDB remote protocol framing, apart from what the packets mean.

Packets are ``$<data>#<2 hex checksum>``; the checksum is the sum of the
data bytes modulo 256.  ``}`` escapes ``$ # } *`` as the byte XOR 0x20, and
``*`` introduces run-length encoding (``X*n`` repeats X ``ord(n) - 29`` more
times).  The receiver acknowledges with ``+`` or asks for a resend with
``-``; ``\\x03`` alone is an interrupt request.

>>> frame(b"OK")
b'$OK#9a'
>>> Decoder().feed(b"+$g#67")
[Ack(ok=True), Packet(data=b'g')]
"""

from __future__ import annotations

from dataclasses import dataclass

from emu.frontend.gdbstub.protocol import PacketError, hex_number

MAX_PACKET = 16384  # what we advertise in qSupported (PacketSize)
ESCAPED = frozenset(b"$#}*")
_ESCAPED_BYTES = (b"$", b"#", b"}", b"*")


class TransportError(ValueError):
    """A malformed packet (the stub answers '-' and keeps serving)."""


@dataclass(frozen=True)
class Packet:
    data: bytes


@dataclass(frozen=True)
class Ack:
    ok: bool


@dataclass(frozen=True)
class Interrupt:
    """Ctrl-C from the client (a bare 0x03 byte)."""


@dataclass(frozen=True)
class BadPacket:
    """A packet that failed its checksum, or was too long: answer '-'."""

    reason: str


Event = Packet | Ack | Interrupt | BadPacket


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def escape(data: bytes) -> bytes:
    if not any(c in data for c in _ESCAPED_BYTES):
        return data  # hex replies (g, m, T...) never need it: no per-byte loop
    out = bytearray()
    for b in data:
        if b in ESCAPED:
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    """Undo '}' escapes and expand run-length encoding."""
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x7D:
            if i + 1 >= len(data):
                raise TransportError("escape character at the end of a packet")
            out.append(data[i + 1] ^ 0x20)
            i += 2
        elif b == 0x2A:  # '*': repeat the previous byte
            if not out or i + 1 >= len(data):
                raise TransportError("run-length marker without a byte to repeat")
            count = data[i + 1] - 29
            if count < 0:
                raise TransportError(f"bad run-length count {data[i + 1]!r}")
            out += bytes([out[-1]]) * count
            i += 2
        else:
            out.append(b)
            i += 1
    return bytes(out)


def rle_encode(data: bytes) -> bytes:
    """Escape and run-length encode raw data.

    Runs of a byte that needs no escape become ``X*n`` (at most 97 more); counts
    that would read as '#', '$', '+', '-', '}' or '*' are shortened.  Escaped
    bytes are never part of a run, so an escape pair is never split.
    """
    bad_counts = {ord(c) for c in "#$+-}*"}
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b in ESCAPED:
            out += bytes((0x7D, b ^ 0x20))
            i += 1
            continue
        run = 1
        while i + run < len(data) and data[i + run] == b and run < 98:
            run += 1
        extra = run - 1
        while extra >= 3 and extra + 29 in bad_counts:
            extra -= 1
        if extra >= 3:
            out += bytes([b, 0x2A, extra + 29])
            i += extra + 1
        else:
            out.append(b)
            i += 1
    return bytes(out)


def frame(data: bytes, rle: bool = False) -> bytes:
    """A packet ready to send: escaped, optionally run-length encoded, checksummed."""
    body = rle_encode(data) if rle else escape(data)
    return b"$" + body + b"#" + f"{checksum(body):02x}".encode()


class Decoder:
    """Turns a byte stream into events; keeps partial packets between feeds."""

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self.buf = bytearray()
        self.max_packet = max_packet

    def feed(self, data: bytes) -> list[Event]:
        self.buf += data
        out: list[Event] = []
        while self.buf:
            b = self.buf[0]
            if b == 0x2B:  # '+'
                out.append(Ack(True))
                del self.buf[0]
            elif b == 0x2D:  # '-'
                out.append(Ack(False))
                del self.buf[0]
            elif b == 0x03:
                out.append(Interrupt())
                del self.buf[0]
            elif b == 0x24:  # '$'
                end = self.buf.find(b"#")
                if end < 0:
                    if len(self.buf) > self.max_packet + 4:
                        out.append(BadPacket(f"packet longer than {self.max_packet} bytes"))
                        self.buf.clear()
                    break
                if len(self.buf) < end + 3:
                    break  # checksum not here yet
                body = bytes(self.buf[1:end])
                cs = bytes(self.buf[end + 1:end + 3])
                del self.buf[:end + 3]
                if len(body) > self.max_packet:
                    out.append(BadPacket(f"packet longer than {self.max_packet} bytes"))
                    continue
                try:
                    ok = len(cs) == 2 and hex_number(cs, "checksum", 256) == checksum(body)
                except PacketError:
                    ok = False
                if not ok:
                    out.append(BadPacket(f"bad checksum {cs!r}"))
                    continue
                try:
                    out.append(Packet(unescape(body)))
                except TransportError as e:
                    out.append(BadPacket(str(e)))
            else:
                del self.buf[0]  # noise between packets is ignored
        return out
