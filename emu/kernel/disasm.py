"""Symbolised disassembly of kernel code (the debugger's ``disas`` and ``x/i``), with capstone.

Layer 4 (``emu.kernel``).  Intel syntax, as gdb prints it after ``set
disassembly-flavor intel`` (and ``objdump -M intel``).  Each instruction is
named by its place in a function, gdb style, ``<kmalloc+25>`` (decimal
offset; ``<kmalloc+0>`` at the start).  Kernel addresses in the operands are
annotated the same way (offset 0 left out, as gdb does): a branch or call
target right after it (``je 0xffffffff80101be0 <kmalloc+112>``), a
rip-relative or absolute memory operand or an immediate that points into a
kernel symbol after a ``#`` (``mov rdi, qword ptr [rax*8 - 0x7fee14c0] #
0xffffffff8011eb40 <kmalloc_caches>``).  Bytes capstone cannot decode become
one-byte ``(bad)`` instructions, as in objdump.

>>> insns = disassemble_function(m.read_virt, m.symbols, "kmalloc", mark=rip)  # doctest: +SKIP
>>> print(format_disassembly(insns[:3], show_lines=False))                     # doctest: +SKIP
=> 0xffffffff80101b70 <kmalloc+0>:	test rdi, rdi
   0xffffffff80101b73 <kmalloc+3>:	je 0xffffffff80101be0 <kmalloc+112>
   0xffffffff80101b75 <kmalloc+5>:	push rbp
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emu.core.errors import BadArgument

KERNEL_HALF = 0xFFFF800000000000
U64 = (1 << 64) - 1
MAX_FUNCTION_BYTES = 1 << 20  # a "function" bigger than this is a symbol-table mistake
_PS = re.compile(r"^(?P<name>.+)\+0x(?P<off>[0-9a-f]+)/0x[0-9a-f]+$")

Symbolize = Callable[[int], str]


@dataclass(frozen=True)
class Insn:
    """One decoded instruction.

    ``where`` is ``kmalloc+25`` (None outside every symbol); ``comment`` the
    annotation of the operands (``<sym+off>`` for a branch target, ``# 0x...
    <sym+off>`` for memory and immediates), "" when there is none; ``targets``
    the kernel addresses the operands name; ``line`` the source line (an
    ``emu.kernel.lines.LineEntry``) that starts at this instruction, if one
    does; ``current`` is true at ``mark`` (the CPU's rip).
    """

    address: int
    size: int
    raw: bytes
    mnemonic: str
    operands: str
    where: str | None
    comment: str = ""
    targets: tuple[int, ...] = ()
    line: Any = None
    current: bool = False
    is_branch: bool = False  # jumps, calls, returns
    att: bool = False  # laid out as gdb prints it (either flavor; objdump's operand style)

    @property
    def text(self) -> str:
        """``test rdi, rdi`` / ``je 0xffffffff80101be0 <kmalloc+112>`` (Intel);
        ``test   %rdi,%rdi`` (AT&T: the mnemonic in a 6-column field, as gdb)."""
        if self.att:
            out = f"{self.mnemonic:<6} {self.operands}".rstrip()
            if self.comment.startswith("#"):
                return f"{out}        {self.comment}"
        else:
            out = f"{self.mnemonic} {self.operands}".rstrip()
        return f"{out} {self.comment}" if self.comment else out


def _where_fn(symbolize: Symbolize | Any) -> Callable[[int], str | None]:
    """``addr -> "name+decimal offset"`` from ``Symbols`` (``lookup``) or a ``%pS``
    symboliser (``"kmalloc+0x19/0xe9"``, bare hex when unknown)."""
    lookup = getattr(symbolize, "lookup", None)
    if lookup is not None:
        def where(addr: int) -> str | None:
            hit = lookup(addr)
            return f"{hit[0].name}+{hit[1]}" if hit else None
        return where

    def where_ps(addr: int) -> str | None:
        m = _PS.match(symbolize(addr))
        return f"{m.group('name')}+{int(m.group('off'), 16)}" if m else None
    return where_ps


def _cs(flavor: str = "intel"):  # -> capstone.Cs, one per process and syntax (detail on)
    md = _MD.get(flavor)
    if md is None:
        import capstone

        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        md.detail = True
        md.syntax = (capstone.CS_OPT_SYNTAX_ATT if flavor == "att"
                     else capstone.CS_OPT_SYNTAX_INTEL)
        _MD[flavor] = md
    return md


_MD: dict[str, Any] = {}
FLAVORS = ("att", "intel")  # gdb's `set disassembly-flavor`

# AT&T mnemonics whose size suffix objdump (and so gdb) leaves out when a register
# operand gives the size; capstone always writes it.
_SUFFIXED = re.compile(
    r"(mov|add|sub|and|or|xor|cmp|test|lea|shr|shl|sar|sal|rol|ror|inc|dec|neg|not|imul|mul|"
    r"div|idiv|bsr|bsf|bt|bts|btr|btc|xchg|adc|sbb|cmov[a-z]+|xadd|cmpxchg|popcnt|tzcnt|lzcnt)"
    r"[bwlq]")
_STACK = re.compile(r"(call|ret|push|pop|jmp|leave|iret|sysret|lret|enter)q")


def att_layout(mnemonic: str, operands: str) -> tuple[str, str]:
    """capstone's AT&T text as objdump prints it: ``testq %rdi, %rdi`` ->
    ``("test", "%rdi,%rdi")``, ``(%rax, %rax)`` -> ``(%rax,%rax,1)``."""
    ops = operands.replace(", ", ",")
    ops = re.sub(r"\((%\w+),(%\w+)\)", r"(\1,\2,1)", ops)
    ops = re.sub(r"\$(-?)(\d+)(?![\dxa-f])", lambda m: f"${m[1]}{int(m[2]):#x}", ops)
    ops = re.sub(r"(^|,)(-?)(\d+)\(", lambda m: f"{m[1]}{m[2]}{int(m[3]):#x}(", ops)
    if m := _STACK.fullmatch(mnemonic):
        if mnemonic != "pushq" or "$" not in ops:
            mnemonic = m.group(1)
    elif _SUFFIXED.fullmatch(mnemonic) and re.search(r"(^|,)%", ops):
        mnemonic = mnemonic[:-1]
    return mnemonic, ops


def _annotate(insn: Any, where: Callable[[int], str | None]
              ) -> tuple[str, tuple[int, ...], bool]:
    """(comment, targets, is_branch) for one capstone instruction."""
    def target(addr: int) -> str | None:
        name = where(addr)
        return name[:-2] if name is not None and name.endswith("+0") else name

    from capstone import CS_GRP_CALL, CS_GRP_JUMP, CS_GRP_RET, x86

    branch = any(g in insn.groups for g in (CS_GRP_JUMP, CS_GRP_CALL, CS_GRP_RET))
    targets: list[int] = []
    notes: list[str] = []
    for op in insn.operands:
        if op.type == x86.X86_OP_IMM:
            value = op.imm & U64
            if branch:
                name = target(value)
                targets.append(value)
                if name:
                    return f"<{name}>", (value,), True
                continue
        elif op.type == x86.X86_OP_MEM:
            if op.mem.base == x86.X86_REG_RIP:
                value = (insn.address + insn.size + op.mem.disp) & U64
            elif op.mem.base == 0:
                value = op.mem.disp & U64  # absolute, or a table indexed by a register
            else:
                continue
        else:
            continue
        if value < KERNEL_HALF:
            continue
        name = target(value)
        if name is None:
            continue
        targets.append(value)
        notes.append(f"{value:#x} <{name}>")
    return ("# " + ", ".join(notes)) if notes else "", tuple(targets), branch


def disassemble(code: bytes, address: int, symbolize: Symbolize | Any, lines: Any = None,
                count: int | None = None, mark: int | None = None,
                flavor: str | None = None) -> list[Insn]:
    """Decode ``code`` (bytes read at kernel address ``address``).

    ``symbolize`` is ``Symbols.symbolize`` (``addr -> "kmalloc+0x19/0xe9"``) or a
    :class:`emu.kernel.symbols.Symbols`; ``lines`` a
    :class:`emu.kernel.lines.LineTable` (``lookup``) or None; ``count`` stops after
    that many instructions; ``mark`` is the address to flag ``current`` (rip);
    ``flavor`` is gdb's ``disassembly-flavor``, ``"intel"`` or ``"att"``, laid out as
    gdb prints it (None: capstone's own Intel text).

    >>> code = m.read_virt(m.symbol("kmalloc"), 16)                             # doctest: +SKIP
    >>> [i.text for i in disassemble(code, m.symbol("kmalloc"), m.symbolize)][:2]  # doctest: +SKIP
    ['test rdi, rdi', 'je 0xffffffff80101be0 <kmalloc+112>']
    """
    if count is not None and count < 0:
        raise BadArgument(f"instruction count must be >= 0, got {count}")
    if not 0 <= address <= U64:
        raise BadArgument(f"address must be a 64-bit value, got {address:#x}")
    if flavor is not None and flavor not in FLAVORS:
        raise BadArgument(f"disassembly flavor must be one of {', '.join(FLAVORS)}, got "
                          f"{flavor!r}")
    where = _where_fn(symbolize)
    md = _cs(flavor or "intel")
    gdb = flavor is not None
    out: list[Insn] = []
    pos = 0

    def full() -> bool:
        return count is not None and len(out) >= count

    while pos < len(code) and not full():
        for insn in md.disasm(code[pos:], address + pos):
            if full():
                break
            comment, targets, branch = _annotate(insn, where)
            mnemonic, ops = insn.mnemonic, insn.op_str
            if flavor == "att":
                mnemonic, ops = att_layout(mnemonic, ops)
            elif gdb:
                ops = ops.replace(", ", ",").replace(" ptr ", " PTR ")
                ops = re.sub(r"\b(byte|word|dword|qword|xmmword) PTR", lambda m: m[0].upper(), ops)
            out.append(_insn(insn.address, bytes(insn.bytes), mnemonic, ops,
                             where, lines, mark, comment, targets, branch, gdb))
            pos += insn.size
        if pos < len(code) and not full():  # capstone stopped: an undecodable byte
            out.append(_insn(address + pos, code[pos:pos + 1], "(bad)", "", where, lines,
                             mark))
            pos += 1
    return out


def _insn(addr: int, raw: bytes, mnemonic: str, operands: str, where: Callable[[int], str | None],
          lines: Any, mark: int | None, comment: str = "", targets: tuple[int, ...] = (),
          branch: bool = False, att: bool = False) -> Insn:
    line = None
    if lines is not None:
        row = lines.lookup(addr)
        if row is not None and row.address == addr:
            line = row
    return Insn(addr, len(raw), raw, mnemonic, operands, where(addr), comment, targets, line,
                addr == mark, branch, att)


def function_extent(symbols: Any, where: str | int) -> tuple[int, int]:
    """``(start, size)`` of the function named ``where`` (``"kmalloc"``) or containing the
    address ``where``; :class:`emu.core.errors.BadArgument` when there is none.

    >>> function_extent(m.symbols, "kmalloc")       # doctest: +SKIP
    (18446744071563123568, 233)
    """
    if isinstance(where, str):
        sym = symbols.by_name.get(where)
        if sym is None:
            symbols.address(where)  # raises SymbolError with suggestions
            raise BadArgument(f"no function {where!r}")
    elif isinstance(where, int) and not isinstance(where, bool):
        hit = symbols.lookup(where) if 0 <= where <= U64 else None
        if hit is None:
            raise BadArgument(f"no function contains {where:#x}")
        sym = hit[0]
    else:
        raise BadArgument(f"a function name or an address, not {where!r}")
    if sym.kind != "func":
        raise BadArgument(f"{sym.name} is not a function ({sym.kind})")
    if not 0 < sym.size <= MAX_FUNCTION_BYTES:
        raise BadArgument(f"{sym.name} has no usable size ({sym.size}) in the symbol table")
    return sym.address, sym.size


def disassemble_function(read_virt: Callable[[int, int], bytes], symbols: Any,
                         where: str | int, lines: Any = None,
                         mark: int | None = None, flavor: str | None = None) -> list[Insn]:
    """gdb's ``disas FUNC``: the whole function named by ``where`` (a name or an address
    inside it), read with ``read_virt(va, n)`` (live memory, or the ELF's bytes)."""
    start, size = function_extent(symbols, where)
    return disassemble(read_virt(start, size), start, symbols, lines, mark=mark, flavor=flavor)


def format_insn(i: Insn, *, show_bytes: bool = False, function: str | None = None) -> str:
    """``=> 0xffffffff80101b70 <kmalloc+0>:\\ttest rdi, rdi`` (see :func:`format_disassembly`);
    inside ``function`` (gdb's ``disassemble``) the place is ``<+25>``; else gdb's
    ``x/i`` form, ``<kmalloc+25>`` and ``<kmalloc>`` at offset 0."""
    head = "=> " if i.current else "   "
    where = f" <{i.where}>" if i.where else ""
    if i.att and i.where:
        name, _, off = i.where.rpartition("+")
        where = f" <+{off}>" if function is not None and name == function else \
            f" <{name}>" if off == "0" else where
    raw = f"{i.raw.hex(' '):<24} " if show_bytes else ""
    return f"{head}{i.address:#018x}{where}:\t{raw}{i.text}"


def format_disassembly(insns: list[Insn], *, show_bytes: bool = False,
                       show_lines: bool = True, function: str | None = None) -> str:
    """gdb's ``disas`` / ``x/i`` text, one instruction a line::

        kmalloc.c:103
        => 0xffffffff80101b70 <kmalloc+0>:	test rdi, rdi
           0xffffffff80101b73 <kmalloc+3>:	je 0xffffffff80101be0 <kmalloc+112>

    ``=>`` marks the current instruction; with ``show_lines`` a ``file:line``
    heading precedes each instruction where a new source line starts (the
    instruction order, not the source order, as ``disas /r``); ``show_bytes``
    adds the encoding (``disas /r``).
    """
    out = []
    last = None
    for i in insns:
        if show_lines and i.line is not None and (i.line.file, i.line.line) != last:
            out.append(f"{i.line.file}:{i.line.line}")
            last = (i.line.file, i.line.line)
        out.append(format_insn(i, show_bytes=show_bytes, function=function))
    return "\n".join(out) + ("\n" if out else "")
