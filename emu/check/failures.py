"""Layer 5: the exhaustive allocation-failure sweep.

>>> runs = m.sweep_failures("mydev:mydev_create", 4, roots=["mydev:devices"])  # doctest: +SKIP
>>> print(runs)                                                                  # doctest: +SKIP
  k  site               outcome            detail
  1  mydev.c:31         ok                 returned -12 (-ENOMEM)
  2  mydev.c:35         leak               leaked 64 bytes (kmalloc-64) ... mydev.c:31

How.  From the caller's state the call runs once with the kernel counting and
logging every allocation the code asks for (kernel/fault_inject.c: slab,
kmalloc, page and vmalloc allocations in task context, not the ones an
allocator makes for itself) and KUnit's allocation tracker on
(kernel/kunit_track.c).  That state is snapshotted; then for k = 1..N the call
runs again from the snapshot with the k-th counted allocation failing
(fail-nth), and each run is judged:

- ``oops``: the kernel oopsed (or BUG) or the call did not finish;
- ``warn``: a WARN;
- ``invalid-state``: a bad-page or slab-debug report, or a validator's complaint;
- ``leak``: something the call allocated is still allocated and not referenced
  (kmemleak's way: pointers into an object count, found objects are scanned in
  turn) from the roots the caller names or the call's return value;
- ``no-error-returned``: the result does not signal an error (negative errno,
  NULL, ERR_PTR, false; or ``failure(result)`` when given), unless the failed
  request carried ``__GFP_NOWARN`` (the caller said it has a fallback);
- ``ok``.

Conditional allocations: a run with k failing may make allocations the first
run did not (an error path's, a fallback's).  Each such allocation whose call
chain no run has seen yet is made to fail too, in a run failing k and it
(``plan`` (k, j), shown ``k+j``); so every call chain that allocates is failed
at least once.  Each k with its descendants is independent of the others,
which is what lets :func:`run_point` run in another process or pytest item.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING

from emu.check.kunit import Leak, _read_leaks
from emu.core.errors import BadArgument, CallStopped, KmemuError
from emu.machine.faults import fault_layout

if TYPE_CHECKING:
    from emu.kernel.events import Event
    from emu.machine.core import Machine

OUTCOMES = ("ok", "oops", "warn", "leak", "no-error-returned", "invalid-state")
#: Source files whose frames are the allocator's, not the caller's: the site is
#: the first frame outside them.
ALLOCATOR_FILES = frozenset({"slub.c", "slab.c", "slob.c", "kmalloc.c", "page_alloc.c", "vmalloc.c",
                             "fault_inject.c", "string.c", "fault_inject.h", "kunit_track.h",
                             "kunit_track.c", "slab_hooks.h"})
#: Linux's errno names for the results the table shows
ERRNO_NAMES = {1: "EPERM", 2: "ENOENT", 4: "EINTR", 5: "EIO", 11: "EAGAIN", 12: "ENOMEM",
               14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 19: "ENODEV", 22: "EINVAL",
               28: "ENOSPC", 95: "EOPNOTSUPP"}
_KINDS = {1: "slab", 2: "pages", 3: "vmalloc"}
_GFP_NOWARN = 0x2000
_WARN_KINDS = {"warn", "sleep_in_atomic"}
_INVALID_KINDS = {"bad_page", "slab"}
_OOPS_KINDS = {"oops", "bug", "panic"}
MAX_ERRNO = 4095
_SCAN_MAX = 1 << 16  # bytes of one object the reachability scan reads


@dataclass(frozen=True)
class Allocation:
    """One counted allocation of a run."""

    index: int  # its number in the run, from 1
    kind: str  # "slab", "pages" or "vmalloc"
    gfp: int
    size: int  # bytes; the order for "pages"
    site: str  # "file.c:LINE" of the allocator's caller
    chain: tuple[str, ...]  # symbolised return addresses from the caller up
    key: tuple[int, ...]  # the raw return addresses (the call chain's identity)


@dataclass
class LeakedObject:
    """Something a run allocated, still allocated and referenced from nowhere."""

    kind: str  # "slab", "pages" or "vmalloc"
    address: int
    size: int  # bytes requested (slab, vmalloc) or the block's bytes (pages)
    site: str  # "file.c:LINE" of the allocator's caller
    chain: tuple[str, ...]
    cache: str | None = None

    def describe(self) -> str:
        what = (f"{self.size} bytes ({self.cache})" if self.kind == "slab" else
                f"a {self.size}-byte vmalloc area" if self.kind == "vmalloc" else
                f"a {self.size}-byte page block")
        return f"leaked {what} at {self.address:#x}, allocated at {self.site}"


@dataclass
class FailureRun:
    """One run of the sweep: the allocations ``plan`` failed, ``k`` the last of them."""

    k: int
    plan: tuple[int, ...]
    site: str
    outcome: str
    detail: str = ""
    result: int | None = None
    leaks: list[LeakedObject] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)
    chain: tuple[str, ...] = ()
    console: str = ""

    @property
    def label(self) -> str:
        return "+".join(map(str, self.plan)) if self.plan else "-"

    def __str__(self) -> str:
        lines = [f"{self.label:>5}  {self.site:<22} {self.outcome:<18} {self.detail}"]
        lines += [f"{'':>7}{lk.describe()}" for lk in self.leaks]
        return "\n".join(lines)


class FailureSweep(list[FailureRun]):
    """The runs of :func:`sweep_failures`, one per failed allocation; ``str()`` is the
    table.  ``baseline`` is the run where nothing failed."""

    def __init__(self, function: str, baseline: FailureRun, runs: Iterable[FailureRun] = ()):
        super().__init__(runs)
        self.function = function
        self.baseline = baseline

    @property
    def failures(self) -> list[FailureRun]:
        return [r for r in self if r.outcome != "ok"]

    def __str__(self) -> str:
        b = self.baseline
        head = (f"{self.function}: {len(b.allocations)} allocations, {len(self)} runs, "
                f"{len(self.failures)} not ok (without failures: {b.outcome}"
                f"{', ' + b.detail if b.detail else ''})")
        cols = f"{'k':>5}  {'site':<22} {'outcome':<18} detail"
        return "\n".join([head, cols, *(str(r) for r in self)])

    __repr__ = __str__


# ------------------------------------------------------------------ one run


class _Sweep:
    """The state one sweep shares between its runs: the armed snapshot, the caches."""

    def __init__(self, m: Machine, fn: str | int, args: tuple[int, ...], context: str,
                 roots: Sequence[object], failure: Callable[[int], bool] | None,
                 validate: Callable[[Machine], list[str]] | None,
                 budget_seconds: float | None) -> None:
        self.m, self.fn, self.args, self.context = m, fn, args, context
        self.failure, self.validate, self.budget = failure, validate, budget_seconds
        self.name = fn if isinstance(fn, str) else m.symbolize(fn)
        self.lay = fault_layout(m)
        self._sites: dict[int, tuple[str, str]] = {}
        self._chains: dict[tuple[int, ...], tuple[str, tuple[str, ...]]] = {}
        # kernel data the sweep reads and writes per run, by physical address (the
        # kernel image is mapped contiguously; no page-table walk per access)
        self.pa = {name: m.translate(m.symbol(name)) for name in
                   ("fault_state", "fault_log", "kunit_nr_leaks")}
        self.start = m.snapshot()
        self.roots = [_root_range(m, r) for r in roots]
        self.ret_kind = _return_kind(m, fn, len(args))
        self._arm_tracking()
        self.armed = m.snapshot()
        self.events_at = len(m.events)
        self.console_at = len(m.console)
        self.baseline_keys: set[tuple[int, ...]] = set()

    def _arm_tracking(self) -> None:
        m = self.m
        if "kunit_track_prepare" in m._syms().by_name:  # noqa: SLF001
            m.call("kunit_track_prepare")  # the tracker's hooks behind a static key
        m.write_virt(m.symbol("kunit_nr_leaks"), bytes(8))
        m.write_virt(m.symbol("kunit_leaks_dropped"), bytes(8))
        m.write_virt(m.symbol("kunit_tracking"), b"\1")
        m._fault_arm((), recording=True)  # noqa: SLF001
        # no FAULT_INJECTION report per run (the sweep has the log): the attributes'
        # verbose is 0 inside the sweep's snapshot only
        m.failslab(verbose=0)
        m.fail_page_alloc(verbose=0)

    def close(self) -> None:
        self.m.restore(self.start)

    def run(self, plan: tuple[int, ...]) -> FailureRun:
        m = self.m
        m.restore(self.armed)
        if plan:  # fail_at[] and nr_fail_at, which follows it
            slots = list(plan) + [0] * (self.lay.fail_max - len(plan))
            m.uc.mem_write(self.pa["fault_state"] + self.lay.fail_at,
                           struct.pack(f"<{self.lay.fail_max + 1}Q", *slots, len(plan)))
        result, crash = None, ""
        try:
            result = m.call(self.fn, *self.args, context=self.context,
                            budget_seconds=self.budget)
        except CallStopped as e:
            if e.stopped_by == "interrupt":  # Ctrl-C / interrupt(): the sweep ends, not a run
                raise
            crash = f"did not finish: {str(e).splitlines()[0]}"
        except KmemuError as e:
            crash = str(e).splitlines()[0]
        allocs = self._allocations()
        k = plan[-1] if plan else 0
        failed = allocs[k - 1] if 0 < k <= len(allocs) else None
        run = FailureRun(k, plan, failed.site if failed else "-", "ok", result=result,
                         allocations=allocs, chain=failed.chain if failed else (),
                         console=m.console[self.console_at:])
        self._judge(run, crash, failed)
        return run

    def _judge(self, run: FailureRun, crash: str, failed: Allocation | None) -> None:
        m = self.m
        events = m.events[self.events_at:]
        if crash:
            run.outcome, run.detail = "oops", crash
            return
        bad = [e for e in events if e.kind in _OOPS_KINDS | _WARN_KINDS | _INVALID_KINDS]
        if bad:
            e = bad[0]
            run.outcome = ("oops" if e.kind in _OOPS_KINDS else
                           "warn" if e.kind in _WARN_KINDS else "invalid-state")
            run.detail = event_headline(e)
            return
        problems = self.validate(m) if self.validate else []
        if problems:
            run.outcome, run.detail = "invalid-state", "; ".join(problems[:2])
            return
        assert run.result is not None
        run.leaks = self._leaks(run.result)
        if run.leaks:
            run.outcome = "leak"
            run.detail = f"{len(run.leaks)} object(s) leaked; {self._describe(run.result)}"
            return
        run.detail = self._describe(run.result)
        if failed is not None and not (failed.gfp & _GFP_NOWARN) and \
                self._is_error(run.result) is False:
            run.outcome = "no-error-returned"

    # -------------------------------------------------------------- reading

    def _allocations(self) -> list[Allocation]:
        m, lay = self.m, self.lay
        n, = struct.unpack("<Q", m.uc.mem_read(self.pa["fault_state"] + lay.nr_records, 8))
        n = min(n, lay.log_max)
        if not n:
            return []
        raw = m.uc.mem_read(self.pa["fault_log"], n * lay.record_size)
        out = []
        for i in range(n):
            vals = struct.unpack_from(f"<4Q{lay.trace_depth}Q", raw, i * lay.record_size)
            kind, gfp, size = vals[:3]
            trace = tuple(a for a in vals[4:] if a)
            site, chain = self._site(trace)
            out.append(Allocation(i + 1, _KINDS.get(kind, "?"), gfp, size, site, chain,
                                  trace))
        return out

    def _site(self, trace: tuple[int, ...]) -> tuple[str, tuple[str, ...]]:
        """The first frame outside the allocator ("file.c:LINE") and the chain from it."""
        got = self._chains.get(trace)
        if got is None:
            got = self._chains[trace] = self._site_uncached(trace)
        return got

    def _site_uncached(self, trace: tuple[int, ...]) -> tuple[str, tuple[str, ...]]:
        frames = [self._frame(a) for a in trace]
        for i, (loc, _sym) in enumerate(frames):
            if PurePath(loc.split(":")[0]).name not in ALLOCATOR_FILES and \
                    not _sym.startswith("kmemu_call"):
                return loc, tuple(f"{s} ({lc})" for lc, s in frames[i:]
                                  if not s.startswith("kmemu_call"))
        return (frames[-1][0] if frames else "?"), tuple(s for _l, s in frames)

    def _frame(self, addr: int) -> tuple[str, str]:
        got = self._sites.get(addr)
        if got is None:
            m = self.m
            sym = m.symbolize(addr)
            try:
                row = m.lines.lookup(addr - 1)  # a return address: the call is before it
            except KmemuError:
                row = None
            loc = f"{PurePath(row.file).name}:{row.line}" if row else sym
            got = self._sites[addr] = (loc, sym)
        return got

    def _leaks(self, result: int) -> list[LeakedObject]:
        m = self.m
        n, = struct.unpack("<Q", m.uc.mem_read(self.pa["kunit_nr_leaks"], 8))
        live = _read_leaks(m, n) if n else []
        if not live:
            return []
        out = []
        with m._reads_held():  # noqa: SLF001 - the scan reads each object; nothing runs meanwhile
            unreferenced = _unreferenced(m, live, self.roots, [result])
        for lk in unreferenced:
            site, chain = self._site(lk.trace_addresses)
            out.append(LeakedObject(lk.kind, lk.address, lk.size, site, chain, lk.cache))
        return sorted(out, key=_site_order)

    def _is_error(self, result: int) -> bool | None:
        if self.failure is not None:
            return bool(self.failure(result))
        kind = self.ret_kind
        if kind == "void":
            return None
        if kind == "bool":
            return result == 0
        if kind == "int":
            return result >= 1 << 31  # negative as a C int
        return result == 0 or result >= (1 << 64) - MAX_ERRNO  # NULL or ERR_PTR

    def _describe(self, result: int) -> str:
        kind = self.ret_kind
        if kind == "void":
            return "returned (void)"
        if kind == "int" and result >= 1 << 31:
            return f"returned {_errno(result - (1 << 32))}"
        if kind == "pointer" and result >= (1 << 64) - MAX_ERRNO:
            return f"returned ERR_PTR({_errno(result - (1 << 64))})"
        return f"returned {result:#x}" if kind == "pointer" else f"returned {result}"


def _site_order(lk: LeakedObject) -> tuple[str, int, int]:
    """Leaks in source order (file, line), then by address."""
    file, _, line = lk.site.rpartition(":")
    return (file, int(line) if line.isdigit() else 0, lk.address)


def event_headline(e: Event) -> str:
    """The event's headline, and where it happened unless the headline says so."""
    at = e.symbols[0] if e.symbols else "?"
    return e.message if at in e.message else f"{e.message} at {at}"


