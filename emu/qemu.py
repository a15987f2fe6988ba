"""Layer 6 helper: boot the kmemu image on real QEMU (``kmemu qemu``).

The image is copied to a temporary file with the command-line sector
filled in, then run with ``-debugcon stdio`` (port 0xe9) and
``isa-debug-exit`` at port 0xf4.  QEMU exits with ``(code << 1) | 1``, so
status 1 means the kernel wrote 0: all self-tests passed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emu.build import build, cmdline_sector
from emu.build import layout as L
from emu.errors import KmemuError
from emu.firmware.e820 import default_map, parse_size

QEMU = "qemu-system-x86_64"


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
    def ok(self) -> bool:
        return self.kernel_code == 0 and "kmemu selftest:" in self.output

    def summary(self) -> str:
        if self.timed_out:
            return f"QEMU timed out after {self.seconds:.1f} s"
        if self.kernel_code is None:
            return f"QEMU exited with status {self.status} without a kernel exit code"
        if self.kernel_code == 0 and "kmemu selftest:" not in self.output:
            return (f"QEMU exited with status {self.status} before the kernel finished "
                    "(no self-test summary)")
        verdict = "passed" if self.ok else "FAILED"
        return f"self-tests {verdict} under QEMU (kernel exit code {self.kernel_code}, " \
               f"{self.seconds:.1f} s)"


def qemu_binary() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise QemuError(f"{QEMU} not found; install it (Debian/Ubuntu: apt-get install "
                        "qemu-system-x86)")
    return path


def run_qemu(mem: str = "256M", cmdline: str = "", timeout: float = 120.0,
             echo: Callable[[str], None] | None = None) -> QemuResult:
    exe = qemu_binary()
    default_map(mem)  # the same size limits as kmemu boot (E820Error otherwise)
    size = parse_size(mem)
    art = build()
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
        out = bytearray()
        timed_out = False
        assert proc.stdout is not None
        try:
            import selectors
            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            while True:  # (closed in the finally below)
                left = timeout - (time.perf_counter() - t0)
                if left <= 0:
                    timed_out = True
                    break
                if not sel.select(min(left, 0.5)):
                    if proc.poll() is not None:
                        break
                    continue
                chunk = proc.stdout.read1(4096)  # type: ignore[attr-defined]
                if not chunk:
                    break
                out += chunk
                if echo:
                    echo(chunk.decode(errors="replace"))
        finally:
            if proc.poll() is None:
                proc.kill()
            status = proc.wait()
            if "sel" in locals():
                sel.close()
        return QemuResult(None if timed_out else status, out.decode(errors="replace"),
                          time.perf_counter() - t0, timed_out)
