"""Layer 5: kmemleak from Python (mixed into :class:`emu.Machine`).

>>> m = Machine(kmemleak=True).boot()        # doctest: +SKIP  (kmemleak=on)
>>> leaks = m.kmemleak_scan()                 # doctest: +SKIP
>>> leaks[0].address, leaks[0].size, leaks[0].backtrace[:2]      # doctest: +SKIP
(0xffff88800f445000, 64, ['slab_post_alloc+0x8a/0xd4', '__slab_alloc+0x53/0x77'])
>>> print(leaks)                              # doctest: +SKIP  (/sys/kernel/debug/kmemleak)
unreferenced object 0xffff88800f445000 (size 64):
  comm "swapper/0", pid 0, jiffies 4294667296
  ...
>>> m.kmemleak_clear()                        # doctest: +SKIP  (echo clear)

The scan runs in the guest (``kernel/kmemleak.c``, Linux's algorithm), with the
idle stack pointer as the start of the live stack.  It prints the new
unreferenced objects on the console in Linux's format (the debugfs file's text)
and reports a ``kmemleak`` event for each; the host then reads every
unreferenced object (``kmemleak_leaks[]``, offsets from ``kmemleak_host_layout``)
and the file's text (``kmemleak_text``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from emu.core.errors import MachineError

if TYPE_CHECKING:
    from emu.machine.core import Machine

U64 = (1 << 64) - 1
OBJECT_NEW = 1 << 4  # kernel/internal/kmemu/kmemleak.h: first reported by the last scan
HEX_DUMP_MAX = 32  # HEX_MAX_LINES * HEX_ROW_SIZE: the report's "first N bytes"
_LAYOUT_FIELDS = ("size_of", "pointer", "size", "flags", "min_count", "checksum", "serial",
                  "jiffies", "pid", "trace_len", "comm", "trace", "max_trace", "comm_len")


class KmemleakOff(MachineError):
    """kmemleak was asked for on a machine booted without it (or it disabled itself)."""


@dataclass
class KmemleakObject:
    """One unreferenced object, as ``/sys/kernel/debug/kmemleak`` lists it."""

    address: int
    size: int
    comm: str                 #: "swapper/0" (task context), "hardirq" or "softirq"
    pid: int
    jiffies: int
    checksum: int             #: crc32 of the contents at the scan (the backtrace line's crc)
    trace: list[int]          #: return addresses of the allocation, innermost first
    backtrace: list[str]      #: the same, symbolised: ``kmalloc+0x48/0x11b``, ``f+0x1/0x9 [mod]``
    hex_dump: bytes           #: the first min(size, 32) bytes
    serial: int               #: allocation order (objects allocated later have larger ones)
    new: bool                 #: first reported by this scan (printed on the console)
    text: str = ""            #: its block of the report

    def __str__(self) -> str:
        return self.text


class KmemleakReport(list[KmemleakObject]):
    """The unreferenced objects of a scan; ``str()`` is the debugfs file's text."""

    def __str__(self) -> str:
        return "".join(o.text for o in self)

    @property
    def new(self) -> list[KmemleakObject]:
        """The objects this scan reported first (the console got their text)."""
        return [o for o in self if o.new]


def _layout(m: Machine) -> dict[str, int]:
    cached = getattr(m, "_kmemleak_layout", None)
    if cached is None:
        n = len(_LAYOUT_FIELDS)
        vals = struct.unpack(f"<{n}Q", m.read_virt(m.symbol("kmemleak_host_layout"), 8 * n))
        cached = dict(zip(_LAYOUT_FIELDS, vals, strict=True))
        m._kmemleak_layout = cached  # type: ignore[attr-defined]  # noqa: SLF001
    return cached


def _split_text(text: str) -> dict[int, str]:
    """Each object's block of the report, by address."""
    out: dict[int, str] = {}
    head = "unreferenced object 0x"
    for block in text.split(head)[1:]:
        out[int(block.split(" ", 1)[0], 16)] = head + block
    return out


def _decode(m: Machine, raw: bytes, lay: dict[str, int],
            texts: dict[int, str]) -> KmemleakObject:
    def u(name: str, size: int = 8, signed: bool = False) -> int:
        return int.from_bytes(raw[lay[name]:lay[name] + size], "little", signed=signed)

    addr, size = u("pointer"), u("size")
    nr = min(u("trace_len", 4), lay["max_trace"])
    trace = list(struct.unpack_from(f"<{nr}Q", raw, lay["trace"]))
    comm = raw[lay["comm"]:lay["comm"] + lay["comm_len"]].split(b"\0", 1)[0].decode()
    return KmemleakObject(
        address=addr, size=size, comm=comm, pid=u("pid", 4, True), jiffies=u("jiffies"),
        checksum=u("checksum", 4), trace=trace, backtrace=[m.symbolize(a) for a in trace],
        hex_dump=m.read_virt(addr, min(size, HEX_DUMP_MAX)), serial=u("serial"),
        new=bool(u("flags", 4) & OBJECT_NEW), text=texts.get(addr, ""))


class KmemleakMixin:
    def kmemleak_enabled(self: Machine) -> bool:
        """Whether the kernel tracks allocations (booted with kmemleak=on, and on still)."""
        return self.read_virt(self.symbol("kmemleak_enabled"), 1) != b"\0"

    def _kmemleak_check(self: Machine, what: str) -> None:
        if not self.kmemleak_enabled():
            raise KmemleakOff(
                f"{what}: kmemleak is off; boot with Machine(kmemleak=True), "
                "`kmemu boot --kmemleak` or kmemleak=on on the command line")

    def kmemleak_serial(self: Machine) -> int:
        """The serial the next tracked allocation gets (``kmemleak_scan(since=...)``)."""
        return self.read_u64(self.symbol("kmemleak_serial"))

    def kmemleak_scan(self: Machine, since: int = 0) -> KmemleakReport:
        """Linux's ``echo scan > /sys/kernel/debug/kmemleak`` then ``cat`` it: scan in
        the guest, print the new unreferenced objects on the console, and return every
        unreferenced object (``since``: only those with a serial at least that)."""
        self._kmemleak_check("kmemleak_scan")
        if self.call("kmemleak_scan_host", self._idle_rsp) == U64:  # noqa: SLF001
            raise KmemleakOff("kmemleak_scan: kmemleak could not scan (out of memory for its "
                              "index, or it disabled itself: see the console)")
        lay = _layout(self)
        n = self.read_u64(self.symbol("kmemleak_nr_leaks"))
        ptrs = struct.unpack(f"<{n}Q", self.read_virt(
            self.read_u64(self.symbol("kmemleak_leaks")), 8 * n)) if n else ()
        tlen = self.read_u64(self.symbol("kmemleak_text_len"))
        text = self.read_virt(self.read_u64(self.symbol("kmemleak_text")), tlen).decode(
            errors="replace") if tlen else ""
        texts = _split_text(text)
        out = KmemleakReport()
        for p in ptrs:
            obj = _decode(self, self.read_virt(p, lay["size_of"]), lay, texts)
            if obj.serial >= since:
                out.append(obj)
        return out

    def kmemleak_clear(self: Machine) -> None:
        """Linux's ``echo clear``: the objects reported so far are never reported again."""
        self._kmemleak_check("kmemleak_clear")
        self.call("kmemleak_clear")
