"""Linux's kmem trace events as text: the one parser of them in kmemu.

Layer 4 (``emu.kernel``).  Reads what ``/sys/kernel/tracing/trace`` prints (with
or without the irq-info columns, with or without the tgid column, the ``#``
header) and what ``trace-cmd report`` prints (its ``version =`` / ``cpus=``
header, padded event names), plain or gzip.  The events are the kmem system's
allocation events::

    kmalloc  kmalloc_node  kfree  kmem_cache_alloc  kmem_cache_alloc_node
    kmem_cache_free  mm_page_alloc  mm_page_free  mm_page_free_batched

Their fields are read **by name**, because the formats changed across Linux
versions: 4.x prints ``call_site`` as a bare hex address and ``pfn=`` in
decimal, has ``kmalloc_node``/``kmem_cache_alloc_node`` events and
``mm_page_free_batched`` with ``cold=``; 5.x prints ``call_site=%pS`` and
``pfn=0x..``, adds ``name=`` to ``kmem_cache_free`` (5.12) and ``accounted=``
to the allocations (5.19); 6.1 drops the ``_node`` events (``node=`` is a field
of every allocation).  Absent optional fields are None, never guessed.

A line that names one of these events but lacks a field the event needs, or
has a value that is not a number where one must be (a truncated line, say), is
*unreadable*: counted, the first one kept with its line number.  Any other
event is counted by name and skipped.  ``CPU:N [LOST M EVENTS]`` lines add M to
``lost_events``.

>>> t = parse_lines(["bash-1 [000] .... 1.0: kfree: call_site=f+0x1/0x2 ptr=00000000deadbeef"])
>>> t.events[0].event, hex(t.events[0].ptr)
('kfree', '0xdeadbeef')
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from emu.kernel import gfp as gfpmod

#: The events this parser reads, in Linux's include/trace/events/kmem.h order.
KMEM_EVENTS = ("kmalloc", "kmalloc_node", "kfree", "kmem_cache_alloc",
               "kmem_cache_alloc_node", "kmem_cache_free", "mm_page_alloc",
               "mm_page_free", "mm_page_free_batched")
SLAB_ALLOCS = frozenset({"kmalloc", "kmalloc_node", "kmem_cache_alloc", "kmem_cache_alloc_node"})
SLAB_FREES = frozenset({"kfree", "kmem_cache_free"})
PAGE_ALLOCS = frozenset({"mm_page_alloc"})
PAGE_FREES = frozenset({"mm_page_free", "mm_page_free_batched"})

# The fields each event cannot do without (a truncated line usually loses one).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "kmalloc": ("call_site", "ptr", "bytes_req", "bytes_alloc", "gfp_flags"),
    "kmem_cache_alloc": ("call_site", "ptr", "bytes_req", "bytes_alloc", "gfp_flags"),
    "kfree": ("call_site", "ptr"),
    "kmem_cache_free": ("call_site", "ptr"),
    "mm_page_alloc": ("order", "gfp_flags"),
    "mm_page_free": ("order",),
    "mm_page_free_batched": (),
}
_REQUIRED["kmalloc_node"] = _REQUIRED["kmalloc"] + ("node",)
_REQUIRED["kmem_cache_alloc_node"] = _REQUIRED["kmem_cache_alloc"] + ("node",)

# One event line: TASK-PID, an optional tgid column "(  123)" or "(-------)", [CPU],
# optional irq-info flags (4 characters before 5.18, 5 after), TIMESTAMP (seconds.micro,
# or a bare count with trace_clock=counter/x86-tsc), then EVENT: fields.  The fields
# run to the end of the line (trailing blanks included: they are split on whitespace;
# a lazy group followed by \s*$ cost twice the time of the whole match).
_LINE = re.compile(
    r"^\s*(?P<task>.*?)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]"
    r"(?:\s+(?P<flags>[^\s:]{4,6}))?\s+(?P<ts>\d+(?:\.\d+)?):\s+"
    r"(?:(?P<system>\w+):)?(?P<event>\w+):\s*(?P<fields>.*)")
_LOST = re.compile(r"^\s*CPU:\s*(\d+)\s+\[LOST\s+(\d+)\s+EVENTS\]\s*$")
# trace-cmd report's header lines, and the ftrace file's "##### CPU 2 buffer started ####"
_HEADER = re.compile(r"^\s*(?:version\s*=.*|cpus=\d+|CPU \d+ is empty|trace-cmd:.*|#.*)$")
_NULL_PTRS = frozenset({"(null)", "0", "0x0", "(nil)"})


class TraceTextError(ValueError):
    """A value in a field that is not what the event's format says it is (the line is
    then unreadable), or, from :func:`parse_lines`, a line that is not a str."""


@dataclass(slots=True)
class KmemEvent:
    """One kmem event, fields as the trace gave them (sizes in bytes).

    ``ptr`` is the object's pointer for slab events (0: the allocation failed)
    and None for page events; ``pfn`` (or, when the trace has no pfn, ``page``)
    identifies the block of page events.  ``order`` is 0 for slab events."""

    event: str
    line: int
    call_site: str | None = None
    ptr: int | None = None
    bytes_req: int = 0
    bytes_alloc: int = 0
    gfp_flags: str | None = None
    node: int | None = None
    accounted: bool | None = None
    name: str | None = None  # the cache's name= (kmem_cache_free, 5.12+)
    page: int | None = None
    pfn: int | None = None
    order: int = 0
    migratetype: int | None = None
    pid: int | None = None
    cpu: int | None = None
    timestamp: float | None = None

    @property
    def page_key(self) -> int | None:
        """What identifies a page block across its alloc and free: the pfn, or the
        ``struct page`` pointer in traces that print no pfn."""
        return self.pfn if self.pfn is not None else self.page


@dataclass
class Trace:
    """A parsed trace: the kmem events in order, and what could not be used."""

    events: list[KmemEvent] = field(default_factory=list)
    lines: int = 0
    unreadable: int = 0
    first_unreadable: tuple[int, str, str] | None = None  # (line number, text, why)
    other_events: Counter[str] = field(default_factory=Counter)
    lost_events: int = 0
    unknown_gfp: Counter[str] = field(default_factory=Counter)  # flag names we do not know
    format: str = "unknown"  # "ftrace" or "trace-cmd" (from the header), "unknown"

    def describe_unreadable(self) -> str:
        if self.first_unreadable is None:
            return "every line was read"
        n, text, why = self.first_unreadable
        cut = text if len(text) <= 120 else text[:117] + "..."
        # a binary file's bytes would reach the terminal as control characters
        cut = "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)
        return f"{self.unreadable} unreadable line(s); first, line {n} ({why}): {cut}"


def _hex(v: str) -> int:
    """A %p / %lx value: hashed pointers have no 0x, trace-cmd's have one."""
    if v in _NULL_PTRS:
        return 0
    return int(v, 16)


