"""Loaded modules, from guest memory (C: ``kernel/module.c``), and their ELF files.

Layer 4 (``emu.kernel``).  The kernel keeps ``struct module`` on the
``modules`` list, newest first; each records where every ELF section of the
module landed (``section_addr[]``), so the host can place the module's own
symbols and DWARF from the ``.ko`` it built.

>>> for v in read_modules(prog, read): print(v.name, hex(v.base))   # doctest: +SKIP
mydev 0xffffffffa0000000
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile

MODULES_VADDR = 0xFFFFFFFFA0000000
MODULES_END = 0xFFFFFFFFFF000000
STATES = {0: "Live", 1: "Loading", 2: "Unloading", 3: "Unformed"}
TAINT_PROPRIETARY, TAINT_OOT = 1 << 0, 1 << 12
Read = Callable[[int, int], bytes]


@dataclass
class ModuleView:
    """One ``struct module`` as the kernel has it."""

    addr: int
    name: str
    state: str
    base: int
    size: int
    text_size: int
    ro_size: int
    refcnt: int
    taints: int
    srcversion: str
    init: int
    exit: int
    section_addr: list[int] = field(default_factory=list)
    init_base: int = 0  # the .init* sections' area, until init succeeded (then 0)
    init_size: int = 0
    init_text_size: int = 0

    def areas(self) -> list[tuple[int, int, int]]:
        """(start, end, text end) of the core area and, while it exists, the init area."""
        out = [(self.base, self.base + self.size, self.base + self.text_size)]
        if self.init_base:
            out.append((self.init_base, self.init_base + self.init_size,
                        self.init_base + self.init_text_size))
        return out

    def area_of(self, addr: int) -> tuple[int, int, int] | None:
        return next((a for a in self.areas() if a[0] <= addr < a[1]), None)

    @property
    def flags(self) -> str:
        """Linux's module_flags(): "(O)", "(PO+)", or ""."""
        s = ("P" if self.taints & TAINT_PROPRIETARY else "") + ("O" if self.taints & TAINT_OOT
                                                                else "")
        s += {"Loading": "+", "Unloading": "-"}.get(self.state, "")
        return f"({s})" if s else ""


_LAYOUT: dict[int, dict[str, int]] = {}


def _layout(prog) -> dict[str, int]:
    if id(prog) not in _LAYOUT:
        from drgn import offsetof

        t = prog.type("struct module")
        lay = {n: offsetof(t, n) for n in ("state", "taints", "list", "name", "srcversion",
                                            "init", "exit", "core_layout", "refcnt",
                                            "section_addr", "num_sections")}
        cl = prog.type("struct module_layout")
        lay["init_layout"] = offsetof(t, "init_layout")
        for n in ("base", "size", "text_size", "ro_size"):
            lay[f"core_layout.{n}"] = lay["core_layout"] + offsetof(cl, n)
            lay[f"init_layout.{n}"] = lay["init_layout"] + offsetof(cl, n)
        lay["sizeof"] = t.size
        _LAYOUT[id(prog)] = lay
    return _LAYOUT[id(prog)]


def _u(raw: bytes, off: int, n: int = 8, signed: bool = False) -> int:
    return int.from_bytes(raw[off : off + n], "little", signed=signed)


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def read_modules(prog, read: Read) -> list[ModuleView]:
    """Every module on the kernel's list, newest first (as /proc/modules)."""
    lay = _layout(prog)
    head = prog["modules"].address_
    out: list[ModuleView] = []
    p = _u(read(head, 8), 0)
    while p != head and len(out) < 4096:
        addr = p - lay["list"]
        raw = read(addr, lay["sizeof"])
        n = _u(raw, lay["num_sections"], 4)
        secs = read(_u(raw, lay["section_addr"]), 8 * n) if n else b""
        out.append(ModuleView(
            addr=addr, name=_cstr(raw[lay["name"]:]),
            state=STATES.get(_u(raw, lay["state"], 4), "?"),
            base=_u(raw, lay["core_layout.base"]), size=_u(raw, lay["core_layout.size"], 4),
            text_size=_u(raw, lay["core_layout.text_size"], 4),
            ro_size=_u(raw, lay["core_layout.ro_size"], 4),
            refcnt=_u(raw, lay["refcnt"], 4, signed=True), taints=_u(raw, lay["taints"], 4),
            srcversion=_cstr(raw[lay["srcversion"]:]), init=_u(raw, lay["init"]),
            exit=_u(raw, lay["exit"]),
            section_addr=[_u(secs, 8 * i) for i in range(n)],
            init_base=_u(raw, lay["init_layout.base"]),
            init_size=_u(raw, lay["init_layout.size"], 4),
            init_text_size=_u(raw, lay["init_layout.text_size"], 4)))
        p = _u(raw, lay["list"])
    return out


