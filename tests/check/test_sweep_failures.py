"""The allocation-failure sweep finds each classic error-path bug, with the exact
report, and passes the correct code (tests/check/src/widgets.c)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emu import KmemuError, Machine
from emu.check.failures import sweep_failures_parallel
from emu.frontend.pytest_plugin import failure_points

HERE = Path(__file__).parent
SRC = HERE / "src" / "widgets.c"
WIDGETS = pytest.mark.kmemu(modules=["src/widgets.c"])


def table(*rows: str) -> str:
    return "\n".join(["    k  site                   outcome            detail", *rows])


@WIDGETS
def test_correct_code_passes_every_point(machine: Machine) -> None:
    runs = machine.sweep_failures("widget_add", 4, roots=["widgets"])
    assert str(runs) == "\n".join([
        "widget_add: 4 allocations, 5 runs, 0 not ok (without failures: ok, returned 0)",
        table("    1  widgets.c:37           ok                 returned -12 (-ENOMEM)",
              "    2  widgets.c:40           ok                 returned -12 (-ENOMEM)",
              "    3  widgets.c:43           ok                 returned 0",
              "  3+4  widgets.c:45           ok                 returned -12 (-ENOMEM)",
              "    4  widgets.c:48           ok                 returned -12 (-ENOMEM)")])
    # the kmalloc_array with __GFP_NOWARN failing makes the vmalloc fallback run: found
    assert [(r.k, r.plan, r.outcome) for r in runs][2:4] == [(3, (3,), "ok"), (4, (3, 4), "ok")]
    assert [a.kind for a in runs[3].allocations] == ["slab", "slab", "slab", "vmalloc"]
    assert runs[0].chain[0].startswith("widget_add+") and runs[0].chain[0].endswith(
        "[widgets] (widgets.c:37)")


@WIDGETS
def test_leak_on_an_error_path(machine: Machine) -> None:
    runs = machine.sweep_failures("widget_add_leaky", 4, roots=["widgets"])
    assert [r.outcome for r in runs] == ["ok", "ok", "ok", "leak"]
    bad = runs[3]
    assert (bad.k, bad.site) == (4, "widgets.c:75")
    assert [(lk.kind, lk.size, lk.cache, lk.site) for lk in bad.leaks] == [
        ("slab", 7, "kmalloc-8", "widgets.c:69"), ("slab", 32, "kmalloc-32", "widgets.c:72")]
    text = str(runs).splitlines()
    assert text[0] == ("widget_add_leaky: 4 allocations, 4 runs, 1 not ok (without failures: "
                       "ok, returned 0)")
    assert text[5] == ("    4  widgets.c:75           leak               2 object(s) leaked; "
                       "returned -12 (-ENOMEM)")
    assert text[6].startswith("       leaked 7 bytes (kmalloc-8) at 0xffff888")
    assert text[6].endswith(", allocated at widgets.c:69")
    assert text[7].startswith("       leaked 32 bytes (kmalloc-32) at 0xffff888")
    assert text[7].endswith(", allocated at widgets.c:72")


@WIDGETS
def test_missing_null_check(machine: Machine) -> None:
    runs = machine.sweep_failures("widget_add_unchecked", 4, roots=["widgets"])
    assert [r.outcome for r in runs] == ["ok", "oops"]
    assert runs[1].site == "widgets.c:94"
    assert runs[1].detail == ("BUG: kernel NULL pointer dereference, address: 0000000000000000 "
                              "(RIP widget_add_unchecked+0x37/0x60 [widgets])")
    assert machine.state == "ready"  # the sweep restored the machine


@WIDGETS
def test_success_returned_after_a_failure(machine: Machine) -> None:
    runs = machine.sweep_failures("widget_add_quiet", 4, roots=["widgets"])
    assert [(r.site, r.outcome, r.detail) for r in runs] == [
        ("widgets.c:104", "ok", "returned -12 (-ENOMEM)"),
        ("widgets.c:107", "no-error-returned", "returned 0")]
    # the caller may say what failure looks like
    runs = machine.sweep_failures("widget_add_quiet", 4, roots=["widgets"],
                                  failure=lambda r: True)
    assert [r.outcome for r in runs] == ["ok", "ok"]


@WIDGETS
def test_warn_and_bad_page(machine: Machine) -> None:
    runs = machine.sweep_failures("widget_add_warn", 4, roots=["widgets"])
    assert runs[1].outcome == "warn"
    assert runs[1].detail == (f"WARNING: CPU: 0 PID: 0 at {SRC}:126 "
                              "widget_add_warn+0x6d/0x80 [widgets]")
    runs = machine.sweep_failures("widget_add_badfree", 4, roots=["widgets"])
    assert [(r.site, r.outcome) for r in runs] == [("widgets.c:139", "ok"),
                                                   ("widgets.c:142", "invalid-state")]
    assert runs[1].detail.startswith("BUG: Bad page state in process kmemu  pfn:")


@WIDGETS
def test_roots_and_the_return_value(machine: Machine) -> None:
    # without its root the stored widget is a leak already without failures
    runs = machine.sweep_failures("widget_add", 4)
    assert runs.baseline.outcome == "leak"
    assert sorted(lk.kind for lk in runs.baseline.leaks) == ["pages", "slab", "slab", "slab"]
    # a returned object is referenced by the caller, and what it points to through it
    runs = machine.sweep_failures("widget_new")
    assert runs.baseline.outcome == "ok" and [r.outcome for r in runs] == ["ok", "ok"]
    with pytest.raises(KmemuError, match="root 'nowhere': no such kernel or module symbol"):
        machine.sweep_failures("widget_new", roots=["nowhere"])


@WIDGETS
def test_validators_and_points(machine: Machine) -> None:
    runs = machine.sweep_failures("widget_add", 4, roots=["widgets"], points=[2],
                                  validate=lambda m: ["made up"] if m.fail_nth() == 0 else [])
    assert [(r.k, r.outcome, r.detail) for r in runs] == [(2, "invalid-state", "made up")]


@WIDGETS
def test_bad_sweep_requests(machine: Machine) -> None:
    with pytest.raises(KmemuError, match=r"points: 5 is not an allocation of widget_add "
                       r"\(it makes 4, numbered from 1\)"):
        machine.sweep_failures("widget_add", 4, roots=["widgets"], points=[5])
    with pytest.raises(KmemuError, match="task-context allocations only"):
        machine.sweep_failures("widget_add", 4, context="irq")
    with pytest.raises(KmemuError, match="roots is a list"):
        machine.sweep_failures("widget_add", 4, roots="widgets")
    assert machine.state == "ready" and machine.fail_nth() == 0


POINTS = failure_points("widget_add", 4, roots=["widgets"], modules=["src/widgets.c"],
                        base=HERE)


@WIDGETS
@pytest.mark.parametrize("k", POINTS)
def test_one_item_per_allocation_point(machine: Machine, k: int) -> None:
    runs = machine.sweep_failures("widget_add", 4, roots=["widgets"], points=[k])
    assert runs and runs[0].k == k
    assert all(r.outcome == "ok" for r in runs), runs


def test_points_are_collected() -> None:
    assert POINTS == [1, 2, 3, 4]


def test_over_processes_matches_one_process() -> None:
    kw = {"mem": "32M", "modules": [str(SRC)]}
    runs = sweep_failures_parallel(kw, "widget_add_leaky", 4, jobs=2, roots=["widgets"])
    assert [(r.k, r.site, r.outcome) for r in runs] == [
        (1, "widgets.c:66", "ok"), (2, "widgets.c:69", "ok"), (3, "widgets.c:72", "ok"),
        (4, "widgets.c:75", "leak")]
    assert [lk.site for lk in runs[3].leaks] == ["widgets.c:69", "widgets.c:72"]


@pytest.mark.slow
def test_correct_code_passes_all_three_checks() -> None:
    """The three rules on one module with none of the bugs: every allocation failure is
    handled (the sweep), nothing is left unreferenced (kmemleak), nothing is touched
    outside what was asked for (KASAN instruments the module and the kernel)."""
    from emu.frontend.pytest_plugin import booted_machine
    m = booted_machine(kasan=True, kmemleak=True, modules=[str(SRC)])
    runs = m.sweep_failures("widget_add", 4, roots=["widgets"])
    assert [r.outcome for r in runs] == ["ok"] * len(runs) and len(runs) == 5
    assert m.call("widget_add", 4) == 0  # a KASAN report would raise KasanReport here
    assert m.kmemleak_scan() == []
    assert "BUG: KASAN" not in m.console_tail(200)
