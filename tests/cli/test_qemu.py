"""The same image on real QEMU (SeaBIOS): the kernel runs its self-tests and exits.

SeaBIOS reports its own e820 map, so only the line format and the usable
range at 1 MiB are checked, not the exact ranges.
"""

from __future__ import annotations

import re

import pytest

from emu.frontend import qemu as qemu_mod
from emu.frontend.cli import main
from emu.frontend.qemu import QemuError, QemuResult, run_qemu

E820_LINE = re.compile(r"^BIOS-e820: \[mem 0x[0-9a-f]{16}-0x[0-9a-f]{16}\] \S.*$")
USABLE_AT_1M = re.compile(
    r"^BIOS-e820: \[mem 0x0000000000100000-0x[0-9a-f]{16}\] usable$", re.MULTILINE)
SELFTEST = re.compile(r"^kmemu selftest: (\d+) passed, 0 failed$", re.MULTILINE)


def check_log(out: str) -> None:
    e820 = [ln for ln in out.splitlines() if ln.startswith("BIOS-e820:")]
    assert e820, out
    assert all(E820_LINE.match(ln) for ln in e820), e820
    assert USABLE_AT_1M.search(out), e820
    m = SELFTEST.search(out)
    assert m and int(m[1]) > 0, out


def test_run_qemu(qemu: str) -> None:
    res = run_qemu(mem="256M", cmdline="from=qemu", timeout=120)
    assert res.ok, res.output
    assert res.status == 1 and res.kernel_code == 0 and not res.timed_out
    check_log(res.output)
    assert "Command line: from=qemu\n" in res.output
    assert "kmemu: no host: running self-tests" in res.output
    assert "kmemu: host present" not in res.output
    assert "self-tests passed under QEMU" in res.summary()


def test_kmemu_qemu_command(qemu: str, capsys) -> None:
    code = main(["qemu", "--cmdline", "via=cli", "--timeout", "120"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    check_log(out.out)
    assert "Command line: via=cli\n" in out.out
    assert out.err.startswith("kmemu: self-tests passed under QEMU")


def test_kmemu_qemu_quiet_prints_the_log_at_the_end(qemu: str, capsys) -> None:
    assert main(["qemu", "--quiet", "--mem", "64M"]) == 0
    out = capsys.readouterr()
    check_log(out.out)
    assert "self-tests passed under QEMU" in out.err


def test_failing_kernel_under_qemu(qemu: str, capsys) -> None:
    assert main(["qemu", "--quiet", "--cmdline", "kmemu_test=boot_oops"]) == 1
    out = capsys.readouterr()
    assert "Kernel panic - not syncing: Fatal exception" in out.out
    assert "kmemu selftest:" not in out.out


def test_missing_qemu_is_exit_2(monkeypatch, capsys) -> None:
    monkeypatch.setattr(qemu_mod.shutil, "which", lambda name: None)
    with pytest.raises(QemuError, match="not found"):
        qemu_mod.qemu_binary()
    assert main(["qemu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "qemu-system-x86_64 not found" in err


def test_exit_status_mapping() -> None:
    good = QemuResult(1, "kmemu selftest: 3 passed, 0 failed\n", 0.1, False)
    assert good.kernel_code == 0 and good.ok and "passed" in good.summary()

    bad = QemuResult(3, "kmemu selftest: 2 passed, 1 failed\n", 0.1, False)
    assert bad.kernel_code == 1 and not bad.ok and "FAILED" in bad.summary()
    assert "kernel exit code 1" in bad.summary()

    # a summary with failures is a failure even if the exit code said 0
    lying = QemuResult(1, "selftest: x  FAILED\nkmemu selftest: 2 passed, 1 failed\n", 0.1, False)
    assert not lying.ok and lying.failed_selftests == ["x"] and "failed: x" in lying.summary()

    no_code = QemuResult(0, "", 0.1, False)
    assert no_code.kernel_code is None and not no_code.ok
    assert "without a kernel exit code" in no_code.summary()

    # exit code 0 but the self-test summary never printed: not ok
    silent = QemuResult(1, "kmemu kernel 0.1.0\n", 0.1, False)
    assert silent.kernel_code == 0 and not silent.ok

    timed_out = QemuResult(None, "", 5.0, True)
    assert timed_out.kernel_code is None and not timed_out.ok
    assert "timed out after 5.0 s" in timed_out.summary()


NEW_SELFTESTS = ("kmalloc size classes and ksize", "cache create/alloc/free/destroy, ctor",
                 "slab_debug red zone and poison", "vmalloc guard page faults, vfree",
                 "vmap and vunmap", "kernel RWX and no W+X mappings",
                 "writes to text and rodata fault")


def test_allocator_and_rwx_selftests_pass_under_qemu(qemu: str) -> None:
    res = run_qemu(mem="128M", timeout=120)
    assert res.ok, res.output
    for name in NEW_SELFTESTS:
        assert re.search(rf"^selftest: {re.escape(name)} +ok$", res.output, re.M), name
    assert "\nx86/mm: Checked W+X mappings: passed, no W+X pages found.\n" in res.output
    assert re.search(r"^Write protecting the kernel read-only data: \d+k$", res.output, re.M)
    assert res.selftests == (15, 0) and res.failed_selftests == []


def test_broken_selftest_makes_kmemu_qemu_fail(qemu: str, capsys) -> None:
    assert main(["qemu", "--quiet", "--mem", "64M", "--cmdline", "kmemu_test=selftest_fail"]) == 1
    out = capsys.readouterr()
    assert "selftest: deliberately broken (kmemu_test) FAILED" in out.out
    assert "kmemu selftest: 15 passed, 1 failed" in out.out
    assert "self-tests FAILED under QEMU" in out.err
    assert "deliberately broken (kmemu_test)" in out.err  # the summary names the failure
