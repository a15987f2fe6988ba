"""Layer 6: ``kmemu bench`` — the figures, never asserts.

Wall-clock rows report the median of several runs; guest-instruction rows
are deterministic and are the primary figure for kernel-side costs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emu.firmware.e820 import parse_map
from emu.frontend.gdbbench import gdb_rows
from emu.machine.core import Machine


@dataclass
class Row:
    name: str
    value: float
    unit: str
    target: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "value": self.value, "unit": self.unit,
                "target": self.target, "note": self.note}


def _median(fn: Callable[[], float], n: int) -> float:
    return statistics.median(fn() for _ in range(n))


def _boot_ms(mem: str) -> float:
    t = time.perf_counter()
    Machine.booted(mem=mem)
    return (time.perf_counter() - t) * 1000


def _per_op_us(fn: Callable[[], object], n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1e6


def run_bench(repeat: int = 5) -> list[Row]:
    """Measure boot, snapshots and calls; return the rows."""
    Machine.booted()  # warm the build cache and the symbol cache
    rows = [
        Row("boot to ready, 256 MiB", _median(lambda: _boot_ms("256M"), repeat), "ms", "< 50"),
        Row("boot to ready, 4 GiB", _median(lambda: _boot_ms("4G"), repeat), "ms", "< 50"),
    ]
    rows += memory_rows(repeat)
    rows += boot_insn_rows()
    m = Machine.booted()
    snap = m.snapshot()
    rows.append(Row("snapshot save", _median(lambda: _per_op_us(m.snapshot, 200), 3), "us"))

    def restore_us() -> float:
        """Dirty the machine with a call, then time only the restore."""
        total = 0.0
        for _ in range(300):
            m.call("kmemu_test_add", 1, 2, 3, 4, 5, 6)
            t = time.perf_counter()
            m.restore(snap)
            total += time.perf_counter() - t
        return total / 300 * 1e6

    rows.append(Row("snapshot restore (after a call)", _median(restore_us, 3), "us", "< 500"))
    rows += round_trip_rows(Machine.booted(), repeat)
    rows += call_insn_rows(m)
    irq_us = _median(lambda: _per_op_us(lambda: m.raise_irq(0x30), 500), 3)
    rows.append(Row("raise_irq round trip at idle", irq_us, "us"))
    rows += page_allocator_rows(m)
    rows += slab_rows(m)
    rows += trace_event_rows(m)
    rows += kmem_cache_rows(m)
    from emu.frontend.bench_slab import slab_allocator_rows  # imports this module
    rows += slab_allocator_rows()
    rows += vmalloc_rows(m)
    rows += debugger_rows(m)
    rows += kunit_rows(m)
    rows += stopped_call_rows(m)
    rows += module_rows(Machine.booted())
    rows += gdb_rows()  # stock gdb against kmemu gdb and QEMU's gdbstub, same run
    rows += kasan_rows()
    rows += ftrace_rows()
    rows += kmemleak_rows()
    rows += failure_sweep_rows(Machine.booted())
    from emu.frontend.replay_bench import replay_rows  # issue 16: trace replay

    rows += replay_rows()
    return rows


def boot_insn_rows() -> list[Row]:
    """Boot's guest instructions (the 64-bit part) at 256 MiB, and per 4 KiB page of
    RAM: the difference to a 128 MiB boot over the 32,768 pages between, nearly all
    of it writing struct pages and handing free blocks to the buddy allocator (what
    makes a 64 GiB boot take its time)."""
    insns = {}
    for mib in (128, 256):
        m = Machine(mem=f"{mib}M", count_insns=True)
        m.boot()
        insns[mib] = m.insns
    pages = (256 - 128) << (20 - 12)
    return [Row("boot, guest instructions (64-bit part)", insns[256], "insns", "",
                "deterministic"),
            Row("  boot, guest instructions per 4 KiB page of RAM",
                round((insns[256] - insns[128]) / pages), "insns", "",
                "128 MiB -> 256 MiB boots; deterministic")]


def call_insn_rows(m: Machine) -> list[Row]:
    """The empty call and the self-tests; ``m`` is restored afterwards (the slab_debug
    self-test turns the slab_debug static key on, which would lengthen every row after)."""
    snap = m.snapshot()
    with m.count_instructions() as n:
        m.call("kmemu_test_nop")
    rows = [Row("call() guest instructions", n[0], "insns", "", "deterministic")]
    with m.count_instructions() as n:
        m.call("kmemu_selftest")
    m.restore(snap)
    rows.append(Row("kmemu_selftest guest instructions", n[0], "insns", "", "deterministic"))
    return rows


def instruction_rows(m: Machine) -> list[Row]:
    """Every guest-instruction row of the bench that needs only a booted machine, from
    the same functions ``run_bench`` uses (tests/test_bench_counts.py holds them);
    ``m`` is restored to where it was."""
    snap = m.snapshot()
    try:
        rows = call_insn_rows(m)
        for part in (page_allocator_rows, slab_rows, kmem_cache_rows, vmalloc_rows,
                     kunit_insn_rows, trace_event_rows):
            m.restore(snap)  # each part from the same state as the bench's own run
            rows += [r for r in part(m) if r.unit == "insns"]
        return rows
    finally:
        m.restore(snap)


def plain_unicorn_call(m: Machine, fn: str = "kmemu_test_nop") -> Callable[[], object]:
    """A bare ``emu_start`` of the instructions ``m.call(fn)`` runs, in a plain Unicorn
    instance (no hooks, no Python around the run) over ``m``'s RAM and CPU state:
    ``fn``, its return into kmemu_call_return, the deferred work and the quiet end
    (KMEMU_CALL_QUIET above the return address, as ``Machine._call_fast`` writes
    it), which goes back to the idle stack: the idle loop's ``hlt`` ends the run.
    Each run resets RSP (one register write), as a loop of bare runs must.

    It writes the same stack bytes a call does, into ``m``'s RAM: give it a machine
    of its own."""
    from unicorn import x86_const as x86

    from emu.core.cpu import Cpu

    cpu = m.cpu
    assert cpu is not None and m._ram is not None  # noqa: SLF001
    cpu.set_context_mode(False)  # the CPU alone: memory is shared below
    try:
        ctx = m.uc.context_save()
    finally:
        cpu.set_context_mode(True)
    uc = Cpu.new_uc64()
    m._ram.map_into(uc)  # noqa: SLF001 - the same host memory, mapped again
    uc.context_restore(ctx)
    rsp, target = m._call_rsp - 8, m.symbol(fn)  # noqa: SLF001 - the call's own stack
    uc.mem_write(m._call_stack_pa, m._ret_addr)  # noqa: SLF001
    from emu.build.abi import define

    quiet = define("KMEMU_CALL_QUIET")  # as the machine's fast path: the same instructions
    uc.mem_write(m._call_stack_pa + 8, quiet.to_bytes(8, "little"))  # noqa: SLF001
    end = m._quiet_end  # noqa: SLF001 - just past the idle loop's hlt: where the run ends

    def bare() -> None:
        uc.reg_write(x86.UC_X86_REG_RSP, rsp)
        uc.emu_start(target, 0)

    bare()
    rip = uc.reg_read(x86.UC_X86_REG_RIP)
    if rip != end:
        raise RuntimeError(f"the plain run of {fn} ended at {m.symbolize(rip)}")
    bare.uc = uc  # type: ignore[attr-defined]  # keeps the instance alive with the closure
    return bare


def plain_unicorn_runs(bare: Callable[[], object], m: Machine,
                       ) -> tuple[Callable[[], object], Callable[[], object]]:
    """Over the plain instance of :func:`plain_unicorn_call`: an empty call and a
    kmalloc(64)+kfree pair, each run as a minimal host would (one register batch with
    RSP and the arguments, ``uc_emu_start``, one read of the result: kmemu's own
    :class:`~emu.core.cpu.RegBatch` and ctypes without argument conversion).  The two
    give the emulator's own "pair / empty call" for the same guest instructions, the
    floor for kmemu's.  Both instances run the same
    kernel memory one after the other, like one CPU; the pair leaves the allocator as
    it found it."""
    import ctypes

    from unicorn import x86_const as x86

    from emu.core.cpu import RegBatch, unchecked

    uc = bare.uc  # type: ignore[attr-defined]
    start = unchecked("uc_emu_start")
    regs = RegBatch(uc, [x86.UC_X86_REG_RSP, x86.UC_X86_REG_RDI, x86.UC_X86_REG_RSI])
    zero, no_count = ctypes.c_uint64(0), ctypes.c_size_t(0)
    rsp = m._call_rsp - 8  # noqa: SLF001 - the call's own stack, as plain_unicorn_call's
    nop, kmalloc, kfree = (ctypes.c_uint64(m.symbol(f))
                           for f in ("kmemu_test_nop", "kmalloc", "kfree"))

    def run(fn: ctypes.c_uint64, a: int, b: int) -> int:
        regs.write([rsp, a, b])
        start(uc._uch, fn, zero, zero, no_count)  # noqa: SLF001
        return regs.read(x86.UC_X86_REG_R12)  # kmemu_call_return's convention

    def empty() -> None:
        run(nop, 0, 0)

    def pair() -> None:
        run(kfree, run(kmalloc, 64, 0xCC0), 0)

    p = run(kmalloc, 64, 0xCC0)
    if not p >> 63:
        raise RuntimeError(f"kmalloc(64) in the plain instance returned {p:#x}")
    run(kfree, p, 0)
    return empty, pair


def _cpu_us_per_op(fn: Callable[[], object], n: int) -> float:
    """``fn``'s cost in this thread's CPU time (``emu_start`` runs in the calling
    thread): other processes on a busy host do not inflate it as they do wall time."""
    t = time.thread_time()
    for _ in range(n):
        fn()
    return (time.thread_time() - t) / n * 1e6


def round_trip_rows(m: Machine, repeat: int = 5) -> list[Row]:
    """The host round trip against what Unicorn alone costs, measured in the same
    process and the same run, interleaved, in thread CPU time (a busy host slows
    both alike and steals no time from either)."""
    bare = plain_unicorn_call(m)
    m.kfree(m.kmalloc(64))

    def call() -> None:
        m.call("kmemu_test_nop")

    def pair() -> None:  # what a test writer types
        p = m.kmalloc(64)
        m.kfree(p)

    plain_empty, plain_pair = plain_unicorn_runs(bare, m)
    calls, bares, pairs, plain_empties, plain_pairs = [], [], [], [], []
    for _ in range(max(3, repeat) * 6):
        calls.append(_cpu_us_per_op(call, 150))
        bares.append(_cpu_us_per_op(bare, 150))
        pairs.append(_cpu_us_per_op(pair, 75))
        plain_empties.append(_cpu_us_per_op(plain_empty, 150))
        plain_pairs.append(_cpu_us_per_op(plain_pair, 75))
    c, b, p = (statistics.median(x) for x in (calls, bares, pairs))
    floor = statistics.median(plain_pairs) / statistics.median(plain_empties)
    n = 512  # one ring: one guest entry per batch

    def batched() -> float:
        t = time.thread_time()
        ptrs = m.batch([("kmalloc", 64, 0xCC0)] * n)
        m.batch([("kfree", q) for q in ptrs])
        return (time.thread_time() - t) / n * 1e6

    per_pair = _median(batched, max(3, repeat))

    def batched_nops() -> float:  # the same ring with nothing to do: its own cost
        t = time.thread_time()
        m.batch([("kmemu_test_nop",)] * n)
        m.batch([("kmemu_test_nop",)] * n)
        return (time.thread_time() - t) / n * 1e6

    guest = per_pair - _median(batched_nops, max(3, repeat))
    # the same pair with the allocators' debug checks off (might_sleep's and the bad-page
    # checks, on at boot): what is left of the pair's cost beyond two empty calls is
    # the guest's own work (at the boot defaults kmalloc runs might_sleep's inline check,
    # 9 instructions more, and no hooks: <kmemu/alloc_hooks.h>)
    was = m.alloc_debug(might_sleep=False, bad_page=False)
    m.kfree(m.kmalloc(64))
    calls_off, pairs_off = [], []
    for _ in range(max(3, repeat) * 3):
        calls_off.append(_cpu_us_per_op(call, 150))
        pairs_off.append(_cpu_us_per_op(pair, 75))
    m.alloc_debug(might_sleep=was["might_sleep"], bad_page=was["bad_page"])
    off = statistics.median(pairs_off) / statistics.median(calls_off)
    return [Row("call() of an empty kernel function (kmemu_test_nop), median", c, "us", "",
                "thread CPU time"),
            Row("  bare emu_start of the same instructions, plain Unicorn", b, "us", "",
                "same process, same run"),
            Row("  call() / bare emu_start", c / b, "x", "<= 2"),
            Row("kmalloc(64)+kfree pair from Python, median", p, "us", "",
                "p = m.kmalloc(64); m.kfree(p)"),
            Row("  pair / empty call()", p / c, "x", "<= 2"),
            Row("  the same ratio in plain Unicorn, minimal ctypes host", floor, "x", "",
                "the emulator's own: the same guest instructions, no kmemu"),
            Row("  pair - 2 x empty call()", p - 2 * c, "us", "",
                "what the pair costs beyond two round trips"),
            Row("  guest work of kmalloc(64)+kfree beyond two empty functions", guest, "us", "",
                "m.batch() of the pairs less the same batches of kmemu_test_nop"),
            Row("  pair / empty call(), m.alloc_debug(might_sleep=False, bad_page=False)",
                off, "x", "", "same run; might_sleep's inline check is the difference"),
            Row(f"  ... in m.batch() ({n} kmalloc, then {n} kfree), per pair", per_pair, "us",
                "", "two guest entries")]


KASAN_CHURN = """#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
/* kmalloc-heavy: allocate, fill, read back, free; sizes 8..207 */
long churn(long rounds)
{
\tlong sum = 0;
\tfor (long r = 0; r < rounds; r++) {
\t\tint n = 8 + (r * 13) % 200;
\t\tchar *p = kmalloc(n, GFP_KERNEL);
\t\tif (!p)
\t\t\treturn -12;
\t\tmemset(p, (int)r, n);
\t\tfor (int i = 0; i < n; i++)
\t\t\tsum += p[i];
\t\tkfree(p);
\t}
\treturn sum;
}
MODULE_LICENSE("GPL");
"""


def kasan_rows(rounds: int = 500) -> list[Row]:
    """KASAN's cost on a kmalloc-heavy module: the same call on the default kernel and
    on the KASAN kernel (kernel and module instrumented), guest instructions and time."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "kasan_churn.c"
        src.write_text(KASAN_CHURN)
        res = {}
        for kasan in (False, True):
            m = Machine.booted(kasan=kasan)
            m.load_module(src)
            m.call("churn", rounds)  # warm: translated code, slabs and quarantine in use
            with m.count_instructions() as n:
                m.call("churn", rounds)

            def churn(m: Machine = m) -> object:
                return m.call("churn", rounds)
            ms = _median(lambda: _per_op_us(churn, 5), 3) / 1000
            res[kasan] = (n[0], ms)
    (i0, t0), (i1, t1) = res[False], res[True]
    what = f"kmalloc/fill/kfree x{rounds}"
    return [Row(f"{what}, guest instructions", i0, "insns", "", "deterministic"),
            Row(f"{what}, KASAN kernel, guest instructions", i1, "insns", "",
                f"{i1 / i0:.1f}x"),
            Row(f"{what}, wall time", t0, "ms"),
            Row(f"{what}, KASAN kernel, wall time", t1, "ms", "", f"{t1 / t0:.1f}x")]


