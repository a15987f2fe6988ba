"""Build a loadable module: C files -> one relocatable ELF (``NAME.ko``).

Layer 3 (``emu.build``).  Each file is compiled with the kernel's flags
(``emu.build.modflags.module_cflags``, what ``kmemu cflags`` prints), plus a
generated ``NAME.mod.c`` holding the
``.modinfo`` strings Linux's modpost would add (``name=`` from KBUILD_MODNAME,
``srcversion=``), and ``ld -r`` combines them into one ET_REL object, which
the kernel's loader (``kernel/module.c``) takes as it is.

Builds are cached by content under ``<cache>/modules/<key>/``: the key
hashes the sources, the flags, the toolchain and the kernel's headers; the
compiler's dependency list (``-MD``) is stored with the result and checked
on reuse, so an edited local header rebuilds too.

>>> b = build_module(["mydev.c"])       # doctest: +SKIP
>>> b.name, b.path.name
('mydev', 'mydev.ko')
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from emu.build import cache_root, source_root
from emu.build.modflags import module_cflags
from emu.build.toolchain import Toolchain, find_toolchain
from emu.core.errors import ModuleError

MODULE_NAME_LEN = 56  # kernel/include/module.h
_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class ModuleBuild:
    """A built module: its name, the ``.ko`` path and the compiler's warnings."""

    name: str
    path: Path
    srcversion: str
    sources: tuple[Path, ...]
    warnings: str = ""


@functools.lru_cache(maxsize=1)
def _toolchain() -> Toolchain:
    return find_toolchain()


def module_name(sources: list[Path], name: str | None) -> str:
    """KBUILD_MODNAME: ``name`` or the first file's stem, dashes made underscores."""
    if name is None:
        name = sources[0].name.split(".")[0].replace("-", "_")
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) >= MODULE_NAME_LEN:
        raise ModuleError(f"invalid module name {name!r}: letters, digits and '_', at most "
                          f"{MODULE_NAME_LEN - 1} characters")
    return name


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _headers_digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted((root / "kernel" / "include").rglob("*.h")):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _key(sources: list[Path], name: str, flags: list[str], tc: Toolchain, root: Path) -> str:
    h = hashlib.sha256()
    for s in sources:
        h.update(str(s).encode() + b"\0" + s.read_bytes() + b"\0")
    h.update(name.encode() + b"\0" + " ".join(flags).encode())
    h.update(tc.cc_version.encode() + tc.ld_version.encode() + _headers_digest(root).encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:24]


def _deps_fresh(meta: dict) -> bool:
    for path, digest in meta.get("deps", {}).items():
        p = Path(path)
        if not p.is_file() or _sha(p.read_bytes()) != digest:
            return False
    return True


def _parse_depfile(text: str) -> list[str]:
    body = text.replace("\\\n", " ").split(":", 1)[-1]
    return [t for t in body.split() if t]


def _mod_c(name: str, srcversion: str) -> str:
    return (f'static const char __modinfo_name[] __attribute__((used, section(".modinfo"), '
            f'aligned(1))) = "name={name}";\n'
            f'static const char __modinfo_srcversion[] __attribute__((used, '
            f'section(".modinfo"), aligned(1))) = "srcversion={srcversion}";\n')


def _compile(tc: Toolchain, flags: list[str], src: Path, obj: Path, name: str) -> str:
    """Compile one file; returns the warnings, raises ModuleError with the diagnostics."""
    cmd = [tc.cc, *flags,
           f"-DKBUILD_BASENAME=\"{src.name.split('.')[0]}\"", "-MD", "-MF", str(obj) + ".d",
           "-c", str(src.resolve()), "-o", str(obj)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise ModuleError(f"module {name}: compiling {src} failed:\n{out.stderr.rstrip()}")
    return out.stderr


def build_module(sources: list[str | Path], name: str | None = None,
                 cflags: tuple[str, ...] | list[str] = (), kasan: bool = False) -> ModuleBuild:
    """Build (or reuse) the module made of ``sources``; :class:`ModuleError` on failure."""
    if not sources:
        raise ModuleError("a module needs at least one C source file")
    if not isinstance(cflags, (list, tuple)) or not all(isinstance(f, str) for f in cflags):
        raise ModuleError(f"cflags must be a sequence of strings, got {cflags!r}")
    paths = []
    for s in sources:
        if not isinstance(s, (str, Path)):
            raise ModuleError(f"module source must be a path, got {s!r}")
        p = Path(s)
        if not p.is_file():
            raise ModuleError(f"module source {s}: no such file")
        if p.suffix not in (".c", ".S"):
            raise ModuleError(f"module source {s}: expected a .c or .S file")
        paths.append(p)
    if len({p.resolve() for p in paths}) != len(paths):
        raise ModuleError("the same source file is given twice")
    name = module_name(paths, name)
    root = source_root()
    tc = _toolchain()
    flags = [*module_cflags(root, name, kasan=kasan), *cflags]
    key = _key(paths, name, flags, tc, root)
    out_dir = cache_root() / "modules" / key
    meta_file = out_dir / "build.json"
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        if _deps_fresh(meta):
            return ModuleBuild(name, out_dir / f"{name}.ko", meta["srcversion"], tuple(paths),
                               meta.get("warnings", ""))
    return _build_fresh(tc, flags, paths, name, key, out_dir)


def _build_fresh(tc: Toolchain, flags: list[str], paths: list[Path], name: str, key: str,
                 out_dir: Path) -> ModuleBuild:
    srcversion = key[:24].upper()
    (cache_root() / "modules").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_root() / "modules"))
    try:
        objs, warnings, deps = [], [], set()
        for i, src in enumerate(paths):
            obj = work / f"{i}-{src.name}.o"
            warnings.append(_compile(tc, flags, src, obj, name))
            deps.update(_parse_depfile(Path(str(obj) + ".d").read_text()))
            objs.append(obj)
        mod_c = work / f"{name}.mod.c"
        mod_c.write_text(_mod_c(name, srcversion))
        mod_o = work / f"{name}.mod.o"
        _compile(tc, flags, mod_c, mod_o, name)
        objs.append(mod_o)
        ko = work / f"{name}.ko"
        ld = subprocess.run([tc.ld, "-r", "-o", str(ko), *map(str, objs)],
                            capture_output=True, text=True)
        if ld.returncode != 0:
            raise ModuleError(f"module {name}: linking failed:\n{ld.stderr.rstrip()}")
        dep_hashes = {str(Path(d).resolve()): _sha(Path(d).read_bytes())
                      for d in sorted(deps) if Path(d).is_file()}
        meta = {"name": name, "srcversion": srcversion, "warnings": "".join(warnings),
                "deps": dep_hashes, "sources": [str(p) for p in paths]}
        (work / "build.json").write_text(json.dumps(meta, indent=1))
        _publish(work, out_dir)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return ModuleBuild(name, out_dir / f"{name}.ko", srcversion, tuple(paths),
                       "".join(warnings))


