"""Layer 4: one parse of a kernel ELF per process, redone when the file changes.

Symbols, CFI and DWARF scopes are each read from the ELF once and kept, keyed by
the file's real path and modification time, so a rebuilt kernel is read again.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: building tens of thousands of objects that
    all stay alive (an unpickled line table) set off collections that walked them
    again and again (the kernel's line rows: 58 ms to unpickle, 26 ms with it paused)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def load_on_disk(path: Path | str, what: str, version: str, build: Callable[[Path], T]) -> T:
    """``build(path)``, kept on disk beside the file as ``FILE.WHAT.pickle`` for the
    next process (a parse that takes seconds, such as every function's DWARF
    parameters, would otherwise be paid again by every ``kmemu gdb`` launch).

    The saved value is used only for the same file (size and modification time)
    and the same ``version`` (name the code that builds it, so a change to the
    value's shape rebuilds it); anything unreadable is rebuilt.  The write is
    atomic (a temporary file renamed), so parallel processes never read half of
    one, and a directory that cannot be written only means no saving.
    """
    import os
    import pickle
    import tempfile

    p = Path(path)
    st = p.stat()
    key = (st.st_size, st.st_mtime_ns, version)
    saved = p.with_name(f"{p.name}.{what}.pickle")
    try:
        with saved.open("rb") as f, gc_paused():
            got_key, value = pickle.load(f)
        if got_key == key:
            return value
    except (OSError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            pickle.UnpicklingError):
        pass
    value = build(p)
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.{what}.")
        with os.fdopen(fd, "wb") as f:
            pickle.dump((key, value), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, saved)
    except OSError:
        pass
    return value
