"""The Linux-compatible headers (kernel/include), compiled as a module compiles them.

Every public header has a C file in ``c/`` that includes it first (so it must be
self-contained) and uses its API; each is compiled with ``module_cflags()`` plus
``-Werror``, and every symbol the object needs must be in the kernel's export
table.  The declarations themselves are read from the compiler (``-aux-info``),
not from a hand-written list.  Refusals (a missing header, a private header, an
opaque struct, an API kmemu lacks, Linux's compile-time type checks) must be the
compiler's own errors.
"""

from __future__ import annotations

import errno
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from emu.build import build
from emu.build.modflags import include_dir, module_cflags
from emu.kernel.exports import exported_symbols

HERE = Path(__file__).resolve().parent
CDIR = HERE / "c"
GCC = shutil.which("gcc")
NM = shutil.which("nm")
pytestmark = pytest.mark.skipif(GCC is None or NM is None, reason="gcc/binutils not installed")

# Provided per module by the module loader (THIS_MODULE), not by the kernel's table.
LOADER_PROVIDED = {"__this_module"}


def public_headers() -> list[str]:
    """'linux/list', 'asm/page', ... for every header under kernel/include."""
    inc = include_dir()
    return sorted(str(p.relative_to(inc).with_suffix("")) for p in inc.rglob("*.h"))


def c_file_for(header: str) -> Path:
    return CDIR / (header.replace("/", "_") + ".c")


@pytest.fixture(scope="module")
def exports() -> dict[str, tuple[int, bool]]:
    return exported_symbols(build().elf)


def compile_c(src: Path | str, out: Path, *extra: str, name: str = "hdrtest",
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GCC, *module_cflags(name=name), "-Werror", *extra, "-c", str(src), "-o",
                           str(out)], capture_output=True, text=True)


