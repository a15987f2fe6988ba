"""The tracepoints in the running kernel: each event where Linux raises it, with
the values the allocator used; switching, globs, the ring buffer's overwrite
and lost counts, boot parameters, the deterministic counter clock, and that
events that are off cost nothing."""

from __future__ import annotations

import pytest

from emu import Machine
from emu.core.errors import BadArgument
from emu.frontend.pytest_plugin import booted_machine

GFP_KERNEL, GFP_ATOMIC = 0xCC0, 0x820
VMEMMAP = 0xFFFFEA0000000000


@pytest.fixture
def m() -> Machine:
    m = booted_machine(mem="64M")
    m.tracing.hash_ptr = False  # compare addresses (no_hash_pointers)
    return m


def lines(m: Machine) -> list[str]:
    return [ln for ln in m.tracing.read().splitlines() if not ln.startswith("#")]


def text(ln: str) -> str:
    """A line after its timestamp: ``kmalloc: call_site=...``."""
    return ln.split(": ", 1)[1]


def test_kmalloc_and_kfree(m: Machine) -> None:
    assert m.tracing.enable("kmem:kmalloc", "kmem:kfree") == ["kmem:kmalloc", "kmem:kfree"]
    p = m.kmalloc(100)
    m.kfree(p)
    site = m.symbolize(m.symbol("kmemu_call_return") + 1)
    assert [text(x) for x in lines(m)] == [
        f"kmalloc: call_site={site} ptr={p:016x} bytes_req=100 bytes_alloc=128 "
        "gfp_flags=GFP_KERNEL node=-1 accounted=false",
        f"kfree: call_site={site} ptr={p:016x}"]
    ln = lines(m)[0]
    assert ln.startswith("          <idle>-0       [000] ..... ")


def test_kmem_cache_alloc_and_free(m: Machine) -> None:
    m.tracing.enable("kmem:kmem_cache_*")
    s = m.kmem_cache_create("evt_cache", 72)
    p = m.call("kmem_cache_alloc", s, GFP_KERNEL)
    m.call("kmem_cache_free", s, p)
    c = next(c for c in m.caches() if c.name == "evt_cache")
    got = [text(x) for x in lines(m) if "ptr=" + f"{p:016x}" in x]
    site = m.symbolize(m.symbol("kmemu_call_return") + 1)
    assert got == [
        f"kmem_cache_alloc: call_site={site} ptr={p:016x} bytes_req=72 bytes_alloc={c.size} "
        "gfp_flags=GFP_KERNEL node=-1 accounted=false",
        f"kmem_cache_free: call_site={site} ptr={p:016x} name=evt_cache"]


def test_large_kmalloc_is_pages_and_kmalloc(m: Machine) -> None:
    m.tracing.enable("kmem:kmalloc", "kmem:kfree", "kmem:mm_page_alloc", "kmem:mm_page_free")
    p = m.kmalloc(20000)
    m.kfree(p)
    pfn = m.translate(p) >> 12
    got = [text(x) for x in lines(m)]
    site = m.symbolize(m.symbol("kmemu_call_return") + 1)
    page = f"{VMEMMAP + pfn * 64:016x}"
    assert got == [
        f"mm_page_alloc: page={page} pfn={pfn:#x} order=3 migratetype=0 "
        "gfp_flags=GFP_KERNEL|__GFP_COMP",
        f"kmalloc: call_site={site} ptr={p:016x} bytes_req=20000 bytes_alloc=32768 "
        "gfp_flags=GFP_KERNEL node=-1 accounted=false",
        f"kfree: call_site={site} ptr={p:016x}",
        f"mm_page_free: page={page} pfn={pfn:#x} order=3"]


def test_kfree_null_is_traced_as_linux(m: Machine) -> None:
    m.tracing.enable("kfree")
    m.call("kfree", 0)
    assert text(lines(m)[0]).endswith("ptr=0000000000000000")


def test_page_events_and_drain(m: Machine) -> None:
    m.tracing.enable("kmem:mm_page_*")
    pages = [m.alloc_pages(GFP_KERNEL) for _ in range(40)]  # empties the pcp list: a refill
    for pg in pages:
        m.free_pages(pg)  # fills it past pcp->high: a drain
    m.call("drain_all_pages")
    names = [text(x).split(":")[0] for x in lines(m)]
    assert names.count("mm_page_alloc") == 40 and names.count("mm_page_free") == 40
    assert "mm_page_alloc_zone_locked" in names and "mm_page_pcpu_drain" in names
    zl = next(text(x) for x in lines(m) if "zone_locked" in x)
    assert "order=0 migratetype=0 percpu_refill=1" in zl
    ln = next(x for x in lines(m) if "zone_locked" in x)
    assert " d..1. " in ln  # under zone->lock: interrupts off, preemption disabled


