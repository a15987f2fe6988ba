"""Layer 5: running a suspended call by instruction, by source line, to a return.

>>> try:                                           # doctest: +SKIP
...     m.kmalloc(64)
... except BreakpointHit as hit:                   # m.break_at("kmalloc") was set
...     line = hit.call.next()                     # over calls, to the next line
...     ptr = hit.call.finish()                    # kmalloc's return value

Line stepping follows gdb: ``step`` and ``next`` execute instructions until
RIP is at the *start* of a line-table row for a different source line.  A
``call`` instruction that enters a function is run to its return (``next``,
or a function without line information) or stopped after (``step``); the
callee's first line is its opening brace, so ``step`` goes on to the next
row, as gdb's prologue skip does.  Returning into the caller updates the
"current line" to the caller's, so the step ends at the caller's next line.
Code without line information (the call trampolines in entry.S) is run
until it returns.  Each step is one ``emu_start(count=1)`` (~10 µs), and
called functions run at full speed to a temporary breakpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from emu.core.errors import BadArgument, KmemuError
from emu.debug.breakpoints import Breakpoint, resolve_location
from emu.kernel.lines import LineEntry

if TYPE_CHECKING:
    from emu.machine.core import Machine, SuspendedCall

#: Instructions a single line step may take before it gives up (a loop with no
#: line change, e.g. a spin in code without line info).
MAX_STEP_INSNS = 100_000


class StepError(KmemuError):
    """A step that cannot be done here (no caller to finish to, a runaway line)."""


def _count(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BadArgument(f"step count must be a positive int, got {n!r}")
    return n


def stepi(call: SuspendedCall, n: int = 1) -> int:
    """Execute ``n`` instructions; the new RIP (idle RIP if the call ended)."""
    m = call.machine
    for _ in range(_count(n)):
        m._stepi(call)  # noqa: SLF001
        if call.done:
            break
    return m.cpu.rip  # type: ignore[union-attr]


def _function(m: Machine, rip: int) -> tuple[int, int] | None:
    """(start, size) of the function holding ``rip``."""
    assert m.symbols is not None
    hit = m.symbols.lookup(rip)
    if hit is None:
        return None
    sym, _ = hit
    return sym.address, sym.size


def line_at(m: Machine, rip: int) -> LineEntry | None:
    """The line ``rip`` is in, only if that row belongs to rip's own function."""
    fn = _function(m, rip)
    row = m.lines.lookup(rip)
    if row is None or fn is None or row.address < fn[0]:
        return None
    return row


def _entered_call(m: Machine, prev_rip: int, prev_rsp: int) -> bool:
    """Did the instruction at ``prev_rip`` just call a function (rip at its entry)?"""
    cpu = m.cpu
    assert cpu is not None
    rsp = cpu.reg("rsp")
    if rsp != prev_rsp - 8:
        return False
    fn = _function(m, cpu.rip)
    if fn is None or fn[0] != cpu.rip:
        return False
    try:
        ret = m.read_u64(rsp)
    except KmemuError:
        return False
    return prev_rip < ret <= prev_rip + 15


def _inline_call_site(m: Machine, rip: int, depth: int, current: LineEntry,
                      over: bool) -> LineEntry | None:
    """gdb's rule for arriving where inlined bodies start (their frames not entered
    yet) in the function being stepped, at the depth the step started at: stop at
    the inlined call's line if it is another line than the one being stepped; on the
    same line ``next`` goes on (None) and ``step`` enters the body (its first line)."""
    site = m.lines.call_site(rip, depth)
    if site is None:
        return None
    same = site.line == current.line and \
        site.file.rsplit("/", 1)[-1] == current.file.rsplit("/", 1)[-1]
    if not same:
        return site
    if over:
        return None
    m._inline_entered = rip  # noqa: SLF001
    return m.lines.lookup(rip)


