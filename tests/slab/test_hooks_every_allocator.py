"""SLAB and SLOB run SLUB's optional hooks (kernel/slab/slab_hooks.h) at Linux's places:
kmemleak, the kmem trace events, failslab / fail-nth, KUnit's leak tracking and
might_sleep's check give what they give under SLUB, with each allocator's own sizes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from emu.check import kunit
from emu.frontend.pytest_plugin import booted_machine
from emu.kernel import tracetext

TESTS = Path(__file__).resolve().parent.parent
LEAKY = str(TESTS / "kmemleak" / "src" / "leaky.c")
WIDGETS = str(TESTS / "check" / "src" / "widgets.c")
KTAP_SAMPLE = TESTS / "kunit" / "src" / "ktap_sample.c"
OTHERS = ("slab", "slob")
GFP_KERNEL = 0xCC0


# ----------------------------------------------------------------------------- kmemleak

@pytest.mark.parametrize("slab", OTHERS)
def test_kmemleak_idle_boot_and_self_tests_report_nothing(slab: str) -> None:
    m = booted_machine(slab=slab, kmemleak=True)
    assert m.slab == slab and m.kmemleak_enabled()
    assert m.kmemleak_scan() == []
    assert m.call("kmemu_selftest") == 0
    assert m.kmemleak_scan() == []
    assert "suspected memory leaks" not in m.console


# kmemleak's size: the cache's object size (Linux's kmemleak_alloc_recursive in SLUB's and
# SLAB's post-alloc hook), SLOB's kmalloc: the request (its __do_kmalloc_node)
KMALLOC_100_LEAK_SIZE = {"slub": 128, "slab": 128, "slob": 100}


@pytest.mark.parametrize("slab", ("slub", *OTHERS))
def test_kmemleak_finds_leaks_and_forgets_freed_objects(slab: str) -> None:
    m = booted_machine(slab=slab, kmemleak=True)
    p = m.kmalloc(100)
    cache = m.kmem_cache_create("hooks_leak", 40)
    first = m.kmem_cache_alloc(cache)  # the first object of SLUB's active slab ...
    q = m.kmem_cache_alloc(cache)
    big = m.kmalloc(20000)  # page-allocator pages under every allocator
    leaks = m.kmemleak_scan()
    # ... leaks too: kmem_cache_cpu keeps no pointer to it (slab_base_neg, <kmemu/slub.h>)
    assert sorted((o.address, o.size) for o in leaks) == sorted(
        [(p, KMALLOC_100_LEAK_SIZE[slab]), (first, 40), (q, 40), (big, 32768)])
    m.kmem_cache_free(cache, first)
    alloc_fn = {"slub": "kmalloc", "slab": "slab_kmalloc", "slob": "slob_kmalloc"}[slab]
    [obj_p] = [o for o in leaks if o.address == p]
    assert obj_p.backtrace[-2].split("+")[0] == alloc_fn, obj_p.backtrace
    m.kfree(p)
    m.kmem_cache_free(cache, q)
    m.kfree(big)
    assert m.kmemleak_scan() == []


@pytest.mark.parametrize("slab", OTHERS)
def test_kmemleak_references_through_roots_objects_and_pages(slab: str) -> None:
    m = booted_machine(slab=slab, kmemleak=True, modules=[LEAKY])
    leaky = m.module("leaky")
    m.call("leak_hidden")  # a leaked object pointing at another: both reported
    parent, child = m.kmemleak_scan()
    assert m.read_u64(parent.address) == child.address
    m.call("keep_middle")  # a pointer into an object's middle keeps it
    m.call("keep_page")    # a struct page pointer keeps its pages
    m.call("leak_not_leak")
    assert m.kmemleak_scan(since=child.serial + 1) == []
    m.write_virt(leaky.symbol("kept_middle"), bytes(8))
    [obj] = m.kmemleak_scan(since=child.serial + 1)
    assert obj.backtrace[-2].startswith("keep_middle+")
    m.call("leak_ignore")  # never scanned: its child leaks
    new = m.kmemleak_scan(since=obj.serial + 1)
    assert [o.backtrace[-2].split("+")[0] for o in new] == ["leak_ignore"]


# ----------------------------------------------------------------------------- trace events

def bytes_alloc(slab: str, size: int) -> int:
    """bytes_alloc of kmalloc(size): SLUB's and SLAB's slot (cachep->size: SLAB has no
    kmalloc-8/16), SLOB's block with its size prefix or its whole pages."""
    if slab == "slob":
        return size + 8 if size < 4096 - 8 else 4096 << max(0, (size - 1).bit_length() - 12)
    smallest = 8 if slab == "slub" else 32
    if size <= smallest:
        return smallest
    if 64 < size <= 96:
        return 96
    if 128 < size <= 192:
        return 192
    return 1 << (size - 1).bit_length()


