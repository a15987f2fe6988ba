"""Layer 5: breakpoints from Python (issue 6, first part).

>>> with m.breakpoint("___slab_alloc") as bp:     # doctest: +SKIP
...     m.kmalloc(64)
>>> bp.hits                                        # doctest: +SKIP
1

A breakpoint counts hits (optionally only when ``condition(machine)`` is
true) and records where each hit came from.  A *stopping* breakpoint
(``m.break_at``) also suspends the call: it raises ``emu.BreakpointHit``
whose ``call`` can ``resume()``, ``stepi()`` or ``abort()``.
Locations: a symbol, ``symbol+offset``, an address, or ``file.c:line``.
Hooks exist only while a breakpoint is installed, on one address each, so
normal runs pay nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from unicorn import UC_HOOK_CODE
from unicorn import x86_const as x86

from emu.errors import KmemuError

if TYPE_CHECKING:
    from emu.machine import Machine


class LocationError(KmemuError, ValueError):
    """A breakpoint location that does not resolve to kernel code."""


def resolve_location(m: Machine, where: str | int) -> int:
    """An address for ``sym``, ``sym+0x1c``, ``0xffff...`` / int, or ``file.c:line``."""
    if isinstance(where, int) and not isinstance(where, bool):
        return where
    if not isinstance(where, str) or not where.strip():
        raise LocationError(f"breakpoint location must be a symbol, address or file:line, "
                            f"got {where!r}")
    where = where.strip()
    if re.fullmatch(r"[\w./-]+\.[chS]:\d+", where):
        file, line = where.rsplit(":", 1)
        return m.lines.address(file, int(line))
    if re.fullmatch(r"0[xX][0-9a-fA-F]+|\d+", where):
        return int(where, 0)
    m_ = re.fullmatch(r"([A-Za-z_][\w.]*)\s*(?:\+\s*(0[xX][0-9a-fA-F]+|\d+))?", where)
    if not m_:
        raise LocationError(f"cannot parse breakpoint location {where!r}")
    base = m.symbol(m_.group(1))
    return base + (int(m_.group(2), 0) if m_.group(2) else 0)


@dataclass
class Breakpoint:
    machine: Machine
    location: str | int
    address: int
    condition: Callable[[Machine], bool] | None = None
    stop: bool = False  # stop the guest here (raise BreakpointHit from the call)
    temporary: bool = False  # removed after its first stop
    hits: int = 0
    callers: list[int] = field(default_factory=list)  # return address at each hit
    _hook: int | None = None

    def _on_code(self, uc, address: int, size: int, _: object) -> None:
        m = self.machine
        if m._skip_once == address:  # resuming from a stop right here  # noqa: SLF001
            m._skip_once = None  # noqa: SLF001
            return
        if self.condition is not None and not self.condition(m):
            return
        self.hits += 1
        rsp = uc.reg_read(x86.UC_X86_REG_RSP)
        try:
            self.callers.append(m.read_u64(rsp))
        except KmemuError:
            self.callers.append(0)
        if self.stop:
            m._stop_hit = self  # noqa: SLF001
            uc.emu_stop()

    def install(self) -> Breakpoint:
        if self._hook is None:
            self._hook = self.machine.hook_add(UC_HOOK_CODE, self._on_code, None,
                                               self.address, self.address)
        return self

    def remove(self) -> None:
        if self._hook is not None:
            self.machine.uc.hook_del(self._hook)
            self._hook = None

    def __enter__(self) -> Breakpoint:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    @property
    def caller_symbols(self) -> list[str]:
        return [self.machine.symbolize(a) for a in self.callers]
