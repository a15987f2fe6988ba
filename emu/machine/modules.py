"""Layer 5: loadable modules from Python (mixed into :class:`emu.Machine`).

The host builds the module (``emu.build.module``), copies the ``.ko`` bytes
into a ``vmalloc()``ed kernel buffer and calls the kernel's
``load_module(buf, len)``; everything else (validation, layout, relocation,
init) happens in the guest (``kernel/module.c``).  Refusals become
:class:`emu.ModuleError` with insmod's wording and the kernel's own lines.

>>> mod = m.load_module("mydev.c")           # doctest: +SKIP
>>> m.call("mydev_alloc", 3)                 # doctest: +SKIP
>>> print(m.proc_modules())                  # doctest: +SKIP
mydev 16384 0 - Live 0xffffffffa0000000 (O)
>>> mod.unload()                             # doctest: +SKIP
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from emu.build import layout as L
from emu.build.module import ModuleBuild, build_module, find_built
from emu.core.errors import BadArgument, KmemuError, ModuleError
from emu.kernel import jump_label as jl
from emu.kernel import modules as modv
from emu.kernel import pagetable, sections

if TYPE_CHECKING:
    from emu.kernel.symbols import Params
    from emu.machine.core import Machine

ModuleSpec = "str | Path | Sequence[str | Path]"

# kmod's wording for the errors insmod reports specially (libkmod mod_strerror)
PAGE_SIZE = 1 << 12
_CODE_VERSIONS = itertools.count(1)  # 0: a machine's text before any module was loaded

_INSMOD_ERRORS = {
    8: "Invalid module format",
    2: "Unknown symbol in module, or unknown parameter (see dmesg)",
}


@functools.lru_cache(maxsize=64)
def _elf(path: Path) -> modv.ModuleElf:
    return modv.ModuleElf(path)


@functools.lru_cache(maxsize=64)
def _params(path: Path) -> dict[str, Params]:
    from elftools.elf.elffile import ELFFile

    from emu.kernel.symbols import _dwarf_params

    with path.open("rb") as f:
        elf = ELFFile(f)
        return _dwarf_params(elf) if elf.has_dwarf_info() else {}


@dataclass
class Module:
    """A module loaded in a machine.  ``elf`` is the built ``.ko`` (its DWARF is
    the module's); ``sections`` maps each loaded section to its address."""

    machine: Machine
    name: str
    base: int
    size: int
    elf: Path | None
    sections: dict[str, int]
    view: modv.ModuleView

    def symbol(self, name: str) -> int:
        """Address of one of the module's functions or variables."""
        for _v, s in self.machine._module_syms().find(f"{self.name}:{name}"):  # noqa: SLF001
            return s.address
        raise BadArgument(f"module {self.name} has no symbol {name!r}")

    def unload(self) -> None:
        self.machine.unload_module(self.name)

    def add_symbol_file(self) -> str:
        """gdb's command to load this module's symbols at their addresses."""
        if self.elf is None:
            raise ModuleError(f"module {self.name}: its built .ko is no longer in the cache")
        secs = sorted(self.sections.items(), key=lambda t: (t[0] != ".text", t[1]))
        return f"add-symbol-file {self.elf}" + "".join(f" -s {n} {a:#x}" for n, a in secs)


def _spec_paths(spec: object, base: Path | None = None) -> list[Path]:
    items = [spec] if isinstance(spec, (str, Path)) else spec
    if not isinstance(items, (list, tuple)) or not items:
        raise BadArgument(f"a module is a source path or a list of paths, got {spec!r}")
    out = []
    for s in items:
        if not isinstance(s, (str, Path)):
            raise BadArgument(f"module source must be a path, got {s!r}")
        p = Path(s)
        out.append(p if base is None or p.is_absolute() else base / p)
    return out


class ModuleMixin:
    _modsyms: tuple[int, modv.ModuleSymbols] | None = None
    _module_code_seen = False
    #: which module text guest memory holds: a number never used before is taken
    #: whenever it changes (load, unload, a host write over it); snapshots keep it
    _code_version = 0
    _text_frames: tuple[int, frozenset[int]] | None = None
    _view: tuple[int, DebugView | None] | None = None
    #: (the kernel's symbols, the physical address of modules_generation): _debug_view
    #: reads the counter there (the kernel image's mapping never changes)
    _generation_at: tuple[object, int] | None = None

    @functools.cached_property
    def _views(self) -> dict[tuple, DebugView | None]:
        return {}

    # ------------------------------------------------------------------ load / unload
    def load_module(self: Machine, *sources: str | Path, name: str | None = None,
                    cflags: Sequence[str] = ()) -> Module:
        """Build ``sources`` into one module and load it (init runs).

        :class:`emu.ModuleError` when the build fails (the compiler's
        diagnostics) or the kernel refuses (insmod's words, then the kernel's
        lines); nothing stays loaded then.  An oops in init raises
        :class:`emu.GuestOops` and leaves the module "Loading", as Linux does.
        """
        self._require_ready()
        b = build_module(list(sources), name, cflags,  # it checks sources and cflags
                         kasan=getattr(self, "kasan", False))
        return self.load_built_module(b)

    def load_built_module(self: Machine, b: ModuleBuild) -> Module:
        """Load an already built module (``emu.build.module.build_module``)."""
        if not isinstance(b, ModuleBuild):
            raise BadArgument(f"expected a ModuleBuild from build_module(), got {b!r}")
        return self.insert_module(b.path.read_bytes(), b.name)

    def insert_module(self: Machine, image: bytes, name: str = "") -> Module:
        """kmemu's init_module(2): hand ELF bytes to the kernel's loader as they are
        (``name`` only words the error; the kernel reads the real one from .modinfo)."""
        self._require_ready()
        if not isinstance(image, (bytes, bytearray)) or not image:
            raise BadArgument("insert_module needs the module's ELF bytes")
        what = f"module {name}" if name else "module"
        buf = self.call("vmalloc", len(image))
        if not buf:
            raise ModuleError(f"could not insert {what}: Cannot allocate memory", 12)
        self.write_virt(buf, bytes(image))
        self._module_text_changes()
        mark = len(self.console)
        try:
            ret = self.call("load_module", buf, len(image))
        finally:
            self._modules_changed()
        err = -((ret ^ 0x80000000) - 0x80000000)  # int result, masked to 32 bits
        if err:
            said = self.console[mark:].rstrip()
            why = _INSMOD_ERRORS.get(err, os.strerror(err))
            raise ModuleError(f"could not insert {what}: {why}" + (f"\n{said}" if said else ""),
                              err)
        return self.modules()[0]  # the newest

    def unload_module(self: Machine, name: str) -> None:
        """``rmmod NAME``: the module's exit runs, then everything is freed."""
        self._require_ready()
        if not isinstance(name, str) or not name or len(name.encode()) >= 56:
            raise BadArgument(f"module name must be a short string, got {name!r}")
        if name not in {v.name for v in self._module_views()}:
            raise ModuleError(f"Module {name} is not currently loaded", 2)
        buf = self.symbol("kmemu_arg_buf")
        self.write_virt(buf, name.encode() + b"\0")
        try:
            ret = self.call("delete_module", buf)
        finally:
            self._modules_changed()
            self._module_text_changes()  # its pages may hold other code next
        err = -((ret ^ 0x80000000) - 0x80000000)
        if err:
            raise ModuleError(f"could not remove module {name}: {os.strerror(err)}", err)

    # ------------------------------------------------------------------ views
    def _module_views(self: Machine) -> list[modv.ModuleView]:
        return modv.read_modules(self.kernel_program, self.read_virt)

    def describe_section_address(self: Machine, addr: int) -> str | None:
        """The section of the kernel image (either alias) or of a loaded module that
        holds ``addr``, e.g. ``'.rodata of the kernel image'``; None elsewhere."""
        pagetable.check_address(addr)
        sym = self.symbol
        b = sections.ImageBounds(sym("_stext"), sym("__start_rodata"), sym("__end_rodata"),
                                 sym("_sdata"), sym("__bss_start"), sym("__kernel_end"))
        where = sections.image_section(addr, b, L.PAGE_OFFSET, b.stext - L.KERNEL_VIRT)
        if where is not None or not modv.MODULES_VADDR <= addr < modv.MODULES_END:
            return where
        for v in self._module_views():
            if not v.base <= addr < v.base + v.size:
                continue
            path = find_built(v.srcversion)
            if path is None:
                return f"module {v.name}"
            elf = _elf(path)
            secs = [(n, a, sz) for n, a, sz in zip(elf.section_names, v.section_addr, elf.sizes,
                                                   strict=False) if a]
            return sections.module_section(addr, v.name, secs) or f"module {v.name}"
        return None

    def modules(self: Machine) -> list[Module]:
        """The loaded modules, newest first (as /proc/modules lists them)."""
        return [self._module_obj(v) for v in self._module_views()]

    def module(self: Machine, name: str) -> Module:
        for v in self._module_views():
            if v.name == name:
                return self._module_obj(v)
        raise BadArgument(f"no module {name!r} is loaded")

    def _module_obj(self: Machine, v: modv.ModuleView) -> Module:
        path = find_built(v.srcversion)
        secs = _elf(path).section_addresses(v.section_addr) if path else {}
        return Module(self, v.name, v.base, v.size, path, secs, v)

    def module_part(self: Machine, addr: int) -> tuple[str, str] | None:
        """(module name, which part of it) for an address in a loaded module: a
        section with its permissions, or the loader's own data at the end."""
        for v in self._module_views():
            area = v.area_of(addr)
            if area is None:
                continue
            path = find_built(v.srcversion)
            elf = _elf(path) if path else None
            ro_end = v.base + v.ro_size if area[0] == v.base else area[1]  # init: no RO split
            perms = ("text, RX" if addr < area[2] else
                     "read-only data, RO+NX" if addr < ro_end else "data, RW+NX")
            for i, a in enumerate(v.section_addr):
                size = elf.sizes[i] if elf and i < len(elf.sizes) else 0
                if a and a <= addr < a + max(size, 1) and elf:
                    return v.name, f"{elf.section_names[i]}+{addr - a:#x} ({perms})"
            if area[0] == v.base and addr >= v.addr:
                return v.name, "struct module (the loader's own record), RW+NX"
            return v.name, f"padding or the loader's copies of its symbol tables ({perms})"
        return None

    def proc_modules(self: Machine) -> str:
        """``/proc/modules``."""
        return modv.format_proc_modules(self._module_views())

    def proc_modules_line(self: Machine, mod: Module) -> str:
        """One module's ``/proc/modules`` line."""
        if not isinstance(mod, Module):
            raise BadArgument(f"expected a Module, got {mod!r}")
        return modv.format_proc_modules([mod.view]).rstrip("\n")

    # ------------------------------------------------------------------ symbols
    def _modules_changed(self: Machine) -> None:
        self._modsyms = None
        self._view = None
        self._resolved.clear()
        self._arg_bounds.clear()  # a module at a reused address has other parameters
        self._module_params.clear()
        self._call_plans.clear()

    def _debug_view(self: Machine) -> DebugView | None:
        """Symbols, lines, CFI and drgn over the kernel plus the loaded modules, or
        None when no module is loaded (or the list cannot be read).  Cached per
        module set: restoring a snapshot with the same modules reuses it."""
        if self._kernel_symbols is None or self.state == "off":
            return None
        try:
            gen = self._modules_generation()
            if self._view is not None and self._view[0] == gen:
                return self._view[1]
            views = self._module_views()
        except KmemuError:
            return None
        key = tuple((v.name, v.srcversion, v.base) for v in views)
        if key not in self._views:
            self._views[key] = _build_view(self, views) if views else None
        self._view = (gen, self._views[key])
        return self._view[1]

    def _modules_generation(self: Machine) -> int:
        """The kernel's modules_generation (a new number at every load and unload).
        _debug_view asks at every symbol or line lookup once a module has been seen
        (a stepi asks several times): the symbol's physical address is found once per
        kernel, so each ask is one 8-byte read of RAM, not a lookup and a page walk
        (was most of stepping's time after a module test had run on the machine)."""
        ks = self._kernel_symbols
        at = self._generation_at
        if at is None or at[0] is not ks:
            pa = self.translate(self.symbol("modules_generation"))
            self._check_ram(pa, 8)
            at = self._generation_at = (ks, pa)
        return int.from_bytes(self.uc.mem_read(at[1], 8), "little")

    def _module_text_changes(self: Machine) -> None:
        """Module code changes (or is about to) at addresses that may have held other
        code.  Unicorn's translated blocks survive a snapshot restore, and the guest's
        own writes after a restore were measured not to invalidate them (a second
        module at the same address ran the first one's init), so drop them all and
        start a new code version.  Contract: the translation cache only ever holds
        code of the current ``_code_version``, because every change of it flushes."""
        self._module_code_seen = True
        self._code_version = next(_CODE_VERSIONS)
        self._text_frames = None
        self.uc.ctl_flush_tb()

    def static_keys(self: Machine) -> list[jl.StaticKey]:
        """The kernel's static keys, their state and their patch sites
        (``emu.kernel.jump_label``); ``key.consistent`` says the bytes match."""
        assert self.symbols is not None
        start = self.symbols.address("__start___jump_table")
        stop = self.symbols.address("__stop___jump_table")
        return jl.static_keys(self.read_virt, start, stop,
                              lambda a: self.symbolize(a).split("+")[0])

    def _kernel_text_poked(self: Machine) -> None:
        """The guest's text_poke() rewrote code (a static key changed).  Unicorn
        re-translates the written page by itself (tests/kernel/test_jump_label.py),
        so nothing is flushed now; but a snapshot from before holds the old bytes,
        and restoring it must drop translations of the new ones: a new code version."""
        self._code_version = next(_CODE_VERSIONS)
        self._text_frames = None

    def _restore_code_version(self: Machine, version: int) -> None:
        """Guest memory went back to a snapshot holding module text ``version``:
        the translated blocks are still right when that is the version they were
        made from (the common case: KUnit and the ``machine`` fixture restore the
        same snapshot again and again), and are dropped otherwise.  The same
        version means the same loaded modules, so the caches of module symbols,
        resolved calls and argument bounds stay valid too."""
        if version != self._code_version:  # every load and unload takes a new version
            self._code_version = version
            self._text_frames = None
            self.uc.ctl_flush_tb()
            self._modules_changed()  # the module list went back with guest memory

    def _host_writes(self: Machine, ranges: list[tuple[int, int]]) -> None:
        """The host is about to write these physical (address, length) ranges: when
        one touches a page of module code (by any virtual address), that code is new."""
        if not self._module_code_seen:
            return
        frames = self._module_text_frames()
        if frames and any(not frames.isdisjoint(range(pa >> 12, (pa + n - 1 >> 12) + 1))
                          for pa, n in ranges if n):
            self._module_text_changes()

    def _module_text_frames(self: Machine) -> frozenset[int]:
        """Physical page frames of the loaded modules' text (core and init), cached
        per code version (only a load, an unload or a restore remaps them)."""
        if self._text_frames is not None and self._text_frames[0] == self._code_version:
            return self._text_frames[1]
        out: set[int] = set()
        try:
            views = self._module_views()
        except KmemuError:
            views = []
        for v in views:
            for start, _end, text_end in v.areas():
                for va in range(start & ~(PAGE_SIZE - 1), text_end, PAGE_SIZE):
                    try:
                        out.add(pagetable.walk(self._read_u64, self.cr3, va).pa >> 12)
                    except KmemuError:
                        continue
        frames = frozenset(out)
        self._text_frames = (self._code_version, frames)
        return frames

    def _module_syms(self: Machine) -> modv.ModuleSymbols:
        gen = self.read_u64(self.symbol("modules_generation"))
        if self._modsyms is None or self._modsyms[0] != gen:
            entries = []
            for v in self._module_views():
                path = find_built(v.srcversion)
                entries.append((v, _elf(path).symbols(v.section_addr) if path else []))
            self._modsyms = (gen, modv.ModuleSymbols(entries))
        return self._modsyms[1]

    def _module_symbolize(self: Machine, addr: int) -> str | None:
        if not modv.MODULES_VADDR <= addr < modv.MODULES_END or self.state == "off":
            return None
        try:
            return self._module_syms().symbolize(addr)
        except Exception:  # noqa: BLE001 - symbolising must never break a report
            return None

    def _resolve_module_function(self: Machine, fn: str) -> tuple[int, Params | None] | None:
        """A module function by name or "mod:func"; BadArgument when ambiguous."""
        if self.state == "off":
            return None
        hits = [(v, s) for v, s in self._module_syms().find(fn) if s.kind == "func"]
        if len(hits) > 1:
            glob = [(v, s) for v, s in hits if s.glob]
            hits = glob if len(glob) == 1 else hits
        if len(hits) > 1:
            where = ", ".join(f"{v.name}:{s.name}" for v, s in hits)
            raise BadArgument(f"{fn!r} is defined in more than one module ({where}); "
                              "say which as MODULE:FUNCTION")
        if not hits:
            if ":" in fn:
                mod, _, func = fn.partition(":")
                known = {v.name for v in self._module_views()}
                raise BadArgument(f"no module {mod!r} is loaded" if mod not in known
                                  else f"module {mod} has no function {func!r}")
            return None
        v, s = hits[0]
        path = find_built(v.srcversion)
        return s.address, (_params(path).get(s.name) if path else None)


class DebugView:
    """The kernel's debug information with the loaded modules' added: each module's
    ``.ko`` linked at its load addresses (``emu.build.module.link_for_debug``)."""

    def __init__(self, m: Machine, parts: list[tuple[modv.ModuleView, Path]]) -> None:
        from emu.kernel.symbols import Symbols, _read_symtab
        from emu.kernel.unwind import CfiTable

        kernel = m._syms()  # noqa: SLF001
        assert m.artifacts is not None
        self._machine = m
        self._kernel_elf = m.artifacts.elf
        self.modules = parts
        mods = [Symbols([s for s in _read_symtab(p) if v.base <= s.address < v.base + v.size],
                        p) for v, p in parts]
        self.symbols = Symbols.combined(kernel, mods)
        self._lines = None  # the combined LineTable, on first use (lines)
        kcfi = CfiTable.load(self._kernel_elf)
        top = max(v.base + v.size for v, _ in parts)
        self.cfi = CfiTable.combined([kcfi, *(CfiTable.load(p) for _, p in parts)],
                                     (kcfi.text[0], top) if kcfi.text else None)
        self._program = None

    @property
    def lines(self):  # -> emu.kernel.lines.LineTable
        """The kernel's and the modules' line tables as one, made on first use: most
        views only name symbols (a report's backtrace, a call by name), and merging and
        sorting ~40,000 rows is most of a view's cost."""
        if self._lines is None:
            from emu.kernel.lines import LineTable

            self._lines = LineTable.combined(
                [self._machine.lines_kernel(),
                 *(LineTable.load(p, full_paths=True) for _, p in self.modules)])
        return self._lines

    @property
    def program(self):  # -> drgn.Program
        if self._program is None:
            from emu.kernel.types import kernel_program

            self._program = kernel_program(
                self._kernel_elf, self._machine.read_virt,
                [(p, (v.base, v.base + v.size)) for v, p in self.modules])
        return self._program


def debug_files(m: Machine, views: list[modv.ModuleView]) -> list[tuple[modv.ModuleView, Path]]:
    """Each module with its ``.ko`` linked at its load addresses (cached on disk);
    modules whose ``.ko`` is gone from the build cache are left out."""
    from emu.build.module import link_for_debug

    assert m.artifacts is not None
    parts = []
    for v in views:
        ko = find_built(v.srcversion)
        if ko is None:
            continue  # built elsewhere and gone from the cache: no debug info for it
        elf = _elf(ko)
        secs = elf.section_addresses(v.section_addr)
        gone = [n for i, n in enumerate(elf.section_names)  # freed .init* sections
                if elf.alloc[i] and n and n not in secs]
        parts.append((v, link_for_debug(ko, m.artifacts.elf, secs, {"__this_module": v.addr},
                                        gone)))
    return parts


def _build_view(m: Machine, views: list[modv.ModuleView]) -> DebugView | None:
    parts = debug_files(m, views)
    return DebugView(m, parts) if parts else None


def load_modules(m: Machine, specs: Sequence[object], base: Path | None = None) -> list[Module]:
    """Load each spec (a path, or a list of paths for a multi-file module)."""
    if isinstance(specs, (str, Path)):
        specs = [specs]
    return [m.load_module(*_spec_paths(s, base)) for s in specs]