def _errno(v: int) -> str:
    name = ERRNO_NAMES.get(-v)
    return f"{v} (-{name})" if name else str(v)


def _return_kind(m: Machine, fn: str | int, nargs: int) -> str:
    """"void", "bool", "int" (4 bytes or fewer: signed errno convention) or "pointer"."""
    target = m._resolve_function(fn, nargs)  # noqa: SLF001
    p = m._params_at(target) or m._module_params.get(target)  # noqa: SLF001
    if p is None:
        return "pointer"
    if p.void:
        return "void"
    return "bool" if p.ret_size == 1 else "int" if p.ret_size <= 4 else "pointer"


def _root_range(m: Machine, root: object) -> tuple[int, int]:
    """A root: a symbol name (kernel, or ``module:name``), an address (8 bytes) or an
    ``(address, size)`` pair."""
    if isinstance(root, tuple) and len(root) == 2 and all(isinstance(x, int) for x in root):
        return root[0], root[1]
    if isinstance(root, int) and not isinstance(root, bool):
        return root, 8
    if isinstance(root, str):
        found = m._module_syms().find(root)  # noqa: SLF001
        if found:
            s = found[0][1]
            return s.address, max(s.size, 8)
        sym = m._syms().by_name.get(root)  # noqa: SLF001
        if sym is not None:
            return sym.address, max(sym.size, 8)
        raise BadArgument(f"root {root!r}: no such kernel or module symbol")
    raise BadArgument(f"a root is a symbol name, an address or (address, size); got {root!r}")


