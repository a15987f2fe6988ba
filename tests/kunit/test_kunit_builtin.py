"""KUnit's built-in suites (kernel/list_test.c, kernel/kmalloc_test.c), driven
case by case by emu.check.kunit, and the same suites run by the kernel alone under QEMU."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from emu.check import kunit
from emu.core.errors import BadArgument
from emu.frontend.cli import main
from emu.machine.core import Machine

LIST_CASES = ["list_test_list_init", "list_test_list_add", "list_test_list_add_tail",
              "list_test_list_del", "list_test_list_empty", "list_test_list_first_entry",
              "list_test_list_for_each", "list_test_list_for_each_entry"]


def expected_ktap(suites: list[tuple[str, list[str]]]) -> str:
    """Linux's KTAP for suites whose cases all pass (stats only for > 1 case)."""
    out = ["KTAP version 1", f"1..{len(suites)}"]
    for n, (name, cases) in enumerate(suites, 1):
        out += ["    KTAP version 1", f"    # Subtest: {name}", f"    1..{len(cases)}"]
        out += [f"    ok {i} {c}" for i, c in enumerate(cases, 1)]
        if len(cases) > 1:
            t = len(cases)
            out += [f"# {name}: pass:{t} fail:0 skip:0 total:{t}",
                    f"# Totals: pass:{t} fail:0 skip:0 total:{t}"]
        out.append(f"ok {n} {name}")
    return "\n".join(out) + "\n"


def test_builtin_suites_are_found(machine: Machine) -> None:
    suites = {s.name: s.cases for s in kunit.builtin_suites(machine)}
    assert suites["list-kernel-test"] == LIST_CASES
    assert "kmalloc_test_ksize_buckets" in suites["kmalloc-kmemu-test"]


def test_builtin_suites_pass_with_linux_ktap(machine: Machine) -> None:
    run = kunit.run_suites(machine, filter="list-*")
    assert run.ktap == expected_ktap([("list-kernel-test", LIST_CASES)])
    run = kunit.run_suites(machine)
    suites = [(s.name, s.cases) for s in kunit.builtin_suites(machine)]
    # link order: kernel/kmalloc_test.c, kunit_test.c, list_test.c
    assert [s for s, _c in suites] == ["kmalloc-kmemu-test", "kunit-api-test",
                                       "list-kernel-test"]
    assert not run.failed and all(c.status == "pass" for c in run.cases)
    assert not run.leaks, [lk.describe() for _c, lk in run.leaks]
    assert [c.number for c in run.suites[0].cases] == list(range(1, len(suites[0][1]) + 1))
    # a parameterised case: a nested block with one line per parameter, counted in Totals
    sizes = [1, 8, 9, 65, 97, 129, 193, 4097]
    param_block = "".join(
        ["        KTAP version 1\n", "        # Subtest: kmalloc_test_ksize_buckets\n"]
        + [f"        ok {i} kmalloc({n})\n" for i, n in enumerate(sizes, 1)]
        + ["    # kmalloc_test_ksize_buckets: pass:8 fail:0 skip:0 total:8\n",
           "    ok 1 kmalloc_test_ksize_buckets\n"])
    assert run.suites[0].cases[0].ktap == param_block
    k = len(suites[0][1])
    assert f"# kmalloc-kmemu-test: pass:{k} fail:0 skip:0 total:{k}\n" in run.ktap
    assert f"# Totals: pass:{k + 7} fail:0 skip:0 total:{k + 7}\n" in run.ktap


def test_filter_glob_selects_and_renumbers(machine: Machine) -> None:
    run = kunit.run_suites(machine, filter="list-*.*_add*")
    assert run.ktap == expected_ktap([("list-kernel-test",
                                       ["list_test_list_add", "list_test_list_add_tail"])])
    one = kunit.run_suites(machine, filter="list-kernel-test.list_test_list_del")
    # one case: no statistics lines, as Linux prints them only for more than one
    assert one.ktap == expected_ktap([("list-kernel-test", ["list_test_list_del"])])
    assert "# list-kernel-test:" not in one.ktap
    none = kunit.run_suites(machine, filter="no-such-suite")
    assert none.ktap == "" and none.cases == []


def test_machine_is_left_as_it_was(machine: Machine) -> None:
    before = machine.console
    free = machine.read_u64(machine.symbol("kunit_nr_leaks"))
    kunit.run_suites(machine)
    assert machine.console == before
    assert machine.read_u64(machine.symbol("kunit_nr_leaks")) == free
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91  # still usable


