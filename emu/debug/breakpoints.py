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

from emu.core.cpu import delete_hook
from emu.core.errors import KmemuError
from emu.kernel import pagetable

if TYPE_CHECKING:
    from emu.machine.core import Machine



def _is_locked_pair(code: bytes) -> bool:
    """Whether ``code`` starts with ``cmpxchg16b m128`` (REX.W 0F C7 /1, memory operand)."""
    return (len(code) >= 4 and code[0] & 0xF8 == 0x48 and code[1:3] == b"\x0f\xc7"
            and (code[3] >> 3) & 7 == 1 and code[3] >> 6 != 3)


def _runs_on_after_stop(m, rip: int) -> bool:
    """Whether the instruction at ``rip`` is one Unicorn runs to its end (and on, to the
    end of its block) even after ``emu_stop`` in its memory hook: measured for
    ``cmpxchg16b`` (a helper that does both stores; the SLUB fast paths use it), where
    putting the old bytes back and stepping it again would redo half of it, and
    stopping inside it left EFLAGS corrupt.  Stopping watchpoints therefore stop
    *before* each such instruction (:class:`LockedPairGuard`) and step it, so the
    memory hook sees it while single-stepping; an access from one the guard does not
    cover (a module loaded after the watch was set) is recorded in the watchpoint's
    ``hits`` without stopping."""
    try:
        code = m.read_virt(rip, 4)
    except KmemuError:  # no code to read: the usual path
        return False
    return _is_locked_pair(code)


_LOCKED_PAIR = re.compile(rb"[\x48-\x4f]\x0f\xc7")


def locked_pair_sites(code: bytes, base: int) -> list[int]:
    """Addresses of the ``cmpxchg16b`` byte pattern in ``code`` (loaded at ``base``).

    A match inside another instruction is harmless to hook: a code hook runs only
    where an instruction starts."""
    return [base + mt.start() for mt in _LOCKED_PAIR.finditer(code)
            if _is_locked_pair(code[mt.start():mt.start() + 4])]


class LockedPairGuard:
    """Code hooks before every ``cmpxchg16b`` of the kernel's and the loaded modules'
    text, present while any stopping watchpoint is: each stops the run before the
    instruction and asks the run loop to single-step it (``_watch_step_pending``),
    the way a watch hook does for an ordinary access; the step records the hits
    and the run stops after the instruction if one of them is a stopping watch,
    exactly where the CPU's debug trap would report it.  Costs one host round trip
    per executed ``cmpxchg16b`` while such a watch exists, nothing otherwise."""

    def __init__(self, m: Machine) -> None:
        self.machine = m
        self.hooks: list[int] = []

    def _text_ranges(self) -> list[tuple[int, int]]:
        m = self.machine
        ranges = [(m.symbol("_stext"), m.symbol("__start_rodata"))]
        try:
            ranges += [(v.base, v.base + v.size) for v in m._module_views()]  # noqa: SLF001
        except KmemuError:
            pass  # no readable module list: the kernel's text alone
        return ranges

    def install(self) -> None:
        m = self.machine
        if self.hooks:
            return
        for lo, hi in self._text_ranges():
            try:
                code = m.read_virt(lo, hi - lo)
            except KmemuError:
                continue
            for site in locked_pair_sites(code, lo):
                self.hooks.append(m.hook_add(UC_HOOK_CODE, self._on_code, None, site, site))

    def remove(self) -> None:
        for h in self.hooks:
            delete_hook(self.machine.uc, h)
        self.hooks.clear()

    def _on_code(self, uc, address: int, size: int, _: object) -> None:
        m = self.machine
        if m._stepping or m._points_off:  # noqa: SLF001 - the step itself / abort()
            return
        m._watch_step_pending = True  # noqa: SLF001 - no bytes to put back: not yet run
        uc.emu_stop()


def _update_pair_guard(m: Machine) -> None:
    """Install the guard while a stopping watchpoint exists, remove it after."""
    guard = m._pair_guard  # noqa: SLF001
    wanted = any(w.stop for w in m._watchpoints)  # noqa: SLF001
    if wanted and guard is None:
        guard = m._pair_guard = LockedPairGuard(m)  # noqa: SLF001
        guard.install()
    elif not wanted and guard is not None:
        guard.remove()
        m._pair_guard = None  # noqa: SLF001


class LocationError(KmemuError, ValueError):
    """A breakpoint location that does not resolve to kernel code."""


_C_INT = re.compile(r"(-?)(?:0[xX]([0-9a-fA-F]+)|0[bB]([01]+)|(0[0-7]*)|([1-9][0-9]*))")


