"""Layer 5: ``m.replay(trace)``, a Linux kmem trace replayed inside the guest.

The trace is parsed (:mod:`emu.kernel.tracetext`), compiled into 16-byte ops
(:mod:`emu.machine.replay_compile`), and run by the guest loop of
``kernel/replay.c`` a ring of up to 4096 ops per host call, so an op costs the
allocator's own instructions plus the loop's few.  After each batch the host
reads what the report needs: failures (by GFP), and, for the timeline, memory
held, free blocks per order, the unusable free space index and per-cache
occupancy.

>>> r = m.replay("trace.txt.gz")            # doctest: +SKIP
>>> r.ops["kmalloc"], r.limit_fraction      # doctest: +SKIP
(51234, 0.71)
>>> print(r.report())                       # doctest: +SKIP

Figures (every time below is summed over the batches, on two clocks: the
thread's CPU time, which leaves out what the OS gives other processes, and the
wall clock; :mod:`emu.machine.replay_limit` says why):

- ``ops_per_second``: guest ops replayed per CPU second of the replay proper:
  copying each batch into the ring and the guest entry that runs it.  Parsing,
  compiling, cache creation, census checks and timeline samples are not in it
  (they are host work between batches); ``wall_ops_per_second`` is the same on
  the wall clock, ``end_to_end_ops_per_second`` the ops over the wall time of
  the whole replay (parse, compile, batches, samples, the report's reads; not
  the limit's loop or the counting twin, which are measurement).
- ``limit_fraction``: ``ops_per_second`` over the emulator's limit for the same
  ops, measured in the same run: guest instructions per CPU second on a plain
  loop (``kmemu_replay_spin``, run in slices between the batches, each about as
  long as the batch before it) divided by the instructions an op takes
  (``mean_insns_per_op``).  ``wall_limit_fraction``: both on the wall clock.
- ``insns_per_op``: guest instructions per op by type, counted on a twin
  machine (same memory map, command line, KASAN choice) that replays the same
  ops: ``count_ops`` of them, spread over the trace (windows of 64 in each
  batch, at most half of it), run one guest entry each with the counter on.
  The counter's block hook stays in code translated while it is on, which made
  timed runs 2-3x slower, hence the twin.  The cost of an empty entry is
  subtracted, so it is the op plus one loop turn.
- ``held``: pages taken from the page allocator since the replay began (buddy
  free lists and pcp lists both count as free), in bytes, sampled after every
  batch (``peak_held`` is the largest sample).  ``requested``: the
  bytes the trace's live allocations asked for (``bytes_req``; pages: the
  block).  ``allocated``: what the guest gave them (kmalloc's size class, the
  cache's object size, the page block).
"""

from __future__ import annotations

import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from emu.core.errors import BadArgument, KmemuError, MachineError
from emu.kernel import extfrag, tracetext
from emu.kernel import gfp as gfpmod
from emu.kernel.mm import NR_PAGE_ORDERS, read_zones
from emu.machine.replay_census import KmallocNames
from emu.machine.replay_compile import (
    CACHE_ALLOC,
    KMALLOC,
    OP,
    OP_NAMES,
    PAGES_ALLOC,
    Compiled,
    compile_trace,
)
from emu.machine.replay_limit import SPIN_REGS, LimitMeter, measure_limit

if TYPE_CHECKING:
    from emu.machine.core import Machine

#: Progress callback: (ops done, ops in all, seconds of replay so far).
Progress = Callable[[int, int, float], None]
DEFAULT_COUNT_OPS = 2000
#: at most about this many timeline samples (one per batch below it; a sample reads
#: every cache and zone, milliseconds each, so millions of ops would spend seconds there)
MAX_SAMPLES = 500


class ReplayError(KmemuError):
    """A trace that cannot be replayed (unreadable file, nothing to replay), or a
    replay whose guest state disagrees with the trace (census mode)."""


