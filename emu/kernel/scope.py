"""Local variables and parameters of a stopped frame, from the kernel's DWARF.

Layer 4 (``emu.kernel``).  drgn evaluates the DWARF location expressions and
location lists that ``-O2`` code needs (a variable lives in ``rbx`` for three
instructions, then in a stack slot, then nowhere), including the scopes of
inlined functions.  We hand it a complete register set, as x86-64 Linux lays
out ``struct pt_regs``, and it unwinds from there with the kernel's CFI.

A complete register set exists at the innermost frame (the CPU's registers)
and at a trap frame (the registers an interrupt or exception saved); callers
further up get their callee-saved registers through CFI, so variables that
lived in clobbered registers show as ``<optimized out>`` there, as in gdb.

>>> [v.name for v in frame_variables(prog, m.registers(), 0)]   # doctest: +SKIP
['s', 'gfp', 'size', 'caller']
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emu.core.errors import KmemuError
from emu.kernel.unwind import DWARF_REGS

# The order drgn's x86-64 unwinder reads registers from a ``struct pt_regs``
# (Linux's layout, not the kmemu kernel's own, which has vector/error_code).
LINUX_PT_REGS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax",
                 "rcx", "rdx", "rsi", "rdi", "orig_ax", "rip", "cs", "rflags", "rsp", "ss")
GPRS = (*DWARF_REGS.values(), "rip")  # what a complete register set must have
U64 = (1 << 64) - 1

ParamNames = Callable[[str], "tuple[str, ...] | None"]


class ScopeError(KmemuError, LookupError):
    """The frame's variables cannot be found (no such frame, or no complete registers)."""


@dataclass(frozen=True)
class Variable:
    """A name in scope at a frame's pc.

    ``value`` is a ``drgn.Object`` (``absent_`` when the compiler kept no copy
    there: gdb's ``<optimized out>``); ``argument`` says it is a parameter of
    ``function``, the (possibly inlined) function whose scope declares it;
    ``shadowed``, that an inner scope declares the same name (C would not see it);
    ``entry``, that the location said "the value a register had at the function's
    entry" and the caller's call site gave it (see :mod:`emu.kernel.entryval`);
    ``at_entry``, for an argument, the value it had when the function began, where
    the caller's call site says (gdb's ``name@entry``; shown in place of a value
    that is gone, and in frame lines beside one that is not).
    """

    name: str
    value: Any
    argument: bool
    function: str | None
    inlined: bool
    shadowed: bool = False
    entry: bool = False  # the value came from the caller's call site (DW_OP_entry_value)
    at_entry: Any = None  # drgn.Object: the argument's value when the function began


def _linux_pt_regs(prog: Any) -> Any:
    import drgn

    u64 = prog.int_type("unsigned long", 8, False)
    members = [drgn.TypeMember(u64, name, 64 * i) for i, name in enumerate(LINUX_PT_REGS)]
    return prog.struct_type("pt_regs", 8 * len(LINUX_PT_REGS), members)


