"""Pictures of a replay (issue 16 part 3): what happened over the run, from its timeline.

A replay's ``timeline`` (``ReplayResult.timeline``; the format is shared with
the replay code) is a list of samples, one per batch of operations::

    {"op": ops done so far, "held": bytes held by live objects and pages,
     "requested": bytes requested by live objects,
     "by_cache": {cache: bytes held in its slabs},
     "free_by_order": [free blocks per order 0..10],
     "unusable": [unusable free space index per order 0..10, 0..1],
     "slab_occupancy": {cache: [active_objs, num_objs]}}

:func:`replay_charts` turns it into the data of three charts (pure, no
matplotlib): ``fragmentation`` (the unusable free space index over time, one
line per order), ``memory`` (held and requested over time, and one line per
cache: the :data:`TOP_CACHES` largest by peak, the rest summed), and
``slab_occupancy`` (active vs total objects per cache at the end).
:func:`plot_replay` draws exactly those with matplotlib (the ``plot`` extra)
and can report what it drew, read back from the axes.

>>> paths = plot_replay(result.timeline, "out", fmt="svg")   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emu.core.errors import BadArgument
from emu.frontend.pictures.mpl import pyplot

NR_ORDERS = 11
MIB = 1 << 20
TOP_CACHES = 12  # caches drawn as their own line / bar; the rest are summed
FORMATS = ("png", "svg")
MARKED_SAMPLES = 40  # timelines this short get a marker per sample
SAMPLE_KEYS = ("op", "held", "requested", "by_cache", "free_by_order", "unusable",
               "slab_occupancy")


@dataclass
class Chart:
    """One picture's data: line series over ``x`` or bars over ``categories``."""

    name: str  # the file's stem
    title: str
    xlabel: str
    ylabel: str
    x: list[float] = field(default_factory=list)  # lines: the x values
    lines: dict[str, list[float]] = field(default_factory=dict)  # label -> y values
    categories: list[str] = field(default_factory=list)  # bars: one per category
    bars: dict[str, list[float]] = field(default_factory=dict)  # label -> height per category


def check_timeline(timeline: object) -> list[dict[str, Any]]:
    """The timeline, or a one-line BadArgument naming the first thing wrong with it."""
    if not isinstance(timeline, list) or not timeline:
        raise BadArgument("a replay timeline must be a non-empty list of samples, got "
                          f"{type(timeline).__name__}{'' if timeline else ' (empty)'}")
    for i, s in enumerate(timeline):
        if not isinstance(s, dict):
            raise BadArgument(f"timeline sample {i} is a {type(s).__name__}, not a dict")
        missing = [k for k in SAMPLE_KEYS if k not in s]
        if missing:
            raise BadArgument(f"timeline sample {i} has no {', '.join(missing)}")
        for k in ("free_by_order", "unusable"):
            if len(s[k]) != NR_ORDERS:
                raise BadArgument(f"timeline sample {i}: {k} has {len(s[k])} orders, "
                                  f"not {NR_ORDERS}")
    return timeline