def run_to(call: SuspendedCall, address: int, min_rsp: int | None = None,
           frame_ok: Callable[[Machine], bool] | None = None, leave: bool = False) -> bool:
    """Resume until RIP reaches ``address`` (with RSP >= ``min_rsp``, i.e. in the
    frame that returns there, and ``frame_ok`` true); False if the call ended first.
    Already there: done at once, unless ``leave`` (then it must come back).  Another
    stopping breakpoint or watchpoint on the way raises as usual."""
    from emu.machine.core import BreakpointHit

    m = call.machine

    def ok(mm: Machine) -> bool:
        return ((min_rsp is None or mm.cpu.reg("rsp") >= min_rsp)  # type: ignore[union-attr]
                and (frame_ok is None or frame_ok(mm)))

    if m.cpu.rip == address and ok(m) and not leave:  # type: ignore[union-attr]
        return True
    bp = Breakpoint(m, address, address, condition=ok, stop=True, temporary=True).install()
    try:
        call.resume()
    except BreakpointHit as e:
        if e.breakpoint is bp:
            return True
        raise
    finally:
        bp.remove()
    return False


def _run_to_return_from_entry(call: SuspendedCall) -> bool:
    """At a function's first instruction: run it until it returns to its caller."""
    m = call.machine
    rsp = m.cpu.reg("rsp")  # type: ignore[union-attr]
    return run_to(call, m.read_u64(rsp), rsp + 8)


def _after_prologue(m: Machine, entry: int) -> int:
    """Where ``step`` into a function stops: the first row after the opening line."""
    fn = _function(m, entry)
    first = line_at(m, entry)
    if fn is None or first is None:
        return entry
    for row in m.lines.rows_between(entry + 1, fn[0] + fn[1]):
        if row.line != first.line or row.file != first.file:
            return row.address
    return entry


def step_line(call: SuspendedCall, over: bool, count: int = 1,
              forward_only: bool = False) -> LineEntry | None:
    """gdb's ``step`` (``over=False``) / ``next`` (``over=True``), ``count`` times."""
    loc = None
    for _ in range(_count(count)):
        loc = _one_line(call, over, forward_only)
        if call.done:
            return None
    return loc


def _one_line(call: SuspendedCall, over: bool, forward_only: bool) -> LineEntry | None:
    m = call.machine
    cpu = m.cpu
    assert cpu is not None
    start_rip = cpu.rip
    current = line_at(m, start_rip)
    if current is None:  # no line info here: run until this function returns
        finish(call)
        return None if call.done else line_at(m, cpu.rip)
    fn = _function(m, start_rip)
    if not over and m.inline_skipped():  # gdb: step at an inlined call site is "down"
        m._inline_entered = start_rip  # noqa: SLF001
        return m.lines.lookup(start_rip)
    if m.inline_skipped():  # next at an inlined call site: that line is the one stepped
        site = m.lines.call_sites.get(start_rip)
        current = LineEntry(start_rip, *site) if site is not None else current
    base_rsp = cpu.reg("rsp")
    depth = m.lines.inline_depth(start_rip) - m.inline_skipped()
    for _ in range(MAX_STEP_INSNS):
        prev_rip, prev_rsp = cpu.rip, cpu.reg("rsp")
        m._stepi(call)  # noqa: SLF001
        if call.done:
            return None
        rip = cpu.rip
        if _entered_call(m, prev_rip, prev_rsp):
            if over or line_at(m, rip) is None:
                if not _run_to_return_from_entry(call):
                    return None
                if _function(m, cpu.rip) == fn:
                    site = _inline_call_site(m, cpu.rip, depth, current, over)
                    if site is not None:
                        return site
                continue
            target = _after_prologue(m, rip)
            if target != rip and not run_to(call, target):
                return None
            return line_at(m, cpu.rip)
        if rip == m.call_return_address:  # the called function returned to the host
            call.resume()
            return None
        here = _function(m, rip)
        if here != fn and cpu.reg("rsp") > base_rsp:  # returned into the caller
            current = line_at(m, rip)
            if current is None:  # e.g. back in the call trampoline: finish the call
                finish(call)
                return None if call.done else line_at(m, cpu.rip)
            row = m.lines.row_at(rip)
            if row is not None:  # gdb: back in the caller at the start of a statement
                return row
            fn, base_rsp, start_rip = here, cpu.reg("rsp"), rip
            depth = m.lines.inline_depth(rip)
            continue
        site = _inline_call_site(m, rip, depth, current, over) if here == fn else None
        if site is not None:
            return site
        row = m.lines.row_at(rip)
        if row is None or (row.line == current.line and row.file == current.file):
            continue
        if forward_only and here == fn and rip < start_rip:
            continue  # until: a jump back (a loop) does not end the step
        if over and here == fn and m.lines.inline_depth(rip) > depth:
            continue  # next: an inlined call is stepped over like a real one
        return row
    raise StepError(f"no new source line after {MAX_STEP_INSNS} instructions "
                    f"(at {m.symbolize(cpu.rip)})")