def ftrace_rows(rounds: int = 500) -> list[Row]:
    """function_graph's cost on the same kmalloc-heavy call as the KASAN rows, traced
    and not, in the same run: the guest runs the same instructions (the tracer is a
    host-side block hook), the host pays a Python call per translated block."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "kasan_churn.c"
        src.write_text(KASAN_CHURN)
        m = Machine.booted()
        m.load_module(src)
    m.call("churn", rounds)  # warm, as kasan_rows
    snap = m.snapshot()
    with m.count_instructions() as n:
        m.call("churn", rounds)
    m.restore(snap)
    t = m.trace("churn", rounds)
    frames = sum(1 for r in t.tree for _ in r.walk())

    def plain() -> float:
        m.restore(snap)
        s = time.perf_counter()
        m.call("churn", rounds)
        return (time.perf_counter() - s) * 1000

    def traced() -> float:
        m.restore(snap)
        s = time.perf_counter()
        m.trace("churn", rounds)
        return (time.perf_counter() - s) * 1000

    t0, t1 = _median(plain, 5), _median(traced, 5)
    m.restore(snap)
    what = f"kmalloc/fill/kfree x{rounds}"
    return [Row(f"{what}, guest instructions, not traced", n[0], "insns", "", "deterministic"),
            Row(f"{what}, guest instructions, function_graph", t.insns, "insns", "",
                f"same: {t.insns == n[0]}; {frames} calls in the tree"),
            Row(f"{what}, wall time, not traced", t0, "ms"),
            Row(f"{what}, wall time, function_graph", t1, "ms", "", f"{t1 / t0:.1f}x")]
KMEMLEAK_HOLD = """
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

