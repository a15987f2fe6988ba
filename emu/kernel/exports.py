"""The kernel's export table: the symbols a module may link against.

Layer 4 (``emu.kernel``).  ``EXPORT_SYMBOL(sym)`` / ``EXPORT_SYMBOL_GPL(sym)``
(``kernel/include/linux/export.h``) emit a ``struct kernel_symbol { unsigned
long value; const char *name; }`` into section ``__ksymtab`` / ``__ksymtab_gpl``;
``kernel.ld`` keeps them between ``__start___ksymtab``..``__stop___ksymtab`` and
``__start___ksymtab_gpl``..``__stop___ksymtab_gpl`` in the loaded image, with
absolute addresses.  This reads the same table from the ELF, as the in-kernel
module loader reads it from memory.

>>> exported_symbols(elf)["kmalloc"]        # doctest: +SKIP
(18446744071563282432, False)
"""

from __future__ import annotations

import struct
from pathlib import Path

from elftools.elf.elffile import ELFFile

from emu.core.errors import KmemuError
from emu.kernel.filecache import load_per_file

ENTRY = struct.Struct("<QQ")  # struct kernel_symbol: value, name


class ExportTableError(KmemuError):
    """The ELF has no (or a malformed) export table."""


_CACHE: dict[tuple[str, int], dict[str, tuple[int, bool]]] = {}


def exported_symbols(elf_path: Path) -> dict[str, tuple[int, bool]]:
    """``{name: (address, gpl_only)}`` for every EXPORT_SYMBOL(_GPL) of the kernel ELF.

    Cached per (path, mtime).  A name exported twice is an error, as in Linux.
    """
    return load_per_file(_CACHE, Path(elf_path), _read)


def _read(path: Path) -> dict[str, tuple[int, bool]]:
    with path.open("rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        if symtab is None:
            raise ExportTableError(f"{path} has no symbol table")
        bounds = {s.name: s["st_value"] for s in symtab.iter_symbols()
                  if s.name.startswith(("__start___ksymtab", "__stop___ksymtab"))}
        table: dict[str, tuple[int, bool]] = {}
        for sec, gpl in (("__ksymtab", False), ("__ksymtab_gpl", True)):
            start, stop = bounds.get(f"__start_{sec}"), bounds.get(f"__stop_{sec}")
            if start is None or stop is None:
                raise ExportTableError(f"{path} has no __start_{sec}/__stop_{sec} symbols")
            if (stop - start) % ENTRY.size:
                raise ExportTableError(f"{sec} is {stop - start} bytes, not a whole number "
                                       f"of {ENTRY.size}-byte entries")
            raw = _read_va(elf, start, stop - start)
            for value, name_ptr in ENTRY.iter_unpack(raw):
                name = _read_cstring(elf, name_ptr)
                if name in table:
                    raise ExportTableError(f"{name} is exported twice")
                table[name] = (value, gpl)
    return table


def _read_va(elf: ELFFile, va: int, size: int) -> bytes:
    """size bytes at virtual address va from the section holding them."""
    if size == 0:
        return b""
    for sec in elf.iter_sections():
        lo = sec["sh_addr"]
        if sec["sh_type"] != "SHT_NOBITS" and lo and lo <= va and va + size <= lo + sec["sh_size"]:
            return sec.data()[va - lo:va - lo + size]
    raise ExportTableError(f"no section holds {size} bytes at {va:#x}")


def _read_cstring(elf: ELFFile, va: int) -> str:
    for sec in elf.iter_sections():
        lo = sec["sh_addr"]
        if sec["sh_type"] != "SHT_NOBITS" and lo and lo <= va < lo + sec["sh_size"]:
            data = sec.data()
            end = data.find(b"\0", va - lo)
            if end < 0:
                raise ExportTableError(f"unterminated export name at {va:#x}")
            return data[va - lo:end].decode()
    raise ExportTableError(f"export name pointer {va:#x} is outside the image")
