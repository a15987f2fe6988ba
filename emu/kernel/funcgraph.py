"""Layer 4: call trees of the guest and how function_graph shows them.

A :class:`Call` is one function invocation the host saw (``emu.machine.ftrace``
builds them from Unicorn block hooks): its name, its instructions (``self_insns``
ran in its own body, ``total_insns`` with everything it called), its children in
call order, and how it ended.  This module only reshapes and prints trees:

* :func:`select` applies Linux's ftrace knobs by their names, with their
  semantics: ``set_graph_function`` (only trees rooted at a match),
  ``set_graph_notrace`` (a match and everything below it vanish),
  ``set_ftrace_filter`` (only matching functions are traced: the rest vanish and
  their traced callees move up to the nearest traced caller, as the ret_stack only
  grows for traced functions), ``set_ftrace_notrace`` (matches vanish, their
  callees move up) and ``max_graph_depth`` (functions deeper than N are not
  traced).  Durations stay what the hardware did: a shown function's total counts
  the hidden callees too, its ``self_insns`` in the view is the rest.
* :func:`format_graph` prints function_graph's layout (the CPU column, the
  duration column with Linux's overhead marks, ``{`` / ``}`` and ``;`` leaves, the
  ``==========>`` / ``<==========`` arrows around an interrupt's tree and
  ``/* ... */`` comments).  The duration is guest instructions (``83 insns``) or
  wall time (``1.200 us``, Linux's own number format).
* :func:`folded` gives the ``a;b;c count`` stacks flamegraph.pl, inferno and
  speedscope read.

Globs are ftrace's: ``*`` and ``?`` and ``[...]`` (fnmatch), matched against the
whole name; a pattern that matches no function is an error, as writing it into
``set_ftrace_filter`` is (``-EINVAL``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from emu.core.errors import BadArgument


class TraceError(BadArgument):
    """A bad tracing knob: a glob matching no function, a bad depth or clock."""


@dataclass(eq=False)
class Call:
    """One function invocation (or an interrupt's entry code: ``kind == "irq"``)."""

    name: str
    address: int = 0
    depth: int = 0
    self_insns: int = 0
    total_insns: int = 0
    children: list[Call] = field(default_factory=list)
    kind: str = "call"  # "call", "tail" (reached by a jump), "irq" (interrupt/exception entry)
    vector: int | None = None  # for kind == "irq"
    returned: bool = True  # False: an oops (or the end of the trace) left it unfinished
    wall_ns: int = 0  # host wall time from entry to return, hooks included
    entry_rsp: int = 0

    def walk(self) -> Iterator[Call]:
        """This call and every call below it, in call order."""
        yield self
        for c in self.children:
            yield from c.walk()

    def __repr__(self) -> str:
        return (f"Call({self.name!r}, depth={self.depth}, self={self.self_insns}, "
                f"total={self.total_insns}, children={len(self.children)})")


def finish_totals(roots: Iterable[Call]) -> None:
    """Set ``total_insns`` (self plus children) and ``depth`` bottom-up, iteratively."""
    for root in roots:
        stack: list[tuple[Call, int, bool]] = [(root, root.depth, False)]
        while stack:
            c, d, done = stack.pop()
            if done:
                c.total_insns = c.self_insns + sum(k.total_insns for k in c.children)
                continue
            c.depth = d
            stack.append((c, d, True))
            stack.extend((k, d + 1, False) for k in reversed(c.children))


# --- ftrace's knobs ----------------------------------------------------------------------


def _globs(value: str | Sequence[str] | None, knob: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise TraceError(f"{knob}: globs are strings, got {type(value).__name__}")
    out = []
    for v in items:
        if not isinstance(v, str):
            raise TraceError(f"{knob}: globs are strings, got {type(v).__name__}")
        out += [p for p in v.replace(",", " ").split() if p]
    return out


def check_globs(value: str | Sequence[str] | None, knob: str,
                functions: Iterable[str]) -> list[str]:
    """The patterns of one knob; each must match a function (``-EINVAL`` otherwise)."""
    pats = _globs(value, knob)
    names = list(functions)
    for p in pats:
        if not any(fnmatch.fnmatchcase(n, p) for n in names):
            raise TraceError(f"{knob}: {p!r} matches no kernel function "
                             "(Linux refuses it with 'Invalid argument')")
    return pats


def _matches(name: str, pats: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in pats)


def _copy(c: Call, children: list[Call]) -> Call:
    return Call(c.name, c.address, 0, c.self_insns, c.total_insns, children, c.kind, c.vector,
                c.returned, c.wall_ns, c.entry_rsp)


def select(roots: Sequence[Call], graph: Sequence[str] = (), graph_notrace: Sequence[str] = (),
           filter: Sequence[str] = (), notrace: Sequence[str] = (),  # noqa: A002 - ftrace's word
           max_depth: int | None = None, irqs: bool = True) -> list[Call]:
    """The forest function_graph would show with these knobs (see the module doc).
    ``irqs=False`` is the ``funcgraph-irqs`` option off: interrupts (vectors >= 32) and
    everything they ran are left out, their instructions stay in the interrupted
    function's total.  ``roots`` are left alone; the result is new :class:`Call` objects."""
    if graph:
        found: list[Call] = []

        def find(c: Call) -> None:
            if _matches(c.name, list(graph)):
                found.append(c)
                return
            for k in c.children:
                find(k)

        for r in roots:
            find(r)
        roots = found

    def traced(c: Call) -> bool:
        if filter and not _matches(c.name, list(filter)):
            return False
        return not (notrace and _matches(c.name, list(notrace)))

    def shown(c: Call, depth: int) -> list[Call]:
        if graph_notrace and _matches(c.name, list(graph_notrace)):
            return []
        if not irqs and c.kind == "irq" and (c.vector or 0) >= 32:
            return []
        if not traced(c):
            return [s for k in c.children for s in shown(k, depth)]
        if max_depth is not None and depth >= max_depth:
            return []
        kids = [s for k in c.children for s in shown(k, depth + 1)]
        return [_copy(c, kids)]

    out = [s for r in roots for s in shown(r, 0)]
    for top in out:
        for c in top.walk():
            c.self_insns = c.total_insns - sum(k.total_insns for k in c.children)
    _set_depths(out)
    return out


def _set_depths(roots: list[Call]) -> None:
    stack = [(r, 0) for r in reversed(roots)]
    while stack:
        c, d = stack.pop()
        c.depth = d
        stack.extend((k, d + 1) for k in reversed(c.children))


# --- function_graph's text ---------------------------------------------------------------

# Linux's overhead marks (trace_find_mark), thresholds in nanoseconds; for instruction
# counts the same thresholds are read as instructions (about 1 ns each).
_MARKS = ((1_000_000_000, "$"), (100_000_000, "@"), (10_000_000, "*"), (1_000_000, "#"),
          (100_000, "!"), (10_000, "+"))
_FILL = " " * 14 + "|  "  # no duration on this line


def _mark(value: int) -> str:
    return next((sym for limit, sym in _MARKS if value > limit), " ")


def format_us(ns: int) -> str:
    """Linux's duration field for ``ns`` nanoseconds: ``0.318 us   `` (at most 7 digits)."""
    usecs, rem = divmod(max(ns, 0), 1000)
    text = str(usecs)
    if len(text) < 7:
        text += "." + f"{rem:03d}"[: 7 - len(text)]
    return text + " us " + " " * max(0, 8 - len(text))


def format_insns(n: int) -> str:
    """The instruction-count duration field, Linux's width: ``83 insns   ``."""
    return f"{n} insns ".ljust(12)


def _duration(c: Call, clock: str) -> str:
    if clock == "wall":
        return f"{_mark(c.wall_ns)} {format_us(c.wall_ns)}|  "
    return f"{_mark(c.total_insns)} {format_insns(c.total_insns)}|  "


HEADER = ("# tracer: function_graph\n#\n"
          "# CPU  DURATION                  FUNCTION CALLS\n"
          "# |     |   |                     |   |   |   |\n")


def format_graph(roots: Sequence[Call], clock: str = "insns", cpu: int = 0,
                 header: bool = True, comments: Sequence[tuple[Call | None, str]] = (),
                 tail: bool = False) -> str:
    """function_graph's text for ``roots``.  ``comments``: (call, text) pairs printed as
    ``/* text */`` lines after that call's opening (``None``: at the end).  Every
    closing brace names its function with ``tail`` (Linux's ``funcgraph-tail``); without
    it only those of calls that never returned do (an oops unwound them)."""
    if clock not in ("insns", "wall"):
        raise TraceError(f"clock must be 'insns' or 'wall', got {clock!r}")
    col = f" {cpu}) "
    notes: dict[int, list[str]] = {}
    at_end: list[str] = []
    for c, text in comments:
        (at_end if c is None else notes.setdefault(id(c), [])).append(text)
    out: list[str] = [HEADER] if header else []
    stack: list[tuple[Call, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        c, closing = stack.pop()
        pad = "  " * c.depth
        arrows = c.kind == "irq" and c.vector is not None and c.vector >= 32
        if closing:
            note = "" if c.returned and not tail else f" /* {c.name} */"
            out.append(f"{col}{_duration(c, clock)}{pad}}}{note}\n")
            if arrows:
                out.append(f"{col}  <========== |\n")
            continue
        if arrows:
            out.append(f"{col}  ==========> |\n")
        mine = notes.get(id(c), [])
        if not c.children and not mine:
            out.append(f"{col}{_duration(c, clock)}{pad}{c.name}();\n")
            if arrows:
                out.append(f"{col}  <========== |\n")
            continue
        out.append(f"{col}{_FILL}{pad}{c.name}() {{\n")
        out.extend(f"{col}{_FILL}{pad}  /* {t} */\n" for t in mine)
        stack.append((c, True))
        stack.extend((k, False) for k in reversed(c.children))
    out.extend(f"{col}{_FILL}/* {t} */\n" for t in at_end)
    return "".join(out)


# --- folded stacks -----------------------------------------------------------------------


def folded(roots: Sequence[Call]) -> str:
    """``a;b;c count`` lines (flamegraph.pl's input): each call's own instructions under
    its stack, equal stacks merged, sorted; the counts sum to the roots' totals."""
    counts: dict[str, int] = {}
    stack: list[tuple[Call, str]] = [(r, r.name) for r in roots]
    while stack:
        c, path = stack.pop()
        own = c.total_insns - sum(k.total_insns for k in c.children)
        if own:
            counts[path] = counts.get(path, 0) + own
        stack.extend((k, f"{path};{k.name}") for k in c.children)
    return "".join(f"{p} {n}\n" for p, n in sorted(counts.items()))


def parse_folded(text: str) -> list[tuple[list[str], int]]:
    """Folded stacks back as (frames, count); a malformed line is a :class:`TraceError`."""
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            raise TraceError(f"folded stacks line {i} is not 'a;b;c COUNT': {line!r}")
        out.append((stack.split(";"), int(count)))
    return out
