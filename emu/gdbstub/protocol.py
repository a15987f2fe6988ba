"""GDB remote protocol: one handler per packet, over an abstract target.

Layer 6.  :class:`Target` is what the stub needs from a machine (registers,
virtual memory, breakpoints, run control, monitor commands); the TCP
server adapts :class:`emu.Machine` to it.  Handlers never raise for bad
input: a malformed or failing request answers ``E NN`` (or an empty reply
for unsupported packets, as the protocol asks) and the stub keeps serving.

>>> p = Protocol(FakeTarget())
>>> p.handle(b"?")
b'S05'
"""

from __future__ import annotations

import struct
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


class Target(TypingProtocol):
    def read_register(self, name: str) -> int: ...
    def write_register(self, name: str, value: int) -> None: ...
    def read_memory(self, addr: int, n: int) -> bytes: ...
    def write_memory(self, addr: int, data: bytes) -> None: ...
    def add_breakpoint(self, kind: int, addr: int, length: int) -> bool: ...
    def remove_breakpoint(self, kind: int, addr: int, length: int) -> bool: ...
    def resume(self, step: bool) -> str: ...  # returns the stop reply, e.g. "S05"
    def monitor(self, command: str) -> str: ...
    def detach(self) -> None: ...
    def halt_reason(self) -> str: ...  # the reply to '?'
    def libraries(self) -> str: ...  # qXfer:libraries XML (loaded modules)


def _xfer_chunk(data: bytes, q: bytes) -> bytes:
    """One ``qXfer:...:read:ANNEX:OFFSET,LENGTH`` reply: ``m`` more follows, ``l`` last."""
    off, n = (int(x, 16) for x in q.rsplit(b":", 1)[1].split(b","))
    return (b"l" if off + n >= len(data) else b"m") + data[off:off + n]


class Protocol:
    def __init__(self, target: Target) -> None:
        self.t = target
        self.no_ack = False

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

    def _dispatch(self, data: bytes) -> bytes | None:
        c, rest = chr(data[0]), data[1:]
        if c == "?":
            return self.t.halt_reason().encode()
        if c == "g":
            return self._read_all()
        if c == "G":
            return self._write_all(rest)
        if c == "p":
            return self._read_one(int(rest, 16))
        if c == "P":
            n, val = rest.split(b"=")
            return self._write_one(int(n, 16), val)
        if c == "m":
            addr, n = (int(x, 16) for x in rest.split(b","))
            if n > MAX_MEM:
                return b"E01"
            return self.t.read_memory(addr, n).hex().encode()
        if c == "M":
            head, hexdata = rest.split(b":", 1)
            addr, n = (int(x, 16) for x in head.split(b","))
            raw = bytes.fromhex(hexdata.decode())
            if len(raw) != n or n > MAX_MEM:
                return b"E01"
            self.t.write_memory(addr, raw)
            return b"OK"
        if c == "X":
            head, raw = rest.split(b":", 1)
            addr, n = (int(x, 16) for x in head.split(b","))
            if len(raw) != n or n > MAX_MEM:
                return b"E01"
            if n:
                self.t.write_memory(addr, raw)
            return b"OK"
        if c in "Zz":
            kind, addr, length = rest.split(b",")[:3]
            k, a, ln = int(kind, 16), int(addr, 16), int(length, 16)
            if k > 4:
                return b""
            ok = self.t.add_breakpoint(k, a, ln) if c == "Z" else self.t.remove_breakpoint(k, a,
                                                                                            ln)
            return b"OK" if ok else b"E01"
        if c in "cs":
            return self.t.resume(step=c == "s").encode()
        if c == "D":
            self.t.detach()
            return b"OK"
        if c == "k":
            self.t.detach()
            return None
        if c == "H":
            return b"OK"
        if c == "T":
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

    # --- registers -----------------------------------------------------------------
    def _read_one(self, n: int) -> bytes:
        name, size = REGISTERS[n]
        if name in FPU_RESET:
            return FPU_RESET[name].to_bytes(size, "little").hex().encode()
        return (self.t.read_register(name) & ((1 << (8 * size)) - 1)).to_bytes(
            size, "little").hex().encode()

    def _write_one(self, n: int, hexval: bytes) -> bytes:
        name, size = REGISTERS[n]
        raw = bytes.fromhex(hexval.decode())
        if len(raw) != size:
            return b"E01"
        if name not in FPU_RESET:
            self.t.write_register(name, int.from_bytes(raw, "little"))
        return b"OK"

    def _read_all(self) -> bytes:
        return b"".join(self._read_one(i) for i in range(len(REGISTERS)))

    def _write_all(self, hexdata: bytes) -> bytes:
        raw = bytes.fromhex(hexdata.decode())
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
        if q.startswith(b"Xfer:features:read:target.xml:"):
            return _xfer_chunk(TARGET_XML.encode(), q)
        if q.startswith(b"Xfer:libraries:read::"):
            return _xfer_chunk(self.t.libraries().encode(), q)
        if q == b"C":
            return b"QC1"
        if q == b"Attached":
            return b"1"
        if q.startswith(b"fThreadInfo"):
            return b"m1"
        if q.startswith(b"sThreadInfo"):
            return b"l"
        if q.startswith(b"Rcmd,"):
            text = bytes.fromhex(q[5:].decode()).decode(errors="replace")
            out = self.t.monitor(text)
            return out.encode().hex().encode() if out else b"OK"
        return b""

    def _v(self, v: bytes) -> bytes | None:
        if v == b"Cont?":
            return b"vCont;c;C;s;S"
        if v.startswith(b"Cont;"):
            action = v[5:6]
            return self.t.resume(step=action in (b"s", b"S")).encode()
        if v.startswith(b"MustReplyEmpty"):
            return b""
        if v.startswith(b"Kill"):
            self.t.detach()
            return b"OK"
        return b""


class FakeTarget:
    """A tiny in-memory target for tests and doctests."""

    def __init__(self) -> None:
        self.regs = {name: 0 for name, _ in REGISTERS}
        self.mem: dict[int, int] = {}
        self.bps: set[tuple[int, int]] = set()
        self.log: list[str] = []

    def read_register(self, name: str) -> int:
        return self.regs[name]

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

    def detach(self) -> None:
        self.log.append("detach")

    def halt_reason(self) -> str:
        return "S05"

    def libraries(self) -> str:
        return "<library-list/>"
