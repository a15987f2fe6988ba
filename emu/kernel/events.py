"""Structured events the kernel reports through the event port.

Layer 4 (``emu.kernel``).  The kernel fills ``struct kmemu_event``
(``kernel/internal/kmemu/abi.h``) and writes its physical address to port
0xc9e4; :func:`decode` turns the bytes into an :class:`Event`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

EVENT_TYPES = {1: "oops", 2: "bug", 3: "warn", 4: "panic", 5: "irq_unhandled", 6: "bad_page",
               7: "sleep_in_atomic", 8: "alloc_fail", 9: "oom", 10: "slab",
               11: "fault_injection",
               13: "kasan", 14: "kmemleak"}
EV_ARGS = 8
EV_TRACE = 16
EV_MSG = 160
EVENT_SIZE = 8 + 8 * EV_ARGS + 8 * EV_TRACE + EV_MSG
_FMT = f"<II{EV_ARGS}Q{EV_TRACE}Q{EV_MSG}s"


@dataclass
class Event:
    """One kernel event: its kind, headline (as printed), raw args and call trace.

    ``trace`` holds return addresses innermost first; ``symbols`` the same
    addresses symbolised (``kmalloc+0x1c/0x90``).
    """

    kind: str
    message: str
    args: tuple[int, ...]
    trace: tuple[int, ...]
    symbols: tuple[str, ...] = field(default=())

    @property
    def vector(self) -> int:
        return self.args[0]

    @property
    def error_code(self) -> int:
        return self.args[1]

    @property
    def rip(self) -> int:
        return self.args[2]

    @property
    def address(self) -> int:
        return self.args[3]

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "message": self.message, "args": list(self.args),
                "trace": list(self.symbols or map(hex, self.trace))}

    def __str__(self) -> str:
        return self.message


def decode(raw: bytes, symbolize: Callable[[int], str]) -> Event:
    """Decode ``struct kmemu_event`` bytes."""
    vals = struct.unpack(_FMT, raw[:EVENT_SIZE])
    typ, nr = vals[0], min(vals[1], EV_TRACE)
    args = tuple(vals[2 : 2 + EV_ARGS])
    trace = tuple(vals[2 + EV_ARGS : 2 + EV_ARGS + nr])
    msg = vals[-1].split(b"\0", 1)[0].decode(errors="replace")
    kind = EVENT_TYPES.get(typ, f"type{typ}")
    return Event(kind, msg, args, trace, tuple(symbolize(a) for a in trace))
