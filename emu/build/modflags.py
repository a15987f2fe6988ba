"""The compiler flags a module (code outside kmemu's kernel/) is built with,
and compile_commands.json for editors.

Layer 3 (``emu.build``).  One definition: the kernel's own ``CFLAGS``
(freestanding, no SSE, ``-mcmodel=kernel -fno-pic``: a module runs in the top
2 GiB, at ``MODULES_VADDR`` 0xffffffffa0000000, and is linked by the in-kernel
loader, so code-model-kernel relocations (R_X86_64_32S, PC32, PLT32, 64) reach
both the module and the kernel) plus what makes it a module:

- ``-I kernel/include`` only: ``<linux/...>`` and ``<asm/...>``, never the
  kernel-private ``kernel/internal`` (``<kmemu/...>``);
- ``-DMODULE`` (``module_init``/``module_exit``/``THIS_MODULE`` then exist) and
  ``-DKBUILD_MODNAME="name"`` as kbuild defines it;
- ``-Werror`` dropped (a warning in user code is the user's business, as in
  Linux without CONFIG_WERROR) but, as Linux's Makefile does, calling an
  undeclared function, implicit int and a missing return value stay errors.

>>> module_cflags(name="mydev")[-4:]          # doctest: +SKIP
['-DMODULE', '-DKBUILD_MODNAME="mydev"', '-I', '/.../kernel/include']
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from emu.build.toolchain import CFLAGS, KASAN_DEFINES, KASAN_MODULE_CFLAGS, BuildError

MODULE_ONLY = ["-Werror=implicit-function-declaration", "-Werror=implicit-int",
               "-Werror=return-type", "-DMODULE"]
_MODNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def include_dir(root: Path | None = None) -> Path:
    """``kernel/include`` of the sources kmemu builds (checkout or installed copy)."""
    if root is None:
        from emu.build import source_root

        root = source_root()
    return root / "kernel" / "include"


def module_name_for(path: str | os.PathLike[str]) -> str:
    """The module name kbuild would give FILE.c: its stem, '-' turned into '_'."""
    return Path(path).stem.replace("-", "_")


def module_cflags(root: Path | None = None, name: str | None = None,
                  kasan: bool = False) -> list[str]:
    """Flags for compiling one C file of module ``name`` (without ``-c``/``-o``);
    ``root`` is the source tree holding ``kernel/`` (default: the one kmemu builds);
    ``kasan``: for the KASAN kernel (instrumented, as Linux builds modules there)."""
    flags = [f for f in CFLAGS if f != "-Werror"] + MODULE_ONLY
    if kasan:
        flags += [*KASAN_DEFINES, *KASAN_MODULE_CFLAGS]
    if name is not None:
        if not _MODNAME.match(name):
            raise BuildError(f"module name {name!r} is not a C identifier "
                             "(letters, digits and _, not starting with a digit)")
        flags.append(f'-DKBUILD_MODNAME="{name}"')
    return [*flags, "-I", str(include_dir(root))]


def compile_commands(files: Iterable[str | os.PathLike[str]], cc: str = "gcc",
                     name: str | None = None,
                     directory: Path | None = None) -> list[dict[str, object]]:
    """clangd's compile_commands.json entries (absolute paths) for these module sources.

    ``name`` is the module name (default: each file's own stem).
    """
    cwd = (directory or Path.cwd()).resolve()
    out: list[dict[str, object]] = []
    for f in files:
        src = (cwd / f).resolve()
        if not src.is_file():
            raise BuildError(f"{f}: no such file")
        if src.suffix != ".c":
            raise BuildError(f"{f}: not a C source file (.c)")
        args = [cc, *module_cflags(name=name or module_name_for(src)), "-c", str(src),
                "-o", str(src.with_suffix(".o"))]
        out.append({"directory": str(cwd), "file": str(src), "arguments": args})
    return out


def write_compile_commands(files: Sequence[str | os.PathLike[str]], out: Path,
                           cc: str = "gcc", name: str | None = None) -> list[dict[str, object]]:
    """Write (or update) ``out``: entries for other files already in it are kept."""
    entries = compile_commands(files, cc=cc, name=name)
    old: list[dict[str, object]] = []
    if out.is_file():
        try:
            loaded = json.loads(out.read_text())
        except ValueError as e:
            raise BuildError(f"{out}: not a JSON compile database ({e}); remove it or use -o") \
                from e
        if not isinstance(loaded, list):
            raise BuildError(f"{out}: not a JSON compile database (expected a list)")
        old = loaded
    ours = {e["file"] for e in entries}
    merged = [e for e in old if isinstance(e, dict) and e.get("file") not in ours] + entries
    out.write_text(json.dumps(merged, indent=1) + "\n")
    return merged