def _int(v: str) -> int:
    return int(v, 16) if v[:2] in ("0x", "0X") else int(v, 10)


def _pfn(v: str) -> int:
    # 5.x+ print pfn=0x%lx; 4.x printed pfn=%lu
    return int(v, 16) if v[:2] in ("0x", "0X") else int(v, 10)


def _bool(v: str) -> bool:
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise TraceTextError(f"not true/false: {v!r}")


def _fields(text: str) -> dict[str, str]:
    """``a=1 b=x|y name=foo`` by name.  Values hold no spaces in these formats."""
    out = {}
    for tok in text.split():
        key, eq, value = tok.partition("=")
        if eq:
            out[key] = value
    return out


def _event(name: str, n: int, f: dict[str, str]) -> KmemEvent:
    """Build the event from its fields; TraceTextError or KeyError if unusable."""
    for key in _REQUIRED[name]:
        if key not in f:
            raise TraceTextError(f"no {key}= field")
    ev = KmemEvent(name, n)
    if name in SLAB_ALLOCS or name in SLAB_FREES:
        ev.call_site = f["call_site"]
        ev.ptr = _hex(f["ptr"])
        if name in SLAB_ALLOCS:
            ev.bytes_req, ev.bytes_alloc = _int(f["bytes_req"]), _int(f["bytes_alloc"])
            ev.gfp_flags = f["gfp_flags"]
            if "node" in f:
                ev.node = int(f["node"])
            if "accounted" in f:
                ev.accounted = _bool(f["accounted"])
        if "name" in f:  # kmem_cache_free from 5.12 (and an alloc, should a kernel print it)
            ev.name = f["name"]
        return ev
    if "pfn" not in f and "page" not in f:
        raise TraceTextError("neither pfn= nor page= field")
    if "pfn" in f:
        ev.pfn = _pfn(f["pfn"])
    if "page" in f:
        ev.page = _hex(f["page"])
    ev.order = int(f.get("order", "0"))
    if not 0 <= ev.order < 64:
        raise TraceTextError(f"order {ev.order} out of range")
    if name in PAGE_ALLOCS:
        ev.gfp_flags = f["gfp_flags"]
        if "migratetype" in f:
            ev.migratetype = int(f["migratetype"])
    return ev


