"""Layer 5: run KUnit suites on a booted machine, one snapshot per case.

The kernel does the testing and prints the KTAP (``kernel/kunit.c``); this
module drives it piece by piece so every case starts from the same state:

    kunit_print_header(N)                      "KTAP version 1" / "1..N"
    for each suite:      restore(base); kunit_suite_begin(suite, M); snapshot S
        for each case:   restore(S); kunit_case_run(suite, index, number)
                         (oops or time budget: restore(S); kunit_case_faulted(...))
        restore(S); host's statistics -> kunit_suite_stats; kunit_suite_end(suite, n)
    restore(base)

and concatenates the console text of each call, so the KTAP is the text one
kernel-side run prints (``kunit_run_all`` under QEMU).  After each case the
kernel's ``kunit_leaks[]`` holds the slab objects and page blocks the case
allocated and never freed (KUnit's own allocations are freed by then); they
are reported with their call sites.

Suites are found in the ``.kunit_test_suites`` section: the kernel image's
(between ``__kunit_suites_start`` and ``__kunit_suites_end``) or a loaded
module's (:func:`suites_in_range`).
"""

from __future__ import annotations

import fnmatch
import json
import struct
from dataclasses import asdict, dataclass, field

from emu.build import layout as L
from emu.core.cpu import BudgetExceeded
from emu.core.errors import BadArgument, KmemuError
from emu.machine.core import GuestExit, GuestOops, GuestWaiting, Machine

STATUS = {0: "pass", 1: "fail", 2: "skip"}  # enum kunit_status
_KIND = {1: "slab", 2: "pages", 3: "vmalloc"}  # enum kunit_alloc_kind (<kmemu/kunit_track.h>)


class KunitError(KmemuError):
    """KUnit could not run (no such suite, a broken suite table, ...)."""


@dataclass
class Leak:
    """An allocation a case made and did not free."""

    kind: str  # "slab", "pages" or "vmalloc"
    address: int
    size: int  # bytes requested (slab) or the block's size (pages)
    site: str  # the call site, symbolised: "leaky+0x1c/0x60"
    site_address: int
    cache: str | None = None  # slab cache name
    order: int = 0
    trace: list[str] = field(default_factory=list)  # the allocator, its caller, ... (symbolised)
    trace_addresses: tuple[int, ...] = ()  # the same frames, raw

    def describe(self) -> str:
        """One line: what, where, who.  A page block's site is the page allocator's caller
        (kmalloc for a large kmalloc), so its backtrace follows."""
        if self.kind == "slab":
            return (f"leaked {self.size} bytes ({self.cache}) at {self.address:#x}, "
                    f"allocated by {self.site}")
        if self.kind == "vmalloc":
            return (f"leaked a {self.size}-byte vmalloc area at {self.address:#x}, "
                    f"allocated by {self.site}")
        # the trace starts in the page allocator (one or two frames, as its fast path
        # has none) and reaches the site, its caller: show who called that (kmalloc's
        # caller for a large kmalloc)
        at = self.trace.index(self.site) if self.site in self.trace else 1
        via = "".join(f" <- {f}" for f in self.trace[at + 1:at + 3])
        return (f"leaked an order-{self.order} page block ({self.size} bytes) at "
                f"{self.address:#x}, allocated by {self.site}{via}")


@dataclass
class CaseResult:
    suite: str
    name: str
    number: int
    status: str  # "pass", "fail" or "skip"
    ktap: str  # this case's lines: diagnostics, then "    ok N name"
    skip_reason: str = ""
    expectations: list[str] = field(default_factory=list)  # each failure's text
    oops: str | None = None  # the oops text when the case died
    timed_out: bool = False
    leaks: list[Leak] = field(default_factory=list)
    leaks_dropped: int = 0  # allocations beyond the kernel's table

    @property
    def id(self) -> str:
        return f"{self.suite}.{self.name}"

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def failure_text(self) -> str:
        """What a test runner shows for a failed case: the case's KTAP diagnostics."""
        return "\n".join(ln for ln in self.ktap.splitlines()
                         if not ln.lstrip().startswith(("ok ", "not ok ")))