def _unreferenced(m: Machine, live: list[Leak], roots: list[tuple[int, int]],
                  values: list[int]) -> list[Leak]:
    """The live objects no pointer reaches from ``roots`` or ``values`` (kmemleak's scan:
    a pointer anywhere into an object counts; found objects are scanned in turn)."""
    def extent(lk: Leak) -> int:
        return lk.size if lk.kind != "pages" else 4096 << lk.order

    objs = sorted(live, key=lambda lk: lk.address)
    starts = [lk.address for lk in objs]
    found = [False] * len(objs)
    gray: list[int] = []

    def mark(value: int) -> None:
        i = bisect.bisect_right(starts, value) - 1
        if i >= 0 and not found[i] and value < objs[i].address + max(extent(objs[i]), 1):
            found[i] = True
            gray.append(i)

    def scan(addr: int, size: int) -> None:
        size = min(size, _SCAN_MAX) & ~7
        try:
            data = m.read_virt(addr, size)
        except KmemuError:
            return
        for v in struct.unpack(f"<{size // 8}Q", data):
            mark(v)

    for v in values:
        mark(v)
    for addr, size in roots:
        scan(addr, size)
    while gray:
        lk = objs[gray.pop()]
        scan(lk.address, extent(lk))
    return [lk for lk, f in zip(objs, found, strict=True) if not f]