def test_vmalloc_events(m: Machine) -> None:
    m.tracing.enable("vmalloc:*")
    p = m.call("vmalloc", 4096)
    m.call("vfree", p)
    m.call("vm_unmap_aliases")
    got = [text(x) for x in lines(m)]
    vstart, vend = 0xFFFFC90000000000, 0xFFFFE8FFFFFFFFFF
    assert got[0] == (f"alloc_vmap_area: va_start: {p} size=8192 align=4096 "
                      f"vstart={vstart:#x} vend={vend:#x} failed=0")
    assert got[1].startswith(f"free_vmap_area_noflush: va_start={p:#x} nr_lazy=")
    assert got[1].endswith("nr_lazy_max=8192")
    assert got[2].startswith("purge_vmap_area_lazy: start=") and "num_purged=" in got[2]
    assert int(got[2].rsplit("=", 1)[1]) >= 1


def test_mm_page_free_batched(m: Machine) -> None:
    m.tracing.enable("kmem:mm_page_free", "kmem:mm_page_free_batched")
    assert m.call("trace_test_free_batched", 3) == 0  # three pages, one free_unref_page_list
    names = [text(x).split(":")[0] for x in lines(m)]
    assert names == ["mm_page_free"] * 3 + ["mm_page_free_batched"] * 3  # Linux's order
    assert all(text(x).endswith("order=0") for x in lines(m))
    pfns = [r.fields["pfn"] for r in m.tracing.events()]
    assert pfns[:3] == pfns[3:]


def test_enable_disable_and_globs(m: Machine) -> None:
    t = m.tracing
    assert t.enabled_events == []
    assert set(t.enable("kmem:mm_page_*")) == {
        "kmem:mm_page_free", "kmem:mm_page_free_batched", "kmem:mm_page_alloc",
        "kmem:mm_page_alloc_zone_locked", "kmem:mm_page_pcpu_drain", "kmem:mm_page_alloc_extfrag"}
    assert t.enable("vmalloc") == ["vmalloc:alloc_vmap_area", "vmalloc:purge_vmap_area_lazy",
                                   "vmalloc:free_vmap_area_noflush"]
    t.disable("kmem:*")
    assert t.enabled_events == ["vmalloc:alloc_vmap_area", "vmalloc:purge_vmap_area_lazy",
                                "vmalloc:free_vmap_area_noflush"]
    t.disable()
    assert t.enabled_events == []
    assert len(t.enable("*:*")) == len(t.available_events) == 13
    keys = {k.name: k for k in m.static_keys()}
    assert all(keys[f"__tracepoint_{e.split(':')[1]}"].enabled for e in t.available_events)
    assert all(k.consistent for k in keys.values())
    t.disable("*")
    p = m.kmalloc(64)
    m.kfree(p)
    assert lines(m) == []  # nothing is recorded once off
    with pytest.raises(BadArgument, match="no trace event matches 'kmem:nope'"):
        t.enable("kmem:nope")
    with pytest.raises(BadArgument):
        t.enable()


def test_clear_and_events(m: Machine) -> None:
    m.tracing.enable("kmalloc")
    m.kmalloc(8)
    (rec,) = m.tracing.events()
    assert rec.name == "kmem:kmalloc" and rec.fields["bytes_req"] == 8
    assert rec.fields["bytes_alloc"] == 8 and rec.fields["gfp_flags"] == GFP_KERNEL
    m.tracing.clear()
    assert m.tracing.events() == [] and m.tracing.stats()["written"] == 0


def test_ring_overwrite_and_lost_counts(m: Machine) -> None:
    t = m.tracing
    t.buffer_size_kb = 4  # two buffer pages: 4096 / 4080 rounded up
    t.enable("kfree")
    for _ in range(300):  # kfree records are 32 bytes: 127 a page
        m.call("kfree", 0)
    s = t.stats()
    assert s["overrun"] > 0 and s["entries"] + s["overrun"] == 300 == s["written"]
    assert s["entries"] <= 2 * 127
    head = t.read().splitlines()
    assert f"# entries-in-buffer/entries-written: {s['entries']}/300   #P:1" in head
    assert len(t.events()) == s["entries"]
    # the newest survive: the last record is the 300th
    pipe = t.read_pipe().splitlines()
    assert pipe[0] == f"CPU:0 [LOST {s['overrun']} EVENTS]"
    assert len(pipe) == s["entries"] + 1
    assert t.read_pipe() == ""  # consumed
    m.call("kfree", 0)
    assert len(t.read_pipe().splitlines()) == 1
    # overwrite off: a full buffer drops the new events instead
    t.clear()
    t.overwrite = False
    for _ in range(300):
        m.call("kfree", 0)
    s = t.stats()
    assert s["overrun"] == 0 and s["dropped"] == 300 - s["entries"] > 0


