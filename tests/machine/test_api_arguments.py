"""Every public entry point checks its arguments: whatever a caller passes, only a
:class:`emu.KmemuError` escapes (never TypeError, ValueError, OverflowError,
drgn or Unicorn errors), and the machine stays usable.

The methods are found by introspection (every public method of Machine and its
mixins, of SuspendedCall, and Machine's constructor), so a new method is
covered the day it is added.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

import pytest
from unicorn import UC_HOOK_CODE

from emu import BreakpointHit, KmemuError, Machine
from emu.debug.breakpoints import Breakpoint, Watchpoint
from emu.debug.stops import SuspendedCall

# Wrong types and out-of-range values, one at a time in each parameter.
BAD: list[object] = [object(), 1.5, b"\x01", [1], "x", -1, 1 << 70, True, None, float("nan")]

# A harmless value for each parameter that is not the one under test (by name).
GOOD: dict[str, object] = {
    "gfp": "GFP_KERNEL", "order": 0, "addr": 0, "address": 0xFFFF888000100000, "va": 0,
    "pa": 0, "page": 0, "pfn": 0, "size": 64, "n": 1, "name": "kmalloc-64", "cache": 0,
    "type_name": "int", "where": "kmemu_test_nop", "vector": 0x30, "fn": "kmemu_test_nop",
    "data": b"", "lines": 3, "level": 0, "max_frames": 4, "align": 8, "start": None, "end": None,
    "start_pfn": 0, "count": 1, "access": "read", "after": None, "htype": UC_HOOK_CODE,
    "callback": lambda *a: None, "user_data": None, "begin": 1, "snap": None, "flags": 0,
    "condition": None, "temporary": False, "stop": False, "changes_only": False,
    "expression": "", "context": "process", "budget_seconds": None, "max_insns": None,
}

SKIP = {"booted"}  # Machine.booted(**kw) is Machine(**kw).boot(): the constructor is below


def public_methods(cls: type) -> list[str]:
    out = []
    for name in sorted(dir(cls)):
        if name.startswith("_") or name in SKIP:
            continue
        if isinstance(inspect.getattr_static(cls, name), property):
            continue
        if callable(getattr(cls, name)):
            out.append(name)
    return out


def cases(fn: Callable[..., object]) -> Iterator[tuple[str, dict[str, object]]]:
    """(parameter, keyword arguments) with one parameter bad, the others harmless."""
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.name != "self" and not p.name.startswith("_")
              and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    for p in params:
        for bad in BAD:
            if bad is None and p.default is None:
                continue  # None is this parameter's own default: not a bad value
            kw = {q.name: GOOD.get(q.name, 0) for q in params
                  if q.default is inspect.Parameter.empty or q.name == p.name}
            kw[p.name] = bad
            yield p.name, kw


def only_kmemu_errors(fn: Callable[..., object], kw: dict[str, object]) -> object:
    try:
        return fn(**kw)
    except KmemuError:
        return None
    except Exception as e:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{fn.__qualname__}(**{kw!r}) raised {type(e).__name__}: {e}")


def _cleanup(result: object) -> None:
    if isinstance(result, (Breakpoint, Watchpoint)):  # accepted: do not leave it behind
        result.remove()


@pytest.mark.parametrize("method", public_methods(Machine))
def test_machine_methods_raise_only_kmemu_errors(machine: Machine, method: str) -> None:
    snap = machine.snapshot()
    fn = getattr(machine, method)
    for _param, kw in cases(fn):
        if "snap" in kw and kw["snap"] is None:
            kw["snap"] = snap
        result = only_kmemu_errors(fn, kw)
        _cleanup(result)
        if machine.state != "ready":
            machine.restore(snap)
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91  # still usable


@pytest.mark.parametrize("method", public_methods(SuspendedCall))
def test_suspended_call_methods_raise_only_kmemu_errors(machine: Machine, method: str) -> None:
    bp = machine.break_at("kmalloc")
    try:
        with pytest.raises(BreakpointHit) as hit:
            machine.kmalloc(64)
        call = hit.value.call
        snap = machine.snapshot()
        for _param, kw in cases(getattr(call, method)):
            if not kw:
                continue  # nothing to get wrong
            only_kmemu_errors(getattr(call, method), kw)
            machine.restore(snap)
    finally:
        bp.remove()
        if machine.state == "stopped":
            machine._suspended.abort()  # noqa: SLF001


def test_constructor_raises_only_kmemu_errors() -> None:
    for _param, kw in cases(Machine.__init__):
        only_kmemu_errors(Machine, kw)  # not booted: nothing to clean up
