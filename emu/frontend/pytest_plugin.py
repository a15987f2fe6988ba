"""Layer 6: the pytest plugin (entry point ``pytest11``).

* ``machine`` fixture: boots once per session per configuration and gives
  every test the machine restored from its post-boot snapshot, with nothing
  an earlier test left behind: no breakpoints, watchpoints or hooks (every
  Unicorn hook added since boot is deleted), no timers, pending interrupts or
  stopped call (the snapshot has none), and the host-side settings of boot.
* ``@pytest.mark.kmemu(mem="6G", cmdline="...")`` picks another configuration
  (any ``Machine()`` keyword); the memory size may also come first, as in
  ``Machine("6G")``: ``@pytest.mark.kmemu("6G")``.
  (any ``Machine()`` keyword); ``modules=["mydev.c", ["a.c", "b.c"]]`` (paths
  relative to the test file) loads modules after boot, before the snapshot.
* ``failure_points(fn, *args, modules=[...], base=Path(__file__).parent)`` gives the
  allocation points of a call for ``@pytest.mark.parametrize``: one item per k of
  ``machine.sweep_failures(fn, *args, points=[k])``, which pytest-xdist distributes.
* A failing test's report gets the tail of the guest console and the events.
* KUnit files become tests: every case of every suite in a file named
  ``*_kunit.c`` (Linux's convention for KUnit files), or matching the ini option ``kmemu_kunit``
  (globs relative to the rootdir, e.g. ``kmemu_kunit = tests/kunit/*.c``), is a
  pytest item ``FILE::SUITE::CASE``.  The file is built into a module and its
  suites run once (``emu.check.kunit.run_suites``, each case from the same snapshot)
  when the first of its items runs; a failed case reports its KTAP
  diagnostics (the expectation text, an oops), a skipped one its reason.
  Leaks are shown as warnings, or fail the case with ``kmemu_kunit_leaks = fail``.
  A file that uses ``KUNIT_EXPECT_KASAN_FAIL`` runs on the KASAN kernel
  (``Machine(kasan=True)``).
* ``@pytest.mark.kmemleak`` (one test) or ``--kmemleak`` (every test using the
  ``machine`` fixture) boots the machine with kmemleak on; after a test that
  passed, a kmemleak scan runs and the test fails listing the unreferenced
  objects allocated during it (Linux's report of each).
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emu.core.errors import BadArgument
from emu.machine.core import Machine, Snapshot


@dataclass(frozen=True)
class _Booted:
    """A session's machine and what a test must find it as."""

    machine: Machine
    snapshot: Snapshot
    hooks: frozenset[int]  # the Unicorn hooks right after boot
    settings: dict[str, object]  # public host-side attributes a test may change


#: Machine attributes a test may change that are no part of a snapshot.
SETTINGS = ("budget_seconds", "echo", "suspend_on_interrupt", "sleeps", "stop_on_kasan")

_BOOTED: dict[str, _Booted] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("kmemu_kunit", type="linelist", default=[],
                  help="globs (relative to the rootdir) of C files whose KUnit suites "
                       "are collected as tests, besides *_kunit.c")
    parser.addini("kmemu_kunit_leaks", default="report",
                  help="'report' (a warning) or 'fail': what a KUnit case's leak does")
    parser.addoption("--kmemleak", action="store_true",
                     help="kmemu: boot the machine fixture with kmemleak and fail a test that "
                          "leaves unreferenced objects behind")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kmemu(mem=None, **kw): boot the `machine` fixture with these Machine() "
        "arguments")
    config.addinivalue_line(
        "markers", "kmemleak: boot the `machine` fixture with kmemleak; fail the test if it "
        "leaves unreferenced objects behind (a scan after the test)")


def _is_kunit_file(path: Path, config: pytest.Config) -> bool:
    if path.suffix != ".c":
        return False
    if fnmatch.fnmatch(path.name, "*_kunit.c"):  # Linux's name for KUnit test files
        return True
    root = Path(str(config.rootpath))
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return False
    return any(fnmatch.fnmatch(rel, g) for g in config.getini("kmemu_kunit"))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _is_kunit_file(file_path, parent.config):
        return KunitFile.from_parent(parent, path=file_path)
    return None