@dataclass
class ReplayResult:
    """What a replay did; every field is also in :meth:`to_dict` (``--json``)."""

    slab: str = "slub"
    lines: int = 0
    ops: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    unreadable: int = 0
    first_unreadable: str | None = None
    lost_frees: int = 0
    lost_events: int = 0
    unknown_gfp: dict[str, int] = field(default_factory=dict)
    failures: dict[str, dict[str, int]] = field(default_factory=dict)  # op -> gfp -> count
    ops_run: int = 0  # guest ops (replayed events + the frees of lost frees)
    seconds: float = 0.0  # ring writes + guest runs, wall clock
    cpu_seconds: float = 0.0  # the same, the thread's CPU time
    parse_seconds: float = 0.0  # parse and compile, wall clock
    end_to_end_seconds: float = 0.0  # the whole replay, wall (not the limit, not the twin)
    ops_per_second: float = 0.0  # ops_run / cpu_seconds
    wall_ops_per_second: float = 0.0  # ops_run / seconds
    end_to_end_ops_per_second: float = 0.0  # ops_run / end_to_end_seconds
    guest_insns_per_second: float = 0.0  # the plain loop (calls, loads, stores), CPU time
    wall_guest_insns_per_second: float = 0.0  # the same loop on the wall clock
    register_loop_insns_per_second: float = 0.0  # an empty register-only loop
    insns_per_op: dict[str, float] = field(default_factory=dict)
    mean_insns_per_op: float = 0.0
    limit_ops_per_second: float = 0.0
    limit_fraction: float = 0.0  # ops_per_second / limit_ops_per_second (CPU time)
    wall_limit_fraction: float = 0.0  # the same ratio with both sides on the wall clock
    peak_held: int = 0
    final_held: int = 0
    requested: int = 0  # live at the end
    peak_requested: int = 0
    allocated: int = 0  # live at the end
    by_cache: dict[str, dict[str, int]] = field(default_factory=dict)
    waste_by_call_site: dict[str, int] = field(default_factory=dict)
    unusable_index: dict[str, list[float]] = field(default_factory=dict)  # zone -> per order
    extfrag_index: dict[str, list[float]] = field(default_factory=dict)
    unusable_text: str = ""
    extfrag_text: str = ""
    slabinfo: str = ""
    buddyinfo: str = ""
    timeline: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)

    def report(self, top: int = 10) -> str:
        """The report as text (what ``kmemu replay`` prints)."""
        from emu.machine.replay_report import format_report

        return format_report(self, top)


def _lines(src: str | Path | Iterable[str]) -> Iterable[str]:
    if isinstance(src, (str, Path)):
        p = Path(src)
        if isinstance(src, str) and "\n" in src:
            return src.splitlines()
        if not p.exists():
            raise ReplayError(f"no trace file {str(src)!r}")
        return tracetext.open_text(p)
    if isinstance(src, Iterable) and not isinstance(src, (bytes, bytearray)):
        return src
    raise BadArgument(f"replay() takes a trace file's path or its lines, got {type(src).__name__}")


def slab_pages(cv) -> int | None:  # noqa: ANN001 - any allocator's cache view
    """Pages in a cache's slabs (SLUB, SLAB); None for SLOB, whose pages all caches share."""
    n = getattr(cv, "nr_slabs", None)
    return None if n is None else n << cv.order


def num_objs(cv) -> int:  # noqa: ANN001
    """Objects a cache's slabs have room for (SLOB: the ones out, it has no slabs)."""
    return getattr(cv, "total_objects", cv.active_objs)


#: SLOB's pages, shared by every cache, under one name in by_cache
SLOB_PAGES = "slob pages (all caches)"


class _Views:
    """Cheap reads of the page allocator for the per-batch samples."""

    def __init__(self, m: Machine) -> None:
        self.m = m
        prog = m.program
        self.zones = [prog["zones"][i] for i in range(len(prog["zones"]))]
        self.zones = [z for z in self.zones if int(z.present_pages)]

    def used_pages(self) -> int:
        n = 0
        for z in self.zones:
            n += int(z.managed_pages) - int(z.nr_free_pages) - int(z.pcp.count)
        return n

    def free_by_order(self) -> list[int]:
        out = [0] * NR_PAGE_ORDERS
        for z in self.zones:
            for o in range(NR_PAGE_ORDERS):
                out[o] += int(z.free_area[o].nr_free)
        return out


