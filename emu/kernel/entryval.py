"""Entry values: variables whose DWARF location is "what register N held when this
function was entered" (``DW_OP_entry_value``), which drgn does not evaluate.

Layer 4 (``emu.kernel``).  ``-O2`` code keeps an argument in its ABI register only
until the first call clobbers it; GCC then often describes the argument as
``DW_OP_entry_value(DW_OP_reg4 (rsi)); DW_OP_stack_value`` for the rest of the
function (``order`` in ``get_page_from_freelist``).  The caller knows that value:
its ``DW_TAG_call_site`` for the return address has a ``DW_TAG_call_site_parameter``
whose ``DW_AT_call_value`` says how to compute rsi's value in the caller's frame
(``DW_OP_breg3 (rbx): 0``, ``DW_OP_lit2``, another entry value...).  This is what
gdb shows as ``order@entry=2``.

:class:`DwarfScopes` finds the location expression of each variable in scope at a
pc; :func:`evaluate` runs the small DWARF stack machine these expressions need,
with the registers of a frame our unwinder recovered.

>>> scopes = DwarfScopes.load(elf)                             # doctest: +SKIP
>>> [ops for f, n, ops in scopes.locations(pc) if n == "order"]  # doctest: +SKIP
[[DWARFExprOp(op_name='DW_OP_entry_value', ...), DWARFExprOp(op_name='DW_OP_stack_value')]]
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elftools.dwarf.dwarf_expr import DWARFExprParser
from elftools.dwarf.locationlists import LocationEntry, LocationParser
from elftools.elf.elffile import ELFFile

from emu.core.errors import KmemuError
from emu.kernel.filecache import load_per_file
from emu.kernel.lines import cu_base, die_ranges
from emu.kernel.unwind import DWARF_REGS

U64 = (1 << 64) - 1
MAX_DEPTH = 8  # entry values of entry values: callers up the stack
_CACHE: dict[tuple[str, int], DwarfScopes] = {}
_SCOPES = ("DW_TAG_lexical_block", "DW_TAG_inlined_subroutine")
_VARS = ("DW_TAG_formal_parameter", "DW_TAG_variable")
_SITES = ("DW_TAG_call_site", "DW_TAG_GNU_call_site")
_SITE_PARAMS = ("DW_TAG_call_site_parameter", "DW_TAG_GNU_call_site_parameter")


class Unavailable(Exception):  # noqa: N818 - a control-flow signal, not an error to report
    """The expression needs something this frame does not have."""


@dataclass
class Context:
    """What :func:`evaluate` may use: a frame's known registers (``rip``, ``rsp``,
    callee-saved ones...), its CFA (the frame base of GCC's x86-64 code), a memory
    reader, and ``entry_value(ops)`` for ``DW_OP_entry_value`` (None: unknown)."""

    regs: Mapping[str, int]
    cfa: int | None
    read_u64: Callable[[int], int]
    entry_value: Callable[[list], int | None]


def _regno(op) -> int | None:  # op: DWARFExprOp
    """N of ``DW_OP_regN`` / ``DW_OP_regx N``; None for any other op."""
    name = op.op_name
    if name == "DW_OP_regx":
        return int(op.args[0])
    if name.startswith("DW_OP_reg") and name[9:].isdigit():
        return int(name[9:])
    return None


def _reg(ctx: Context, regno: int) -> int:
    name = DWARF_REGS.get(regno)
    if name is None or name not in ctx.regs:
        raise Unavailable(f"register {regno}")
    return ctx.regs[name] & U64


def _signed(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def _div(a: int, b: int) -> int:
    if b == 0:
        raise Unavailable("division by zero")
    q = abs(_signed(a)) // abs(_signed(b))
    return -q if (_signed(a) < 0) != (_signed(b) < 0) else q


_BINARY: dict[str, Callable[[int, int], int]] = {
    "DW_OP_plus": lambda a, b: a + b, "DW_OP_minus": lambda a, b: a - b,
    "DW_OP_mul": lambda a, b: a * b, "DW_OP_and": lambda a, b: a & b,
    "DW_OP_or": lambda a, b: a | b, "DW_OP_xor": lambda a, b: a ^ b,
    "DW_OP_shl": lambda a, b: a << (b & 63), "DW_OP_shr": lambda a, b: a >> (b & 63),
    "DW_OP_shra": lambda a, b: _signed(a) >> (b & 63), "DW_OP_div": _div,
    "DW_OP_mod": lambda a, b: a % b if b else _div(a, b),
    # comparisons are signed (DWARF 5, 2.5.1.4)
    "DW_OP_eq": lambda a, b: int(a == b), "DW_OP_ne": lambda a, b: int(a != b),
    "DW_OP_lt": lambda a, b: int(_signed(a) < _signed(b)),
    "DW_OP_le": lambda a, b: int(_signed(a) <= _signed(b)),
    "DW_OP_gt": lambda a, b: int(_signed(a) > _signed(b)),
    "DW_OP_ge": lambda a, b: int(_signed(a) >= _signed(b)),
}
MAX_STEPS = 10_000  # DW_OP_bra/skip can loop


def evaluate(ops: list, ctx: Context) -> int | None:
    """What a DWARF expression computes: a value (after ``DW_OP_stack_value``, or a
    call-site value) or an address (a location without it: the caller reads the
    variable there).  None when it needs a register, memory or entry value this
    frame lacks, or an operation kmemu does not evaluate (pieces, typed ops)."""
    stack: list[int] = []
    at = {op.offset: i for i, op in enumerate(ops)}
    try:
        i, steps = 0, 0
        while i < len(ops):
            steps += 1
            if steps > MAX_STEPS:
                raise Unavailable("expression loops")
            op = ops[i]
            i += 1
            name, args = op.op_name, op.args
            if name in ("DW_OP_skip", "DW_OP_bra"):
                if name == "DW_OP_skip" or stack.pop() != 0:
                    end = ops[i].offset if i < len(ops) else None
                    if end is None:
                        raise Unavailable("branch past the end")
                    i = at[end + int(args[0])]
                continue
            if name.startswith("DW_OP_lit"):
                stack.append(int(name[9:]))
            elif name.startswith("DW_OP_const") and name[11:12] in "1248us":
                stack.append(int(args[0]) & U64)
            elif _regno(op) is not None:  # in a call-site value: the register's contents
                stack.append(_reg(ctx, _regno(op)))  # type: ignore[arg-type]
            elif name.startswith("DW_OP_breg"):
                regno = int(args[0]) if name == "DW_OP_bregx" else int(name[10:])
                stack.append((_reg(ctx, regno) + int(args[-1])) & U64)
            elif name == "DW_OP_fbreg" or name == "DW_OP_call_frame_cfa":
                if ctx.cfa is None:
                    raise Unavailable("frame base")
                stack.append((ctx.cfa + (int(args[0]) if args else 0)) & U64)
            elif name == "DW_OP_plus_uconst":
                stack.append((stack.pop() + int(args[0])) & U64)
            elif name in _BINARY:
                b, a = stack.pop(), stack.pop()
                stack.append(_BINARY[name](a, b) & U64)
            elif name == "DW_OP_addr":
                stack.append(int(args[0]) & U64)
            elif name == "DW_OP_dup":
                stack.append(stack[-1])
            elif name == "DW_OP_drop":
                stack.pop()
            elif name == "DW_OP_over":
                stack.append(stack[-2])
            elif name == "DW_OP_pick":
                stack.append(stack[-1 - int(args[0])])
            elif name == "DW_OP_swap":
                stack[-1], stack[-2] = stack[-2], stack[-1]
            elif name == "DW_OP_rot":
                stack[-3:] = [stack[-1], stack[-3], stack[-2]]
            elif name == "DW_OP_abs":
                stack.append(abs(_signed(stack.pop())) & U64)
            elif name in ("DW_OP_convert", "DW_OP_GNU_convert", "DW_OP_reinterpret",
                          "DW_OP_GNU_reinterpret") and args and int(args[0]) == 0:
                pass  # to the generic type: the value is unchanged
            elif name == "DW_OP_nop":
                pass
            elif name == "DW_OP_neg":
                stack.append(-stack.pop() & U64)
            elif name == "DW_OP_not":
                stack.append(~stack.pop() & U64)
            elif name in ("DW_OP_deref", "DW_OP_deref_size"):
                size = int(args[0]) if args else 8
                value = ctx.read_u64(stack.pop())
                stack.append(value & ((1 << (8 * size)) - 1) if size < 8 else value)
            elif name in ("DW_OP_entry_value", "DW_OP_GNU_entry_value"):
                value = ctx.entry_value(args[0])
                if value is None:
                    raise Unavailable("entry value")
                stack.append(value & U64)
            elif name == "DW_OP_stack_value":
                break
            else:
                raise Unavailable(name)
        return stack[-1] if stack else None
    except (Unavailable, IndexError, LookupError, ValueError, OSError, KmemuError):
        return None  # KmemuError: the memory reader's PageFault


def entry_register(ops: list) -> int | None:
    """The DWARF register number of ``DW_OP_entry_value(DW_OP_regN)``; None for any
    other inner expression."""
    return _regno(ops[0]) if len(ops) == 1 else None


class DwarfScopes:
    """Location expressions by scope and call-site parameters, read lazily per CU."""

    def __init__(self, data: bytes) -> None:
        self._elf = ELFFile(io.BytesIO(data))
        self._dwarf = self._elf.get_dwarf_info()
        self._aranges = self._dwarf.get_aranges()
        self._loc = LocationParser(self._dwarf.location_lists())
        self._expr = DWARFExprParser(self._dwarf.structs)
        self._ranges = self._dwarf.range_lists()
        self._sites: dict[int, dict[int, dict[int, list]]] = {}
        # What DWARF says at a pc never changes: walking the DIEs with pyelftools
        # costs milliseconds, paid again at every stop at the same pc without these.
        self._locations: dict[int, list[tuple[str, str, list | None]]] = {}
        self._at_entry: dict[int, dict[str, list]] = {}

    @classmethod
    def load(cls, elf: Path | str) -> DwarfScopes:
        """Cached per (path, mtime)."""
        return load_per_file(_CACHE, elf, lambda p: cls(p.read_bytes()))

    def _cu(self, pc: int):  # -> elftools CompileUnit | None
        if self._aranges is None:
            return None
        off = self._aranges.cu_offset_at_addr(pc)
        return None if off is None else self._dwarf.get_CU_at(off)

    def _covers(self, die, pc: int, base: int) -> bool:
        return any(lo <= pc < hi for lo, hi in die_ranges(die, self._ranges, base))

    def _subprogram(self, pc: int):  # -> (base, DIE) | None
        """The base address of the CU holding ``pc`` and the (real) function there."""
        cu = self._cu(pc)
        if cu is None:
            return None
        base = cu_base(cu)
        fn = next((d for d in cu.get_top_DIE().iter_children()
                   if d.tag == "DW_TAG_subprogram" and self._covers(d, pc, base)), None)
        return None if fn is None else (base, fn)

    @staticmethod
    def _name(die) -> str | None:
        for _ in range(4):
            a = die.attributes
            if "DW_AT_name" in a:
                return a["DW_AT_name"].value.decode(errors="replace")
            ref = next((k for k in ("DW_AT_abstract_origin", "DW_AT_specification")
                        if k in a), None)
            if ref is None:
                return None
            die = die.get_DIE_from_attribute(ref)
        return None

    def _location(self, die, pc: int, base: int) -> list | None:
        attr = die.attributes.get("DW_AT_location")
        if attr is None:
            return None
        if attr.form == "DW_FORM_exprloc":
            return self._expr.parse_expr(attr.value)
        entries = self._loc.parse_from_attribute(attr, die.cu.header.version, die=die)
        if not isinstance(entries, list):
            return self._expr.parse_expr(entries.loc_expr)
        for e in entries:
            if hasattr(e, "base_address"):
                base = e.base_address
            elif isinstance(e, LocationEntry):
                b = 0 if getattr(e, "is_absolute", False) else base
                if b + e.begin_offset <= pc < b + e.end_offset:
                    return self._expr.parse_expr(e.loc_expr)
        return None

    def locations(self, pc: int) -> list[tuple[str, str, list | None]]:
        """``(function, name, expression)`` for the variables in scope at ``pc``,
        innermost scope first: the inlined functions and blocks covering it, then the
        subprogram holding it (expression None: no location there).  A function
        inlined into itself (``__free_pages``) appears once per copy.  Cached by pc."""
        got = self._locations.get(pc)
        if got is None:
            got = self._locations[pc] = self._read_locations(pc)
        return got

    def _read_locations(self, pc: int) -> list[tuple[str, str, list | None]]:
        found = self._subprogram(pc)
        if found is None:
            return []
        base, die = found
        scopes: list[list[tuple[str, str, list | None]]] = []
        owner = self._name(die)
        while die is not None and owner is not None:
            inner, here = None, []
            for ch in die.iter_children():
                if ch.tag in _VARS:
                    name = self._name(ch)
                    if name is not None:
                        here.append((owner, name, self._location(ch, pc, base)))
                elif ch.tag in _SCOPES and inner is None and self._covers(ch, pc, base):
                    inner = ch
            scopes.append(here)
            if inner is not None and inner.tag == "DW_TAG_inlined_subroutine":
                owner = self._name(inner)
            die = inner
        return [v for here in reversed(scopes) for v in here]

    def parameters_at_entry(self, pc: int) -> dict[str, list]:
        """Parameter name -> location expression at the entry of the (real, not
        inlined) function holding ``pc``: where the caller put each argument.  Cached
        by pc."""
        got = self._at_entry.get(pc)
        if got is None:
            got = self._at_entry[pc] = self._read_parameters_at_entry(pc)
        return got

    def _read_parameters_at_entry(self, pc: int) -> dict[str, list]:
        found = self._subprogram(pc)
        if found is None:
            return {}
        base, fn = found
        low = fn.attributes.get("DW_AT_low_pc")
        if low is None:
            return {}
        out = {}
        for ch in fn.iter_children():
            if ch.tag == "DW_TAG_formal_parameter":
                name = self._name(ch)
                ops = self._location(ch, low.value, base)
                if name is not None and ops is not None:
                    out[name] = ops
        return out

    def call_site(self, return_pc: int) -> dict[int, list]:
        """DWARF register number -> ``DW_AT_call_value`` expression, for the call that
        returns to ``return_pc``."""
        cu = self._cu(return_pc - 1)
        if cu is None:
            return {}
        sites = self._sites.get(cu.cu_offset)
        if sites is None:
            sites = self._sites[cu.cu_offset] = {}
            for die in cu.iter_DIEs():
                if die.tag not in _SITES:
                    continue
                ret = die.attributes.get("DW_AT_call_return_pc") or \
                    die.attributes.get("DW_AT_low_pc")
                if ret is None:
                    continue
                params: dict[int, list] = {}
                for ch in die.iter_children():
                    loc = ch.attributes.get("DW_AT_location")
                    val = ch.attributes.get("DW_AT_call_value") or \
                        ch.attributes.get("DW_AT_GNU_call_site_value")
                    if ch.tag not in _SITE_PARAMS or loc is None or val is None:
                        continue
                    reg = entry_register(self._expr.parse_expr(loc.value))
                    if reg is not None:
                        params[reg] = self._expr.parse_expr(val.value)
                sites[ret.value] = params
        return sites.get(return_pc, {})


FrameInfo = Any  # emu.kernel.unwind.Frame: pc, cfa, registers, found_by


def entry_value_resolver(scopes: DwarfScopes, frames: list[FrameInfo],
                         read_u64: Callable[[int], int]) -> Callable[[int, list], int | None]:
    """``resolve(level, ops)``: the value of ``DW_OP_entry_value(ops)`` in frame
    ``level`` of ``frames`` (our unwinder's, innermost first), from the call site
    in frame ``level + 1``."""

    def resolve(level: int, ops: list, depth: int = 0) -> int | None:
        reg = entry_register(ops)
        if reg is None or depth >= MAX_DEPTH or level + 1 >= len(frames):
            return None
        caller = frames[level + 1]
        if caller.found_by == "trap frame":
            return None  # an interrupt, not a call: there is no call site
        value = scopes.call_site(caller.pc).get(reg)
        if value is None:
            return None
        ctx = Context(caller.registers, caller.cfa, read_u64,
                      lambda inner: resolve(level + 1, inner, depth + 1))
        return evaluate(value, ctx)

    return resolve


def apply_entry_values(prog: Any, variables: list, frames: list[FrameInfo], level: int,
                       regs: Mapping[str, int], scopes: DwarfScopes,
                       read_u64: Callable[[int], int]) -> list:
    """``variables`` (:func:`emu.kernel.scope.frame_variables` of frame ``level``)
    with what the call sites know filled in: an absent variable whose location is
    an entry value gets its value (``entry``); an argument whose register at the
    function's entry a call site knows gets ``at_entry`` (gdb's ``name@entry``).
    ``regs`` are frame ``level``'s registers; ``frames`` our unwinder's, innermost
    first."""
    import dataclasses

    frame = frames[level]
    exact = level == 0 or frame.found_by == "trap frame"  # else pc is a return address
    pc = frame.pc if exact else frame.pc - 1
    # innermost first, as drgn lists them: the k-th (function, name) of one list is the
    # k-th of the other (a function inlined into itself has two)
    queues: dict[tuple[str, str], list] = {}
    for fn, name, ops in scopes.locations(pc):
        queues.setdefault((fn, name), []).append(ops)
    resolve = entry_value_resolver(scopes, frames, read_u64)
    ctx = Context(regs, frame.cfa, read_u64, lambda ops: resolve(level, ops))
    at_entry: dict[str, list] | None = None
    out = []
    for v in variables:
        queue = queues.get((v.function or "", v.name))
        ops = queue.pop(0) if queue else None
        if v.value.absent_ and ops and any(op.op_name.endswith("entry_value") for op in ops):
            v = _from_entry_value(prog, v, ops, ctx)
        if v.argument and not v.inlined:
            # what the caller passed, where its call site says (gdb's name@entry): the
            # value itself if gone now, else beside it in frame lines (s=s@entry=...)
            if at_entry is None:
                at_entry = scopes.parameters_at_entry(pc)
            reg = at_entry.get(v.name)
            value = resolve(level, reg) if reg is not None else None
            if value is not None:
                v = dataclasses.replace(v, at_entry=_typed(prog, v.value.type_, value))
        out.append(v)
    return out


def _typed(prog: Any, t: Any, value: int) -> Any:  # -> drgn.Object | None
    """``value`` (64 bits) as a scalar of type ``t``; None for other types."""
    import drgn

    kind = t.unaliased_kind()
    if kind not in (drgn.TypeKind.INT, drgn.TypeKind.POINTER, drgn.TypeKind.ENUM,
                    drgn.TypeKind.BOOL):
        return None
    bits = 8 * drgn.sizeof(t)
    value &= (1 << bits) - 1
    if kind == drgn.TypeKind.INT and t.unaliased().is_signed and value >> (bits - 1):
        value -= 1 << bits
    return drgn.Object(prog, t, value=value)


def _from_entry_value(prog: Any, v: Any, ops: list, ctx: Context) -> Any:
    """``v`` (a :class:`emu.kernel.scope.Variable`) with the value its entry-value
    location gives, if any: a value after ``DW_OP_stack_value``, else the address
    the variable is read at."""
    import dataclasses

    import drgn

    result = evaluate(ops, ctx)
    if result is None:
        return v
    t = v.value.type_
    if ops[-1].op_name != "DW_OP_stack_value":  # a location: the variable is at result
        return dataclasses.replace(v, value=drgn.Object(prog, t, address=result), entry=True)
    obj = _typed(prog, t, result)
    return v if obj is None else dataclasses.replace(v, value=obj, entry=True)
