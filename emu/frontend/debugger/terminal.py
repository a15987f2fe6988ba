"""The terminal side of ``kmemu debug``: readline history and completion, Ctrl-C.

Layer 6 (``emu.frontend.debugger``).

Ctrl-C while the guest runs stops it (``DebugSession.interrupt``: the call
stays stopped, "Program received signal SIGINT"); at the prompt it gives a
new prompt; Ctrl-D quits.  Unicorn runs the guest in C with the GIL
released, so a Python signal handler would only run once the guest stopped
by itself: the handler's wakeup fd (``signal.set_wakeup_fd``) is read by a
helper thread, which calls ``interrupt()`` at once.  The Python handler
itself only raises ``KeyboardInterrupt`` when no guest code is running.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from emu.core.errors import KmemuError
from emu.frontend.debugger import commands as c
from emu.frontend.debugger.examine import REGISTERS

if TYPE_CHECKING:
    from emu.frontend.debugger.repl import Repl

HISTORY = Path("~/.kmemu_history")
HISTORY_LENGTH = 1000
DELIMS = " \t\n*&()[],|+-=<>!~;"
_FUNCTION_ARGS = {"break", "tbreak", "call", "disassemble", "list", "until"}
_NO_ARGS = {"continue", "finish", "kill", "quit", "buddyinfo", "slabinfo", "slabtop",
            "vmallocinfo", "zoneinfo", "pagetypeinfo", "modules", "step", "next", "stepi", "nexti",
            "backtrace", "irq", "delete", "frame", "up", "down"}


class Completer:
    """Completion of command names, ``info`` topics, registers and kernel symbols."""

    def __init__(self, names: Callable[[], list[str]], functions: Callable[[], list[str]],
                 snapshots: Callable[[], list[str]] = list) -> None:
        self._names, self._functions, self._snapshots = names, functions, snapshots
        self._matches: list[str] = []

    def candidates(self, before: str, text: str) -> list[str]:
        """Completions of ``text`` (the word at the cursor) after ``before`` (the line up
        to that word)."""
        words = before.split()
        if not words:
            pool: list[str] = [s.name for s in c.COMMANDS]
        else:
            try:
                spec = c.resolve(words[0].split("/", 1)[0])
            except c.CommandError:
                return []
            if spec.name == "info" and len(words) == 1:
                pool = list(c.INFO_TOPICS)
            elif spec.name == "info":
                pool = list(REGISTERS)
            elif spec.name == "help":
                pool = [s.name for s in c.COMMANDS]
            elif spec.name in ("snapshot", "restore"):
                pool = self._snapshots()
            elif spec.name in _NO_ARGS:
                return []
            elif text.startswith("$"):
                pool = [f"${r}" for r in REGISTERS if r != "eflags"] + ["$rflags", "$pc", "$sp"]
            elif spec.name in _FUNCTION_ARGS:
                pool = self._functions()
            else:
                pool = self._names()
        return sorted({p for p in pool if p.startswith(text)})

    def complete(self, text: str, state: int) -> str | None:
        """readline's completer: the ``state``-th completion of ``text``."""
        if state == 0:
            import readline

            before = readline.get_line_buffer()[:readline.get_begidx()]
            try:
                self._matches = self.candidates(before, text)
            except Exception:  # a completer must never raise into readline
                self._matches = []
        return self._matches[state] if state < len(self._matches) else None


def setup_readline(repl: Repl, history: Path | None) -> Callable[[], None]:
    """Completion and history for ``input()``; returns the function that saves history
    (errors writing it are ignored: an unwritable home must not break a session)."""
    try:
        import readline
    except ImportError:  # pragma: no cover - Python built without readline
        return lambda: None
    syms = repl.m.symbols

    def names() -> list[str]:
        """Kernel symbols and the selected frame's variables."""
        try:
            local = [v.name for v in repl.s.variables()]
        except KmemuError:
            local = []
        return local + (syms.names() if syms else [])

    completer = Completer(names, syms.functions if syms else list,
                          lambda: list(repl.s.snapshots))
    readline.set_completer(completer.complete)
    readline.set_completer_delims(DELIMS)
    if "libedit" in (readline.__doc__ or ""):  # pragma: no cover - macOS
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    path = (history or HISTORY).expanduser()
    try:
        readline.read_history_file(path)
    except OSError:
        pass
    readline.set_history_length(HISTORY_LENGTH)

    def save() -> None:
        try:
            readline.write_history_file(path)
        except OSError:
            pass
    return save


def interact(repl: Repl, history: Path | None = None) -> int:
    """The terminal loop: prompt, read, execute until ``quit`` or Ctrl-D."""
    from emu.frontend.debugger.repl import PROMPT

    save = setup_readline(repl, history)
    try:
        while not repl.done:
            try:
                line = input(PROMPT)
            except EOFError:
                repl.emit("quit")
                break
            except KeyboardInterrupt:  # at the prompt: a fresh prompt
                repl.out.write("\n")
                repl.out.flush()
                continue
            try:
                repl.execute(line)
            except KeyboardInterrupt:
                repl.emit("Quit")
    finally:
        save()
    return 0


@contextmanager
def sigint_interrupts(repl: Repl) -> Iterator[None]:
    """While inside: Ctrl-C stops a running guest (the call stays stopped) and raises
    ``KeyboardInterrupt`` otherwise.  Main thread only (elsewhere: nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    r, w = os.pipe()
    os.set_blocking(w, False)
    m = repl.m

    def on_sigint(_signum: int, _frame: object) -> None:
        if not repl.guest_running:
            raise KeyboardInterrupt  # the watcher below has already stopped a running guest

    def watcher() -> None:
        while True:
            try:
                data = os.read(r, 64)
            except OSError:
                return
            if not data:
                return
            # only while a call runs: interrupt() at idle would stop the next call at once
            if signal.SIGINT in data and repl.guest_running and m.state == "running":
                repl.s.interrupt()

    old_handler = signal.signal(signal.SIGINT, on_sigint)
    old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    t = threading.Thread(target=watcher, name="kmemu-debug-sigint", daemon=True)
    t.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(old_fd)
        signal.signal(signal.SIGINT, old_handler)
        os.close(w)  # the watcher reads EOF and ends
        t.join(1.0)
        os.close(r)