def test_bad_filter_and_state(machine: Machine) -> None:
    with pytest.raises(BadArgument, match="filter"):
        kunit.run_suites(machine, filter=3)  # type: ignore[arg-type]
    with pytest.raises(kunit.KunitError, match="bad .kunit_test_suites section"):
        kunit.suites_in_range(machine, 0x1000, 0x1004)
    with pytest.raises(kunit.KunitError, match="cannot read the KUnit suite"):
        kunit.read_suite(machine, 0xffff800000000000)


def test_cli_summary_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kunit", "--filter", "list-*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "============== list-kernel-test (8 subtests) ==============="
    assert out[1:9] == [f"[PASSED] {c}" for c in LIST_CASES]
    assert out[-1] == "Testing complete. Ran 8 tests: passed: 8"
    assert main(["kunit", "--raw", "--filter", "list-kernel-test.list_test_list_del"]) == 0
    assert capsys.readouterr().out == expected_ktap([("list-kernel-test",
                                                      ["list_test_list_del"])])
    assert main(["kunit", "--json", "--filter", "kmalloc-*"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"]["pass"] == data["counts"]["total"] > 0
    assert main(["kunit", "--filter", "nothing-matches"]) == 1
    assert "no KUnit test cases matched" in capsys.readouterr().err


KTAP_START = re.compile(r"^KTAP version 1$", re.MULTILINE)


def test_qemu_prints_the_same_ktap(machine: Machine) -> None:
    """One kernel-side run (QEMU, no host) prints what the host-driven run assembles."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    from emu.frontend.qemu import run_qemu

    res = run_qemu(mem="256M", timeout=120)
    assert res.ok, res.output
    start = KTAP_START.search(res.output)
    assert start, res.output
    qemu_ktap = res.output[start.start():res.output.rindex("\n", 0, len(res.output)) + 1]
    qemu_ktap = qemu_ktap.split("kmemu: ", 1)[0]  # the host-side summary line, if any
    assert qemu_ktap == kunit.run_suites(machine).ktap


def _records(machine: Machine) -> list[tuple[str, int, int, int]]:
    n = machine.read_u64(machine.symbol("kunit_nr_leaks"))
    t = machine.var("kunit_leaks")
    kinds = {1: "slab", 2: "pages"}
    return sorted((kinds[t[i].kind.value_()], t[i].ptr.value_(), t[i].size.value_(),
                   t[i].order.value_()) for i in range(n))


def test_tracking_keeps_only_what_is_still_live(machine: Machine) -> None:
    """The allocator hooks behind the leak report, driven from the host."""
    machine.call("kunit_track_begin")
    freed = machine.kmalloc(100)
    kept = machine.kmalloc(100)
    big = machine.kmalloc(20000)            # a page block, tagged with kmalloc's caller
    pages = machine.alloc_pages("GFP_KERNEL", 1)
    gone = machine.alloc_pages("GFP_KERNEL", 0)
    cache = machine.kmem_cache_create("kunit-track", 200)  # its struct and its slab pages
    obj = machine.kmem_cache_alloc(cache)
    machine.kfree(freed)
    machine.free_pages(gone, 0)
    machine.kmem_cache_free(cache, obj)
    machine.call("kunit_track_end")
    recs = _records(machine)
    assert ("slab", kept, 100, 0) in recs
    assert ("pages", big, 32768, 3) in recs and ("pages", pages, 8192, 1) in recs
    assert not [r for r in recs if r[1] in (freed, gone, obj)]
    # no record is a slab's page: those belong to the slab allocator
    assert all(r[0] == "slab" or r[1] in (big, pages) for r in recs), recs
    # outside a case nothing is recorded
    machine.kmalloc(64)
    assert _records(machine) == recs


def test_tracking_tells_an_object_from_its_slab_page(machine: Machine) -> None:
    """A slab's first object and its first page share an address; frees match the kind."""
    cache = machine.kmem_cache_create("kunit-share", 1024)
    machine.call("kunit_track_begin")
    other = machine.kmalloc(8)
    first = machine.kmem_cache_alloc(cache)        # a new slab: page record, then object
    assert first % 4096 == 0
    machine.kfree(other)  # the table fills the hole with its last record: the object
    machine.kmem_cache_free(cache, first)          # now older than its page's record
    machine.call("kunit_track_end")
    assert _records(machine) == []
