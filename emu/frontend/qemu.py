"""Layer 6 helper: boot the kmemu image on real QEMU (``kmemu qemu``).

The image is copied to a temporary file with the command-line sector
filled in, then run with ``-debugcon stdio`` (port 0xe9) and
``isa-debug-exit`` at port 0xf4.  QEMU exits with ``(code << 1) | 1``, so
status 1 means the kernel wrote 0: all self-tests passed.
"""

from __future__ import annotations

import re
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from emu.build import build, cmdline_sector
from emu.build import layout as L
from emu.build.module import build_module, image_for_builtin
from emu.core.errors import KmemuError
from emu.firmware.e820 import default_map, parse_size

QEMU = "qemu-system-x86_64"
_SUMMARY = re.compile(r"^kmemu selftest: (\d+) passed, (\d+) failed$", re.MULTILINE)
_FAILED = re.compile(r"^selftest: (.+?) +FAILED$", re.MULTILINE)


class QemuError(KmemuError):
    """QEMU is missing or could not run the image."""


@dataclass
class QemuResult:
    status: int | None
    output: str
    seconds: float
    timed_out: bool

    @property
    def kernel_code(self) -> int | None:
        if self.status is None or not self.status & 1:
            return None
        return self.status >> 1

    @property
    def selftests(self) -> tuple[int, int] | None:
        """(passed, failed) from the kernel's self-test summary line, or None."""
        m = _SUMMARY.search(self.output)
        return (int(m[1]), int(m[2])) if m else None

    @property
    def failed_selftests(self) -> list[str]:
        """The names of the self-tests that printed FAILED."""
        return _FAILED.findall(self.output)

    @property
    def ok(self) -> bool:
        counts = self.selftests
        return self.kernel_code == 0 and counts is not None and counts[1] == 0

    def summary(self) -> str:
        if self.timed_out:
            return f"QEMU timed out after {self.seconds:.1f} s"
        if self.kernel_code is None:
            return f"QEMU exited with status {self.status} without a kernel exit code"
        if self.kernel_code == 0 and "kmemu selftest:" not in self.output:
            return (f"QEMU exited with status {self.status} before the kernel finished "
                    "(no self-test summary)")
        verdict = "passed" if self.ok else "FAILED"
        failed = self.failed_selftests
        which = f"; failed: {', '.join(failed)}" if failed else ""
        return f"self-tests {verdict} under QEMU (kernel exit code {self.kernel_code}, " \
               f"{self.seconds:.1f} s{which})"


def _pump(proc: subprocess.Popen[bytes], sel: selectors.BaseSelector, t0: float,
          timeout: float, echo: Callable[[str], None] | None) -> tuple[bytearray, bool]:
    """Copy QEMU's output (and echo it) until it exits or the timeout; (output, timed out)."""
    out = bytearray()
    assert proc.stdout is not None
    while True:
        left = timeout - (time.perf_counter() - t0)
        if left <= 0:
            return out, True
        if not sel.select(min(left, 0.5)):
            if proc.poll() is not None:
                return out, False
            continue
        chunk = proc.stdout.read1(4096)  # type: ignore[attr-defined]
        if not chunk:
            return out, False
        out += chunk
        if echo:
            echo(chunk.decode(errors="replace"))


def qemu_binary() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise QemuError(f"{QEMU} not found; install it (Debian/Ubuntu: apt-get install "
                        "qemu-system-x86)")
    return path


def run_qemu(mem: str = "256M", cmdline: str = "", timeout: float = 120.0,
             echo: Callable[[str], None] | None = None,
             modules: Sequence[str | Path] = ()) -> QemuResult:
    """Boot on QEMU; ``modules`` (C files, one module each) are built and linked into
    the image, and the kernel loads them with its own loader before its self-tests."""
    exe = qemu_binary()
    default_map(mem)  # the same size limits as kmemu boot (E820Error otherwise)
    size = parse_size(mem)
    blobs = [image_for_builtin(build_module([m])) for m in modules]
    art = build(builtin_modules=blobs)
    image = bytearray(art.image.read_bytes())
    off = L.CMDLINE_LBA * L.SECTOR
    image[off : off + L.SECTOR] = cmdline_sector(cmdline)
    with tempfile.TemporaryDirectory(prefix="kmemu-qemu-") as d:
        img = Path(d) / "kmemu.img"
        img.write_bytes(image)
        cmd = [exe, "-display", "none", "-no-reboot", "-m", f"{size >> 20}M",
               "-drive", f"file={img},format=raw,if=ide", "-debugcon", "stdio",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-serial", "none",
               "-monitor", "none"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                out, timed_out = _pump(proc, sel, t0, timeout, echo)
        finally:
            if proc.poll() is None:
                proc.kill()
            status = proc.wait()
        return QemuResult(None if timed_out else status, out.decode(errors="replace"),
                          time.perf_counter() - t0, timed_out)
