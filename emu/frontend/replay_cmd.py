"""Layer 6: ``kmemu replay`` and ``kmemu compare``: a Linux kmem trace replayed in the guest.

    kmemu replay TRACE [--slab slub|slab|slob] [--mem SIZE] [--cmdline STR] [--json] [--plot DIR]
                 [--folded FILE] [--svg FILE]
    kmemu compare TRACE --slab slub,slab,slob [--mem SIZE] [--json] [--plot DIR]

``compare`` runs the trace once per allocator, each in its own process (a
machine per allocator, booted with ``slab=``), and prints one table side by
side.  A progress bar (ops, ops/s, ETA) goes to standard error on a terminal
only, never with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from emu.build.abi import define
from emu.core.errors import BadArgument, KmemuError
from emu.kernel import tracetext
from emu.kernel.slab_select import with_slab_choice
from emu.machine.core import Machine
from emu.machine.replay import ReplayError, ReplayResult
from emu.machine.replay_report import human

SLABS = ("slub", "slab", "slob")


def machine_kwargs(a: argparse.Namespace, slab: str | None) -> dict[str, object]:
    """Machine(...) arguments from the command line; ``slab`` passes through as
    ``Machine(slab=...)``."""
    kw: dict[str, object] = {"cmdline": a.cmdline}
    if getattr(a, "e820", None):
        kw["e820"] = a.e820
    else:
        kw["mem"] = a.mem
    if slab is not None:
        if slab not in SLABS:
            raise BadArgument(f"--slab must be one of {', '.join(SLABS)}, got {slab!r}")
        kw["slab"] = slab
        # the command line against this allocator (slab_debug= letters, a slab= of its
        # own) now, so compare refuses before it boots any machine, naming which
        try:
            with_slab_choice(str(a.cmdline or ""), slab, None, False)
        except BadArgument as e:
            raise BadArgument(f"{slab}: {e}") from None
    return kw


class ProgressBar:
    """``[#####-----] 40,960/100,000 ops  1,234,567 ops/s  ETA 3.1 s`` on one terminal line."""

    def __init__(self, stream=sys.stderr, width: int = 30) -> None:  # noqa: ANN001
        self.stream, self.width = stream, width
        self.t0 = time.perf_counter()

    def __call__(self, done: int, total: int, replay_seconds: float) -> None:
        wall = time.perf_counter() - self.t0
        fill = self.width * done // max(total, 1)
        rate = done / replay_seconds if replay_seconds > 0 else 0.0
        eta = wall * (total - done) / done if done else 0.0
        self.stream.write(f"\r[{'#' * fill}{'-' * (self.width - fill)}] {done:,}/{total:,} ops  "
                          f"{rate:,.0f} ops/s  ETA {eta:.1f} s ")
        self.stream.flush()
        if done >= total:
            self.stream.write("\n")


def _check_trace(path: str) -> None:
    if not Path(path).is_file():
        raise BadArgument(f"no trace file {path!r}")


def _plotter():  # -> plot_replay(timeline, outdir) -> list[Path]
    """The pictures part's plot function (issue 16 §3), checked before any replay runs."""
    try:
        from emu.frontend.plots import plot_replay
    except ImportError as e:
        raise BadArgument(f"--plot needs emu.frontend.plots.plot_replay and matplotlib "
                          f"(pip install 'kmemu[plot]'): {e}") from None
    return plot_replay


def _plot(timeline: list[dict], outdir: str) -> list[Path]:
    Path(outdir).mkdir(parents=True, exist_ok=True)
    return list(_plotter()(timeline, Path(outdir)))


#: with --plot, the timeline (one sample per batch) gets at least this many samples
PLOT_SAMPLES = 200
PLOT_MIN_BATCH = 16  # ... but no batch smaller than this (each is a guest entry)


def plot_batch(n_events: int, ring: int) -> int:
    """Ops per batch for a replay that will be drawn: ``ring`` (the fastest) when the
    trace is long enough for PLOT_SAMPLES samples at that size, smaller otherwise, so
    a short trace's charts are curves rather than a single point."""
    return max(PLOT_MIN_BATCH, min(ring, -(-n_events // PLOT_SAMPLES)))


def _parse(trace: str) -> tracetext.Trace:
    try:
        return tracetext.parse_lines(tracetext.open_text(Path(trace)))
    except (OSError, EOFError) as e:
        raise ReplayError(f"cannot read trace {trace!s:.200}: {e}") from None


def run_one(kw: dict[str, object], trace: str, pages: bool, progress: bool,
            folded: str | None = None, svg: str | None = None,
            plot: str | None = None) -> dict[str, object]:
    """Boot a machine and replay (a worker of ``compare``, or ``replay`` itself); with
    ``folded``/``svg``, under ``m.profile()``: the guest's folded stacks / flame graph
    of the whole replay written to those files; with ``plot`` (a directory), in batches
    small enough for a timeline of PLOT_SAMPLES samples (see :func:`plot_batch`), and
    the physical memory map after the replay drawn there (``memory_map.png``; the dict's
    ``memory_map`` holds the census's pages per owner behind its colours)."""
    m = Machine.booted(**kw)  # type: ignore[arg-type]
    bar = ProgressBar() if progress else None
    src: str | tracetext.Trace = trace
    opts: dict[str, object] = {"pages": pages, "progress": bar}
    if plot:
        src = _parse(trace)
        opts["batch"] = plot_batch(len(src.events), define("KMEMU_REPLAY_RING"))
    if folded or svg:
        from emu.machine.replay import measure_limits

        with m.profile() as prof:  # the replay's stacks; the limit's loops run after
            r = m.replay(src, **opts, measure=False)  # type: ignore[arg-type]
        measure_limits(m, r)
        if folded:
            Path(folded).write_text(prof.folded)
        if svg:
            prof.svg(svg, title=f"replay of {Path(trace).name}: guest instructions")
    else:
        r = m.replay(src, **opts)  # type: ignore[arg-type]
    d = r.to_dict()
    if plot:
        d.update(_draw_map(m, Path(plot)))
    d["slab"] = str(kw.get("slab", "slub"))
    return d


def _draw_map(m: Machine, outdir: Path) -> dict[str, object]:
    """The census after the replay, drawn as ``kmemu map --png`` draws it."""
    from emu.frontend.pictures.png import write_png

    outdir.mkdir(parents=True, exist_ok=True)
    census = m.memory_map()
    grid = write_png(census, outdir / "memory_map.png")
    return {"memory_map": census.counts(), "memory_map_picture": str(outdir / "memory_map.png"),
            "memory_map_header": grid.header()}


#: run_one's keys that are not ReplayResult fields
_PICTURE_KEYS = ("memory_map", "memory_map_picture", "memory_map_header")


def cmd_replay(a: argparse.Namespace) -> int:
    _check_trace(a.trace)
    if a.plot:
        _plotter()
    kw = machine_kwargs(a, a.slab)
    tty = sys.stderr.isatty() and not a.json
    try:
        d = run_one(kw, a.trace, not a.no_pages, tty, a.folded, a.svg, plot=a.plot)
    except KeyboardInterrupt:  # between two batches (each runs for milliseconds)
        print("\nkmemu replay: interrupted", file=sys.stderr)
        return 130
    r = ReplayResult(**{k: v for k, v in d.items() if k not in _PICTURE_KEYS})
    if a.plot:
        paths = _plot(r.timeline, a.plot) + [Path(str(d["memory_map_picture"]))]
        if not a.json:
            print("\n".join(f"wrote {p}" for p in paths))
    for what, path in (("folded stacks", a.folded), ("flame graph", a.svg)):
        if path and not a.json:
            print(f"wrote {what} to {path}")
    if a.json:
        print(json.dumps(d, indent=1))
    else:
        print(r.report(), end="")
    return 0


#: (row label, how to get it from a result dict)
_ROWS = [
    ("ops replayed", lambda d: f"{d['ops_run']:,}"),
    ("ops/s", lambda d: f"{d['ops_per_second']:,.0f}"),
    ("fraction of emulator limit", lambda d: f"{d['limit_fraction']:.0%}"),
    ("peak held", lambda d: human(d["peak_held"])),
    ("final held", lambda d: human(d["final_held"])),
    ("final requested", lambda d: human(d["requested"])),
    ("final allocated", lambda d: human(d["allocated"])),
    ("waste (held - requested)", lambda d: human(d["final_held"] - d["requested"])),
    ("failures", lambda d: str(sum(sum(v.values()) for v in d["failures"].values()))),
    ("insns/op kmalloc", lambda d: _ipo(d, "kmalloc")),
    ("insns/op kfree", lambda d: _ipo(d, "kfree")),
    ("insns/op kmem_cache_alloc", lambda d: _ipo(d, "kmem_cache_alloc")),
    ("insns/op kmem_cache_free", lambda d: _ipo(d, "kmem_cache_free")),
    ("insns/op mm_page_alloc", lambda d: _ipo(d, "mm_page_alloc")),
    ("insns/op mm_page_free", lambda d: _ipo(d, "mm_page_free")),
]


def _ipo(d: dict, k: str) -> str:
    v = d["insns_per_op"].get(k)
    return "-" if v is None else f"{v:.1f}"


def _frag_rows(results: dict[str, dict]) -> list[tuple[str, list[str]]]:
    """Unusable free space index per order of the largest zone, per allocator."""
    rows = []
    for order in (0, 3, 6, 9, 10):
        cells = []
        for d in results.values():
            zones = d["unusable_index"]
            z = next((n for n in ("Normal", "DMA32", "DMA") if n in zones), None)
            cells.append(f"{zones[z][order]:.3f}" if z else "-")
        rows.append((f"unusable index order {order}", cells))
    return rows


def format_compare(results: dict[str, dict]) -> str:
    names = list(results)
    rows = [(label, [fn(results[n]) for n in names]) for label, fn in _ROWS]
    rows += _frag_rows(results)
    w0 = max(len(label) for label, _ in rows)
    ws = [max(len(n), *(len(r[1][i]) for r in rows)) for i, n in enumerate(names)]
    out = ["".ljust(w0) + "".join(f"  {n.upper():>{w}}" for n, w in zip(names, ws, strict=True))]
    for label, cells in rows:
        out.append(label.ljust(w0) + "".join(f"  {c:>{w}}" for c, w in zip(cells, ws, strict=True)))
    return "\n".join(out) + "\n"


def cmd_compare(a: argparse.Namespace) -> int:
    _check_trace(a.trace)
    slabs = [s.strip() for s in a.slab.split(",") if s.strip()]
    if not slabs or len(set(slabs)) != len(slabs):
        raise BadArgument(f"--slab takes distinct allocators separated by commas, got {a.slab!r}")
    kws = {s: machine_kwargs(a, s) for s in slabs}  # every name checked before any boot
    if a.plot:
        _plotter()
    results: dict[str, dict] = {}
    jobs = max(1, min(len(slabs), a.jobs or os.cpu_count() or 1))
    if jobs == 1:
        for s in slabs:
            results[s] = run_one(kws[s], a.trace, not a.no_pages, False,
                                 plot=str(Path(a.plot) / s) if a.plot else None)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futs = {s: pool.submit(run_one, kws[s], a.trace, not a.no_pages, False,
                                   plot=str(Path(a.plot) / s) if a.plot else None)
                    for s in slabs}
            for s in slabs:
                try:
                    results[s] = futs[s].result()
                except KmemuError as e:
                    raise type(e)(f"{s}: {e}") from None
    if a.plot:
        for s, d in results.items():
            paths = _plot(d["timeline"], str(Path(a.plot) / s)) + [
                Path(str(d["memory_map_picture"]))]
            if not a.json:
                print("\n".join(f"wrote {p}" for p in paths))
    if a.json:
        print(json.dumps(results, indent=1))
    else:
        print(format_compare(results), end="")
    return 0


def add_parsers(sub: argparse._SubParsersAction, machine_opts) -> None:  # noqa: ANN001
    """Register ``replay`` and ``compare`` (cli.py calls this with its machine_opts)."""
    r = sub.add_parser("replay", help="replay a Linux kmem trace (ftrace text or trace-cmd "
                       "report, gzip or plain) inside the guest and report memory and speed")
    r.add_argument("trace", metavar="TRACE", help="ftrace text or trace-cmd report, gzip or plain")
    machine_opts(r, kasan=False)  # --mem/--e820, --cmdline, --slab
    r.add_argument("--no-pages", action="store_true",
                   help="leave out mm_page_* events (the traced kernel's own slab pages are "
                        "among them; the guest's slab allocator makes its own)")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.add_argument("--plot", metavar="DIR", help="draw the timeline (fragmentation, memory, "
                   "slab occupancy) and the memory map after the replay into DIR as PNGs "
                   "(needs kmemu[plot])")
    r.add_argument("--folded", metavar="FILE",
                   help="profile the replay: folded stacks of guest instructions to FILE "
                        "(flamegraph.pl / inferno / speedscope input; slow: a hook per block)")
    r.add_argument("--svg", metavar="FILE", help="profile the replay: a flame graph to FILE")
    r.set_defaults(fn=cmd_replay)

    c = sub.add_parser("compare", help="replay one trace on several slab allocators, in "
                       "parallel processes, and print them side by side")
    c.add_argument("trace", metavar="TRACE", help="ftrace text or trace-cmd report, gzip or plain")
    c.add_argument("--slab", default="slub,slab,slob",
                   help="allocators, comma-separated (default slub,slab,slob)")
    machine_opts(c, kasan=False, slab=False)
    c.add_argument("--no-pages", action="store_true", help="leave out mm_page_* events")
    c.add_argument("-j", "--jobs", type=int, default=0,
                   help="processes (default: one per allocator, at most the CPU count)")
    c.add_argument("--json", action="store_true", help="print {allocator: result} as JSON")
    c.add_argument("--plot", metavar="DIR",
                   help="draw each timeline and memory map into DIR/ALLOCATOR")
    c.set_defaults(fn=cmd_compare)
