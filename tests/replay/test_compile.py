"""The replay compiler's rules (emu.machine.replay_compile) and Linux's extfrag
indexes (emu.kernel.extfrag), without a machine."""

from __future__ import annotations

from emu.kernel import extfrag
from emu.kernel.mm import ZoneView
from emu.kernel.tracetext import parse_lines
from emu.machine.replay_compile import (
    CACHE_ALLOC,
    CACHE_FREE,
    KFREE,
    KMALLOC,
    PAGES_ALLOC,
    PAGES_FREE,
    compile_trace,
)

H = "  t-1 [000] d..1. 1.0: "


def km(ptr: int, req: int = 100, site: str = "a+0x1/0x9", gfp: str = "GFP_KERNEL") -> str:
    return (f"{H}kmalloc: call_site={site} ptr={ptr:016x} bytes_req={req} bytes_alloc=128 "
            f"gfp_flags={gfp} node=-1 accounted=false")


def kf(ptr: int) -> str:
    return f"{H}kfree: call_site=b+0x1/0x9 ptr={ptr:016x}"


def kca(ptr: int, size: int, site: str) -> str:
    return (f"{H}kmem_cache_alloc: call_site={site} ptr={ptr:016x} bytes_req={size} "
            f"bytes_alloc={size} gfp_flags=GFP_KERNEL node=-1 accounted=false")


def kcf(ptr: int, name: str | None) -> str:
    return f"{H}kmem_cache_free: call_site=c+0x1/0x9 ptr={ptr:016x}" + (
        f" name={name}" if name else "")


def ops(c) -> list[tuple[int, ...]]:
    return [c.op_at(i) for i in range(c.n_ops)]


def test_pointers_are_keys_slots_are_reused() -> None:
    c = compile_trace(parse_lines([km(0xA0), km(0xB0), kf(0xA0), km(0xC0), kf(0xB0), kf(0xC0)]))
    kinds = [(o[0], o[3]) for o in ops(c)]
    assert kinds == [(KMALLOC, 0), (KMALLOC, 1), (KFREE, 0), (KMALLOC, 0), (KFREE, 1), (KFREE, 0)]
    assert c.nslots == 2 and c.live == {} and c.requested_after == [0]
    assert c.events == {"kmalloc": 3, "kfree": 3}


def test_unknown_frees_null_and_failed_allocations_are_skipped() -> None:
    c = compile_trace(parse_lines([kf(0xDEAD), kf(0), km(0), km(0xA0), kcf(0xA1, "x")]))
    assert c.n_ops == 1
    assert c.skipped == {"free of a pointer the trace never allocated": 2, "kfree(NULL)": 1,
                         "allocation that failed in the trace": 1}


def test_a_pointer_allocated_again_while_live_is_a_lost_free_freed_first() -> None:
    c = compile_trace(parse_lines([km(0xA0, 10), km(0xA0, 20), kf(0xA0)]))
    assert c.lost_frees == 1
    assert [o[0] for o in ops(c)] == [KMALLOC, KFREE, KMALLOC, KFREE]
    assert c.op_at(2)[4] == 20


def test_caches_are_named_by_kmem_cache_free_and_keyed_by_site_and_size() -> None:
    c = compile_trace(parse_lines([
        kca(0x10, 192, "__d_alloc+0x2a/0x1f0"), kca(0x20, 192, "d_alloc_parallel+0x1/0x9"),
        kca(0x30, 64, "foo+0x1/0x2"), kcf(0x10, "dentry"), kcf(0x20, "dentry"), kcf(0x30, None),
        kca(0x40, 192, "__d_alloc+0x2a/0x1f0"),
    ]))
    assert [(s.name, s.object_size) for s in c.caches] == [("dentry", 192), ("foo:64", 64)]
    assert [(o[0], o[2]) for o in ops(c)] == [
        (CACHE_ALLOC, 0), (CACHE_ALLOC, 0), (CACHE_ALLOC, 1), (CACHE_FREE, 0), (CACHE_FREE, 0),
        (CACHE_FREE, 1), (CACHE_ALLOC, 0)]
    assert c.caches[0].first_op == 0 and c.caches[1].first_op == 2


def test_pages_by_pfn_with_the_allocations_order_and_nofail_highmem_dropped() -> None:
    c = compile_trace(parse_lines([
        f"{H}mm_page_alloc: page=0000000000000001 pfn=0x100 order=3 migratetype=1 "
        "gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_NOFAIL",
        f"{H}mm_page_alloc: page=0000000000000000 pfn=0x0 order=0 migratetype=0 "
        "gfp_flags=GFP_KERNEL",
        f"{H}mm_page_free: page=0000000000000001 pfn=0x100 order=3",
    ]), batch=1)
    (a, f) = ops(c)
    assert a[0] == PAGES_ALLOC and a[1] == 3 and f[0] == PAGES_FREE and f[1] == 3
    from emu.kernel import gfp

    assert a[5] == gfp.parse("GFP_HIGHUSER_MOVABLE") & ~gfp.GFP_FLAGS["__GFP_HIGHMEM"]
    assert c.skipped == {"allocation that failed in the trace": 1}
    assert c.requested_after == [4096 << 3, 0]
    assert compile_trace(parse_lines([f"{H}mm_page_free: pfn=0x5 order=0"]),
                         pages=False).skipped == {"page event (pages=False)": 1}


def test_requested_per_batch_end() -> None:
    c = compile_trace(parse_lines([km(1, 10), km(2, 20), kf(1), km(3, 5), kf(2)]), batch=2)
    assert c.requested_after == [30, 25, 5]


def _zone(nr_free: list[int], name: str = "DMA32") -> ZoneView:
    return ZoneView(index=1, name=name, start_pfn=0, spanned=1, present=1, managed=1,
                    free=0, nr_free=nr_free, watermark={}, boost=0, lowmem_reserve=[],
                    pcp_count=0, pcp_high=0, pcp_batch=0)


def test_linux_fragmentation_indexes() -> None:
    nr = [4, 0, 1] + [0] * 8  # 8 free pages: four singles and one order-2 block
    assert [extfrag.unusable_index(nr, o) for o in range(4)] == [0, 500, 500, 1000]
    assert [extfrag.fragmentation_index(nr, o) for o in range(4)] == [-1000, -1000, -1000, 600]
    assert extfrag.unusable_index([0] * 11, 3) == 1000
    assert extfrag.fragmentation_index([0] * 11, 3) == 0
    z = _zone(nr)
    assert extfrag.format_unusable_index([z]) == \
        "Node 0, zone    DMA32 0.000 0.500 0.500 1.000 " + "1.000 " * 7 + "\n"
    assert extfrag.format_extfrag_index([z]).startswith(
        "Node 0, zone    DMA32 -1.000 -1.000 -1.000  0.600  0.")
