"""The export table (EXPORT_SYMBOL / EXPORT_SYMBOL_GPL): where it lives and what it holds.

The module loader resolves a module's undefined symbols against exactly this
table, in guest memory; ``emu.kernel.exports.exported_symbols`` reads it from the ELF.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from emu import Machine
from emu.build import build
from emu.build.modflags import module_cflags
from emu.kernel.exports import ExportTableError, exported_symbols


@pytest.fixture(scope="module")
def table() -> dict[str, tuple[int, bool]]:
    return exported_symbols(build().elf)


def test_public_api_is_exported_and_internals_are_not(table: dict) -> None:
    for name in ("kmalloc", "kfree", "kmem_cache_create", "kmem_cache_zalloc", "alloc_pages",
                 "__get_free_pages", "vmalloc", "vfree", "vmalloc_to_page", "printk", "memcpy",
                 "strscpy", "__warn", "__bug_report", "preempt_count", "kmemu_irq_window"):
        assert name in table, name
        assert table[name][1] is False, f"{name} should be EXPORT_SYMBOL, not _GPL"
    assert table["vm_unmap_aliases"] == (table["vm_unmap_aliases"][0], True)  # _GPL as in Linux
    for internal in ("__alloc_pages", "kmalloc_slab", "kmalloc_other", "irq_enter",
                     "kmem_cache_init", "memblock_alloc", "lib_test_list", "kmemu_test_nop"):
        assert internal not in table, internal


def test_table_is_in_the_loaded_image_and_read_the_same_in_the_guest(machine: Machine,
                                                                      table: dict) -> None:
    start, stop = machine.symbol("__start___ksymtab"), machine.symbol("__stop___ksymtab")
    gstart, gstop = machine.symbol("__start___ksymtab_gpl"), machine.symbol("__stop___ksymtab_gpl")
    assert machine.symbol("__kernel_start") <= start < stop <= machine.symbol("__image_end")
    assert gstop <= machine.symbol("__image_end") and stop < machine.symbol("__kallsyms_start")
    seen: dict[str, tuple[int, bool]] = {}
    for lo, hi, gpl in ((start, stop, False), (gstart, gstop, True)):
        raw = machine.read_virt(lo, hi - lo)
        for value, name_ptr in struct.iter_unpack("<QQ", raw):
            name = machine.read_virt(name_ptr, 64).split(b"\0")[0].decode()
            seen[name] = (value, gpl)
    assert seen == table
    assert table["kmalloc"][0] == machine.symbol("kmalloc")


def test_exported_functions_are_callable_at_their_table_address(machine: Machine,
                                                                 table: dict) -> None:
    p = machine.call(table["kmalloc"][0], 100, 0xCC0)
    assert machine.kmem_cache_of(p) == "kmalloc-128"
    machine.call(table["kfree"][0], p)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_an_elf_without_a_table_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "m.c"
    src.write_text("int f(void) { return 1; }\n")
    subprocess.run(["gcc", *module_cflags(), "-c", str(src), "-o", str(tmp_path / "m.o")],
                   check=True)
    with pytest.raises(ExportTableError, match="no __start___ksymtab"):
        exported_symbols(tmp_path / "m.o")
