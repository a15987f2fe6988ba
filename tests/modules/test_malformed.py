"""Malformed module images: each refused by the kernel with its own message, and the
kernel and its allocators left exactly as they were."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from emu import Machine, ModuleError
from emu.build.module import build_module

SRC = Path(__file__).parent / "src"
SHDR = 64  # sizeof(Elf64_Shdr)


def good() -> bytes:
    return build_module([SRC / "mydev.c"]).path.read_bytes()


def section(data: bytes, name: str) -> tuple[int, dict]:
    """(index, header) of a section by name."""
    import io

    elf = ELFFile(io.BytesIO(data))
    for i, s in enumerate(elf.iter_sections()):
        if s.name == name:
            return i, s.header
    raise KeyError(name)


def shdr_off(data: bytes, idx: int) -> int:
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    return shoff + idx * SHDR


def put(data: bytes, off: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


def sym_off(data: bytes, sym_name: str) -> int:
    """File offset of a symbol's Elf64_Sym entry."""
    i, sh = section(data, ".symtab")
    _, strh = section(data, ".strtab")
    for k in range(sh["sh_size"] // 24):
        off = sh["sh_offset"] + 24 * k
        name_off = struct.unpack_from("<I", data, off)[0]
        end = data.index(b"\0", strh["sh_offset"] + name_off)
        if data[strh["sh_offset"] + name_off : end].decode() == sym_name:
            return off
    raise KeyError(sym_name)


def rela_entry(data: bytes, sec: str = ".rela.text") -> int:
    _, sh = section(data, sec)
    return sh["sh_offset"]


def no_modinfo_name(d: bytes) -> bytes:
    i, sh = section(d, ".modinfo")
    blob = d[sh["sh_offset"] : sh["sh_offset"] + sh["sh_size"]]
    return d.replace(blob, blob.replace(b"name=mydev", b"xame=mydev"))


CASES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated header": (lambda d: d[:40], "Invalid ELF header len 40"),
    "bad magic": (lambda d: b"\x7fELG" + d[4:], "Invalid ELF header magic: != \\177ELF"),
    "not relocatable": (lambda d: put(d, 16, "<H", 2), "Invalid ELF header type: 2 != 1"),
    "wrong machine": (lambda d: put(d, 18, "<H", 3), "Invalid architecture in ELF header: 3"),
    "32-bit class": (lambda d: put(d, 4, "<B", 1), "Invalid architecture in ELF header: 62"),
    "section header size": (lambda d: put(d, 58, "<H", 40), "Invalid ELF section header size"),
    "truncated file": (lambda d: d[: len(d) // 2], "Invalid ELF section header overflow"),
    "section headers past the end": (lambda d: put(d, 0x28, "<Q", len(d) - 8),
                                     "Invalid ELF section header overflow"),
    "section name table index": (lambda d: put(d, 62, "<H", 0xFFF0),
                                 "Invalid ELF section name index: 65520 || e_shstrndx (65520) "
                                 ">= e_shnum"),
    "section outside the file": (
        lambda d: put(d, shdr_off(d, section(d, ".text")[0]) + 24, "<Q", 1 << 40),
        "Invalid ELF section in module (section 1 type 1)"),
    "section name offset": (
        lambda d: put(d, shdr_off(d, section(d, ".data")[0]), "<I", 0x7FFFFFFF),
        "Invalid ELF section name in module (section"),
    "symtab link": (
        lambda d: put(d, shdr_off(d, section(d, ".symtab")[0]) + 40, "<I", 999),
        "Invalid ELF sh_link!=SHN_UNDEF(999) or (sh_link(999) >= hdr->e_shnum"),
    "symbol name offset": (lambda d: put(d, sym_off(d, "mydev_sum"), "<I", 0x7FFFFFF0),
                           "name offset 2147483632 is outside the string table"),
    "symbol section index": (lambda d: put(d, sym_off(d, "mydev_sum") + 6, "<H", 0xFE00),
                             "Invalid ELF symbol mydev_sum: section index 65024 >= e_shnum"),
    "symbol outside its section": (
        lambda d: put(d, sym_off(d, "mydev_sum") + 8, "<Q", 0x100000),
        "Invalid ELF symbol mydev_sum: value 0x100000 is outside its section .text"),
    "relocation offset": (lambda d: put(d, rela_entry(d), "<Q", 0xFFFFFF),
                          "mydev: relocation 0 of section .text is out of range (offset "
                          "0xffffff"),
    "relocation symbol": (lambda d: put(d, rela_entry(d) + 12, "<I", 0xFFFF),
                          "mydev: relocation 0 of section .text is out of range"),
    "relocation type": (lambda d: put(d, rela_entry(d) + 8, "<I", 37),
                        "mydev: Unknown rela relocation: 37"),
    "relocation section target": (
        lambda d: put(d, shdr_off(d, section(d, ".rela.text")[0]) + 44, "<I", 5000),
        "Invalid ELF relocation section"),
    "no module name": (no_modinfo_name,
                       "(missing .modinfo name field): No module found in object"),
    "no symbol table": (
        lambda d: put(d, shdr_off(d, section(d, ".symtab")[0]) + 4, "<I", 1),
        "(unnamed module): module has no symbols (stripped?)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_image_refused(machine: Machine, case: str) -> None:
    mutate, message = CASES[case]
    image = mutate(good())
    machine.purge_vmap()
    machine.call("kmem_cache_shrink_all")
    # free pages plus vmalloc's page-table pages, which stay once made (ARCHITECTURE.md)
    free = sum(z.free for z in machine.zones()) + int(machine.var("pgtable_pages"))
    with pytest.raises(ModuleError) as ei:
        machine.insert_module(image)
    assert ei.value.errno == 8, str(ei.value)
    first, _, kernel_said = str(ei.value).partition("\n")
    assert first == "could not insert module: Invalid module format"
    assert message in kernel_said
    assert len(kernel_said.splitlines()) <= 2
    assert machine.modules() == []
    machine.purge_vmap()
    machine.call("kmem_cache_shrink_all")
    assert sum(z.free for z in machine.zones()) + int(machine.var("pgtable_pages")) == free
    assert machine.validate_page_alloc() == [] and machine.validate_slab() == []
    assert machine.validate_vmalloc() == []
    machine.insert_module(good())  # the loader is fine afterwards
    assert [m.name for m in machine.modules()] == ["mydev"]


def test_every_byte_truncation_is_refused(machine: Machine) -> None:
    """Every prefix of a header-sized window refuses cleanly (no oops, nothing loaded)."""
    d = good()
    for n in list(range(0, 64, 7)) + [len(d) - 1, len(d) - 100]:
        with pytest.raises(ModuleError) as ei:
            machine.insert_module(d[:n] if n else d[:1])
        assert ei.value.errno == 8
    assert machine.modules() == []
