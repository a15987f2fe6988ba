"""Layer 6: the pytest plugin (entry point ``pytest11``).

* ``machine`` fixture: boots once per session per configuration and gives
  every test the machine restored from its post-boot snapshot, with nothing
  an earlier test left behind: no breakpoints, watchpoints or hooks (every
  Unicorn hook added since boot is deleted), no timers, pending interrupts or
  stopped call (the snapshot has none), and the host-side settings of boot.
* ``@pytest.mark.kmemu(mem="6G", cmdline="...")`` picks another configuration
  (any ``Machine()`` keyword); ``modules=["mydev.c", ["a.c", "b.c"]]`` (paths
  relative to the test file) loads modules after boot, before the snapshot.
* A failing test's report gets the tail of the guest console and the events.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emu.errors import BadArgument
from emu.machine import Machine, Snapshot


@dataclass(frozen=True)
class _Booted:
    """A session's machine and what a test must find it as."""

    machine: Machine
    snapshot: Snapshot
    hooks: frozenset[int]  # the Unicorn hooks right after boot
    settings: dict[str, object]  # public host-side attributes a test may change


#: Machine attributes a test may change that are no part of a snapshot.
SETTINGS = ("budget_seconds", "echo", "suspend_on_interrupt", "sleeps")

_BOOTED: dict[str, _Booted] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kmemu(**kw): boot the `machine` fixture with these Machine() arguments")


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


@pytest.fixture
def machine(request: pytest.FixtureRequest) -> Iterator[Machine]:
    marker = request.node.get_closest_marker("kmemu")
    kw = dict(marker.kwargs) if marker else {}
    if "modules" in kw:  # paths relative to the test file; loaded before the snapshot
        kw["modules"] = _module_paths(kw["modules"], request.path.parent)
    m = booted_machine(**kw)
    request.node._kmemu_machine = m
    yield m


@pytest.fixture
def debug_session(machine: Machine):  # -> Iterator[emu.session.DebugSession]
    """A :class:`emu.session.DebugSession` over ``machine`` (numbered breakpoints and
    watchpoints, stepping, ``Stop`` reports); afterwards its points are deleted (a call
    still stopped in the guest is left to the next test's restore)."""
    from emu.session import DebugSession

    s = DebugSession(machine)
    yield s
    s.delete()
    machine.suspend_on_interrupt = False


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