SIZES = (8, 24, 64, 100, 192, 500, 1000, 3000, 4090, 9000)


@pytest.mark.parametrize("slab", ("slub", *OTHERS))
def test_kmem_events_round_trip_with_the_allocators_sizes(slab: str, tmp_path: Path) -> None:
    m = booted_machine(slab=slab)
    m.tracing.buffer_size_kb = 4096
    m.tracing.clock = "counter"
    m.tracing.hash_ptr = False
    m.tracing.enable("kmem:kmalloc", "kmem:kfree", "kmem:kmem_cache_alloc",
                     "kmem:kmem_cache_free", "kmem:mm_page_alloc", "kmem:mm_page_free")
    cache = m.kmem_cache_create("hooks_trace", 40)
    m.tracing.clear()
    ptrs = m.batch([("kmalloc", s, GFP_KERNEL) for s in SIZES * 20])
    m.batch([("kfree", p) for p in ptrs])
    objs = [m.kmem_cache_alloc(cache) for _ in range(5)]
    for o in objs:
        m.kmem_cache_free(cache, o)
    m.kfree(0)  # Linux's kfree traces NULL too
    # kzalloc, kcalloc: kmalloc for their caller (Linux's are inline)
    wrapped = [m.kmalloc(40), m.kzalloc(40), m.kcalloc(5, 8)]
    for p in wrapped:
        m.kfree(p)
    text = m.tracing.read()
    trace = tracetext.parse_lines(text.splitlines())
    assert trace.unreadable == 0 and trace.lost_events == 0
    ours = [e for e in trace.events if (e.call_site or "").startswith("kmemu_batch_run")]
    assert [(e.event, e.ptr) for e in ours] == (
        [("kmalloc", p) for p in ptrs] + [("kfree", p) for p in ptrs])
    for e, size in zip(ours, SIZES * 20, strict=False):
        assert (e.bytes_req, e.bytes_alloc) == (size, bytes_alloc(slab, size)), e
        assert e.gfp_flags == "GFP_KERNEL" and e.node == -1
    cache_events = [e for e in trace.events
                    if e.event in ("kmem_cache_alloc", "kmem_cache_free") and e.ptr in objs]
    assert [(e.event, e.ptr) for e in cache_events] == (
        [("kmem_cache_alloc", o) for o in objs] + [("kmem_cache_free", o) for o in objs])
    assert all((e.bytes_req, e.bytes_alloc) == (40, 40) for e in cache_events[:5])
    assert 0 in [e.ptr for e in trace.events if e.event == "kfree"]
    sites = {e.ptr: e.call_site for e in trace.events if e.event == "kmalloc" and e.ptr in wrapped}
    assert len(sites) == 3 and len({s.split("+")[0] for s in sites.values()}) == 1, sites
    path = tmp_path / "kmem.trace"
    path.write_text(text)
    r = booted_machine(slab=slab).replay(str(path))
    assert r.unreadable == 0
    assert r.ops == dict(Counter(e.event for e in trace.events if e.event in (
        "kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free", "mm_page_alloc",
        "mm_page_free") and (e.event != "kfree" or e.ptr)))  # kfree(NULL) is no operation


# ----------------------------------------------------------------------------- fail-nth

SWEPT = ("widget_add", "widget_add_leaky", "widget_add_unchecked", "widget_add_quiet",
         "widget_add_warn", "widget_add_badfree")