class _Replayer:
    def __init__(self, m: Machine, comp: Compiled, result: ReplayResult, *, timeline: bool,
                 count_ops: int, progress: Progress | None, census: bool) -> None:
        self.m, self.c, self.r = m, comp, result
        self.timeline, self.count_ops, self.progress, self.census = \
            timeline, count_ops, progress, census
        self.created: dict[int, int] = {}  # cache index -> struct kmem_cache *
        self.failed: dict[int, int] = {}  # alloc op -> bytes requested (never held)
        self.failures: dict[str, Counter[str]] = {}
        self.views = _Views(m)
        self.base_caches: dict[str, tuple[int, int]] = {}
        self.kmalloc_names = KmallocNames(m) if census else None
        self.counted: dict[str, list[int]] = {}  # op type -> instructions of each counted op
        self.empty_entry: int | None = None

    # -- setup -----------------------------------------------------------------------
    def setup(self) -> None:
        m, c = self.m, self.c
        self.ring_pa = m._sym_pa("kmemu_replay_ring")  # noqa: SLF001
        self.caches_va = m.symbol("kmemu_replay_caches")
        slots = m.call("vzalloc", max(c.nslots, 1) * 8)
        if not slots:
            raise ReplayError(f"cannot vzalloc the replay's slot table "
                              f"({c.nslots} slots, {c.nslots * 8} bytes)")
        self.slots = slots
        m.write_virt(m.symbol("kmemu_replay_slots"), struct.pack("<Q", slots))
        m.write_virt(m.symbol("kmemu_replay_nslots"), struct.pack("<Q", c.nslots))
        m.write_virt(m.symbol("kmemu_replay_bad"), bytes(8))
        self.existing = {cv.name: cv for cv in self._caches()}
        self.base_caches = {n: (slab_pages(cv), num_objs(cv)) for n, cv in self.existing.items()}
        self.base_used = self.views.used_pages()

    def teardown(self) -> None:
        """Forget and vfree the slot table.  The allocations still live and the caches
        the replay made stay: the state after a replay is what the user looks at
        (slabinfo, the memory map).  After an oops the machine needs a restore()
        anyway, so the table is then left alone."""
        m = self.m
        m.write_virt(m.symbol("kmemu_replay_slots"), bytes(8))
        m.write_virt(m.symbol("kmemu_replay_nslots"), bytes(8))
        slots = getattr(self, "slots", 0)
        if slots and m.state == "ready":
            try:
                m.call("vfree", slots)
            except KmemuError:  # a kernel that just oopsed: leave it for the restore()
                pass

    def _caches(self) -> list:
        try:
            return self.m.caches()
        except KmemuError:
            return []

    def create_caches(self, start: int, end: int) -> None:
        m = self.m
        for idx, spec in enumerate(self.c.caches):
            if idx in self.created or not start <= spec.first_op < end:
                continue
            cv = self.existing.get(spec.name)
            if cv is not None and cv.object_size >= spec.object_size:
                ptr = cv.address  # the kernel has this cache: use it, as the traced kernel did
            else:
                name = spec.name if cv is None else (spec.name[:27] + "-rpl")
                ptr = m.kmem_cache_create(name, spec.object_size)
                if not ptr:
                    raise ReplayError(f"kmem_cache_create({name!r}, {spec.object_size}) failed")
                spec.name = name
            self.created[idx] = ptr
            m.write_virt(self.caches_va + 8 * idx, struct.pack("<Q", ptr))

    # -- running ---------------------------------------------------------------------
    def run_batch(self, start: int, end: int) -> tuple[float, float]:
        """Ops [start, end): the ring write and the guest entry, timed (CPU, wall)."""
        m = self.m
        ops = bytes(self.c.ops[start * OP.size : end * OP.size])
        c0, w0 = time.thread_time(), time.perf_counter()
        m.write_phys(self.ring_pa, ops)
        m.call("kmemu_replay_run", end - start)
        dc, dw = time.thread_time() - c0, time.perf_counter() - w0
        self.collect_failures(start)
        return dc, dw

    def collect_failures(self, start: int) -> None:
        m = self.m
        n = m.read_u64(m.symbol("kmemu_replay_nfailed"))
        if not n:
            return
        raw = m.read_virt(m.symbol("kmemu_replay_failed"), 4 * n)
        for (j,) in struct.iter_unpack("<I", raw):
            i = start + j
            kind, _order, _cache, _slot, _size, gfp = self.c.op_at(i)
            self.failures.setdefault(OP_NAMES[kind], Counter())[gfpmod.format(gfp)] += 1
            self.failed[i] = self.c.req_of[i]

    def count_ops_singly(self, start: int, end: int) -> None:
        """Run ops [start, end) one guest entry each with the instruction counter on,
        adding each op's count (beyond an empty entry's) to its type's tally (the
        counting pass: failures were collected by the timed one)."""
        m, c = self.m, self.c
        if self.empty_entry is None:
            with m.count_instructions() as base:
                m.call("kmemu_replay_run", 0)
            self.empty_entry = base[0]
        # One counter for the whole window: each op's count_instructions() then nests
        # in it.  Acquired per op, the counter's hook was added and the translated code
        # flushed every time, and the op ran retranslated: ~4 ms instead of ~50 us.
        with m.count_instructions():
            for i in range(start, end):
                self.create_caches(i, i + 1)
                m.write_phys(self.ring_pa, bytes(c.ops[i * OP.size : (i + 1) * OP.size]))
                with m.count_instructions() as n:
                    m.call("kmemu_replay_run", 1)
                kind = OP_NAMES[c.ops[i * OP.size]]
                self.counted.setdefault(kind, []).append(n[0] - self.empty_entry)

    def requested_at(self, batch_index: int, op_count: int) -> int:
        req = self.c.requested_after[batch_index]
        for i, r in self.failed.items():  # failed allocations hold nothing until their free
            if i < op_count and self.c.free_at.get(i, op_count) >= op_count:
                req -= r
        return req

    def sample(self, op_count: int, batch_index: int, held: int, req: int) -> dict[str, object]:
        free = self.views.free_by_order()
        by_cache, occ = {}, {}
        for cv in self._caches():
            pages = slab_pages(cv)
            if self.base_caches.get(cv.name) == (pages, num_objs(cv)) and \
                    cv.address not in self.created.values():
                continue
            if pages is not None:
                by_cache[cv.name] = pages * 4096
            occ[cv.name] = [cv.active_objs, num_objs(cv)]
        if self.m.slab == "slob":
            by_cache[SLOB_PAGES] = self.m.slob_info()["pages"] * 4096
        return {"op": op_count, "held": held, "requested": req,
                "by_cache": by_cache, "free_by_order": free,
                "unusable": [extfrag.unusable_index(free, o) / 1000 for o in range(NR_PAGE_ORDERS)],
                "slab_occupancy": occ}

    def run(self, meter: LimitMeter | None = None) -> None:
        """The timed pass: every batch in one guest entry, then the per-batch reads;
        with a ``meter``, a slice of the plain loop as long as the batch after each."""
        c, r = self.c, self.r
        nbatches = -(-c.n_ops // c.batch)
        timed = cpu = 0.0
        held = req = peak_held = peak_req = 0
        every = -(-nbatches // MAX_SAMPLES)  # timeline: every batch, or every k-th (and the last)
        for b in range(nbatches):
            start, end = b * c.batch, min((b + 1) * c.batch, c.n_ops)
            self.create_caches(start, end)
            dc, dw = self.run_batch(start, end)
            cpu += dc
            timed += dw
            if meter is not None:
                meter.slice(dc)
            if self.census:
                from emu.machine.replay_census import check_census

                problems = check_census(self.m, self, b)
                if problems:
                    raise ReplayError(f"after op {end}: " + "; ".join(problems[:5]))
            held = (self.views.used_pages() - self.base_used) * 4096
            req = self.requested_at(b, end)
            peak_held, peak_req = max(peak_held, held), max(peak_req, req)
            if self.timeline and (b % every == 0 or b == nbatches - 1):
                r.timeline.append(self.sample(end, b, held, req))
            if self.progress is not None:
                self.progress(end, c.n_ops, timed)
        r.ops_run = c.n_ops
        r.seconds, r.cpu_seconds = timed, cpu
        r.ops_per_second = c.n_ops / cpu if cpu > 0 else 0.0
        r.wall_ops_per_second = c.n_ops / timed if timed > 0 else 0.0
        # held is sampled after each batch; requested is known per op from the trace,
        # exactly unless some allocation failed in the guest (then: the batch samples)
        r.peak_held, r.final_held, r.requested = peak_held, held, req
        r.peak_requested = peak_req if self.failed else c.peak_requested
        r.failures = {k: dict(v) for k, v in sorted(self.failures.items())}
        bad = self.m.read_u64(self.m.symbol("kmemu_replay_bad"))
        if bad:
            raise MachineError(f"the guest refused {bad} replay op(s) (slot or type out of range)")

    def count_on_twin(self) -> None:
        """Instructions per op, counted on a twin machine (booted with this one's memory
        map, command line and KASAN choice), so the timed pass's translated code never
        carries the counter's hook (it stays in code translated while it is on, which
        made timed runs 2-3x slower) and this machine needs no snapshot (its
        copy-on-write made them slower still).  The twin runs the same ops from the
        start: ``count_ops`` of them in windows spread over every batch (at most half
        of one), each its own counted entry, the rest in uncounted entries."""
        from emu.machine.core import Machine

        m, c, r = self.m, self.c, self.r
        twin = Machine(e820=m.e820, cmdline=m.cmdline, kasan=m.kasan,
                       budget_seconds=m.budget_seconds)
        twin.boot()
        tw = _Replayer(twin, c, ReplayResult(), timeline=False, count_ops=self.count_ops,
                       progress=None, census=False)
        tw.setup()
        nbatches = -(-c.n_ops // c.batch)
        per_batch = -(-min(self.count_ops, c.n_ops) // nbatches)
        for b in range(nbatches):
            lo, hi = b * c.batch, min((b + 1) * c.batch, c.n_ops)
            pos = lo
            for w0, w1 in _windows(lo, hi, min(per_batch, (hi - lo) // 2)):
                tw.run_quiet(pos, w0)
                tw.count_ops_singly(w0, w1)
                pos = w1
            tw.run_quiet(pos, hi)
        r.insns_per_op = {k: round(sum(v) / len(v), 1) for k, v in sorted(tw.counted.items())}
        if tw.counted:  # the mean over the whole trace's mix of op types
            mix = Counter(OP_NAMES[c.ops[i * OP.size]] for i in range(c.n_ops))
            r.mean_insns_per_op = sum(r.insns_per_op[k] * n for k, n in mix.items()
                                      if k in r.insns_per_op) / \
                sum(n for k, n in mix.items() if k in r.insns_per_op)

    def run_quiet(self, lo: int, hi: int) -> None:
        """Ops [lo, hi) in one entry, nothing timed or collected (the counting pass)."""
        if lo < hi:
            self.create_caches(lo, hi)
            self.m.write_phys(self.ring_pa, bytes(self.c.ops[lo * OP.size : hi * OP.size]))
            self.m.call("kmemu_replay_run", hi - lo)


COUNT_WINDOW = 64  # ops counted one by one in a row, between timed runs of a batch


def _windows(start: int, end: int, n: int) -> list[tuple[int, int]]:
    """``n`` ops of [start, end) to count, as windows of COUNT_WINDOW spread evenly."""
    if n <= 0:
        return []
    k = -(-n // COUNT_WINDOW)
    step = (end - start) // k
    out = []
    for j in range(k):
        w0 = start + j * step
        out.append((w0, min(w0 + min(COUNT_WINDOW, n - j * COUNT_WINDOW), end)))
    return out


def _price(m: Machine, comp: Compiled, created: dict[int, int], failed: set[int],
           r: ReplayResult) -> None:
    """The guest's allocation sizes: per-cache figures, waste by call site, allocated."""
    kmalloc_size: dict[int, int] = {}
    kmalloc_cache: dict[int, str] = {}
    caches = {cv.address: cv for cv in _safe_caches(m)}
    try:
        names: KmallocNames | None = KmallocNames(m)
    except KmemuError:
        names = None

    def ksize_kmalloc(size: int) -> int:
        if size not in kmalloc_size:
            kmalloc_size[size] = m.call("kmalloc_size_roundup", size)
            try:
                name = names(size, 0) if names is not None else None
            except KmemuError:  # an allocator without kmalloc_slab (SLOB)
                name = None
            kmalloc_cache[size] = name or "kmalloc (pages)"
        return kmalloc_size[size]

    cache_size = {i: (caches[p].size if p in caches else comp.caches[i].object_size)
                  for i, p in created.items()}

    def price(kind: int, key: int) -> int:
        if kind == KMALLOC:
            return ksize_kmalloc(key)
        if kind == CACHE_ALLOC:
            return cache_size.get(key, comp.caches[key].object_size)
        return 4096 << key

    waste: Counter[str] = Counter()
    for (site, kind, key), (count, req) in comp.sites.items():
        if kind != PAGES_ALLOC:
            waste[site] += count * price(kind, key) - req
    r.waste_by_call_site = dict(waste.most_common())
    per: dict[str, dict[str, int]] = {}
    allocated = 0
    for rec in comp.live.values():
        if rec.op in failed:  # the guest's allocation failed: it holds nothing
            continue
        key = rec.cache if rec.kind == CACHE_ALLOC else rec.size
        size = price(rec.kind, key)
        allocated += size
        if rec.kind == KMALLOC:
            name = kmalloc_cache[rec.size]
        elif rec.kind == CACHE_ALLOC:
            name = comp.caches[rec.cache].name
        else:
            name = "pages"
        d = per.setdefault(name, {"objects": 0, "requested": 0, "allocated": 0})
        d["objects"] += 1
        d["requested"] += rec.req
        d["allocated"] += size
    for cv in caches.values():
        if cv.name in per:
            pages = slab_pages(cv)
            if pages is not None:
                per[cv.name]["held"] = pages * 4096
            per[cv.name]["active_objs"] = cv.active_objs
            per[cv.name]["num_objs"] = num_objs(cv)
    r.allocated = allocated
    r.by_cache = dict(sorted(per.items(), key=lambda kv: -kv[1].get("held", kv[1]["allocated"])))


def _safe_caches(m: Machine) -> list:
    try:
        return m.caches()
    except KmemuError:
        return []


def _final_views(m: Machine, r: ReplayResult) -> None:
    zones = [z for z in read_zones(m.program) if z.populated]
    r.unusable_index = {z.name: [extfrag.unusable_index(z.nr_free, o) / 1000
                                 for o in range(NR_PAGE_ORDERS)] for z in zones}
    r.extfrag_index = {z.name: [extfrag.fragmentation_index(z.nr_free, o) / 1000
                                for o in range(NR_PAGE_ORDERS)] for z in zones}
    r.unusable_text = extfrag.format_unusable_index(zones)
    r.extfrag_text = extfrag.format_extfrag_index(zones)
    r.buddyinfo = m.buddyinfo()
    try:
        r.slabinfo = m.slabinfo()
    except KmemuError as e:
        r.slabinfo = f"(no slabinfo: {e})"


def run_replay(self: Machine, trace: str | Path | Iterable[str] | tracetext.Trace,
               *, batch: int = 4096, pages: bool = True, timeline: bool = True,
               count_ops: int = DEFAULT_COUNT_OPS, measure: bool = True,
               progress: Progress | None = None, census: bool = False) -> ReplayResult:
    """Replay a Linux kmem trace in the guest; see :mod:`emu.machine.replay`.

    ``trace``: a file's path (gzip or plain), its text, its lines, or a parsed
    :class:`~emu.kernel.tracetext.Trace`.  ``batch``: ops per guest entry, 1..4096
    (the timeline has one sample per batch, or per k-th batch and the last when there
    are more than ``MAX_SAMPLES`` batches; peak_held is sampled after every batch).
    ``pages=False`` leaves out the page events (a trace's mm_page_alloc events
    include the traced kernel's own slab pages, which the guest's slab allocator
    makes again).  ``census``
    checks after every batch that each live allocation is where the guest
    says (SLUB views; slow: for tests)."""
    from emu.build.abi import define

    self._require_ready()
    ring = define("KMEMU_REPLAY_RING")
    if type(batch) is not int or not 1 <= batch <= ring:
        raise BadArgument(f"batch must be an int 1..{ring}, got {batch!r}")
    if type(count_ops) is not int or count_ops < 0:
        raise BadArgument(f"count_ops must be an int >= 0, got {count_ops!r}")
    for name, flag in (("pages", pages), ("timeline", timeline), ("measure", measure),
                       ("census", census)):
        if type(flag) is not bool:
            raise BadArgument(f"{name} must be True or False, got {flag!r}")
    if progress is not None and not callable(progress):
        raise BadArgument(f"progress must be a callable (ops done, ops in all, seconds) "
                          f"or None, got {type(progress).__name__}")
    t0 = time.perf_counter()
    if isinstance(trace, tracetext.Trace):
        parsed = trace
    else:
        try:
            parsed = tracetext.parse_lines(_lines(trace))
        except (OSError, EOFError) as e:
            raise ReplayError(f"cannot read trace {trace!s:.200}: {e}") from None
        except tracetext.TraceTextError as e:  # a line that is not a str
            raise BadArgument(f"replay(): {e}") from None
    comp = compile_trace(parsed, batch=batch, pages=pages, census=census)
    r = ReplayResult(slab=getattr(self, "slab", "slub"), lines=parsed.lines,
                     unreadable=parsed.unreadable, lost_events=parsed.lost_events,
                     unknown_gfp=dict(parsed.unknown_gfp), lost_frees=comp.lost_frees)
    r.first_unreadable = parsed.describe_unreadable() if parsed.unreadable else None
    r.ops = dict(sorted(comp.events.items()))
    skipped = Counter(comp.skipped)
    for name, n in parsed.other_events.items():
        skipped[f"other event {name}"] += n
    r.skipped = dict(sorted(skipped.items()))
    r.parse_seconds = time.perf_counter() - t0
    if comp.n_ops == 0:
        raise ReplayError(f"nothing to replay in the trace ({parsed.lines} lines; "
                          f"{parsed.describe_unreadable()}; skipped: {r.skipped or 'none'})")
    rp = _Replayer(self, comp, r, timeline=timeline, count_ops=count_ops,
                   progress=progress, census=census)
    meter = None
    try:
        rp.setup()
        if measure:  # counts the loop's turn here: its hook's flush must precede the batches
            t_meter = time.perf_counter()
            meter = LimitMeter(self)
            t_meter = time.perf_counter() - t_meter
        rp.run(meter)
    finally:
        rp.teardown()
    _price(self, comp, rp.created, set(rp.failed), r)
    _final_views(self, r)
    r.end_to_end_seconds = time.perf_counter() - t0
    if meter is not None:  # the loop's slices are measurement, not replay
        r.end_to_end_seconds -= t_meter + meter.wall
        meter.top_up()
        r.guest_insns_per_second = meter.insns_per_second
        r.wall_guest_insns_per_second = meter.wall_insns_per_second
        r.register_loop_insns_per_second = measure_limit(self, SPIN_REGS)
    r.end_to_end_ops_per_second = comp.n_ops / r.end_to_end_seconds
    if count_ops:
        rp.count_on_twin()
    _limit_fractions(r)
    return r


def measure_limits(m: Machine, r: ReplayResult) -> None:
    """The emulator's limit on ``m`` measured after a replay run with ``measure=False``
    (both loops on their own, :func:`measure_limit`) into ``r``, and the replay's fraction
    of it when its instructions per op were counted.  Run it
    with no profile or tracer hook on ``m``: ``kmemu replay --folded`` replays under
    ``m.profile()`` and measures after it (under the hook the loops ran 30x slower, the
    limit was the profiler's, and its stacks were in the flame graph)."""
    r.guest_insns_per_second = measure_limit(m)
    r.register_loop_insns_per_second = measure_limit(m, SPIN_REGS)
    _limit_fractions(r)


def _limit_fractions(r: ReplayResult) -> None:
    """The limit for the replayed ops and the replay's fraction of it, on each clock
    the loop was timed on; nothing when the loop or the ops' instructions were not
    measured."""
    if not (r.mean_insns_per_op and r.guest_insns_per_second):
        return
    r.limit_ops_per_second = r.guest_insns_per_second / r.mean_insns_per_op
    r.limit_fraction = r.ops_per_second / r.limit_ops_per_second
    if r.wall_guest_insns_per_second:
        wall_limit = r.wall_guest_insns_per_second / r.mean_insns_per_op
        r.wall_limit_fraction = r.wall_ops_per_second / wall_limit
