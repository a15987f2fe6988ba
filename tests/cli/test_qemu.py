"""The same image on real QEMU (SeaBIOS): the kernel runs its self-tests and exits."""

from __future__ import annotations

import re
import shutil

import pytest

from emu.cli import main
from emu.qemu import QemuResult, run_qemu

needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="qemu-system-x86_64 is not installed "
                                       "(.ci/run installs qemu-system-x86)")


@needs_qemu
def test_image_boots_on_qemu() -> None:
    res = run_qemu(mem="256M", cmdline="from=qemu", timeout=120)
    assert res.ok, res.output
    assert re.search(r"BIOS-e820: \[mem 0x0000000000100000-0x[0-9a-f]{16}\] usable", res.output)
    assert "Command line: from=qemu" in res.output
    assert re.search(r"kmemu selftest: \d+ passed, 0 failed", res.output)
    assert "no host: running self-tests" in res.output


@needs_qemu
def test_kmemu_qemu_command(capsys) -> None:
    assert main(["qemu", "--quiet"]) == 0
    out = capsys.readouterr()
    assert "self-tests passed under QEMU" in out.err


@needs_qemu
def test_failing_kernel_under_qemu(capsys) -> None:
    assert main(["qemu", "--quiet", "--cmdline", "kmemu_test=boot_oops"]) == 1
    out = capsys.readouterr()
    assert "Kernel panic - not syncing: Fatal exception" in out.out


def test_exit_status_mapping() -> None:
    assert QemuResult(1, "kmemu selftest: 3 passed, 0 failed", 0.1, False).ok
    bad = QemuResult(3, "kmemu selftest: 2 passed, 1 failed", 0.1, False)
    assert bad.kernel_code == 1 and not bad.ok
    assert QemuResult(0, "", 0.1, False).kernel_code is None
    assert "timed out" in QemuResult(None, "", 5.0, True).summary()