# ------------------------------------------------------------------ the sweep


def run_point(sweep: _Sweep, k: int, limit: int = 64) -> list[FailureRun]:
    """Allocation k failing, then the conditional allocations that run reaches (each
    with a call chain the baseline did not have, failed in a run of its own)."""
    out: list[FailureRun] = []
    seen = set(sweep.baseline_keys)
    todo = [(k,)]
    while todo and len(out) < limit:
        plan = todo.pop(0)
        run = sweep.run(plan)
        out.append(run)
        if len(plan) >= sweep.lay.fail_max:
            continue
        for a in run.allocations[plan[-1]:]:
            if a.key not in seen:
                seen.add(a.key)
                todo.append((*plan, a.index))
    return out


def start_sweep(m: Machine, fn: str | int, *args: int, context: str = "process",
                roots: Sequence[object] = (), failure: Callable[[int], bool] | None = None,
                validate: Callable[[Machine], list[str]] | None = None,
                budget_seconds: float | None = 10.0) -> tuple[_Sweep, FailureRun]:
    """The baseline run; the sweep object :func:`run_point` runs the points with.
    ``close()`` it afterwards (the machine goes back to where it was)."""
    if failure is not None and not callable(failure):
        raise BadArgument(f"failure must be a callable taking the result, got {failure!r}")
    if validate is not None and not callable(validate):
        raise BadArgument(f"validate must be a callable returning problems, got {validate!r}")
    if isinstance(roots, (str, bytes)):
        raise BadArgument("roots is a list of symbol names, addresses or (address, size)")
    if context == "irq":
        raise BadArgument("sweep_failures counts task-context allocations only (fail-nth, "
                          "as Linux's in_task()); use context='process', 'irqs_off' or "
                          "'preempt_off'")
    sw = _Sweep(m, fn, args, context, list(roots), failure, validate, budget_seconds)
    try:
        base = sw.run(())
    except BaseException:
        sw.close()
        raise
    sw.baseline_keys = {a.key for a in base.allocations}
    return sw, base