def until(call: SuspendedCall, where: str | int | None = None,
          anywhere: bool = False) -> LineEntry | None:
    """gdb's ``until`` / ``until LOCATION`` (see :meth:`SuspendedCall.until`);
    ``anywhere``: gdb's ``advance LOCATION``, which stops at LOCATION in any frame
    (a recursive call too), or where the current function returns."""
    if where is None:
        return step_line(call, over=True, forward_only=True)
    m = call.machine
    target = resolve_location(m, where)
    frames = m.backtrace(max_frames=2)
    if len(frames) < 2:
        raise StepError(f"until: cannot find the caller of {m.symbolize(m.cpu.rip)}")  # type: ignore[union-attr]
    from emu.machine.core import BreakpointHit

    ret_bp = Breakpoint(m, frames[1].pc, frames[1].pc, stop=True, temporary=True,
                        condition=lambda mm: mm.cpu.reg("rsp") >= frames[0].cfa)  # type: ignore[union-attr]
    # gdb: a LOCATION in the current function counts only in this frame (or a caller),
    # not in a recursive call; one in another function counts wherever it is reached
    same = not anywhere and _function(m, target) == _function(m, m.cpu.rip)  # type: ignore[union-attr]
    cfa = frames[0].cfa if same else None

    def this_frame(mm: Machine) -> bool:
        here = mm.backtrace(max_frames=1)[0].cfa
        return cfa is None or here is None or here >= cfa

    ret_bp.install()
    try:
        run_to(call, target, frame_ok=this_frame, leave=True)
    except BreakpointHit as e:
        if e.breakpoint is not ret_bp:
            raise
    finally:
        ret_bp.remove()
    return None if call.done else line_at(m, m.cpu.rip)  # type: ignore[union-attr]


def finish(call: SuspendedCall, level: int = 0) -> int:
    """Run until the function of frame ``level`` returns; its return value (see
    SuspendedCall)."""
    m = call.machine
    cpu = m.cpu
    assert cpu is not None and m.symbols is not None
    if isinstance(level, bool) or not isinstance(level, int) or level < 0:
        raise StepError(f"finish: a frame level is an int >= 0, not {level!r}")
    frames = m.backtrace(max_frames=level + 2)
    if len(frames) < level + 2:
        pc = frames[-1].pc if len(frames) == level + 1 else None
        if pc is not None and pc - 1 <= m.call_return_address <= pc + 0x20 and \
                m.symbolize(pc).startswith("kmemu_call_return"):
            raise StepError('"finish" not meaningful in the outermost frame '
                            "(kmemu_call_return: the host call's trampoline)")
        if pc is None:
            raise StepError(f"finish: no frame {level} (the stack has {len(frames)})")
        raise StepError(f"finish: cannot find the caller of {m.symbolize(pc)}")
    ret, cfa = frames[level + 1].pc, frames[level].cfa
    if ret == m.call_return_address:
        return call.resume()  # the return ends the call: its result
    fn = _function(m, frames[level].pc if level else cpu.rip)
    if not run_to(call, ret, cfa):
        return call.result  # type: ignore[return-value]
    rax = cpu.reg("rax")
    if fn is not None:
        sym = m.symbols.lookup(fn[0])
        p = m.symbols.params.get(sym[0].name) if sym else None
        if p is not None and 0 < p.ret_size < 8:
            rax &= (1 << (8 * p.ret_size)) - 1
    return rax