@dataclass
class SuiteResult:
    name: str
    number: int
    status: str
    cases: list[CaseResult]
    init_error: int = 0


@dataclass
class KunitRun:
    suites: list[SuiteResult]
    ktap: str

    @property
    def cases(self) -> list[CaseResult]:
        return [c for s in self.suites for c in s.cases]

    def counts(self) -> dict[str, int]:
        out = {"total": 0, "pass": 0, "fail": 0, "skip": 0, "crashed": 0}
        for c in self.cases:
            out["total"] += 1
            out[c.status] += 1
            out["crashed"] += c.oops is not None or c.timed_out
        out["suite_errors"] = sum(1 for s in self.suites if s.init_error)
        return out

    @property
    def failed(self) -> bool:
        return any(s.status == "fail" for s in self.suites)

    @property
    def leaks(self) -> list[tuple[CaseResult, Leak]]:
        return [(c, lk) for c in self.cases for lk in c.leaks]

    def to_json(self) -> str:
        return json.dumps({"suites": [asdict(s) for s in self.suites], "ktap": self.ktap,
                           "counts": self.counts()}, indent=2)


@dataclass
class Suite:
    """A struct kunit_suite in guest memory: its address, name and case names."""

    address: int
    name: str
    cases: list[str]


# ---------------------------------------------------------------- finding suites

_LAYOUTS: dict[str, dict[str, int]] = {}  # per kernel build (Artifacts.key)


def host_layout(m: Machine) -> dict[str, int]:
    """The offsets and sizes the kernel publishes for the host (``kunit_host_layout``)."""
    assert m.artifacts is not None
    hit = _LAYOUTS.get(m.artifacts.key)
    if hit is not None:
        return hit
    # "name\0name\0...name\0" and the literal's own NUL: the table ends at "\0\0"
    raw_names = m.read_virt(m.symbol("kunit_host_layout_names"), 1024)
    names = raw_names[:raw_names.index(b"\0\0")].split(b"\0")
    raw = m.read_virt(m.symbol("kunit_host_layout"), 8 * len(names))
    values = struct.unpack(f"<{len(names)}Q", raw)
    layout = {n.decode(): v for n, v in zip(names, values, strict=True)}
    _LAYOUTS[m.artifacts.key] = layout
    return layout


def _read_string(m: Machine, address: int, limit: int = 256) -> str:
    out = b""
    while len(out) < limit:
        chunk = m.read_virt(address + len(out), min(64, 4096 - (address + len(out)) % 4096))
        nul = chunk.find(b"\0")
        if nul >= 0:
            return (out + chunk[:nul]).decode(errors="replace")
        out += chunk
    return out[:limit].decode(errors="replace")


def read_suite(m: Machine, address: int) -> Suite:
    """The suite at ``address`` (a struct kunit_suite): its name and its cases' names."""
    lay = host_layout(m)
    try:
        name = _read_string(m, address + lay["suite.name"])
        tc = m.read_u64(address + lay["suite.test_cases"])
        names = []
        for i in range(4096):
            case = tc + i * lay["case.size"]
            if not m.read_u64(case + lay["case.run_case"]):
                break
            names.append(_read_string(m, m.read_u64(case + lay["case.name"])))
        else:
            raise KunitError(f"suite {name!r} at {address:#x}: no end to its test_cases array")
    except KunitError:
        raise
    except KmemuError as e:  # a bad pointer in the table
        raise KunitError(f"cannot read the KUnit suite at {address:#x}: {e}") from e
    return Suite(address, name, names)


def suites_in_range(m: Machine, start: int, end: int) -> list[Suite]:
    """The suites a ``.kunit_test_suites`` section [start, end) points to."""
    if end < start or (end - start) % 8:
        raise KunitError(f"bad .kunit_test_suites section {start:#x}-{end:#x}")
    raw = m.read_virt(start, end - start) if end > start else b""
    return [read_suite(m, p) for p in struct.unpack(f"<{len(raw) // 8}Q", raw)]


