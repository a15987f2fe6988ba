"""failslab, fail_page_alloc and fail-nth with Linux's attributes, report and boot syntax
(kernel/fault_inject.c, emu/machine/faults.py)."""

from __future__ import annotations

import pytest

from emu import KmemuError, Machine
from emu.frontend.pytest_plugin import booted_machine

GFP_KERNEL, GFP_ATOMIC = 0xCC0, 0xA20
NOWARN, NOFAIL, HIGHMEM = 0x2000, 0x8000, 0x02
REPORT = ("FAULT_INJECTION: forcing a failure.\n"
          "name {name}, interval {interval}, probability {p}, space {space}, times {times}\n")


def report(name: str = "failslab", interval: int = 1, p: int = 100, space: int = 0,
           times: int = 1) -> str:
    return REPORT.format(name=name, interval=interval, p=p, space=space, times=times)


def new_text(m: Machine, mark: int) -> str:
    return m.console[mark:]


def test_defaults_are_linuxs(machine: Machine) -> None:
    slab = machine.failslab()
    assert slab == {"probability": 0, "interval": 1, "times": 1, "space": 0, "verbose": 2,
                    "task_filter": 0, "stacktrace_depth": 32, "require_start": 0,
                    "require_end": 2**64 - 1, "reject_start": 0, "reject_end": 0,
                    "ignore_gfp_wait": 1}
    page = machine.fail_page_alloc()
    assert page["ignore_gfp_highmem"] == 1 and page["min_order"] == 1
    assert page["ignore_gfp_wait"] == 1


def test_bad_attributes_are_refused(machine: Machine) -> None:
    with pytest.raises(KmemuError, match="failslab has no attribute 'min_order'"):
        machine.failslab(min_order=0)
    with pytest.raises(KmemuError, match="times is an int"):
        machine.failslab(times=2**40)
    with pytest.raises(KmemuError, match="task_filter is a boolean"):
        machine.failslab(task_filter=2)
    with pytest.raises(KmemuError, match="probability must be an int"):
        machine.failslab(probability="all")
    assert machine.failslab()["probability"] == 0  # nothing was changed
    assert machine.failslab(stacktrace_depth=100)["stacktrace_depth"] == 32  # Linux clamps


def test_probability_times_and_the_report(machine: Machine) -> None:
    m = machine
    got = m.failslab(probability=100, times=2, ignore_gfp_wait=False)
    assert got["times"] == 2
    mark = len(m.console)
    assert m.kmalloc(64) == 0
    text = new_text(m, mark)
    assert text.startswith(report(times=2) + "CPU: 0 PID: 0 Comm: kmemu")
    assert "Call Trace:\n <TASK>\n" in text and "\n kmalloc+" in text
    ev = m.events[-1]
    assert ev.kind == "fault_injection" and ev.message == "FAULT_INJECTION: forcing a failure."
    assert any(s.startswith("kmalloc+") for s in ev.symbols)
    mark = len(m.console)
    assert m.kmalloc(64) == 0
    assert new_text(m, mark).startswith(report(times=1))
    assert m.kmalloc(64) != 0  # times spent
    assert m.failslab()["times"] == 0


def test_ignore_gfp_wait_spares_sleeping_allocations(machine: Machine) -> None:
    m = machine
    m.failslab(probability=100, times=-1, verbose=0)
    assert m.kmalloc(64, "GFP_KERNEL") != 0
    assert m.kmalloc(64, "GFP_ATOMIC") == 0
    assert m.failslab()["times"] == -1


def test_nofail_never_fails_and_nowarn_is_silent(machine: Machine) -> None:
    m = machine
    m.failslab(probability=100, times=-1, ignore_gfp_wait=False)
    events = len(m.events)
    assert m.call("kmalloc", 64, GFP_KERNEL | NOFAIL) != 0
    mark = len(m.console)
    assert m.call("kmalloc", 64, GFP_KERNEL | NOWARN) == 0
    assert new_text(m, mark) == "" and len(m.events) == events
    m.fail_nth(1)
    assert m.call("kmalloc", 64, GFP_KERNEL | NOFAIL) != 0  # not even counted


