"""The kmem trace text parser (emu.kernel.tracetext) on traces of our own making, in
every layout and Linux version tracegen writes, and on hand-written lines of each
version's formats, malformed and truncated lines, gzip."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from emu.kernel import gfp as gfpmod
from emu.kernel import tracegen
from emu.kernel.tracetext import gfp_of, gfp_value, parse_file, parse_lines


def _norm(t):  # the workload, whatever the version printed: comparable across versions
    base = {"kmalloc_node": "kmalloc", "kmem_cache_alloc_node": "kmem_cache_alloc"}
    return [(base.get(e.event, e.event), e.ptr, e.bytes_req, e.bytes_alloc, gfp_of(e),
             e.order, e.pfn) for e in t.events]


@pytest.mark.parametrize("version", tracegen.VERSIONS)
@pytest.mark.parametrize("layout", tracegen.LAYOUTS)
def test_every_layout_and_version_reads_completely(version: str, layout: str) -> None:
    lines = list(tracegen.generate(2000, seed=7, version=version, layout=layout))
    t = parse_lines(lines)
    assert t.unreadable == 0, t.describe_unreadable()
    kmem = [ln for ln in lines if not ln.startswith(("#", "version", "cpus="))
            and ("sched_switch" not in ln and "rcu_utilization" not in ln)]
    assert len(t.events) == len(kmem) == 2000
    assert sum(t.other_events.values()) == len(lines) - len(kmem) - len(
        [ln for ln in lines if ln.startswith(("#", "version", "cpus="))])
    assert t.format == ("trace-cmd" if layout == "trace-cmd" else "ftrace")


def test_versions_print_the_same_workload_differently() -> None:
    traces = {v: parse_lines(tracegen.generate(1500, seed=3, version=v)) for v in tracegen.VERSIONS}
    assert _norm(traces["4.19"]) == _norm(traces["5.10"]) == _norm(traces["6.1"])
    ev = {v: {e.event for e in t.events} for v, t in traces.items()}
    assert "kmalloc_node" in ev["4.19"] and "kmalloc_node" in ev["5.10"]
    assert "kmalloc_node" not in ev["6.1"] and "kmem_cache_alloc_node" not in ev["6.1"]
    frees = {v: [e for e in t.events if e.event == "kmem_cache_free"] for v, t in traces.items()}
    assert all(e.name is None for e in frees["4.19"] + frees["5.10"])
    assert {e.name for e in frees["6.1"]} <= {c[0] for c in tracegen._CACHES}
    assert all(e.accounted is not None for e in traces["6.1"].events if e.event == "kmalloc")
    assert all(e.accounted is None for e in traces["5.10"].events if e.event == "kmalloc")
    assert all(e.call_site.startswith("ffffffff81") for e in traces["4.19"].events
               if e.call_site)


def test_linux_61_lines_as_the_issue_gives_them() -> None:
    t = parse_lines([
        "  sshd-977  [001] d..1.  2.5: kmalloc: call_site=__alloc_skb+0x9c/0x1c0 "
        "ptr=00000000a1b2c3d4 bytes_req=320 bytes_alloc=512 gfp_flags=GFP_KERNEL|__GFP_NOWARN "
        "node=-1 accounted=false",
        "  sshd-977  [001] d..1.  2.6: kmem_cache_alloc: call_site=alloc_inode+0x1b/0x80 "
        "ptr=00000000deadbe00 bytes_req=600 bytes_alloc=608 gfp_flags=GFP_KERNEL node=0 "
        "accounted=true",
        "  sshd-977  [001] d..1.  2.7: kmem_cache_free: call_site=x+0x1/0x2 "
        "ptr=00000000deadbe00 name=inode_cache",
        "  sshd-977  [001] d..1.  2.8: mm_page_alloc: page=00000000c0ffee00 pfn=0x1a2b order=2 "
        "migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE",
        "  sshd-977  [001] d..1.  2.9: mm_page_free: page=00000000c0ffee00 pfn=0x1a2b order=2",
        "  sshd-977  [001] d..1.  3.0: kfree: call_site=y+0x2/0x4 ptr=00000000a1b2c3d4",
    ])
    km, kc, kf, pa, pf, fr = t.events
    assert (km.call_site, km.ptr, km.bytes_req, km.bytes_alloc, km.node, km.accounted) == \
        ("__alloc_skb+0x9c/0x1c0", 0xA1B2C3D4, 320, 512, -1, False)
    assert gfp_of(km) == gfpmod.parse("GFP_KERNEL|__GFP_NOWARN")
    assert (kc.node, kc.accounted, kf.name) == (0, True, "inode_cache")
    assert (pa.pfn, pa.order, pa.migratetype, pa.page_key) == (0x1A2B, 2, 1, 0x1A2B)
    assert (pf.pfn, pf.order) == (0x1A2B, 2)
    assert (fr.event, fr.ptr, fr.pid, fr.cpu, fr.timestamp) == ("kfree", 0xA1B2C3D4, 977, 1, 3.0)


def test_old_formats_decimal_pfn_page_only_and_trace_cmd_pointers() -> None:
    t = parse_lines([
        "version = 6",
        "cpus=4",
        "  bash-1 [000]  5.000001: kmalloc:              call_site=ffffffff8123abcd "
        "ptr=0xffff88800abc1200 bytes_req=20 bytes_alloc=32 gfp_flags=GFP_KERNEL|GFP_NOWARN",
        "  bash-1 [000]  5.000002: mm_page_free_batched: page=ffffea0000400040 pfn=65537 "
        "order=0 cold=0",
        "  bash-1 [000]  5.000003: mm_page_free:         page=0xffffea0000400080 order=1",
        "  bash-1 [000]  5.000004: kmem:kfree:           call_site=ffffffff8123abcd "
        "ptr=0xffff88800abc1200",
    ])
    assert t.unreadable == 0 and t.format == "trace-cmd"
    km, fb, pf, kf = t.events
    assert km.call_site == "ffffffff8123abcd" and km.ptr == 0xFFFF88800ABC1200
    assert gfp_of(km) == gfpmod.parse("GFP_KERNEL|__GFP_NOWARN")  # 4.x spelled GFP_NOWARN
    assert (fb.pfn, fb.order) == (65537, 0)  # 4.x printed pfn in decimal
    assert (pf.pfn, pf.page, pf.page_key, pf.order) == (None, 0xFFFFEA0000400080,
                                                        0xFFFFEA0000400080, 1)
    assert kf.event == "kfree" and kf.ptr == km.ptr


def test_counter_clock_timestamps() -> None:
    """trace_clock=counter (and x86-tsc) print the stamp as a bare integer."""
    t = parse_lines(["            bash-812     [000] d..1.        12345: kfree: "
                     "call_site=a+0x1/0x2 ptr=00000000000000ff"])
    assert t.unreadable == 0 and t.events[0].timestamp == 12345.0


def test_tgid_column_and_tasks_with_dashes() -> None:
    t = parse_lines(["  kworker/u8:2-foo-1234  (   1200) [003] .N.1.  7.25: kfree: "
                     "call_site=a+0x1/0x2 ptr=00000000000000ff"])
    assert t.unreadable == 0 and t.events[0].pid == 1234 and t.events[0].cpu == 3


def test_malformed_and_truncated_lines_are_counted_with_the_first_one() -> None:
    good = list(tracegen.generate(50, seed=2))
    whole = ("  bash-1 [000] d..1. 1.0: kmalloc: call_site=a+0x1/0x2 ptr=00000000000000aa "
             "bytes_req=1 bytes_alloc=8 gfp_flags=GFP_KERNEL node=-1 accounted=false")
    cut = whole[: whole.index("gfp_flags")]  # truncated before a field kmalloc needs
    lines = good[:20] + [cut] + good[20:30] + [
        "this is not a trace line",
        "  bash-1 [000] d..1. 1.0: kmalloc: call_site=a ptr=zz bytes_req=1 bytes_alloc=8 "
        "gfp_flags=GFP_KERNEL",                                              # ptr not hex
        "  bash-1 [000] d..1. 1.0: mm_page_alloc: order=0 gfp_flags=GFP_KERNEL",  # no pfn/page
        "  bash-1 [000] d..1. 1.0: kfree: call_site=a",                       # no ptr
        "CPU:1 [LOST 42 EVENTS]",
        "##### CPU 2 buffer started ####",
    ] + good[30:]
    t = parse_lines(lines)
    assert t.unreadable == 5
    n, text, why = t.first_unreadable
    assert n == 21 and text == cut and "gfp_flags" in why
    assert "5 unreadable line(s); first, line 21" in t.describe_unreadable()
    assert t.lost_events == 42
    binary = parse_lines(["\x1b[2J\x00\x07garbage"])  # a binary file's first "line"
    assert binary.describe_unreadable().endswith(r"\x1b[2J\x00\x07garbage")
    assert len(t.events) == len([ln for ln in good if not ln.startswith("#")
                                 and "sched_switch" not in ln and "rcu_util" not in ln])


def test_gzip_and_plain_files_parse_the_same(tmp_path: Path) -> None:
    plain = tracegen.write(tmp_path / "t.txt", 300, seed=4, layout="ftrace-noirq")
    gz = tmp_path / "t.dat"  # gzip found by its magic bytes, not its name
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = parse_file(plain), parse_file(gz)
    assert _norm(a) == _norm(b) and len(a.events) == 300


def test_a_gzip_file_cut_short_raises_eoferror(tmp_path: Path) -> None:
    data = gzip.compress("\n".join(tracegen.generate(300, seed=4)).encode())
    p = tmp_path / "cut.gz"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(EOFError):
        parse_file(p)


def test_gfp_text_of_every_era() -> None:
    from collections import Counter

    unknown: Counter[str] = Counter()
    assert gfp_value("none") == 0
    assert gfp_value("GFP_KERNEL|__GFP_ZERO") == gfpmod.parse("GFP_KERNEL|__GFP_ZERO")
    assert gfp_value("GFP_NOFS|GFP_NOFAIL") == gfpmod.parse("GFP_NOFS|__GFP_NOFAIL")
    assert gfp_value("GFP_KERNEL|0x40000000|__GFP_SKIP_KASAN", unknown) == \
        gfpmod.parse("GFP_KERNEL")
    assert unknown == Counter({"__GFP_SKIP_KASAN": 1})


def test_other_events_and_systems_are_counted_not_read() -> None:
    t = parse_lines([
        "  a-1 [000] d..1. 1.0: sched_switch: prev_comm=a prev_pid=1 ==> next_comm=b",
        "  a-1 [000] d..1. 1.0: sched_switch: prev_comm=a prev_pid=1 ==> next_comm=b",
        "  a-1 [000] d..1. 1.0: foo:kmalloc: call_site=a ptr=1 bytes_req=1 bytes_alloc=8 "
        "gfp_flags=GFP_KERNEL",
    ])
    assert t.events == [] and t.unreadable == 0
    assert dict(t.other_events) == {"sched_switch": 2, "foo:kmalloc": 1}