def test_counter_clock_is_the_same_on_two_runs() -> None:
    def run() -> list[tuple[int, str]]:
        m = Machine.booted(mem="32M", cmdline="trace_event=kmem:kmalloc,kmem:kfree "
                                              "trace_clock=counter")
        for n in (8, 64, 500):
            m.kfree(m.kmalloc(n))
        assert m.tracing.clock == "counter"
        return [(r.ts, r.event) for r in m.tracing.events()]

    a, b = run(), run()
    assert a == b and len(a) == 6
    assert all(x[0] < y[0] for x, y in zip(a, a[1:], strict=False))  # instructions increase


def test_boot_parameters() -> None:
    m = Machine.booted(mem="32M", cmdline="trace_event=kmem:kmalloc,vmalloc:,kmem:nope "
                                          "trace_buf_size=64k")
    assert m.tracing.enabled_events == ["kmem:kmalloc", "vmalloc:alloc_vmap_area",
                                        "vmalloc:purge_vmap_area_lazy",
                                        "vmalloc:free_vmap_area_noflush"]
    assert "Failed to enable trace event: kmem:nope" in m.console
    assert m.tracing.buffer_size_kb == 64
    assert m.tracing.clock == "local"
    p = m.kmalloc(32)
    assert any("ptr=" in x and "bytes_req=32" in x for x in lines(m))
    assert m.tracing.hash_ptr  # Linux 6.1 hashes %p in trace output by default
    assert f"{p:016x}" not in m.tracing.read()
    n = Machine(mem="32M", cmdline="no_hash_pointers")
    assert not n.tracing.hash_ptr


def test_snapshot_restores_switches_and_buffer(m: Machine) -> None:
    snap = m.snapshot()
    m.tracing.enable("kmalloc")
    m.kmalloc(16)
    m.restore(snap)
    assert m.tracing.enabled_events == [] and m.tracing.events() == []


def test_irq_context_columns(m: Machine) -> None:
    m.tracing.enable("kfree")
    m.call("kfree", 0, context="irqs_off")
    m.call("kfree", 0, context="irq")
    a, b = lines(m)
    assert a[31:36] == "d...." and b[31:36] == "d.h.."


def test_off_tracepoints_cost_nothing(m: Machine) -> None:
    def cost() -> int:
        p = m.kmalloc(64)
        m.kfree(p)
        with m.count_instructions() as n:
            p = m.kmalloc(64)
            m.kfree(p)
        return n[0]

    before = cost()
    m.tracing.enable("kmem:*", "vmalloc:*")
    on = cost()
    m.tracing.disable()
    assert cost() == before < on  # off again: the same instructions as never on
    keys = {k.name: k for k in m.static_keys()}
    assert not any(k.enabled for n, k in keys.items() if n.startswith("__tracepoint_"))


def test_bad_arguments(m: Machine) -> None:
    with pytest.raises(BadArgument, match="unknown trace clock 'tsc'"):
        m.tracing.clock = "tsc"
    with pytest.raises(BadArgument, match="buffer_size_kb"):
        m.tracing.buffer_size_kb = 0
    with pytest.raises(BadArgument, match="overwrite"):
        m.tracing.overwrite = 1  # type: ignore[assignment]
    assert m.tracing.clock == "local" and m.tracing.overwrite


def test_extfrag_when_unmovable_steals_from_movable(m: Machine) -> None:
    m.tracing.enable("kmem:mm_page_alloc_extfrag")
    for _ in range(5000):  # unmovable pages until the Unmovable blocks run out
        m.alloc_pages(GFP_KERNEL)
        if m.tracing.stats()["entries"]:
            break
    (rec,) = m.tracing.events()
    f = rec.fields
    assert f["alloc_order"] == 0 and f["alloc_migratetype"] == 0  # GFP_KERNEL: Unmovable
    assert f["fallback_migratetype"] in (1, 2)
    block_type = int(m.var("pageblock_flags")[f["pfn"] >> 9]) & 0x7
    assert f["change_ownership"] == int(block_type == 0)  # the block was claimed, or not
    ln = lines(m)[0]
    assert f"fragmenting={int(f['fallback_order'] < 9)} " in ln and " d..1. " in ln


def test_events_inside_a_batch_are_in_order(m: Machine) -> None:
    m.tracing.enable("kmalloc", "kfree")
    m.tracing.clock = "counter"
    try:
        ptrs = m.batch([("kmalloc", n, GFP_KERNEL) for n in (8, 16, 32)])
        m.batch([("kfree", p) for p in ptrs])
        recs = m.tracing.events()
        assert [(r.event, r.fields["ptr"]) for r in recs] == \
            [("kmalloc", p) for p in ptrs] + [("kfree", p) for p in ptrs]
        assert [r.fields["bytes_req"] for r in recs[:3]] == [8, 16, 32]
        assert all(a.ts < b.ts for a, b in zip(recs, recs[1:], strict=False))
        # a batch's call site is the batch loop, where the host's calls say kmemu_call_return
        assert m.symbolize(recs[0].fields["call_site"]).startswith("kmemu_batch_run+")
    finally:
        m.tracing.clock = "local"