def gfp_value(text: str, unknown: Counter[str] | None = None) -> int:
    """GFP flags from a trace's ``gfp_flags=`` text: kmemu's names, 4.x's names
    without the leading ``__`` (``GFP_NOWARN``), ``none``, and hex leftovers.  Names
    kmemu does not know are left out (and counted in ``unknown``)."""
    value = 0
    for tok in text.split("|"):
        tok = tok.strip()
        if not tok or tok == "none":
            continue
        if tok in gfpmod.GFP_FLAGS:
            value |= gfpmod.GFP_FLAGS[tok]
        elif "__" + tok in gfpmod.GFP_FLAGS:
            value |= gfpmod.GFP_FLAGS["__" + tok]
        elif re.fullmatch(r"0[xX][0-9a-fA-F]+", tok):
            known = 0
            for v in gfpmod.GFP_FLAGS.values():
                known |= v
            value |= int(tok, 16) & known
        elif unknown is not None:
            unknown[tok] += 1
    return value & 0xFFFFFFFF


def parse_lines(lines: Iterable[str]) -> Trace:
    """Parse trace text, one line at a time (see the module docstring)."""
    t = Trace()
    events, other, match, lost = t.events, t.other_events, _LINE.match, _LOST.match
    header_seen = False
    n = 0
    for n, line in enumerate(lines, 1):  # noqa: B007 - n is the line count after the loop
        if type(line) is not str:
            t.lines = n
            raise TraceTextError(f"trace line {n} is a {type(line).__name__}, not a str")
        if not line.strip():
            continue
        m = match(line)
        if m is None:
            lm = lost(line)
            if lm:
                t.lost_events += int(lm.group(2))
            elif _HEADER.match(line):
                if not header_seen:
                    if line.startswith("# tracer:"):
                        t.format, header_seen = "ftrace", True
                    elif line.lstrip().startswith(("version =", "cpus=")):
                        t.format, header_seen = "trace-cmd", True
            else:
                _unreadable(t, n, line, "not a trace event line")
            continue
        name = m.group("event")
        if name not in _REQUIRED or m.group("system") not in (None, "kmem"):
            other[name if m.group("system") is None else f"{m.group('system')}:{name}"] += 1
            continue
        try:
            ev = _event(name, n, _fields(m.group("fields")))
        except (TraceTextError, ValueError) as e:
            _unreadable(t, n, line, str(e))
            continue
        ev.pid, ev.cpu = int(m.group("pid")), int(m.group("cpu"))
        ev.timestamp = float(m.group("ts"))
        if ev.gfp_flags is not None and ev.gfp_flags not in _GFP_SEEN:
            _GFP_SEEN[ev.gfp_flags] = gfp_value(ev.gfp_flags, t.unknown_gfp)
        events.append(ev)
    t.lines = n
    return t


#: gfp text -> value, shared by every parse (traces repeat a handful of flag sets)
_GFP_SEEN: dict[str, int] = {}


def gfp_of(ev: KmemEvent) -> int:
    """The event's GFP flags as kmemu's value (0 when it has none)."""
    if ev.gfp_flags is None:
        return 0
    v = _GFP_SEEN.get(ev.gfp_flags)
    if v is None:
        v = _GFP_SEEN[ev.gfp_flags] = gfp_value(ev.gfp_flags)
    return v


def _unreadable(t: Trace, n: int, line: str, why: str) -> None:
    t.unreadable += 1
    if t.first_unreadable is None:
        t.first_unreadable = (n, line.rstrip("\n"), why)


def open_text(path: str | Path) -> Iterator[str]:
    """The lines of a trace file, gzip (by its magic bytes, not its name) or plain.
    Bytes that are not UTF-8 become U+FFFD (the line is then judged as any other)."""
    p = Path(path)
    with p.open("rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(p, "rt", encoding="utf-8", errors="replace") as f:  # type: ignore[operator]
        yield from f


def parse_file(path: str | Path) -> Trace:
    """Parse a trace file (see :func:`open_text`); OSError/EOFError propagate to the caller."""
    return parse_lines(open_text(path))
