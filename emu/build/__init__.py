"""Layer 3: build the disk image and kernel ELF, cached by source content.

>>> from emu.build import build
>>> art = build()            # doctest: +SKIP
>>> art.image.stat().st_size  # doctest: +SKIP
...

The cache lives in ``$KMEMU_CACHE`` or ``~/.cache/kmemu``, one directory per
hash of (every file under ``kernel/`` and ``boot/``, compiler flags,
compiler and linker versions).  A finished build is published by renaming a
temporary directory, so concurrent builds never see half an image.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from emu.build import layout as L
from emu.build.bootstub import build_bootstub
from emu.build.kernel import flat_image, link_kernel
from emu.build.toolchain import CFLAGS, LDFLAGS, BuildError, find_toolchain

__all__ = ["Artifacts", "BuildError", "build", "source_root", "make_image"]


@dataclass(frozen=True)
class Artifacts:
    """What a build produced: the disk image, the kernel ELF and facts about them."""

    image: Path
    elf: Path
    kernel_bytes: int
    entry: int
    key: str

    @property
    def directory(self) -> Path:
        return self.image.parent


def source_root() -> Path:
    """The directory holding ``kernel/`` and ``boot/``: the checkout, else the package copy."""
    env = os.environ.get("KMEMU_SOURCE")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent.parent
    candidates += [here.parent, here / "_sources"]
    for c in candidates:
        if (c / "kernel" / "kernel.ld").is_file() and (c / "boot" / "mbr.asm").is_file():
            return c
    raise BuildError(
        "cannot find the kmemu kernel sources (kernel/ and boot/); reinstall kmemu or set "
        "KMEMU_SOURCE to a checkout"
    )


def cache_root() -> Path:
    return Path(os.environ.get("KMEMU_CACHE") or Path.home() / ".cache" / "kmemu")


def _source_files(root: Path) -> list[Path]:
    files = [p for d in ("kernel", "boot") for p in (root / d).rglob("*") if p.is_file()]
    return sorted(f for f in files if "__pycache__" not in f.parts)


#: The Python files of this package whose code decides what a build produces.
_BUILD_MODULES = ("bootstub.py", "kernel.py", "toolchain.py", "layout.py")

#: source_key's answers in this process, keyed by the identity (path, inode, size,
#: mtime, ctime) of every file it hashes: every Machine.boot() asks for the key, and
#: reading ~130 files each time was a third of a 256 MiB boot.  A key is remembered
#: only when every file is older than _SETTLED_NS (the racy-git rule): a file written
#: twice within one tick of the file system's clock, same size, is hashed again.
_KEYS: dict[tuple[object, ...], str] = {}
_SETTLED_NS = 2_000_000_000


def source_key(root: Path, cc_version: str, ld_version: str, kasan: bool = False) -> str:
    """The build cache's key: every file under ``kernel/`` and ``boot/``, the flags,
    the compiler's and linker's versions, the build code, the KASAN choice, and the
    checkout's path: the DWARF names every source file by its absolute path, so a
    build made in another checkout of the same sources would send gdb, the REPL and
    the line tables to files that may no longer exist."""
    files = _source_files(root) + [Path(__file__).parent / m for m in _BUILD_MODULES]
    stats = [f.stat() for f in files]
    ident = (str(root), cc_version, ld_version, kasan, tuple(
        (str(f), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        for f, st in zip(files, stats, strict=True)))
    if (key := _KEYS.get(ident)) is not None:
        return key
    h = hashlib.sha256(b"variant=kasan\0" if kasan else b"")
    h.update(b"root=" + str(root.resolve()).encode() + b"\0")
    for f in files[: -len(_BUILD_MODULES)]:
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    h.update(" ".join(CFLAGS + LDFLAGS).encode())
    h.update(cc_version.encode() + ld_version.encode())
    for f in files[-len(_BUILD_MODULES) :]:
        h.update(f.read_bytes())
    key = h.hexdigest()[:20]
    settled = time.time_ns() - _SETTLED_NS
    if all(max(st.st_mtime_ns, st.st_ctime_ns) < settled for st in stats):
        _KEYS[ident] = key
    return key


def make_image(stub_mbr: bytes, stage2: bytes, kernel: bytes, cmdline: str = "") -> bytes:
    """Lay out the disk: boot sector, stage 2, command-line sector, kernel."""
    pad = (-len(kernel)) % L.SECTOR
    return stub_mbr + stage2 + cmdline_sector(cmdline) + kernel + bytes(pad)


def cmdline_sector(cmdline: str) -> bytes:
    """The 512-byte command-line sector (NUL-terminated); too long is an error."""
    raw = cmdline.encode()
    if len(raw) >= L.CMDLINE_MAX or b"\0" in raw:
        raise BuildError(
            f"kernel command line is {len(raw)} bytes; at most {L.CMDLINE_MAX - 1} without NULs"
        )
    return raw + bytes(L.SECTOR - len(raw))


def _load_cached(d: Path) -> Artifacts | None:
    meta = d / "build.json"
    if not meta.is_file():
        return None
    m = json.loads(meta.read_text())
    return Artifacts(d / "kmemu.img", d / "kernel.elf", m["kernel_bytes"], m["entry"], m["key"])


def build(force: bool = False, verbose: bool = False,
          builtin_modules: list[bytes] | None = None, kasan: bool = False) -> Artifacts:
    """Build (or reuse) the image and ELF for the current sources; ``builtin_modules``
    (module images, for QEMU) makes a separate image with them linked in; ``kasan``
    the KASAN variant (its own cache key)."""
    root = source_root()
    tc = find_toolchain()
    key = source_key(root, tc.cc_version, tc.ld_version, kasan)
    if builtin_modules:
        h = hashlib.sha256(key.encode())
        for img in builtin_modules:
            h.update(hashlib.sha256(img).digest())
        key = h.hexdigest()[:20]
    out = cache_root() / key
    if not force and (cached := _load_cached(out)):
        return cached
    cache_root().mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_root()))
    try:
        elf = link_kernel(tc, root / "kernel", work, builtin_modules, kasan)
        kernel, entry = flat_image(elf)
        stub = build_bootstub(root / "boot", len(kernel), entry)
        (work / "kmemu.img").write_bytes(make_image(stub.boot_sector, stub.stage2, kernel))
        meta = {"kernel_bytes": len(kernel), "entry": entry, "key": key, "cc": tc.cc_version,
                "kasan": kasan}
        (work / "build.json").write_text(json.dumps(meta, indent=1))
        if verbose:
            print(f"kmemu: built kernel {len(kernel)} bytes, entry {entry:#x}, in {out}")
        if not force and (done := _load_cached(out)) is not None:
            return done  # another process (an xdist worker) built the same key meanwhile
        if out.exists():  # a broken build: moved aside first, so no reader sees half of it
            trash = Path(tempfile.mkdtemp(prefix=f".{key}-old-", dir=cache_root()))
            with contextlib.suppress(OSError):
                out.rename(trash / "old")
            shutil.rmtree(trash, ignore_errors=True)
        try:
            work.rename(out)
        except OSError:
            if (cached := _load_cached(out)) is None:
                raise
            return cached
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    result = _load_cached(out)
    assert result is not None
    return result
