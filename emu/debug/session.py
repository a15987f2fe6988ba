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
from pathlib import Path
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
    once: bool = False  # gdb's "enable once": disabled by its next stop (Disp "dis")
    condition: str = ""
    # A watch on a frame's variable: a breakpoint where that frame returns, and the call
    # the frame belongs to (gdb deletes such a watchpoint when the frame is gone).
    scoped: bool = False
    scope: Breakpoint | None = None
    enabled: bool = True  # gdb's enable/disable: a disabled point's hook is removed
    value_type: object = None  # a watched expression's C type (drgn.Type), for Old/New
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
    _step_from: tuple[int | None, str | None] | None = None  # where a run started (_frame_key)
    _history: list = field(default_factory=list)  # print's $1, $2, ... values
    # The frame 'frame'/'up'/'down' selected: (level, rip, rsp when selected); any run
    # or restore moves rip/rsp and so goes back to frame 0, as in gdb.
    _selected: tuple[int, int, int] | None = None
    _scope_names: dict = field(default_factory=dict)  # pc -> names visible in frame 0 there
    displays: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # n -> (expr, fmt)
    convenience: dict[str, object] = field(default_factory=dict)  # gdb's $name -> value
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
                       local_vars=scope, history=self._history, convenience=self.convenience)
        return obj, scope

    def set_convenience(self, name: str, text: str) -> None:
        """gdb's ``set $name = EXPR``: ``$name`` holds EXPR's value from now on (a
        copy: later changes to the memory it came from do not change it; an array
        decays to a pointer to its first element, as gdb's assignment does)."""
        if not re.fullmatch(r"[A-Za-z_]\w*", name) or name.isdigit():
            raise SessionError(f"invalid convenience variable name ${name}")
        from emu.kernel.expr import ALL_REGISTERS, REGISTER_ALIASES
        if REGISTER_ALIASES.get(name, name) in ALL_REGISTERS:
            raise SessionError(f"${name} is a register: kmemu's debugger does not write "
                               "registers")
        import drgn
        obj = self._printed(text)
        t = obj.type_.unaliased()
        if t.kind == drgn.TypeKind.ARRAY and obj.address_ is not None:  # gdb: C's decay
            obj = drgn.Object(obj.prog_, obj.prog_.pointer_type(t.type), value=obj.address_)
        self.convenience[name] = obj.read_() if obj.address_ is not None else obj

    def variables(self, level: int | None = None, all_scopes: bool = False) -> list:
        """The variables (emu.kernel.scope.Variable) of the selected frame (or frame
        ``level``, gdb's numbering where inlined functions are frames): those of
        :meth:`emu.Machine.frame_variables` of its real frame that belong to its own
        function (gdb looks a name up no further out than the function, an inlined
        one included); ``all_scopes``: every function's of that real frame
        (``function::name`` reaches them)."""
        from dataclasses import replace
        if self.m.symbols is None:
            return []
        level = self.frame_level if level is None else level
        if level == 0 and not self._inline_frames_at_pc():
            return self.m.frame_variables(0)
        frames = self.frames(level + 1)
        if level >= len(frames):
            return self.m.frame_variables(level)  # its error: no such frame
        df = frames[level]
        found = self.m.frame_variables(df.physical.level)
        if all_scopes or (not df.inline and df.index == 0):  # nothing inlined at its pc
            return found
        mine = [v for v in found if v.inlined == df.inline and
                (not df.inline or v.function == df.function)]
        seen: set[str] = set()
        out = []
        for v in mine:
            out.append(replace(v, shadowed=v.name in seen))
            seen.add(v.name)
        return out

    def frames(self, limit: int = 64) -> list:  # -> list[emu.debug.frames.DisplayFrame]
        """gdb's frames (inlined functions as levels), innermost first."""
        return self.m.frames(max_frames=limit)

    def _inline_frames_at_pc(self) -> bool:
        """Is frame 0 inside an inlined body (after gdb's skipped ones)?"""
        m = self.m
        return m.lines.inline_depth(m.cpu.rip) - m.inline_skipped() > 0  # type: ignore[union-attr]

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

    def selected_display_frame(self):  # -> emu.debug.frames.DisplayFrame | None
        """gdb's selected frame (inlined functions are frames), None for frame 0."""
        level = self.frame_level
        return self.frames(level + 1)[level] if level else None

    def selected_frame(self):  # -> emu.kernel.unwind.Frame | None
        """The real frame running the frame 'frame'/'up'/'down' selected, or None in
        frame 0's real frame (the CPU's own registers, which know more than any
        unwound frame; an inline frame there shares them)."""
        df = self.selected_display_frame()
        return df.physical if df is not None and df.physical.level else None

    def select_frame(self, level: int) -> str:
        """gdb's ``frame N``: select frame ``level`` of the backtrace and describe it."""
        frames = self.frames(max(level + 1, 1))
        if level < 0 or level >= len(frames):
            raise SessionError(f"No frame at level {level}.")  # gdb's words
        cpu = self.m.cpu
        assert cpu is not None
        self._selected = (level, cpu.rip, cpu.reg("rsp")) if level else None
        return self.describe_frame(frames[level])

    def move_frame(self, delta: int) -> str:
        """gdb's ``up N`` (``delta`` > 0) and ``down N`` (< 0)."""
        level = self.frame_level
        if delta < 0 and level == 0:
            raise SessionError("Bottom (innermost) frame selected; you cannot go down.")
        depth = len(self.frames(level + max(delta, 0) + 1))
        if delta > 0 and level == depth - 1:
            raise SessionError("Initial frame selected; you cannot go up.")
        return self.select_frame(min(max(level + delta, 0), depth - 1))

    def describe_frame(self, frame) -> str:  # frame: emu.debug.frames.DisplayFrame
        """``#1  0x... in kmalloc (size=64, gfp=3264) at /path/kmalloc.c:107`` and that
        source line (gdb's ``frame``, ``up``, ``down``)."""
        if frame.level == 0:
            return f"#0  {self._innermost_location()}"
        head = self._frame_line(frame)
        if frame.file is None or frame.line is None:
            return head
        src = source_line(frame.file, frame.line)
        return head + (f"\n{frame.line}\t{src}" if src is not None else "")

    def info_variables(self, arguments: bool, hex: bool = False) -> str:  # noqa: A002
        """gdb's ``info args`` / ``info locals`` for the selected frame: its own
        function's (an inlined function is a frame of its own, as in gdb: ``up``
        reaches the function it was inlined into)."""
        from emu.kernel.scope import format_variable
        lines = [format_variable(v, hex=hex, where=self.gdb_where)
                 for v in self.variables() if v.argument == arguments]
        if not lines:
            return "No arguments." if arguments else "No locals."
        return "\n".join(lines)

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

    def print_expr(self, text: str, hex: bool = False,  # noqa: A002 - gdb's p/x
                   fmt: str | None = None) -> str:
        """gdb's ``print``: ``$N = VALUE``; an unreadable address in gdb's words.
        ``fmt``: an output format letter (gdbvalue.PRINT_FORMATS; ``hex``: ``"x"``)."""
        return self.history_line(self._printed(text), fmt=fmt or ("x" if hex else None),
                                 text=text)

    def output_expr(self, text: str, fmt: str | None = None) -> str:
        """gdb's ``output``: the value as ``print`` shows it, without ``$N = `` and
        without entering the history."""
        return self._shown(self._printed(text), fmt, text)

    def _shown(self, obj, fmt: str | None, text: str = "") -> str:  # obj: drgn.Object
        """print's text for ``obj`` (the value of ``text``) in output format ``fmt``:
        ``$eflags`` as gdb's flags type; an undefined format letter in gdb's words."""
        from emu.kernel.gdbvalue import PRINT_FORMATS, eflags_text, format_value
        if fmt is not None and fmt not in PRINT_FORMATS:
            raise SessionError(f'Undefined output format "{fmt}".')
        if not fmt and re.fullmatch(r"\s*\$eflags\s*", text):  # gdb's flags type
            return eflags_text(int(obj.value_()))
        return format_value(obj, fmt=fmt, where=self.gdb_where)

    def called_function(self, text: str) -> str | None:
        """The function's name when ``text`` is one call of a kernel function,
        ``kmalloc(64, GFP_KERNEL)`` (gdb's ``print`` then calls it), else None; gdb's
        error for a name that is no symbol at all."""
        import drgn

        m_ = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*\(.*\)\s*", text, re.S)
        if m_ is None or m_.group(1) == "sizeof":
            return None
        name = m_.group(1)
        if name in _FrameLocals(self, self.frame_level):
            return None  # a local (a function pointer): the expression's own words
        try:
            obj = self.m.program[name]
        except (KeyError, LookupError):
            if self.m.symbols is not None and name in self.m.symbols.by_name:
                return None  # an assembly symbol: the expression's own error says so
            raise SessionError(f'No symbol "{name}" in current context.') from None
        return name if obj.type_.kind == drgn.TypeKind.FUNCTION else None

    def returned(self, fn: str, value: int):  # -> drgn.Object
        """A call's result as a value of ``fn``'s C return type (gdb's value of an
        inferior call)."""
        import drgn

        prog = self.m.program
        ret = prog[fn].type_.type
        if ret.unaliased_kind() == drgn.TypeKind.VOID:
            return drgn.Object(prog, ret)
        return drgn.Object(prog, ret, value=value)  # drgn truncates to the type, as C

    def _printed(self, text: str):  # -> drgn.Object
        """``text`` evaluated for print/output: bare registers with gdb's types, an
        unreadable address in gdb's words."""
        from emu.kernel.expr import ExprError
        try:
            return _register_type(self.m.program, text, self.evaluate(text))
        except ExprError as e:
            if not _memory_error(e):
                raise
            raise ExprError(_gdb_error(e), e.column) from None

    def history_line(self, obj, hex: bool = False,  # noqa: A002 - obj: drgn.Object
                     fmt: str | None = None, text: str = "") -> str:
        """``$N = VALUE``: ``obj`` (the value of ``text``) enters the value history
        (``$N``, ``$``) and is shown as gdb's ``print`` shows it (in output format
        ``fmt``); an undefined format fails after the value entered it, as gdb's."""
        self._history.append(obj)
        head = f"${len(self._history)} = "
        try:
            return head + self._shown(obj, fmt or ("x" if hex else None), text)
        except SessionError as e:
            raise SessionError(head + str(e)) from None

    # ------------------------------------------------------------------ displays
    def display(self, expr: str, hex: bool = False,  # noqa: A002 - gdb's /x
                fmt: str | None = None) -> int:
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
        self.displays[n] = (text, fmt or ("x" if hex else None))
        return n

    def undisplay(self, numbers: list[int] | None = None) -> None:
        for n in _existing(self.displays, numbers, "display"):
            del self.displays[n]

    def display_line(self, n: int) -> str | None:
        """``1: c->freelist = (void *)0x...``; None where it cannot be evaluated (a
        local of another function), as gdb shows nothing then."""
        from emu.kernel.gdbvalue import format_value
        text, fmt = self.displays[n]
        head = f"{n}: {f'/{fmt} ' if fmt else ''}{text} = "
        try:
            obj = self.evaluate(text)
        except KmemuError as e:
            return f"{head}<error: {_gdb_error(e)}>" if _memory_error(e) else None
        return head + format_value(obj, fmt=fmt, where=self.gdb_where)

    def display_lines(self) -> list[str]:
        return [line for n in self.displays if (line := self.display_line(n)) is not None]

    def info_display(self) -> str:
        if not self.displays:
            return "There are no auto-display expressions now."
        rows = [f"{n}:   y  {f'/{fm} ' if fm else ''}{text}"
                for n, (text, fm) in self.displays.items()]
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
        if not isinstance(where, str):
            return resolve_location(self.m, where)
        text = where.strip()
        at_line = re.fullmatch(r"([\w./-]+\.[chS]):(\d+)", text)
        if at_line is not None:  # gdb's rules for a line: the next one with code
            return self._line_address(at_line.group(1), int(at_line.group(2)))
        try:
            return resolve_location(self.m, where)
        except KmemuError as e:
            msg = str(e)
            if re.fullmatch(r"[A-Za-z_]\w*", text) and msg.startswith("unknown kernel symbol"):
                hint = msg.split(";", 1)[1].strip() if ";" in msg else ""  # kmemu's, after
                raise SessionError(f'Function "{text}" not defined.'
                                   + (f" ({hint})" if hint else "")) from None
            raise

    def _line_address(self, file: str, line: int) -> int:
        """gdb's ``FILE:LINE``: where the line's code starts, or the next line's with
        code after it; gdb's messages for a file or line the kernel does not have."""
        lines = self.m.lines
        name = Path(file).name
        if not lines.lines_of(name):
            raise SessionError(f"No source file named {file}.")
        # gdb keeps a file's rows only where the line program does not go on to another
        # file at the same address (its file switch ends the first file's sequence there)
        kept = [r for r in lines.rows if r.line >= line and Path(r.file).name == name
                and (last := lines.lookup(r.address)) is not None
                and Path(last.file).name == name]
        if not kept:
            raise SessionError(f'No line {line} in file "{file}".')
        best = min(r.line for r in kept)
        return min(r.address for r in kept if r.line == best)

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
            cond_fn = self._condition_fn(cond_text)
        else:
            cond_fn = condition if callable(condition) else None
        bp = Breakpoint(self.m, where, addr, cond_fn, stop=True, temporary=temporary).install()
        p = Point(self._number(), "breakpoint", str(where), bp=bp, temporary=temporary,
                  condition=cond_text)
        self.points[p.number] = p
        return p

    def _condition_fn(self, text: str) -> Callable[[Machine], bool]:
        """A C condition checked now for syntax, evaluated in the guest at each hit;
        an error stops the call (Breakpoint records it), as gdb does."""
        from emu.kernel.expr import Evaluator, parse
        parse(text, Evaluator(self.m.program).is_type)  # syntax now, names at hits

        def cond_fn(_: Machine) -> bool:
            return self.value_of(text) != 0
        return cond_fn

    # ------------------------------------------------------------------ gdb's point commands
    def _breakpoint(self, number: int, what: str) -> Point:
        p = self.points.get(number)
        if p is None:
            raise SessionError(f"No breakpoint number {number}.")
        if p.bp is None:
            raise SessionError(f"{what}: {p.number} is a watchpoint; only breakpoints take it")
        return p

    def condition(self, number: int, text: str = "") -> str:
        """gdb's ``condition N [EXPR]``: stop at breakpoint N only when EXPR is
        non-zero; without EXPR the breakpoint stops at every hit again."""
        p = self._breakpoint(number, "condition")
        text = text.strip()
        fn = self._condition_fn(text) if text else None
        assert p.bp is not None
        p.bp.condition, p.condition = fn, text
        return "" if text else f"Breakpoint {number} now unconditional."

    def ignore(self, number: int, count: int) -> str:
        """gdb's ``ignore N COUNT``: the next COUNT hits are counted but do not stop
        (in the engine: no stop, no description, at full speed)."""
        p = self._breakpoint(number, "ignore")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise BadArgument(f"ignore: a count is an int >= 0, got {count!r}")
        assert p.bp is not None
        p.bp.ignore_count = count
        if count == 0:
            return f"Will stop next time breakpoint {number} is reached."
        if count == 1:
            return f"Will ignore next crossing of breakpoint {number}."
        return f"Will ignore next {count} crossings of breakpoint {number}."

    def enable(self, numbers: list[int] | None = None, on: bool = True,
               mode: str | None = None) -> None:
        """gdb's ``enable``/``disable [N...]`` (all points without numbers); ``mode``
        ``"once"`` (disabled by its next stop) or ``"delete"`` (deleted by it, as a
        ``tbreak``), gdb's ``enable once|delete N...``, which need numbers."""
        if mode is not None and not numbers:
            raise SessionError("Argument required (one or more breakpoint numbers).")
        for n in _existing(self.points, numbers, "breakpoint"):
            p = self.points[n]
            if mode is not None:
                p.once = mode == "once"
                p.temporary = mode == "delete"
                if p.bp is not None:
                    p.bp.temporary = p.temporary
            if p.enabled == on:
                continue
            p.enabled = on
            for hook in (p.bp, p.wp):
                if hook is not None:
                    hook.install() if on else hook.remove()

    def _landed(self, call) -> None:  # call: SuspendedCall
        """A ``stepi`` that lands on an enabled breakpoint reports it, as gdb does:
        its condition is evaluated, the hit counted (or ignored), then
        :class:`BreakpointHit` is raised where the step ended."""
        from emu.debug.stops import BreakpointHit
        rip = self.m.cpu.rip  # type: ignore[union-attr]
        for p in list(self.points.values()):
            bp = p.bp
            if bp is None or not p.enabled or bp.address != rip:
                continue
            if bp.condition is not None:
                bp.condition_error = None
                try:
                    if not bp.condition(self.m):
                        continue
                except Exception as e:  # noqa: BLE001 - gdb stops when a condition fails
                    bp.condition_error = f"{type(e).__name__}: {e}"
                    raise BreakpointHit(call, bp, self.m.symbolize(rip)) from None
            bp.hits += 1
            if bp.ignore_count > 0:
                bp.ignore_count -= 1
                continue
            if bp.temporary:
                bp.remove()
            raise BreakpointHit(call, bp, self.m.symbolize(rip))

    def _stepi_checked(self, call, n: int) -> int | None:  # call: SuspendedCall
        """``stepi n``, one instruction at a time, ending at a breakpoint it lands on."""
        for _ in range(n):
            call.stepi(1)
            if call.done:
                return call.result
            self._landed(call)
        return None

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
        if not isinstance(expr, int) and scope is not None and size is None:
            p.value_type = obj.type_
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
        shown = self.frames(level + 1)
        level = shown[level].physical.level if level < len(shown) else level
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

    def info_breakpoints(self, watchpoints_only: bool = False) -> str:
        """gdb's ``info breakpoints`` (``info watchpoints``: the watchpoints alone)."""
        if watchpoints_only and not any(p.wp is not None for p in self.points.values()):
            return "No watchpoints."
        if not self.points:
            return "No breakpoints or watchpoints."
        return "\n".join(self._breakpoint_rows(watchpoints_only))

    def _breakpoint_rows(self, watchpoints_only: bool = False) -> list[str]:
        """gdb's ``info breakpoints`` table (kmemu adds a watchpoint's range)."""
        rows = ["Num     Type           Disp Enb Address            What"]
        for p in self.points.values():
            if watchpoints_only and p.wp is None:
                continue
            disp = "del " if p.temporary else "dis " if p.once else "keep"
            enb = "y" if p.enabled else "n"
            if p.bp is not None:
                hit = self.m.symbols.lookup(p.address) if self.m.symbols is not None else None
                line = line_at(self.m, p.address)
                if line is not None:  # gdb: the function and line, no offset
                    what = (f"in {hit[0].name if hit else '??'} at "
                            f"{self.m.lines.gdb_path(line.file)}:{line.line}")
                else:
                    where = self.gdb_where(p.address)
                    what = f"<{where}>" if where else ""
                rows.append(f"{p.number:<7} {p.kind:<14} {disp} {enb}   {p.address:#018x} "
                            f"{what}")
            else:
                wp = p.wp
                assert wp is not None
                rows.append(f"{p.number:<7} {p.kind:<14} {disp} {enb}                      "
                            f"{p.what} ({wp.size} bytes at {wp.address:#x})")
            if p.condition:
                rows.append(f"\tstop only if {p.condition}")
            if p.hits:
                rows.append(f"\tbreakpoint already hit {p.hits} time{'s' if p.hits > 1 else ''}")
            if p.bp is not None and p.bp.ignore_count:
                rows.append(f"\tignore next {p.bp.ignore_count} hits")
        return rows

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
            elif (flags := gfp.parse_argument(a)) is not None:
                vals.append(flags)
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

    def trace(self, fn: str, args: list[str], **knobs: object):  # -> emu.machine.ftrace.TraceResult
        """The REPL's ``trace``: :meth:`emu.Machine.trace` with arguments read as ``call``
        reads them (a breakpoint stop inside ends the trace and leaves the call stopped)."""
        if self.call_in_progress is not None:
            raise SessionError(f"a call is stopped at {self.m.symbolize(self.m.cpu.rip)}: "  # type: ignore[union-attr]
                               "continue, finish or 'kill' it first")
        q = self.parse_call(fn, args)
        self._runs += 1
        return self.m.trace(q.fn, *q.args, **knobs)  # type: ignore[arg-type]

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
        return self._go(lambda: self._stepi_checked(call, n), "step")

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

    def advance(self, where: str) -> Stop:
        """gdb's ``advance LOCATION``: run until LOCATION is reached in any frame, or
        the current function returns."""
        from emu.debug.stepping import until
        call = self._need_stopped("advance")
        target = self.resolve(where)

        def run() -> object:
            self.m._begin_request()  # noqa: SLF001
            return until(call, target, anywhere=True)
        return self._go(run, "step")

    def finish(self) -> Stop:
        """Run until the selected frame's function returns (gdb's ``finish``): gdb's
        "Run till exit from", the caller's frame line and ``Value returned is $N =
        ...`` (the value enters the history); when that return ends the whole host
        call, kmemu's note says so after gdb's lines."""
        call = self._need_stopped("finish")
        shown = self.frames(self.frame_level + 1)
        if self.frame_level < len(shown) and shown[self.frame_level].inline:
            return self._finish_inline(call, shown[self.frame_level])
        level = shown[self.frame_level].physical.level if shown else 0
        frames = self.m.backtrace(max_frames=level + 2)
        frame = frames[level] if level < len(frames) else None
        fn = (frame.function if frame is not None else None) or self.m.symbolize(
            self.m.cpu.rip).split("+")[0]  # type: ignore[union-attr]
        head = f"Run till exit from {self._frame_head(0, shown[-1] if shown else None)}"
        caller = frames[level + 1] if level + 1 < len(frames) else None
        caller_text = self._caller_line(caller) if caller is not None else ""
        stop = self._go(lambda: call.finish(level), "finish")
        if stop.reason not in ("finish", "done"):  # a breakpoint, a watchpoint, an oops
            stop.text = f"{head}\n{stop.text}" if stop.text else head  # gdb's head first
            return stop
        lines = [head]
        if stop.reason == "finish":
            lines.append(stop.text)
        elif caller_text:
            lines.append(caller_text)
        value = self._return_value(fn, stop.value)
        if value is not None:
            lines.append(f"Value returned is {self.history_line(value)}")
        else:
            stop.value = None  # gdb prints no value for a void function
        if stop.reason == "done":
            lines.append(stop.text)  # kmemu: the host call ended too
        stop.text = "\n".join(lines)
        return stop

    def _finish_inline(self, call, frame) -> Stop:  # frame: emu.debug.frames.DisplayFrame
        """gdb's ``finish`` from an inline frame: "Run till exit from #N ...", then
        step until its inlined body is left (:func:`emu.debug.frames.leave_inline`)
        and show where, as a step does; an inlined body returns no value."""
        from emu.debug.frames import leave_inline
        head = f"Run till exit from {self._frame_head(frame.level, frame)}"
        cache = self.m._frame_chains()  # noqa: SLF001 - the frame list's chains by pc
        stop = self._go(lambda: leave_inline(call, frame, cache), "finish")
        if stop.reason == "finish":
            stop.value = None
            stop.text = f"{head}\n{self.location(args=True)}"
        else:  # the call's end, or a stop on the way: gdb's head first either way
            stop.text = f"{head}\n{stop.text}" if stop.text else head
        return stop

    def _watch_stop_text(self, hit, number: int | None) -> str:  # hit: WatchHit
        """gdb's watchpoint stop: the title, Old/New (or Value) as ``print`` shows
        the watched type, the innermost (inlined) function's frame line and source
        line; then kmemu's ``(written by ...)``."""
        wp = hit.watchpoint
        p = self.points.get(number) if number is not None else None
        title = {"write": "Hardware watchpoint", "read": "Hardware read watchpoint",
                 "access": "Hardware access (read/write) watchpoint"}[wp.access]
        label = number if number is not None else wp.label
        what = p.what if p is not None else wp.expression
        vtype = p.value_type if p is not None else None
        lines = [f"{title} {label}: {what}", ""]
        if hit.access == "read":
            lines.append(f"Value = {self._watched_value(hit.new, vtype, wp.size)}")
        else:
            lines += [f"Old value = {self._watched_value(hit.old, vtype, wp.size)}",
                      f"New value = {self._watched_value(hit.new, vtype, wp.size)}"]
        lines.append(self._innermost_location())
        verb = "read" if hit.access == "read" else "written"
        lines.append(f"({verb} by {hit.where})")
        return "\n".join(lines)

    def _watched_value(self, v: int | bytes, vtype, size: int) -> str:  # vtype: drgn.Type
        """A watched range's contents as gdb prints the watched expression's value
        (``*ADDR`` watches: an integer of the range's size)."""
        import drgn

        from emu.kernel.gdbvalue import format_value
        data = v if isinstance(v, bytes) else v.to_bytes(size, "little")
        prog = self.m.program
        try:
            if vtype is None or drgn.sizeof(vtype) != len(data):
                if len(data) > 8:
                    return data.hex(" ")
                names = {1: "char", 2: "short", 4: "int", 8: "long"}
                vtype = prog.int_type(names.get(len(data), "long"), len(data), True)
            obj = drgn.Object.from_bytes_(prog, vtype, data)
        except (TypeError, ValueError, drgn.BadDataError):
            return data.hex(" ")
        return format_value(obj, where=self.gdb_where)

    def _innermost_location(self) -> str:
        """Frame 0's line naming the innermost inlined function at the pc, as gdb
        does (an inlined body that starts exactly at the pc is not entered yet: gdb
        shows its call site); the plain frame line where nothing is inlined."""
        inline = self._inline_location()
        return inline if inline is not None else self.location(args=True)

    def _visible_inline_name(self) -> str | None:
        """The innermost inlined function frame 0 is in, after gdb's skipped inline
        frames (bodies starting at the pc, not entered yet); None in a function's
        own code.  It depends on the pc alone (frame 0's chain of inlined scopes, no
        stack memory decides it), so :meth:`Machine.inline_function` keeps it by pc
        with the frame list's chains: stepping through a loop or a second call asks
        at the same pcs again (one drgn unwind per stop was most of ``stepi``'s time
        over whole calls)."""
        return self.m.inline_function()

    def _inline_location(self, show_frame: bool = True) -> str | None:
        """gdb's stop line for frame 0 inside an inlined function, or None."""
        name = self._visible_inline_name()
        if name is None:
            return None
        m = self.m
        rip = m.cpu.rip  # type: ignore[union-attr]
        # gdb's sal: the call site of the bodies skipped at the pc, else the line
        # table's row at the pc
        site = m.lines.call_sites.get(rip) if m.inline_skipped() else None
        row = m.lines.lookup(rip)
        if site is None and row is None:
            return None
        file, line = site if site is not None else (row.file, row.line)  # type: ignore[union-attr]
        base = file.rsplit("/", 1)[-1]
        src = source_line(base, line)
        # gdb shows no address where it stopped short of entering an inlined body
        shown = m.inline_skipped() or m.lines.row_at(rip) is not None
        text = f"{line}\t{src}" if src is not None else f"{line}\tin {base}"
        if not show_frame and shown:
            return text
        try:
            own = [v for v in m.frame_variables(0) if v.argument and v.function == name]
        except KmemuError:
            own = []
        from emu.kernel.gdbvalue import frame_arg
        args = ", ".join(f"{v.name}={frame_arg(v.value, self.gdb_where)}" for v in own)
        prefix = "" if shown else f"{rip:#018x} in "
        head = f"{prefix}{name} ({args}) at {m.lines.gdb_path(base)}:{line}"
        return head if src is None else f"{head}\n{text}"

    def _frame_key(self, rip: int) -> tuple[int | None, str | None]:
        """What gdb compares to decide whether a step stayed in the same function:
        the function and the inlined function frame 0 is in (if any)."""
        inline = self._visible_inline_name() if rip == self.m.cpu.rip else None  # type: ignore[union-attr]
        return self._function_at(rip), inline

    def _frame_line(self, frame) -> str:  # frame: emu.debug.frames.DisplayFrame
        """gdb's line for a frame of the backtrace: frame 0 as a stop shows it, a
        caller with its return address, its own arguments and ``at FILE:LINE``; no
        address for a frame whose inlined callee runs at the same pc (gdb's)."""
        from emu.kernel.scope import frame_arg_text
        if frame.level == 0:
            inline = self._inline_location() if frame.inline else None
            head = inline.split("\n", 1)[0] if inline is not None else \
                self.location(args=True, brief=True)
            return f"#0  {head}"
        phys = frame.physical
        if phys.level == 0 and not frame.inline:  # gdb's frame 0 argument list
            args = self._arglist(frame.function or "")
        else:
            try:
                own = [v for v in self.m.frame_variables(phys.level) if v.argument and
                       v.inlined == frame.inline and
                       (not frame.inline or v.function == frame.function)]
            except KmemuError:
                own = []
            args = ", ".join(frame_arg_text(v, self.gdb_where) for v in own)
        prefix = f"{frame.pc:#018x} in " if frame.innermost else ""
        head = f"#{frame.level:<2} {prefix}{frame.function or '??'} ({args})"
        if frame.file is not None:
            head += f" at {self.m.lines.gdb_path(frame.file)}:{frame.line}"
        if phys.vector is not None and frame.innermost:
            head += f" [interrupted by vector {phys.vector:#x}]"
        return head

    def _frame_head(self, level: int, frame) -> str:  # frame: DisplayFrame | None
        """``#0  kmalloc (size=64, gfp=3264) at /path/kmalloc.c:100`` (gdb's frame
        line without the source line)."""
        if frame is None:
            return f"#0  {self.location(args=True, brief=True)}"
        return self._frame_line(frame)

    def _caller_line(self, frame, brief: bool = False) -> str:  # frame: unwind.Frame
        """A caller's frame line as gdb prints it where ``finish`` returns to it:
        ``0x... in fn () at /path/file.c:LINE`` (no ``0x... in`` at the start of a
        line) and the source line."""
        m = self.m
        prefix = "" if m.lines.row_at(frame.pc) is not None else f"{frame.pc:#018x} in "
        head = f"{prefix}{frame.function or '??'} ()"
        row = m.lines.lookup(frame.pc)
        if row is None:
            return head
        head += f" at {m.lines.gdb_path(row.file)}:{row.line}"
        src = source_line(row.file, row.line)
        return head if brief or src is None else f"{head}\n{row.line}\t{src}"

    def _return_value(self, fn: str, value: int | None):  # -> drgn.Object | None
        """``fn``'s return value typed by its C return type (None: void, unknown)."""
        if value is None:
            return None
        import drgn
        prog = self.m.program
        try:
            rtype = prog.function(fn).type_.type
        except (LookupError, ValueError, drgn.BadDataError):
            return drgn.Object(prog, prog.int_type("unsigned long", 8, False),
                               value=value & ((1 << 64) - 1))
        if rtype.unaliased_kind() == drgn.TypeKind.VOID:
            return None
        size = drgn.sizeof(rtype)
        raw = value & ((1 << (8 * size)) - 1)
        if rtype.unaliased_kind() in (drgn.TypeKind.INT, drgn.TypeKind.ENUM) and \
                getattr(rtype.unaliased(), "is_signed", False) and raw >> (8 * size - 1):
            raw -= 1 << (8 * size)
        return drgn.Object(prog, rtype, value=raw)

    # ------------------------------------------------------------------ gdb's info commands
    def info_frame(self) -> str:
        """gdb's ``info frame`` for the selected frame: its CFA, pc and saved pc,
        the frames it was called by and is the caller of, its arguments and where
        the CFI says its caller's registers are saved.  An outermost frame (its CFI
        leaves the return address undefined) has no frame address nor saved pc."""
        level = self.frame_level
        shown = self.frames(level + 2)
        d = shown[level]
        inner = shown[level - 1] if level > 0 else None
        frames = self.m.backtrace(max_frames=d.physical.level + 2)
        f = frames[d.physical.level]
        caller = frames[f.level + 1] if f.level + 1 < len(frames) else None
        cfa = f.cfa or 0
        exact = f.level == 0 or f.found_by == "trap frame"  # else pc is a return address
        row = self.m.lines.lookup(f.pc if exact else f.pc - 1)
        site = self.m.lines.call_sites.get(f.pc) if level == 0 and self.m.inline_skipped() \
            else None
        if site is not None:  # gdb: frame 0 at the call site of bodies not entered yet
            where = f" ({self.m.lines.gdb_path(site[0].rsplit('/', 1)[-1])}:{site[1]})"
        elif d.file is not None and d.line is not None and (d.index or d.inline):
            where = f" ({self.m.lines.gdb_path(d.file)}:{d.line})"
        else:
            where = f" ({self.m.lines.gdb_path(row.file)}:{row.line})" if row is not None else ""
        saved = self._saved_registers(f, cfa, exact)
        outermost = caller is None and saved is None and not d.inline
        ret = "<not saved>" if outermost else f"{caller.pc:#x}" if caller is not None else ""
        out = [f"Stack level {level}, frame at {0 if outermost else cfa:#x}:",
               f" rip = {f.pc:#x} in {d.function or '??'}{where}"
               + (f"; saved rip = {ret}" if ret else "")]
        caller_of = f"caller of frame at {inner.cfa or 0:#x}" if inner is not None else ""
        lang = "asm" if row is not None and row.file.endswith((".S", ".s")) else "c"
        if d.inline:  # gdb: an inlined body has no frame of its own
            out.append(f" inlined into frame {level + 1}" +
                       (f", {caller_of}" if caller_of else ""))
            out += [f" source language {lang}.", " Arglist at unknown address."]
            if f.level == 0:  # its registers are the CPU's
                out.append(" Locals at unknown address, Previous frame's sp in rsp")
                return "\n".join(out)
            # above a real frame: that frame's saved registers are this one's
            out.append(f" Locals at unknown address, Previous frame's sp is {f.sp:#x}")
            below = frames[f.level - 1]
            out += _saved_lines(self._saved_registers(
                below, below.cfa or 0, below.level == 0 or below.found_by == "trap frame"))
            return "\n".join(out)
        if outermost:
            out.append(" Outermost frame: outermost")
        elif caller is not None:
            out.append(f" called by frame at {caller.cfa or 0:#x}" +
                       (f", {caller_of}" if caller_of else ""))
        elif caller_of:
            out.append(f" {caller_of}")
        base = f.sp - 8 if outermost else cfa - 16
        out += [f" source language {lang}.",
                f" Arglist at {base:#x}, args: {self._info_frame_args(f.level, f)}",
                f" Locals at {base:#x}, Previous frame's sp is {cfa:#x}"]
        out += _saved_lines(saved)
        return "\n".join(out)

    def _info_frame_args(self, level: int, f) -> str:  # f: emu.kernel.unwind.Frame
        """The selected frame's arguments as its frame line shows them."""
        from emu.kernel.scope import frame_arg_text
        if not f.function:
            return ""
        if level == 0:
            hit = self.m.symbols.lookup(f.pc) if self.m.symbols is not None else None
            return self._frame_args(f.function, hit is not None and hit[1] == 0)
        try:
            own = [v for v in self.m.frame_variables(level) if v.argument and not v.inlined]
        except KmemuError:
            return ""
        return ", ".join(frame_arg_text(v, self.gdb_where) for v in own)

    def _saved_registers(self, f, cfa: int, exact: bool) -> list[tuple[str, int]] | None:
        """``[(register, address)]`` where the frame's CFI row saves its caller's
        registers, in gdb's register order, ``rip`` last; None where the row leaves
        the return address undefined (an outermost frame) or there is no row."""
        from emu.kernel.unwind import DWARF_REGS, RA_REG
        row = self.m._cfi().row(f.pc if exact else f.pc - 1)
        if row is None:
            return None
        ra = row.rule(RA_REG) or ("offset", -8)
        if ra[0] != "offset":
            return None
        order = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                 *(f"r{n}" for n in range(8, 16)))
        saved = {DWARF_REGS[r]: cfa + off for r, (kind, off) in row.rules
                 if kind == "offset" and r in DWARF_REGS}
        return [(r, saved[r]) for r in order if r in saved] + [("rip", cfa + ra[1])]

    def info_symbol(self, addr: int, text: str | None = None) -> str:
        """gdb's ``info symbol ADDR``: ``kmalloc + 21 in section .text``; where no
        symbol holds it, gdb's "No symbol matches ADDR." naming ADDR as typed."""
        hit = self.m.symbols.lookup(addr) if self.m.symbols is not None else None
        if hit is None:
            return f"No symbol matches {text or f'{addr:#x}'}."
        sym, off = hit
        section = self._section_of(sym.address)
        name = sym.name if off == 0 else f"{sym.name} + {off}"
        return f"{name} in section {section}"

    def _section_of(self, addr: int) -> str:
        """The kernel ELF section holding ``addr`` (read once per session)."""
        if not hasattr(self, "_sections"):
            from elftools.elf.elffile import ELFFile
            spans: list[tuple[int, int, str]] = []
            elf_path = getattr(getattr(self.m, "artifacts", None), "elf", None)
            if elf_path is not None:
                with open(elf_path, "rb") as fh:
                    for sec in ELFFile(fh).iter_sections():
                        if sec["sh_addr"] and sec["sh_flags"] & 2:  # SHF_ALLOC
                            spans.append((sec["sh_addr"], sec["sh_size"], sec.name))
            self._sections = spans
        for start, size, name in self._sections:
            if start <= addr < start + max(size, 1):
                return name
        return ".text"

    def info_line(self, spec: str | None = None) -> str:
        """gdb's ``info line [LOCATION]``: where the line's code starts and ends."""
        m = self.m
        empty = self._line_without_code(spec) if spec else None
        if empty is not None:
            return empty
        pc = self.resolve(spec) if spec else self.frame_pc()
        row = m.lines.lookup(pc)
        if row is None:
            return f"No line number information available for address {pc:#x}"
        start = m.lines.address(row.file, row.line) if spec else row.address
        end_at = m.lines.next_row_address(start)
        path = m.lines.gdb_path(row.file)

        def sym(a: int) -> str:
            w = self.gdb_where(a)
            return f"{a:#x} <{w}>" if w else f"{a:#x}"
        end = f" and ends at {sym(end_at)}" if end_at is not None else ""
        return f'Line {row.line} of "{path}" starts at address {sym(start)}{end}.'

    def _line_without_code(self, spec: str) -> str | None:
        """gdb's ``info line FILE:LINE`` for a line the compiler made no code for:
        where the next line with code starts, or that the file has no such line."""
        found = re.fullmatch(r"\s*(\S+):(\d+)\s*", spec)
        if found is None:
            return None
        lines = self.m.lines
        name, line = Path(found.group(1)).name, int(found.group(2))
        files = [r.file for r in lines.rows if Path(r.file).name == name]
        have = lines.lines_of(name)
        if not files or line in have:
            return None  # resolve() says what is wrong, or info_line's usual answer
        path = f'"{lines.gdb_path(files[0])}"'
        after = [ln for ln in have if ln > line]
        if not after:
            return f"Line number {line} is out of range for {path}."
        at = lines.address(name, after[0])
        where = self.gdb_where(at)
        return (f"Line {line} of {path} is at address {at:#x}"
                f"{f' <{where}>' if where else ''} but contains no code.")

    def whatis(self, text: str) -> str:
        """gdb's ``whatis EXPR|TYPE``: ``type = struct kmem_cache *`` (one level of
        typedef unrolled for a type name, as gdb does)."""
        from emu.kernel.gdbvalue import type_name
        text = text.strip()
        try:
            t = self.m.program.type(text)
        except (LookupError, ValueError, SyntaxError):
            t = _register_type(self.m.program, text, self.evaluate(text)).type_
        else:
            import drgn
            if t.kind == drgn.TypeKind.TYPEDEF:
                t = t.type
        return f"type = {type_name(t)}"

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
        self._step_from = self._frame_key(m.cpu.rip)  # type: ignore[union-attr]
        try:
            value = run()
        except WatchpointHit as e:
            hit = e.hit
            num = self._number_of(e.breakpoint)
            return Stop("watchpoint", self._lazy(lambda: self._watch_stop_text(hit, num)),
                        m.cpu.rip, num, hit)  # type: ignore[arg-type,union-attr]
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
                if self.points[num].once:  # gdb's "enable once": this stop disables it
                    self.points[num].once = False
                    self.enable([num], False)
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
        same = self._frame_key(self.m.cpu.rip) == self._step_from  # type: ignore[union-attr]
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
        if args and not brief:
            inline = self._inline_location(show_frame)
            if inline is not None:
                return inline
        hit = m.symbols.lookup(rip)
        fn = hit[0].name if hit else f"{rip:#x}"
        # gdb: inlined bodies starting here and not entered are shown at their call site
        site = m.lines.call_site(rip) if m.inline_skipped() else None
        row = site if site is not None else line_at(m, rip)
        prefix = "" if (row is not None and (site is not None or m.lines.row_at(rip) is not None)
                        ) else f"{rip:#018x} in "
        text = ""
        if row is not None and not brief:
            src = source_line(row.file, row.line)
            text = f"{row.line}\t{src}" if src is not None else f"{row.line}\tin {row.file}"
            if not show_frame and prefix == "":
                return text
        arglist = self._frame_args(fn, hit[1] == 0) if args and hit is not None else ""
        head = f"{prefix}{fn} ({arglist})"
        if row is None:
            return head
        head += f" at {m.lines.gdb_path(row.file)}:{row.line}"
        return head if brief else f"{head}\n{text}"

    def _frame_args(self, fn: str, at_entry: bool) -> str:
        """The argument list of frame 0's line, as gdb prints it: at the function's
        first instruction from the argument registers and the C types, elsewhere
        from the DWARF locations (:meth:`_arglist`)."""
        if not at_entry:
            return self._arglist(fn)
        import drgn

        from emu.kernel.scope import Variable, frame_arg_text
        m = self.m
        try:
            ftype = m.program.function(fn).type_
        except (LookupError, ValueError, drgn.BadDataError):
            ftype = None
        regs = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")
        if ftype is None:  # an alias (alloc_pages for __alloc_pages): DWARF's locations
            return self._arglist(fn)
        try:  # what the caller's call site says each was (gdb's s=s@entry=...)
            passed = {v.name: v.at_entry for v in m.frame_variables(0)
                      if v.argument and not v.inlined}
        except KmemuError:
            passed = {}
        out = []
        for param, r in zip(ftype.parameters, regs, strict=False):
            obj = drgn.Object(m.program, param.type, value=m.cpu.reg(r) & ((1 << 64) - 1))  # type: ignore[union-attr]
            out.append(frame_arg_text(Variable(param.name or "", obj, True, fn, False,
                                               at_entry=passed.get(param.name or "")),
                                      self.gdb_where))
        return ", ".join(out)

    def gdb_where(self, addr: int) -> str | None:
        """``kmalloc+21``: a kernel symbol and decimal offset as gdb shows ``<...>``."""
        hit = self.m.symbols.lookup(addr) if self.m.symbols is not None else None
        if hit is None:
            return None
        return hit[0].name if hit[1] == 0 else f"{hit[0].name}+{hit[1]}"

    def _arglist(self, fn: str) -> str:
        """``s=0xffff888..., size=<optimized out>``: frame 0's own parameters where
        the DWARF location lists say they are."""
        from emu.kernel.scope import frame_arg_text
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
            return f"{n}=<optimized out>" if v is None else frame_arg_text(v, self.gdb_where)

        return ", ".join(arg(n) for n in names)

    def backtrace(self, limit: int = 64) -> str:
        """gdb's ``bt``: one frame line a frame, inlined functions included (see
        :meth:`_frame_line`)."""
        frames = self.frames(limit + 1)
        more = "(More stack frames follow...)\n" if len(frames) > limit else ""
        return "".join(self._frame_line(f) + "\n" for f in frames[:limit]) + more

    def frame_pc(self) -> int:
        """The selected frame's pc (a return address above frame 0's real frame)."""
        frame = self.selected_frame()
        return self.m.cpu.rip if frame is None else frame.pc  # type: ignore[union-attr]

    def source_position(self, spec: str | None = None) -> tuple[str, int]:
        """(file, line) of a location, or of the selected frame (its call's line above
        frame 0, as gdb lists it)."""
        m = self.m
        if spec:
            row = m.lines.lookup(self.resolve(spec))
        elif (f := self.selected_display_frame()) is not None:
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
        if cmd in ("pt", "identify"):
            if len(rest) != 1:
                raise BadArgument(f"usage: {cmd} ADDR")
            addr = self.value_of(rest[0])
            return (m.pt(addr) if cmd == "pt" else m.identify(addr)).rstrip("\n")
        if cmd == "call":
            if not rest:
                raise BadArgument("usage: call FUNC [ARGS...]")
            return self.queue_call(rest[0], rest[1:])
        raise BadArgument(f"unknown monitor command {cmd!r}; known: buddyinfo, slabinfo, "
                          "slabtop, vmallocinfo, zoneinfo, pagetypeinfo, modules, pt ADDR, "
                          "identify ADDR, call FUNC ARGS...")

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