def builtin_suites(m: Machine) -> list[Suite]:
    """The suites linked into the kernel image."""
    return suites_in_range(m, m.symbol("__kunit_suites_start"), m.symbol("__kunit_suites_end"))


SECTION = ".kunit_test_suites"


def module_suites(m: Machine, module: object) -> list[Suite]:
    """The suites of a loaded module (``m.load_module(...)``): its ``.kunit_test_suites``
    section, at the address the loader gave it, as long as the built ELF says."""
    sections: dict[str, int] = getattr(module, "sections", {})
    if SECTION not in sections:
        return []
    from elftools.elf.elffile import ELFFile

    elf_path = getattr(module, "elf", None)
    if elf_path is None:
        raise KunitError(f"module {getattr(module, 'name', '?')}: its built ELF is gone")
    with open(elf_path, "rb") as f:
        sec = ELFFile(f).get_section_by_name(SECTION)
        size = sec["sh_size"] if sec is not None else 0
    start = sections[SECTION]
    return suites_in_range(m, start, start + size)


def parse_filter(glob: str | None) -> tuple[str, str]:
    """``kunit.filter_glob`` syntax: ``SUITE_GLOB[.CASE_GLOB]``."""
    if glob is None or glob == "":
        return "*", "*"
    if not isinstance(glob, str):
        raise BadArgument(f"filter must be a string like 'suite*.case*', got {glob!r}")
    suite, _, case = glob.partition(".")
    return suite or "*", case or "*"


def select(suites: list[Suite], glob: str | None) -> list[tuple[Suite, list[int]]]:
    """The suites and case indexes a filter keeps (suites left with no case are dropped)."""
    sg, cg = parse_filter(glob)
    out = []
    for s in suites:
        if not fnmatch.fnmatchcase(s.name, sg):
            continue
        idx = [i for i, n in enumerate(s.cases) if fnmatch.fnmatchcase(n, cg)]
        if idx:
            out.append((s, idx))
    return out


# ---------------------------------------------------------------- running

class _Console:
    """Console text produced by each call (the machine's console is cut back on restore)."""

    def __init__(self, m: Machine) -> None:
        self.m = m
        self.mark = 0

    def start(self) -> None:
        self.mark = len(self.m.console)

    def take(self) -> str:
        return self.m.console[self.mark:]


class _Layout:
    """Where the runner's variables are (physical addresses: no page walks per case)
    and how its structs are laid out (``kunit_host_layout``)."""

    def __init__(self, m: Machine) -> None:
        self.lay = host_layout(m)
        self.stats = {k: self.lay[f"stats.{k}"] for k in ("passed", "skipped", "failed", "total")}
        self.pa = {n: m.symbol(n) - L.KERNEL_VIRT for n in
                   ("kunit_case_outcome", "kunit_suite_stats", "kunit_total_stats")}

    def stats_bytes(self, stats: dict[str, int]) -> bytes:
        buf = bytearray(self.lay["stats.size"])
        for name, off in self.stats.items():
            struct.pack_into("<Q", buf, off, stats[name])
        return bytes(buf)

    def read_outcome(self, m: Machine) -> tuple[int, dict[str, int], int, int]:
        """(status, per-parameter stats, leak records, leaks dropped) of the last case."""
        lay = self.lay
        raw = m.read_phys(self.pa["kunit_case_outcome"], lay["outcome.size"])

        def u64(off: int) -> int:
            return struct.unpack_from("<Q", raw, off)[0]

        p = lay["outcome.params"]
        params = {k: u64(p + off) for k, off in self.stats.items()}
        return (u64(lay["outcome.status"]), params, u64(lay["outcome.nr_leaks"]),
                u64(lay["outcome.leaks_dropped"]))