class KunitFile(pytest.File):
    """A C file of KUnit suites: built and loaded as a module, run once."""

    run = None  # the emu.check.kunit.KunitRun, after the first case asked for it

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        from emu.check import kunit

        m = booted_machine(**self.machine_kw())
        try:
            mod = m.load_module(self.path)
            suites = kunit.module_suites(m, mod)
        finally:
            booted_machine(**self.machine_kw())  # back to the clean post-boot state
        if not suites:
            raise self.CollectError(f"{self.path.name}: no KUnit suites "
                                    "(kunit_test_suite(...) registers one)")
        for s in suites:
            yield KunitSuite.from_parent(self, name=s.name, cases=s.cases)

    def results(self):  # -> emu.check.kunit.KunitRun
        if self.run is None:
            from emu.check import kunit

            m = booted_machine(**self.machine_kw())
            try:
                mod = m.load_module(self.path)
                self.run = kunit.run_suites(m, suites=kunit.module_suites(m, mod))
            finally:
                booted_machine(**self.machine_kw())
        return self.run

    def machine_kw(self) -> dict[str, object]:
        """KASAN tests (KUNIT_EXPECT_KASAN_FAIL, as in Linux's kasan_test.c, which only
        builds with CONFIG_KASAN) run on the KASAN kernel; the rest on the default one."""
        return {"kasan": True} if b"KUNIT_EXPECT_KASAN_FAIL" in self.path.read_bytes() else {}


class KunitSuite(pytest.Collector):
    def __init__(self, *, cases: list[str], **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.cases = cases

    def collect(self) -> Iterator[pytest.Item]:
        for c in self.cases:
            yield KunitItem.from_parent(self, name=c)


class KunitCaseFailed(Exception):
    """A KUnit case failed; the message is its KTAP diagnostics."""


class KunitItem(pytest.Item):
    def runtest(self) -> None:
        file = self.parent.parent  # type: ignore[union-attr]
        assert isinstance(file, KunitFile)
        run = file.results()
        case = next((c for c in run.cases
                     if c.suite == self.parent.name and c.name == self.name), None)
        if case is None:
            raise KunitCaseFailed(f"{self.parent.name}.{self.name} did not run")
        leaks = "\n".join(f"{lk.describe()}" for lk in case.leaks)
        if leaks:
            self.add_report_section("call", "kmemu KUnit leaks", leaks)
        if case.status == "skip":
            pytest.skip(case.skip_reason or "skipped")
        if case.failed:
            raise KunitCaseFailed(case.failure_text())
        if leaks and self.config.getini("kmemu_kunit_leaks") == "fail":
            raise KunitCaseFailed(f"{case.id} left allocations behind:\n{leaks}")
        if leaks:
            warnings.warn(pytest.PytestWarning(f"KUnit {case.id}: {leaks}"), stacklevel=1)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: object = None) -> str:
        if isinstance(excinfo.value, KunitCaseFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)  # type: ignore[arg-type]

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"kunit {self.parent.name}.{self.name}"


def _key(kw: dict[str, object]) -> str:
    return repr(sorted(kw.items()))


def booted_machine(**kw: object) -> Machine:
    """The session's machine for ``kw``, restored to just after boot."""
    key = _key(kw)
    if key not in _BOOTED:
        m = Machine.booted(**kw)
        _BOOTED[key] = _Booted(m, m.snapshot(), m.hook_handles(),
                               {a: getattr(m, a) for a in SETTINGS})
    b = _BOOTED[key]
    m = b.machine
    m.restore(b.snapshot)  # memory, CPU, console, events, IRQs and timers, no stopped call
    m.remove_hooks_since(b.hooks)  # breakpoints, watchpoints, user hooks
    for attr, value in b.settings.items():
        setattr(m, attr, value)
    return m


def marker_kwargs(marker: pytest.Mark) -> dict[str, object]:
    """``Machine()`` keywords of a ``kmemu`` marker: one positional argument is ``mem``
    (as in ``Machine("6G")``); anything else positional is refused, not ignored."""
    kw = dict(marker.kwargs)
    if len(marker.args) > 1:
        raise pytest.UsageError(f"@pytest.mark.kmemu takes at most one positional argument "
                                f"(mem), got {len(marker.args)}: {marker.args!r}; pass the "
                                "others by keyword")
    if marker.args:
        if "mem" in kw:
            raise pytest.UsageError(f"@pytest.mark.kmemu got mem twice: {marker.args[0]!r} "
                                    f"and mem={kw['mem']!r}")
        kw["mem"] = marker.args[0]
    return kw


