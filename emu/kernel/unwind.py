"""Backtraces of the kernel stack: DWARF CFI where the compiler left it, frame pointers elsewhere.

Layer 4 (``emu.kernel``).  The kernel is built with ``-O2 -g
-fno-omit-frame-pointer -fno-asynchronous-unwind-tables``: every C function
has an FDE in ``.debug_frame`` and keeps a frame pointer, but functions are
shrink-wrapped (``kmalloc`` tests its argument before ``push %rbp``), so the
frame-pointer chain alone is wrong at the first instructions of a function
and on its early-exit paths.  One step, from a frame to its caller:

* **CFI** (the pc is in an FDE): the row for the pc gives the CFA (``rsp`` or
  ``rbp`` plus an offset), the return address at ``CFA-8`` and where ``rbp``
  and the other callee-saved registers were saved.  Exact at every
  instruction.  An undefined return address (``kmemu_call_return``'s CFI)
  ends the trace.
* **Function entry** (frame 0 only, no FDE, pc at a symbol's first byte): the
  return address is at ``[rsp]``.
* **Frame pointers** (assembly in ``entry.S``/``head.S``): return address at
  ``[rbp+8]``, caller's ``rbp`` at ``[rbp]``, CFA ``rbp+16``.
* **Trap frames**: a return into ``common_entry`` (after ``call do_trap``)
  means an interrupt or exception: the interrupted context is the
  ``struct pt_regs`` the entry code saved at ``rbp+16`` (``traps.h``), so the
  trace continues exactly into the interrupted function, even at its first
  instruction.

The trace ends, without raising, at a zero or unreadable return address, a
pc outside kernel text, a stack pointer that does not grow, ``max_frames``,
or an outermost function (the host-call return stub, the idle loop,
``_start``: below them is no caller worth showing).  Return addresses are
looked up at ``pc-1`` (the call instruction) for CFI and line numbers, since
a call to a ``noreturn`` function may be the last instruction of its function
(the host plants ``kmemu_call_return+1`` as every call's return address for
the same reason; a planted return to the first byte of an outermost function
is looked up as it is).  Inlined functions do not get frames of their own here:
emu.debug.frames lists them as gdb's frames over these.

>>> cfi = CfiTable.load(m.artifacts.elf)                                 # doctest: +SKIP
>>> frames = unwind(m.registers(), m.read_u64, cfi, m.symbols, m.lines)  # doctest: +SKIP
>>> print(format_backtrace(frames))                                      # doctest: +SKIP
#0  0xffffffff80107ac0 in ___slab_alloc+0x0/0x4b7 at slub.c:183
#1  0xffffffff8010868f in __kmalloc_cache+0xef/0x15a at slub.c:232
#2  0xffffffff80101bce in kmalloc+0x5e/0xe9 at kmalloc.c:36
#3  0xffffffff801010a6 in kmemu_call_return+0x1/0x16 at entry.S:116
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elftools.elf.elffile import ELFFile

from emu.kernel.filecache import load_on_disk, load_per_file

# DWARF register numbers of x86-64 (System V psABI, figure 3.36); 16 is the return address.
DWARF_REGS = {0: "rax", 1: "rdx", 2: "rcx", 3: "rbx", 4: "rsi", 5: "rdi", 6: "rbp", 7: "rsp",
              8: "r8", 9: "r9", 10: "r10", 11: "r11", 12: "r12", 13: "r13", 14: "r14",
              15: "r15"}
RA_REG = 16
CALLEE_SAVED = ("rbx", "rbp", "r12", "r13", "r14", "r15")
# struct pt_regs (kernel/include/traps.h), in memory order from the lowest address.
PT_REGS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
           "rdx", "rsi", "rdi", "vector", "error_code", "rip", "cs", "rflags", "rsp", "ss")
TRAP_ENTRY = "common_entry"  # entry.S: builds pt_regs and calls do_trap
OUTERMOST = frozenset({"kmemu_call_return", "kmemu_call_oops", "kmemu_idle_loop", "_start"})
U64 = (1 << 64) - 1


# --- call frame information ----------------------------------------------------------------


@dataclass(frozen=True)
class CfiRow:
    """One row of an FDE's table: from ``pc`` on, until the next row.

    ``cfa_reg`` is a DWARF register number; ``rules`` maps a DWARF register to
    ``("offset", n)`` (saved at CFA+n), ``("val_offset", n)`` (its value is
    CFA+n), ``("register", r)`` (held in register r), ``("same", 0)`` or
    ``("undefined", 0)``.
    """

    pc: int
    cfa_reg: int
    cfa_offset: int
    rules: tuple[tuple[int, tuple[str, int]], ...] = ()

    def rule(self, reg: int) -> tuple[str, int] | None:
        return next((r for n, r in self.rules if n == reg), None)


@dataclass(frozen=True)
class Fde:
    """The CFI of one function: ``[start, end)`` and its rows (None: a rule we cannot use)."""

    start: int
    end: int
    rows: tuple[CfiRow | None, ...]
    row_pcs: tuple[int, ...]


_RULE_KINDS = {"OFFSET": "offset", "VAL_OFFSET": "val_offset", "REGISTER": "register",
               "SAME_VALUE": "same", "UNDEFINED": "undefined"}


class CfiTable:
    """The ``.debug_frame`` of the kernel ELF, by pc.

    >>> cfi = CfiTable.load(elf_path)                    # doctest: +SKIP
    >>> cfi.row(syms.address("kmalloc"))                 # doctest: +SKIP
    CfiRow(pc=0xffffffff80101b70, cfa_reg=7, cfa_offset=8, rules=((16, ('offset', -8)),))
    """

    def __init__(self, fdes: list[Fde], text: tuple[int, int] | None = None) -> None:
        self.fdes = sorted(fdes, key=lambda f: f.start)
        self._starts = [f.start for f in self.fdes]
        self.text = text  # [start, end) of .text, when known

    @classmethod
    def load(cls, elf_path: Path | str) -> CfiTable:
        """Parse ``.debug_frame`` (pyelftools); cached per (path, mtime) in the process
        and on disk beside the ELF for the next process (load_on_disk: the kernel's
        parse took ~150 ms, reading it back ~10 ms, in every `kmemu gdb` server, CLI
        debugger and test process that unwinds)."""
        return load_per_file(_CACHE, elf_path, lambda p: cls(*load_on_disk(
            p, "cfi", _CFI_VERSION, cls._parse)))

    @staticmethod
    def _parse(path: Path) -> tuple[list[Fde], tuple[int, int] | None]:
        """(the FDEs, .text's [start, end)) of one ELF."""
        fdes: list[Fde] = []
        with path.open("rb") as f:
            elf = ELFFile(f)
            sec = elf.get_section_by_name(".text")
            text = (sec["sh_addr"], sec["sh_addr"] + sec["sh_size"]) if sec else None
            if not elf.has_dwarf_info():
                return [], text
            dwarf = elf.get_dwarf_info()
            if not dwarf.has_CFI():
                return [], text
            for entry in dwarf.CFI_entries():
                if "initial_location" not in entry.header:
                    continue  # a CIE (or a terminator)
                start = entry.header["initial_location"]
                table = entry.get_decoded().table
                fdes.append(Fde(start, start + entry.header["address_range"],
                                tuple(_row(r) for r in table), tuple(r["pc"] for r in table)))
        return fdes, text

    @classmethod
    def combined(cls, tables: list[CfiTable], text: tuple[int, int] | None) -> CfiTable:
        """One table over several (kernel and modules); ``text`` spans all their code."""
        return cls([f for t in tables for f in t.fdes], text)

    def fde(self, pc: int) -> Fde | None:
        i = bisect.bisect_right(self._starts, pc) - 1
        if i >= 0 and self.fdes[i].start <= pc < self.fdes[i].end:
            return self.fdes[i]
        return None

    def covers(self, pc: int) -> bool:
        return self.fde(pc) is not None

    def row(self, pc: int) -> CfiRow | None:
        """The rule row in effect at ``pc``; None outside every FDE or for a rule kmemu
        does not evaluate (DWARF expressions)."""
        f = self.fde(pc)
        if f is None:
            return None
        i = bisect.bisect_right(f.row_pcs, pc) - 1
        return f.rows[i] if i >= 0 else None


_CACHE: dict[tuple[str, int], CfiTable] = {}
#: Names the shape of the saved FDEs (load_on_disk): change it with Fde, CfiRow or _parse.
_CFI_VERSION = "cfi-1"


def _row(r: dict[Any, Any]) -> CfiRow | None:
    cfa = r["cfa"]
    if cfa.expr is not None or cfa.reg is None:
        return None
    rules = []
    for reg, rule in r.items():
        if not isinstance(reg, int):
            continue
        kind = _RULE_KINDS.get(rule.type)
        if kind is None:
            rules.append((reg, ("unknown", 0)))
        else:
            rules.append((reg, (kind, int(rule.arg or 0))))
    return CfiRow(r["pc"], cfa.reg, cfa.offset, tuple(sorted(rules)))


# --- frames ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """One frame of a backtrace, innermost first.

    ``pc`` is where the frame executes (for callers: the return address);
    ``sp`` its ``rsp``; ``cfa`` its canonical frame address (``rsp`` just
    before the call that made it, so ``rsp >= cfa`` once it has returned), None
    when unknown.  ``function``/``offset``/``size`` come from the symbol table,
    ``file``/``line`` from the line table (at ``pc-1`` for return addresses).
    ``found_by`` says how the frame's registers were recovered: ``registers``
    (frame 0), ``cfi``, ``function entry``, ``frame pointer`` or ``trap frame``
    (then ``vector`` is the interrupt or exception that stopped it).
    ``registers`` holds the values known in this frame (``rip``, ``rsp`` and the
    callee-saved registers; every general register and ``rflags`` in a frame
    found by ``trap frame``).
    """

    level: int
    pc: int
    sp: int
    cfa: int | None
    function: str | None
    offset: int
    size: int
    file: str | None
    line: int | None
    found_by: str
    vector: int | None = None
    registers: Mapping[str, int] = field(default_factory=dict, compare=False)

    @property
    def where(self) -> str:
        """``kmalloc+0x19/0xe9`` (Linux's ``%pS``), or the bare address."""
        if self.function is None:
            return f"{self.pc:#x}"
        return f"{self.function}+{self.offset:#x}/{self.size:#x}"


ReadU64 = Callable[[int], int]


def _safe(read_u64: ReadU64, addr: int) -> int | None:
    """``read_u64(addr)``, or None for an address that cannot be read (never raises)."""
    if not 0 <= addr <= U64 - 7:
        return None
    try:
        return read_u64(addr) & U64
    except Exception:  # any reader failure ends the trace, by contract
        return None


def _text_range(cfi: CfiTable | None, symbols: Any) -> tuple[int, int] | None:
    if cfi is not None and cfi.text is not None:
        return cfi.text
    by_name = getattr(symbols, "by_name", {})
    if "_stext" in by_name and "_etext" in by_name:
        return by_name["_stext"].address, by_name["_etext"].address
    return None


def _lookup_pc(pc: int, exact: bool, symbols: Any, outermost: frozenset[str]) -> int:
    """Where to look a frame up: the pc itself for frame 0 and interrupted frames, the call
    instruction (pc-1) for return addresses, except the ones the host plants (a return
    to the first byte of an outermost trampoline such as ``kmemu_call_return``)."""
    if exact:
        return pc
    hit = symbols.lookup(pc) if symbols is not None else None
    if hit is not None and hit[1] == 0 and hit[0].name in outermost:
        return pc
    return pc - 1


def _make_frame(level: int, regs: dict[str, int], cfa: int | None, found_by: str, at: int,
                symbols: Any, lines: Any, vector: int | None) -> Frame:
    pc = regs["rip"]
    hit = symbols.lookup(at) if symbols is not None else None
    name, off, size, start = None, 0, 0, None
    if hit is not None:
        sym = hit[0]
        name, off, size, start = sym.name, pc - sym.address, sym.size, sym.address
    file = line = None
    if lines is not None:
        row = lines.lookup(at)
        if row is not None and (start is None or row.address >= start):
            file, line = row.file, row.line
    return Frame(level, pc, regs["rsp"], cfa, name, off, size, file, line, found_by, vector,
                 dict(regs))


def _cfa_and_caller(regs: dict[str, int], at: int, level: int, read_u64: ReadU64,
                    cfi: CfiTable | None, symbols: Any
                    ) -> tuple[int | None, dict[str, int] | None, str, bool, int | None]:
    """This frame's CFA and its caller's registers: (cfa, caller, found_by, caller_exact,
    vector).  ``at`` is the pc to look the frame up at; ``caller`` None: the trace ends."""
    row = cfi.row(at) if cfi is not None else None
    if row is not None:
        return _step_cfi(regs, row, read_u64)
    hit = symbols.lookup(at) if symbols is not None else None
    if level > 0 and hit is not None and hit[0].name == TRAP_ENTRY:
        return _step_trap(regs, read_u64)
    if level == 0 and hit is not None and hit[1] == 0:  # at entry: nothing pushed yet
        ra = _safe(read_u64, regs["rsp"])
        if ra is None:
            return regs["rsp"] + 8, None, "", False, None
        caller = {**regs, "rip": ra, "rsp": regs["rsp"] + 8}
        return regs["rsp"] + 8, caller, "function entry", False, None
    return _step_fp(regs, read_u64)


def _step_cfi(regs: dict[str, int], row: CfiRow, read_u64: ReadU64
              ) -> tuple[int | None, dict[str, int] | None, str, bool, int | None]:
    base = regs.get(DWARF_REGS.get(row.cfa_reg, "?"))
    if base is None:
        return None, None, "", False, None
    cfa = (base + row.cfa_offset) & U64
    ra_rule = row.rule(RA_REG) or ("offset", -8)
    if ra_rule[0] != "offset":
        return cfa, None, "", False, None  # undefined return address: outermost
    ra = _safe(read_u64, cfa + ra_rule[1])
    if ra is None:
        return cfa, None, "", False, None
    caller = {r: regs[r] for r in CALLEE_SAVED if r in regs}
    for reg, (kind, arg) in row.rules:
        name = DWARF_REGS.get(reg)
        if name is None or name == "rsp":
            continue
        if kind == "offset":
            v = _safe(read_u64, cfa + arg)
            if v is None:
                caller.pop(name, None)
            else:
                caller[name] = v
        elif kind == "val_offset":
            caller[name] = (cfa + arg) & U64
        elif kind == "register" and DWARF_REGS.get(arg) in regs:
            caller[name] = regs[DWARF_REGS[arg]]
        elif kind in ("undefined", "unknown"):
            caller.pop(name, None)
    caller["rip"], caller["rsp"] = ra, cfa
    return cfa, caller, "cfi", False, None


def _step_fp(regs: dict[str, int], read_u64: ReadU64
             ) -> tuple[int | None, dict[str, int] | None, str, bool, int | None]:
    rbp = regs.get("rbp")
    if not rbp:
        return None, None, "", False, None
    cfa = (rbp + 16) & U64
    ra, saved = _safe(read_u64, rbp + 8), _safe(read_u64, rbp)
    if ra is None or saved is None:
        return cfa, None, "", False, None
    caller = {**{r: regs[r] for r in CALLEE_SAVED if r in regs}, "rbp": saved, "rip": ra,
              "rsp": cfa}
    return cfa, caller, "frame pointer", False, None


def _step_trap(regs: dict[str, int], read_u64: ReadU64
               ) -> tuple[int | None, dict[str, int] | None, str, bool, int | None]:
    """``common_entry`` after ``call do_trap``: ``rbp`` points at the fake frame record
    just below the ``struct pt_regs`` of the interrupted context."""
    rbp = regs.get("rbp")
    if not rbp:
        return None, None, "", False, None
    base = rbp + 16
    saved = {}
    for i, name in enumerate(PT_REGS):
        v = _safe(read_u64, base + 8 * i)
        if v is None:
            return None, None, "", False, None
        saved[name] = v
    # The interrupted context's registers are all known (frame-variable lookup
    # starts a fresh unwinding from them); its callers get callee-saved ones only.
    caller = {r: v for r, v in saved.items() if r not in ("vector", "error_code", "cs", "ss")}
    return base, caller, "trap frame", True, saved["vector"]


def unwind(regs: Mapping[str, int], read_u64: ReadU64, cfi: CfiTable | None, symbols: Any,
           lines: Any = None, max_frames: int = 64, *,
           outermost: frozenset[str] = OUTERMOST,
           text: tuple[int, int] | None = None) -> list[Frame]:
    """The frames of the stack described by ``regs`` (needs ``rip``, ``rsp``, ``rbp``;
    ``rbx``/``r12``-``r15`` are carried into callers when present).

    ``read_u64(va)`` reads guest memory (any exception ends the trace);
    ``cfi`` (:class:`CfiTable`, or None for frame pointers only); ``symbols``
    (:class:`emu.kernel.symbols.Symbols`: ``lookup(addr)``); ``lines``
    (:class:`emu.kernel.lines.LineTable`: ``lookup(addr)``) or None; ``text``
    the ``[start, end)`` of kernel code (default: ``.text`` from ``cfi``, else
    ``_stext``/``_etext``).  Never raises for bad memory; frame 0 is always
    there.

    >>> [f.function for f in unwind(m.registers(), m.read_u64, cfi, m.symbols)]  # doctest: +SKIP
    ['___slab_alloc', '__kmem_cache_alloc', 'kmalloc', 'kmemu_call_return']
    """
    cur = {k: int(regs[k]) & U64 for k in ("rip", "rsp", "rbp", *CALLEE_SAVED) if k in regs}
    if "rip" not in cur or "rsp" not in cur:
        raise KeyError("unwind needs at least rip and rsp")
    bounds = text or _text_range(cfi, symbols)
    frames: list[Frame] = []
    found_by, exact, vector = "registers", True, None
    while True:
        level = len(frames)
        at = _lookup_pc(cur["rip"], exact, symbols, outermost)
        cfa, caller, how, caller_exact, caller_vector = _cfa_and_caller(
            cur, at, level, read_u64, cfi, symbols)
        frame = _make_frame(level, cur, cfa, found_by, at, symbols, lines, vector)
        frames.append(frame)
        if (caller is None or len(frames) >= max_frames or frame.function in outermost):
            break
        pc = caller["rip"]
        if pc == 0 or (bounds is not None and not bounds[0] <= pc < bounds[1]):
            break
        if bounds is None and (symbols is None or symbols.lookup(pc) is None):
            break
        if caller["rsp"] <= cur["rsp"]:
            break  # the stack grows down: a caller's frame is above its callee's
        cur, found_by, exact, vector = caller, how, caller_exact, caller_vector
    return frames


def format_frame(f: Frame) -> str:
    """``#1  0xffffffff80101bd9 in kmalloc+0x69/0xe9 at kmalloc.c:110`` (see
    :func:`format_backtrace`)."""
    out = f"#{f.level:<2} {f.pc:#018x} in {f.where if f.function else '??'}"
    if f.file is not None:
        out += f" at {f.file}:{f.line}"
    if f.vector is not None:
        out += f" [interrupted by vector {f.vector:#x}]"
    return out


def format_backtrace(frames: list[Frame]) -> str:
    """gdb's ``bt`` with Linux's symbol offsets, one frame a line, innermost first::

        #0  0xffffffff80101b70 in kmalloc+0x0/0xe9 at kmalloc.c:103
        #1  0xffffffff80101414 in call_irq_handler+0x34/0x48 at irq.c:81
        #2  0xffffffff801014c9 in irq_dispatch+0x39/0xaf at irq.c:91
        #3  0xffffffff8010b37b in do_trap+0x1b/0x22 at traps.c:307
        #4  0xffffffff8010106e in common_entry+0x35/0x59 at entry.S:56
        #5  0xffffffff801010a3 in kmemu_idle_loop+0x11/0x13 at entry.S:93 [interrupted by
            vector 0xec]                                       (one line, wrapped here)

    The address is the frame's pc (a return address for callers, as gdb shows
    it); ``sym+off/size`` is ``%pS``; ``at file:line`` is the source line of the
    call (of the pc itself in frame 0 and interrupted frames), omitted when the
    line table has none; ``??`` marks a pc no symbol covers.
    """
    return "\n".join(format_frame(f) for f in frames) + ("\n" if frames else "")