def format_proc_modules(mods: list[ModuleView]) -> str:
    """``/proc/modules`` as Linux 6.1 prints it: ``name size refcount deps state address
    (taints)``; deps are "-" (modules do not link against each other here), or
    "[permanent]," for a module with an init but no exit (it cannot be unloaded)."""
    lines = []
    for m in mods:
        deps = "[permanent]," if m.init and not m.exit else "-"
        line = f"{m.name} {m.size + m.init_size} {m.refcnt} {deps} {m.state} 0x{m.base:016x}"
        if m.taints:
            line += f" {m.flags}"
        lines.append(line + "\n")
    return "".join(lines)


@dataclass(frozen=True)
class ModuleSymbol:
    name: str
    address: int
    size: int
    kind: str  # "func", "object" or "label" (an assembly symbol without .type)
    glob: bool


class ModuleElf:
    """The host's view of a built ``.ko``: section names and symbols by section."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as f:
            elf = ELFFile(f)
            self.section_names = [s.name for s in elf.iter_sections()]
            self.alloc = [bool(s["sh_flags"] & 2) for s in elf.iter_sections()]
            self.sizes = [s["sh_size"] for s in elf.iter_sections()]
            symtab = elf.get_section_by_name(".symtab")
            self._syms = []
            for s in (symtab.iter_symbols() if symtab is not None else []):
                typ = s["st_info"]["type"]
                shndx = s["st_shndx"]
                glob = s["st_info"]["bind"] != "STB_LOCAL"
                if not isinstance(shndx, int) or not s.name or not (
                        typ in ("STT_FUNC", "STT_OBJECT") or (typ == "STT_NOTYPE" and glob)):
                    continue
                kind = {"STT_FUNC": "func", "STT_OBJECT": "object"}.get(typ, "label")
                self._syms.append((s.name, shndx, s["st_value"], s["st_size"], kind, glob))

    def symbols(self, section_addr: list[int]) -> list[ModuleSymbol]:
        """The symbols at their load addresses (sections the kernel did not load skipped)."""
        out = []
        for name, shndx, value, size, kind, glob in self._syms:
            if shndx < len(section_addr) and section_addr[shndx]:
                out.append(ModuleSymbol(name, section_addr[shndx] + value, size, kind, glob))
        return out

    def section_addresses(self, section_addr: list[int]) -> dict[str, int]:
        """Loaded section name -> address (for ``add-symbol-file -s``)."""
        return {n: a for n, a in zip(self.section_names, section_addr, strict=False)
                if a and n}


class ModuleSymbols:
    """Address and name lookup over the symbols of the loaded modules."""

    def __init__(self, entries: list[tuple[ModuleView, list[ModuleSymbol]]]) -> None:
        self.entries = entries
        flat = sorted(((s.address, s, v) for v, syms in entries for s in syms),
                      key=lambda t: t[0])
        self._starts = [a for a, _, _ in flat]
        self._flat = flat

    def lookup(self, addr: int) -> tuple[ModuleView, ModuleSymbol, int, int] | None:
        """(module, symbol, offset, size) as the kernel's %pS computes them: the
        size is the distance to the next symbol or to the end of the region."""
        for v, _ in self.entries:
            area = v.area_of(addr)
            if area is not None:
                break
        else:
            return None
        i = bisect.bisect_right(self._starts, addr) - 1
        while i >= 0 and self._flat[i][2] is not v:
            i -= 1
        if i < 0 or self._flat[i][0] < area[0]:
            return None
        # several names at one address (an alias such as init_module): the kernel keeps
        # the first in symbol-table order, which the stable sort kept first too
        while i > 0 and self._flat[i - 1][0] == self._flat[i][0] and self._flat[i - 1][2] is v:
            i -= 1
        a, sym, _ = self._flat[i]
        end = area[2] if addr < area[2] else area[1]
        nxt = next((b for b, _, w in self._flat[i + 1 :] if w is v and b > a), end)
        return v, sym, addr - a, min(nxt, end) - a

    def symbolize(self, addr: int) -> str | None:
        hit = self.lookup(addr)
        if hit is None:
            return None
        v, sym, off, size = hit
        return f"{sym.name}+{off:#x}/{size:#x} [{v.name}]"

    def find(self, name: str) -> list[tuple[ModuleView, ModuleSymbol]]:
        """Every module symbol called ``name`` (``mod:name`` narrows to one module)."""
        mod = None
        if ":" in name:
            mod, name = name.split(":", 1)
        return [(v, s) for v, syms in self.entries if mod is None or v.name == mod
                for s in syms if s.name == name]
