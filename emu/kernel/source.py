"""The kernel's source files, for debuggers: ``file:line`` names from the line table
to text.

Layer 4 (``emu.kernel``).  Line-table names are as compiled (``slub.c``,
``gfp.h``); the sources are the checkout's or the installed package's copy
(``emu.build.source_root``).

>>> source_line("kmalloc.c", 103)           # doctest: +SKIP
'\tif (unlikely(!size))'
"""

from __future__ import annotations

from pathlib import Path


def find_source(file: str) -> Path | None:
    """The kernel source file for a line-table name (``slub.c``, ``include/x.h``)."""
    from emu.build import source_root

    p = Path(file)
    if p.is_absolute():
        return p if p.is_file() else None
    root = source_root()
    for cand in (root / p, root / "kernel" / p, root / "kernel" / "include" / p):
        if cand.is_file():
            return cand
    hits = sorted((root / "kernel").rglob(p.name))
    return hits[0] if hits else None


_SOURCE_CACHE: dict[str, list[str] | None] = {}


def source_line(file: str, line: int) -> str | None:
    if file not in _SOURCE_CACHE:
        path = find_source(file)
        _SOURCE_CACHE[file] = path.read_text(errors="replace").splitlines() if path else None
    lines = _SOURCE_CACHE[file]
    if lines is None or not 1 <= line <= len(lines):
        return None
    return lines[line - 1]
