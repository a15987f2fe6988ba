"""The debugger's command loop: one parsed command at a time against a DebugSession.

Layer 6 (``emu.frontend.debugger``).  :class:`Repl` executes lines and prints what
gdb would; every error (a bad command, a bad address or expression, a
request the session cannot do now) prints one ``error: ...`` line and the
session goes on.  An exception that is not a :class:`emu.core.errors.KmemuError`
is a bug in kmemu: it prints one ``internal error: ...`` line and the
session still goes on.  :func:`run_debugger` picks the mode (terminal,
``--script FILE`` or standard input) for ``kmemu debug``.

>>> r = Repl(DebugSession(m), sys.stdout)          # doctest: +SKIP
>>> r.execute("call kmalloc 64 GFP_KERNEL")         # doctest: +SKIP
kmalloc() returned 0xffff88800ff0d000 (18446612682337472512); the kernel is idle
>>> r.execute("identify $")                         # doctest: +SKIP
0xffff88800ff0d000: direct map, pfn 0xff0d in zone DMA32
slab object: kmalloc-64 object 0 of 64 at 0xffff88800ff0d000, +0x0 of 64 bytes, allocated
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from emu.core.errors import BadArgument, KmemuError
from emu.debug.breakpoints import resolve_location
from emu.debug.session import DebugSession, Stop
from emu.frontend.debugger import commands as c
from emu.frontend.debugger.examine import examine, format_registers, read_code, unit_size
from emu.frontend.events import events_command
from emu.kernel.source import source_line
from emu.machine.kmemleak import KmemleakReport

PROMPT = "(kmemu) "
LIST_LINES = 10
MAX_DISAS_BYTES = 1 << 16
_WATCH_TITLE = {"write": "Hardware watchpoint", "read": "Hardware read watchpoint",
                "access": "Hardware access (read/write) watchpoint"}
_BARE_DOLLAR = re.compile(r"(?<![$\w])\$(?![\w$])")
_DOLLARS = re.compile(r"(?<![$\w])\$\$(\d*)(?![\w$])")  # gdb's $$ and $$N
_QUOTED = re.compile(r"""('(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")""")


class ReplError(KmemuError):
    """A command that cannot be done as given (the message says why)."""


def first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


class Repl:
    """Executes debugger commands against ``session`` and prints to ``out``.

    ``interactive``: an empty line repeats the last step/next/stepi/continue/
    until (and goes on with ``x`` and ``list``), as gdb does.  ``failures``
    counts the commands that printed an error.  ``guest_running`` is true
    while a command runs guest code (the Ctrl-C handler reads it).
    """

    def __init__(self, session: DebugSession, out: TextIO | None = None, *,
                 interactive: bool = False) -> None:
        self.s = session
        self.m = session.m
        self.out = out if out is not None else sys.stdout
        self.interactive = interactive
        self.failures = 0
        self.done = False  # quit was given
        self.guest_running = False
        self.value: int | None = None  # `$`: what the last call or finish returned
        self._value_mark = 0  # the history's length when `value` was set
        self._last: c.Command | None = None  # what an empty line repeats
        self._x_fmt, self._x_size = "x", "w"  # x's last format and unit size (gdb keeps them)
        self._x_next: int | None = None  # where a bare x goes on
        self._list_next: tuple[str, int] | None = None
        self._console_mark = len(self.m.console)
        self.flavor = "att"  # gdb's disassembly-flavor
        self._kmemleak_last: KmemleakReport | None = None  # `kmemleak show` lists it

    # ------------------------------------------------------------------ output
    def emit(self, text: str) -> None:
        """Print ``text`` (a newline added if missing; nothing for "")."""
        if text:
            self.out.write(text if text.endswith("\n") else text + "\n")
            self.out.flush()

    def _fail(self, message: str) -> None:
        self.failures += 1
        self.emit(message)

    def _flush_console(self, show: bool = True) -> None:
        """Print what the kernel printed since the last command."""
        text = self.m.console
        if len(text) < self._console_mark:  # a restore went back
            self._console_mark = 0
        if show:
            self.emit(text[self._console_mark:])
        self._console_mark = len(text)

    # ------------------------------------------------------------------ entry points
    def execute(self, line: str) -> None:
        """Run one command line; never raises (except KeyboardInterrupt)."""
        try:
            cmd = c.parse(line)
        except c.CommandError as e:
            self._fail(f"error: {e}")
            return
        if cmd is None:
            if not (self.interactive and not line.strip() and self._last is not None):
                return
            cmd = self._last
        else:
            self._last = _repeat_form(cmd)
        try:
            self._dispatch(cmd)
        except KmemuError as e:
            self._flush_console()
            self._fail(f"error: {first_line(e)}")
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # a bug in kmemu: say so in one line and keep going
            self._fail(f"internal error: {type(e).__name__}: {first_line(e)}")
        finally:
            self.guest_running = False

    def run_lines(self, lines: Iterable[str]) -> int:
        """Non-interactive: echo each command after the prompt, run it; ``#`` lines and
        blank lines are skipped.  0 if every command succeeded, else 1."""
        for raw in lines:
            line = raw.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            self.emit(PROMPT + line)
            self.execute(line)
            if self.done:
                break
        return 1 if self.failures else 0

    # ------------------------------------------------------------------ helpers
    def _where(self, addr: int) -> str | None:
        """``kmalloc+25`` (gdb's decimal offset; the bare name at offset 0) or None."""
        hit = self.m.symbols.lookup(addr) if self.m.symbols is not None else None
        if hit is None:
            return None
        return hit[0].name if hit[1] == 0 else f"{hit[0].name}+{hit[1]}"

    def _expr(self, text: str) -> str:
        """``$`` (alone, outside quotes) is gdb's last value: the last value printed
        (``$N``), or what the last call returned when that came later; ``$$`` and
        ``$$N`` count back in the value history, as in gdb."""
        parts = _QUOTED.split(text)  # odd parts are '...' and "..." literals
        n = len(self.s._history)

        def back(m: re.Match) -> str:
            count = int(m.group(1)) if m.group(1) else 1
            if not 1 <= n - count <= n:
                raise ReplError(f"History does not go back to $${count}.")  # gdb's words
            return f"${n - count}"

        parts = [p if i % 2 else _DOLLARS.sub(back, p) for i, p in enumerate(parts)]
        if not any(_BARE_DOLLAR.search(p) for p in parts[::2]):
            return "".join(parts)
        if self.value is not None and self._value_mark >= n:
            last = f"{self.value:#x}"
        elif n:
            last = f"${n}"
        else:
            raise ReplError("'$' is the last value printed or returned by a call; there is "
                            "none yet")
        return "".join(p if i % 2 else _BARE_DOLLAR.sub(last, p) for i, p in enumerate(parts))

    def _rip(self) -> int:
        return self.m.cpu.rip  # type: ignore[union-attr]

    def _run(self, fn: Callable[..., Stop], *args: object) -> Stop:
        self.guest_running = True
        try:
            return fn(*args)
        finally:
            self.guest_running = False

    def _trace(self, cmd: c.Trace) -> None:
        """One call's function_graph (or folded stacks); an oops prints after the tree."""
        self.guest_running = True
        try:
            r = self.s.trace(cmd.function, list(cmd.args), depth=cmd.depth,
                             filter=list(cmd.filter) or None, notrace=list(cmd.notrace) or None,
                             graph=list(cmd.graph) or None, clock="wall" if cmd.wall else "insns",
                             irqs=cmd.irqs, tail=cmd.tail)
        finally:
            self.guest_running = False
        self._flush_console(show=r.oops is None)
        self.emit((r.folded if cmd.folded else r.text).rstrip("\n"))
        if r.oops is not None:
            raise ReplError(f"{r.function} oopsed: {str(r.oops).splitlines()[0]}")
        self.emit(f"{r.function} returned {r.retval:#x}: {r.root.total_insns} guest instructions")

    def _function(self) -> str | None:
        hit = self.m.symbols.lookup(self._rip()) if self.m.symbols is not None else None
        return hit[0].name if hit is not None else None

    def _step(self, run: Callable[..., Stop], *args: object) -> None:
        """A step-like run; gdb names the frame when the step ended in another function."""
        before = self._function()
        stop = self._run(run, *args)
        if (stop.reason == "step" and self._function() != before
                and re.match(r"\d+\t", stop.text)):
            stop.text = f"{self.s.location(args=True, brief=True)}\n{stop.text}"
        self._stop(stop)

    def _stop(self, stop: Stop) -> None:
        """Print how a run ended (the kernel's output first)."""
        self._list_next = None
        self._flush_console(show=stop.reason != "oops")  # an oops' text holds its output
        if stop.reason in ("error", "idle"):
            raise ReplError(stop.text.replace("\n", " "))
        if stop.value is not None:
            self.value = stop.value
            self._value_mark = len(self.s._history)
        self.emit(stop.text)
        if stop.reason not in ("oops", "exited"):
            for line in self.s.display_lines():
                self.emit(line)

    # ------------------------------------------------------------------ commands
    def _dispatch(self, cmd: c.Command) -> None:  # noqa: C901 - one case per command
        s = self.s
        match cmd:
            case c.Break():
                self._break(cmd)
            case c.Watch(expr, access):
                p = s.watch(self._expr(expr), access=access)
                self.emit(f"{_WATCH_TITLE[access]} {p.number}: {p.what}")
            case c.Delete(numbers):
                s.delete(list(numbers) if numbers is not None else None)
            case c.InfoBreakpoints(watchpoints_only):
                self.emit(s.info_breakpoints(watchpoints_only))
            case c.InfoRegisters(names):
                self.emit(format_registers(s.registers(), names, self._where))
            case c.Step(kind, count):
                if kind == "nexti":
                    self._nexti(count)
                else:
                    self._step({"step": s.step, "next": s.next, "stepi": s.stepi}[kind], count)
            case c.Continue():
                self._stop(self._run(s.cont))
            case c.Finish():
                self._stop(self._run(s.finish))
            case c.Until(loc):
                self._step(s.until, loc)
            case c.Kill():
                self.emit(s.kill())
            case c.Call(fn, args):
                self._stop(self._run(s.call, fn, [self._expr(a) for a in args]))
            case c.Trace():
                self._trace(cmd)
            case c.Irq(vector):
                self._irq(vector)
            case c.Backtrace(limit):
                self.emit(s.backtrace(limit or 64))
            case c.SelectFrame(level, delta):
                self._list_next = None
                if delta:
                    self.emit(s.move_frame(delta))
                else:  # 'frame', 'frame N', 'up 0'
                    self.emit(s.select_frame(s.frame_level if level is None else level))
            case c.InfoVariables(arguments):
                self.emit(s.info_variables(arguments))
            case c.Examine():
                self._examine(cmd)
            case c.Disassemble():
                self._disassemble(cmd)
            case c.List(loc):
                self._list(loc)
            case c.Print(expr, fmt, output):
                if output:
                    self.emit(s.output_expr(self._expr(expr), fmt))
                else:
                    self._print_expr(expr, fmt)
            case c.Display(expr, fmt):
                if expr is not None:
                    n = s.display(self._expr(expr), fmt=fmt)
                    line = s.display_line(n)
                    if line is not None:
                        self.emit(line)
                else:
                    for line in s.display_lines():
                        self.emit(line)
            case c.Undisplay(numbers):
                s.undisplay(list(numbers) if numbers is not None else None)
            case c.InfoDisplay():
                self.emit(s.info_display())
            case c.Ptype(expr):
                self._ptype(expr)
            case c.Whatis(expr):
                self.emit(s.whatis(self._expr(expr)))
            case c.Condition(number, expr):
                self.emit(s.condition(number, self._expr(expr) if expr else ""))
            case c.Ignore(number, count):
                self.emit(s.ignore(number, count))
            case c.Enable(numbers, on, mode):
                s.enable(list(numbers) if numbers is not None else None, on, mode)
            case c.Advance(loc):
                self._step(s.advance, self._expr(loc))
            case c.InfoFrame():
                self.emit(s.info_frame())
            case c.InfoSymbol(expr):
                text = self._expr(expr)
                self.emit(s.info_symbol(s.value_of(text), text.strip()))
            case c.InfoLine(loc):
                self.emit(s.info_line(self._expr(loc) if loc else None))
            case c.SetFlavor(flavor):
                self.flavor = flavor
            case c.SetVar(name, expr):
                s.set_convenience(name, self._expr(expr))
            case c.View(name):
                self.emit(s.monitor(name))
            case c.Map(path, cell_pages):
                self._map(path, cell_pages)
            case c.Events(rest):
                self.emit(events_command(self.m, rest))
            case c.Kmemleak(action):
                self._kmemleak(action)
            case c.AddressView(name, expr):
                addr = s.value_of(self._expr(expr))
                self.emit(s.monitor(f"{name} {addr:#x}"))
            case c.Snapshot(name):
                self.emit(s.snapshot(name))
            case c.Restore(name):
                self.emit(s.restore(name))
                self._flush_console(show=False)
                self._list_next = None
            case c.Help(topic):
                self.emit(help_text(topic))
            case c.Quit():
                self.done = True
            case _:  # pragma: no cover - every parsed command has a case
                raise ReplError(f"no handler for {cmd!r}")

    def _map(self, path: str | None, cell_pages: int | None) -> None:
        """The census drawn in the terminal (colour when interactive) or to a picture;
        its disagreements with the kernel's counters follow (a stopped call may be
        half-way through changing them)."""
        census = self.m.memory_map()
        if path is None:
            from emu.frontend.pictures.terminal import render_terminal
            self.emit(render_terminal(census, cell_pages, colour=self.interactive))
        else:
            if path.lower().endswith(".svg"):
                from emu.frontend.pictures.svg import write_svg as write
            else:
                from emu.frontend.pictures.png import write_png as write
            grid = write(census, path, cell_pages)
            self.emit(f"{path}: {grid.header()}")
        for p in self.m.validate_memory_map(census):
            self.emit(f"census: {p}")
    def _kmemleak(self, action: str) -> None:
        """kmemleak scan | show | clear (emu.machine.kmemleak)."""
        if action == "clear":
            self.m.kmemleak_clear()
            self._kmemleak_last = None
            return
        if action == "show":
            if self._kmemleak_last is None:
                self._kmemleak_check()
                self.emit("kmemleak: no scan yet (kmemleak scan)")
            else:
                self.emit(str(self._kmemleak_last).rstrip("\n"))
            return
        report = self.m.kmemleak_scan()
        self._flush_console()  # the new objects, as Linux prints them, and the count
        self._kmemleak_last = report
        self.emit(f"kmemleak: {len(report)} unreferenced objects, {len(report.new)} new "
                  "(kmemleak show lists them)")

    def _kmemleak_check(self) -> None:
        self.m._kmemleak_check("kmemleak show")  # noqa: SLF001 - the REPL is the machine's UI

    def _break(self, cmd: c.Break) -> None:
        loc = cmd.location
        if loc is None:  # gdb: at the selected frame's pc
            loc = f"*{self.s.frame_pc():#x}"
        p = self.s.break_(self._expr(loc), cmd.temporary, cmd.condition or None)
        others = [q for q in self.s.points.values()
                  if q.bp is not None and q.address == p.address and q.number != p.number]
        if others:  # gdb's note
            names = [f"{q.number}{'' if q.enabled else ' (disabled)'}" for q in others]
            listed = names[0] if len(names) == 1 else \
                f"{', '.join(names[:-1])} and {names[-1]}"
            self.emit(f"Note: breakpoint{'s' if len(names) > 1 else ''} {listed} also set at "
                      f"pc {p.address:#x}.")
        row = self.m.lines.lookup(p.address)
        where = (f": file {self.m.lines.gdb_path(row.file)}, line {row.line}."
                 if row is not None else "")
        kind = "Temporary breakpoint" if cmd.temporary else "Breakpoint"
        self.emit(f"{kind} {p.number} at {p.address:#x}{where}")

    def _nexti(self, count: int) -> None:
        """``nexti``: ``stepi``, but a ``call`` runs to the instruction after it."""
        from emu.kernel.disasm import disassemble

        if self.s.call_in_progress is None:
            self.s.stepi()  # raises the session's "idle" error (or starts a queued call)
        for i in range(count):
            rip = self._rip()
            code = read_code(self.m.read_virt, rip, 16)
            insn = disassemble(code, rip, self.m.symbols, count=1)[0]
            if insn.mnemonic == "call":
                stop = self._run(self.s.until, f"{rip + insn.size:#x}")
            else:
                stop = self._run(self.s.stepi)
            if stop.reason != "step" or i == count - 1:
                self._stop(stop)
                return

    def _irq(self, vector: int) -> None:
        """``irq VECTOR``: delivered at once at idle; a breakpoint or watchpoint in the
        handler stops there like one in a call (``continue`` finishes the interrupt).
        While a call is stopped it is made pending (DebugSession.irq)."""
        self._stop(self._run(self.s.irq, vector))

    def _examine(self, cmd: c.Examine) -> None:
        fmt = cmd.fmt or self._x_fmt
        size = unit_size(fmt, cmd.size, self._x_size)
        count = cmd.count or 1
        if cmd.expr is None:
            if self._x_next is None:
                raise ReplError("x: no address given and no previous x to go on from")
            addr = self._x_next
        else:
            addr = self.s.value_of(self._expr(cmd.expr))
        if fmt == "i":
            from emu.kernel.disasm import disassemble, format_disassembly

            code = read_code(self.m.read_virt, addr, 15 * count)
            insns = disassemble(code, addr, self.m.symbols, count=count, mark=self._rip(),
                                flavor=self.flavor)
            self.emit(format_disassembly(insns, show_lines=False))
            nxt = insns[-1].address + insns[-1].size if insns else addr
        else:
            nxt = examine(self.m.read_virt, addr, count, fmt, size, self._where, self.emit)
        self._x_fmt, self._x_next = fmt, nxt
        if fmt not in "si":
            self._x_size = size

    def _disassemble(self, cmd: c.Disassemble) -> None:
        from emu.kernel.disasm import disassemble, disassemble_function, format_disassembly

        m, rip = self.m, self.s.frame_pc()  # gdb: the selected frame's function and pc
        where = cmd.where
        function: str | None
        if where is not None and "," in where:
            lo_text, hi_text = where.split(",", 1)
            lo = self.s.value_of(self._expr(lo_text))
            hi_text = hi_text.strip()
            hi = (lo + self.s.value_of(self._expr(hi_text[1:])) if hi_text.startswith("+")
                  else self.s.value_of(self._expr(hi_text)))
            if not 0 < hi - lo <= MAX_DISAS_BYTES:
                raise ReplError(f"disassemble: bad range {lo:#x}..{hi:#x} (at most "
                                f"{MAX_DISAS_BYTES} bytes, END after START)")
            insns = disassemble(read_code(m.read_virt, lo, hi - lo), lo, m.symbols, m.lines,
                                mark=rip, flavor=self.flavor)
            head = f"Dump of assembler code from {lo:#x} to {hi:#x}:"
            function = None
        else:
            target: str | int
            if where is None:
                target = rip
            elif m.symbols is not None and where.strip() in m.symbols.by_name:
                target = where.strip()
            else:
                try:  # FUNC+OFF, ADDR, file.c:LINE
                    target = resolve_location(m, where.strip())
                except KmemuError:
                    target = self.s.value_of(self._expr(where))
            insns = disassemble_function(m.read_virt, m.symbols, target, m.lines, mark=rip,
                                         flavor=self.flavor)
            name = (self._where(insns[0].address) or "??") if insns else "??"
            head = f"Dump of assembler code for function {name}:"
            function = name
        body = format_disassembly(insns, show_bytes=cmd.raw, show_lines=cmd.source,
                                  function=function)
        self.emit(f"{head}\n{body}End of assembler dump.")

    def _list(self, loc: str | None) -> None:
        if loc is None and self._list_next is not None:
            file, start = self._list_next
            rows = [(n, source_line(file, n)) for n in range(start, start + LIST_LINES)]
            rows = [(n, t) for n, t in rows if t is not None]
            if not rows:
                raise ReplError(f"line number {start} out of range; {file!r} has {start - 1} "
                                "lines")
            self.emit("\n".join(f"{n}\t{t}" for n, t in rows))
            self._list_next = (file, rows[-1][0] + 1)
            return
        text = self.s.list_source(loc)
        self.emit(text)
        file, _ = self.s.source_position(loc)
        last = text.splitlines()[-1].split("\t", 1)[0] if text else ""
        if last.isdigit():
            self._list_next = (file, int(last) + 1)

    def _print_expr(self, expr: str, fmt: str | None) -> None:
        text = self._expr(expr)
        if self.s.called_function(text) is None:
            self.emit(self.s.print_expr(text, fmt=fmt))
            return
        fn, args = c.split_call(text.strip())  # gdb's print FUNC(ARGS): an inferior call
        stop = self._run(self.s.call, fn, [self._expr(a) for a in args])
        if stop.reason != "done" or stop.value is None:
            self._stop(stop)  # a stop inside the call, an oops: as `call` shows them
            return
        self._flush_console(show=True)
        self.emit(self.s.history_line(self.s.returned(fn, stop.value), fmt=fmt))

    def _ptype(self, expr: str) -> None:
        text = self._expr(expr).strip()
        try:
            t = self.m.program.type(text)
        except (LookupError, ValueError, SyntaxError):
            t = self.s.evaluate(text).type_
        # gdb's ptype looks through typedefs and indents members by four spaces
        body = re.sub(r"(?m)^\t+", lambda m: "    " * len(m.group(0)), str(t.unaliased()))
        self.emit(f"type = {body}")


def _repeat_form(cmd: c.Command) -> c.Command | None:
    """What an empty line after ``cmd`` runs (gdb): the same step, or ``x``/``list``
    going on from where they stopped; None for commands that do not repeat."""
    if isinstance(cmd, (c.Step, c.Continue, c.Until)):
        return cmd
    if isinstance(cmd, c.Examine):
        return c.Examine(cmd.count, cmd.fmt, cmd.size, None)
    if isinstance(cmd, c.List):
        return c.List(None)
    return None


def help_text(topic: str | None = None) -> str:
    """``help``: the commands by group; ``help CMD``: its usage and aliases."""
    if topic:
        spec = c.resolve(topic)
        aliases = f"\naliases: {', '.join(spec.aliases)}" if spec.aliases else ""
        return f"{spec.usage}\n  {spec.summary}{aliases}"
    out = []
    for group, title in c.GROUPS:
        out.append(f"{title}:")
        for spec in c.COMMANDS:
            if spec.group == group:
                names = spec.name + (f" ({', '.join(spec.aliases)})" if spec.aliases else "")
                out.append(f"  {names:<24} {spec.summary}")
    out.append("An empty line repeats step, next, stepi, continue, until, x and list. "
               "'help CMD' for more.")
    return "\n".join(out)


def read_script(path: str | Path) -> list[str]:
    """The lines of a ``--script`` file (:class:`BadArgument` if it cannot be read)."""
    try:
        return Path(path).read_text(errors="replace").splitlines()
    except OSError as e:
        raise BadArgument(f"cannot read script {str(path)!r}: {e.strerror or e}") from None


def run_debugger(session: DebugSession, lines: Iterable[str] | None = None, *,
                 stdin: TextIO | None = None, out: TextIO | None = None,
                 history: Path | None = None) -> int:
    """``kmemu debug``: ``lines`` (a script) if given, else a terminal session when
    ``stdin`` is a TTY, else the commands on ``stdin``.

    Exit status: 0; 1 when a non-interactive command printed an error (the rest
    still run, so a transcript is complete); 130 when Ctrl-C stopped a script
    outside a guest run.  A terminal session runs calls without a time budget
    (Ctrl-C stops them); scripts keep the machine's budget so CI cannot hang.
    """
    from emu.frontend.debugger.terminal import interact, sigint_interrupts

    stdin = stdin if stdin is not None else sys.stdin
    interactive = lines is None and stdin.isatty()
    repl = Repl(session, out, interactive=interactive)
    with sigint_interrupts(repl):
        try:
            if interactive:
                session.m.budget_seconds = float("inf")
                return interact(repl, history)
            return repl.run_lines(lines if lines is not None else stdin)
        except KeyboardInterrupt:
            repl.emit("Quit")
            return 130
