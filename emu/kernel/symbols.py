"""Kernel symbols from the ELF: name -> address, address -> ``name+0xoff/0xsize``.

Layer 4 (``emu.kernel``).  Function parameter counts come from DWARF so
``Machine.call`` can refuse a wrong number of arguments.

>>> syms = Symbols.load(path_to_kernel_elf)        # doctest: +SKIP
>>> syms.symbolize(syms.address("kmain") + 0x1c)   # doctest: +SKIP
'kmain+0x1c/0x120'
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from emu.core.errors import KmemuError
from emu.kernel.filecache import load_on_disk, load_per_file


class SymbolError(KmemuError, LookupError):
    """An unknown symbol name or an address no symbol covers."""


@dataclass(frozen=True)
class Symbol:
    name: str
    address: int
    size: int
    kind: str  # "func", "object" or "label" (a linker-script symbol)


@dataclass(frozen=True)
class ArgType:
    """The integer range a C parameter takes in its register: ``name`` as written in
    the source (``unsigned int``, ``gfp_t``, ``struct page *``), ``bits`` of value
    and whether it is ``signed``.  Pointers are unsigned 64-bit, ``_Bool`` one bit."""

    name: str
    bits: int = 64
    signed: bool = False

    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1


@dataclass(frozen=True)
class Params:
    """What DWARF says about a function's parameters and return value."""

    names: tuple[str, ...]
    variadic: bool
    ret_size: int = 8  # bytes of the return value that are defined (bool: 1, int: 4)
    void: bool = False  # returns nothing (rax is whatever was left there)
    types: tuple[ArgType | None, ...] = ()  # per parameter; None: not an integer/pointer


class Symbols:
    """The symbol table of one kernel ELF."""

    def __init__(self, symbols: list[Symbol], elf_path: Path | None = None) -> None:
        self.by_name = {s.name: s for s in symbols}
        # linker labels (_stext, __bss_end, ...) resolve by name but never symbolise
        self.sorted = sorted((s for s in symbols if s.kind != "label"),
                             key=lambda s: (s.address, -s.size))
        self._starts = [s.address for s in self.sorted]
        self.elf_path = elf_path
        self._params: dict[str, Params] | None = None
        self._params_by_address: dict[int, Params] | None = None
        self._parts: list[Symbols] = []

    @classmethod
    def combined(cls, first: Symbols, more: list[Symbols]) -> Symbols:
        """``first`` (the kernel) with ``more`` (loaded modules) added.  Every symbol
        covers its addresses; a name two of them define resolves to the earlier one
        (the kernel's first, as kallsyms_lookup_name), parameters likewise."""
        out = cls(list(first.by_name.values()), first.elf_path)
        extra = [s for part in more for s in part.by_name.values()]
        for s in extra:
            out.by_name.setdefault(s.name, s)
        out.sorted = sorted([*out.sorted, *(s for s in extra if s.kind != "label")],
                            key=lambda s: (s.address, -s.size))
        out._starts = [s.address for s in out.sorted]
        out._parts = [first, *more]
        return out

    @classmethod
    def load(cls, elf_path: Path) -> Symbols:
        """Symbols of an ELF; cached per (path, mtime) for the life of the process."""
        return load_per_file(_CACHE, elf_path, lambda p: cls(
            load_on_disk(p, "symtab", _SYMTAB_VERSION, _read_symtab), p))

    @property
    def params(self) -> dict[str, Params]:
        """Parameter lists of every function with DWARF info (parsed on first use)."""
        if self._params is None and self._parts:
            self._params = {}
            for part in reversed(self._parts):  # earlier parts win a clash
                self._params.update(part.params)
        if self._params is None:
            self._params = {}
            if self.elf_path is not None:
                self._params = load_on_disk(self.elf_path, "params", _PARAMS_VERSION,
                                            _read_params)
        return self._params

    def params_at(self, address: int) -> Params | None:
        """The parameters of the function starting at ``address``, whichever of its
        names (an ``alias`` has no DWARF of its own) carries the DWARF."""
        if self._params_by_address is None:
            self._params_by_address = {}
            for n, p in self.params.items():
                s = self.by_name.get(n)
                if s is not None and s.kind == "func":
                    self._params_by_address.setdefault(s.address, p)
        return self._params_by_address.get(address)

    def address(self, name: str) -> int:
        try:
            return self.by_name[name].address
        except KeyError:
            near = sorted(n for n in self.by_name if name.lower() in n.lower())[:5]
            if not near:  # a misspelling or another kernel's name (slab_alloc_slow)
                near = _close_names(name, list(self.by_name))
            hint = f"; similar: {', '.join(near)}" if near else ""
            raise SymbolError(f"unknown kernel symbol {name!r}{hint}") from None

    def lookup(self, addr: int) -> tuple[Symbol, int] | None:
        """The symbol covering ``addr`` and the offset into it (or None)."""
        i = bisect.bisect_right(self._starts, addr) - 1
        while i >= 0:
            s = self.sorted[i]
            if s.address <= addr < s.address + max(s.size, 1):
                return s, addr - s.address
            if s.address < addr - 0x100000:
                break
            i -= 1
        return None

    def symbolize(self, addr: int) -> str:
        """``kmalloc+0x1c/0x90`` as Linux prints ``%pS``; bare hex when unknown."""
        hit = self.lookup(addr)
        if hit is None:
            return f"{addr:#x}"
        s, off = hit
        return f"{s.name}+{off:#x}/{s.size:#x}"

    def functions(self) -> list[str]:
        return sorted(n for n, s in self.by_name.items() if s.kind == "func")

    def names(self) -> list[str]:
        return sorted(self.by_name)


_CACHE: dict[tuple[str, int], Symbols] = {}


