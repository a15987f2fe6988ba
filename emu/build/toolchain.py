"""Find and check the host C toolchain that compiles ``kernel/``.

Layer 3 (``emu.build``).  ``CC`` overrides the compiler (gcc or clang); the
linker is ``LD`` or ``ld`` next to it.  Anything missing produces one
:class:`BuildError` saying what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from emu.core.errors import KmemuError

INSTALL_HINT = (
    "install a C compiler and binutils for x86-64, e.g. `apt-get install gcc binutils` "
    "(or set CC=clang / LD=ld.lld)"
)

CFLAGS = (
    "-std=gnu11 -ffreestanding -nostdlib -nostdinc -fno-builtin -fno-common "
    "-mno-red-zone -mno-sse -mno-sse2 -mno-mmx -mno-80387 -mgeneral-regs-only "
    "-mcmodel=kernel -fno-pic -fno-pie -fno-stack-protector -fno-omit-frame-pointer "
    "-mno-omit-leaf-frame-pointer -fno-optimize-sibling-calls -fno-asynchronous-unwind-tables "
    "-fno-jump-tables -g -O2 -Wall -Wextra -Werror"
).split()
#: The KASAN variant (``Machine(kasan=True)``, ``kmemu boot --kasan``): Linux's generic
#: KASAN flags for GCC (scripts/Makefile.kasan, CONFIG_KASAN_OUTLINE): every access
#: calls __asan_{load,store}N_noabort, globals and stack frames get red zones.
KASAN_DEFINES = ["-DCONFIG_KASAN"]
KASAN_CFLAGS = (
    "-fsanitize=kernel-address -fasan-shadow-offset=0xdffffc0000000000 "
    "--param asan-globals=1 --param asan-instrumentation-with-call-threshold=0 "
    "--param asan-stack=1 --param asan-instrument-allocas=1"
).split()
KASAN_MODULE_CFLAGS = KASAN_CFLAGS
#: Stack red zones are written inline by every instrumented prologue, so code that
#: runs before kasan_init() maps the shadow must not have them (Linux maps an early
#: zero shadow from head64.c instead): these files keep the access checks only.
KASAN_NO_STACK = frozenset({
    "main.c", "traps.c", "irq.c", "host.c", "printk.c", "memblock.c", "pgtable.c",
    "kallsyms.c",
})
KASAN_NO_STACK_CFLAGS = [f if f != "asan-stack=1" else "asan-stack=0" for f in KASAN_CFLAGS]
#: Kernel files built without the sanitizer (Linux's KASAN_SANITIZE_x.o := n): KASAN
#: itself and the allocators, which write red zones and freed objects by design.
KASAN_SANITIZE_NOT = frozenset({
    "slub.c", "slab.c", "slob.c", "kmalloc.c", "page_alloc.c", "slab_debug.c", "kunit_track.c",
    "string.c", "kmemleak.c",
})

LDFLAGS = (
    "-nostdlib -static -no-pie --no-dynamic-linker -z max-page-size=4096 "
    "-z noexecstack --build-id=none"
).split()


def kernel_include_flags(kdir: Path) -> list[str]:
    """The include path the kernel itself is compiled with: the public tree
    (``kernel/include``: ``<linux/...>``, ``<asm/...>``) and the kernel-private
    one (``kernel/internal``: ``<kmemu/...>``, which modules never see)."""
    return ["-I", str(kdir / "include"), "-I", str(kdir / "internal")]


class BuildError(KmemuError):
    """The kernel or boot stub could not be built; the message says why."""


@dataclass(frozen=True)
class Toolchain:
    """The compiler and linker, with their version strings (part of the cache key)."""

    cc: str
    ld: str
    cc_version: str
    ld_version: str


def _version(prog: str) -> str:
    try:
        out = subprocess.run([prog, "--version"], capture_output=True, text=True, timeout=30)
    except OSError as e:
        raise BuildError(f"cannot run {prog}: {e}; {INSTALL_HINT}") from e
    first = (out.stdout or out.stderr).splitlines()
    return first[0] if first else prog


def find_toolchain() -> Toolchain:
    """Locate CC and LD, or raise :class:`BuildError` naming what to install.

    >>> tc = find_toolchain()  # doctest: +SKIP
    >>> tc.cc
    '/usr/bin/gcc'
    """
    cc_name = os.environ.get("CC", "gcc")
    cc = shutil.which(cc_name)
    if cc is None:
        raise BuildError(f"C compiler {cc_name!r} not found; {INSTALL_HINT}")
    ld_name = os.environ.get("LD", "ld")
    ld = shutil.which(ld_name)
    if ld is None:
        raise BuildError(f"linker {ld_name!r} not found; {INSTALL_HINT}")
    key = (cc, ld, _stamp(cc), _stamp(ld))
    tc = _FOUND.get(key)
    if tc is None:  # three processes (--version twice, -dumpmachine): ~10 ms
        tc = Toolchain(cc, ld, _version(cc), _version(ld))
        _check_target(tc)
        _FOUND[key] = tc
    return tc


#: find_toolchain's answers in this process, keyed by the programs' paths and their
#: files' identity (inode, size, mtime: an upgraded or repointed gcc is asked again).
#: Every Machine.boot() builds (a cache look-up) and so finds the toolchain.
_FOUND: dict[tuple[object, ...], Toolchain] = {}


def _stamp(path: str) -> tuple[int, int, int]:
    st = os.stat(path)  # follows symlinks: gcc -> gcc-12
    return st.st_ino, st.st_size, st.st_mtime_ns


def _check_target(tc: Toolchain) -> None:
    """The compiler must target x86-64 (a cross compiler for another CPU is refused)."""
    try:
        out = subprocess.run([tc.cc, "-dumpmachine"], capture_output=True, text=True, timeout=30)
    except OSError as e:
        raise BuildError(f"cannot run {tc.cc}: {e}; {INSTALL_HINT}") from e
    machine = out.stdout.strip()
    if machine and not machine.startswith(("x86_64", "amd64")) and "clang" not in tc.cc_version:
        raise BuildError(
            f"{tc.cc} targets {machine}, but the kmemu kernel is x86-64; {INSTALL_HINT}"
        )
