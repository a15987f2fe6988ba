"""Layer 4: one parse of a kernel ELF per process, redone when the file changes.

Symbols, CFI and DWARF scopes are each read from the ELF once and kept, keyed by
the file's real path and modification time, so a rebuilt kernel is read again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def load_per_file(cache: dict[tuple[str, int], T], path: Path | str,
                  build: Callable[[Path], T]) -> T:
    """``build(path)``, or what it built for this (path, mtime) before."""
    p = Path(path)
    key = (str(p.resolve()), p.stat().st_mtime_ns)
    if key not in cache:
        cache[key] = build(p)
    return cache[key]
