"""kmemleak without a host: on QEMU the kernel scans once after its self-tests and
KUnit suites, and a leak fails the run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emu.frontend.qemu import run_qemu

HERE = Path(__file__).parent


def test_self_tests_leave_nothing_unreferenced(qemu: str) -> None:
    res = run_qemu(mem="128M", cmdline="kmemleak=on", timeout=120)
    assert res.ok, res.output
    assert "kmemleak: Kernel memory leak detector initialized\n" in res.output
    assert "unreferenced object" not in res.output


@pytest.mark.slow
def test_a_module_leak_fails_the_run(qemu: str) -> None:
    res = run_qemu(mem="128M", cmdline="kmemleak=on", timeout=120,
                   modules=[HERE / "src" / "leak_at_init.c"])
    assert not res.ok and res.kernel_code == 1
    assert re.search(r"^unreferenced object 0xffff888[0-9a-f]+ \(size 96\):\n"
                     r"  comm \"swapper/0\", pid 0, jiffies 4294667296\n", res.output, re.M)
    assert "kmemleak: 1 new suspected memory leaks (see /sys/kernel/debug/kmemleak)" in res.output
    assert "kmemu selftest: 15 passed, 0 failed" in res.output  # only kmemleak failed it
