"""gdb's frames: the real frames of the unwinder with inlined functions as levels of their own.

Layer 5 (``emu.debug``).  :func:`emu.kernel.unwind.unwind` gives the real
(physical) frames, one per ``call``.  Code inlined by the compiler runs in its
caller's frame, but gdb shows each inlined function as a frame of its own: a
stop inside ``slab_alloc_nocheck`` (inlined into ``slab_alloc_hooked``, itself
inlined into ``slab_alloc_hooks``) is three levels, ``#0 slab_alloc_nocheck``,
``#1 slab_alloc_hooked``, ``#2 slab_alloc_hooks``, all at one pc and one CFA.
This module builds that list (:class:`DisplayFrame`), which ``bt``, ``frame``,
``up``/``down``, ``info frame``, ``finish`` and the scope of ``print`` and
``info locals`` use.

Which inlined bodies hold a pc is read from DWARF's ``DW_TAG_inlined_subroutine``
ranges, through drgn's stack trace (libdw's scopes at each frame's pc, the
return address minus one above frame 0): each real frame's *chain* is the
inlined functions innermost first, then the function itself, with the line
each one is at (an outer function's line is the call site of the inner one).
A chain depends on the pc alone, so it is cached by pc: stepping to leave an
inlined body (``finish`` from an inline frame) asks once per new pc.

At frame 0, the inlined bodies that *start* exactly at the pc and were not
entered yet (gdb's skipped inline frames, :meth:`Machine.inline_skipped`) are
not frames: gdb shows their call site in the function around them.

>>> [(f.level, f.function, f.inline) for f in m.frames()]          # doctest: +SKIP
[(0, 'slab_alloc_nocheck', True), (1, 'slab_alloc_hooked', True),
 (2, 'slab_alloc_hooks', False), (3, 'slab_alloc', True), (4, 'kmalloc', False), ...]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emu.core.errors import KmemuError

if TYPE_CHECKING:
    from emu.kernel.unwind import Frame
    from emu.machine.core import Machine


@dataclass(frozen=True)
class ChainLink:
    """One function of a real frame's chain: its name as DWARF gives it, whether it
    is an inlined body, and the (file basename, line) it is at."""

    function: str | None
    inline: bool
    file: str | None
    line: int | None


@dataclass(frozen=True)
class DisplayFrame:
    """One of gdb's frames.

    ``level`` counts inline frames (gdb's ``#N``); ``physical`` is the real frame
    of :func:`emu.kernel.unwind.unwind` that runs it (its ``pc``, ``cfa`` and
    registers are this frame's too); ``index`` is its place in that real frame's
    chain (0: the innermost shown).  ``inline`` says the function was inlined
    into the next frame out (gdb's ``inlined into frame N+1``); ``file``/``line``
    are where it is: for a function with an inlined callee, that call's site.
    """

    level: int
    physical: Frame
    index: int
    function: str | None
    inline: bool
    file: str | None
    line: int | None

    @property
    def pc(self) -> int:
        return self.physical.pc

    @property
    def cfa(self) -> int | None:
        return self.physical.cfa

    @property
    def innermost(self) -> bool:
        """The first frame of its real frame: gdb prints ``0x... in`` only there."""
        return self.index == 0


class ChainCache:
    """Chains by (pc, frame 0?) for one line table (a new table, after a module
    load, starts a new cache)."""

    LIMIT = 4096

    def __init__(self) -> None:
        self.table: object | None = None
        self.chains: dict[tuple[int, bool], tuple[ChainLink, ...]] = {}

    def get(self, table: object, key: tuple[int, bool]) -> tuple[ChainLink, ...] | None:
        if table is not self.table:
            self.table, self.chains = table, {}
        return self.chains.get(key)

    def put(self, key: tuple[int, bool], chain: tuple[ChainLink, ...]) -> None:
        if len(self.chains) >= self.LIMIT:
            self.chains.clear()
        self.chains[key] = chain


def _link(frame: Any) -> ChainLink:  # frame: drgn.StackFrame
    try:
        path, line, _ = frame.source()
        file: str | None = path.rsplit("/", 1)[-1]
    except LookupError:
        file, line = None, None
    return ChainLink(frame.name, bool(frame.is_inline), file, line)


def _drgn_chains(m: Machine) -> list[tuple[int | None, tuple[ChainLink, ...]]] | None:
    """(pc, chain) of each real frame drgn unwinds from the CPU's registers; None when
    the unwind failed."""
    from emu.kernel.scope import physical_frames
    try:
        with m._reads_held():  # noqa: SLF001 - drgn reads the stack piecewise
            groups = physical_frames(m.program, m.registers())
    except KmemuError:
        return None
    out = []
    for group in groups:
        try:
            pc: int | None = group[0].pc
        except LookupError:
            pc = None
        out.append((pc, tuple(_link(f) for f in group)))
    return out


def _own_link(f: Frame) -> ChainLink:
    return ChainLink(f.function, False, f.file, f.line)


def chains(m: Machine, physical: list[Frame], cache: ChainCache
           ) -> list[tuple[ChainLink, ...]]:
    """Each real frame's chain (see the module's text), from the cache where the pc
    was seen before; a frame drgn did not unwind the same way is its own function
    alone."""
    out: list[tuple[ChainLink, ...] | None] = []
    for f in physical:
        key = (f.pc, f.level == 0)
        out.append(cache.get(m.lines, key))
    if any(c is None for c in out):
        found = _drgn_chains(m)
        for i, f in enumerate(physical):
            if out[i] is not None:
                continue
            chain = (_own_link(f),)
            if found is not None and i < len(found) and found[i][0] == f.pc and found[i][1]:
                chain = found[i][1]
                if chain[-1].inline:  # drgn stopped inside: the real function closes it
                    chain = (*chain, _own_link(f))
            if found is not None:  # a failed unwind is asked again at the next stop
                cache.put((f.pc, f.level == 0), chain)
            out[i] = chain
    return [c for c in out if c is not None]


def display_frames(m: Machine, physical: list[Frame], cache: ChainCache,
                   limit: int = 1 << 20) -> list[DisplayFrame]:
    """gdb's frame list over ``physical`` (innermost first), at most ``limit``."""
    out: list[DisplayFrame] = []
    skipped = m.inline_skipped()
    for f, chain in zip(physical, chains(m, physical, cache), strict=True):
        if f.level == 0:
            chain = _entered(chain, skipped)
        for i, link in enumerate(chain):
            if len(out) >= limit:
                return out
            file, line = link.file, link.line
            if not link.inline and i == 0:  # the unwinder's own row for a real function
                file, line = f.file or file, f.line or line
            name = link.function if link.inline else (f.function or link.function)
            out.append(DisplayFrame(len(out), f, i, name, link.inline, file, line))
    return out


def _entered(chain: tuple[ChainLink, ...], skipped: int) -> tuple[ChainLink, ...]:
    """Frame 0's chain without the ``skipped`` inlined bodies not entered yet."""
    if not skipped:
        return chain
    inline = sum(1 for c in chain if c.inline)
    return chain[min(skipped, inline):]


def innermost_inline(m: Machine, cache: ChainCache) -> str | None:
    """The inlined function gdb's frame 0 is (``"??"`` unnamed), None in a function's
    own code: frame 0's chain, from the cache where the pc was seen before."""
    chain = cache.get(m.lines, (m.cpu.rip, True))  # type: ignore[union-attr]
    if chain is None:
        here = m.backtrace(max_frames=1)
        if not here:
            return None
        chain = chains(m, here, cache)[0]
    shown = _entered(chain, m.inline_skipped())
    return (shown[0].function or "??") if shown and shown[0].inline else None


def _inside(m: Machine, frame: DisplayFrame, names: tuple[str | None, ...],
            cache: ChainCache) -> bool:
    """Is the CPU still in ``frame``'s inlined body (or deeper)?  ``names``: the
    functions of its chain from it outwards."""
    cfa = frame.cfa
    rsp = m.cpu.reg("rsp")  # type: ignore[union-attr]
    if cfa is None or rsp >= cfa:  # its real frame returned
        return False
    if rsp < frame.physical.sp:  # in a function it called
        return True
    here = m.backtrace(max_frames=1)
    if not here:
        return False
    chain = tuple(c.function for c in chains(m, here, cache)[0])
    return len(chain) >= len(names) and chain[-len(names):] == names


def _where(row: Any) -> tuple[str, int]:  # row: LineEntry
    return row.file.rsplit("/", 1)[-1], row.line


def _stop_row(m: Machine, rip: int) -> Any:  # -> LineEntry | None
    """Where a step may stop at ``rip``: a statement's first instruction, or where
    inlined bodies start (gdb stops at their call site, not entering them)."""
    from emu.kernel.lines import LineEntry
    row = m.lines.row_at(rip)
    if row is not None:
        return row
    site = m.lines.call_sites.get(rip) if m.lines.inline_entries.get(rip) else None
    return LineEntry(rip, site[0], site[1]) if site is not None else None


def leave_inline(call: Any, frame: DisplayFrame, cache: ChainCache) -> Any:
    """gdb's ``finish`` from an inline frame: step (over calls) until the CPU has
    left ``frame``'s inlined body, then on to the start of a line (gdb steps in
    the caller's frame with an empty range: leaving the body mid-line goes on to
    the next line's first instruction).  The line stopped at; None when the host
    call ended on the way.  ``call``: the stopped SuspendedCall."""
    from emu.debug.stepping import (
        MAX_STEP_INSNS,
        StepError,
        _entered_call,
        _run_to_return_from_entry,
        line_at,
    )
    m = call.machine
    cpu = m.cpu
    chain = chains(m, [frame.physical], cache)[0]
    if frame.physical.level == 0 and m.inline_skipped():
        chain = chain[min(m.inline_skipped(), sum(1 for c in chain if c.inline)):]
    names = tuple(c.function for c in chain[frame.index:])
    if frame.physical.level > 0:  # first back into its real frame, as finish does
        from emu.debug.stepping import finish
        finish(call, frame.physical.level - 1)
        if call.done:
            return None
    left_at = None  # the line where the body was left mid-line
    for _ in range(MAX_STEP_INSNS):
        prev_rip, prev_rsp = cpu.rip, cpu.reg("rsp")
        m._stepi(call)  # noqa: SLF001
        if call.done:
            return None
        if _entered_call(m, prev_rip, prev_rsp) and not _run_to_return_from_entry(call):
            return None
        if cpu.rip == m.call_return_address:  # the real frame returned to the host
            call.resume()
            return None
        if left_at is None and _inside(m, frame, names, cache):
            continue
        row = _stop_row(m, cpu.rip)
        if row is not None and (left_at is None or _where(row) != left_at):
            return row
        if left_at is None:
            here = line_at(m, cpu.rip)
            left_at = _where(here) if here is not None else ("", 0)
    raise StepError(f"finish: still in {frame.function} after {MAX_STEP_INSNS} "
                    f"instructions (at {m.symbolize(cpu.rip)})")
