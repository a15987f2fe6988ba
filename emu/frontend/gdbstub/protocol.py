"""GDB remote protocol: one handler per packet, over an abstract target.

Layer 6.  :class:`Target` is what the stub needs from a machine (registers,
virtual memory, breakpoints, run control, monitor commands); the TCP
server adapts :class:`emu.Machine` to it.  Handlers never raise for bad
input: a malformed or failing request answers ``E NN`` (or an empty reply
for unsupported packets, as the protocol asks) and the stub keeps serving.

Every field is parsed by one of three functions: :func:`hex_number` (hex
digits only: no sign, ``0x``, spaces or ``_``, and below a limit that the
field's meaning sets: a register number below the register count, an address
below 2**64, a length below the request limit), :func:`hex_bytes` (an even
number of hex digits) and :func:`split_fields` (exactly the fields the packet
has).  A malformed packet is a :class:`PacketError` and answers ``E01``
(``E00`` for ``qXfer``, as gdb documents), before anything is done: a resume
packet with one bad action does not run the guest.

>>> p = Protocol(FakeTarget())
>>> p.handle(b"?")
b'S05'
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Protocol as TypingProtocol

# gdb's x86-64 'g' packet order: org.gnu.gdb.i386.core (64-bit GPRs and rip, 32-bit
# eflags and segment selectors, the x87 registers gdb requires in that feature), then
# org.gnu.gdb.i386.segments (fs_base, gs_base).  The kernel is built without FPU use
# (-mgeneral-regs-only), so the x87 registers read as their reset values.
GPRS = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
        "r12", "r13", "r14", "r15", "rip"]
REGS32 = ["eflags", "cs", "ss", "ds", "es", "fs", "gs"]
X87 = [f"st{i}" for i in range(8)]
X87_CTL = ["fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"]
REGS64_TAIL = ["fs_base", "gs_base"]
REGISTERS: list[tuple[str, int]] = ([(r, 8) for r in GPRS] + [(r, 4) for r in REGS32]
                                    + [(r, 10) for r in X87] + [(r, 4) for r in X87_CTL]
                                    + [(r, 8) for r in REGS64_TAIL])
#: Registers the stub serves but the CPU model does not use: (reset value).
FPU_RESET = {"fctrl": 0x37F, "ftag": 0xFFFF} | {r: 0 for r in X87 + X87_CTL
                                                if r not in ("fctrl", "ftag")}
MAX_MEM = 4096  # bytes per m/M/X request
#: The registers the target reads for a 'g' packet, in one call (read_registers).
LIVE = tuple(name for name, _ in REGISTERS if name not in FPU_RESET)
#: The registers a 'T' stop reply carries (as gdbserver's amd64 stop replies do): gdb's
#: breakpoint and step checks and its frame id need only these, so a stop that gdb
#: resumes from at once (an ignored hit, one instruction of ``stepi N``) costs it no
#: 'g' round trip; gdb reads the rest with 'g' when it shows the stop.
EXPEDITED = ("rbp", "rsp", "rip")
_EXPEDITED = tuple((b"%02x:" % [n for n, _ in REGISTERS].index(name),
                    dict(REGISTERS)[name]) for name in EXPEDITED)

_EFLAGS = [("CF", 0), ("", 1), ("PF", 2), ("AF", 4), ("ZF", 6), ("SF", 7), ("TF", 8),
           ("IF", 9), ("DF", 10), ("OF", 11), ("NT", 14), ("RF", 16), ("VM", 17), ("AC", 18),
           ("VIF", 19), ("VIP", 20), ("ID", 21)]


def _reg_type(name: str) -> str:
    if name == "rip":
        return "code_ptr"
    if name in ("rsp", "rbp"):
        return "data_ptr"
    if name == "eflags":
        return "i386_eflags"
    if name in X87:
        return "i387_ext"
    return "int"


def _reg_xml(i: int, name: str, size: int) -> str:
    group = ' group="float"' if name in X87_CTL else ""
    return (f'    <reg name="{name}" bitsize="{size * 8}" regnum="{i}" '
            f'type="{_reg_type(name)}"{group}/>\n')


def _target_xml() -> str:
    flags = "".join(f'      <field name="{n}" start="{b}" end="{b}"/>\n' for n, b in _EFLAGS)
    core = "".join(_reg_xml(i, n, s) for i, (n, s) in enumerate(REGISTERS)
                   if n not in REGS64_TAIL)
    segs = "".join(_reg_xml(i, n, s) for i, (n, s) in enumerate(REGISTERS)
                   if n in REGS64_TAIL)
    return ('<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n'
            '<target version="1.0">\n  <architecture>i386:x86-64</architecture>\n'
            '  <feature name="org.gnu.gdb.i386.core">\n'
            f'    <flags id="i386_eflags" size="4">\n{flags}    </flags>\n'
            f'{core}  </feature>\n  <feature name="org.gnu.gdb.i386.segments">\n'
            f'{segs}  </feature>\n</target>\n')


TARGET_XML = _target_xml()


ADDRESS_LIMIT = 1 << 64
THREAD = 1  # the one thread the stub reports (qC, qfThreadInfo)
_HEX = frozenset(b"0123456789abcdefABCDEF")


class PacketError(ValueError):
    """A malformed packet field (the stub answers an error and goes on)."""


def hex_number(field: bytes, what: str, limit: int = ADDRESS_LIMIT) -> int:
    """An unsigned hex field below ``limit``; anything else is a :class:`PacketError`.

    >>> hex(hex_number(b"ffff888000000000", "address"))
    '0xffff888000000000'
    >>> hex_number(b"-1", "register")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    PacketError: register: bad hex number b'-1'
    """
    if not field or not _HEX.issuperset(field):
        raise PacketError(f"{what}: bad hex number {field[:24]!r}")
    n = int(field, 16)
    if n >= limit:
        raise PacketError(f"{what}: {n:#x} is too large (limit {limit:#x})")
    return n


def hex_bytes(field: bytes, what: str) -> bytes:
    """Bytes written as pairs of hex digits (``bytes.fromhex`` would skip spaces)."""
    if len(field) % 2 or not _HEX.issuperset(field):
        raise PacketError(f"{what}: bad hex data")
    return bytes.fromhex(field.decode())


def split_fields(data: bytes, sep: bytes, n: int, what: str) -> list[bytes]:
    """Exactly ``n`` fields separated by ``sep``."""
    parts = data.split(sep)
    if len(parts) != n:
        raise PacketError(f"{what}: expected {n} fields separated by {sep!r}")
    return parts


def thread_id(field: bytes) -> int:
    """A thread-id: ``-1`` (all threads, as -1), ``0`` (any) or a positive hex number."""
    return -1 if field == b"-1" else hex_number(field, "thread-id", 1 << 32)


def address_range(field: bytes, what: str, limit: int) -> tuple[int, int]:
    """``ADDR,LENGTH`` of a memory packet: a 64-bit address, a length below ``limit``,
    the range inside the 64-bit space."""
    a, n = split_fields(field, b",", 2, what)
    addr, length = hex_number(a, f"{what} address"), hex_number(n, f"{what} length", limit)
    if addr + length > ADDRESS_LIMIT:
        raise PacketError(f"{what}: range {addr:#x}+{length:#x} wraps past 2**64")
    return addr, length


class Target(TypingProtocol):
    def read_register(self, name: str) -> int: ...
    def read_registers(self, names: tuple[str, ...]) -> list[int]: ...  # 'g', at every stop
    def write_register(self, name: str, value: int) -> None: ...
    def read_memory(self, addr: int, n: int) -> bytes: ...
    def write_memory(self, addr: int, data: bytes) -> None: ...
    def add_breakpoint(self, kind: int, addr: int, length: int) -> bool: ...
    def remove_breakpoint(self, kind: int, addr: int, length: int) -> bool: ...
    def resume(self, step: bool) -> str: ...  # returns the stop reply, e.g. "S05"
    def monitor(self, command: str) -> str: ...
    def detach(self, resume: bool = False) -> str | None: ...  # what became of a stopped call
    def attach(self) -> str | None: ...  # a client connects: stop what detach left running
    def halt_reason(self) -> str: ...  # the reply to '?'
    def interrupt(self) -> None: ...  # Ctrl-C (from the server's watcher thread)
    def take_output(self) -> list[str]: ...  # console text for 'O' packets
    def libraries(self) -> str: ...  # qXfer:libraries XML (loaded modules)


class Protocol:
    def __init__(self, target: Target) -> None:
        self.t = target
        self.no_ack = False
        self.detached = False  # 'D' was answered: the client is leaving

    # --- dispatch ------------------------------------------------------------------
    def handle(self, data: bytes) -> bytes | None:
        """The reply payload for one packet (None: no reply, e.g. after 'k')."""
        if not data:
            return b""
        try:
            return self._dispatch(data)
        except (ValueError, IndexError, KeyError, struct.error):
            return b"E01"
        except Exception as e:  # noqa: BLE001 - a failing target must not kill the stub
            return b"E14" if "PageFault" in type(e).__name__ or "fault" in str(e) else b"E03"

    def _dispatch(self, data: bytes) -> bytes | None:  # noqa: C901 - one case per packet
        c, rest = chr(data[0]), data[1:]
        if c in "?g":
            if rest:
                raise PacketError(f"'{c}' takes no arguments")
            return self._stop_reply(self.t.halt_reason()) if c == "?" else self._read_all()
        if c == "G":
            return self._write_all(hex_bytes(rest, "G"))
        if c == "p":
            return self._read_one(hex_number(rest, "register number", len(REGISTERS)))
        if c == "P":
            n, val = split_fields(rest, b"=", 2, "P")
            return self._write_one(hex_number(n, "register number", len(REGISTERS)),
                                   hex_bytes(val, "P value"))
        if c == "m":
            addr, n = address_range(rest, "m", MAX_MEM + 1)
            return self.t.read_memory(addr, n).hex().encode()
        if c == "M":
            head, hexdata = split_fields(rest, b":", 2, "M")
            addr, n = address_range(head, "M", MAX_MEM + 1)
            raw = hex_bytes(hexdata, "M data")
            if len(raw) != n:
                raise PacketError(f"M: {len(raw)} bytes of data for length {n}")
            if n:
                self.t.write_memory(addr, raw)
            return b"OK"
        if c == "X":
            head, raw = rest.split(b":", 1) if b":" in rest else (rest, None)
            if raw is None:
                raise PacketError("X: no ':' before the data")
            addr, n = address_range(head, "X", MAX_MEM + 1)
            if len(raw) != n:
                raise PacketError(f"X: {len(raw)} bytes of data for length {n}")
            if n:
                self.t.write_memory(addr, raw)
            return b"OK"
        if c in "Zz":
            return self._point(c == "Z", rest)
        if c in "cs":
            if rest:  # 'c ADDR': resuming elsewhere would skip the stopped code's state
                raise PacketError(f"'{c}' at another address is not supported")
            return self._stop_reply(self.t.resume(step=c == "s"))
        if c == "D":
            if rest and not rest.startswith(b";"):
                raise PacketError("D takes no arguments but ';PID'")
            if rest:
                hex_number(rest[1:], "pid", 1 << 32)
            self.t.detach(resume=True)  # gdb's detach: the target runs on
            self.detached = True
            return b"OK"
        if c == "k":
            self.t.detach()
            return None
        if c == "H":
            if rest[:1] not in (b"g", b"c", b"G", b"m", b"M") or thread_id(rest[1:]) not in (
                    -1, 0, THREAD):
                raise PacketError(f"H: no thread {rest[1:]!r}")
            return b"OK"
        if c == "T":
            if thread_id(rest) != THREAD:
                raise PacketError(f"T: no thread {rest!r}")
            return b"OK"
        if c == "q":
            return self._query(rest)
        if c == "Q":
            if rest == b"StartNoAckMode":
                self.no_ack = True
                return b"OK"
            return b""
        if c == "v":
            return self._v(rest)
        return b""  # unsupported: the empty reply

    def _point(self, insert: bool, rest: bytes) -> bytes:
        """``Z/z TYPE,ADDR,KIND``: types 0-1 breakpoints, 2-4 watchpoints (KIND is the
        watched length; the session's watch check refuses what it cannot watch)."""
        kind, addr, length = split_fields(rest, b",", 3, "Z")
        k = hex_number(kind, "Z type", 1 << 32)
        if k > 4:
            return b""  # a point type the stub does not know: unsupported
        a, n = hex_number(addr, "Z address"), hex_number(length, "Z length")
        ok = self.t.add_breakpoint(k, a, n) if insert else self.t.remove_breakpoint(k, a, n)
        return b"OK" if ok else b"E01"

    # --- registers -----------------------------------------------------------------
    def _stop_reply(self, reply: str) -> bytes:
        """A ``T`` stop reply with :data:`EXPEDITED` registers (``NN:VALUE;``).  gdb
        reads registers at every stop (the pc for its breakpoint check, the frame
        registers for its frame id); without them it sent a ``g`` per stop, a third
        of the round trips of a breakpoint hit it ignores and resumes from (``g``,
        ``z0``, step, ``g``, ``Z0``, continue)."""
        if not reply.startswith("T"):
            return reply.encode()
        values = self.t.read_registers(EXPEDITED)
        return reply.encode() + b"".join(
            b"%s%s;" % (head, (v & 0xFFFFFFFFFFFFFFFF).to_bytes(size, "little").hex().encode())
            for (head, size), v in zip(_EXPEDITED, values, strict=True))

    def _read_one(self, n: int) -> bytes:
        name, size = REGISTERS[n]
        if name in FPU_RESET:
            return FPU_RESET[name].to_bytes(size, "little").hex().encode()
        return (self.t.read_register(name) & ((1 << (8 * size)) - 1)).to_bytes(
            size, "little").hex().encode()

    def _write_one(self, n: int, raw: bytes) -> bytes:
        name, size = REGISTERS[n]
        if len(raw) != size:
            return b"E01"
        if name not in FPU_RESET:
            self.t.write_register(name, int.from_bytes(raw, "little"))
        return b"OK"

    def _read_all(self) -> bytes:
        values = dict(zip(LIVE, self.t.read_registers(LIVE), strict=True))
        return b"".join((FPU_RESET[name] if name in FPU_RESET else values[name]
                         & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
                        for name, size in REGISTERS).hex().encode()

    def _write_all(self, raw: bytes) -> bytes:
        if len(raw) != sum(s for _, s in REGISTERS):
            return b"E01"
        off = 0
        for name, size in REGISTERS:
            if name not in FPU_RESET:
                self.t.write_register(name, int.from_bytes(raw[off:off + size], "little"))
            off += size
        return b"OK"

    # --- queries -------------------------------------------------------------------
    def _query(self, q: bytes) -> bytes:
        if q.startswith(b"Supported"):
            return (b"PacketSize=4000;qXfer:features:read+;qXfer:libraries:read+;"
                    b"QStartNoAckMode+;swbreak+;hwbreak+;vContSupported+")
        if q.startswith(b"Xfer:features:read:"):
            return self._xfer_features(q[len(b"Xfer:features:read:"):])
        if q.startswith(b"Xfer:libraries:read:"):
            return self._xfer_read(q[len(b"Xfer:libraries:read:"):],
                                   lambda annex: self.t.libraries().encode() if not annex
                                   else None)
        if q == b"C":
            return b"QC%x" % THREAD
        if q == b"Attached" or q.startswith(b"Attached:"):
            return b"1"
        if q == b"fThreadInfo":
            return b"m%x" % THREAD
        if q == b"sThreadInfo":
            return b"l"
        if q.startswith(b"Rcmd,"):
            text = hex_bytes(q[5:], "qRcmd").decode(errors="replace")
            out = self.t.monitor(text)
            return out.encode().hex().encode() if out else b"OK"
        return b""

    def _xfer_features(self, args: bytes) -> bytes:
        """``qXfer:features:read:ANNEX:OFFSET,LENGTH`` (target.xml)."""
        return self._xfer_read(args, lambda annex: TARGET_XML.encode()
                               if annex == b"target.xml" else None)

    @staticmethod
    def _xfer_read(args: bytes, document: Callable[[bytes], bytes | None]) -> bytes:
        """``ANNEX:OFFSET,LENGTH`` of a qXfer read: E00 for a malformed request or an
        unknown annex (``document`` returns None), E01 for an offset past the end
        (gdb's documented replies)."""
        try:
            annex, span = split_fields(args, b":", 2, "qXfer")
            off, n = (hex_number(x, "qXfer offset/length")
                      for x in split_fields(span, b",", 2, "qXfer"))
        except PacketError:
            return b"E00"
        data = document(annex)
        if data is None or n == 0:
            return b"E00"  # an empty 'm' chunk would make the reader ask for ever
        if off > len(data):
            return b"E01"
        chunk = data[off:off + n]
        return (b"l" if off + n >= len(data) else b"m") + chunk

    def _v(self, v: bytes) -> bytes | None:
        if v == b"Cont?":
            return b"vCont;c;C;s;S"
        if v.startswith(b"Cont;"):
            return self._stop_reply(self.t.resume(step=vcont_action(v[5:]) == "s"))
        if v.startswith(b"MustReplyEmpty"):
            return b""
        if v == b"Kill" or v.startswith(b"Kill;"):
            self.t.detach()
            return b"OK"
        return b""


def vcont_action(actions: bytes) -> str:
    """``c`` or ``s``: what ``vCont;ACTION[:THREAD];...`` asks of the one thread.

    Every action is checked before anything runs: ``c``, ``s``, ``Csig``, ``Ssig``
    (the signal is two hex digits; the kernel has no signals to deliver), each
    optionally for a thread (``:-1``, ``:0`` or ``:1``).  The first action that
    names our thread (or none) applies, as the protocol says.  An empty list, an
    unknown action (``t`` and ``r`` are not offered in ``vCont?``) or a thread that
    does not exist is a :class:`PacketError`.

    >>> vcont_action(b"s:1;c")
    's'
    """
    chosen: str | None = None
    for part in actions.split(b";"):
        act, colon, thread = part.partition(b":")
        letter = act[:1].decode("latin-1")
        if letter in ("c", "s") and len(act) == 1:
            pass
        elif letter in ("C", "S") and len(act) == 3:
            hex_number(act[1:], "vCont signal", 256)
        else:
            raise PacketError(f"vCont: unsupported action {act[:16]!r}")
        if colon and thread_id(thread) not in (-1, 0, THREAD):
            raise PacketError(f"vCont: no thread {thread[:16]!r}")
        if chosen is None:
            chosen = letter.lower()
    assert chosen is not None  # split() gives at least one part, checked above
    return chosen


class FakeTarget:
    """A tiny in-memory target for tests and doctests."""

    def __init__(self) -> None:
        self.regs = {name: 0 for name, _ in REGISTERS}
        self.mem: dict[int, int] = {}
        self.bps: set[tuple[int, int]] = set()
        self.log: list[str] = []

    def read_register(self, name: str) -> int:
        return self.regs[name]

    def read_registers(self, names: tuple[str, ...]) -> list[int]:
        return [self.regs[n] for n in names]

    def write_register(self, name: str, value: int) -> None:
        self.regs[name] = value

    def read_memory(self, addr: int, n: int) -> bytes:
        if any(addr + i not in self.mem for i in range(n)):
            raise RuntimeError("page fault: unmapped")
        return bytes(self.mem[addr + i] for i in range(n))

    def write_memory(self, addr: int, data: bytes) -> None:
        for i, b in enumerate(data):
            self.mem[addr + i] = b

    def add_breakpoint(self, kind: int, addr: int, length: int) -> bool:
        self.bps.add((kind, addr))
        return True

    def remove_breakpoint(self, kind: int, addr: int, length: int) -> bool:
        if (kind, addr) not in self.bps:
            return False
        self.bps.discard((kind, addr))
        return True

    def resume(self, step: bool) -> str:
        self.log.append("step" if step else "continue")
        return "S05"

    def monitor(self, command: str) -> str:
        self.log.append(f"monitor {command}")
        return f"ran: {command}\n"

    def detach(self, resume: bool = False) -> str | None:
        self.log.append("detach" + (" (resume)" if resume else ""))
        return None

    def attach(self) -> str | None:
        return None

    def halt_reason(self) -> str:
        return "S05"

    def interrupt(self) -> None:
        self.log.append("interrupt")

    def take_output(self) -> list[str]:
        return []

    def libraries(self) -> str:
        return "<library-list/>"
