"""Ctrl-C in a running ``kmemu`` command stops the guest and ends in one line.

The CLI blocks SIGINT in the main thread and waits for it in a helper thread
(``emu.frontend.cli.ctrl_c_stops``), because the emulator's C loop does not
return to Python for a signal handler to run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _sigint_blocked(pid: int) -> bool:
    """Whether the process's main thread blocks SIGINT (inside ``ctrl_c_stops``)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(ln.split()[1] for ln in status.splitlines() if ln.startswith("SigBlk:"))
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


def test_ctrl_c_stops_a_spinning_call_with_one_line() -> None:
    """From the moment the main thread blocks SIGINT (``ctrl_c_stops``: before the
    machine exists, its waiter thread perhaps not started yet), one SIGINT stops the
    command wherever it is, boot or the call, and the command says so in one line, with
    no traceback."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "emu", "trace", "kmemu_test_spin",
                          str(10**12)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not _sigint_blocked(p.pid) and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert p.poll() is None, p.communicate()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 1 and out == "", (p.returncode, out, err)
    assert err.startswith("kmemu: interrupted") and err.count("\n") == 1, err