def _top(names: dict[str, float], n: int) -> list[str]:
    return [k for k, _ in sorted(names.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def replay_charts(timeline: list[dict[str, Any]]) -> list[Chart]:
    """The three charts' data (see the module docstring)."""
    tl = check_timeline(timeline)
    ops = [float(s["op"]) for s in tl]
    frag = Chart("fragmentation", "Unusable free space index per order", "operations",
                 "unusable free space index (0 = all usable, 1 = none)", x=ops,
                 lines={f"order {o}": [float(s["unusable"][o]) for s in tl]
                        for o in range(NR_ORDERS)})

    peak: dict[str, float] = {}
    for s in tl:
        for name, b in s["by_cache"].items():
            peak[name] = max(peak.get(name, 0.0), float(b))
    top = _top(peak, TOP_CACHES)
    rest = [n for n in peak if n not in top]
    lines = {"held (total)": [s["held"] / MIB for s in tl],
             "requested (total)": [s["requested"] / MIB for s in tl]}
    for name in top:
        lines[f"cache {name}"] = [s["by_cache"].get(name, 0) / MIB for s in tl]
    if rest:
        lines[f"other caches ({len(rest)})"] = [
            sum(s["by_cache"].get(n, 0) for n in rest) / MIB for s in tl]
    memory = Chart("memory", "Memory held over time", "operations", "MiB", x=ops, lines=lines)

    # caches whose counts the allocator keeps (SLOB has no per-cache object counts)
    final = {n: v for n, v in tl[-1]["slab_occupancy"].items()
             if all(isinstance(x, (int, float)) for x in v)}
    order = _top({n: float(v[1]) for n, v in final.items()}, TOP_CACHES)
    rest = [n for n in final if n not in order]
    cats = list(order) + ([f"other ({len(rest)})"] if rest else [])
    active = [float(final[n][0]) for n in order] + ([float(sum(final[n][0] for n in rest))]
                                                     if rest else [])
    total = [float(final[n][1]) for n in order] + ([float(sum(final[n][1] for n in rest))]
                                                    if rest else [])
    occ = Chart("slab_occupancy", f"Slab occupancy after {int(ops[-1])} operations", "objects",
                "cache", categories=cats, bars={"num_objs": total, "active_objs": active})
    return [frag, memory, occ]


def plot_replay(timeline: list[dict[str, Any]], outdir: str | Path, fmt: str = "png",
                drawn: dict[str, dict[str, Any]] | None = None) -> list[Path]:
    """Write ``fragmentation``, ``memory`` and ``slab_occupancy`` pictures (``fmt``
    png or svg) into ``outdir``; returns their paths.  With ``drawn`` (a dict), each
    chart's name maps to what its axes hold after drawing: ``{label: (xs, ys)}`` for
    lines, ``{label: heights}`` for bars (read back from matplotlib, not copied)."""
    if fmt not in FORMATS:
        raise BadArgument(f"plot format must be png or svg, got {fmt!r}")
    charts = replay_charts(timeline)
    plt = pyplot("plotting a replay")
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise BadArgument(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for chart in charts:
        path = out / f"{chart.name}.{fmt}"
        got = _draw(plt, chart, path)
        if drawn is not None:
            drawn[chart.name] = got
        paths.append(path)
    return paths


def _draw(plt: Any, chart: Chart, path: Path) -> dict[str, Any]:
    fig, ax = plt.subplots(figsize=(10, 6))
    try:
        got: dict[str, Any] = {}
        if chart.lines:
            cmap = plt.get_cmap("viridis" if chart.name == "fragmentation" else "tab20")
            n = len(chart.lines)
            # a line of one sample draws nothing: few samples are drawn as points too
            mark = {"marker": "o", "markersize": 3} if len(chart.x) <= MARKED_SAMPLES else {}
            for i, (label, ys) in enumerate(chart.lines.items()):
                if label.endswith("(total)"):  # held solid, requested dashed, both black
                    ax.plot(chart.x, ys, label=label, color="black", linewidth=2,
                            linestyle="-" if label.startswith("held") else "--", **mark)
                    continue
                colour = cmap(i / max(1, n - 1)) if chart.name == "fragmentation" else cmap(i)
                ax.plot(chart.x, ys, label=label, color=colour, linewidth=1.2, **mark)
            for line in ax.get_lines():
                got[line.get_label()] = ([float(v) for v in line.get_xdata()],
                                         [float(v) for v in line.get_ydata()])
            if chart.name == "fragmentation":
                ax.set_ylim(-0.02, 1.02)
        elif not chart.categories:
            ax.text(0.5, 0.5, "no slab cache has object counts to show", ha="center",
                    transform=ax.transAxes)
            got = {label: [] for label in chart.bars}
        else:
            ypos = list(range(len(chart.categories)))
            for label, heights in chart.bars.items():
                alpha = 0.35 if label == "num_objs" else 0.9
                bars = ax.barh(ypos, heights, label=label, alpha=alpha)
                got[label] = [float(b.get_width()) for b in bars]
            ax.set_yticks(ypos, chart.categories, fontsize=8)
            ax.invert_yaxis()
            for y, (a, t) in enumerate(zip(chart.bars["active_objs"], chart.bars["num_objs"],
                                           strict=True)):
                ax.text(t, y, f" {a / t:.0%}" if t else " -", va="center", fontsize=7)
        ax.set_title(chart.title)
        ax.set_xlabel(chart.xlabel)
        ax.set_ylabel(chart.ylabel)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
        fig.savefig(path, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return got
