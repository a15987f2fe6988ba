"""Layer 5: a debugging session over a machine — what both debugger front ends drive.

>>> s = DebugSession(m)                                  # doctest: +SKIP
>>> s.break_("kmalloc").number                           # doctest: +SKIP
1
>>> print(s.call("kmalloc", ["64", "GFP_KERNEL"]).text)  # doctest: +SKIP
Breakpoint 1, kmalloc (size=0x40, flags=0xcc0) at kmalloc.c:139
139             if (!size)
>>> s.next().text, s.finish().value                      # doctest: +SKIP

The session numbers breakpoints and watchpoints (one sequence, as gdb does),
holds the call that is stopped in the guest, turns every way a run can end
(breakpoint, watchpoint, end of a step, the call's return, an oops, Ctrl-C)
into a :class:`Stop` with the text a debugger prints, and answers the
allocator inspection commands shared by the REPL and gdb's ``monitor``.
Errors are :class:`emu.core.errors.KmemuError` with a one-line message; the
machine stays usable after every one of them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emu.core.errors import BadArgument, KmemuError
from emu.debug.breakpoints import (
    Breakpoint,
    Watchpoint,
    c_int,
    check_watch_range,
    parse_address,
    resolve_location,
)
from emu.debug.stepping import line_at
from emu.kernel.source import find_source, source_line

if TYPE_CHECKING:
    from emu.debug.breakpoints import WatchHit
    from emu.machine.core import Machine, Snapshot

SIGINT, SIGTRAP, SIGSEGV = 2, 5, 11


class SessionError(KmemuError, ValueError):
    """A debugger request that cannot be done now (nothing running, no such point...)."""


@dataclass
class Point:
    """A numbered breakpoint or watchpoint."""

    number: int
    kind: str  # "breakpoint", "hw watchpoint", "read watchpoint", "acc watchpoint"
    what: str  # as the user gave it
    bp: Breakpoint | None = None
    wp: Watchpoint | None = None
    temporary: bool = False
    condition: str = ""
    # A watch on a frame's variable: a breakpoint where that frame returns, and the call
    # the frame belongs to (gdb deletes such a watchpoint when the frame is gone).
    scoped: bool = False
    scope: Breakpoint | None = None
    scope_call: object = None
    scope_frame: tuple[int, int] | None = None  # (return address, CFA) of the frame

    @property
    def hits(self) -> int:
        if self.bp is not None:
            return self.bp.hits
        assert self.wp is not None
        return len(self.wp.hits)

    @property
    def address(self) -> int:
        return self.bp.address if self.bp is not None else self.wp.address  # type: ignore[union-attr]

    def remove(self) -> None:
        if self.bp is not None:
            self.bp.remove()
        if self.wp is not None:
            self.wp.remove()
        if self.scope is not None:
            self.scope.remove()


Describe = Callable[[], str]


class Stop:
    """How a run ended, and what a debugger prints about it.

    ``text`` is built on first read: describing a stop (the frame line with its
    arguments read through DWARF location lists, the source line) costs far more
    than the run itself, and the gdb stub never prints it (gdb describes stops
    itself).  A description must be read before the machine runs on: the session
    hands out describers that refuse to describe a state that is gone
    (:meth:`DebugSession._lazy`).  Prefixes and suffixes added with
    :meth:`wrap` stay lazy too.
    """

    __slots__ = ("reason", "_text", "rip", "point", "watch", "value", "signal")

    def __init__(self, reason: str, text: str | Describe, rip: int,
                 point: int | None = None, watch: WatchHit | None = None,
                 value: int | None = None, signal: int = SIGTRAP) -> None:
        self.reason = reason  # breakpoint watchpoint step finish done oops interrupted idle kasan
        # error exited pending (an irq made pending while a call is stopped)
        self._text = text
        self.rip, self.point, self.watch, self.value, self.signal = rip, point, watch, value, signal

    @property
    def text(self) -> str:
        if not isinstance(self._text, str):
            self._text = self._text()
        return self._text

    @text.setter
    def text(self, value: str) -> None:
        self._text = value

    @property
    def described(self) -> bool:
        """Whether the text has been built (front ends that print it build it)."""
        return isinstance(self._text, str)

    def wrap(self, before: str = "", after: str | Describe = "") -> None:
        """Put ``before`` ahead of the text and ``after`` behind it, without building it."""
        inner = self._text

        def text() -> str:
            body = inner if isinstance(inner, str) else inner()
            return before + body + (after if isinstance(after, str) else after())

        self._text = text if not isinstance(inner, str) or not isinstance(after, str) \
            else before + inner + after

    def __repr__(self) -> str:
        text = self._text if isinstance(self._text, str) else "<not described yet>"
        return f"Stop(reason={self.reason!r}, text={text!r}, rip={self.rip:#x}, " \
               f"point={self.point!r}, value={self.value!r}, signal={self.signal})"


@dataclass
class QueuedCall:
    fn: str
    args: list[int]
    context: str = "process"

    def __str__(self) -> str:
        return f"{self.fn}({', '.join(f'{a:#x}' for a in self.args)})"


_WATCH_KINDS = {"write": "hw watchpoint", "read": "read watchpoint", "access": "acc watchpoint"}


@dataclass
class DebugSession:
    m: Machine
    points: dict[int, Point] = field(default_factory=dict)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    queued: QueuedCall | None = None
    last_value: int | None = None
    _next_number: int = 1
    _step_from: int | None = None  # the function a run started in
    _history: list = field(default_factory=list)  # print's $1, $2, ... values
    # The frame 'frame'/'up'/'down' selected: (level, rip, rsp when selected); any run
    # or restore moves rip/rsp and so goes back to frame 0, as in gdb.
    _selected: tuple[int, int, int] | None = None
    _scope_names: dict = field(default_factory=dict)  # pc -> names visible in frame 0 there
    displays: dict[int, tuple[str, bool]] = field(default_factory=dict)  # n -> (expr, hex)
    _next_display: int = 1
    _runs: int = 0  # runs and restores so far: a Stop's lazy text checks it

    def __post_init__(self) -> None:
        self.m.suspend_on_interrupt = True
        self.m.stop_on_kasan = True  # a KASAN report stops at the faulting access

    # ------------------------------------------------------------------ state
    @property
    def call_in_progress(self):  # -> SuspendedCall | None
        return self.m._suspended if self.m.state == "stopped" else None  # noqa: SLF001

    def _need_stopped(self, what: str):  # -> SuspendedCall
        call = self.call_in_progress
        if call is None:
            if self.queued is not None:
                return self._start_queued()
            raise SessionError(f"{what}: the kernel is idle, no call is stopped "
                               "(start one with 'call FUNC ARGS...')")
        return call

    def interrupt(self) -> None:
        """Stop the running guest (safe from another thread, e.g. on Ctrl-C)."""
        self.m.interrupt()

    # ------------------------------------------------------------------ expressions
    def registers(self) -> dict[str, int]:
        """The selected frame's registers: all of them in frame 0; above it ``rip``,
        ``rsp`` and the callee-saved ones the unwinder recovered (as gdb, which shows
        the others as ``<not saved>``)."""
        frame = self.selected_frame()
        return self.m.registers() if frame is None else dict(frame.registers)

    def evaluate(self, text: str):  # -> drgn.Object
        """A C expression in the selected frame: its parameters and locals shadow
        kernel globals; ``$rip``/``$rsp``/callee-saved registers are that frame's;
        ``$1``, ``$2``... are earlier ``print`` values."""
        return self._evaluate(text)[0]

    def _evaluate(self, text: str):  # -> (drgn.Object, _FrameLocals)
        from emu.kernel.expr import evaluate
        scope = _FrameLocals(self, self.frame_level)
        obj = evaluate(self.m.program, text, self.registers(), symbols=self.m.symbols,
                       local_vars=scope, history=self._history)
        return obj, scope

    def variables(self, level: int | None = None) -> list:  # -> list[emu.kernel.scope.Variable]
        """:meth:`emu.Machine.frame_variables` of the selected frame (or ``level``)."""
        if self.m.symbols is None:
            return []
        return self.m.frame_variables(self.frame_level if level is None else level)

    # ------------------------------------------------------------------ frames
    @property
    def frame_level(self) -> int:
        """The selected frame (0 unless 'frame'/'up'/'down' chose another since the
        last run)."""
        sel = self._selected
        if sel is None or self.m.cpu is None:
            return 0
        if (self.m.cpu.rip, self.m.cpu.reg("rsp")) != sel[1:]:
            self._selected = None
            return 0
        return sel[0]

    def selected_frame(self):  # -> emu.kernel.unwind.Frame | None
        """The frame 'frame'/'up'/'down' selected, or None for frame 0 (the CPU's own
        registers, which know more than any unwound frame)."""
        level = self.frame_level
        return self.m.backtrace(max_frames=level + 1)[level] if level else None

    def select_frame(self, level: int) -> str:
        """gdb's ``frame N``: select frame ``level`` of the backtrace and describe it."""
        frames = self.m.backtrace(max_frames=max(level + 1, 1))
        if level < 0 or level >= len(frames):
            raise SessionError(f"no frame at level {level}: the stack has {len(frames)} "
                               f"frame{'s' if len(frames) != 1 else ''}")
        cpu = self.m.cpu
        assert cpu is not None
        self._selected = (level, cpu.rip, cpu.reg("rsp")) if level else None
        return self.describe_frame(frames[level])

    def move_frame(self, delta: int) -> str:
        """gdb's ``up N`` (``delta`` > 0) and ``down N`` (< 0)."""
        level = self.frame_level
        if delta < 0 and level == 0:
            raise SessionError("Bottom (innermost) frame selected; you cannot go down.")
        depth = len(self.m.backtrace(max_frames=level + max(delta, 0) + 1))
        if delta > 0 and level == depth - 1:
            raise SessionError("Initial frame selected; you cannot go up.")
        return self.select_frame(min(max(level + delta, 0), depth - 1))

    def describe_frame(self, frame) -> str:  # frame: emu.kernel.unwind.Frame
        """``#1  0x... in kmalloc+0x5e/0xe9 at kmalloc.c:107`` and that source line."""
        from emu.kernel.unwind import format_frame
        head = format_frame(frame)
        if frame.file is None or frame.line is None:
            return head
        src = source_line(frame.file, frame.line)
        return head + (f"\n{frame.line}\t{src}" if src is not None else "")

    def info_variables(self, arguments: bool, hex: bool = False) -> str:  # noqa: A002
        """gdb's ``info args`` / ``info locals`` for the selected frame.  Where code is
        inlined, each function's scope gets a heading, innermost first (gdb numbers
        inlined scopes as frames of their own; kmemu keeps the frames of ``bt``)."""
        from emu.kernel.scope import format_variable
        groups: dict[tuple[str | None, bool], list[str]] = {}
        for v in self.variables():
            if v.argument == arguments:
                groups.setdefault((v.function, v.inlined), []).append(
                    format_variable(v, hex=hex))
        if not groups:
            return "No arguments." if arguments else "No locals."
        if len(groups) == 1:
            return "\n".join(next(iter(groups.values())))
        out = []
        for (fn, inlined), lines in groups.items():
            out.append(f"{fn or '??'}{' (inlined)' if inlined else ''}:")
            out.extend(lines)
        return "\n".join(out)

    def value_of(self, text: str) -> int:
        """An integer (or address, for arrays and functions) from an expression."""
        text = text.strip()
        if not text:
            raise BadArgument("an address or expression is needed")
        literal = parse_address(text)  # over 64 bits: refused, not cut
        if literal is not None:
            return literal
        if re.fullmatch(r"[A-Za-z_]\w*", text) and self.m.symbols is not None \
                and text in self.m.symbols.by_name:
            return self.m.symbol(text)
        return as_int(self.evaluate(text), text)

    def print_expr(self, text: str, hex: bool = False) -> str:  # noqa: A002 - gdb's p/x
        from emu.kernel.expr import format_value
        n = len(self._history) + 1
        obj = self.evaluate(text)
        self._history.append(obj)
        return f"${n} = {format_value(obj, hex=hex, symbolize=self.m.symbolize)}"

    # ------------------------------------------------------------------ displays
    def display(self, expr: str, hex: bool = False) -> int:  # noqa: A002 - gdb's /x
        """gdb's ``display``: ``expr`` is printed at every stop (:meth:`display_lines`)
        where it can be evaluated.  Its syntax is checked now."""
        from emu.kernel.expr import Evaluator, parse
        text = expr.strip()
        if not text:
            raise BadArgument("display needs an expression")
        parse(text, Evaluator(self.m.program).is_type)
        try:  # unknown names and the like are refused now, as gdb does
            self.evaluate(text)
        except KmemuError as e:
            if not _memory_error(e):
                raise
        n = self._next_display
        self._next_display += 1
        self.displays[n] = (text, hex)
        return n

    def undisplay(self, numbers: list[int] | None = None) -> None:
        for n in _existing(self.displays, numbers, "display"):
            del self.displays[n]

    def display_line(self, n: int) -> str | None:
        """``1: c->freelist = (void *)0x...``; None where it cannot be evaluated (a
        local of another function), as gdb shows nothing then."""
        from emu.kernel.expr import format_value
        text, hex_ = self.displays[n]
        head = f"{n}: {'/x ' if hex_ else ''}{text} = "
        try:
            obj = self.evaluate(text)
        except KmemuError as e:
            return f"{head}<error: {e}>" if _memory_error(e) else None
        return head + format_value(obj, hex=hex_, symbolize=self.m.symbolize)

    def display_lines(self) -> list[str]:
        return [line for n in self.displays if (line := self.display_line(n)) is not None]

    def info_display(self) -> str:
        if not self.displays:
            return "There are no auto-display expressions now."
        rows = [f"{n}:   y  {'/x ' if hx else ''}{text}" for n, (text, hx) in self.displays.items()]
        return "Auto-display expressions now in effect:\nNum Enb Expression\n" + "\n".join(rows)

    # ------------------------------------------------------------------ breakpoints
    def _number(self) -> int:
        n = self._next_number
        self._next_number += 1
        return n

    def resolve(self, where: str | int) -> int:
        """A code address from a location: ``sym``, ``sym+off``, ``file.c:line``, an
        address, or gdb's ``*EXPR``."""
        if isinstance(where, str) and where.strip().startswith("*"):
            return resolve_location(self.m, self.value_of(where.strip()[1:]))
        return resolve_location(self.m, where)

    def break_(self, where: str | int, temporary: bool = False,
               condition: str | Callable[[Machine], bool] | None = None) -> Point:
        """``break``/``tbreak``: a symbol, ``sym+off``, ``*ADDR``, an address or
        ``file.c:line``; ``condition`` is a Python callable or a C expression
        evaluated in the guest at each hit (stop when non-zero)."""
        addr = self.resolve(where)
        cond_fn: Callable[[Machine], bool] | None
        cond_text = ""
        if isinstance(condition, str) and condition.strip():
            cond_text = condition.strip()
            from emu.kernel.expr import Evaluator, parse
            parse(cond_text, Evaluator(self.m.program).is_type)  # syntax now, names at hits

            def cond_fn(_: Machine, text: str = cond_text) -> bool:
                # an error stops the call (Breakpoint records it), as gdb does
                return self.value_of(text) != 0
        else:
            cond_fn = condition if callable(condition) else None
        bp = Breakpoint(self.m, where, addr, cond_fn, stop=True, temporary=temporary).install()
        p = Point(self._number(), "breakpoint", str(where), bp=bp, temporary=temporary,
                  condition=cond_text)
        self.points[p.number] = p
        return p

    def watch(self, expr: str | int, size: int | None = None, access: str = "write",
              changes_only: bool | None = None) -> Point:
        """``watch``/``rwatch``/``awatch`` an lvalue expression (its address and size)
        or an address (``size`` bytes, default 8).  The range is checked by
        :func:`emu.debug.breakpoints.check_watch_range`, the check ``Machine.watch`` and
        the gdb stub use: an object too big to watch is refused, never cut."""
        scope = None
        if isinstance(expr, int):
            addr, n, text = expr, 8 if size is None else size, f"*{expr:#x}"
        else:
            text = expr.strip()
            literal = parse_address(text[1:]) if text.startswith("*") else None
            if literal is not None:
                addr, n = literal, 8 if size is None else size
            else:
                obj, scope = self._evaluate(text)
                if obj.address_ is None:
                    raise BadArgument(f"cannot watch {text!r}: it is a value, not memory "
                                      "(watch an lvalue like 'zones[1].free_area[0].nr_free' "
                                      "or '*0xADDR')")
                import drgn
                try:
                    whole = drgn.sizeof(obj)
                except TypeError:
                    raise BadArgument(f"cannot watch {text!r}: a {obj.type_} has no size "
                                      "(watch data, e.g. '*(long *)ADDR')") from None
                addr, n = obj.address_, whole if size is None else size
        check_watch_range(addr, n, "" if isinstance(expr, int) else text)
        if changes_only is None:  # gdb's `watch` ignores writes of the same value
            changes_only = access == "write"
        scoped = scope is not None and bool(scope.used)
        guard = self._scope_guard(scope.level) if scoped else None  # type: ignore[union-attr]
        wp = Watchpoint(self.m, addr, n, access, stop=True, changes_only=changes_only,
                        expression=text)
        wp.install()
        p = Point(self._number(), _WATCH_KINDS[access], text, wp=wp)
        if scoped:
            p.scoped, p.scope_call = True, self.call_in_progress
            if guard is not None:
                p.scope, p.scope_frame = guard[0].install(), guard[1]
        wp.label = str(p.number)
        self.points[p.number] = p
        return p

    def _scope_guard(self, level: int) -> tuple[Breakpoint, tuple[int, int]] | None:
        """For a watch on frame ``level``'s variables: a stopping breakpoint where that
        frame returns to its caller, and the frame's (return address, CFA).  None
        when its return ends the call: the call's end deletes the watchpoint then."""
        frames = self.m.backtrace(max_frames=level + 2)
        if len(frames) < level + 2 or frames[level].cfa is None:
            return None
        ret, cfa = frames[level + 1].pc, frames[level].cfa
        if ret == self.m.call_return_address:
            return None
        bp = Breakpoint(self.m, ret, ret, stop=True,
                        condition=lambda mm: mm.cpu.reg("rsp") >= cfa)  # type: ignore[union-attr]
        return bp, (ret, cfa)

    def _out_of_scope(self, guard: object | None = None) -> str:
        """Delete the watchpoints on variables of frames that are gone (``guard``: the
        scope breakpoint that just hit); gdb's words for each."""
        call = self.call_in_progress
        # every watch on that frame's variables, not just the one whose guard stopped
        frames = {p.scope_frame for p in self.points.values()
                  if guard is not None and p.scope is guard}
        gone = [p for p in self.points.values() if p.scoped
                and ((p.scope_frame is not None and p.scope_frame in frames)
                     or p.scope_call is not call)]
        for p in gone:
            self.points.pop(p.number).remove()
        return "".join(f"\nWatchpoint {p.number} deleted because the program has left the "
                       "block in\nwhich its expression is valid.\n" for p in gone)

    def delete(self, numbers: list[int] | None = None) -> None:
        """Delete the given points, or all of them."""
        for n in _existing(self.points, numbers, "breakpoint"):
            self.points.pop(n).remove()

    def point_at(self, kind: str, address: int) -> Point | None:
        for p in self.points.values():
            if p.kind == kind and p.address == address:
                return p
        return None

    def info_breakpoints(self) -> str:
        if not self.points:
            return "No breakpoints or watchpoints."
        rows = ["Num     Type            Disp Enb Address            What"]
        for p in self.points.values():
            disp = "del " if p.temporary else "keep"
            if p.bp is not None:
                what = f"in {self.m.symbolize(p.address)}"
                line = line_at(self.m, p.address)
                if line is not None:
                    what += f" at {line.file}:{line.line}"
                rows.append(f"{p.number:<7} {p.kind:<15} {disp} y   {p.address:#018x} {what}")
                if p.condition:
                    rows.append(f"\tstop only if {p.condition}")
            else:
                wp = p.wp
                assert wp is not None
                rows.append(f"{p.number:<7} {p.kind:<15} {disp} y                      "
                            f"{p.what} ({wp.size} bytes at {wp.address:#x})")
            if p.hits:
                rows.append(f"\tbreakpoint already hit {p.hits} time{'s' if p.hits > 1 else ''}")
        return "\n".join(rows)

    def _number_of(self, obj: object) -> int | None:
        for p in self.points.values():
            if obj is not None and (p.bp is obj or p.wp is obj):
                return p.number
        return None

    # ------------------------------------------------------------------ calls
    def parse_call(self, fn: str, args: list[str]) -> QueuedCall:
        """``call kmalloc 100 GFP_KERNEL``: ints, GFP flag expressions, symbols or
        expressions (e.g. ``kmalloc_caches[0][3]``) as arguments."""
        from emu.kernel import gfp

        if not re.fullmatch(r"([A-Za-z_]\w*:)?[A-Za-z_]\w*", fn or ""):  # MODULE:FUNC too
            raise BadArgument(f"call needs a kernel function name, got {fn!r}")
        vals = []
        for a in args:
            if c_int(a) is not None:
                vals.append(c_int(a))  # type: ignore[arg-type]
            elif re.fullmatch(r"(__)?GFP_\w+(\s*\|\s*(__)?GFP_\w+)*", a):
                vals.append(gfp.parse(a))
            else:
                vals.append(self.value_of(a))
        self.m._check_args(tuple(vals))  # noqa: SLF001 - 64-bit, at most 6
        target = self.m._resolve_function(fn, len(vals))  # noqa: SLF001 - name and arity
        self.m._check_arg_types(fn, target, vals)  # noqa: SLF001 - each against its C type
        return QueuedCall(fn, vals)

    def call(self, fn: str, args: list[str], context: str = "process") -> Stop:
        """Start a call now; it runs to its end or to the first stop inside it."""
        if self.call_in_progress is not None:
            raise SessionError(f"a call is stopped at {self.m.symbolize(self.m.cpu.rip)}: "  # type: ignore[union-attr]
                               "continue, finish or 'kill' it first")
        q = self.parse_call(fn, args)
        q.context = context
        return self._go(lambda: self.m.call(q.fn, *q.args, context=context), "done", q.fn)

    def queue_call(self, fn: str, args: list[str]) -> str:
        """gdb's ``monitor call``: the call starts at the next continue or step."""
        if self.call_in_progress is not None:
            raise SessionError("a call is already stopped in the guest; continue it first")
        self.queued = self.parse_call(fn, args)
        return (f"{self.queued} queued: 'continue' runs it (it stops at breakpoints inside), "
                "'stepi' stops at its first instruction")

    def _start_queued(self):  # -> SuspendedCall, stopped at the function's first instruction
        from emu.machine.core import BreakpointHit

        q, self.queued = self.queued, None
        assert q is not None
        self._runs += 1
        entry = self.m._resolve_function(q.fn, len(q.args))  # noqa: SLF001
        bp = Breakpoint(self.m, entry, entry, stop=True, temporary=True).install()
        try:
            self.m.call(q.fn, *q.args, context=q.context)
        except BreakpointHit as e:
            if e.breakpoint is not bp:
                bp.remove()
            return e.call
        finally:
            bp.remove()
        raise SessionError(f"{q} finished before reaching {q.fn}")

    def kill(self) -> str:
        call = self.call_in_progress
        self.queued = None
        if self.m.state == "crashed":  # a run the debugger broke (e.g. RSP set to 0)
            self.m._abandon()  # noqa: SLF001
            return ("Back at idle after a failed run; the kernel may hold half-done state "
                    "('restore NAME' to be sure).")
        if call is None:
            return "The kernel is idle; nothing to kill."
        text = self._finish_quietly(call)
        return self._out_of_scope().lstrip("\n") + text

    #: How long ``kill`` lets a stopped call run on before abandoning it.
    KILL_SECONDS = 1.0

    def _finish_quietly(self, call) -> str:  # call: SuspendedCall
        """End a stopped call with :meth:`SuspendedCall.abort` (it runs to its end
        with the points off: a kernel function dropped halfway leaves half-done
        state).  gdb's ``kill`` must end the program, so a call that does not end
        within :attr:`KILL_SECONDS` (a runaway loop) is dropped where it is, and
        the message says the kernel may need a restore."""
        from emu.core.errors import CallStopped
        from emu.debug.stops import CannotAbort

        m = self.m
        try:
            result = m._abort(call, self.KILL_SECONDS)  # noqa: SLF001
        except CannotAbort as e:
            m._drop(call)  # noqa: SLF001
            cause = e.__cause__
            why = cause.detail if isinstance(cause, CallStopped) else str(cause)
            return (f"Call {call.name}() abandoned where it was: it did not end ({why}); the "
                    "kernel may hold half-done state ('restore NAME' to be sure).")
        except KmemuError as e:  # an oops or panic on the way
            return f"Call {call.name}() did not end cleanly ({e}); the kernel is {m.state}."
        return f"Call {call.name}() ran to its end (returned {result:#x}); the kernel is idle."

    def irq(self, vector: int) -> Stop:
        """Raise an interrupt.  At idle it is delivered now; a breakpoint or
        watchpoint in the handler stops there like one in a call (``cont`` finishes
        the interrupt).  While a call is stopped it becomes pending and is delivered
        when the stopped code next runs with interrupts enabled, as the CPU would
        take it (single steps run with interrupts held off, as on QEMU's gdb stub):
        the Stop's reason is "pending" then, and nothing ran."""
        if isinstance(vector, bool) or not isinstance(vector, int) or not 0x20 <= vector <= 0xFF:
            raise BadArgument(f"irq vector must be 0x20..0xff (0-31 are CPU exceptions), "
                              f"got {vector!r}")
        call = self.call_in_progress
        if call is not None:
            self.m.raise_irq(vector)  # only made pending while a call is stopped
            when = "" if self.m.cpu.irqs_enabled() else \
                " (interrupts are disabled here: it waits until they are enabled)"  # type: ignore[union-attr]
            return Stop("pending", f"IRQ {vector:#x} pending: delivered when "
                        f"{call.name}() runs on with interrupts enabled{when}",
                        self.m.cpu.rip)  # type: ignore[union-attr]

        def deliver() -> int:
            self.m.raise_irq(vector)
            return 0

        stop = self._go(deliver, "done", f"irq {vector:#x}")
        if stop.reason == "done":
            stop.text, stop.value = f"IRQ {vector:#x} delivered; the kernel is idle", None
        return stop

    # ------------------------------------------------------------------ run control
    def cont(self) -> Stop:
        call = self.call_in_progress
        if call is None and self.queued is not None:
            q, self.queued = self.queued, None
            return self._go(lambda: self.m.call(q.fn, *q.args, context=q.context), "done", q.fn)
        if call is None:
            return Stop("idle", "The kernel is idle: nothing to run. Start work with "
                        "'call FUNC ARGS...' (gdb: 'monitor call ...').", self.m.cpu.rip)  # type: ignore[union-attr]
        return self._go(call.resume, "done")

    def stepi(self, n: int = 1) -> Stop:
        if self.call_in_progress is None and self.queued is not None:
            self._start_queued()
            return self._here("step", n == 1)
        call = self._need_stopped("stepi")
        return self._go(lambda: call.stepi(n), "step")

    def step(self, n: int = 1) -> Stop:
        call = self._need_stopped("step")
        return self._go(lambda: call.step(n), "step")

    def next(self, n: int = 1) -> Stop:
        call = self._need_stopped("next")
        return self._go(lambda: call.next(n), "step")

    def until(self, where: str | None = None) -> Stop:
        call = self._need_stopped("until")
        target = self.resolve(where) if where else None
        return self._go(lambda: call.until(target), "step")

    def finish(self) -> Stop:
        """Run until the selected frame's function returns (gdb's ``finish``)."""
        call = self._need_stopped("finish")
        level = self.frame_level
        frame = self.selected_frame()
        if frame is not None:
            from emu.kernel.unwind import format_frame
            fn = frame.function or f"{frame.pc:#x}"
            head = f"Run till exit from {format_frame(frame)}\n"
        else:
            fn = self.m.symbolize(self.m.cpu.rip).split("+")[0]  # type: ignore[union-attr]
            head = f"Run till exit from #0  {self.location(args=True, brief=True)}\n"
        stop = self._go(lambda: call.finish(level), "finish")
        params = self.m.symbols.params.get(fn) if self.m.symbols is not None else None
        if params is not None and params.void:
            stop.value = None  # gdb prints no value for a void function
        if stop.reason in ("finish", "done"):
            stop.text = head + stop.text
        if stop.reason == "finish" and stop.value is not None:
            stop.text += f"\nValue returned from {fn}() is {stop.value:#x}"
        return stop

    def _go(self, run: Callable[[], object], reason: str, fn: str = "call") -> Stop:
        """Run ``run`` and describe how it ended.  A run selects frame 0; one that
        could not start (an error) keeps the selected frame.  Watchpoints on the
        variables of frames that are gone are deleted, with gdb's message."""
        saved, self._selected = self._selected, None
        self._runs += 1  # descriptions of earlier stops can no longer be built
        try:
            stop = self._run_and_describe(run, reason, fn)
            stop = self._pending_at_idle(stop)
        except BaseException:
            self._selected = saved  # frame_level still checks that rip/rsp did not move
            raise
        gone = self._out_of_scope()
        if gone:
            stop.wrap(before=gone.lstrip("\n"))
        return stop

    def _pending_at_idle(self, stop: Stop) -> Stop:
        """Interrupts made pending while a call was stopped (:meth:`irq`) and not taken
        before it ended (the code ran with interrupts off, e.g. inside a handler,
        whose ``iret`` turns them back on without the kernel's irq-window check): the
        idle loop runs with interrupts on, so the CPU takes them there, now."""
        m = self.m
        n = len(m.irq.state.pending) if m.irq is not None else 0
        while stop.reason == "done" and n and m.state == "ready" and m.irq.has_pending():  # type: ignore[union-attr]
            n -= 1
            vector = m.irq.next_deliverable()  # type: ignore[union-attr]
            assert vector is not None

            def deliver(v: int = vector) -> int:
                m.raise_irq(v)
                return 0

            before, value = stop.text, stop.value
            stop = self._run_and_describe(deliver, "done", f"irq {vector:#x}")
            if stop.reason == "done":
                stop.text, stop.value = f"IRQ {vector:#x} (pending) delivered at idle", value
            stop.wrap(before=before + "\n")
        return stop

    def _lazy(self, describe: Describe) -> Describe:
        """``describe`` for a :class:`Stop`, run when its text is first read; it
        refuses once the machine has run on or been restored (it would describe
        another state)."""
        runs = self._runs

        def text() -> str:
            if self._runs != runs:
                raise SessionError("this stop's description was not read before the "
                                   "machine ran on; it can no longer be built")
            return describe()

        return text

    def _run_and_describe(self, run: Callable[[], object], reason: str, fn: str) -> Stop:
        from emu.core.cpu import BudgetExceeded
        from emu.machine.core import (
            BreakpointHit,
            CallInterrupted,
            GuestExit,
            GuestOops,
            GuestWaiting,
            Interrupted,
            KasanStop,
            MachineError,
            WatchpointHit,
        )

        m = self.m
        call = self.call_in_progress
        self._step_from = self._function_at(m.cpu.rip)  # type: ignore[union-attr]
        try:
            value = run()
        except WatchpointHit as e:
            hit = e.hit
            stop = Stop("watchpoint", self._lazy(lambda: self.location(args=True)),
                        m.cpu.rip, self._number_of(e.breakpoint), hit)  # type: ignore[arg-type,union-attr]
            stop.wrap(before=f"{hit.describe()}\n")  # type: ignore[attr-defined]
            return stop
        except KasanStop as e:  # stopped at the access KASAN reported (report on the console)
            r = e.report
            what = f"{'Write' if r.write else 'Read'} of size {r.size}" if r.size else "Free"  # type: ignore[attr-defined]
            stop = Stop("kasan", self._lazy(lambda: self.location(args=True)),
                        m.cpu.rip)  # type: ignore[union-attr]
            stop.wrap(before=f"KASAN: {r.kind}: {what} at addr {r.address:016x}\n")  # type: ignore[attr-defined]
            return stop
        except CallInterrupted:
            stop = Stop("interrupted", self._lazy(lambda: self.location(args=True)),
                        m.cpu.rip, signal=SIGINT)  # type: ignore[union-attr]
            stop.wrap(before="Program received signal SIGINT, Interrupt.\n")
            return stop
        except BreakpointHit as e:
            if any(p.scope is e.breakpoint for p in self.points.values()):
                stop = Stop("watchpoint", self._lazy(lambda: self.location(args=True)),
                            m.cpu.rip)  # type: ignore[union-attr]
                stop.wrap(before=self._out_of_scope(e.breakpoint).lstrip("\n"))
                return stop
            num = self._number_of(e.breakpoint)
            err = getattr(e.breakpoint, "condition_error", None)
            why = (f"Error in testing condition for breakpoint {num}:\n"
                   f"{err.split(': ', 1)[-1]}\n") if err and num is not None else ""
            if num is not None and self.points[num].temporary:
                self.points.pop(num)
                banner = f"Temporary breakpoint {num}, "
            elif num is not None:
                banner = f"Breakpoint {num}, "
            else:
                banner = ""
            stop = Stop("breakpoint", self._lazy(lambda: self.location(args=True)),
                        m.cpu.rip, num)  # type: ignore[union-attr]
            stop.wrap(before=why + banner)
            return stop
        except GuestOops as e:
            return Stop("oops", f"Kernel oops: {e}\nThe call was abandoned; the kernel is idle "
                        "(tainted). 'restore NAME' goes back to a snapshot.",
                        m.cpu.rip, signal=SIGSEGV)  # type: ignore[union-attr]
        except (GuestWaiting, BudgetExceeded, Interrupted) as e:
            # the call stays stopped where the host stopped it (emu.core.errors.CallStopped)
            text = f"{type(e).__name__}: {e.detail}"
            if m.state == "stopped":
                text += "; the call is stopped there: continue, finish or 'kill' it"
            return Stop("error", text, m.cpu.rip,  # type: ignore[union-attr]
                        signal=SIGINT if isinstance(e, Interrupted) else SIGTRAP)
        except GuestExit as e:  # a panic: the kernel halted for good
            tail = m.console_tail(15)
            return Stop("exited", f"The kernel exited (code {e.code}), e.g. after a panic:\n"
                        f"{tail}\n'restore NAME' goes back to a snapshot.", m.cpu.rip,  # type: ignore[union-attr]
                        signal=SIGSEGV)
        except MachineError as e:
            return Stop("error", f"{e}\nThe machine cannot go on from here: 'kill' returns "
                        "it to idle, 'restore NAME' to a snapshot.", m.cpu.rip,  # type: ignore[union-attr]
                        signal=SIGSEGV)
        if call is not None and call.done or self.call_in_progress is None:
            name = call.name if call is not None else fn
            result = call.result if call is not None else value
            self.last_value = result  # type: ignore[assignment]
            params = m.symbols.params.get(name) if m.symbols is not None else None
            if name.startswith("irq "):
                text = f"IRQ {name[4:]} handled; the kernel is idle"
            elif params is not None and params.void:
                text, result = f"{name}() returned; the kernel is idle", None
            else:
                text = f"{name}() returned {result:#x} ({result}); the kernel is idle"
            return Stop("done", text, m.cpu.rip, value=result)  # type: ignore[arg-type,union-attr]
        stop = self._here(reason, True)
        if reason == "finish":
            stop.value = value  # type: ignore[assignment]
        return stop

    def _here(self, reason: str, source: bool) -> Stop:
        """A step's stop: just the source line while in the same function, the frame
        line too when the step entered or left one (as gdb prints)."""
        same = self._function_at(self.m.cpu.rip) == self._step_from  # type: ignore[union-attr]
        return Stop(reason, self._lazy(lambda: self.location(args=True,
                                                             show_frame=not (source and same))),
                    self.m.cpu.rip)  # type: ignore[union-attr]

    def _function_at(self, rip: int) -> int | None:
        hit = self.m.symbols.lookup(rip) if self.m.symbols is not None else None
        return hit[0].address if hit else None

    # ------------------------------------------------------------------ where we are
    def location(self, args: bool = False, brief: bool = False, show_frame: bool = True) -> str:
        """gdb's stop line: ``kmalloc (size=0x40, flags=0xcc0) at kmalloc.c:139`` and
        the source line (``0x... in`` prefix when not at the start of a line)."""
        m = self.m
        rip = m.cpu.rip  # type: ignore[union-attr]
        assert m.symbols is not None
        hit = m.symbols.lookup(rip)
        fn = hit[0].name if hit else f"{rip:#x}"
        row = line_at(m, rip)
        prefix = "" if (row is not None and m.lines.row_at(rip) is not None) else f"{rip:#018x} in "
        text = ""
        if row is not None and not brief:
            src = source_line(row.file, row.line)
            text = f"{row.line}\t{src}" if src is not None else f"{row.line}\tin {row.file}"
            if not show_frame and prefix == "":
                return text
        arglist = ""
        if args and hit is not None and hit[1] == 0 and fn in m.symbols.params:
            p = m.symbols.params.get(fn)
            if p is not None:
                regs = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")
                arglist = ", ".join(f"{name}={m.cpu.reg(r):#x}"  # type: ignore[union-attr]
                                    for name, r in zip(p.names, regs, strict=False))
        elif args and hit is not None:
            arglist = self._arglist(fn)
        head = f"{prefix}{fn} ({arglist})"
        if row is None:
            return head
        head += f" at {row.file}:{row.line}"
        return head if brief else f"{head}\n{text}"

    def _arglist(self, fn: str) -> str:
        """``s=0xffff888..., size=<optimized out>``: frame 0's own parameters where
        the DWARF location lists say they are."""
        from emu.kernel.scope import short_value
        try:
            own = [v for v in self.m.frame_variables(0) if v.argument and not v.inlined]
        except KmemuError:
            return ""
        found = {v.name: v for v in own}
        params = self.m.symbols.params if self.m.symbols is not None else {}
        # the DWARF name: fn may be an alias (alloc_pages for __alloc_pages)
        p = params.get(own[0].function or fn) if own else params.get(fn)
        names = p.names if p is not None else tuple(found)
        def arg(n: str) -> str:
            v = found.get(n)
            if v is None:
                return f"{n}=<optimized out>"
            if v.value.absent_ and v.at_entry is not None:  # gdb: name@entry=value
                return f"{n}@entry={short_value(v.at_entry)}"
            return f"{n}={short_value(v.value)}"

        return ", ".join(arg(n) for n in names)

    def backtrace(self, limit: int = 64) -> str:
        from emu.kernel.unwind import format_backtrace
        return format_backtrace(self.m.backtrace(max_frames=limit))

    def frame_pc(self) -> int:
        """The selected frame's pc (a return address above frame 0)."""
        frame = self.selected_frame()
        return self.m.cpu.rip if frame is None else frame.pc  # type: ignore[union-attr]

    def source_position(self, spec: str | None = None) -> tuple[str, int]:
        """(file, line) of a location, or of the selected frame (its call's line above
        frame 0, as gdb lists it)."""
        m = self.m
        if spec:
            row = m.lines.lookup(self.resolve(spec))
        elif (f := self.selected_frame()) is not None:
            if f.file is not None and f.line is not None:
                return f.file, f.line
            row = None
        else:
            row = m.lines.lookup(m.cpu.rip)  # type: ignore[union-attr]
        if row is None:
            raise SessionError(f"no source line for {spec or 'the current location'}")
        return row.file, row.line

    def list_source(self, spec: str | None = None, around: int = 5) -> str:
        """gdb's ``list``: lines around the selected frame's line, a function or
        ``file:line``."""
        file, line = self.source_position(spec)
        path = find_source(file)
        if path is None:
            raise SessionError(f"source file {file} not found")
        lines = path.read_text(errors="replace").splitlines()
        lo = max(1, line - around)
        hi = min(len(lines), line + around)
        return "\n".join(f"{n}\t{lines[n - 1]}" for n in range(lo, hi + 1))

    # ------------------------------------------------------------------ snapshots
    def snapshot(self, name: str) -> str:
        if not re.fullmatch(r"[\w.-]+", name or ""):
            raise BadArgument(f"snapshot names are letters, digits, '_', '.', '-'; got {name!r}")
        self.snapshots[name] = self.m.snapshot()
        return f"snapshot {name!r} saved" + (" (inside the stopped call)"
                                              if self.call_in_progress is not None else "")

    def restore(self, name: str) -> str:
        snap = self.snapshots.get(name)
        if snap is None:
            known = ", ".join(self.snapshots) or "none"
            raise SessionError(f"no snapshot named {name!r} (saved: {known})")
        self.m.restore(snap)
        self._runs += 1
        self._selected = None
        for k in [k for k, s in self.snapshots.items() if not s.valid]:
            del self.snapshots[k]
        self.queued = None
        gone = self._out_of_scope()
        return gone.lstrip("\n") + f"restored {name!r}" + (
            f"; stopped at {self.location(args=True, brief=True)}"
            if self.call_in_progress is not None else "; the kernel is idle")

    # ------------------------------------------------------------------ allocator views
    def monitor(self, line: str) -> str:
        """The inspection commands shared by the REPL and gdb's ``monitor``."""
        try:
            words = shlex.split(line)
        except ValueError as e:
            raise BadArgument(f"cannot parse {line!r}: {e}") from e
        if not words:
            raise BadArgument("empty command; try 'help'")
        cmd, rest = words[0], words[1:]
        m = self.m
        if cmd in ("buddyinfo", "slabinfo", "vmallocinfo", "zoneinfo", "pagetypeinfo",
                   "slabtop"):
            if rest:
                raise BadArgument(f"{cmd} takes no arguments")
            return getattr(m, cmd)().rstrip("\n")
        if cmd == "modules":
            if rest:
                raise BadArgument("modules takes no arguments")
            return self.modules_text()
        if cmd in ("pt", "whatis"):
            if len(rest) != 1:
                raise BadArgument(f"usage: {cmd} ADDR")
            addr = self.value_of(rest[0])
            return (m.pt(addr) if cmd == "pt" else m.whatis(addr)).rstrip("\n")
        if cmd == "call":
            if not rest:
                raise BadArgument("usage: call FUNC [ARGS...]")
            return self.queue_call(rest[0], rest[1:])
        raise BadArgument(f"unknown monitor command {cmd!r}; known: buddyinfo, slabinfo, "
                          "slabtop, vmallocinfo, zoneinfo, pagetypeinfo, modules, pt ADDR, "
                          "whatis ADDR, call FUNC ARGS...")

    def modules_text(self) -> str:
        """Each loaded module as /proc/modules shows it, then the gdb command that
        loads its symbols at the addresses the kernel put its sections at."""
        mods = self.m.modules()
        if not mods:
            return "No modules loaded."
        out = []
        for mod in mods:
            out.append(self.m.proc_modules_line(mod))
            out.append(mod.add_symbol_file() if mod.elf is not None
                       else "(its .ko is no longer in the build cache: no symbols)")
        return "\n".join(out)


