"""Assemble ``boot/`` with keystone, one CPU mode per piece.

Layer 3 (``emu.build``).  keystone cannot switch modes inside one source
(UNICORN.md), so the boot sector and the three parts of stage 2 are
assembled separately at their load addresses.  ``@NAME@`` placeholders in
the sources are replaced with numbers from :mod:`emu.build.layout` and the
kernel's size and entry point before assembling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from emu.build import layout as L
from emu.build.toolchain import BuildError

# (file, CPU mode in bits, load address, limit)
PIECES = (
    ("mbr.asm", 16, L.BOOT_SECTOR, L.BOOT_SECTOR + 510),
    ("stage2_16.asm", 16, L.STAGE2_16, L.STAGE2_32),
    ("stage2_32.asm", 32, L.STAGE2_32, L.STAGE2_64),
    ("stage2_64.asm", 64, L.STAGE2_64, L.STAGE2_END),
)


@dataclass(frozen=True)
class BootStub:
    """The assembled boot sector (512 bytes) and stage 2 (fixed-offset pieces)."""

    boot_sector: bytes
    stage2: bytes
    pieces: dict[str, tuple[int, bytes]]  # file -> (load address, code)


def constants(kernel_bytes: int, entry: int) -> dict[str, int]:
    """Values substituted for ``@NAME@`` in the boot sources."""
    sectors = -(-kernel_bytes // L.SECTOR)
    return {
        "STAGE2_16": L.STAGE2_16, "STAGE2_32": L.STAGE2_32, "STAGE2_64": L.STAGE2_64,
        "STAGE2_LBA": L.STAGE2_LBA, "STAGE2_SECTORS": L.STAGE2_SECTORS,
        "CMDLINE_LBA": L.CMDLINE_LBA, "KERNEL_LBA": L.KERNEL_LBA,
        "KERNEL_SECTORS": sectors, "KERNEL_DWORDS": sectors * L.SECTOR // 4,
        "KERNEL_PA": L.KERNEL_PA, "KERNEL_ENTRY": entry,
        "BOOT_INFO": L.BOOT_INFO, "BOOT_INFO_MAGIC": L.BOOT_INFO_MAGIC,
        "BOOT_INFO_CMDLINE": L.BOOT_INFO_CMDLINE, "E820_TABLE": L.E820_TABLE,
        "E820_BATCH": L.E820_BATCH, "E820_SEG": L.E820_BATCH >> 4,
        "E820_BATCH_BYTES": L.E820_BATCH_BYTES, "MOVE_GDT": L.MOVE_GDT,
        "E820_DEST_VAR": L.E820_DEST_VAR, "E820_MORE_VAR": L.E820_MORE_VAR,
        "E820_MAX": L.E820_MAX, "DAP_VAR": L.DAP_VAR, "DRIVE_VAR": L.DRIVE_VAR,
    }


def substitute(src: str, values: dict[str, int], name: str) -> str:
    """Replace ``@NAME@`` placeholders; an unknown name is a build error."""

    def repl(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise BuildError(f"{name}: unknown placeholder @{key}@")
        return hex(values[key])

    return re.sub(r"@([A-Z0-9_]+)@", repl, strip_comments(src))


def strip_comments(src: str) -> str:
    """Drop ``;`` comments (keystone reads ``;`` as a statement separator).

    Semicolons inside double-quoted strings are kept; line numbers are kept.
    """
    out = []
    for line in src.splitlines():
        quoted = False
        for i, ch in enumerate(line):
            if ch == '"':
                quoted = not quoted
            elif ch == ";" and not quoted:
                line = line[:i]
                break
        out.append(line.rstrip())
    return "\n".join(out) + "\n"


def assemble(src: str, bits: int, addr: int, name: str) -> bytes:
    """Assemble one piece at its load address with keystone, in 16-, 32- or 64-bit
    mode.  keystone is imported here, not with the module: a cached build never
    assembles, and the import was ~9 ms of every CLI process's start."""
    from keystone import KS_ARCH_X86, KS_MODE_16, KS_MODE_32, KS_MODE_64, Ks, KsError

    ks = Ks(KS_ARCH_X86, {16: KS_MODE_16, 32: KS_MODE_32, 64: KS_MODE_64}[bits])
    try:
        code, _ = ks.asm(src, addr)
    except KsError as e:
        line = _first_bad_line(ks, src, addr, e.errno)
        raise BuildError(f"keystone failed on boot/{name}{line}: {e}") from e
    return bytes(code or b"")


def _first_bad_line(ks, src: str, addr: int, errno: int) -> str:  # ks: keystone.Ks
    """Locate the failing line: the shortest prefix that fails the same way."""
    from keystone import KsError

    lines = src.splitlines()
    for n in range(1, len(lines) + 1):
        try:
            ks.asm("\n".join(lines[:n]), addr)
        except KsError as e:
            if e.errno == errno:
                return f" line {n} ({lines[n - 1].strip()!r})"
    return ""


def build_bootstub(boot_dir: Path, kernel_bytes: int, entry: int) -> BootStub:
    """Assemble every piece, check sizes, lay out the boot sector and stage 2."""
    values = constants(kernel_bytes, entry)
    pieces: dict[str, tuple[int, bytes]] = {}
    for name, bits, addr, limit in PIECES:
        text = substitute((boot_dir / name).read_text(), values, name)
        code = assemble(text, bits, addr, name)
        if addr + len(code) > limit:
            raise BuildError(f"boot/{name} is {len(code)} bytes; it must end before {limit:#x}")
        pieces[name] = (addr, code)
    mbr = bytearray(512)
    code = pieces["mbr.asm"][1]
    mbr[: len(code)] = code
    mbr[510:512] = b"\x55\xaa"
    stage2 = bytearray(L.STAGE2_END - L.STAGE2_16)
    for name, (addr, code) in pieces.items():
        if name != "mbr.asm":
            stage2[addr - L.STAGE2_16 : addr - L.STAGE2_16 + len(code)] = code
    return BootStub(bytes(mbr), bytes(stage2), pieces)