def _module_paths(specs: object, base: Path) -> tuple[object, ...]:
    """Each module (a path, or a list of paths for one module of several files) made
    absolute against ``base``, as a hashable tuple for the session's key."""
    items = [specs] if isinstance(specs, (str, Path)) else specs
    if not isinstance(items, (list, tuple)):
        raise BadArgument(f"modules= takes a list of paths, got {specs!r}")

    def one(p: object) -> str:
        if not isinstance(p, (str, Path)):
            raise BadArgument(f"modules= takes paths, got {p!r}")
        return str(p if Path(p).is_absolute() else base / p)

    return tuple(one(s) if isinstance(s, (str, Path)) else tuple(one(x) for x in s)
                 for s in items)


def failure_points(fn: str, *args: int, roots: object = (), base: str | Path | None = None,
                   **machine_kw: object) -> list[int]:
    """The k of every allocation ``fn(*args)`` makes, for ``@pytest.mark.parametrize``:
    one pytest item per allocation point, which pytest-xdist spreads over workers.
    Each item then runs ``machine.sweep_failures(fn, *args, points=[k])`` (that point
    and the conditional allocations it reaches).  ``modules=`` paths are taken
    relative to ``base`` (the test file's folder, ``Path(__file__).parent``), as the
    ``kmemu`` marker's are, so the items use the same session machine as the marker."""
    from emu.check.failures import start_sweep

    if "modules" in machine_kw:
        machine_kw["modules"] = _module_paths(machine_kw["modules"],
                                              Path(base) if base else Path.cwd())
    m = booted_machine(**machine_kw)
    sw, baseline = start_sweep(m, fn, *args, roots=roots)  # type: ignore[arg-type]
    sw.close()
    return list(range(1, len(baseline.allocations) + 1))


@pytest.fixture
def machine(request: pytest.FixtureRequest) -> Iterator[Machine]:
    marker = request.node.get_closest_marker("kmemu")
    kw = marker_kwargs(marker) if marker else {}
    if "modules" in kw:  # paths relative to the test file; loaded before the snapshot
        kw["modules"] = _module_paths(kw["modules"], request.path.parent)
    leakcheck = (request.node.get_closest_marker("kmemleak") is not None
                 or request.config.getoption("kmemleak"))
    if leakcheck:
        kw["kmemleak"] = True
    m = booted_machine(**kw)
    request.node._kmemu_machine = m
    if leakcheck:  # objects allocated from here on are the test's
        request.node._kmemleak_since = m.kmemleak_serial()
    yield m


@pytest.fixture
def debug_session(machine: Machine):  # -> Iterator[emu.debug.session.DebugSession]
    """A :class:`emu.debug.session.DebugSession` over ``machine`` (numbered breakpoints and
    watchpoints, stepping, ``Stop`` reports); afterwards its points are deleted (a call
    still stopped in the guest is left to the next test's restore)."""
    from emu.debug.session import DebugSession

    s = DebugSession(machine)
    yield s
    s.delete()
    machine.suspend_on_interrupt = False


class KmemleakFound(Exception):
    """A kmemleak test left unreferenced objects behind; the message lists them."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a kmemleak test that passed: scan, and fail it with what it leaked."""
    result = yield
    since = getattr(item, "_kmemleak_since", None)
    m = getattr(item, "_kmemu_machine", None)
    if since is None or m is None or m.state != "ready":
        return result
    leaks = m.kmemleak_scan(since=since)
    if leaks:
        raise KmemleakFound(f"kmemleak: {len(leaks)} unreferenced object(s) allocated during "
                            f"the test\n{leaks}")
    return result


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    m = getattr(item, "_kmemu_machine", None)
    if m is None or not rep.failed or rep.when != "call":
        return
    rep.sections.append(("kmemu guest console (last 40 lines)", m.console_tail(40)))
    if m.events:
        text = "\n".join(f"{e.kind}: {e.message}  [{' <- '.join(e.symbols[:6])}]"
                         for e in m.events[-10:])
        rep.sections.append(("kmemu events", text))