def _close_names(name: str, names: list[str]) -> list[str]:
    """Up to five names like ``name``: spelled alike, or sharing its words
    (``slab_alloc_slow`` finds ``___slab_alloc``)."""
    import difflib

    close = difflib.get_close_matches(name, names, n=5, cutoff=0.75)
    words = {w for w in name.lower().split("_") if len(w) > 2}
    if words:
        scored = sorted(((len(words & set(n.lower().split("_"))), n) for n in names),
                        key=lambda x: (-x[0], len(x[1]), x[1]))
        best = scored[0][0] if scored else 0
        if best >= max(2, len(words) - 1):
            close += [n for k, n in scored if k == best and n not in close]
    return close[:5]


def _read_symtab(path: Path) -> list[Symbol]:
    with path.open("rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        syms = []
        for s in symtab.iter_symbols() if symtab else []:
            kind = {"STT_FUNC": "func", "STT_OBJECT": "object"}.get(s["st_info"]["type"])
            if (kind is None and s["st_info"]["type"] == "STT_NOTYPE"
                    and s["st_info"]["bind"] == "STB_GLOBAL" and s["st_shndx"] != "SHN_UNDEF"):
                kind = "label"
            if kind and s.name and s["st_value"]:
                syms.append(Symbol(s.name, s["st_value"], s["st_size"], kind))
    return syms


#: Names the shape of the saved parameter table (emu.kernel.filecache.load_on_disk):
#: change it with Params, ArgType or _dwarf_params.
_PARAMS_VERSION = "params-1"
_SYMTAB_VERSION = "symtab-1"  # the same for Symbol and _read_symtab


def _read_params(path: Path) -> dict[str, Params]:
    with path.open("rb") as f:
        elf = ELFFile(f)
        return _dwarf_params(elf) if elf.has_dwarf_info() else {}


def _dwarf_params(elf: ELFFile) -> dict[str, Params]:
    out: dict[str, Params] = {}
    for cu in elf.get_dwarf_info().iter_CUs():
        for die in cu.get_top_DIE().iter_children():
            if die.tag != "DW_TAG_subprogram" or "DW_AT_name" not in die.attributes:
                continue
            if "DW_AT_declaration" in die.attributes:
                continue
            names, variadic, types = [], False, []
            for child in die.iter_children():
                if child.tag == "DW_TAG_formal_parameter":
                    a = child.attributes.get("DW_AT_name")
                    names.append(a.value.decode() if a else f"arg{len(names)}")
                    types.append(_arg_type(child))
                elif child.tag == "DW_TAG_unspecified_parameters":
                    variadic = True
            name = die.attributes["DW_AT_name"].value.decode()
            out[name] = Params(tuple(names), variadic, _type_size(die),
                               "DW_AT_type" not in die.attributes, tuple(types))
    return out


_SIGNED_ENCODINGS = (0x05, 0x06)  # DW_ATE_signed, DW_ATE_signed_char
_QUALIFIERS = ("DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type",
               "DW_TAG_restrict_type")


def _type_name(t) -> str:
    """The C spelling of a type DIE, as far as messages need it."""
    if t is None:
        return "void"
    name = t.attributes.get("DW_AT_name")
    if name is not None:
        prefix = {"DW_TAG_enumeration_type": "enum ", "DW_TAG_structure_type": "struct ",
                  "DW_TAG_union_type": "union "}.get(t.tag, "")
        return prefix + name.value.decode()
    inner = t.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in t.attributes else None
    if t.tag == "DW_TAG_pointer_type":
        if inner is not None and inner.tag == "DW_TAG_subroutine_type":
            return "function pointer"
        base = _type_name(inner)
        return f"{base}*" if base.endswith("*") else f"{base} *"
    if t.tag in _QUALIFIERS:
        return _type_name(inner)
    return t.tag.removeprefix("DW_TAG_").replace("_type", "")


def _arg_type(param) -> ArgType | None:
    """The register range of a formal parameter (None for a struct, float, ...)."""
    t = param.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in param.attributes else None
    return _range_of(t, _type_name(t))


def _range_of(t, name: str) -> ArgType | None:
    """:class:`ArgType` ``name`` for type DIE ``t``, through typedefs and qualifiers."""
    for _ in range(16):
        if t is None:
            return None
        if t.tag == "DW_TAG_pointer_type":
            return ArgType(name)
        if t.tag == "DW_TAG_base_type":
            size = int(t.attributes["DW_AT_byte_size"].value)
            enc = t.attributes["DW_AT_encoding"].value
            if enc == 0x02:  # DW_ATE_boolean
                return ArgType(name, 1)
            if enc not in (0x05, 0x06, 0x07, 0x08):  # integers only (no float)
                return None
            return ArgType(name, 8 * size, enc in _SIGNED_ENCODINGS)
        if t.tag == "DW_TAG_enumeration_type":
            if "DW_AT_type" in t.attributes:  # the underlying integer type
                return _range_of(t.get_DIE_from_attribute("DW_AT_type"), name)
            return ArgType(name, 8 * int(t.attributes["DW_AT_byte_size"].value), True)
        if t.tag not in _QUALIFIERS:
            return None
        t = t.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in t.attributes else None
    return None


def _type_size(die) -> int:
    """Byte size of a subprogram's return type (8 for void, pointers and unknown)."""
    t = die.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in die.attributes else None
    for _ in range(16):
        if t is None:
            return 8
        if "DW_AT_byte_size" in t.attributes and t.tag in ("DW_TAG_base_type",
                                                            "DW_TAG_enumeration_type"):
            return int(t.attributes["DW_AT_byte_size"].value)
        if t.tag not in ("DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type"):
            return 8
        t = t.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in t.attributes else None
    return 8