def physical_frames(prog: Any, regs: Mapping[str, int]) -> list[list[Any]]:
    """drgn's stack trace from ``regs`` (every general register, ``rip``, ``rflags``),
    grouped by real frame: each group is the inlined scopes at that pc, innermost
    first, then the function that holds them.  Empty when drgn cannot unwind."""
    import drgn

    missing = [r for r in GPRS if r not in regs]
    if missing:
        raise ScopeError(f"a frame's variables need every register; missing {', '.join(missing)}")
    values = [int(regs.get(name, 0)) & U64 for name in LINUX_PT_REGS]
    try:
        obj = drgn.Object.from_bytes_(prog, _linux_pt_regs(prog),
                                      struct.pack(f"<{len(values)}Q", *values))
        trace = prog.stack_trace(obj)
    except (drgn.FaultError, ValueError, LookupError):
        return []
    groups: list[list[Any]] = []
    current: list[Any] = []
    for frame in trace:
        current.append(frame)
        if not frame.is_inline:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def frame_variables(prog: Any, regs: Mapping[str, int], depth: int = 0, *,
                    param_names: ParamNames | None = None,
                    pc: int | None = None, skip_inline: int = 0) -> list[Variable]:
    """The variables in scope in the ``depth``-th real frame of the stack ``regs``
    describes (0: the frame ``regs`` belongs to), innermost scope first; a name
    an inner scope declares too is marked ``shadowed``.  ``param_names(function)`` gives a
    function's parameter names (to tell arguments from locals); ``pc``, when
    given, must be that frame's pc (a check that drgn unwound the way we did).
    ``skip_inline`` innermost inlined scopes are left out: gdb's skipped inline
    frames, the bodies that start exactly at a stop's pc and are not entered yet.
    """
    import drgn

    groups = physical_frames(prog, regs)
    if depth >= len(groups):
        raise ScopeError(f"no frame {depth} in drgn's unwinding of this stack")
    group = groups[depth]
    try:
        where = group[0].pc
    except LookupError:
        where = None
    if pc is not None and where is not None and where != pc:
        raise ScopeError(f"drgn unwound frame {depth} to {where:#x}, not {pc:#x}")
    inline = sum(1 for f in group if f.is_inline)
    group = group[min(skip_inline, inline):]
    seen: set[str] = set()
    out: list[Variable] = []
    for frame in group:
        fn = frame.name
        params = set(param_names(fn) or ()) if param_names is not None and fn else set()
        try:
            names = frame.locals()
        except (drgn.FaultError, LookupError, ValueError):
            continue
        for name in dict.fromkeys(names):
            try:
                value = frame[name]
            except (KeyError, LookupError, drgn.FaultError, ValueError):
                continue
            if _kind(value) == "FUNCTION":
                continue  # a nested function declaration, not a variable
            out.append(Variable(name, value, name in params, fn, frame.is_inline,
                                shadowed=name in seen))
            seen.add(name)
    return out


def _kind(obj: Any) -> str:
    kind = obj.type_.kind
    return kind.name if hasattr(kind, "name") else str(kind)


def format_variable(v: Variable, hex: bool = False,  # noqa: A002 - gdb's /x
                    where: Any = None) -> str:
    """``name = value`` as gdb's ``info locals`` prints it (one line for scalars);
    ``where(addr)`` names the kernel symbol a pointer points at (``<kmemu_banner>``)."""
    from emu.kernel.gdbvalue import format_value

    if v.value.absent_ and v.at_entry is not None:
        return f"{v.name}@entry = {format_value(v.at_entry, hex=hex, top=False, where=where)}"
    if v.value.absent_:
        return f"{v.name} = <optimized out>"
    return f"{v.name} = {format_value(v.value, hex=hex, top=False, where=where)}"


def frame_arg_text(v: Variable, where: Any = None) -> str:
    """An argument in a frame line as gdb prints it (``print entry-values default``):
    ``s=s@entry=0x...`` where the value the caller passed (``v.at_entry``) is known
    and equal to the current one, ``n=5, n@entry=4`` where they differ, ``n@entry=4``
    where only the caller's is known, ``n=5`` where only the current one is."""
    from emu.kernel.gdbvalue import frame_arg

    now = None if v.value.absent_ else frame_arg(v.value, where)
    entry = None if v.at_entry is None else frame_arg(v.at_entry, where)
    if entry is None:
        return f"{v.name}={now if now is not None else '<optimized out>'}"
    if now is None:
        return f"{v.name}@entry={entry}"
    if now == entry:
        return f"{v.name}={v.name}@entry={now}"
    return f"{v.name}={now}, {v.name}@entry={entry}"


def short_value(obj: Any) -> str:
    """A value as a frame line shows an argument: hex for integers and pointers,
    ``<optimized out>``, ``...`` for aggregates (gdb's ``print frame-arguments
    scalars``)."""
    import drgn

    if obj.absent_:
        return "<optimized out>"
    t = obj.type_
    while t.kind == drgn.TypeKind.TYPEDEF:
        t = t.type
    if t.kind in (drgn.TypeKind.STRUCT, drgn.TypeKind.UNION, drgn.TypeKind.ARRAY):
        return "..."
    try:
        v = obj.value_()
        if t.kind == drgn.TypeKind.BOOL:
            return str(bool(v)).lower()
        if isinstance(v, float):
            return repr(v)
        return f"-{-v:#x}" if v < 0 else f"{v:#x}"  # signed types keep their sign
    except drgn.FaultError as e:
        return f"<cannot access memory at {e.address:#x}>"
    except (TypeError, ValueError, drgn.ObjectAbsentError):
        return "<optimized out>"
