"""Layer 6: the pytest plugin (entry point ``pytest11``).

* ``machine`` fixture: boots once per session per configuration and gives
  every test the machine restored from its post-boot snapshot.
* ``@pytest.mark.kmemu(mem="6G", cmdline="...")`` picks another configuration
  (any ``Machine()`` keyword); the memory size may also come first, as in
  ``Machine("6G")``: ``@pytest.mark.kmemu("6G")``.
* A failing test's report gets the tail of the guest console and the events.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emu.machine import Machine, Snapshot

_BOOTED: dict[str, tuple[Machine, Snapshot]] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kmemu(mem=None, **kw): boot the `machine` fixture with these Machine() "
        "arguments")


def _key(kw: dict[str, object]) -> str:
    return repr(sorted(kw.items()))


def booted_machine(**kw: object) -> Machine:
    """The session's machine for ``kw``, restored to just after boot."""
    key = _key(kw)
    if key not in _BOOTED:
        m = Machine.booted(**kw)
        _BOOTED[key] = (m, m.snapshot())
    m, snap = _BOOTED[key]
    m.restore(snap)
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


@pytest.fixture
def machine(request: pytest.FixtureRequest) -> Iterator[Machine]:
    marker = request.node.get_closest_marker("kmemu")
    m = booted_machine(**(marker_kwargs(marker) if marker else {}))
    request.node._kmemu_machine = m
    yield m


@pytest.fixture
def debug_session(machine: Machine):  # -> Iterator[emu.session.DebugSession]
    """A :class:`emu.session.DebugSession` over ``machine`` (numbered breakpoints and
    watchpoints, stepping, ``Stop`` reports); afterwards its points are deleted and a
    call still stopped in the guest is abandoned (the next test restores anyway)."""
    from emu.session import DebugSession

    s = DebugSession(machine)
    yield s
    s.delete()
    if machine.state == "stopped":
        machine._suspended.abort()  # noqa: SLF001
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