def _existing(table: dict, numbers: list[int] | None, what: str) -> list[int]:
    """``numbers`` (all of ``table`` for None), after checking each is there: a bad
    one changes nothing."""
    nums = list(table) if numbers is None else numbers
    missing = next((n for n in nums if n not in table), None)
    if missing is not None:
        raise SessionError(f"no {what} number {missing}")
    return nums


def _memory_error(e: Exception) -> bool:
    """An expression that is right but whose memory or value cannot be read now."""
    return str(e).startswith(("cannot access memory", "the value is not available"))


def as_int(obj, text: str = "") -> int:  # obj: drgn.Object
    """An expression's value as an address or number: arrays and functions give
    their address, pointers and integers their value."""
    import drgn

    kind = obj.type_.unaliased_kind()
    if obj.address_ is not None and kind in (drgn.TypeKind.ARRAY, drgn.TypeKind.FUNCTION,
                                             drgn.TypeKind.STRUCT, drgn.TypeKind.UNION):
        return obj.address_
    try:
        return int(obj.value_()) & ((1 << 64) - 1)
    except (TypeError, ValueError, drgn.FaultError) as e:
        raise BadArgument(f"{text or 'the expression'} is not a number or an address: {e}") \
            from None


class _FrameLocals(Mapping):
    """A frame's variables for one expression, read only if the expression names one:
    which names are visible at a pc never changes, so frame 0's are cached by pc and
    a condition on globals costs no unwinding at each hit.  ``used`` records the
    variables the expression read (a watch on them is scoped to the frame)."""

    def __init__(self, session: DebugSession, level: int) -> None:
        self.session, self.level = session, level
        self.used: set[str] = set()
        self._all: list | None = None  # every Variable of the frame, shadowed ones too
        self._vars: dict | None = None

    def _variables(self) -> list:
        if self._all is None:
            self._all = self.session.variables(self.level)
        return self._all

    def _load(self) -> dict:
        if self._vars is None:
            found = [v for v in self._variables() if not v.shadowed]
            self._vars = {v.name: v.value for v in found}
            self._vars.update({f"{v.name}@entry": v.at_entry for v in found
                               if v.at_entry is not None})
        return self._vars

    def _names(self):  # -> Collection[str]
        if self.level != 0 or self.session.m.cpu is None:
            return self._load()
        cache = self.session._scope_names  # noqa: SLF001
        pc = self.session.m.cpu.rip
        names = cache.get(pc)
        if names is None:
            if len(cache) >= 4096:
                cache.clear()
            names = cache[pc] = frozenset(self._load())
        return names

    def scoped(self, function: str, name: str):  # -> drgn.Object | None
        """``function::name``: that function's variable even where an inner scope
        shadows the name (gdb's ``print slab_alloc::s``)."""
        for v in self._variables():
            if v.name == name and v.function == function:
                self.used.add(name)
                return v.value
        return None

    def __contains__(self, name: object) -> bool:
        try:
            if isinstance(name, str) and name.endswith("@entry"):
                return name in self._load()  # depends on the caller, not just the pc
            return name in self._names()
        except KmemuError:
            return False

    def __getitem__(self, name: str):  # -> drgn.Object
        value = self._load()[name]
        self.used.add(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())
