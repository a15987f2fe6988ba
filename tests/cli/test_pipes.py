"""Issue 10, item 1: SIGPIPE.  A reader of standard output that leaves (``kmemu boot |
head``) ends the command quietly; every other broken pipe (a socket) is the code's
business and never a silent exit."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from emu.frontend import cli


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def test_boot_into_a_pipe_closed_by_its_reader_exits_quietly() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "emu", "boot"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env())
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| head -0`: every write of the boot log meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(120) == cli.EXIT_STDOUT_CLOSED == 141
    assert err == ""  # no traceback, no "Exception ignored" at exit


def test_reading_part_of_the_output_then_leaving() -> None:
    """`kmemu e820 | head -1` (the first line read, then the reader goes)."""
    proc = subprocess.Popen([sys.executable, "-c",
                             "import sys, time; from emu.frontend.cli import main\n"
                             "sys.stdout.write('first\\n'); sys.stdout.flush(); time.sleep(0.5)\n"
                             "sys.exit(main(['e820', '--mem', '1G']))"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"first\n"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 141 and err == ""


def test_a_broken_pipe_that_is_not_stdout_is_not_swallowed(monkeypatch) -> None:
    """A socket whose peer left must not pass for `| head`: the error surfaces."""
    def boom(_args: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "cmd_e820", boom)
    with pytest.raises(BrokenPipeError):
        cli.main(["e820"])


def test_sigpipe_is_not_restored_to_its_default(monkeypatch) -> None:
    """The old rule (SIG_DFL in main) killed `kmemu gdb` when a client left early."""
    import signal

    before = signal.getsignal(signal.SIGPIPE)
    assert cli.main(["e820", "--mem", "64M"]) == 0
    assert signal.getsignal(signal.SIGPIPE) == before


def test_gdb_log_on_a_closed_stderr_does_not_end_the_server(monkeypatch) -> None:
    class Closed:
        def write(self, _text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stderr", Closed())
    cli._gdb_log("gdb connected from 127.0.0.1:1")  # noqa: SLF001 - nothing raised
