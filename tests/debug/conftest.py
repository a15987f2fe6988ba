"""What the debugging engine's tests share: ``fast_paths`` (every test runs on the
allocators' fast paths, debug checks off), ``s`` (the plugin's debug session under a
short name), ``keep_removed_hooks`` (removed Unicorn hooks kept alive and the host-side
debugger state reset after each test; a module opts in with
``pytestmark = pytest.mark.usefixtures("keep_removed_hooks")``) and ``alloc_fast``."""

from __future__ import annotations

import pytest

from emu import Machine
from emu.debug.session import DebugSession

#: Unicorn callbacks removed during these tests.  A code hook in the middle of a
#: translated block can still be called after hook_del (see the stale-hook tests):
#: keeping the ctypes thunks alive turns that crash into a visible wrong result.
_KEEP: list[object] = []


@pytest.fixture
def keep_removed_hooks(machine: Machine, monkeypatch: pytest.MonkeyPatch):
    uc = machine.uc
    orig = uc.hook_del

    def hook_del(handle: int) -> None:
        _KEEP.append(uc._callbacks.get(handle))  # noqa: SLF001
        orig(handle)

    monkeypatch.setattr(uc, "hook_del", hook_del, raising=False)
    yield
    # do not leak host-side debugger state into other tests (restore() keeps some)
    for wp in list(machine._watchpoints):  # noqa: SLF001
        wp.remove()
    machine._skip_once = None  # noqa: SLF001
    machine._stop_hit = None  # noqa: SLF001
    machine._interrupted = False  # noqa: SLF001
    machine.suspend_on_interrupt = False
    uc.ctl_flush_tb()


@pytest.fixture(autouse=True)
def fast_paths(machine: Machine) -> None:
    """The allocators as `kmemu bench` counts them: might_sleep's and the bad-page checks
    off, so no hook holds slab_hooks_key or page_hooks_key and kmalloc, kfree,
    alloc_pages and __free_pages run their one-nop fast paths.  These tests break, step
    and name frames inside those paths (the hooks path has its own frames:
    tests/kernel/test_unwind.py, tests/kasan)."""
    machine.alloc_debug(might_sleep=False, bad_page=False)


@pytest.fixture
def s(debug_session: DebugSession) -> DebugSession:
    return debug_session  # the plugin's fixture, under a short name


def alloc_fast(m: Machine) -> int:
    return int(m.var("kmalloc_caches")[0][6].cpu_slab.alloc_fast.address_)
