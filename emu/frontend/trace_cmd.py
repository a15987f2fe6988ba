"""``kmemu trace``: one call's function_graph, folded stacks or flame graph.

    kmemu trace [--mem SIZE] [--module F.c]... [--depth N] [--graph GLOB]...
                [--filter GLOB]... [--notrace GLOB]... [--graph-notrace GLOB]...
                [--no-irqs] [--wall] [--tail] [--folded] [--svg FILE] FUNC [ARG...]
    kmemu trace --events GLOB [--trace-clock CLOCK] FUNC [ARG...]

With ``--events`` the call runs with those trace events on and the output is
Linux's ``trace`` file of what they recorded (the nop tracer's layout) instead of
the function graph.  Exit status: 0, 1 when the call oopsed (the tree up
to the oops is printed, then the oops), 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from emu.core.errors import BadArgument
from emu.frontend.events import add_events_option, enable_events, print_events
from emu.machine.core import Machine


def add_parser(sub: argparse._SubParsersAction,
               machine_opts: Callable[..., None]) -> argparse.ArgumentParser:
    """Register ``trace`` on the CLI's subparsers (``machine_opts`` adds --mem & co.)."""
    t = sub.add_parser(
        "trace", help="run one call and print its function_graph (guest instructions per "
        "function), folded stacks (--folded) or a flame graph (--svg)",
        description="Run FUNC(ARGS) once and print its call tree in the layout of Linux's "
        "function_graph tracer, with each function's exact guest instruction count as the "
        "duration (--wall: host wall time, hooks included). The knobs are ftrace's: "
        "set_graph_function (--graph), set_graph_notrace, set_ftrace_filter (--filter), "
        "set_ftrace_notrace (--notrace), max_graph_depth (--depth); globs as in ftrace.")
    t.add_argument("function", metavar="FUNC", help="the kernel or module function to call")
    t.add_argument("args", nargs="*", metavar="ARG", help="its arguments: integers "
                   "(decimal or 0x hex) or GFP flags (GFP_KERNEL, 'GFP_KERNEL|__GFP_ZERO')")
    machine_opts(t, modules=True)
    knobs = t.add_argument_group("ftrace knobs")
    knobs.add_argument("--depth", type=int, metavar="N",
                       help="max_graph_depth: show N levels (0: no limit)")
    knobs.add_argument("--graph", action="append", metavar="GLOB",
                       help="set_graph_function: only trees rooted at a match (repeatable)")
    knobs.add_argument("--graph-notrace", action="append", metavar="GLOB",
                       help="set_graph_notrace: hide a match and all it calls (repeatable)")
    knobs.add_argument("--filter", action="append", metavar="GLOB",
                       help="set_ftrace_filter: trace only matching functions (repeatable)")
    knobs.add_argument("--notrace", action="append", metavar="GLOB",
                       help="set_ftrace_notrace: hide matching functions, keep their "
                       "callees (repeatable)")
    knobs.add_argument("--no-irqs", action="store_true",
                       help="funcgraph-irqs off: leave interrupts out of the tree")
    out = t.add_argument_group("output")
    out.add_argument("--tail", action="store_true",
                     help="funcgraph-tail: name the function at every closing brace")
    out.add_argument("--wall", action="store_true",
                     help="durations in host wall time (us) instead of guest instructions")
    out.add_argument("--folded", action="store_true",
                     help="print folded stacks (flamegraph.pl / inferno / speedscope input)")
    out.add_argument("--svg", metavar="FILE", help="also write a flame graph to FILE")
    add_events_option(t.add_argument_group(
        "trace events (instead of the function graph: the nop tracer's trace file)"))
    t.set_defaults(fn=run)
    return t


def call_args(values: list[str]) -> tuple[int, ...]:
    """Integers, or GFP flag expressions as the REPL's ``call`` takes them."""
    from emu.kernel import gfp

    out = []
    for v in values:
        try:
            out.append(int(v, 0))
        except ValueError:
            if (flags := gfp.parse_argument(v)) is None:
                raise BadArgument(f"argument {v!r} is not an integer (decimal or 0x hex) or "
                                  "GFP flags") from None
            out.append(flags)
    return tuple(out)


def _run_events(a: argparse.Namespace, kw: dict[str, object], args: tuple[int, ...]) -> int:
    """``--events``: the call with those trace events on, and Linux's ``trace`` file of
    what it recorded (the nop tracer's, as Linux prints it with no function tracer)."""
    from emu.frontend.cli import ctrl_c_stops

    holder: list[Machine] = []
    with ctrl_c_stops(lambda: holder[0] if holder else None):
        m = Machine.booted(**kw)  # type: ignore[arg-type]
        holder.append(m)
        enable_events(m, a)
        ret = m.call(a.function, *args)
    print_events(m, a)
    print(f"# {a.function} returned {ret:#x}")
    return 0


def run(a: argparse.Namespace) -> int:
    """Boot, trace the call, print; see the module doc for the exit status."""
    from emu.frontend.cli import _machine_args, ctrl_c_stops

    args = call_args(a.args)
    if a.depth is not None and a.depth < 0:
        raise BadArgument(f"--depth takes a number >= 0, got {a.depth}")
    kw = _machine_args(a, modules=False)
    if a.modules:
        kw["modules"] = [str(Path(p).resolve()) for p in a.modules]
    holder: list[Machine] = []
    if a.events:
        return _run_events(a, kw, args)
    with ctrl_c_stops(lambda: holder[0] if holder else None):
        m = Machine.booted(**kw)  # type: ignore[arg-type]
        holder.append(m)
        r = m.trace(a.function, *args, depth=a.depth, filter=a.filter, notrace=a.notrace,
                    graph=a.graph, graph_notrace=a.graph_notrace,
                    clock="wall" if a.wall else "insns", irqs=not a.no_irqs, tail=a.tail)
    if a.svg:
        try:
            r.svg(a.svg)
        except OSError as e:
            raise BadArgument(f"cannot write {a.svg}: {e.strerror}") from None
    sys.stdout.write(r.folded if a.folded else r.text)
    if r.oops is not None:
        print(f"kmemu: {r.oops}", file=sys.stderr)
        return 1
    if not a.folded:
        print(f"# {r.function} returned {r.retval:#x}; {r.insns} guest instructions "
              f"({r.root.total_insns} in {r.function}, {r.outside} in the host's call glue)")
    return 0
