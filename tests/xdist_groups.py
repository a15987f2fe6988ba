"""pytest-xdist scheduling that keeps a few modules on one worker each.

Some modules do their expensive work once, in a module-scoped fixture (stock gdb and
the REPL running the same script, a gdb session per scenario), and their tests only
read the transcripts.  ``--dist load`` hands out tests one at a time, so each worker
ran such a fixture: ~4 s of CPU per suite run for the three modules below.  xdist's
own answer, ``--dist loadgroup`` with ``xdist_group`` marks, silently groups nothing
with pytest 9.2 (pytest-xdist 3.8 renames the tests' node ids through a field pytest
no longer reads: pytest-dev/pytest-xdist#1386), and it hands out a static first batch
rather than one test at a time.

:class:`GroupedLoadScheduling` is ``--dist load`` (with ``--maxschedchunk 1``: one
test at a time from one queue, the ``slow`` ones first) except that the first test of
a module in :data:`WHOLE_MODULES` taken from the queue brings the module's other
tests with it, and a worker holding such a batch takes nothing more until it is nearly
through it (so the end of the run stays balanced).  The controller process never
imports the test modules, so the modules are named here rather than marked.

The controller finds the hook in tests/conftest.py (which imports it): only an initial
conftest is loaded there.  Without pytest-xdist nothing here is used.
"""

from __future__ import annotations

import pytest

try:
    from xdist.scheduler import LoadScheduling
except ImportError:  # pytest without xdist: the hook below is never called
    LoadScheduling = object  # type: ignore[assignment,misc]

#: Modules whose tests read what one module-scoped fixture computed.
WHOLE_MODULES = frozenset({
    "tests/debugger/test_gdb_words.py",
    "tests/debugger/test_gdb_frames.py",
    "tests/gdbstub/test_idle_and_detach.py",
})


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


class GroupedLoadScheduling(LoadScheduling):
    def _whole(self, indices: list[int]) -> set[str]:
        assert self.collection is not None
        return {module_of(self.collection[i]) for i in indices} & WHOLE_MODULES

    def _send_tests(self, node, num: int) -> None:
        assert self.collection is not None
        picked = self.pending[:num]
        whole = self._whole(picked)
        if whole:  # the module's other tests come along
            picked += [i for i in self.pending[num:] if module_of(self.collection[i]) in whole]
        taken = set(picked)
        self.pending[:] = [i for i in self.pending if i not in taken]
        if picked:
            self.node2pending[node].extend(picked)
            node.send_runtest_some(picked)

    def check_schedule(self, node, duration: float = 0) -> None:
        held = self.node2pending.get(node, [])
        if self.pending and len(held) >= 2 and self._whole(held):
            return  # through most of a whole module first
        super().check_schedule(node, duration)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log) -> LoadScheduling | None:
    """``--dist load`` with whole modules (the other modes: xdist's own).  It builds on
    LoadScheduling's queue (``pending``, ``node2pending``, ``_send_tests``, xdist
    3.2 to 3.8): an xdist without them gets its own scheduler back, not a crash."""
    if config.getvalue("dist") == "load" and all(
            hasattr(LoadScheduling, a) for a in ("_send_tests", "check_schedule")):
        return GroupedLoadScheduling(config, log)
    return None