def _read_leaks(m: Machine, n: int) -> list[Leak]:
    lay = host_layout(m)
    size = lay["leak.size"]
    raw = m.read_virt(m.symbol("kunit_leaks"), n * size)
    leaks = []
    for i in range(n):
        def field(name: str, fmt: str = "<Q", base: int = i * size) -> int:
            return struct.unpack_from(fmt, raw, base + lay[f"leak.{name}"])[0]

        cache, site = field("cache"), field("site")
        base = i * size + lay["leak.trace"]
        frames = struct.unpack_from(f"<{lay['leak.trace_depth']}Q", raw, base)
        leaks.append(Leak(
            kind=_KIND.get(field("kind", "<I"), "?"), address=field("ptr"),
            size=field("bytes"), site=m.symbolize(site), site_address=site,
            cache=_read_string(m, cache + lay["kmem_cache.name"]) if cache else None,
            order=field("order", "<I"),
            trace=[m.symbolize(a) for a in frames if a],
            trace_addresses=tuple(a for a in frames if a)))
    return leaks


def _expectations(name: str, ktap: str) -> list[str]:
    """Each failed check's text: its "FAILED at" line and the lines that explain it."""
    head = f"    # {name}: "
    out: list[list[str]] = []
    for ln in ktap.splitlines():
        if ln.startswith(head) and " FAILED at " in ln:
            out.append([ln[len(head):]])
        elif ln.startswith(head) or ln.lstrip().startswith(("ok ", "not ok ")):
            if out and out[-1][-1] != "":
                out[-1].append("")  # closes the block
        elif out and out[-1][-1] != "":
            out[-1].append(ln)
    return ["\n".join(b).rstrip("\n") for b in out]


class _SuiteRun:
    """One suite, case by case from one snapshot."""

    def __init__(self, m: Machine, con: _Console, layout: _Layout, suite: Suite, number: int,
                 budget: float | None) -> None:
        self.m, self.con, self.suite, self.number, self.budget = m, con, suite, number, budget
        self.layout = layout
        self.text: list[str] = []
        self.stats = {"passed": 0, "skipped": 0, "failed": 0, "total": 0}
        self.totals = dict(self.stats)

    def call(self, fn: str, *args: int) -> int:
        self.con.start()
        r = self.m.call(fn, *args, budget_seconds=self.budget)
        self.text.append(self.con.take())
        return r

    def run(self, indexes: list[int]) -> SuiteResult:
        err = self.call("kunit_suite_begin", self.suite.address, len(indexes))
        err = err - (1 << 32) if err >= 1 << 31 else err
        cases: list[CaseResult] = []
        if not err:
            start = self.m.snapshot()
            for pos, index in enumerate(indexes, 1):
                if pos > 1:
                    self.m.restore(start)
                cases.append(self.case(start, index, pos))
            self.m.restore(start)
        self._write_stats()
        self.call("kunit_suite_end", self.suite.address, self.number)
        failed = bool(err) or any(c.failed for c in cases)
        status = "fail" if failed else ("pass" if any(c.status == "pass" for c in cases)
                                         else "skip")
        return SuiteResult(self.suite.name, self.number, status, cases, init_error=err)

    def case(self, start: object, index: int, pos: int) -> CaseResult:
        name = self.suite.cases[index]
        oops = None
        timed_out = False
        self.con.start()
        try:
            self.m.call("kunit_case_run", self.suite.address, index, pos,
                        budget_seconds=self.budget)
            text = self.con.take()
            code, params, nleaks, dropped = self.layout.read_outcome(self.m)
            status = STATUS[code]
            leaks = _read_leaks(self.m, nleaks) if nleaks else []
        except (GuestOops, GuestExit, BudgetExceeded, GuestWaiting) as e:
            # an oops, BUG or panic (the guest stops) fails the case with its text;
            # a case past its budget or asleep for ever times out
            timed_out = isinstance(e, (BudgetExceeded, GuestWaiting))
            before = self.con.take()
            oops = None if timed_out else before
            self.m.restore(start)  # type: ignore[arg-type]
            self.con.start()
            self.m.call("kunit_case_faulted", self.suite.address, index, pos, int(timed_out))
            text = before + self.con.take()
            status, leaks, dropped = "fail", [], 0
            params = {"passed": 0, "skipped": 0, "failed": 1, "total": 1}
        self.text.append(text)
        self._count(status, params)
        skip = ""
        last = text.rstrip("\n").rsplit("\n", 1)[-1]
        if status == "skip" and " # SKIP " in last:
            skip = last.split(" # SKIP ", 1)[1]
        return CaseResult(self.suite.name, name, pos, status, text, skip_reason=skip,
                          expectations=_expectations(name, text), oops=oops,
                          timed_out=timed_out, leaks=leaks, leaks_dropped=dropped)

    def _count(self, status: str, params: dict[str, int]) -> None:
        key = {"pass": "passed", "fail": "failed", "skip": "skipped"}[status]
        self.stats[key] += 1
        self.stats["total"] += 1
        for k in self.totals:
            self.totals[k] += params[k]

    def _write_stats(self) -> None:
        lay = self.layout
        self.m.write_phys(lay.pa["kunit_suite_stats"], lay.stats_bytes(self.stats))
        self.m.write_phys(lay.pa["kunit_total_stats"], lay.stats_bytes(self.totals))


