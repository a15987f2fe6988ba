"""Layer 6: stock gdb against ``kmemu gdb`` and against QEMU's gdbstub, timed the same way.

``kmemu bench`` takes its debugger rows from :func:`gdb_rows`; run this module
(``python -m emu.frontend.gdbbench``) for the side-by-side table with QEMU's
gdbstub on the same image in the same run (the comparison issue 13 asks for).

Both back ends run the same gdb commands on the same code: a call of
``kmemu_test_spin(0)`` (an endless counting loop) stopped at its first line.
kmemu starts it with ``monitor call``; on QEMU the kernel is stopped at
``kmemu_selftest`` (booted, interrupts on) and gdb makes an inferior call,
which stops at the same breakpoint.  From there, timed inside gdb (its own
Python, so gdb's start-up and the connection are not counted):

* ``stepi 2000`` (instructions per second),
* ``next 200`` (seconds),
* ``break`` on the loop's ``i++`` line with ``ignore`` 999 and 9999 (seconds
  to the 1000th and 10,000th hit: each hit is a stop gdb reports, decrements
  and resumes from, as gdb keeps ignore counts itself).

``launch`` is wall time from starting the back end's process to gdb's first
breakpoint stop (kmemu: boot, listen, connect, ``monitor call``, ``continue``;
QEMU: firmware, boot to ``kmemu_selftest``).  Nothing here is a timed assert:
these are figures to read.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SPIN = "kmemu_test_spin"
MEASURES = ("stepi_per_s", "next200_s", "ignore999_s", "ignore9999_s", "launch_s")


@dataclass
class GdbFigures:
    backend: str
    stepi_per_s: float | None = None
    next200_s: float | None = None
    ignore999_s: float | None = None
    ignore9999_s: float | None = None
    launch_s: float | None = None
    error: str = ""


def _spin_loop_line() -> str:
    """``irq.c:N``, the ``i++`` of kmemu_test_spin's loop (hit once per iteration)."""
    src = Path(__file__).resolve().parents[2] / "kernel" / "irq.c"
    lines = src.read_text().splitlines()
    start = next(i for i, t in enumerate(lines) if t.startswith(f"u64 {SPIN}("))
    n = next(i for i in range(start, len(lines)) if lines[i].strip() == "i++;")
    return f"irq.c:{n + 1}"


def _timed(label: str, command: str) -> list[str]:
    """gdb commands that run ``command`` and print ``label=SECONDS``."""
    return ["python import time as _t; _t0 = _t.time()", command,
            f"python print('KMEMU-BENCH {label}=%.6f' % (_t.time() - _t0))"]


def _body() -> list[str]:
    """The measured commands, from a stop at kmemu_test_spin's first line."""
    loop = _spin_loop_line()
    return (_timed("stepi2000", "stepi 2000") + _timed("next200", "next 200")
            + [f"break {loop}", "ignore $bpnum 999"] + _timed("ignore999", "continue")
            + ["ignore $bpnum 9999"] + _timed("ignore9999", "continue"))


def _run_gdb(elf: str, port: int, commands: list[str], timeout: float) -> tuple[str, float]:
    """Stock gdb in batch mode against 127.0.0.1:port; (its output, the time.time() at
    which it printed the first breakpoint stop, from its own clock)."""
    gdb = shutil.which("gdb")
    assert gdb is not None
    args = [gdb, "-q", "-batch", "-nx", elf, "-ex", "set pagination off",
            "-ex", "set confirm off", "-ex", "set tcp connect-timeout 30",
            "-ex", f"target remote 127.0.0.1:{port}"]
    for c in commands:
        args += ["-ex", c]
    res = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    out = res.stdout + res.stderr
    m = re.search(r"KMEMU-BENCH first=([\d.]+)", out)
    return out, float(m.group(1)) if m else 0.0


def _parse(fig: GdbFigures, out: str, t0: float, first: float) -> GdbFigures:
    got = dict(re.findall(r"KMEMU-BENCH (\w+)=([\d.]+)", out))
    if "ignore9999" not in got or "The program is not being run" in out:
        fig.error = "gdb did not finish the run: " + " | ".join(out.strip().splitlines()[-4:])
    if "stepi2000" in got:
        fig.stepi_per_s = 2000 / float(got["stepi2000"])
    fig.next200_s = float(got["next200"]) if "next200" in got else None
    fig.ignore999_s = float(got["ignore999"]) if "ignore999" in got else None
    fig.ignore9999_s = float(got["ignore9999"]) if "ignore9999" in got else None
    fig.launch_s = first - t0 if first else None
    return fig


_FIRST = "python import time as _t; print('KMEMU-BENCH first=%.6f' % _t.time())"