def c_int(text: str) -> int | None:
    """An integer literal as C and gdb read it (``0x1f``, ``010`` is octal 8, ``0b101``,
    ``-5``), or None if ``text`` is not one."""
    m = _C_INT.fullmatch(text.strip())
    if m is None:
        return None
    hexd, bind, octd, dec = m.group(2, 3, 4, 5)
    value = (int(hexd, 16) if hexd else int(bind, 2) if bind else
             int(octd, 8) if octd else int(dec, 10))
    return -value if m.group(1) else value


def _code_address(addr: int, where: object) -> int:
    """``addr`` if an instruction could be there: 64 bits and canonical."""
    if not 0 <= addr < (1 << 64):
        raise LocationError(f"breakpoint address {where!r} is not a 64-bit address")
    if not pagetable.is_canonical(addr):
        raise LocationError(f"breakpoint address {addr:#x} is not canonical (bits 63..47 "
                            "differ): no instruction can be fetched there")
    return addr


def _symbol_or_module_function(m: Machine, name: str) -> int:
    """A kernel symbol, else a loaded module's function (``NAME`` or ``MODULE:NAME``)."""
    if ":" not in name and name in m._syms().by_name:  # noqa: SLF001
        return m.symbol(name)
    hit = m._resolve_module_function(name)  # noqa: SLF001 - raises when ambiguous
    return hit[0] if hit is not None else m.symbol(name)


def resolve_location(m: Machine, where: str | int) -> int:
    """An address for ``sym``, ``sym+0x1c``, ``0xffff...`` / int, or ``file.c:line``."""
    if isinstance(where, int) and not isinstance(where, bool):
        return _code_address(where, where)
    if not isinstance(where, str) or not where.strip():
        raise LocationError(f"breakpoint location must be a symbol, address or file:line, "
                            f"got {where!r}")
    where = where.strip()
    if re.fullmatch(r"[\w./-]+\.[chS]:\d+", where):
        file, line = where.rsplit(":", 1)
        return m.lines.address(file, int(line))
    literal = c_int(where)
    if literal is not None:
        return _code_address(literal, where)
    m_ = re.fullmatch(r"((?:[A-Za-z_]\w*:)?[A-Za-z_][\w.]*)\s*(?:\+\s*(0[xX][0-9a-fA-F]+|\d+))?",
                      where)
    if not m_:
        raise LocationError(f"cannot parse breakpoint location {where!r}")
    base = _symbol_or_module_function(m, m_.group(1))
    return _code_address(base + (int(m_.group(2), 0) if m_.group(2) else 0), where)


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
    condition_error: str | None = None  # the condition raised (the stop reports it)
    #: False: installed but neither counting nor stopping.  Turning a breakpoint off
    #: and on this way keeps its hook, so no translated code is flushed (removing a
    #: hook flushes the translation cache: the next run translates everything again).
    enabled: bool = True
    ignore_count: int = 0  # gdb's `ignore`: this many more hits count but do not stop
    _hook: int | None = None

    def _on_code(self, uc, address: int, size: int, _: object) -> None:
        if not self.enabled:
            return
        m = self.machine
        if m._stepping and m._skip_once == address:  # noqa: SLF001 - stepping off here:
            if self.stop or m._skip_all:  # noqa: SLF001 - stopped here / counted at arrival
                return
        if self.stop and m._points_off:  # noqa: SLF001 - abort() is finishing the call
            return
        if self.condition is not None:
            self.condition_error = None  # this hit's, not an earlier one's
            try:
                if not self.condition(m):
                    return
            except Exception as e:  # noqa: BLE001 - gdb stops when a condition fails
                self.condition_error = f"{type(e).__name__}: {e}"
                if not self.stop:
                    return
                m._stop_hit = self  # noqa: SLF001
                uc.emu_stop()
                return
        self.hits += 1
        rsp = uc.reg_read(x86.UC_X86_REG_RSP)
        try:
            self.callers.append(m.read_u64(rsp))
        except KmemuError:
            self.callers.append(0)
        if self.ignore_count > 0:  # counted as a hit, as gdb counts ignored crossings
            self.ignore_count -= 1
            return
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
            delete_hook(self.machine.uc, self._hook)
            self._hook = None

    def __enter__(self) -> Breakpoint:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    @property
    def caller_symbols(self) -> list[str]:
        return [self.machine.symbolize(a) for a in self.callers]