def run_suites(m: Machine, filter: str | None = None, suites: list[Suite] | None = None,
               budget_seconds: float | None = 30.0) -> KunitRun:
    """Run KUnit suites (default: the kernel's built-in ones) and return the results.

    ``filter`` is ``kunit.filter_glob`` syntax (``"list-*.list_test_list_add*"``).
    Each case starts from the same snapshot; a case that oopses or runs past
    ``budget_seconds`` fails with its oops text and the rest still run.  The
    machine is left as it was (a snapshot taken at the start is restored).
    """
    if m.state != "ready":
        raise BadArgument(f"run_suites needs a booted, idle machine; it is {m.state}")
    chosen = select(builtin_suites(m) if suites is None else suites, filter)
    con = _Console(m)
    layout = _Layout(m)
    base = m.snapshot()
    texts: list[str] = []
    results: list[SuiteResult] = []
    try:
        if chosen:
            con.start()
            m.call("kunit_print_header", len(chosen))
            texts.append(con.take())
        for number, (suite, idx) in enumerate(chosen, 1):
            m.restore(base)
            run = _SuiteRun(m, con, layout, suite, number, budget_seconds)
            results.append(run.run(idx))
            texts.extend(run.text)
    finally:
        m.restore(base)
    return KunitRun(results, "".join(texts))


# ---------------------------------------------------------------- kunit.py's summary

DIVIDER = "=" * 60


def _divider(message: str) -> str:
    diff = len(DIVIDER) - len(message) - 2
    left = diff // 2 if diff > 0 else 3
    right = diff - left if diff > 0 else 3
    return "=" * left + f" {message} " + "=" * right


_RESULT = {"pass": "[PASSED]", "fail": "[FAILED]", "skip": "[SKIPPED]"}


def summary(run: KunitRun) -> str:
    """The run as ``kunit.py run`` shows it (without timestamps and colours), plus leaks."""
    out = []
    for s in run.suites:
        n = len(s.cases)
        out.append(_divider(f"{s.name} ({n} subtest{'s' if n != 1 else ''})"))
        if s.init_error:
            out.append(f"    # {s.name}:     # failed to initialize ({s.init_error})")
        for c in s.cases:
            if c.failed:
                out.extend(c.failure_text().splitlines())
            label = "[CRASHED]" if c.oops is not None or c.timed_out else _RESULT[c.status]
            out.append(f"{label} {c.name}")
            out.extend(f"    # {c.name}: {lk.describe()}" for lk in c.leaks)
        out.append(_divider(f"{_RESULT[s.status]} {s.name}"))
    out.append(DIVIDER)
    cnt = run.counts()
    parts = [("passed", cnt["pass"]), ("failed", cnt["fail"] - cnt["crashed"]),
             ("crashed", cnt["crashed"]), ("skipped", cnt["skip"]),
             ("errors", cnt["suite_errors"])]
    out.append(f"Testing complete. Ran {cnt['total']} tests: "
               + ", ".join(f"{k}: {v}" for k, v in parts if v))
    if run.leaks:
        out.append(f"Leaks: {len(run.leaks)} allocation(s) left behind by "
                   f"{len({c.id for c, _ in run.leaks})} case(s)")
    return "\n".join(out) + "\n"
