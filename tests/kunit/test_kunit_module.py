"""KUnit suites in a module: every outcome of tests/kunit/src/ktap_sample.c
against the text Linux prints for it, isolation between cases, leaks, time
budgets, the CLI and the pytest collection."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from emu.check import kunit
from emu.frontend.cli import main
from emu.machine.core import Machine

# These need the module loader (issue 11 section 2, branch "modules"); on a tree without it
# they cannot run at all. They passed on kunit merged with modules (see the kunit report).
pytestmark = pytest.mark.skipif(not hasattr(Machine, "load_module"),
                                reason="needs Machine.load_module (the modules branch)")

SRC = Path(__file__).parent / "src"
SAMPLE = SRC / "ktap_sample.c"
F = str(SAMPLE.resolve())  # __FILE__: modules are built by absolute path (as kbuild M=)

# What Linux prints for these cases (lib/kunit/test.c, assert.c; hex values as
# since 6.2).  The oops text between the two sample_oops lines is checked apart.
EXPECTED = f"""KTAP version 1
1..2
    KTAP version 1
    # Subtest: kmemu-ktap-sample
    1..9
    ok 1 sample_pass
    # sample_expect_eq: EXPECTATION FAILED at {F}:31
    Expected a == b, but
        a == 3 (0x3)
        b == 4 (0x4)
    # sample_expect_eq: EXPECTATION FAILED at {F}:32
    Expected a == 5, but
        a == 3 (0x3)
    # sample_expect_eq: EXPECTATION FAILED at {F}:33
    Expected b < a, but
        b == 4 (0x4)
        a == 3 (0x3)
b is 4
    # sample_expect_eq: still running after three failed expectations
    not ok 2 sample_expect_eq
    # sample_assert_ends_case: ASSERTION FAILED at {F}:40
    Expected p != ((void *)0), but
        p == 0000000000000000
        ((void *)0) == 0000000000000000
    not ok 3 sample_assert_ends_case
    # sample_bool_and_ptr: EXPECTATION FAILED at {F}:48
    Expected on to be true, but is false
    # sample_bool_and_ptr: EXPECTATION FAILED at {F}:49
    Expected !on to be false, but is true

flag inverted
    # sample_bool_and_ptr: EXPECTATION FAILED at {F}:50
    Expected err is not error, but is: -12
    # sample_bool_and_ptr: EXPECTATION FAILED at {F}:51
    Expected err == ((void *)0), but
        err == fffffffffffffff4
        ((void *)0) == 0000000000000000
    not ok 4 sample_bool_and_ptr
    # sample_strings_and_memory: EXPECTATION FAILED at {F}:58
    Expected name == "kmalloc-32", but
        name == "kmalloc-64"
    # sample_strings_and_memory: EXPECTATION FAILED at {F}:59
    Expected name != "kmalloc-64", but
        name == "kmalloc-64"
    # sample_strings_and_memory: EXPECTATION FAILED at {F}:60
    Expected a == b, but
        a ==
         01  02 <03> 04 \n        b ==
         01  02 <09> 04 \n    # sample_strings_and_memory: EXPECTATION FAILED at {F}:61
custom failure 42
    not ok 5 sample_strings_and_memory
    ok 6 sample_skip # SKIP no hardware here
    # sample_oops: about to dereference NULL
<OOPS>
    # sample_oops: try faulted
    # sample_oops: internal error occurred preventing test case from running: -4
    not ok 7 sample_oops
    ok 8 sample_leak
    ok 9 sample_after_oops
# kmemu-ktap-sample: pass:3 fail:5 skip:1 total:9
# Totals: pass:3 fail:5 skip:1 total:9
not ok 1 kmemu-ktap-sample
    # kmemu-suite-init-fails:     # failed to initialize (-12)