def parse_address(text: str) -> int | None:
    """An integer literal read as an address, or None if ``text`` is not a literal.

    The one reader of address literals for every front end (the REPL's ``x``,
    ``identify``, ``pt``, ``watch *ADDR``, ``break *ADDR``, gdb's ``monitor``,
    ``kmemu info pagetable``).  A negative literal down to -2**63 is the
    ``unsigned long`` C makes of it (``-8`` is 0xfffffffffffffff8, as in gdb);
    anything that does not fit in 64 bits is :class:`emu.core.errors.BadArgument`
    (gdb: "Numeric constant too large"), never cut to 64 bits.

    >>> hex(parse_address("-8"))
    '0xfffffffffffffff8'
    >>> parse_address("kmalloc") is None
    True
    """
    value = c_int(text)
    if value is None:
        return None
    if -(1 << 63) <= value < 0:
        value += 1 << 64
    return pagetable.check_address(value)


# ---------------------------------------------------------------------- watchpoints
ACCESS_KINDS = ("write", "read", "access")
MAX_WATCH = 1 << 20  # bytes: a watch is for a variable or an object, not a whole area


class WatchError(KmemuError, ValueError):
    """A watchpoint that cannot be set (bad range, unmapped address, bad kind)."""


def check_watch_range(address: object, size: object, what: str = "") -> None:
    """The one check of a watched range, for ``Machine.watch``, the REPL's
    ``watch``/``rwatch``/``awatch`` and the gdb stub's ``Z2``/``Z3``/``Z4``: 1 ..
    ``MAX_WATCH`` bytes, a 64-bit address, canonical at both ends.  ``what`` names
    the expression the range came from, for the message."""
    name = f"{what!r}: " if what else ""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_WATCH:
        raise WatchError(f"{name}watch size must be 1..{MAX_WATCH} bytes, got {size!r}"
                         + (" (watch a part of it: a field, an element, *(long *)ADDR)"
                            if isinstance(size, int) and size > MAX_WATCH else ""))
    if isinstance(address, bool) or not isinstance(address, int) or \
            not 0 <= address <= (1 << 64) - size:
        raise WatchError(f"{name}watch address must be a 64-bit address, got {address!r}")
    last = address + size - 1
    if not (pagetable.is_canonical(address) and pagetable.is_canonical(last)):
        raise WatchError(f"{name}watch range {address:#x}..{last:#x} is not canonical "
                         "(bits 63..47 of an address must all be equal): no mapping can "
                         "ever reach it")


@dataclass
class WatchHit:
    """One access to a watched range.

    ``old`` and ``new`` are the watched range's contents (little-endian
    int for up to 8 bytes, else bytes) before and after the access; ``rip``
    is the instruction that made it.
    """

    watchpoint: Watchpoint
    access: str  # "write" or "read"
    address: int  # virtual address of the access (first byte inside the watched range)
    size: int
    old: int | bytes
    new: int | bytes
    rip: int
    where: str

    def describe(self) -> str:
        wp = self.watchpoint
        if self.access == "read":
            return (f"{wp.kind_name} watchpoint {wp.label}: {wp.expression}\n\n"
                    f"Value = {_fmt(self.new)}\n(read by {self.where})")
        return (f"{wp.kind_name} watchpoint {wp.label}: {wp.expression}\n\n"
                f"Old value = {_fmt(self.old)}\nNew value = {_fmt(self.new)}\n"
                f"(written by {self.where})")


def _fmt(v: int | bytes) -> str:
    return f"{v:#x}" if isinstance(v, int) else v.hex(" ")


@dataclass
class _Chunk:
    va: int
    pa: int
    size: int


