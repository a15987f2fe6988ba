"""Values as gdb's ``print`` shows them, from ``drgn.Object`` s.

Layer 4 (``emu.kernel``).  The REPL prints what gdb would print for the same
expression on ``kmemu gdb``, so its users can read it as gdb's:

- integers in decimal, ``char`` as ``97 'a'``, ``bool`` as ``true``, enums by
  their enumerator's name; an output format (``p/x``, :data:`PRINT_FORMATS`)
  prints every scalar inside as an integer in that format, as gdb does;
- a pointer at the top level with its type, ``(struct kmem_cache *) 0xffff...``,
  inside an aggregate bare; ``<sym+off>`` after one that points at a kernel
  symbol (gdb's ``print symbol``); a ``char *`` as ``0x... "text"``;
- ``char`` arrays as strings with gdb's repeat blocks
  (``"kmalloc-64", '\\000' <repeats 21 times>``), other arrays as ``{1, 2, 3}``
  (runs of more than 10 equal elements as ``0 <repeats 22 times>``), at most
  200 elements (``...`` after);
- structs and unions as ``{name = "kmalloc-64", object_size = 64, cpu_slab =
  {freelist = 0x0, ...}}`` on one line, as gdb's default ``print pretty off``.

:func:`format_value` never raises: memory that cannot be read shows as gdb's
``<error: Cannot access memory at address 0x...>``.

>>> format_value(evaluate(m.program, "kmalloc_caches[0][6]->name"))   # doctest: +SKIP
'"kmalloc-64", \\'\\\\000\\' <repeats 21 times>'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: gdb's ``print repeats``: a run longer than this is shown as ``<repeats N times>``.
REPEAT_THRESHOLD = 10
#: gdb's ``print elements``.
MAX_ELEMENTS = 200

Where = Callable[[int], "str | None"]  # address -> "kmalloc+21" or None

#: gdb's output formats for print and display: hex, signed and unsigned decimal, octal,
#: binary, zero-padded hex, char, address ("s" is the natural format, as gdb's /s is for
#: anything that is not a string)
PRINT_FORMATS = "xduotzcas"

_CHAR_NAMES = ("char", "signed char", "unsigned char")
_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r",
            27: "\\033", 0x5C: "\\\\"}


def char_text(b: int, quote: str) -> str:
    """One byte inside a gdb string or char literal: ``a``, ``\\n``, ``\\000``."""
    if b in _ESCAPES:
        return _ESCAPES[b]
    if b == ord(quote):
        return "\\" + quote
    if 0x20 <= b < 0x7F:
        return chr(b)
    return f"\\{b:03o}"


def string_text(data: bytes, drop_nul: bool = True, truncated: bool = False) -> str:
    """gdb's text for a char array's bytes: quoted runs, long runs of one byte as
    ``'c' <repeats N times>``; one trailing NUL is not shown (gdb's rule)."""
    if drop_nul and data.endswith(b"\0") and not truncated:
        data = data[:-1]
    parts: list[str] = []
    cur = ""
    i = 0
    while i < len(data):
        j = i
        while j < len(data) and data[j] == data[i]:
            j += 1
        run = j - i
        if run > REPEAT_THRESHOLD:
            if cur:
                parts.append(f'"{cur}"')
                cur = ""
            parts.append(f"'{char_text(data[i], chr(39))}' <repeats {run} times>")
        else:
            cur += char_text(data[i], '"') * run
        i = j
    if cur or not parts:
        parts.append(f'"{cur}"')
    text = ", ".join(parts)
    return text + "..." if truncated else text


def type_name(t: Any) -> str:
    """A type's name as gdb prints it in ``(TYPE) value`` and ``whatis``: function
    types list their parameters' types only (``void *(size_t, gfp_t)``)."""
    try:
        name = _unnamed_params(t).type_name()
    except (AttributeError, TypeError, ValueError):
        name = str(t)
    return name.replace("(...)", "()")


def _unnamed_params(t: Any) -> Any:
    """``t`` with the names of function parameters dropped, through pointers and
    arrays (gdb names a function type by its parameters' types)."""
    import drgn

    prog, q = t.prog, t.qualifiers
    if t.kind == drgn.TypeKind.POINTER:
        return prog.pointer_type(_unnamed_params(t.type), t.size, qualifiers=q)
    if t.kind == drgn.TypeKind.ARRAY:
        return prog.array_type(_unnamed_params(t.type), t.length, qualifiers=q)
    if t.kind == drgn.TypeKind.FUNCTION:
        params = [drgn.TypeParameter(_unnamed_params(p.type)) for p in t.parameters]
        return prog.function_type(_unnamed_params(t.type), params, t.is_variadic,
                                  qualifiers=q)
    return t


def _unaliased(t: Any) -> Any:
    import drgn

    while t.kind == drgn.TypeKind.TYPEDEF:
        t = t.type
    return t


def _is_char(t: Any) -> bool:
    import drgn

    t = _unaliased(t)
    return t.kind == drgn.TypeKind.INT and t.name in _CHAR_NAMES


def formatted_int(v: int, size: int, fmt: str, where: Where | None = None,
                  signed: bool = False, pad: bool = False) -> str:
    """An integer of ``size`` bytes in gdb's output format ``fmt`` (``x d u o t z c a``):
    the bits at that size, read signed for ``d``; ``c`` takes the low byte as a
    ``char`` when the value's type (``signed``) is signed, else ``unsigned char``.
    ``pad``: ``x``'s units, where gdb pads ``x`` and ``t`` to the unit's width."""
    bits = v & ((1 << (8 * size)) - 1)
    negative = bits - (1 << (8 * size)) if bits >> (8 * size - 1) else bits
    if fmt == "x":
        return f"0x{bits:0{2 * size}x}" if pad else f"{bits:#x}"
    if fmt == "z":
        return f"0x{bits:0{2 * size}x}"
    if fmt == "d":
        return str(negative)
    if fmt == "u":
        return str(bits)
    if fmt == "o":
        return f"0{bits:o}" if bits else "0"
    if fmt == "t":
        return f"{bits:0{8 * size}b}" if pad else f"{bits:b}"
    if fmt == "c":
        b = v & 0xFF
        return f"{b - 256 if signed and b > 127 else b} '{char_text(b, chr(39))}'"
    if fmt == "a":
        name = where(bits) if where is not None and bits else None
        return f"{bits:#x}" + (f" <{name}>" if name else "")
    raise ValueError(f"unknown output format {fmt!r}")


def _int_text(v: int, t: Any, fmt: str | None, where: Where | None = None) -> str:
    import drgn

    if fmt:
        return formatted_int(v, _int_size(t), fmt, where, signed=_signed(t))
    if t.kind == drgn.TypeKind.BOOL:
        return "true" if v == 1 else "false" if v == 0 else str(v)
    if t.kind == drgn.TypeKind.INT and t.name in _CHAR_NAMES:
        return f"{v} '{char_text(v & 0xFF, chr(39))}'"
    return str(v)


def _int_size(t: Any) -> int:
    """An integer type's size; an enum with no size of its own (an incomplete enum,
    ``false`` of kmemu's ``bool`` enum) has its compatible type's, else ``int``'s."""
    try:
        return t.size
    except (AttributeError, ValueError):
        compat = getattr(t, "type", None)
        return compat.size if compat is not None else 4


def _signed(t: Any) -> bool:
    """Whether gdb reads an integer type as signed (an enum: by its compatible type)."""
    import drgn

    if t.kind == drgn.TypeKind.ENUM:
        t = t.type
    return t is not None and t.kind == drgn.TypeKind.INT and t.is_signed


def _pointer_text(obj: Any, t: Any, where: Where | None) -> str:
    import drgn

    v = int(obj.value_())
    text = f"{v:#x}"
    name = where(v) if where is not None and v else None
    if name:
        text += f" <{name}>"
    target = _unaliased(t.type)
    if v and target.kind == drgn.TypeKind.INT and target.name in _CHAR_NAMES and not name:
        try:
            data = obj.prog_.read(v, MAX_ELEMENTS + 1)
        except drgn.FaultError:
            return text + f" <error: Cannot access memory at address {v:#x}>"
        except (ValueError, OverflowError):
            return text
        nul = data.find(b"\0")
        body = data[:nul] if nul >= 0 else data[:MAX_ELEMENTS]
        return f"{text} {string_text(body, drop_nul=False, truncated=nul < 0)}"
    return text


def _array_text(obj: Any, t: Any, fmt: str | None, where: Where | None) -> str:
    length = t.length or 0
    shown = min(length, MAX_ELEMENTS)
    if _is_char(t.type) and not fmt:
        data = obj.prog_.read(obj.address_, shown) if obj.address_ is not None else bytes(
            int(obj[i].value_()) & 0xFF for i in range(shown))
        return string_text(data, truncated=length > MAX_ELEMENTS)
    items = [_inner(obj[i], fmt, where) for i in range(shown)]
    parts: list[str] = []
    i = 0
    while i < len(items):
        j = i
        while j < len(items) and items[j] == items[i]:
            j += 1
        if j - i > REPEAT_THRESHOLD:
            parts.append(f"{items[i]} <repeats {j - i} times>")
        else:
            parts.extend(items[i:j])
        i = j
    return "{" + ", ".join(parts) + ("..." if length > MAX_ELEMENTS else "") + "}"


def _struct_text(obj: Any, t: Any, fmt: str | None, where: Where | None) -> str:
    parts = []
    for member in t.members:
        value = obj.member_(member.name) if member.name else _anonymous(obj, member)
        text = _inner(value, fmt, where)
        parts.append(f"{member.name} = {text}" if member.name else text)
    return "{" + ", ".join(parts) + "}"


def _anonymous(obj: Any, member: Any) -> Any:
    import drgn

    if obj.address_ is not None:
        return drgn.Object(obj.prog_, member.type, address=obj.address_ + member.bit_offset // 8)
    return drgn.Object(obj.prog_, member.type, value=None)


def _inner(obj: Any, fmt: str | None, where: Where | None) -> str:
    """A value inside an aggregate (or at the top without its type prefix)."""
    import drgn

    if obj.absent_:
        return "<optimized out>"
    t = _unaliased(obj.type_)
    try:
        if t.kind in (drgn.TypeKind.STRUCT, drgn.TypeKind.UNION, drgn.TypeKind.CLASS):
            return _struct_text(obj, t, fmt, where)
        if t.kind == drgn.TypeKind.ARRAY:
            return _array_text(obj, t, fmt, where)
        if t.kind == drgn.TypeKind.POINTER:  # p/x: the bare address, as gdb's /x
            return (formatted_int(int(obj.value_()), t.size, fmt, where) if fmt
                    else _pointer_text(obj, t, where))
        if t.kind == drgn.TypeKind.FUNCTION:
            addr = obj.address_ or 0
            name = where(addr) if where is not None else None
            return f"{{{type_name(obj.type_)}}} {addr:#x}" + (f" <{name}>" if name else "")
        if t.kind == drgn.TypeKind.ENUM and not fmt:
            v = int(obj.value_())
            for e in t.enumerators or ():
                if e.value == v:
                    return e.name
            return str(v)
        v = obj.value_()
        if isinstance(v, float):
            return repr(v)
        return _int_text(int(v), t, fmt, where)
    except drgn.FaultError as e:
        return f"<error: Cannot access memory at address {e.address:#x}>"
    except (TypeError, ValueError, LookupError, drgn.ObjectAbsentError) as e:
        return f"<error: {e}>"


def format_value(obj: Any, *, hex: bool = False, where: Where | None = None,  # noqa: A002
                 top: bool = True, fmt: str | None = None) -> str:
    """``print`` 's text after ``$N = `` for ``obj`` (see the module docstring);
    ``top=False``: without the ``(type)`` of a pointer, as ``info locals`` shows it;
    ``fmt``: an output format letter of :data:`PRINT_FORMATS` (``hex``: ``"x"``)."""
    import drgn

    if obj.type_.kind == drgn.TypeKind.VOID:
        return "void"  # gdb's value of a convenience variable never set
    if obj.absent_:
        return "<optimized out>"
    fmt = fmt or ("x" if hex else None)
    if fmt == "s":
        fmt = None
    t = _unaliased(obj.type_)
    text = _inner(obj, fmt, where)
    if top and not fmt and t.kind == drgn.TypeKind.POINTER and not text.startswith("<error"):
        target = _unaliased(t.type)
        is_string = target.kind == drgn.TypeKind.INT and target.name in _CHAR_NAMES
        if not is_string or '"' not in text:
            return f"({type_name(obj.type_)}) {text}"
    return text


def frame_arg(obj: Any, where: Where | None = None) -> str:
    """An argument in a frame line (gdb's ``print frame-arguments scalars``):
    scalars as ``print`` shows them inside an aggregate, aggregates as ``...``."""
    import drgn

    if obj.absent_:
        return "<optimized out>"
    t = _unaliased(obj.type_)
    if t.kind in (drgn.TypeKind.STRUCT, drgn.TypeKind.UNION, drgn.TypeKind.ARRAY):
        return "..."
    return _inner(obj, None, where)


#: the x86 flags gdb names in ``$eflags`` (its i386_eflags type), by bit
EFLAGS_BITS = ((0, "CF"), (2, "PF"), (4, "AF"), (6, "ZF"), (7, "SF"), (8, "TF"), (9, "IF"),
               (10, "DF"), (11, "OF"), (14, "NT"), (16, "RF"), (17, "VM"), (18, "AC"),
               (19, "VIF"), (20, "VIP"), (21, "ID"))


def eflags_text(value: int) -> str:
    """``[ PF ZF IF ]``: ``$eflags`` as gdb prints it."""
    return "[ " + "".join(f"{n} " for bit, n in EFLAGS_BITS if value >> bit & 1) + "]"

