"""KASAN reports as Python exceptions (the KASAN kernel: ``Machine(kasan=True)``).

Layer 5 (``emu.machine``).  The KASAN kernel (``kernel/kasan/``) prints each
report in Linux's layout, keeps its details in ``kasan_records[]`` (struct
kasan_record, ``kernel/internal/kmemu/kasan.h``) and reports a ``kasan`` event
whose ``args[7]`` is the record's slot.  Linux carries on after a report, and
so does the guest: when a call that produced reports returns,
:func:`raise_kasan_reports` raises :class:`KasanReport` for the first one (the
others are in ``.reports``), with the call's result attached.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emu.core.errors import KmemuError
from emu.kernel.events import Event

if TYPE_CHECKING:
    from emu.machine.core import Machine

#: enum kasan_kind, in order (kernel/internal/kmemu/kasan.h)
KASAN_KINDS = ("unknown-crash", "slab-out-of-bounds", "slab-use-after-free", "double-free",
               "invalid-free", "vmalloc-out-of-bounds", "use-after-free",
               "global-out-of-bounds", "stack-out-of-bounds", "alloca-out-of-bounds",
               "wild-memory-access")
KASAN_STACK_DEPTH = 8
KASAN_SHADOW_OFFSET = 0xDFFFFC0000000000
#: struct kasan_record: kind, addr, size, write, ip, object, object_size, cache_size,
#: cache[32], then two struct kasan_track {u32 pid, nr; u64 stack[8]}
_RECORD = struct.Struct(f"<8Q32sII{KASAN_STACK_DEPTH}QII{KASAN_STACK_DEPTH}Q")
_RULE = "=" * 66


@dataclass
class KasanInfo:
    """One KASAN report, decoded."""

    kind: str                 #: "slab-out-of-bounds", "slab-use-after-free", "double-free", ...
    address: int
    size: int                 #: bytes accessed (0 for a bad free)
    write: bool
    site: str                 #: the faulting access, ``mydev_fill+0x3c/0x80 [mydev]``
    ip: int
    object: int = 0           #: the slab object / vmalloc area it belongs to (0: none)
    object_size: int = 0      #: its requested (allocated) or cache (freed) size
    cache: str = ""           #: ``kmalloc-32``
    alloc_stack: list[str] = field(default_factory=list)
    free_stack: list[str] = field(default_factory=list)
    text: str = ""            #: the report as printed
    event: Event | None = None


class KasanReport(KmemuError):
    """KASAN found a bad access or free during a call (the KASAN kernel only).

    ``kind``, ``address``, ``size``, ``write``, ``site``, ``alloc_stack``,
    ``free_stack``, ``cache`` and ``text`` describe the first report; ``reports``
    holds all of them and ``result`` the call's return value (the guest carried
    on after the report, as Linux does).  The machine is usable; it is tainted 'B'.
    """

    def __init__(self, reports: list[KasanInfo], result: int) -> None:
        self.reports = reports
        self.result = result
        first = reports[0]
        self.kind = first.kind
        self.address = first.address
        self.size = first.size
        self.write = first.write
        self.site = first.site
        self.ip = first.ip
        self.object = first.object
        self.object_size = first.object_size
        self.cache = first.cache
        self.alloc_stack = first.alloc_stack
        self.free_stack = first.free_stack
        self.text = first.text
        more = f" (and {len(reports) - 1} more)" if len(reports) > 1 else ""
        super().__init__(f"BUG: KASAN: {first.kind} in {first.site}{more}\n{first.text}")


def _report_texts(console: str) -> list[str]:
    """The KASAN report blocks in console text (between the two rules)."""
    out, pos = [], 0
    while (start := console.find(_RULE + "\nBUG: KASAN: ", pos)) >= 0:
        end = console.find("\n" + _RULE, start + len(_RULE))
        end = len(console) if end < 0 else end + len(_RULE) + 2
        out.append(console[start:end])
        pos = end
    return out


def read_record(m: Machine, ev: Event) -> KasanInfo:
    """Decode the record the event points at (read while it is still the latest)."""
    base = m.symbol("kasan_records") + ev.args[7] * _RECORD.size
    v = _RECORD.unpack(m.read_virt(base, _RECORD.size))
    kind, addr, size, write, ip, obj, obj_size, _cache_size, cache = v[:9]
    alloc_nr, free_nr = v[10], v[11 + KASAN_STACK_DEPTH + 1]
    alloc = v[11 : 11 + min(alloc_nr, KASAN_STACK_DEPTH)]
    free_start = 11 + KASAN_STACK_DEPTH + 2
    free = v[free_start : free_start + min(free_nr, KASAN_STACK_DEPTH)]
    return KasanInfo(
        kind=KASAN_KINDS[kind] if kind < len(KASAN_KINDS) else f"kind{kind}",
        address=addr, size=size, write=bool(write), site=m.symbolize(ip), ip=ip,
        object=obj, object_size=obj_size, cache=cache.split(b"\0", 1)[0].decode(),
        alloc_stack=[m.symbolize(a) for a in alloc], free_stack=[m.symbolize(a) for a in free],
        event=ev)


def clear_stack_shadow(m: Machine) -> None:
    """Unpoison the shadow of the call stack below the idle stack pointer: a call the
    host ended early (an oops, a budget) left its frames' red zones behind, and the
    next call's frames would land on them (Linux clears them on such unwinds too)."""
    cached: tuple[int, bytes] | None = getattr(m, "_kasan_stack_shadow", None)
    if cached is None:
        lo = m.symbol("boot_stack")
        top = m._idle_rsp & ~7  # noqa: SLF001 - the machine's own idle context
        zeros = bytes((top - lo) >> 3) if lo < top <= lo + 32768 else b""
        cached = (KASAN_SHADOW_OFFSET + (lo >> 3), zeros)
        m._kasan_stack_shadow = cached  # type: ignore[attr-defined]
    if cached[1]:
        m.write_virt(cached[0], cached[1])


def raise_kasan_reports(m: Machine, events_mark: int, result: int) -> None:
    """Raise :class:`KasanReport` if the call that just ended made KASAN report."""
    evs = [e for e in m.events[events_mark:] if e.kind == "kasan"]
    if not evs:
        return
    infos = [read_record(m, e) for e in evs[-8:]]  # the kernel keeps the last 8 records
    texts = _report_texts(m.console)[-len(infos):]
    for info, text in zip(infos, [""] * (len(infos) - len(texts)) + texts, strict=True):
        info.text = text
    raise KasanReport(infos, result)