def compile_snippet(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    src = tmp_path / "snippet.c"
    src.write_text(code)
    return compile_c(src, tmp_path / "snippet.o")


def test_the_expected_headers_exist() -> None:
    names = set(public_headers())
    for h in ("types", "kernel", "printk", "slab", "gfp", "vmalloc", "mm", "list", "string",
              "errno", "err", "bug", "compiler", "overflow", "sizes", "minmax", "log2",
              "bitops", "spinlock", "irqflags", "interrupt", "preempt", "init", "module",
              "export"):
        assert f"linux/{h}" in names


def test_every_public_header_has_a_test_file() -> None:
    missing = [h for h in public_headers() if not c_file_for(h).is_file()]
    assert not missing, f"add tests/headers/c/<dir>_<name>.c for: {missing}"


@pytest.mark.parametrize("header", public_headers())
def test_header_compiles_alone_and_links_only_exports(header: str, tmp_path: Path,
                                                      exports: dict) -> None:
    src = c_file_for(header)
    assert src.read_text().splitlines()[1] == f"#include <{header}.h>", "include it first"
    obj = tmp_path / "t.o"
    r = compile_c(src, obj)
    assert r.returncode == 0, r.stderr
    undef = subprocess.run([NM, "-u", str(obj)], capture_output=True, text=True).stdout.split()
    needed = {w for w in undef if w != "U"}
    missing = needed - set(exports) - LOADER_PROVIDED
    assert not missing, f"{header}.h makes modules reference unexported symbols: {missing}"


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """{function: header} for every extern function the public headers declare
    (gcc -aux-info over a file that includes them all)."""
    tmp = tmp_path_factory.mktemp("auxinfo")
    src = tmp / "all.c"
    src.write_text("".join(f"#include <{h}.h>\n" for h in public_headers()))
    aux = tmp / "all.aux"
    r = compile_c(src, tmp / "all.o", f"-aux-info={aux}")
    assert r.returncode == 0, r.stderr
    inc = str(include_dir())
    out: dict[str, str] = {}
    for line in aux.read_text().splitlines():
        m = re.match(r"/\* (\S+):\d+:(\w+) \*/ (.*);$", line)
        if not m or not m.group(1).startswith(inc) or m.group(3).startswith("static"):
            continue
        name = re.search(r"(\w+) \(", m.group(3))
        assert name, line
        out[name.group(1)] = m.group(1)[len(inc) + 1:]
    return out


def test_aux_info_sees_the_api(declared: dict[str, str]) -> None:
    for fn in ("kmalloc", "kmem_cache_create", "alloc_pages", "vmalloc", "printk", "strscpy"):
        assert fn in declared
    assert declared["kmalloc"] == "linux/slab.h"


def test_every_declared_function_is_exported(declared: dict[str, str], exports: dict) -> None:
    missing = {f: h for f, h in declared.items() if f not in exports}
    assert not missing, f"declared in public headers but not EXPORT_SYMBOL'd: {missing}"


def test_every_export_is_public_api(declared: dict[str, str], exports: dict,
                                    tmp_path: Path) -> None:
    """The table holds the public API only: each entry is declared in a public header
    (functions via -aux-info; data objects via their extern declaration)."""
    src = tmp_path / "all.c"
    src.write_text("".join(f"#include <{h}.h>\n" for h in public_headers()))
    pre = subprocess.run([GCC, *module_cflags(), "-E", "-P", str(src)], capture_output=True,
                         text=True, check=True).stdout
    data = set(re.findall(r"^extern [^;(]*?\b(\w+);$", pre, re.M))
    stray = set(exports) - set(declared) - data
    assert not stray, f"exported but not declared in any public header: {stray}"


def test_exports_are_functions_or_objects_at_their_symbol(exports: dict) -> None:
    with build().elf.open("rb") as f:
        syms = {s.name: s for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()}
    for name, (addr, _gpl) in exports.items():
        assert syms[name]["st_value"] == addr, name
        assert syms[name]["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT"), name
        assert syms[name]["st_info"]["bind"] == "STB_GLOBAL", name


# ------------------------------------------------------------------ refusals


def test_missing_header_is_the_compilers_error(tmp_path: Path) -> None:
    r = compile_snippet(tmp_path, "#include <linux/fs.h>\n")
    assert r.returncode != 0
    assert "linux/fs.h: No such file or directory" in r.stderr


def test_kernel_private_headers_are_not_on_the_module_path(tmp_path: Path) -> None:
    r = compile_snippet(tmp_path, "#include <kmemu/slub.h>\n")
    assert r.returncode != 0 and "kmemu/slub.h: No such file or directory" in r.stderr


@pytest.mark.parametrize("what,header", [("struct page", "linux/mm.h"),
                                         ("struct kmem_cache", "linux/slab.h")])
def test_allocator_structs_are_opaque(tmp_path: Path, what: str, header: str) -> None:
    r = compile_snippet(tmp_path, f"#include <{header}>\nunsigned long t(void) "
                        f"{{ return sizeof({what}); }}\n")
    assert r.returncode != 0 and "incomplete type" in r.stderr


@pytest.mark.parametrize("call", ["request_irq(1, 0, 0, \"x\", 0)", "kmem_cache_create_usercopy"
                                  "(\"x\", 8, 8, 0, 0, 8, 0)", "atomic_inc(0)"])
def test_an_api_kmemu_lacks_is_absent(tmp_path: Path, call: str) -> None:
    r = compile_snippet(tmp_path, "#include <linux/module.h>\n#include <linux/slab.h>\n"
                        "#include <linux/interrupt.h>\n"
                        f"void t(void) {{ {call}; }}\n")
    assert r.returncode != 0 and "implicit declaration of function" in r.stderr


@pytest.mark.parametrize("code,message", [
    ("#include <linux/minmax.h>\nint t(int a, long b) { return min(a, b); }",
     "comparison of distinct pointer types"),
    ("#include <linux/overflow.h>\nint t(int a, long b, int *d) "
     "{ return check_add_overflow(a, b, d); }", "comparison of distinct pointer types"),
    ("#include <linux/build_bug.h>\nvoid t(void) { BUILD_BUG_ON(sizeof(int) == 4); }",
     "BUILD_BUG_ON failed"),
    ("#include <linux/kernel.h>\nunsigned long t(int *p) { return ARRAY_SIZE(p); }",
     "must be array"),
    ("#include <linux/irqflags.h>\nvoid t(void) { int f; local_irq_save(f); "
     "local_irq_restore(f); }", "comparison of distinct pointer types"),
    ("#include <linux/list.h>\nstruct s { int a; struct list_head l; };\n"
     "struct s *t(int *p) { return container_of(p, struct s, l); }",
     "pointer type mismatch in container_of()"),
    ("#include <linux/err.h>\nvoid t(void) { ERR_PTR(-1); }", "ignoring return value"),
    ("#include <linux/printk.h>\nvoid t(long x) { pr_info(\"%d\\n\", x); }", "format"),
])
def test_linux_compile_time_checks_fail_the_build(tmp_path: Path, code: str,
                                                  message: str) -> None:
    r = compile_snippet(tmp_path, code + "\n")
    assert r.returncode != 0, f"compiled:\n{code}"
    assert message in r.stderr, r.stderr


def test_module_init_exists_only_for_modules(tmp_path: Path) -> None:
    src = tmp_path / "m.c"
    src.write_text("#include <linux/module.h>\nstatic int __init f(void) { return 0; }\n"
                   "module_init(f);\n")
    ok = compile_c(src, tmp_path / "m.o")
    assert ok.returncode == 0, ok.stderr
    nm = subprocess.run([NM, str(tmp_path / "m.o")], capture_output=True, text=True).stdout
    assert re.search(r"^0+ T init_module$", nm, re.M), nm  # alias of f, in .init.text
    kernel_flags = [f for f in module_cflags() if f != "-DMODULE"]
    r = subprocess.run([GCC, *kernel_flags, "-Werror", "-c", str(src), "-o",
                        str(tmp_path / "k.o")], capture_output=True, text=True)
    assert r.returncode != 0  # the kernel itself has no initcalls: absent, not a stub


def test_errno_values_are_linuxs(tmp_path: Path) -> None:
    src = tmp_path / "e.c"
    src.write_text("#include <linux/errno.h>\n")
    macros = subprocess.run([GCC, *module_cflags(), "-E", "-dM", str(src)], capture_output=True,
                            text=True, check=True).stdout
    values = {m.group(1): m.group(2) for m in
              re.finditer(r"^#define (E[A-Z0-9_]+) (\w+)$", macros, re.M)}
    resolved = {n: int(v) if v.isdigit() else int(values[v]) for n, v in values.items()}
    user = {n: v for n, v in resolved.items() if v < 512}
    assert len(user) >= 130
    for name, value in user.items():
        if hasattr(errno, name):  # the host is Linux: its errno numbers are the ABI
            assert getattr(errno, name) == value, name
    assert resolved["ENOTSUPP"] == 524 and resolved["EPROBE_DEFER"] == 517
