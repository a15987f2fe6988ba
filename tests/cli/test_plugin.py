"""The pytest plugin (``machine`` fixture, ``kmemu`` marker, failure report),
run on an inner test file with pytester in a subprocess.

The plugin is not passed with ``-p``: the ``pytest11`` entry point must load it.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER = '''
import pytest

def test_call(machine):
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6) == 91

@pytest.mark.kmemu(mem="64M", cmdline="x=1")
def test_marker(machine):
    assert "Command line: x=1" in machine.console
    assert machine.mem == 64 << 20 and machine.cmdline == "x=1"

@pytest.mark.kmemu("64M", cmdline="x=1")
def test_marker_mem_positionally(machine):
    assert machine.mem == 64 << 20  # as Machine("64M"): not ignored

def test_default_config(machine):
    assert machine.mem == 256 << 20
    assert "Command line: x=1" not in machine.console

def test_a_writes_guest_memory(machine):
    va = machine.symbol("kmemu_boot_stage")
    assert machine.read_u64(va) == 3
    machine.write_virt(va, b"\\x09" * 8)
    assert machine.read_u64(va) == 0x0909090909090909

def test_b_sees_it_restored(machine):
    assert machine.read_u64(machine.symbol("kmemu_boot_stage")) == 3

def test_fails_with_the_console(machine):
    machine.call("kmemu_test_warn", 5)
    assert False, "deliberate"
'''


@pytest.mark.slow
def test_plugin(pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=6, failed=1)
    out = result.stdout.str()
    # the failing test's report carries the guest console and the events
    assert "kmemu guest console" in out
    assert "kmemu: host present" in out
    assert "kmemu events" in out and "warn: WARNING: CPU: 0 PID: 0 at" in out
    assert "deliberate" in out
    # only the failing test gets the sections
    assert out.count("kmemu guest console") == 1


def test_plugin_marker_is_registered(pytester) -> None:
    pytester.makepyfile(test_inner="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["*@pytest.mark.kmemu(mem=None, **kw)*"])


def test_marker_arguments() -> None:
    import pytest

    from emu.frontend.pytest_plugin import marker_kwargs

    assert marker_kwargs(pytest.mark.kmemu("6G").mark) == {"mem": "6G"}
    assert marker_kwargs(pytest.mark.kmemu("6G", cmdline="a").mark) == {"mem": "6G",
                                                                         "cmdline": "a"}
    assert marker_kwargs(pytest.mark.kmemu(mem="1G").mark) == {"mem": "1G"}
    with pytest.raises(pytest.UsageError, match="at most one positional argument"):
        marker_kwargs(pytest.mark.kmemu("6G", "x=1").mark)
    with pytest.raises(pytest.UsageError, match="mem twice"):
        marker_kwargs(pytest.mark.kmemu("6G", mem="1G").mark)
