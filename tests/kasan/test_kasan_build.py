"""The KASAN variant is a build of its own: its own cache key, and nothing of it in the
default kernel (the allocator hooks compile to nothing there)."""

from __future__ import annotations

from elftools.elf.elffile import ELFFile

from emu.build import build, source_key, source_root
from emu.build.kernel import file_cflags
from emu.build.toolchain import find_toolchain


def _symbols(path) -> set[str]:
    with open(path, "rb") as f:
        return {s.name for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()}


def test_variant_has_its_own_cache_key() -> None:
    tc = find_toolchain()
    root = source_root()
    assert source_key(root, tc.cc_version, tc.ld_version, kasan=True) != \
        source_key(root, tc.cc_version, tc.ld_version)
    assert build(kasan=True).key != build().key


def test_default_kernel_has_no_kasan() -> None:
    syms = _symbols(build().elf)
    assert not {s for s in syms if s.startswith(("__asan_", "kasan_"))}
    kasan = _symbols(build(kasan=True).elf)
    assert {"__asan_load8_noabort", "__asan_store1_noabort", "kasan_report",
            "kasan_init"} <= kasan


def test_which_files_are_instrumented() -> None:
    k = source_root() / "kernel"
    assert "-fsanitize=kernel-address" not in file_cflags(k / "slab" / "slub.c", kasan=True)
    assert "-DCONFIG_KASAN" in file_cflags(k / "slab" / "slub.c", kasan=True)
    assert "-fsanitize=kernel-address" not in file_cflags(k / "kasan" / "report.c", kasan=True)
    assert "asan-stack=1" in file_cflags(k / "vmalloc.c", kasan=True)
    assert "asan-stack=0" in file_cflags(k / "main.c", kasan=True)  # runs before kasan_init
    slub = k / "slab" / "slub.c"
    assert file_cflags(k / "vmalloc.c", kasan=False) == file_cflags(slub, kasan=False)
