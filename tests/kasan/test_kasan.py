"""KASAN (issue 14 part 4): the KASAN kernel finds each kind of bug in a module
and reports it in Linux's words; a clean module runs clean.

One KASAN machine for the module (booting the variant is the slow part); each
test starts from the same snapshot.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from emu import KasanReport, Machine

SRC = Path(__file__).parent / "src" / "mydev.c"
ADDR = re.compile(r"ffff[0-9a-f]{12}")


@pytest.fixture(scope="module")
def kasan_machine() -> Iterator[Machine]:
    m = Machine(kasan=True)
    m.boot()
    m.load_module(SRC)
    snap = m.snapshot()
    yield m
    del snap


@pytest.fixture
def km(kasan_machine: Machine) -> Iterator[Machine]:
    snap = kasan_machine.snapshot()
    yield kasan_machine
    kasan_machine.restore(snap)


def report(m: Machine, fn: str, *args: int) -> KasanReport:
    with pytest.raises(KasanReport) as ei:
        m.call(fn, *args)
    return ei.value


def shape(text: str) -> str:
    """The report with addresses and offsets that move between builds masked."""
    text = ADDR.sub("ADDR", text)
    return re.sub(r"\+0x[0-9a-f]+/0x[0-9a-f]+", "+OFF", text)


def test_boot_line(kasan_machine: Machine) -> None:
    assert "kasan: KernelAddressSanitizer initialized (generic)\n" in kasan_machine.console


def test_off_by_one_write(km: Machine) -> None:
    e = report(km, "mydev_fill", 18)
    assert (e.kind, e.size, e.write, e.cache, e.object_size) == \
        ("slab-out-of-bounds", 1, True, "kmalloc-32", 18)
    assert e.address == e.object + 18
    assert e.site.startswith("mydev_fill+") and e.site.endswith(" [mydev]")
    # the allocator's own frames (as Linux's stack shows __kasan_kmalloc, kmalloc_trace), then
    # the module's call
    assert [f.split("+")[0] for f in e.alloc_stack[:4]] == \
        ["slab_post_alloc", "slab_alloc_hooks", "kmalloc", "mydev_fill"]
    assert e.free_stack == []
    o = e.object
    head = shape(e.text).split("\nCPU: ")[0]
    assert head == ("=" * 66 + "\nBUG: KASAN: slab-out-of-bounds in mydev_fill+OFF [mydev]\n"
                    "Write of size 1 at addr ADDR by task swapper/0\n")
    assert f"Write of size 1 at addr {e.address:016x} by task swapper/0\n" in e.text
    assert ("\nAllocated by task 0:\n slab_post_alloc+") in e.text
    assert (f"The buggy address belongs to the object at {o:016x}\n"
            " which belongs to the cache kmalloc-32 of size 32\n"
            "The buggy address is located 0 bytes to the right of\n"
            f" allocated 18-byte region [{o:016x}, {o + 18:016x})\n") in e.text
    # the shadow row with the object: two full granules, 2 bytes of the third, red zone
    row = (o & ~127)
    line = next(ln for ln in e.text.splitlines() if ln.startswith(f">{row:016x}:"))
    col = (o - row) // 8
    assert line.split(": ")[1].split()[col:col + 4] == ["00", "00", "02", "fc"]
    caret = e.text.splitlines()[e.text.splitlines().index(line) + 1]
    assert caret.index("^") == 3 + 16 + ((e.address - row) // 8) * 3
    assert e.text.rstrip().endswith("=" * 66)
    assert "kasan" in [ev.kind for ev in km.events]
    assert e.result == 0  # the call went on, as Linux does


def test_use_after_free(km: Machine) -> None:
    e = report(km, "mydev_use_after_free")
    assert (e.kind, e.size, e.write) == ("slab-use-after-free", 4, False)
    assert e.address == e.object + 4
    assert [f.split("+")[0] for f in e.free_stack[:4]] == \
        ["slab_free_hooks", "kfree_hooks", "kfree", "mydev_use_after_free"]
    assert any(f.startswith("mydev_use_after_free+") for f in e.free_stack)
    assert "BUG: KASAN: slab-use-after-free in mydev_use_after_free+" in e.text
    assert "\nFreed by task 0:\n slab_free_hooks+" in e.text
    assert ("The buggy address is located 4 bytes inside of\n"
            f" freed 32-byte region [{e.object:016x}, {e.object + 32:016x})\n") in e.text


def test_double_free(km: Machine) -> None:
    e = report(km, "mydev_double_free")
    assert e.kind == "double-free"
    assert "BUG: KASAN: double-free in mydev_double_free+" in e.text
    assert f"Free of addr {e.address:016x} by task swapper/0\n" in e.text
    assert e.alloc_stack and e.free_stack


def test_invalid_free(km: Machine) -> None:
    e = report(km, "mydev_invalid_free")
    assert e.kind == "invalid-free"
    assert e.address == e.object + 8
    assert "BUG: KASAN: invalid-free in mydev_invalid_free+" in e.text
    assert "The buggy address is located 8 bytes inside of\n allocated 64-byte region" in e.text


def test_global_out_of_bounds(km: Machine) -> None:
    km.call("mydev_global", 9)  # the last byte of names[10]: fine
    e = report(km, "mydev_global", 10)
    assert (e.kind, e.size, e.write) == ("global-out-of-bounds", 1, True)
    assert "BUG: KASAN: global-out-of-bounds in mydev_global+" in e.text
    assert "\nThe buggy address belongs to the variable:\n mydev_names+0xa/" in e.text


def test_vmalloc_out_of_bounds(km: Machine) -> None:
    e = report(km, "mydev_vmalloc", 100)
    assert (e.kind, e.size, e.write) == ("vmalloc-out-of-bounds", 1, False)
    assert e.address == e.object + 100
    assert "The buggy address belongs to the virtual mapping at\n [" in e.text


def test_page_use_after_free(km: Machine) -> None:
    e = report(km, "mydev_page_uaf")
    assert (e.kind, e.size, e.write) == ("use-after-free", 1, False)
    assert "BUG: KASAN: use-after-free in mydev_page_uaf+" in e.text
    assert "The buggy address belongs to the physical page:\n" in e.text


def test_stack_out_of_bounds(km: Machine) -> None:
    assert km.call("mydev_stack", 15) == 0
    e = report(km, "mydev_stack", 16)
    assert (e.kind, e.write) == ("stack-out-of-bounds", True)
    assert ("\nThe buggy address belongs to stack of task swapper/0\n"
            " and is located at offset 48 in frame:\n mydev_stack+0x0/") in e.text
    assert "\nThis frame has 1 object:\n [32, 48) 'buf'\n" in e.text


def test_clean_module_runs_clean(km: Machine) -> None:
    before = len(km.events)
    assert km.call("mydev_churn", 300) > 0
    assert [ev for ev in km.events[before:] if ev.kind == "kasan"] == []


def test_debugger_stops_at_the_access(km: Machine) -> None:
    from emu import KasanStop

    km.stop_on_kasan = True
    try:
        with pytest.raises(KasanStop) as ei:
            km.call("mydev_fill", 18)
        stop = ei.value
        assert stop.reason == "kasan" and km.state == "stopped"
        assert stop.report.kind == "slab-out-of-bounds"
        assert km.symbolize(km.cpu.rip) == stop.report.site  # right after the check
        assert str(stop).startswith("BUG: KASAN: slab-out-of-bounds in mydev_fill+")
        assert stop.call.resume() == 0  # the access happens, the call ends (as in Linux)
        assert km.state == "ready"
    finally:
        km.stop_on_kasan = False


def test_kunit_expect_kasan_fail(km: Machine) -> None:
    from emu.check import kunit

    mod = km.load_module(Path(__file__).parent / "src" / "kasan_sample.c")
    run = kunit.run_suites(km, suites=kunit.module_suites(km, mod))
    status = {c.name: c.status for c in run.cases}
    assert status == {"kmalloc_oob_right": "pass", "kmalloc_in_bounds": "fail",
                      "kmalloc_uaf_unexpected": "fail"}
    assert ('KASAN failure expected in "((volatile char *)p)[17] = \'y\'", but none '
            "occurred") in run.ktap
    assert "BUG: KASAN: slab-use-after-free in kmalloc_uaf_unexpected+" in run.ktap
    assert "BUG: KASAN: slab-out-of-bounds in kmalloc_oob_right+" in run.ktap


def test_builtin_kunit_suites_pass_on_kasan_kernel(kasan_machine: Machine) -> None:
    from emu.check import kunit

    run = kunit.run_suites(kasan_machine)
    assert run.cases and not run.failed, run.ktap
    assert "BUG: KASAN" not in run.ktap


def test_debug_session_stops_at_the_access(km: Machine) -> None:
    from emu.debug.session import DebugSession

    s = DebugSession(km)
    try:
        stop = s.call("mydev_fill", ["18"])
        assert stop.reason == "kasan"
        first, where = stop.text.split("\n", 1)
        assert re.fullmatch(r"KASAN: slab-out-of-bounds: Write of size 1 at addr "
                            r"ffff888[0-9a-f]{9}", first)
        assert " in mydev_fill (n=18) at " in where and "mydev.c:20" in where
        done = s.cont()
        assert done.reason == "done" and done.value == 0
    finally:
        km.stop_on_kasan = False
        km.suspend_on_interrupt = False


def test_cli_kunit_kasan(capsys: pytest.CaptureFixture[str]) -> None:
    from emu.frontend.cli import main

    src = str(Path(__file__).parent / "src" / "kasan_expect_kunit.c")
    assert main(["kunit", "--kasan", src]) == 0
    out = capsys.readouterr().out
    assert "Testing complete. Ran 4 tests: passed: 4" in out
    assert main(["kunit", src]) == 1  # the default kernel has no KASAN: the cases fail
    assert "but this kernel has no KASAN (boot the KASAN variant)" in capsys.readouterr().out


def test_wild_access_faults_at_the_access(km: Machine) -> None:
    from emu import GuestOops

    # a direct-map hole (the ISA hole) and a vmalloc address no area ever had: the
    # shadow reads as accessible there, so the access itself faults (not the check)
    for addr in (0xFFFF8880000A0000, 0xFFFFC90100000000):
        with pytest.raises(GuestOops) as ei:
            km.call("kmemu_test_fault", addr, 0)
        assert ei.value.address == addr and ei.value.rip.startswith("kmemu_test_fault+")


def test_cflags_kasan(capsys: pytest.CaptureFixture[str]) -> None:
    from emu.frontend.cli import main

    assert main(["cflags", "--kasan"]) == 0
    flags = capsys.readouterr().out.split()
    assert "-fsanitize=kernel-address" in flags and "-DCONFIG_KASAN" in flags
    assert "-fasan-shadow-offset=0xdffffc0000000000" in flags
    assert main(["cflags"]) == 0
    assert "-fsanitize=kernel-address" not in capsys.readouterr().out
