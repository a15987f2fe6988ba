"""Linux 6.1's trace text for every kmem/vmalloc event, from records built by hand:
each line below is written out the way Linux 6.1 prints it (TP_printk of
include/trace/events/kmem.h and vmalloc.h, trace_print_context's columns)."""

from __future__ import annotations

import pytest

from emu.build.abi import trace_define
from emu.kernel import trace_events as te

U64 = (1 << 64) - 1
SYMS = {0xFFFFFFFF81001234: "kmalloc_test+0x1c/0x40",
        0xFFFFFFFFA0001010: "mydev_open+0x10/0x80 [mydev]"}
CTX = te.Ctx(lambda a: SYMS.get(a, f"{a:#x}"), te.raw_pointer)  # no_hash_pointers
SITE = 0xFFFFFFFF81001234


def line(event: str, fields: dict, ts: int = 12_345_678_000, flags: int = 0, pc: int = 0,
         in_ns: bool = True, ctx: te.Ctx = CTX) -> str:
    system = te.by_name_short()[event].system
    return te.format_line(te.TraceRecord(event, system, ts, fields, flags, pc), ctx, in_ns)


HEAD = "          <idle>-0       [000] .....    12.345678: "
CASES = [
    ("kmalloc", {"call_site": SITE, "ptr": 0xFFFF888004E3C000, "bytes_req": 64, "bytes_alloc": 64,
                 "gfp_flags": 0xCC0, "node": U64},
     "kmalloc: call_site=kmalloc_test+0x1c/0x40 ptr=ffff888004e3c000 bytes_req=64 "
     "bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 accounted=false"),
    ("kmalloc", {"call_site": SITE, "ptr": 0xFFFF888004E3C000, "bytes_req": 100, "bytes_alloc": 128,
                 "gfp_flags": 0xCC0 | 0x400000 | 0x100, "node": U64},
     "kmalloc: call_site=kmalloc_test+0x1c/0x40 ptr=ffff888004e3c000 bytes_req=100 "
     "bytes_alloc=128 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO node=-1 accounted=true"),
    ("kmem_cache_alloc", {"call_site": 0xFFFFFFFFA0001010, "ptr": 0xFFFF888004E3C0C0,
                          "bytes_req": 72, "bytes_alloc": 80, "gfp_flags": 0x820, "node": U64,
                          "accounted": 0},
     "kmem_cache_alloc: call_site=mydev_open+0x10/0x80 [mydev] ptr=ffff888004e3c0c0 "
     "bytes_req=72 bytes_alloc=80 gfp_flags=GFP_ATOMIC node=-1 accounted=false"),
    ("kfree", {"call_site": SITE, "ptr": 0},
     "kfree: call_site=kmalloc_test+0x1c/0x40 ptr=0000000000000000"),
    ("kmem_cache_free", {"call_site": SITE, "ptr": 0xFFFF888004E3C0C0, "name": "vmap_area"},
     "kmem_cache_free: call_site=kmalloc_test+0x1c/0x40 ptr=ffff888004e3c0c0 name=vmap_area"),
    ("mm_page_free", {"pfn": 0xF5C0, "order": 1},
     "mm_page_free: page=ffffea00003d7000 pfn=0xf5c0 order=1"),
    ("mm_page_free_batched", {"pfn": 0x1234},
     "mm_page_free_batched: page=ffffea0000048d00 pfn=0x1234 order=0"),
    ("mm_page_alloc", {"pfn": 0xF5C0, "order": 0, "gfp_flags": 0xCC0, "migratetype": 0},
     "mm_page_alloc: page=ffffea00003d7000 pfn=0xf5c0 order=0 migratetype=0 gfp_flags=GFP_KERNEL"),
    ("mm_page_alloc", {"pfn": U64, "order": 10, "gfp_flags": 0x2CC0, "migratetype": 0},
     "mm_page_alloc: page=0000000000000000 pfn=0x0 order=10 migratetype=0 "
     "gfp_flags=GFP_KERNEL|__GFP_NOWARN"),
    ("mm_page_alloc_zone_locked", {"pfn": 0xF5C0, "order": 3, "migratetype": 1, "percpu_refill": 1},
     "mm_page_alloc_zone_locked: page=ffffea00003d7000 pfn=0xf5c0 order=3 migratetype=1 "
     "percpu_refill=1"),
    ("mm_page_pcpu_drain", {"pfn": 0x2000, "order": 0, "migratetype": 2},
     "mm_page_pcpu_drain: page=ffffea0000080000 pfn=0x2000 order=0 migratetype=2"),
    ("mm_page_alloc_extfrag", {"pfn": 0x3E00, "alloc_order": 0, "fallback_order": 9,
                               "alloc_migratetype": 0, "fallback_migratetype": 1,
                               "change_ownership": 1},
     "mm_page_alloc_extfrag: page=ffffea00000f8000 pfn=0x3e00 alloc_order=0 fallback_order=9 "
     "pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting=0 "
     "change_ownership=1"),
    ("alloc_vmap_area", {"addr": 0xFFFFC90000163000, "size": 8192, "align": 4096,
                         "vstart": 0xFFFFC90000000000, "vend": 0xFFFFE8FFFFFFFFFF, "failed": 0},
     "alloc_vmap_area: va_start: 18446683600571478016 size=8192 align=4096 "
     "vstart=0xffffc90000000000 vend=0xffffe8ffffffffff failed=0"),
    ("purge_vmap_area_lazy", {"start": U64, "end": 0, "npurged": 0},
     "purge_vmap_area_lazy: start=0xffffffffffffffff end=0x0 num_purged=0"),
    ("free_vmap_area_noflush", {"va_start": 0xFFFFC90000163000, "nr_lazy": 2, "nr_lazy_max": 8192},
     "free_vmap_area_noflush: va_start=0xffffc90000163000 nr_lazy=2 nr_lazy_max=8192"),
]


