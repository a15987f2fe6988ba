"""Layer 6: the trace events from the command line and the REPL.

* :func:`add_events_option` / :func:`print_events`: ``--events GLOB`` (repeatable) for a
  subcommand that runs something (``kmemu trace`` wires it): the events are turned
  on before the run and Linux's ``trace`` text is printed after it.
* :func:`add_boot_options` / :func:`print_boot_trace`: ``kmemu boot --print-trace``
  prints the trace the boot collected (``--cmdline trace_event=kmem:kmalloc``).
* :func:`events_command`: the REPL's ``events`` command.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from emu.core.errors import BadArgument
from emu.machine.core import Machine

EVENTS_USAGE = ("events [list | show | clear | enable PATTERN... | disable [PATTERN...] | "
                "clock [NAME] | size [KB] | pipe]")


def add_events_option(parser: argparse.ArgumentParser) -> None:
    """``--events GLOB`` (repeatable, or comma-separated): Linux's set_event words
    (``kmem:kmalloc``, ``kmem:*``, ``vmalloc``) or globs over ``system:event``;
    ``--trace-clock`` as Linux's trace_clock."""
    parser.add_argument("--events", action="append", metavar="GLOB", default=None,
                        help="turn on these trace events (e.g. 'kmem:*', kmem:kmalloc,kmem:kfree) "
                        "and print Linux's trace text after the run")
    parser.add_argument("--trace-clock", metavar="CLOCK", default=None,
                        help="the events' clock: local (host ns, default), counter (guest "
                        "instructions, reproducible), global, mono, boot")


def _patterns(specs: list[str] | None) -> list[str]:
    return [p for s in specs or () for p in s.split(",") if p.strip()]


def enable_events(m: Machine, args: argparse.Namespace) -> list[str]:
    """Turn on what ``--events`` names (and set ``--trace-clock``); the buffer starts empty."""
    pats = _patterns(getattr(args, "events", None))
    if not pats:
        return []
    if getattr(args, "trace_clock", None):
        m.tracing.clock = args.trace_clock
    on = m.tracing.enable(*pats)
    m.tracing.clear()
    return on


def print_events(m: Machine, args: argparse.Namespace, out: TextIO | None = None) -> None:
    """Print the ``trace`` file when ``--events`` was given (nothing otherwise)."""
    if _patterns(getattr(args, "events", None)):
        (out or sys.stdout).write(m.tracing.read())


def add_boot_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--print-trace", action="store_true",
                        help="after boot, print the trace events the boot recorded "
                        "(turn them on with --cmdline trace_event=kmem:kmalloc,...)")


def print_boot_trace(m: Machine, out: TextIO | None = None) -> None:
    (out or sys.stdout).write(m.tracing.read())


def events_command(m: Machine, rest: str) -> str:
    """The REPL's ``events``: list, show (the trace), pipe (consume), clear, enable,
    disable, clock, size.  Returns the text to print."""
    words = rest.split()
    verb, args = (words[0], words[1:]) if words else ("show", [])
    t = m.tracing
    if verb == "list":
        on = set(t.enabled_events)
        return "\n".join(f"{'*' if e in on else ' '} {e}" for e in t.available_events)
    if verb == "show":
        return t.read().rstrip("\n")
    if verb == "pipe":
        return t.read_pipe().rstrip("\n")
    if verb == "clear":
        t.clear()
        return "trace buffer cleared"
    if verb == "enable":
        if not args:
            raise BadArgument("events enable needs a pattern, e.g. events enable kmem:*")
        return "enabled: " + " ".join(t.enable(*args))
    if verb == "disable":
        return "disabled: " + " ".join(t.disable(*args))
    if verb == "clock":
        if args:
            t.clock = args[0]
        return f"trace clock: {t.clock}"
    if verb == "size":
        if args:
            try:
                t.buffer_size_kb = int(args[0], 0)
            except ValueError:
                raise BadArgument(f"events size takes kilobytes, got {args[0]!r}") from None
        return f"buffer_size_kb: {t.buffer_size_kb}"
    raise BadArgument(f"unknown events subcommand {verb!r}; usage: {EVENTS_USAGE}")