not ok 2 kmemu-suite-init-fails
"""

OOPS = re.compile(r"(?ms)^(BUG: kernel NULL pointer dereference.*?"
                  r"^---\[ end trace [0-9a-f]+ \]---\n)")


@pytest.fixture
def sample(machine: Machine) -> kunit.KunitRun:
    mod = machine.load_module(SAMPLE)
    return kunit.run_suites(machine, suites=kunit.module_suites(machine, mod))


def test_sample_ktap_is_linux_text(sample: kunit.KunitRun) -> None:
    m = OOPS.search(sample.ktap)
    assert m, sample.ktap
    oops = m.group(1)
    assert "RIP: 0010:sample_oops+0x" in oops and "[ktap_sample]" in oops
    assert sample.ktap.replace(oops, "<OOPS>\n") == EXPECTED


def test_sample_results(sample: kunit.KunitRun) -> None:
    by = {c.name: c for c in sample.cases}
    assert [c.status for c in sample.cases] == [
        "pass", "fail", "fail", "fail", "fail", "skip", "fail", "pass", "pass"]
    assert by["sample_skip"].skip_reason == "no hardware here"
    assert by["sample_expect_eq"].expectations[0] == (
        f"EXPECTATION FAILED at {F}:31\n    Expected a == b, but\n"
        "        a == 3 (0x3)\n        b == 4 (0x4)")
    assert len(by["sample_expect_eq"].expectations) == 3
    assert by["sample_assert_ends_case"].expectations[0].startswith("ASSERTION FAILED")
    assert "not reached" not in sample.ktap  # the ASSERT and kunit_skip ended their cases
    assert by["sample_oops"].oops and "NULL pointer dereference" in by["sample_oops"].oops
    assert by["sample_after_oops"].status == "pass"  # sample_runs == 1: a fresh snapshot
    assert sample.suites[1].init_error == -12 and sample.suites[1].cases == []
    assert sample.failed and sample.counts()["crashed"] == 1


def test_leak_named_with_call_site(sample: kunit.KunitRun) -> None:
    leaks = sample.leaks
    assert [(c.name, lk.kind, lk.size, lk.cache) for c, lk in leaks] == [
        ("sample_leak", "slab", 100, "kmalloc-128")]
    lk = leaks[0][1]
    assert lk.site.startswith("sample_leak+0x"), lk.site
    assert "leaked 100 bytes (kmalloc-128)" in lk.describe()
    # the kunit_kmalloc'd 200 bytes were freed when the case ended: not a leak
    assert not [c for c in sample.cases if c.name != "sample_leak" and c.leaks]


def test_leaked_pages_and_large_kmalloc(machine: Machine, tmp_path: Path) -> None:
    src = tmp_path / "pages_kunit_src.c"
    src.write_text("""#include <kunit/test.h>
