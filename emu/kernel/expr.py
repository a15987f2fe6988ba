"""Typed C expressions over kernel variables, evaluated with drgn (the debugger's ``print``).

Layer 4 (``emu.kernel``).  A hand-written tokenizer and recursive-descent
parser build a small AST; evaluation maps every node onto drgn ``Object``
operations, so types, pointer arithmetic, member offsets and integer
promotions are C's (drgn implements them from the kernel's DWARF).  Nothing
is handed to Python's ``eval``.

Supported, with C precedence: identifiers (kernel globals, functions and
enumerators: ``prog[name]``), integer literals (decimal, ``0x`` hex, ``0``
octal, ``u``/``l``/``ll`` suffixes, typed as C types them), character
literals (``'a'``, ``'\\n'``, ``'\\x41'``), registers ``$rax`` ... ``$rip``
(``$pc``, ``$sp``, ``$fp`` as in gdb; type ``unsigned long``), postfix
``.`` ``->`` ``[i]``, unary ``* & - + ~ !``, casts ``(struct page *)x``,
``sizeof(type)`` / ``sizeof expr``, binary ``* / % + - << >> < > <= >= == !=
& ^ | && ||``, gdb's ``@`` (``*p@4``: four objects from ``*p``) and parentheses.
Every error is an :class:`ExprError` with a one-line message.  gdb's text for the
result is :mod:`emu.kernel.gdbvalue`'s.

>>> v = evaluate(m.program, "zones[1].free_area[3].nr_free")     # doctest: +SKIP
>>> int(v)                                                       # doctest: +SKIP
1
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emu.core.cpu import REGISTER_NAMES
from emu.core.errors import KmemuError


class ExprError(KmemuError, ValueError):
    """An expression could not be parsed or evaluated; ``column`` is 1-based when known."""

    def __init__(self, message: str, column: int | None = None) -> None:
        self.column = column
        super().__init__(" ".join(message.split()))  # one line, whatever drgn said


MAX_DEPTH = 200  # height of the syntax tree (long operator chains)
MAX_NESTING = 64  # parentheses, brackets, casts and unary operators inside each other
MAX_CHECK_READ = 1 << 20  # evaluate() reads the result once to report faults early
REGISTER_ALIASES = {"pc": "rip", "sp": "rsp", "fp": "rbp", "eflags": "rflags"}  # gdb's
# Registers a frame above 0 may lack (``$rax`` there is "not saved", not unknown).
ALL_REGISTERS = frozenset({*REGISTER_NAMES, "eflags"})
TYPE_KEYWORDS = frozenset({"struct", "union", "enum", "const", "volatile", "unsigned",
                           "signed", "char", "short", "int", "long", "void", "_Bool", "float",
                           "double"})

# --- tokens ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # "num", "char", "ident", "reg", "op", "eof"
    text: str
    col: int  # 1-based column of the first character
    value: int = 0
    suffix: str = ""  # integer literal suffix, lower case ("", "u", "l", "ul", "ll", ...)


_OPS = ("::", "->", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||",
        "+", "-", "*", "/", "%", "&", "|", "^", "~", "!", "<", ">", "(", ")", "[", "]", ".",
        "@")
_NUM = re.compile(r"(0[xX][0-9a-fA-F]+|[0-9]+)([uUlL]*)")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_HISTORY = re.compile(r"\d+")  # $1, $2: print's value history
_SUFFIXES = {"", "u", "l", "ul", "lu", "ll", "ull", "llu"}
_ESCAPES = {"n": 10, "t": 9, "r": 13, "0": 0, "a": 7, "b": 8, "f": 12, "v": 11,
            "\\": 92, "'": 39, '"': 34, "?": 63}


def tokenize(text: str) -> list[Token]:
    """C tokens of ``text`` (an :class:`ExprError` names the column of a bad character)."""
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
            continue
        col = i + 1
        if "0" <= ch <= "9":
            m = _NUM.match(text, i)
            assert m is not None
            digits, suffix = m.group(1), m.group(2).lower()
            end = m.end()
            if end < n and (text[end].isalnum() or text[end] == "_"):
                raise ExprError(f"syntax error at column {col}: bad number "
                                f"{text[i:end + 1]!r}", col)
            if suffix not in _SUFFIXES:
                raise ExprError(f"syntax error at column {col}: bad integer suffix "
                                f"{m.group(2)!r}", col)
            if digits[:2].lower() == "0x":
                value = int(digits, 16)
            elif len(digits) > 1 and digits[0] == "0":
                if any(c in "89" for c in digits):
                    raise ExprError(f"syntax error at column {col}: bad octal number "
                                    f"{digits!r}", col)
                value = int(digits, 8)
            else:
                value = int(digits)
            out.append(Token("num", text[i:end], col, value, suffix))
            i = end
        elif ch.isascii() and (ch.isalpha() or ch == "_"):
            m = _IDENT.match(text, i)
            assert m is not None
            end = m.end()
            if text.startswith("@entry", end) and not _IDENT.match(text, end + 6):
                end += 6  # gdb's NAME@entry: an argument's value when the function began
            out.append(Token("ident", text[i:end], col))
            i = end
        elif ch == "$":
            m = _IDENT.match(text, i + 1) or _HISTORY.match(text, i + 1)
            if m is None:
                raise ExprError(f"syntax error at column {col}: '$' must name a register "
                                "or a value-history number ($1)", col)
            out.append(Token("reg", m.group(), col))
            i = m.end()
        elif ch == "'":
            value, i = _char_literal(text, i)
            out.append(Token("char", text[col - 1:i], col, value))
        else:
            op = next((o for o in _OPS if text.startswith(o, i)), None)
            if op is None:
                raise ExprError(f"syntax error at column {col}: unexpected character {ch!r}",
                                col)
            out.append(Token("op", op, col))
            i += len(op)
    out.append(Token("eof", "", n + 1))
    return out


def _char_literal(text: str, i: int) -> tuple[int, int]:
    """Value of the character literal starting at ``text[i] == "'"`` and the index after it."""
    col = i + 1
    j = i + 1
    if j < len(text) and text[j] == "\\":
        esc = text[j + 1:j + 2]
        if esc == "x":
            m = re.match(r"[0-9a-fA-F]{1,2}", text[j + 2:])
            if m is None:
                raise ExprError(f"syntax error at column {col}: bad \\x escape", col)
            value, j = int(m.group(), 16), j + 2 + m.end()
        elif esc in _ESCAPES:
            value, j = _ESCAPES[esc], j + 2
        else:
            raise ExprError(f"syntax error at column {col}: bad escape in character literal",
                            col)
    elif j < len(text) and text[j] not in "'\n" and ord(text[j]) < 128:
        value, j = ord(text[j]), j + 1
    else:
        raise ExprError(f"syntax error at column {col}: bad character literal", col)
    if j >= len(text) or text[j] != "'":
        raise ExprError(f"syntax error at column {col}: unterminated character literal", col)
    return value, j + 1


# --- syntax tree -------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One AST node: ``kind`` says which fields mean what.

    ``num``/``char`` (value, text=suffix), ``ident``/``reg`` (text=name),
    ``scoped`` (text=``function::name``, gdb's syntax for a function's variable),
    ``num`` has op "dec" for decimal literals (C types them differently);
    ``member`` (a, text=name, op "." or "->"), ``index`` (a, b), ``unary`` (op, a),
    ``cast`` (text=type, a), ``sizeof_type`` (text=type), ``sizeof`` (a),
    ``binary`` (op, a, b).
    """

    kind: str
    col: int
    text: str = ""
    op: str = ""
    value: int = 0
    a: Node | None = None
    b: Node | None = None
    depth: int = 1


