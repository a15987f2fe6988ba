"""The pytest plugin, run on an inner test file with pytester."""

from __future__ import annotations

pytest_plugins = ["pytester"]

INNER = '''
import pytest

def test_call(machine):
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91

@pytest.mark.kmemu(mem="64M", cmdline="x=1")
def test_marker(machine):
    assert "Command line: x=1" in machine.console
    assert machine.mem == 64 << 20

def test_a_writes(machine):
    machine.write_virt(machine.symbol("kmemu_boot_stage"), (9).to_bytes(8, "little"))

def test_b_sees_a_fresh_machine(machine):
    assert machine.read_u64(machine.symbol("kmemu_boot_stage")) == 3

def test_fails(machine):
    machine.call("kmemu_test_warn", 5)
    assert False, "deliberate"
'''


def test_plugin(pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1)
    out = result.stdout.str()
    assert "kmemu guest console" in out
    assert "kmemu: host present" in out
    assert "kmemu events" in out and "warn: WARNING: CPU: 0 PID: 0 at" in out
