"""tests/xdist_groups.py's scheduler, driven as xdist's controller drives it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.xdist_groups import WHOLE_MODULES, GroupedLoadScheduling

Producer = pytest.importorskip("xdist.remote").Producer

WORDS = "tests/debugger/test_gdb_words.py"


class FakeNode:
    """The part of xdist's WorkerController a scheduler uses."""

    def __init__(self, name: str) -> None:
        self.name, self.queue, self.shutting_down = name, [], False
        self.gateway = SimpleNamespace(id=name)

    def send_runtest_some(self, indices: list[int]) -> None:
        self.queue += indices

    def shutdown(self) -> None:
        self.shutting_down = True


def run(collection: list[str]) -> dict[str, list[str]]:
    """Both workers take turns finishing their first queued test: which tests each ran."""
    config = SimpleNamespace(getvalue=lambda name: ["2*popen"],
                             getoption=lambda name: 1)  # --maxschedchunk 1
    sched = GroupedLoadScheduling(config, Producer("test", enabled=False))  # type: ignore
    nodes = [FakeNode("gw0"), FakeNode("gw1")]
    for n in nodes:
        sched.add_node(n)  # type: ignore[arg-type]
        sched.add_node_collection(n, collection)  # type: ignore[arg-type]
    sched.schedule()
    ran: dict[str, list[str]] = {n.name: [] for n in nodes}
    while any(n.queue for n in nodes):
        for n in nodes:
            if n.queue:
                i = n.queue.pop(0)
                ran[n.name].append(collection[i])
                sched.mark_test_complete(n, i, 0.01)  # type: ignore[arg-type]
    assert sched.tests_finished and not sched.pending
    return ran


def test_a_whole_module_runs_on_one_worker_and_the_rest_one_at_a_time() -> None:
    assert WORDS in WHOLE_MODULES
    collection = ([f"tests/a.py::test_slow{i}" for i in range(3)]
                  + [f"{WORDS}::test_words[{i}]" for i in range(40)]
                  + [f"tests/b.py::test_{i}" for i in range(60)])
    ran = run(collection)
    assert sorted(ran["gw0"] + ran["gw1"]) == sorted(collection)  # each test once
    words = [w for w, tests in ran.items() if any(t.startswith(WORDS) for t in tests)]
    assert len(words) == 1  # one worker ran the module
    other = "gw1" if words == ["gw0"] else "gw0"
    # ...while the other went on with the queue, and both end close together
    assert len(ran[other]) >= 40 and abs(len(ran["gw0"]) - len(ran["gw1"])) <= 4, ran


def test_without_whole_modules_it_is_plain_load_scheduling() -> None:
    collection = [f"tests/b.py::test_{i}" for i in range(50)]
    ran = run(collection)
    assert sorted(ran["gw0"] + ran["gw1"]) == sorted(collection)
    assert abs(len(ran["gw0"]) - len(ran["gw1"])) <= 1  # one test at a time, alternately
    for tests in ran.values():  # each worker in queue order
        assert tests == sorted(tests, key=collection.index)