@dataclass
class Watchpoint:
    """A watched virtual range, hooked on the physical bytes behind it.

    The range is translated through the guest page tables; the hooks sit on
    the physical addresses (Unicorn's memory hooks see physical addresses),
    so writes through any alias (direct map, vmalloc) are seen.  The
    page-table entries used by the translation are watched too: when the
    kernel changes the mapping, the watch is translated again.
    """

    machine: Machine
    address: int
    size: int
    access: str = "write"  # "write", "read" or "access"
    stop: bool = False
    changes_only: bool = False  # gdb's `watch`: ignore writes of the same value
    expression: str = ""
    label: str = ""
    hits: list[WatchHit] = field(default_factory=list)
    chunks: list[_Chunk] = field(default_factory=list)
    _hooks: list[int] = field(default_factory=list)
    installed: bool = False

    def __post_init__(self) -> None:
        if self.access not in ACCESS_KINDS:
            raise WatchError(f"watch access must be one of {', '.join(ACCESS_KINDS)}, "
                             f"got {self.access!r}")
        check_watch_range(self.address, self.size)
        self.expression = self.expression or f"*{self.address:#x} ({self.size} bytes)"

    @property
    def kind_name(self) -> str:
        return {"write": "Hardware", "read": "Hardware read", "access": "Hardware access"}[
            self.access]

    @property
    def mapped(self) -> bool:
        return sum(c.size for c in self.chunks) == self.size

    # --- install / resolve ----------------------------------------------------------
    def install(self) -> Watchpoint:
        if not self.installed:
            self._resolve()
            self.installed = True
            self.machine._watchpoints.append(self)  # noqa: SLF001
            _update_pair_guard(self.machine)
        return self

    def remove(self) -> None:
        if self.installed:
            self._unhook()
            self.installed = False
            self.machine._watchpoints.remove(self)  # noqa: SLF001
            _update_pair_guard(self.machine)

    def __enter__(self) -> Watchpoint:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _unhook(self) -> None:
        for h in self._hooks:
            self.machine.uc.hook_del(h)
        if self._hooks:
            self.machine.uc.ctl_flush_tb()  # see emu.core.cpu.delete_hook
        self._hooks.clear()

    def _resolve(self) -> None:
        """Translate the range now and hook its physical bytes and page-table entries."""
        from unicorn import UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE

        m = self.machine
        self._unhook()
        self.chunks = []
        entries: set[int] = set()
        va, end = self.address, self.address + self.size
        read_u64 = m._read_u64  # noqa: SLF001
        while va < end:
            page_end = min(end, (va | 0xFFF) + 1)
            if pagetable.is_canonical(va):
                for step in pagetable.walk_steps(read_u64, m.cr3, va):
                    entries.add(step.entry_pa)
                try:
                    pa = pagetable.walk(read_u64, m.cr3, va).pa
                    self.chunks.append(_Chunk(va, pa, page_end - va))
                except KmemuError:
                    pass  # not mapped now: the entry hooks notice when it is
            va = page_end
        types = (UC_HOOK_MEM_WRITE if self.access == "write" else
                 UC_HOOK_MEM_READ if self.access == "read" else
                 UC_HOOK_MEM_WRITE | UC_HOOK_MEM_READ)
        for c in self.chunks:  # accesses may start up to 7 bytes before the range
            self._hooks.append(m.hook_add(types, self._on_access, c,
                                          max(0, c.pa - 7), c.pa + c.size - 1))
        for e in sorted(entries):
            self._hooks.append(m.hook_add(UC_HOOK_MEM_WRITE, self._on_entry_write, None,
                                          e, e + 7))

    # --- hooks ----------------------------------------------------------------------
    def _value(self, patch: tuple[int, int, int] | None = None) -> int | bytes:
        """The watched bytes now, with an access (pa, size, value) applied if given."""
        m = self.machine
        buf = bytearray()
        for c in self.chunks:
            raw = bytearray(m.uc.mem_read(c.pa, c.size))
            if patch is not None:
                pa, size, value = patch
                data = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
                for i in range(size):
                    if c.pa <= pa + i < c.pa + c.size:
                        raw[pa + i - c.pa] = data[i]
            buf += raw
        if len(buf) <= 8:
            return int.from_bytes(buf, "little")
        return bytes(buf)

    def _on_access(self, uc, access: int, address: int, size: int, value: int,
                   chunk: _Chunk) -> None:
        from unicorn import UC_MEM_WRITE

        if address + size <= chunk.pa or address >= chunk.pa + chunk.size:
            return  # the widened hook range: no overlap
        m = self.machine
        writing = access == UC_MEM_WRITE
        old = self._value()
        new = self._value((address, size, value)) if writing else old
        if writing and self.changes_only and old == new:
            return
        if self.stop and m._points_off:  # noqa: SLF001 - abort() is finishing the call
            return
        rip = uc.reg_read(x86.UC_X86_REG_RIP)
        if self.stop and not m._stepping and not _runs_on_after_stop(m, rip):  # noqa: SLF001
            # Stop here; the run loop steps the instruction again and reports after it.
            m._stop_in_access(uc, access, address, size)  # noqa: SLF001
            return
        va = chunk.va + max(0, address - chunk.pa)
        hit = WatchHit(self, "write" if writing else "read", va, size, old, new, rip,
                       m.symbolize(rip))
        self.hits.append(hit)
        if self.stop and m._stepping:  # noqa: SLF001 - else: see _runs_on_after_stop
            m._watch_hits.append(hit)  # noqa: SLF001

    def _on_entry_write(self, uc, access: int, address: int, size: int, value: int,
                        _: object) -> None:
        m = self.machine
        m._rewatch = True  # noqa: SLF001
        if not m._stepping and not m._points_off:  # noqa: SLF001
            m._stop_in_access(uc, access, address, size)  # noqa: SLF001

    def describe(self) -> str:
        where = ", ".join(f"{c.va:#x} -> pa {c.pa:#x} ({c.size} bytes)" for c in self.chunks)
        return f"{self.expression}: {where or 'not mapped now'}"
