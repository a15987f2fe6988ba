"""kmemleak from the REPL (kmemu debug), the CLI and the pytest plugin."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from emu import Machine
from emu.debug.session import DebugSession
from emu.frontend.debugger.repl import Repl

pytest_plugins = ["pytester"]
HERE = Path(__file__).parent


def repl_run(m: Machine, *lines: str) -> list[str]:
    buf = io.StringIO()
    repl = Repl(DebugSession(m), buf)
    out = []
    for line in lines:
        start = buf.tell()
        repl.execute(line)
        out.append(buf.getvalue()[start:])
    return out


@pytest.mark.kmemu(modules=["src/leaky.c"], kmemleak=True)
def test_repl_scan_show_clear(machine: Machine) -> None:
    machine.call("leak_known")
    scan, show, again, clear, after, bad = repl_run(
        machine, "kmemleak", "kmemleak show", "kmemleak scan", "kmemleak clear",
        "kmemleak scan", "kmemleak now")
    assert scan.startswith("unreferenced object 0xffff888")
    assert scan.endswith("kmemleak: 1 new suspected memory leaks (see "
                         "/sys/kernel/debug/kmemleak)\n"
                         "kmemleak: 1 unreferenced objects, 1 new (kmemleak show lists them)\n")
    assert show == scan.split("kmemleak: 1 new")[0]  # cat: the same block
    assert again == "kmemleak: 1 unreferenced objects, 0 new (kmemleak show lists them)\n"
    assert clear == ""
    assert after == "kmemleak: 0 unreferenced objects, 0 new (kmemleak show lists them)\n"
    assert bad == "error: kmemleak takes scan, show or clear, got 'now'\n"


def test_repl_without_kmemleak(machine: Machine) -> None:
    [out] = repl_run(machine, "kmemleak")
    assert out == ("error: kmemleak_scan: kmemleak is off; boot with Machine(kmemleak=True), "
                   "`kmemu boot --kmemleak` or kmemleak=on on the command line\n")


def test_cli_boot_kmemleak() -> None:
    out = subprocess.run([sys.executable, "-m", "emu", "boot", "--kmemleak", "--quiet",
                          "--json"], capture_output=True, text=True, check=True).stdout
    assert '"cmdline": "kmemleak=on"' in out
    assert "kmemleak: Kernel memory leak detector initialized" in out


INNER = f'''
import pytest

LEAKY = pytest.mark.kmemu(modules=[{str(HERE / "src" / "leaky.c")!r}])

@pytest.mark.kmemleak
@LEAKY
def test_leaks(machine):
    machine.call("leak_known")

@pytest.mark.kmemleak
@LEAKY
def test_clean(machine):
    machine.call("keep_middle")
    assert machine.kmemleak_enabled()

@LEAKY
def test_unchecked(machine):
    machine.call("leak_known")  # no marker, no option: not checked
'''


def test_plugin_marker_and_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    assert "KmemleakFound: kmemleak: 1 unreferenced object(s) allocated during the test" in out
    assert "leak_known+0x" in out and "hex dump (first 32 bytes):" in out
    # the option checks every machine test
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly",
                                           "--kmemleak")
    result.assert_outcomes(passed=1, failed=2)