def sweeps(slab: str) -> dict[str, list[tuple[object, ...]]]:
    """Each widgets.c sweep as (k, plan, site, outcome, leaks' (kind, size, site))."""
    m = booted_machine(slab=slab, modules=[WIDGETS])
    out = {}
    for fn in SWEPT:
        runs = m.sweep_failures(fn, 4, roots=["widgets"])
        out[fn] = [(r.k, r.plan, r.site, r.outcome,
                    [(lk.kind, lk.size, lk.site) for lk in r.leaks]) for r in runs]
    return out


@pytest.mark.parametrize("slab", OTHERS)
def test_fail_nth_sweeps_match_slub(slab: str) -> None:
    got = sweeps(slab)
    assert [run[3] for run in got["widget_add_leaky"]] == ["ok", "ok", "ok", "leak"]
    assert got == sweeps("slub")


# what fail-nth counts for one call: kmalloc's large sizes are pages under SLUB and SLOB
# (the page allocator's one allocation) and a kmalloc-32k object under SLAB (its classes
# go to 4M); SLOB's page-sized cache objects take SLOB's own pages, one slab allocation
COUNTED = {"slub": ["slab", "pages", "slab"], "slab": ["slab", "slab", "slab"],
           "slob": ["slab", "pages", "slab"]}


@pytest.mark.parametrize("slab", ("slub", *OTHERS))
def test_fail_nth_counts_one_allocation_per_call(slab: str) -> None:
    m = booted_machine(slab=slab)
    cache = m.kmem_cache_create("hooks_big", 5000)
    kinds = []
    for fn, args in (("kmalloc", (100, GFP_KERNEL)), ("kmalloc", (20000, GFP_KERNEL)),
                     ("kmem_cache_alloc", (cache, GFP_KERNEL))):
        [run] = m.sweep_failures(fn, *args)
        assert run.outcome == "ok" and run.result == 0, run
        [alloc] = run.allocations
        kinds.append(alloc.kind)
    assert kinds == COUNTED[slab]


# ----------------------------------------------------------------------------- KUnit

def kunit_summary(slab: str) -> tuple[list[tuple[str, str]], list[tuple[str, str, int, str]]]:
    m = booted_machine(slab=slab)
    mod = m.load_module(KTAP_SAMPLE)
    run = kunit.run_suites(m, suites=kunit.module_suites(m, mod))
    return ([(c.name, c.status) for c in run.cases],
            [(c.name, lk.kind, lk.size, lk.site.split("+")[0]) for c, lk in run.leaks])


@pytest.mark.parametrize("slab", OTHERS)
def test_kunit_leak_tracking_matches_slub(slab: str) -> None:
    cases, leaks = kunit_summary(slab)
    assert leaks == [("sample_leak", "slab", 100, "sample_leak")]
    assert (cases, leaks) == kunit_summary("slub")


# ----------------------------------------------------------------------------- might_sleep

@pytest.mark.parametrize("slab", OTHERS)
@pytest.mark.parametrize("context", ("irq", "irqs_off", "preempt_off"))
def test_might_sleep_in_atomic_context(slab: str, context: str) -> None:
    m = booted_machine(slab=slab)
    cache = m.kmem_cache_create("hooks_sleep", 40)
    # objects on hand: the allocations below need no new slab (whose pages might sleep)
    m.kfree(m.kmalloc(64))
    m.kmem_cache_free(cache, m.kmem_cache_alloc(cache))
    for on in (True, False):
        m.alloc_debug(might_sleep=on)
        n = len(m.events)
        p = m.kmalloc(64, "GFP_KERNEL", context=context)
        q = m.kmem_cache_alloc(cache, "GFP_KERNEL", context=context)
        a = m.kmalloc(64, "GFP_ATOMIC", context=context)  # never reported
        assert p and q and a  # reported or not, the allocations go on (as Linux)
        ev = [e for e in m.events[n:] if e.kind == "sleep_in_atomic"]
        assert len(ev) == (2 if on else 0), (on, [e.kind for e in m.events[n:]])
        for e in ev:
            assert e.message.startswith("BUG: sleeping function called from invalid context")
            assert any(s.startswith(f"{slab}_") for s in e.symbols), e.symbols
        m.kfree(p)
        m.kfree(a)
        m.kmem_cache_free(cache, q)