@pytest.mark.parametrize(("event", "fields", "text"), CASES, ids=[c[0] for c in CASES])
def test_event_line_is_linux_61(event: str, fields: dict, text: str) -> None:
    assert line(event, fields) == HEAD + text


def test_every_event_has_a_case_and_an_id_from_trace_h() -> None:
    assert {c[0] for c in CASES} == {e.name for e in te.events().values()}
    for ev in te.events().values():
        assert ev.id == trace_define(f"KMEMU_TRACE_EV_{ev.name.upper()}")
    assert te.PAGE_HDR == trace_define("KMEMU_TRACE_PAGE_HDR")
    assert te.REC_HDR == trace_define("KMEMU_TRACE_REC_HDR")


def test_context_columns() -> None:
    f = {"call_site": SITE, "ptr": 0}
    # irqs off inside a spinlock (preempt depth 1), and a hard interrupt with irqs off
    assert line("kfree", f, flags=te.FLAG_IRQS_OFF, pc=1).startswith(
        "          <idle>-0       [000] d..1.    12.345678: kfree: ")
    assert line("kfree", f, flags=te.FLAG_IRQS_OFF | te.FLAG_HARDIRQ).startswith(
        "          <idle>-0       [000] d.h..    12.345678: kfree: ")
    assert line("kfree", f, flags=te.FLAG_SOFTIRQ | te.FLAG_BH_OFF, pc=0x12)[31:36] == "b.s21"


def test_timestamps() -> None:
    f = {"call_site": SITE, "ptr": 0}
    # ns rounded to microseconds (ns2usecs), seconds in %5lu
    assert " 0.000001: " in line("kfree", f, ts=500)
    assert " 0.000000: " in line("kfree", f, ts=499)
    assert "123456.789012: " in line("kfree", f, ts=123_456_789_012_345)
    # the counter clock: %12llu, raw
    assert line("kfree", f, ts=2124186, in_ns=False).startswith(
        "          <idle>-0       [000] .....      2124186: kfree: ")


def test_header_is_linux_61() -> None:
    assert te.format_header(3, 10) == (
        "# tracer: nop\n"
        "#\n"
        "# entries-in-buffer/entries-written: 3/10   #P:1\n"
        "#\n"
        "#                                _-----=> irqs-off/BH-disabled\n"
        "#                               / _----=> need-resched\n"
        "#                              | / _---=> hardirq/softirq\n"
        "#                              || / _--=> preempt-depth\n"
        "#                              ||| / _-=> migrate-disable\n"
        "#                              |||| /     delay\n"
        "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n"
        "#              | |         |   |||||     |         |\n")


def test_hashed_pointers() -> None:
    # SipHash-2-4's reference vector: key 00..0f, message 00..07
    key = (0x0706050403020100, 0x0F0E0D0C0B0A0908)
    assert te.siphash_1u64(0x0706050403020100, key) == 0x93F5F5799A932462
    h = te.hash_pointer(0xFFFF888004E3C000)
    assert len(h) == 16 and h.startswith("00000000") and h != "0000000000000000"
    assert h == te.hash_pointer(0xFFFF888004E3C000)  # the same address, the same id
    assert h != te.hash_pointer(0xFFFF888004E3C040)
    assert te.hash_pointer(0) == "0" * 16
    assert te.hash_pointer(U64 - 11) == "fffffffffffffff4"  # ERR_PTR(-12) is not hashed
    hashed = te.Ctx(CTX.sym)
    assert f"ptr={h} " in line("kmalloc", CASES[0][1], ctx=hashed)