def _mk(kind: str, col: int, *, a: Node | None = None, b: Node | None = None,
        **kw: Any) -> Node:
    depth = 1 + max((c.depth for c in (a, b) if c is not None), default=0)
    if depth > MAX_DEPTH:
        raise ExprError(f"expression nested too deeply at column {col}", col)
    return Node(kind, col, a=a, b=b, depth=depth, **kw)


# Binary operators by precedence, lowest first (C's table, without ?: and ,), and gdb's
# "@" (an array of N objects from an lvalue: *p@4) between the shifts and + -, as gdb.
_BINARY_LEVELS: tuple[tuple[str, ...], ...] = (
    ("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", ">", "<=", ">="),
    ("<<", ">>"), ("@",), ("+", "-"), ("*", "/", "%"),
)


class Parser:
    """Recursive descent over :func:`tokenize`'s tokens.

    ``is_type(name)`` says whether an identifier names a type (a typedef or a
    base type), which C needs to tell ``(u64)x`` from ``(x)``.
    """

    def __init__(self, text: str, is_type: Callable[[str], bool]) -> None:
        self.toks = tokenize(text)
        self.i = 0
        self.is_type = is_type
        self.nesting = 0

    # helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def advance(self) -> Token:
        t = self.tok
        if t.kind != "eof":
            self.i += 1
        return t

    def error(self, what: str, tok: Token | None = None) -> ExprError:
        t = tok or self.tok
        found = "end of input" if t.kind == "eof" else repr(t.text)
        return ExprError(f"syntax error at column {t.col}: {what}, found {found}", t.col)

    def expect(self, op: str) -> Token:
        if self.tok.kind != "op" or self.tok.text != op:
            raise self.error(f"expected {op!r}")
        return self.advance()

    def at_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def starts_type(self, t: Token) -> bool:
        return t.kind == "ident" and (t.text in TYPE_KEYWORDS or self.is_type(t.text))

    # grammar
    def parse(self) -> Node:
        if self.tok.kind == "eof":
            raise self.error("expected an expression")
        node = self.expression()
        if self.tok.kind != "eof":
            raise self.error("expected an operator or the end")
        return node

    def expression(self) -> Node:
        self.nesting += 1
        try:
            if self.nesting > MAX_NESTING:
                raise ExprError(f"expression nested too deeply at column {self.tok.col}",
                                self.tok.col)
            return self.binary(0)
        finally:
            self.nesting -= 1

    def binary(self, level: int) -> Node:
        if level == len(_BINARY_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.at_op(*_BINARY_LEVELS[level]):
            op = self.advance()
            right = self.binary(level + 1)
            left = _mk("binary", op.col, op=op.text, a=left, b=right)
        return left

    def unary(self) -> Node:
        self.nesting += 1  # unary operators, casts and sizeof nest without parentheses
        try:
            if self.nesting > MAX_NESTING:
                raise ExprError(f"expression nested too deeply at column {self.tok.col}",
                                self.tok.col)
            return self._unary()
        finally:
            self.nesting -= 1

    def _unary(self) -> Node:
        t = self.tok
        if self.at_op("*", "&", "-", "+", "~", "!"):
            self.advance()
            return _mk("unary", t.col, op=t.text, a=self.unary())
        if t.kind == "ident" and t.text == "sizeof":
            self.advance()
            if self.at_op("(") and self.starts_type(self.peek()):
                self.advance()
                ty = self.type_name()
                self.expect(")")
                return _mk("sizeof_type", t.col, text=ty)
            return _mk("sizeof", t.col, a=self.unary())
        if self.at_op("(") and self.starts_type(self.peek()):
            self.advance()
            ty = self.type_name()
            self.expect(")")
            return _mk("cast", t.col, text=ty, a=self.unary())
        return self.postfix()

    def type_name(self) -> str:
        """Specifiers, then ``*``/``const``, then ``[N]`` or ``(*)[N]``: the text drgn parses."""
        start = self.tok
        parts: list[str] = []
        named = False  # a struct tag or typedef name was taken
        while self.tok.kind == "ident":
            w = self.tok.text
            if w in ("struct", "union", "enum"):
                self.advance()
                if self.tok.kind != "ident" or self.tok.text in TYPE_KEYWORDS:
                    raise self.error(f"expected a tag after {w!r}")
                parts += [w, self.advance().text]
                named = True
            elif w in TYPE_KEYWORDS:
                parts.append(self.advance().text)
            elif not named and not any(p in TYPE_KEYWORDS - {"const", "volatile"}
                                       for p in parts) and self.is_type(w):
                parts.append(self.advance().text)
                named = True
            else:
                break
        if not parts:
            raise self.error("expected a type name", start)
        while self.at_op("*") or (self.tok.kind == "ident"
                                  and self.tok.text in ("const", "volatile")):
            parts.append(self.advance().text)
        if self.at_op("(") and self.peek().kind == "op" and self.peek().text == "*":
            self.advance()  # pointer to array: T (*)[N]
            stars = ""
            while self.at_op("*"):
                stars += self.advance().text
            self.expect(")")
            if not self.at_op("["):
                raise self.error("expected '[' (function pointer types are not supported)")
            parts.append(f"({stars}){self.array_length()}")
        elif self.at_op("["):
            parts.append(self.array_length())
        return " ".join(parts)

    def array_length(self) -> str:
        self.expect("[")
        if self.tok.kind != "num":
            raise self.error("expected an array length")
        n = self.advance().value
        self.expect("]")
        return f"[{n}]"

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            t = self.tok
            if self.at_op(".", "->"):
                self.advance()
                if self.tok.kind != "ident":
                    raise self.error(f"expected a member name after {t.text!r}")
                node = _mk("member", t.col, op=t.text, text=self.advance().text, a=node)
            elif self.at_op("["):
                self.advance()
                idx = self.expression()
                self.expect("]")
                node = _mk("index", t.col, a=node, b=idx)
            else:
                return node

    def primary(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.advance()
            digits = t.text.rstrip("uUlL")
            dec = digits == "0" or digits[0] != "0"
            return _mk("num", t.col, value=t.value, text=t.suffix, op="dec" if dec else "")
        if t.kind == "char":
            self.advance()
            return _mk("char", t.col, value=t.value)
        if t.kind == "reg":
            self.advance()
            return _mk("reg", t.col, text=t.text)
        if t.kind == "ident":
            if t.text in TYPE_KEYWORDS or t.text == "sizeof":
                raise self.error("expected an expression")
            self.advance()
            if self.at_op("::"):  # gdb's FUNCTION::VARIABLE
                self.advance()
                var = self.tok
                if var.kind != "ident":
                    raise self.error("expected a variable name after '::'")
                self.advance()
                return _mk("scoped", t.col, text=f"{t.text}::{var.text}")
            return _mk("ident", t.col, text=t.text)
        if self.at_op("("):
            self.advance()
            node = self.expression()
            self.expect(")")
            return node
        raise self.error("expected an expression")


def parse(text: str, is_type: Callable[[str], bool] = lambda name: False) -> Node:
    """The syntax tree of ``text``; ``is_type`` tells typedef names from variables."""
    try:
        return Parser(text, is_type).parse()
    except RecursionError:  # MAX_NESTING keeps well below Python's limit; never leak it
        raise ExprError("expression nested too deeply") from None


# --- evaluation --------------------------------------------------------------------------

INT_RANGES = {  # C type -> (min, max) for literal typing (LP64)
    "int": (-(1 << 31), (1 << 31) - 1), "unsigned int": (0, (1 << 32) - 1),
    "long": (-(1 << 63), (1 << 63) - 1), "unsigned long": (0, (1 << 64) - 1),
}


def literal_type(value: int, suffix: str, decimal: bool) -> str:
    """The C type of an integer literal (C11 6.4.4.1, LP64; too big for long: unsigned long)."""
    unsigned = "u" in suffix
    if "l" in suffix:
        cands = ["unsigned long"] if unsigned else ["long", "unsigned long"]
    elif unsigned:
        cands = ["unsigned int", "unsigned long"]
    elif decimal:
        cands = ["int", "long", "unsigned long"]
    else:
        cands = ["int", "unsigned int", "long", "unsigned long"]
    for c in cands:
        lo, hi = INT_RANGES[c]
        if lo <= value <= hi:
            return c
    raise ExprError(f"integer literal {value:#x} does not fit in 64 bits")


class Evaluator:
    """Evaluates a :class:`Node` tree against a drgn ``Program``."""

    def __init__(self, prog: Any, registers: Mapping[str, int] | None = None,
                 symbols: Any = None, local_vars: Mapping[str, Any] | None = None,
                 history: Sequence[Any] = (),
                 convenience: Mapping[str, Any] | None = None) -> None:
        import drgn

        self.drgn = drgn
        self.prog = prog
        self.registers = registers if registers is not None else {}
        # name -> drgn.Object: a frame's variables; may be lazy (only membership is asked
        # for every name), so never tested for truth or length here
        self.local_vars = local_vars if local_vars is not None else {}
        self.history = history  # $1, $2, ...
        # gdb's convenience variables ($name, set with "set $name = EXPR"): None means
        # none are kept here, so an unknown $name is an error, not gdb's void
        self.convenience = convenience
        self.symbols = symbols  # emu.kernel.symbols.Symbols, for names without DWARF
        self._types: dict[str, Any] = {}

    @staticmethod
    def fail(message: str, n: Node) -> ExprError:
        return ExprError(f"{message} (column {n.col})", n.col)

    def is_type(self, name: str) -> bool:
        if name in TYPE_KEYWORDS:
            return True
        try:
            self.type(name)
        except ExprError:
            return False
        return True

    def type(self, text: str, n: Node | None = None) -> Any:
        if text not in self._types:
            try:
                self._types[text] = self.prog.type(text)
            except (LookupError, SyntaxError, ValueError, TypeError, NotImplementedError):
                msg = f"unknown type {text!r}"
                raise (self.fail(msg, n) if n else ExprError(msg)) from None
        return self._types[text]

    def obj(self, type_name: str, value: int) -> Any:
        return self.drgn.Object(self.prog, self.type(type_name), value=value)

    def int_(self, value: int) -> Any:
        return self.obj("int", int(value))

    def ev(self, n: Node) -> Any:
        return getattr(self, "ev_" + n.kind)(n)

    def ev_num(self, n: Node) -> Any:
        return self.obj(literal_type(n.value, n.text, n.op == "dec"), n.value)

    def ev_char(self, n: Node) -> Any:
        """A character literal is a ``char``, as gdb types it (``p 'a'``: ``97 'a'``)."""
        value = int(n.value) & 0xFF
        return self.obj("char", value - 256 if value > 127 else value)

    def ev_reg(self, n: Node) -> Any:
        if n.text.isdigit():
            k = int(n.text)
            if not 1 <= k <= len(self.history):
                raise self.fail(f"history has no ${n.text} (values: "
                                f"{'$1..$' + str(len(self.history)) if self.history else 'none'})",
                                n)
            return self.history[k - 1]
        name = REGISTER_ALIASES.get(n.text, n.text)
        if self.convenience is not None and name not in ALL_REGISTERS:
            if n.text in self.convenience:
                return self.convenience[n.text]
            return self.drgn.Object(self.prog, self.prog.void_type())  # gdb: void until set
        if name not in self.registers and self.registers and name in ALL_REGISTERS:
            raise self.fail(f"${name} is not saved in this frame (only the callee-saved "
                            "registers, rip and rsp are known above frame 0)", n)
        if name not in self.registers:
            known = ", ".join(f"${r}" for r in sorted(self.registers)) or "none (no CPU state)"
            raise self.fail(f"unknown register ${n.text}; known: {known}", n)
        return self.obj("unsigned long", self.registers[name] & (1 << 64) - 1)

    def ev_scoped(self, n: Node) -> Any:
        """``slab_alloc::s``: the variable of that (possibly inlined, possibly
        shadowed) function in the frame's scopes."""
        fn, name = n.text.split("::", 1)
        lookup = getattr(self.local_vars, "scoped", None)
        value = lookup(fn, name) if lookup is not None else None
        if value is None:
            raise self.fail(f"no variable {name!r} of {fn}() in the selected frame's scopes",
                            n)
        return value

    def ev_ident(self, n: Node) -> Any:
        if n.text.endswith("@entry") and n.text not in self.local_vars:
            raise self.fail(f"no entry value of {n.text[:-6]!r} in this frame (only an "
                            "argument whose caller's call site says what it passed has one)",
                            n)
        if n.text in self.local_vars:
            return self.local_vars[n.text]
        try:
            return self.prog[n.text]
        except KeyError:
            pass
        except self.drgn.BadDataError:  # DWARF drgn cannot use (assembly routines)
            pass
        sym = getattr(self.symbols, "by_name", {}).get(n.text) if self.symbols else None
        if sym is not None:  # in the ELF symbol table but not in DWARF (assembly, labels)
            return self.drgn.Object(self.prog, self.type("void"), address=sym.address)
        raise ExprError(f'No symbol "{n.text}" in current context.', n.col)  # gdb's words

    def ev_member(self, n: Node) -> Any:
        assert n.a is not None
        base = self.ev(n.a)
        kind = _kind(base)
        # gdb takes either of '.' and '->' on a struct or a pointer to one, and '->'
        # on an array of structs as on a pointer to its first
        if kind == "ARRAY" and n.op == "->":
            base, kind = base[0], _kind(base[0])
        not_struct = ExprError("Attempt to extract a component of a value that is not a "
                               "structure" + (" pointer." if n.op == "->" else "."), n.col)
        if kind not in ("POINTER", "STRUCT", "UNION", "CLASS"):
            raise not_struct
        try:
            return base.member_(n.text)
        except LookupError:
            raise ExprError(f"There is no member named {n.text}.", n.col) from None  # gdb's
        except TypeError:
            raise not_struct from None

    def ev_index(self, n: Node) -> Any:
        assert n.a is not None and n.b is not None
        base, idx = self.ev(n.a), self.ev(n.b)
        if _kind(base) not in ("POINTER", "ARRAY"):
            raise self.fail(f"cannot index '{_tname(base.type_)}'", n)
        if _kind(idx) not in _INTEGER:
            raise self.fail(f"an index must be an integer, not '{_tname(idx.type_)}'", n)
        if _tkind(base.type_.type) in ("VOID", "FUNCTION"):
            raise self.fail(f"cannot index '{_tname(base.type_)}'", n)
        return base[int(idx)]

    def ev_unary(self, n: Node) -> Any:
        assert n.a is not None
        v = self.ev(n.a)
        op, kind = n.op, _kind(v)
        if op == "*":
            if kind == "FUNCTION":
                return v
            if kind in _INTEGER:  # gdb reads an int at an integer's value
                return self.drgn.Object(self.prog, self.type("int"),
                                        address=int(v) & 0xFFFFFFFFFFFFFFFF)
            if kind == "POINTER" and _tkind(v.type_.type) == "VOID":  # gdb's words
                raise ExprError("Attempt to dereference a generic pointer.", n.col)
            if kind not in ("POINTER", "ARRAY") or _tkind(v.type_.type) == "FUNCTION":
                raise ExprError("Attempt to take contents of a non-pointer value.", n.col)
            return v[0]
        if op == "&":
            if kind == "FUNCTION" or v.address_ is not None:
                return v.address_of_()
            raise self.fail("cannot take the address of a value", n)
        if op == "!":
            return self.int_(not self.truth(v, n))
        if kind not in _INTEGER:
            raise self.fail(f"invalid operand '{_tname(v.type_)}' to unary {op!r}", n)
        return {"-": lambda x: -x, "+": lambda x: +x, "~": lambda x: ~x}[op](v)

    def truth(self, v: Any, n: Node) -> bool:
        v = self.decay(v)  # an array or function is a non-null pointer, as in C
        if _kind(v) not in _SCALAR:
            raise self.fail(f"'{_tname(v.type_)}' is not a scalar", n)
        return bool(v)

    def decay(self, v: Any) -> Any:
        """Arrays and functions used as values become pointers, as in C."""
        kind = _kind(v)
        if kind == "FUNCTION":
            return v.address_of_()
        if kind == "ARRAY" and v.address_ is not None:
            return self.drgn.Object(self.prog, self.prog.pointer_type(v.type_.type),
                                    value=v.address_)
        return v

    def ev_cast(self, n: Node) -> Any:
        assert n.a is not None
        t = self.type(n.text, n)
        v = self.decay(self.ev(n.a))
        if _tkind(t) not in _SCALAR:
            raise self.fail(f"cannot cast to '{n.text}': only to scalar and pointer types", n)
        if _kind(v) not in _SCALAR:
            raise self.fail(f"cannot cast '{_tname(v.type_)}' to '{n.text}'", n)
        return self.drgn.cast(t, v)

    def ev_sizeof_type(self, n: Node) -> Any:
        return self.obj("unsigned long", self.size(self.type(n.text, n), n))

    def ev_sizeof(self, n: Node) -> Any:
        assert n.a is not None
        return self.obj("unsigned long", self.size(self.ev(n.a).type_, n))

    def size(self, t: Any, n: Node) -> int:
        try:
            return self.drgn.sizeof(t)
        except (TypeError, ValueError):
            raise self.fail(f"'{_tname(t)}' has no size", n) from None

    def ev_binary(self, n: Node) -> Any:
        assert n.a is not None and n.b is not None
        op = n.op
        if op == "@":
            return self.artificial_array(self.ev(n.a), self.ev(n.b), n)
        if op in ("&&", "||"):
            left = self.truth(self.ev(n.a), n.a)
            if (op == "&&" and not left) or (op == "||" and left):
                return self.int_(left)
            return self.int_(self.truth(self.ev(n.b), n.b))
        a, b = self.decay(self.ev(n.a)), self.decay(self.ev(n.b))
        for side in (a, b):
            if _kind(side) not in _SCALAR:
                raise self.fail(f"invalid operand '{_tname(side.type_)}' to {op!r}", n)
        if op in _COMPARE:
            if (_kind(a) == "POINTER") != (_kind(b) == "POINTER"):  # ptr == 0 and the like
                a, b = self.obj("unsigned long", int(a)), self.obj("unsigned long", int(b))
            try:
                return self.int_(_COMPARE[op](a, b))
            except TypeError as e:
                raise self.fail(f"cannot compare: {e}", n) from None
        if op in ("/", "%") and _kind(b) in _INTEGER and int(b) == 0:
            raise ExprError("Division by zero", n.col)  # gdb's words
        if op in ("<<", ">>") and _kind(b) in _INTEGER and int(b) < 0:
            raise self.fail("negative shift count", n)
        gnu = self.byte_pointer_arith(op, a, b)
        if gnu is not None:
            return gnu
        try:
            return _ARITH[op](a, b)
        except ZeroDivisionError:
            raise ExprError("Division by zero", n.col) from None
        except (TypeError, ValueError) as e:
            raise self.fail(f"invalid operands to {op!r}: {e}", n) from None


    def artificial_array(self, a: Any, b: Any, n: Node) -> Any:
        """gdb's ``a@b``: ``b`` objects of ``a``'s type in memory from ``a``'s address
        (gdb's words for what it refuses)."""
        if _kind(b) not in _INTEGER:
            raise ExprError("Non-integral right operand for \"@\" operator.", n.col)
        count = int(b)
        if a.address_ is None:
            raise ExprError("Only values in memory can be extended with '@'.", n.col)
        if count <= 0:
            raise ExprError(f"Invalid number {count} of repetitions.", n.col)
        return self.drgn.Object(self.prog, self.prog.array_type(a.type_, count),
                                address=a.address_)

    def byte_pointer_arith(self, op: str, a: Any, b: Any) -> Any:
        """GNU C (and gdb): ``void *`` and function pointers step by bytes, so
        ``kmalloc + 0x15`` is an address inside kmalloc.  None for other operands."""
        if op == "+" and _kind(a) in _INTEGER and _kind(b) == "POINTER":
            a, b = b, a
        if op not in ("+", "-") or _kind(a) != "POINTER" or _kind(b) not in _INTEGER:
            return None
        t = a.type_
        while t.kind == self.drgn.TypeKind.TYPEDEF:
            t = t.type
        if _tkind(t.type) not in ("FUNCTION", "VOID"):
            return None
        delta = int(b) if op == "+" else -int(b)
        return self.drgn.Object(self.prog, a.type_, value=(int(a) + delta) & ((1 << 64) - 1))


_INTEGER = ("INT", "BOOL", "ENUM")
_SCALAR = ("INT", "BOOL", "ENUM", "POINTER", "FLOAT")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}
_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "*": lambda a, b: a * b, "/": lambda a, b: a / b, "%": lambda a, b: a % b,
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "<<": lambda a, b: a << b,
    ">>": lambda a, b: a >> b, "&": lambda a, b: a & b, "^": lambda a, b: a ^ b,
    "|": lambda a, b: a | b,
}


