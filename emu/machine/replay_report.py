"""Layer 5: a :class:`~emu.machine.replay.ReplayResult` as the text ``kmemu replay`` prints."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emu.machine.replay import ReplayResult


def human(n: float) -> str:
    """Bytes with a binary unit, as free(1) -h would round them."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _table(rows: list[list[str]], head: list[str]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]

    def fmt(row: list[str]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(cells))

    return [fmt(head), *(fmt(r) for r in rows)]


def format_report(r: ReplayResult, top: int = 10) -> str:
    out = [f"replay on {r.slab.upper()}: {r.ops_run} ops from {r.lines} lines: "
           f"{r.ops_per_second:,.0f} ops/s ({r.cpu_seconds:.3f} s of CPU time in ring "
           f"writes and guest runs; {r.wall_ops_per_second:,.0f} ops/s on the wall clock)"]
    if r.limit_ops_per_second:
        out.append(f"  emulator limit for these ops: {r.limit_ops_per_second:,.0f} ops/s "
                   f"({r.guest_insns_per_second / 1e6:.0f}M guest insns/s on a plain loop of "
                   f"calls, loads and stores, run between the batches / "
                   f"{r.mean_insns_per_op:.1f} insns per op): {r.limit_fraction:.0%} of it "
                   f"({r.wall_limit_fraction:.0%} on the wall clock)")
        out.append(f"  (a register-only loop runs at "
                   f"{r.register_loop_insns_per_second / 1e6:.0f}M insns/s)")
    out.append(f"  parse and compile: {r.parse_seconds:.2f} s; end to end "
               f"{r.end_to_end_seconds:.2f} s ({r.end_to_end_ops_per_second:,.0f} ops/s)")
    out.append("")
    out.append("operations by type:")
    rows = [[k, str(v), f"{r.insns_per_op[_op(k)]:.1f}" if _op(k) in r.insns_per_op else "-"]
            for k, v in r.ops.items()]
    out += ["  " + x for x in _table(rows, ["event", "ops", "insns/op"])]
    if r.lost_frees:
        out.append("  lost frees (pointer allocated again while live; freed first): "
                   f"{r.lost_frees}")
    if r.skipped:
        out.append("skipped:")
        out += [f"  {k}: {v}" for k, v in r.skipped.items()]
    if r.unreadable:
        out.append(f"unreadable: {r.first_unreadable}")
    if r.lost_events:
        out.append(f"events the tracer lost (CPU:N [LOST M EVENTS]): {r.lost_events}")
    if r.unknown_gfp:
        out.append("GFP flags kmemu does not have (left out): "
                   + ", ".join(f"{k} x{v}" for k, v in r.unknown_gfp.items()))
    out.append("failures by GFP:" if r.failures else "failures: none")
    for op, by in r.failures.items():
        out += [f"  {op} {g}: {n}" for g, n in sorted(by.items(), key=lambda kv: -kv[1])]
    out.append("")
    out.append(f"memory held (pages taken from the buddy allocator): peak {human(r.peak_held)}, "
               f"final {human(r.final_held)}")
    out.append(f"requested by live allocations: peak {human(r.peak_requested)}, "
               f"final {human(r.requested)}; allocated for them: {human(r.allocated)}")
    if r.by_cache:
        out.append("per cache at the end (live replay objects):")
        rows = [[name, str(d["objects"]), human(d["requested"]), human(d["allocated"]),
                 human(d["held"]) if "held" in d else "-",
                 f"{1 - d['requested'] / d['held']:.0%}" if d.get("held") else "-"]
                for name, d in list(r.by_cache.items())[:top * 2]]
        out += ["  " + x for x in _table(rows, ["cache", "objects", "requested", "allocated",
                                               "slabs", "waste"])]
    if r.waste_by_call_site:
        out.append("top call sites by waste (allocated - requested, all allocations):")
        rows = [[s, human(w)] for s, w in list(r.waste_by_call_site.items())[:top]]
        out += ["  " + x for x in _table(rows, ["call site", "waste"])]
    out.append("")
    out.append("/sys/kernel/debug/extfrag/unusable_index:")
    out.append(r.unusable_text.rstrip("\n"))
    out.append("/sys/kernel/debug/extfrag/extfrag_index:")
    out.append(r.extfrag_text.rstrip("\n"))
    out.append("/proc/buddyinfo:")
    out.append(r.buddyinfo.rstrip("\n"))
    out.append("/proc/slabinfo:")
    out.append(r.slabinfo.rstrip("\n"))
    return "\n".join(out) + "\n"


def _op(event: str) -> str:
    """The guest op an event runs as (insns_per_op's keys)."""
    return {"kmalloc_node": "kmalloc", "kmem_cache_alloc_node": "kmem_cache_alloc",
            "mm_page_free_batched": "mm_page_free"}.get(event, event)