void **held; /* a root: every object is reachable through this array */
u64 nr_held;

/* n live objects of 16..1024 bytes (a deterministic mix), all referenced */
int hold(u64 n)
{
\theld = vmalloc(n * sizeof(*held));
\tif (!held)
\t\treturn -12;
\tfor (nr_held = 0; nr_held < n; nr_held++) {
\t\theld[nr_held] = kmalloc(16 + (nr_held * 37) % 1009, GFP_KERNEL);
\t\tif (!held[nr_held])
\t\t\treturn -12;
\t}
\treturn 0;
}
MODULE_LICENSE("GPL");
"""


def kmemleak_rows(objects: int = 10_000) -> list[Row]:
    """kmemleak on a 256 MiB machine: one scan with ``objects`` live objects (all
    referenced, through a vmalloc'ed array held in module .bss), guest instructions
    and wall time; and what tracking adds to a kmalloc+kfree pair."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "kmemleak_hold.c"
        src.write_text(KMEMLEAK_HOLD)
        m = Machine.booted(kmemleak=True)
        was = m.alloc_debug(might_sleep=False)
        m.kfree(m.kmalloc(64))  # warm: the slabs (of kmalloc-64 and kmemleak_object)
        a, p = call_insns(m, "kmalloc", 64, 0xCC0)
        f, _ = call_insns(m, "kfree", p)
        m.alloc_debug(might_sleep=was["might_sleep"])
        m.load_module(src)
        assert m.call("hold", objects) == 0
        m.kmemleak_scan()  # warm: translated code, the index's vmalloc
        with m.count_instructions() as n:
            leaks = m.kmemleak_scan()
        ms = _median(lambda: _per_op_us(m.kmemleak_scan, 3), 3) / 1000
    return [Row(f"kmemleak scan, {objects} live objects, 256 MiB, guest instructions", n[0],
                "insns", "", f"{len(leaks)} reported"),
            Row(f"kmemleak scan, {objects} live objects, 256 MiB, wall time", ms, "ms"),
            Row("kmalloc(64)+kfree with kmemleak tracking, debug off", a + f, "insns", "",
                "the fast path's pair without it: see above")]


def stopped_call_rows(m: Machine) -> list[Row]:
    """Why a stopped call is not rolled back automatically, and what a sweep costs."""
    from emu.check.sweep import budget_sweep

    start = m.snapshot()

    def pair() -> None:
        m.kfree(m.kmalloc(64))

    def pair_snapshotted() -> None:
        m.uc.context_save()  # what a pre-call rollback point per call would cost
        p = m.kmalloc(64)
        m.uc.context_save()
        m.kfree(p)

    plain = _median(lambda: _per_op_us(pair, 500), 3)
    m.restore(start)
    snapped = _median(lambda: _per_op_us(pair_snapshotted, 500), 3)
    m.restore(start)  # frees the copy-on-write layers those snapshots piled up
    rows = [Row("kmalloc+kfree round trip", plain, "us"),
            Row("  ... with a snapshot before each call", snapped, "us", "",
                "why abort() does not roll back")]
    t = time.perf_counter()
    report = budget_sweep(m, "kmalloc", 64, 0xCC0, cuts=range(1, 201))
    per_cut = (time.perf_counter() - t) / len(report.cuts) * 1000
    rows.append(Row("budget_sweep per cut (first kmalloc-64)", per_cut, "ms", "",
                    f"{len(report.failures)} unsound of {len(report.cuts)}"))
    m.restore(start)
    return rows


FAIL_CHAIN_SOURCE = """\
#include <linux/errno.h>
#include <linux/module.h>
#include <linux/slab.h>
void *bench_objs[64];
/* n allocations of growing sizes; any failure undoes the earlier ones */
int bench_fail_chain(long n)
{
\tfor (long i = 0; i < n; i++) {
\t\tbench_objs[i] = kmalloc(16 + 24 * i, GFP_KERNEL);
\t\tif (!bench_objs[i]) {
\t\t\twhile (i--)
\t\t\t\tkfree(bench_objs[i]);
\t\t\treturn -ENOMEM;
\t\t}
\t}
\treturn 0;
}
MODULE_LICENSE("GPL");
"""


def failure_sweep_rows(m: Machine, n: int = 32) -> list[Row]:
    """sweep_failures per allocation point against one run of the call plus a restore."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "bench_fail.c"
        src.write_text(FAIL_CHAIN_SOURCE)
        m.load_module(src)
    start = m.snapshot()

    def run_restore() -> None:
        m.call("bench_fail_chain", n)
        m.restore(start)

    m.sweep_failures("bench_fail_chain", n, roots=["bench_objs"], points=[1])  # DWARF, caches
    one = _median(lambda: _per_op_us(run_restore, 50), 3)
    t = time.perf_counter()
    runs = m.sweep_failures("bench_fail_chain", n, roots=["bench_objs"])
    per_point = (time.perf_counter() - t) / (len(runs) + 1) * 1e6  # + the baseline run
    m.restore(start)
    return [Row(f"call + restore ({n} kmallocs)", one, "us"),
            Row("sweep_failures per allocation point", per_point, "us",
                f"<= {2 * one:.0f} (2x)", f"{per_point / one:.2f}x; {len(runs)} points, "
                f"{len(runs.failures)} not ok")]


def bench_module_source(functions: int = 120) -> str:
    """A module of ``functions`` small list-walking functions (about 20 KB of text)."""
    parts = ["#include <linux/module.h>\n", "struct node { struct node *next; long v; };\n"]
    for i in range(functions):
        parts.append(f"long bench_fn_{i}(struct node *n, long k)\n{{\n\tlong s = {i};\n"
                     f"\tfor (; n; n = n->next)\n\t\ts += (n->v ^ k) * {i + 3} + (s >> 3);\n"
                     f"\treturn s;\n}}\n")
    parts.append("static int __init bench20k_init(void)\n{\n\treturn 0;\n}\n"
                 "static void __exit bench20k_exit(void)\n{\n}\n"
                 "module_init(bench20k_init);\nmodule_exit(bench20k_exit);\n"
                 'MODULE_LICENSE("GPL");\n')
    return "".join(parts)


def module_rows(m: Machine) -> list[Row]:
    """Load+init and unload of a cached ~20 KB module (the build is done once, before)."""
    import tempfile
    from pathlib import Path

    from emu.build.module import build_module

    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "bench20k.c"
        src.write_text(bench_module_source())
        b = build_module([src])
    kb = b.path.stat().st_size / 1024
    m.load_built_module(b).unload()  # first use: drgn types, caches
    loads, unloads = [], []
    for _ in range(20):
        t = time.perf_counter()
        mod = m.load_built_module(b)
        t1 = time.perf_counter()
        mod.unload()
        loads.append((t1 - t) * 1000)
        unloads.append((time.perf_counter() - t1) * 1000)
    size = mod.size
    with m.count_instructions() as n:
        m.load_built_module(b)
    with m.count_instructions() as u:
        m.unload_module(b.name)
    return [
        Row(f"module load+init, cached build ({kb:.0f} KB .ko, {size >> 10} KiB loaded)",
            statistics.median(loads), "ms", "<= 20"),
        Row("  ... guest instructions (vmalloc, load_module, vfree)", n[0], "insns", "",
            "deterministic"),
        Row("module unload", statistics.median(unloads), "ms"),
        Row("  ... guest instructions (delete_module)", u[0], "insns", "", "deterministic"),
    ]


# Boots one machine in a fresh process: wall time and the process's peak RSS.
_BOOT_CHILD = """
import json, sys, time
from emu import Machine
Machine.booted()  # the build and symbol caches, as in the parent
t = time.perf_counter()
Machine.booted(mem=sys.argv[1])
ms = (time.perf_counter() - t) * 1000
hwm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:"))
print(json.dumps({"ms": ms, "hwm_mib": hwm / 1024}))
"""


def _boot_child(mem: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", _BOOT_CHILD, mem], capture_output=True,
                         text=True, env=env, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def _many_entry_map(n: int) -> str:
    """A bootable map of exactly n entries: low RAM, then 4 KiB ranges with holes."""
    low = "0 0x9fc00 usable\n0xf0000 0x100000 reserved\n1M +255M usable\n"
    return low + "".join(f"{(4 << 30) + i * 0x2000:#x} +4K usable\n" for i in range(n - 3))


def memory_rows(repeat: int = 3, sizes: tuple[str, ...] = ("4G", "16G", "64G")) -> list[Row]:
    """Large RAM (host memory is committed only where the guest writes: struct pages)
    and long e820 maps (one Unicorn mapping per span, not per entry)."""
    rows = []
    for mem in sizes:
        r = _boot_child(mem)
        rows.append(Row(f"boot to ready, {mem[:-1]} GiB, fresh process", r["ms"], "ms"))
        rows.append(Row(f"  peak host RSS, {mem[:-1]} GiB", r["hwm_mib"], "MiB", "",
                        "struct pages: 1/64 of RAM"))
    one, many = parse_map("0 +256M usable\n"), parse_map(_many_entry_map(10_000))
    booted: list[Machine] = []

    def boot_ms(e820: object) -> float:
        t = time.perf_counter()
        m = Machine.booted(e820=e820)
        ms = (time.perf_counter() - t) * 1000
        booted[:] = [m]  # the last one, for the mapping count (another boot costs ~1 s)
        return ms

    base = _median(lambda: boot_ms(one), repeat)
    longest = _median(lambda: boot_ms(many), repeat)
    rows.append(Row("boot, 1-entry e820 map", base, "ms"))
    rows.append(Row("boot, 10000-entry e820 map, extra", longest - base, "ms", "< 1000"))
    rows.append(Row("  Unicorn mappings for 10000 entries", len(list(booted[0].uc.mem_regions())),
                    "count", "<= 64", "deterministic"))
    return rows



def _forty_case_suite(n: int = 40) -> str:
    """A KUnit file with n small cases (a kmalloc, a check, a kfree each)."""
    cases = "".join(
        f"static void bench_case_{i}(struct kunit *test)\n{{\n"
        f"\tvoid *p = kmalloc({8 * (i + 1)}, GFP_KERNEL);\n"
        f"\tKUNIT_EXPECT_NOT_NULL(test, p);\n\tkfree(p);\n}}\n" for i in range(n))
    table = "".join(f"\tKUNIT_CASE(bench_case_{i}),\n" for i in range(n))
    return ("#include <kunit/test.h>\n#include <linux/slab.h>\n" + cases
            + f"static struct kunit_case bench_cases[] = {{\n{table}\t{{}},\n}};\n"
            "static struct kunit_suite bench_suite = {\n\t.name = \"kmemu-bench\",\n"
            "\t.test_cases = bench_cases,\n};\nkunit_test_suite(bench_suite);\n"
            "MODULE_LICENSE(\"GPL\");\n")


def kunit_rows(m: Machine) -> list[Row]:
    """KUnit: the host-driven runner's cost per case, and `kmemu kunit` from a cold start."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from emu.build.module import ModuleError, build_module
    from emu.check import kunit

    suites = [s for s in kunit.builtin_suites(m) if s.name == "list-kernel-test"]
    ncases = len(suites[0].cases)

    marginal, one = _kunit_case_ms(m, suites, "*.list_test_list_init", ncases, 7)
    rows = [Row("KUnit per case (restore + kunit_case_run + KTAP), marginal",
                marginal, "ms", "<= 1",
                f"list-kernel-test: {ncases} cases vs 1; bodies are tiny"),
            Row("KUnit suite fixed cost (header, suite begin/end, snapshots)", one, "ms")]
    rows += kunit_insn_rows(m)
    rows += module_kunit_rows()
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "bench_kunit.c"
        src.write_text(_forty_case_suite())
        cmd = [sys.executable, "-m", "emu", "kunit", str(src)]
        try:  # the module into the cache (its key has the path): the timed run reuses it
            build_module([src])
        except ModuleError:
            pass  # the timed run reports the error
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        wall = (time.perf_counter() - t) * 1000
    note = "cold process, module cached" if r.returncode == 0 else \
        f"FAILED: {(r.stderr or r.stdout).strip()[:60]}"
    rows.append(Row("kmemu kunit, 40-case suite, wall time", wall, "ms", "", note))
    return rows


def kunit_insn_rows(m: Machine) -> list[Row]:
    from emu.check import kunit

    suite = next(s for s in kunit.builtin_suites(m) if s.name == "list-kernel-test")
    snap = m.snapshot()
    m.call("kunit_suite_begin", suite.address, 1)  # as the runner: hooks patched on, once
    with m.count_instructions() as n:
        m.call("kunit_case_run", suite.address, 0, 1)
    m.restore(snap)
    return [Row("  kunit_case_run(list_test_list_init) guest instructions", n[0], "insns",
                "", "deterministic")]


def _kunit_case_ms(m: Machine, suites: list, one_case: str, ncases: int,
                   repeat: int) -> tuple[float, float]:
    """(marginal ms per case, ms for the suite with one case): all ``ncases`` cases
    minus the single case ``one_case``, per extra case."""
    from emu.check import kunit

    def run_ms(filter: str) -> float:
        t = time.perf_counter()
        kunit.run_suites(m, filter=filter, suites=suites)
        return (time.perf_counter() - t) * 1000

    whole = _median(lambda: run_ms("*"), repeat)
    one = _median(lambda: run_ms(one_case), repeat)
    return (whole - one) / (ncases - 1), one


def module_kunit_rows(ncases: int = 40) -> list[Row]:
    """KUnit per case for a suite in a loaded module: every case restores a snapshot
    taken with the module loaded, so this is where translated module code is (or is
    not) thrown away at each restore."""
    import tempfile
    from pathlib import Path

    from emu.check import kunit

    m = Machine.booted()
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "bench_kunit.c"
        src.write_text(_forty_case_suite(ncases))
        mod = m.load_module(src)
    suites = kunit.module_suites(m, mod)

    marginal, _ = _kunit_case_ms(m, suites, "*.bench_case_0", ncases, 5)
    return [Row("KUnit per case, suite in a module, marginal", marginal,
                "ms", "<= 1", f"kmemu-bench: {ncases} cases vs 1 (kmalloc+check+kfree)")]


def debugger_rows(m: Machine) -> list[Row]:
    """What debugging costs: nothing for runs without hooks in their path."""
    from emu import BreakpointHit

    def workload() -> None:
        m.kfree(m.kmalloc(64))

    plain = _median(lambda: _per_op_us(workload, 500), 3)
    rows = [Row("kmalloc(64)+kfree round trip, no debug hooks", plain, "us")]
    with m.breakpoint("vfree"):  # installed, never hit by this workload
        bp = _median(lambda: _per_op_us(workload, 500), 3)
    rows.append(Row("  ... with a breakpoint elsewhere (vfree)", bp, "us", "", "no slowdown"))
    with m.watchpoint(m.var("zones").address_, 8):  # a watch on bytes nobody writes here
        wp = _median(lambda: _per_op_us(workload, 500), 3)
    rows.append(Row("  ... with a watchpoint elsewhere", wp, "us", "", "no slowdown"))
    bp_k = m.break_at("kmalloc")
    try:
        m.kmalloc(64)
    except BreakpointHit as e:
        call = e.call
        t = time.perf_counter()
        n = 0
        while not call.done and n < 200:
            call.stepi()
            n += 1
        rows.append(Row("stepi, per instruction", (time.perf_counter() - t) / n * 1e6, "us"))
        if not call.done:
            call.resume()
        m.kfree(call.result or 0)
    finally:
        bp_k.remove()
    return rows


def vmalloc_rows(m: Machine) -> list[Row]:
    """vmalloc costs; the long-busy-list cost per allocation must grow like log n."""
    snap = m.snapshot()

    def insns(fn: str, *args: int) -> tuple[int, int]:
        with m.count_instructions() as n:
            r = m.call(fn, *args)
        return n[0], r

    m.vfree(m.vmalloc(4 * 4096))
    m.purge_vmap()
    a, v = insns("vmalloc", 4 * 4096)
    f, _ = insns("vfree", v)
    p, _ = insns("vm_unmap_aliases")
    rows = [Row("vmalloc(4 pages)+vfree, no purge", a + f, "insns"),
            Row("  ... plus the purge", a + f + p, "insns")]
    live = 0
    for target in (1000, 15000):
        m.call("kmemu_test_vmalloc_many", target - live, 4096)
        live = target
        n, w = insns("vmalloc", 4096)
        rows.append(Row(f"vmalloc(1 page) with {target} live areas", n, "insns", "",
                        "grows like log n"))
        m.vfree(w)
    m.restore(snap)
    return rows


def call_insns(m: Machine, fn: str, *args: int) -> tuple[int, int]:
    """Guest instructions of ``m.call(fn, *args)`` beyond an empty call's (the entry and
    return every call pays), and the call's result."""
    with m.count_instructions() as n:
        r = m.call(fn, *args)
    with m.count_instructions() as base:
        m.call("kmemu_test_nop")
    return n[0] - base[0], r


def slab_rows(m: Machine) -> list[Row]:
    """kmalloc/kfree costs and slab memory overhead on a mixed workload."""
    p = m.kmalloc(64)
    m.kfree(p)
    was = m.alloc_debug(might_sleep=False)  # debug off: not even might_sleep's inline check
    a, p = call_insns(m, "kmalloc", 64, 0xCC0)
    f, _ = call_insns(m, "kfree", p)
    m.alloc_debug(might_sleep=was["might_sleep"])
    rows = [Row("kmalloc(64)+kfree fast path, debug off", a + f, "insns", "<= 90"),
            Row("  kmalloc(64) alone", a, "insns"), Row("  kfree alone", f, "insns")]
    snap = m.snapshot()
    before = {c.name: c.nr_slabs << c.order for c in m.caches()}
    requested = 0
    ptrs = []
    for i in range(600):  # a deterministic mix of small and medium requests
        size = (i * 37) % 700 + 1
        ptrs.append(m.kmalloc(size))
        requested += size
    held = sum(((c.nr_slabs << c.order) - before.get(c.name, 0)) * 4096 for c in m.caches())
    rows.append(Row("slab memory held / requested, mixed 1..700 B", held / requested, "x",
                    "", f"{requested} B requested, {held} B in slabs"))
    m.restore(snap)
    return rows


def trace_event_rows(m: Machine) -> list[Row]:
    """kmalloc(64)+kfree with the kmem trace events off, on, and everything on (debug off,
    as the slab rows), in guest instructions and wall time; ``m`` is restored."""
    snap = m.snapshot()
    was = m.alloc_debug(might_sleep=False)

    def pair() -> int:
        a, p = call_insns(m, "kmalloc", 64, 0xCC0)
        f, _ = call_insns(m, "kfree", p)
        return a + f

    def pair_us() -> float:
        def one() -> None:
            m.kfree(m.kmalloc(64))
        return _median(lambda: _per_op_us(one, 300), 3)

    m.kfree(m.kmalloc(64))
    rows = [Row("kmalloc(64)+kfree, trace events off", pair(), "insns", "= slab row",
                "each event's static key: a nop only behind slab_hooks_key")]
    off_us = pair_us()
    m.tracing.enable("kmem:kmalloc", "kmem:kfree")
    rows.append(Row("kmalloc(64)+kfree, kmem:kmalloc+kfree on", pair(), "insns", "",
                    "local clock: two port reads per event"))
    on_us = pair_us()
    m.tracing.enable("kmem:*", "vmalloc:*")
    rows.append(Row("kmalloc(64)+kfree, every kmem/vmalloc event on", pair(), "insns"))
    rows += [Row("kmalloc+kfree pair, events off (wall)", off_us, "us"),
             Row("kmalloc+kfree pair, kmalloc+kfree events on (wall)", on_us, "us")]
    m.alloc_debug(might_sleep=was["might_sleep"])
    m.restore(snap)
    return rows


def kmem_cache_rows(m: Machine) -> list[Row]:
    """kmem_cache_alloc+kmem_cache_free on a dedicated 64-byte cache, debug off."""
    snap = m.snapshot()
    cache = m.kmem_cache_create("bench_cache", 64)
    m.call("kmem_cache_free", cache, m.call("kmem_cache_alloc", cache, 0xCC0))  # warm
    m.alloc_debug(might_sleep=False)  # debug off (restored with the snapshot)
    a, obj = call_insns(m, "kmem_cache_alloc", cache, 0xCC0)
    f, _ = call_insns(m, "kmem_cache_free", cache, obj)
    m.restore(snap)
    return [Row("kmem_cache_alloc+kmem_cache_free, dedicated cache", a + f, "insns", "<= 60")]


def page_allocator_rows(m: Machine) -> list[Row]:
    """Guest instructions of the page allocator's paths (deterministic)."""
    gfp = 0xCC0  # GFP_KERNEL
    m.call("kmemu_test_alloc_free", gfp, 0)  # warm the pcp list

    def insns(fn: str, *args: int) -> int:
        return call_insns(m, fn, *args)[0]

    # debug off: might_sleep's and the bad-page checks (on at boot) off, so no hook
    # holds page_hooks_key; KUnit tracking and fault injection are off here
    was = m.alloc_debug(might_sleep=False, bad_page=False)
    off = insns("kmemu_test_alloc_free", gfp, 0)
    m.alloc_debug(might_sleep=was["might_sleep"], bad_page=was["bad_page"])
    rows = [Row("alloc_pages+__free_pages order 0 (pcp), debug off", off, "insns", "<= 100"),
            Row("alloc_pages+__free_pages order 0 (pcp), debug on",
                insns("kmemu_test_alloc_free", gfp, 0), "insns")]
    va = m.alloc_page_struct(gfp, 0)
    rows.append(Row("  alloc_pages order 0 alone", insns("alloc_pages", gfp, 0), "insns"))
    rows.append(Row("  __free_pages order 0 alone", insns("__free_pages", va, 0), "insns"))
    rows.append(Row("alloc+free order 3 (buddy lists)", insns("kmemu_test_alloc_free", gfp, 3),
                    "insns"))
    t = time.perf_counter()
    for _ in range(1000):
        m.call("kmemu_test_alloc_free", gfp, 0)
    rows.append(Row("alloc+free order 0 from Python, per pair", (time.perf_counter() - t) * 1000,
                    "us"))
    return rows


def print_table(rows: list[Row]) -> None:
    w = max(len(r.name) for r in rows)
    print(f"{'benchmark':<{w}}  {'value':>12}  unit   target")
    for r in rows:
        val = f"{r.value:,.0f}" if r.unit in ("insns", "count") else f"{r.value:,.3f}"
        print(f"{r.name:<{w}}  {val:>12}  {r.unit:<5}  {r.target or r.note}")


# --- comparing with a saved run ----------------------------------------------------------

#: Units whose figures are deterministic: compared exactly.
EXACT_UNITS = ("insns", "count")
#: Default noise threshold for measured figures: a ratio beyond 1 + NOISE is flagged.
NOISE = 0.25


def load_rows(path: str | Path) -> list[Row]:
    """Rows of a run saved by ``kmemu bench --json`` / ``--save``; :class:`BadArgument`
    naming the file if it is not one."""
    from emu.core.errors import BadArgument

    try:
        data = json.loads(Path(path).read_text())
        return [Row(str(d["name"]), float(d["value"]), str(d["unit"]), str(d.get("target", "")),
                    str(d.get("note", ""))) for d in data]
    except OSError as e:
        raise BadArgument(f"cannot read {path}: {e.strerror}") from None
    except (ValueError, TypeError, KeyError) as e:
        raise BadArgument(f"{path} is not a saved kmemu bench run (a JSON list of rows with "
                          f"name, value and unit): {e}") from None


def save_rows(rows: list[Row], path: str | Path) -> None:
    Path(path).write_text(json.dumps([r.to_dict() for r in rows], indent=1) + "\n")


@dataclass
class Comparison:
    row: Row
    ref: Row | None
    verdict: str  # "", "REGRESSED", "improved", "new"

    @property
    def ratio(self) -> float | None:
        if self.ref is None or not self.ref.value:
            return None
        return self.row.value / self.ref.value


def higher_is_better(unit: str) -> bool:
    """Rates (``/s``, ``ops/s``: the gdb stub's stepi rate) are better higher; every
    other figure of the bench (times, instructions, ratios, sizes) is better lower."""
    return unit.endswith("/s")


def compare(rows: list[Row], ref: list[Row], noise: float = NOISE) -> list[Comparison]:
    """Each row beside the saved one of the same name, then the saved rows this run no
    longer has (verdict "gone").  Instruction counts (and other deterministic counts)
    regress on any increase; measured figures (times, ratios, sizes) when the ratio to
    the saved one exceeds ``1 + noise`` in the worse direction: up for all of them but
    rates, down for rates (:func:`higher_is_better`)."""
    by_name = {r.name: r for r in ref}
    out = []
    for r in rows:
        old = by_name.get(r.name)
        if old is None or old.unit != r.unit:
            out.append(Comparison(r, None, "new"))
            continue
        if r.unit in EXACT_UNITS:
            verdict = ("REGRESSED" if r.value > old.value else
                       "improved" if r.value < old.value else "")
        else:
            ratio = r.value / old.value if old.value else float("inf") if r.value else 1.0
            if higher_is_better(r.unit):
                ratio = 1 / ratio if ratio else float("inf")
            verdict = ("REGRESSED" if ratio > 1 + noise else
                       "improved" if ratio < 1 / (1 + noise) else "")
        out.append(Comparison(r, old, verdict))
    now = {r.name for r in rows}
    out += [Comparison(old, old, "gone") for old in ref if old.name not in now]
    return out


def _fmt(r: Row) -> str:
    return f"{r.value:,.0f}" if r.unit in EXACT_UNITS else f"{r.value:,.3f}"


def print_comparison(cmp: list[Comparison], noise: float, ref_name: str) -> int:
    """Print the comparison; return the number of regressions."""
    w = max(len(c.row.name) for c in cmp)
    print(f"compared with {ref_name}: instruction counts exactly, measured figures beyond "
          f"a ratio of {1 + noise:g} (noise threshold)")
    print(f"{'benchmark':<{w}}  {'now':>12}  {'saved':>12}  {'ratio':>6}  unit   verdict")
    for c in cmp:
        gone = c.verdict == "gone"  # (row is the saved one: this run has none)
        now = "-" if gone else _fmt(c.row)
        old = _fmt(c.ref) if c.ref else "-"
        ratio = f"{c.ratio:.2f}" if c.ratio is not None and not gone else "-"
        print(f"{c.row.name:<{w}}  {now:>12}  {old:>12}  {ratio:>6}  {c.row.unit:<5}  "
              f"{c.verdict}")
    bad = sum(c.verdict == "REGRESSED" for c in cmp)
    print(f"{bad} regression(s)" if bad else "no regressions")
    return bad