#: gdb's types for registers printed bare: ``p $rip`` is a code pointer, ``p $rsp`` a
#: data pointer, the other general registers ``long``.
_CODE_REGS, _DATA_REGS = ("rip", "pc"), ("rsp", "sp", "rbp", "fp")


def _register_type(prog, text: str, obj):  # prog: drgn.Program, obj: drgn.Object
    """``obj`` with gdb's type when ``text`` is a bare register (``$rip``, ``$rsp``,
    ``$rax``), else ``obj`` itself."""
    import drgn
    m_ = re.fullmatch(r"\s*\$([a-z][a-z0-9]*)\s*", text)
    if m_ is None:
        return obj
    name = m_.group(1)
    from emu.kernel.expr import ALL_REGISTERS, REGISTER_ALIASES
    if REGISTER_ALIASES.get(name, name) not in ALL_REGISTERS:
        return obj  # a convenience variable keeps its own type
    value = int(obj.value_()) & ((1 << 64) - 1)
    if name in _CODE_REGS:
        code = prog.function_type(prog.void_type(), (), True)
        return drgn.Object(prog, prog.pointer_type(code), value=value)
    if name in _DATA_REGS:
        return drgn.Object(prog, prog.pointer_type(prog.void_type()), value=value)
    if re.fullmatch(r"r(?:[a-d]x|[sd]i|\d+)", name):
        signed = value - ((value >> 63) << 64)
        return drgn.Object(prog, prog.int_type("long", 8, True), value=signed)
    return obj


def _existing(table: dict, numbers: list[int] | None, what: str) -> list[int]:
    """``numbers`` (all of ``table`` for None), after checking each is there: a bad
    one changes nothing."""
    nums = list(table) if numbers is None else numbers
    missing = next((n for n in nums if n not in table), None)
    if missing is not None:
        raise SessionError(f"No {what} number {missing}.")  # gdb's words
    return nums


def _gdb_error(e: Exception) -> str:
    """An evaluation error in gdb's words where gdb has them."""
    text = first_line_of(e)
    return re.sub(r"^cannot access memory at (0x[0-9a-f]+).*",
                  r"Cannot access memory at address \1", text)


def first_line_of(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


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

    def _every_scope(self) -> list:
        return self.session.variables(self.level, all_scopes=True)

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
        for v in self._every_scope():
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


def _saved_lines(saved: list[tuple[str, int]] | None) -> list[str]:
    """gdb's ``Saved registers:`` lines of ``info frame`` (none where nothing is saved)."""
    if not saved:
        return []
    return [" Saved registers:", "  " + ", ".join(f"{r} at {a:#x}" for r, a in saved)]