def sweep_failures(m: Machine, fn: str | int, *args: int, context: str = "process",
                   roots: Sequence[object] = (), failure: Callable[[int], bool] | None = None,
                   validate: Callable[[Machine], list[str]] | None = None,
                   budget_seconds: float | None = 10.0,
                   points: Iterable[int] | None = None) -> FailureSweep:
    """Fail every allocation of ``fn(*args)`` one by one (see the module docstring).
    ``points`` limits the sweep to those k.  The machine is back where it was after."""
    sw, base = start_sweep(m, fn, *args, context=context, roots=roots, failure=failure,
                           validate=validate, budget_seconds=budget_seconds)
    try:
        n = len(base.allocations)
        ks = range(1, n + 1) if points is None else list(points)
        for k in ks:
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
                raise BadArgument(f"points: {k!r} is not an allocation of {sw.name} "
                                  f"(it makes {n}, numbered from 1)")
        runs = [r for k in ks for r in run_point(sw, k)]
        return FailureSweep(sw.name, base, runs)
    finally:
        sw.close()


# ------------------------------------------------------------------ over processes

_WORKER: dict[str, object] = {}


def _worker_init(machine_kw: dict[str, object], fn: str, args: tuple[int, ...],
                 roots: list[object], context: str) -> None:
    """A worker process: boot once (with the modules), then the baseline and the
    armed snapshot every point of this worker restores."""
    from emu.machine.core import Machine

    m = Machine.booted(**machine_kw)
    sw, _base = start_sweep(m, fn, *args, roots=roots, context=context)
    _WORKER["sweep"] = sw


def _worker_point(k: int) -> list[FailureRun]:
    return run_point(_WORKER["sweep"], k)  # type: ignore[arg-type]


def sweep_failures_parallel(machine_kw: dict[str, object], fn: str, *args: int, jobs: int,
                            roots: Sequence[object] = (),
                            context: str = "process") -> FailureSweep:
    """:func:`sweep_failures` over ``jobs`` worker processes, each booting
    ``Machine.booted(**machine_kw)`` once (boots are deterministic, so every worker
    numbers the allocations alike) and running its share of the points."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from emu.machine.core import Machine

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise BadArgument(f"jobs must be a positive number of processes, got {jobs!r}")
    m = Machine.booted(**machine_kw)
    sw, base = start_sweep(m, fn, *args, roots=roots, context=context)
    ks = list(range(1, len(base.allocations) + 1))
    if jobs == 1 or len(ks) < 2:
        runs = [r for k in ks for r in run_point(sw, k)]
        return FailureSweep(sw.name, base, runs)
    ctx = multiprocessing.get_context("spawn")  # no Unicorn state forked into workers
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init,
                             initargs=(machine_kw, fn, args, list(roots), context)) as ex:
        chunks = list(ex.map(_worker_point, ks, chunksize=max(1, len(ks) // (4 * jobs))))
    return FailureSweep(sw.name, base, [r for c in chunks for r in c])
