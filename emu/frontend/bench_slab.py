"""``kmemu bench`` rows for the three slab allocators side by side (slab=slub|slab|slob).

Layer 6.  Guest instruction counts are deterministic; memory held is what the page
allocator gave out for the workload (free pages before minus after, pcp lists
drained), so the same measure serves SLUB, SLAB and SLOB.

>>> rows = slab_allocator_rows()          # doctest: +SKIP
"""

from __future__ import annotations

from emu.frontend.bench import Row, call_insns
from emu.machine.core import Machine


def _free_pages(m: Machine) -> int:
    m.drain_all_pages()
    return sum(z.free for z in m.zones())


def allocator_figures(m: Machine) -> dict[str, float]:
    """Instructions of kmalloc(64)+kfree and kmem_cache_alloc+free (warm), and memory
    held per byte requested on a deterministic mix of 1..700-byte kmallocs."""
    snap = m.snapshot()
    m.kfree(m.kmalloc(64))  # warm
    a, p = call_insns(m, "kmalloc", 64, 0xCC0)
    f, _ = call_insns(m, "kfree", p)
    cache = m.kmem_cache_create("bench_cache", 64)
    m.call("kmem_cache_free", cache, m.call("kmem_cache_alloc", cache, 0xCC0))
    ca, obj = call_insns(m, "kmem_cache_alloc", cache, 0xCC0)
    cf, _ = call_insns(m, "kmem_cache_free", cache, obj)
    m.restore(snap)
    before = _free_pages(m)
    requested = 0
    for i in range(600):
        size = (i * 37) % 700 + 1
        m.kmalloc(size)
        requested += size
    held = (before - _free_pages(m)) * 4096
    m.restore(snap)
    return {"kmalloc": a, "kfree": f, "cache_alloc": ca, "cache_free": cf,
            "held_ratio": held / requested, "held": held, "requested": requested}


def insn_rows(m: Machine, fig: dict[str, float] | None = None) -> list[Row]:
    """The instruction rows of ``m``'s allocator (tests/test_bench_counts.py holds them): at
    the boot defaults (might_sleep's check on, inline behind its own key; no feature holds
    the hooks key) and with every debug check off (``m.alloc_debug(might_sleep=False,
    bad_page=False)``: the hooks key's nop, and a jmp over might_sleep's check in an
    allocation)."""
    fig = fig or allocator_figures(m)
    before = m.snapshot()
    m.alloc_debug(might_sleep=False, bad_page=False)
    off = allocator_figures(m)
    m.restore(before)
    name = m.slab.upper()
    return [Row(f"{name}: kmalloc(64)+kfree", fig["kmalloc"] + fig["kfree"], "insns",
                "", f"boot defaults: kmalloc {fig['kmalloc']}, kfree {fig['kfree']}"),
            Row(f"{name}: kmalloc(64)+kfree, debug off", off["kmalloc"] + off["kfree"],
                "insns", "", f"kmalloc {off['kmalloc']}, kfree {off['kfree']}"),
            Row(f"{name}: kmem_cache_alloc+free, 64-byte cache",
                fig["cache_alloc"] + fig["cache_free"], "insns", "",
                f"boot defaults: alloc {fig['cache_alloc']}, free {fig['cache_free']}"),
            Row(f"{name}: kmem_cache_alloc+free, 64-byte cache, debug off",
                off["cache_alloc"] + off["cache_free"], "insns", "",
                f"alloc {off['cache_alloc']}, free {off['cache_free']}")]


def slab_allocator_rows() -> list[Row]:
    rows = []
    for alloc in ("slub", "slab", "slob"):
        m = Machine.booted(slab=alloc)
        fig = allocator_figures(m)
        rows += insn_rows(m, fig)
        rows.append(Row(f"{alloc.upper()}: memory held / requested, mixed 1..700 B",
                        fig["held_ratio"], "x", "", f"{fig['requested']} B requested, "
                        f"{fig['held']} B of pages"))
    return rows