#include <linux/slab.h>
#include <linux/gfp.h>
static void keeps_pages(struct kunit *test)
{
	KUNIT_EXPECT_NE(test, __get_free_pages(GFP_KERNEL, 2), 0UL);
	KUNIT_EXPECT_NOT_NULL(test, kmalloc(20000, GFP_KERNEL));
	free_pages(__get_free_pages(GFP_KERNEL, 0), 0); /* freed: not reported */
}
static struct kunit_case c[] = { KUNIT_CASE(keeps_pages), {} };
static struct kunit_suite s = { .name = "kmemu-pages", .test_cases = c };
kunit_test_suite(s);
MODULE_LICENSE("GPL");
""")
    mod = machine.load_module(src)
    run = kunit.run_suites(machine, suites=kunit.module_suites(machine, mod))
    got = sorted((lk.kind, lk.order, lk.size) for _c, lk in run.leaks)
    assert got == [("pages", 2, 16384), ("pages", 3, 32768)]
    for _c, lk in run.leaks:  # the page allocator's caller, then the frames above it
        assert any(f.startswith("keeps_pages+0x") for f in lk.trace), lk.trace
        assert "keeps_pages+0x" in lk.describe()


def test_hang_panic_and_bug_fail_and_the_next_runs(machine: Machine) -> None:
    mod = machine.load_module(SRC / "dies.c")
    run = kunit.run_suites(machine, suites=kunit.module_suites(machine, mod),
                           budget_seconds=0.5)
    hang, panics, bugs, after = run.cases
    assert hang.timed_out and hang.status == "fail" and hang.oops is None
    assert hang.ktap == ("    # spins_forever: try timed out\n"
                         "    # spins_forever: test case timed out\n"
                         "    not ok 1 spins_forever\n")
    assert panics.status == "fail" and panics.ktap.startswith(
        "Kernel panic - not syncing: a KUnit case panics (7)\n")
    assert bugs.status == "fail" and "kernel BUG at" in (bugs.oops or "")
    assert bugs.ktap.endswith("    # bugs: try faulted\n"
                              "    # bugs: internal error occurred preventing test case from "
                              "running: -4\n    not ok 3 bugs\n")
    assert after.status == "pass" and after.ktap == "    ok 4 runs_after\n"
    assert machine.state == "ready"


def test_cli_on_the_sample(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kunit", F]) == 1
    out = capsys.readouterr().out
    assert "[CRASHED] sample_oops" in out and "[SKIPPED] sample_skip" in out
    assert "    # sample_leak: leaked 100 bytes (kmalloc-128)" in out
    assert out.rstrip().splitlines()[-2] == (
        "Testing complete. Ran 9 tests: passed: 3, failed: 4, crashed: 1, skipped: 1, "
        "errors: 1")
    leak_only = ["kunit", F, "--filter", "kmemu-ktap-sample.sample_leak"]
    assert main(leak_only) == 0
    assert main([*leak_only, "--fail-on-leak"]) == 1
    capsys.readouterr()
    assert main([*leak_only, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["suites"][0]["cases"][0]["leaks"][0]["size"] == 100


def test_cli_file_without_suites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "plain.c"
    src.write_text('#include <linux/module.h>\nint plain_answer(void) { return 42; }\n'
                   'MODULE_LICENSE("GPL");\n')
    assert main(["kunit", str(src)]) == 1
    assert "no KUnit suites" in capsys.readouterr().err


pytest_plugins = ["pytester"]

KUNIT_FILE = r"""
#include <kunit/test.h>
static void adds(struct kunit *test) { KUNIT_EXPECT_EQ(test, 1 + 1, 2); }
static void fails(struct kunit *test) { int x = 1; KUNIT_EXPECT_EQ(test, x, 2); }
static void skips(struct kunit *test) { kunit_skip(test, "not today"); }
static struct kunit_case cases[] = { KUNIT_CASE(adds), KUNIT_CASE(fails), KUNIT_CASE(skips), {} };
static struct kunit_suite suite = { .name = "plugin-demo", .test_cases = cases };
kunit_test_suite(suite);
MODULE_LICENSE("GPL");
"""


@pytest.mark.slow
def test_pytest_collects_kunit_cases(pytester: pytest.Pytester) -> None:
    pytester.makefile(".c", demo_kunit=KUNIT_FILE)
    sub = pytester.mkdir("more")
    (sub / "other.c").write_text(KUNIT_FILE.replace("plugin-demo", "by-ini"))
    (sub / "not_collected.c").write_text("this is not C")
    pytester.makeini("[pytest]\nkmemu_kunit = more/other.c\n")
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n0", "-rA")
    res.assert_outcomes(passed=2, failed=2, skipped=2)
    out = res.stdout.str()
    assert "PASSED demo_kunit.c::plugin-demo::adds" in out
    assert re.search(r"^    # fails: EXPECTATION FAILED at /\S+/demo_kunit\.c:\d+$", out, re.M), out
    assert "        x == 1 (0x1)" in out
    assert "PASSED more/other.c::by-ini::adds" in out and "not today" in out
    assert "FAILED more/other.c::by-ini::fails" in out