def test_interval_and_space(machine: Machine) -> None:
    m = machine
    m.failslab(probability=100, times=-1, interval=3, verbose=0, ignore_gfp_wait=False)
    assert [m.kmalloc(32) != 0 for _ in range(6)] == [True, True, False, True, True, False]
    m.failslab(interval=1, space=100)
    assert [m.kmalloc(64) != 0 for _ in range(3)] == [True, False, False]  # 100 > 64, then not
    assert m.failslab()["space"] == 36


def test_require_and_reject_ranges(machine: Machine) -> None:
    m = machine
    start = m.symbol("kmemu_call_return")  # the host's calls return through it
    m.failslab(probability=100, times=-1, verbose=0, ignore_gfp_wait=False,
               require_start=start, require_end=start + 16)
    assert m.kmalloc(64) == 0
    m.failslab(require_start=0, require_end=2**64 - 1, reject_start=start,
               reject_end=start + 16)
    assert m.kmalloc(64) != 0
    m.failslab(reject_start=0, reject_end=0, stacktrace_depth=1,
               require_start=start, require_end=start + 16)
    assert m.kmalloc(64) != 0  # the trace is too short to reach it


def test_task_filter_spares_interrupts(machine: Machine) -> None:
    m = machine
    m.failslab(probability=100, times=-1, verbose=0, ignore_gfp_wait=False, task_filter=True)
    assert m.kmalloc(64, context="irq") != 0
    assert m.kmalloc(64) == 0


def test_fail_page_alloc_min_order_and_highmem(machine: Machine) -> None:
    m = machine
    m.fail_page_alloc(probability=100, times=-1, verbose=0, ignore_gfp_wait=False)
    assert m.alloc_pages("GFP_KERNEL", 0) != 0  # below min_order 1
    assert m.alloc_pages("GFP_KERNEL", 1) == 0
    assert m.call("__alloc_pages", GFP_KERNEL | HIGHMEM, 1) != 0  # ignore_gfp_highmem
    m.fail_page_alloc(min_order=0)
    mark = len(m.console)
    assert m.alloc_pages("GFP_KERNEL", 0) == 0
    assert new_text(m, mark) == ""  # verbose 0: no report


def test_fail_nth(machine: Machine) -> None:
    m = machine
    nth = m.fail_nth(3)
    assert m.kmalloc(64) != 0 and m.alloc_pages("GFP_KERNEL", 0) != 0
    assert not nth.fired and m.fail_nth() == 1
    mark = len(m.console)
    assert m.vmalloc(20000) == 0  # the third: a vmalloc counts once
    assert nth.fired and m.fail_nth() == 0
    assert new_text(m, mark).startswith(report("fail_page_alloc", p=0))
    assert m.vmalloc(20000) != 0  # it fired once
    m.fail_nth(1)
    m.fail_nth(0)  # disarmed
    assert m.kmalloc(64) != 0
    with pytest.raises(KmemuError, match="fail_nth takes a count"):
        m.fail_nth(-1)


def test_fail_nth_counts_only_what_the_code_asked_for(machine: Machine) -> None:
    """vmalloc's own slab and page allocations, a new slab's pages: not counted."""
    m = machine
    nth = m.fail_nth(2)
    assert m.vmalloc(3 * 4096) != 0 and not nth.fired
    assert [m.kmalloc(2048) != 0 for _ in range(20)].count(False) == 1  # new slabs too
    assert nth.fired


def test_boot_parameter() -> None:
    m = booted_machine(mem="32M", cmdline="failslab=2,100,0,3 fail_page_alloc=1,5")
    assert "FAULT_INJECTION: failed to parse arguments" in m.console  # fail_page_alloc's
    slab = m.failslab()
    assert (slab["interval"], slab["probability"], slab["space"]) == (2, 100, 0)
    assert m.fail_page_alloc()["probability"] == 0
    times = slab["times"]
    m.failslab(verbose=0)
    got = [m.kmalloc(64, "GFP_ATOMIC") != 0 for _ in range(2 * times + 2)]
    assert got.count(False) == times  # every second one, until times is spent
    assert m.failslab()["times"] == 0