def _tkind(t: Any) -> str:
    """drgn ``TypeKind`` name of ``t``, typedefs looked through (``"INT"``, ``"POINTER"``)."""
    import drgn

    while t.kind == drgn.TypeKind.TYPEDEF:
        t = t.type
    return t.kind.name


def _kind(o: Any) -> str:
    return _tkind(o.type_)


def _tname(t: Any) -> str:
    """``struct zone``, not the whole definition that ``str(type)`` gives."""
    try:
        return t.type_name()
    except (AttributeError, TypeError, ValueError):
        return str(t)


def evaluate(prog: Any, text: str, registers: Mapping[str, int] | None = None, *,
             symbols: Any = None, local_vars: Mapping[str, Any] | None = None,
             history: Sequence[Any] = (), convenience: Mapping[str, Any] | None = None,
             ) -> Any:
    """Evaluate C expression ``text`` against ``prog`` (a ``drgn.Program``): a ``drgn.Object``.

    ``registers`` maps names (``"rax"``, ``"rip"``, ...) to values for ``$name``;
    ``local_vars`` maps names to ``drgn.Object`` values that shadow globals (a
    frame's parameters and locals); ``history`` holds ``$1``, ``$2``, ...;
    ``convenience`` gdb's ``$name`` variables (one not in it is ``void``, as in gdb;
    without the mapping an unknown ``$name`` is an error);
    ``symbols`` (:class:`emu.kernel.symbols.Symbols`) resolves names that have no
    DWARF (assembly labels) as ``void`` objects at their address (``&_stext``).
    An lvalue result stays a reference (its ``address_`` is known, for ``watch``);
    it is read once here so unreadable memory fails now.

    >>> evaluate(m.program, "kmalloc_caches[0][3]->name")      # doctest: +SKIP
    Object(prog, 'char [32]', address=0xffff88800ff09200)
    >>> evaluate(m.program, "$rsp + 8", m.registers())          # doctest: +SKIP
    Object(prog, 'unsigned long', value=18446744071563288552)
    """
    import drgn

    if not isinstance(text, str):
        raise ExprError(f"an expression must be a string, not {type(text).__name__}")
    ev = Evaluator(prog, registers, symbols, local_vars, history, convenience)
    try:
        tree = Parser(text, ev.is_type).parse()
        result = ev.ev(tree)
        _check_readable(drgn, result)
        return result
    except ExprError:
        raise
    except drgn.FaultError as e:
        raise ExprError(f"cannot access memory at {e.address:#x}") from None
    except drgn.ObjectAbsentError:
        raise ExprError("the value is not available (optimized out)") from None
    except (drgn.BadDataError, drgn.MissingDebugInfoError, drgn.OutOfBoundsError) as e:
        raise ExprError(f"cannot evaluate {text.strip()!r}: {e}") from None
    except RecursionError:
        raise ExprError("expression nested too deeply") from None
    except (LookupError, TypeError, ValueError, SyntaxError, OverflowError,
            NotImplementedError, ZeroDivisionError) as e:
        raise ExprError(f"cannot evaluate {text.strip()!r}: {e}") from None


def _check_readable(drgn: Any, obj: Any) -> None:
    kind = _kind(obj)
    if kind == "VOID" and obj.address_ is None:
        return  # gdb's void: a convenience variable never set
    if kind == "VOID":
        raise ExprError("the symbol has no type information (assembly); use & to get its "
                        "address")
    if kind == "FUNCTION" or obj.address_ is None:
        return
    if drgn.sizeof(obj) <= MAX_CHECK_READ:
        obj.read_()