def measure_kmemu(timeout: float = 300, warm: bool = True) -> GdbFigures:
    """``kmemu gdb`` in a subprocess, as a user starts it: with compiled bytecode, as
    an installed kmemu has (the source tree may run with PYTHONDONTWRITEBYTECODE;
    the bytecode goes to a cache directory, warmed by one import first), and the
    kernel's symbol tables already saved beside the build (the first launch after
    a kernel build parses them).  ``warm=False`` leaves the warming process out
    (the launch figure then may include compiling and parsing: for checking the
    rows' form, as the test suite does, whose session has warmed both)."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(Path.home() / ".cache" / "kmemu" / "pyc"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if warm:
        subprocess.run([sys.executable, "-c", "import emu.frontend.cli, emu.debug.session, "
                        "emu.frontend.gdbstub.server, emu.frontend.gdbstub.target; "
                        "from emu import Machine; Machine.booted().symbols.params"],
                       env=env, check=True, capture_output=True)
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "emu", "gdb", "--port", "0", "--once"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        banner = ""
        while "target remote" not in banner:
            line = proc.stdout.readline()
            if not line:
                return GdbFigures("kmemu gdb", error="kmemu gdb did not start")
            banner += line
        m = re.search(r"gdb -q (\S+) -ex 'target remote 127\.0\.0\.1:(\d+)'", banner)
        assert m is not None, banner
        cmds = [f"break {SPIN}", f"monitor call {SPIN} 0", "continue", _FIRST, *_body()]
        out, first = _run_gdb(m.group(1), int(m.group(2)), cmds, timeout)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    return _parse(GdbFigures("kmemu gdb"), out, t0, first)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure_qemu(timeout: float = 300) -> GdbFigures:
    """QEMU's gdbstub (``-S -gdb``) on the same image; gdb stops the boot at
    kmemu_selftest, then makes the inferior call that stops in kmemu_test_spin."""
    if shutil.which("qemu-system-x86_64") is None:
        return GdbFigures("QEMU gdbstub", error="qemu-system-x86_64 is not installed")
    cmds = [_FIRST, "delete", f"break {SPIN}", f"call (long){SPIN}(0)", *_body()]
    out, t0, first = qemu_gdb(cmds, timeout)
    return _parse(GdbFigures("QEMU gdbstub"), out, t0, first)


def qemu_gdb(commands: list[str], timeout: float = 120) -> tuple[str, float, float]:
    """Stock gdb against QEMU's gdbstub on the kmemu image, stopped at
    ``kmemu_selftest`` (booted, interrupts on) before ``commands`` run: (gdb's
    output, when QEMU started, when gdb printed KMEMU-BENCH first, if asked)."""
    from emu.build import build, cmdline_sector
    from emu.build import layout as L

    exe = shutil.which("qemu-system-x86_64")
    assert exe is not None
    art = build()
    image = bytearray(art.image.read_bytes())
    off = L.CMDLINE_LBA * L.SECTOR
    image[off:off + L.SECTOR] = cmdline_sector("")
    with tempfile.TemporaryDirectory(prefix="kmemu-gdbbench-") as d:
        img = Path(d) / "kmemu.img"
        img.write_bytes(image)
        port = _free_port()
        t0 = time.time()
        proc = subprocess.Popen(
            [exe, "-display", "none", "-no-reboot", "-m", "256M", "-drive",
             f"file={img},format=raw,if=ide", "-debugcon", "null", "-serial", "none",
             "-monitor", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
             "-S", "-gdb", f"tcp:127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            out, first = _run_gdb(str(art.elf), port, ["break kmemu_selftest", "continue",
                                                       *commands], timeout)
        finally:
            proc.kill()
            proc.wait(timeout=10)
    return out, t0, first


def format_table(figs: list[GdbFigures]) -> str:
    names = {"stepi_per_s": ("stepi, 2000 in a row", "/s"),
             "next200_s": ("`next` 200 times", "s"),
             "ignore999_s": ("1000th hit with `ignore 1 999`", "s"),
             "ignore9999_s": ("10,000th hit with `ignore 1 9999`", "s"),
             "launch_s": ("launch -> first breakpoint", "s")}
    head = f"{'measure':<34}" + "".join(f"{f.backend:>16}" for f in figs)
    rows = [head]
    for key in MEASURES:
        label, unit = names[key]
        cells = "".join(f"{'-' if getattr(f, key) is None else f'{getattr(f, key):,.3f}':>14}"
                        f" {unit:<1}" for f in figs)
        rows.append(f"{label:<34}{cells}")
    rows += [f"{f.backend}: {f.error}" for f in figs if f.error]
    return "\n".join(rows)


#: (measure, label, unit, target against QEMU's figure in the same run, absolute target)
_ROWS = [("stepi_per_s", "stepi through the socket, 2000 in a row", "/s", ">=", ""),
         ("next200_s", "`next` 200 times", "s", "<=", ""),
         ("ignore999_s", "1000th hit with `ignore 1 999`", "s", "", "<= 1"),
         ("ignore9999_s", "10,000th hit with `ignore 1 9999`", "s", "<=", ""),
         ("launch_s", "launch -> first breakpoint", "s", "", "<= 0.5")]


def gdb_rows(compare_qemu: bool = True, warm: bool = True) -> list:  # -> list[bench.Row]
    """``kmemu bench`` rows: stock gdb against ``kmemu gdb`` and, when QEMU is
    installed, against QEMU's gdbstub in the same run (its figure is in the
    target column).  None without gdb.  ``warm``: see :func:`measure_kmemu`."""
    from emu.frontend.bench import Row

    if not gdb_available():
        return []
    ours = measure_kmemu(warm=warm)
    qemu = measure_qemu() if compare_qemu else GdbFigures("QEMU gdbstub", error="not run")
    rows = []
    for key, label, unit, rel, absolute in _ROWS:
        v, q = getattr(ours, key), getattr(qemu, key)
        if v is None:
            continue
        target = absolute or (f"{rel} QEMU's ({q:,.3f} {unit})" if q is not None else
                              f"{rel} QEMU's")
        rows.append(Row(f"gdb stub: {label}", v, unit, target,
                        "stock gdb, real socket" + (f"; QEMU {q:,.3f} {unit}"
                                                    if q is not None and absolute else "")))
    for f in (ours, qemu):
        if f.error and f.error != "not run":
            rows.append(Row(f"gdb stub: {f.backend} did not finish", 0, "-", "", f.error[:120]))
    return rows


def gdb_available() -> bool:
    return shutil.which("gdb") is not None


def main() -> int:
    if not gdb_available():
        print("gdb is not installed: nothing to compare", file=sys.stderr)
        return 1
    figs = [measure_kmemu(), measure_qemu()]
    print(format_table(figs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