def _publish(work: Path, out_dir: Path) -> None:
    """Make the finished build in ``work`` the cache's ``out_dir``.  Another process
    (an xdist worker) may have built the same key meanwhile: a complete, fresh build
    there is kept (ours is dropped); a stale one is first renamed aside, so a reader
    never finds a half-removed directory (it finds the old build, or none, or ours)."""
    meta = out_dir / "build.json"
    try:
        if meta.is_file() and _deps_fresh(json.loads(meta.read_text())):
            return
    except (OSError, ValueError):
        pass  # vanished or half-written meanwhile: replace it
    trash = None
    if out_dir.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-old-", dir=out_dir.parent))
        try:
            out_dir.rename(trash / "old")
        except OSError:
            pass  # someone else moved it first
    try:
        work.rename(out_dir)
    except OSError:
        if not meta.is_file():
            raise
    finally:
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)


def find_built(srcversion: str) -> Path | None:
    """The ``.ko`` a srcversion was built as (the kernel remembers only the srcversion)."""
    if not re.fullmatch(r"[0-9A-F]{24}", srcversion):
        return None
    d = cache_root() / "modules" / srcversion.lower()
    meta = d / "build.json"
    for attempt in range(3):  # another worker may be publishing this build (_publish)
        try:
            return d / f"{json.loads(meta.read_text())['name']}.ko"
        except (OSError, ValueError):
            if attempt == 0 and not d.exists():
                return None  # never built here
            time.sleep(0.05)
    return None


def link_for_debug(ko: Path, kernel_elf: Path, sections: dict[str, int],
                   defsyms: dict[str, int] | None = None,
                   discard: list[str] | None = None) -> Path:
    """A copy of ``ko`` linked at the addresses the kernel loaded its sections at,
    with the kernel's symbols for the undefined ones (``ld -R``): its DWARF, symbols
    and CFI then hold final addresses, as for the kernel itself.  Cached next to
    the ``.ko`` per address set.  ``defsyms`` gives symbols the kernel's loader
    defines itself (``__this_module``); ``discard`` the loaded sections the kernel
    has freed since (``.init.text`` after init)."""
    defsyms = defsyms or {}
    h = hashlib.sha256(str(kernel_elf).encode())
    for n, a in sorted(sections.items()) + sorted(defsyms.items()):
        h.update(f"{n}={a:#x};".encode())
    h.update(" ".join(discard or []).encode())
    out = ko.with_name(f"{ko.stem}.{h.hexdigest()[:16]}.debug.elf")
    if out.is_file():
        return out
    script = "SECTIONS\n{\n" + "".join(
        f"\t{n} {a:#x} : {{ KEEP(*({n})) }}\n" for n, a in sorted(sections.items(),
                                                                  key=lambda t: t[1])
    ) + "".join(f"\t/DISCARD/ : {{ *({n}) }}\n" for n in discard or []) + "}\n"
    tc = _toolchain()
    with tempfile.TemporaryDirectory(dir=ko.parent) as d:
        lds = Path(d) / "debug.ld"
        lds.write_text(script)
        tmp = Path(d) / out.name
        r = subprocess.run([tc.ld, "-nostdlib", "-static", "--no-dynamic-linker", "-e", "0",
                            "-z", "max-page-size=4096", "--no-warn-rwx-segments",
                            *(f"--defsym={n}={a:#x}" for n, a in sorted(defsyms.items())),
                            "-T", str(lds), "-R", str(kernel_elf), "-o", str(tmp), str(ko)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise ModuleError(f"linking {ko.name} at its load addresses for debugging "
                              f"failed:\n{r.stderr.rstrip()}")
        tmp.replace(out)
    return out


def image_for_builtin(b: ModuleBuild) -> bytes:
    """The module without its debug sections (``ld -r -S``): what is linked into a
    kernel image for QEMU, where the boot stub's bounce buffer limits the size."""
    tc = _toolchain()
    with tempfile.TemporaryDirectory(dir=b.path.parent) as d:
        out = Path(d) / b.path.name
        r = subprocess.run([tc.ld, "-r", "-S", "-o", str(out), str(b.path)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise ModuleError(f"module {b.name}: stripping for the image failed:\n"
                              f"{r.stderr.rstrip()}")
        return out.read_bytes()
