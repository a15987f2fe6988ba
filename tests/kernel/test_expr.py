"""emu.kernel.expr: C expressions over the live kernel's variables (the debugger's print)."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu import Machine
from emu.core.errors import KmemuError
from emu.kernel.expr import ExprError, evaluate, literal_type, parse, tokenize
from emu.kernel.gdbvalue import format_value

LIVE = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def ev(m: Machine, text: str):
    return evaluate(m.program, text, m.registers(), symbols=m.symbols)


def value(m: Machine, text: str) -> int:
    return int(ev(m, text))


# --- the examples the debugger must handle ------------------------------------------------


def test_nested_members_and_indexing(machine: Machine) -> None:
    v = ev(machine, "zones[1].free_area[3].nr_free")
    assert int(v) == int(machine.program["zones"][1].free_area[3].nr_free)
    assert v.address_ is not None  # an lvalue: a watch can take its address
    assert format_value(v) == str(int(v))


def test_dot_and_arrow_are_interchangeable_as_in_gdb(machine: Machine) -> None:
    cache = "kmalloc_caches[0][6]"
    assert int(ev(machine, f"{cache}.size")) == int(ev(machine, f"{cache}->size")) == 64
    assert int(ev(machine, f"{cache}->cpu_slab->tid")) == int(ev(machine,
                                                                  f"{cache}->cpu_slab.tid"))
    assert int(ev(machine, "zones->present_pages")) == int(ev(machine, "zones[0].present_pages"))


def test_cast_an_address_to_a_struct_pointer_and_dereference(machine: Machine) -> None:
    cache = machine.kmem_cache("kmalloc-64")
    v = ev(machine, f"*(struct kmem_cache *){cache:#x}")
    assert v.type_.type_name() == "struct kmem_cache"
    assert v.address_ == cache
    text = format_value(v)
    assert text.startswith("{") and 'name = "kmalloc-64", ' in text, text
    assert int(ev(machine, f"((struct kmem_cache *){cache:#x})->object_size")) == 64


def test_two_dimensional_array_of_pointers(machine: Machine) -> None:
    v = ev(machine, "kmalloc_caches[0][3]->name")
    assert format_value(v) == '"kmalloc-8", \'\\000\' <repeats 22 times>'
    assert value(machine, "kmalloc_caches[0][3]->name[0]") == ord("k")


def test_address_of_and_symbolised_pointers(machine: Machine) -> None:
    zones = machine.symbol("zones")
    size = value(machine, "sizeof(struct zone)")
    v = ev(machine, "&zones[2]")
    assert int(v) == zones + 2 * size
    text = format_value(v, where=lambda a: machine.symbolize(a).split("/")[0])
    assert text == f"(struct zone *) {zones + 2 * size:#x} <zones+{2 * size:#x}>"
    assert value(machine, "&zones[2] - &zones[0]") == 2  # pointer difference in elements


def test_sizeof_and_arithmetic(machine: Machine) -> None:
    assert format_value(ev(machine, "sizeof(struct page)")) == "64"
    assert value(machine, "sizeof(struct page *[4])") == 32
    assert value(machine, "sizeof zones / sizeof zones[0]") == 5  # Linux 6.1's zone types
    managed = int(machine.program["zones"][1].managed_pages)
    assert value(machine, "zones[1].managed_pages * 4096") == managed * 4096
    assert value(machine, "(unsigned long)&zones[1]") == machine.symbol("zones") + value(
        machine, "sizeof(struct zone)")


def test_registers(machine: Machine) -> None:
    regs = machine.registers()
    assert value(machine, "$rsp") == regs["rsp"]
    assert value(machine, "$sp + 8") == regs["rsp"] + 8
    assert value(machine, "$pc") == regs["rip"]
    assert format_value(ev(machine, "$rax")) == str(regs["rax"])
    with pytest.raises(ExprError, match=r"unknown register \$rzz"):
        ev(machine, "$rzz")
    with pytest.raises(ExprError, match="unknown register"):
        evaluate(machine.program, "$rax")  # no CPU state given


def test_pointer_arithmetic_and_casts(machine: Machine) -> None:
    mem_map = machine.read_u64(machine.symbol("mem_map"))
    assert value(machine, "mem_map + 2") == mem_map + 128
    assert value(machine, "(unsigned long)(mem_map + 2) - (unsigned long)mem_map") == 128
    assert value(machine, "(char *)mem_map + 2") == mem_map + 2
    assert value(machine, "mem_map->flags") == value(machine, "mem_map[0].flags")
    assert value(machine, "mem_map != 0 && !(mem_map == 0)") == 1
    assert value(machine, "(u8)0x1ff") == 0xFF
    # GNU C and gdb: function and void pointers step by bytes
    kmalloc = machine.symbol("kmalloc")
    assert value(machine, "kmalloc + 0x15") == kmalloc + 0x15
    assert value(machine, "4 + &kmalloc") == kmalloc + 4
    assert value(machine, "kmalloc - 1") == kmalloc - 1
    assert value(machine, "(void *)mem_map + 3") == mem_map + 3
    assert ev(machine, "kmalloc + 1").type_.type.kind.name == "FUNCTION"
    assert value(machine, "!kmalloc") == 0 and value(machine, "zones && 1") == 1


def test_enumerators_functions_and_assembly_symbols(machine: Machine) -> None:
    assert value(machine, "KMALLOC_DMA") == 2
    assert value(machine, "&kmalloc") == machine.symbol("kmalloc")
    assert value(machine, "&_stext") == machine.symbol("_stext")  # no DWARF: void at address
    assert value(machine, "&kmemu_call_return") == machine.symbol("kmemu_call_return")
    with pytest.raises(ExprError, match="no type information"):
        ev(machine, "_stext")


def test_strings_and_pointers_format_like_gdb(machine: Machine) -> None:
    assert re.fullmatch(r'0x[0-9a-f]+ "DMA32"', format_value(ev(machine, "zones[1].name")))
    assert format_value(ev(machine, "(struct zone *)0x10")) == "(struct zone *) 0x10"
    assert format_value(ev(machine, "255"), hex=True) == "0xff"


def test_long_arrays_are_cut(machine: Machine) -> None:
    text = format_value(ev(machine, "*(u64 (*)[1000])&zones"))  # gdb's print elements: 200
    assert text.startswith("{") and text.endswith("...}") and len(text.split(", ")) <= 200


# --- C semantics -------------------------------------------------------------------------


@pytest.mark.parametrize("text, want", [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("10 - 4 - 3", 3), ("100 / 10 / 5", 2),
    ("1 << 2 + 1", 8), ("1 | 2 == 2", 1), ("6 & 3 ^ 1", 3), ("1 || 0 && 0", 1),
    ("-7 / 2", -3), ("-7 % 2", -1), ("~0", -1), ("!5", 0), ("!!5", 1), ("- -3", 3),
    ("3 < 4 == 1", 1), ("2 > 1 > 0", 1), ("0x10 + 010 + 10", 34), ("'A' + '\\n'", 75),
    ("'\\x41'", 65), ("0 && (1 / 0)", 0), ("1 || (1 / 0)", 1),
    ("sizeof(int) + sizeof(long) + sizeof(char)", 13), ("(unsigned char)-1", 255),
    ("0xffffffff + 1", 0), ("0xffffffffL + 1", 1 << 32), ("4294967295u + 1", 0), ("-1ul >> 63", 1),
])
def test_c_precedence_and_promotions(machine: Machine, text: str, want: int) -> None:
    assert value(machine, text) == want


@pytest.mark.parametrize("value_, suffix, decimal, want", [
    (1, "", True, "int"), (2**31, "", True, "long"), (2**31, "", False, "unsigned int"),
    (2**63, "", True, "unsigned long"), (5, "u", True, "unsigned int"),
    (2**32, "u", False, "unsigned long"), (5, "l", True, "long"), (5, "ul", True,
                                                                   "unsigned long"),
])
def test_literal_types(value_: int, suffix: str, decimal: bool, want: str) -> None:
    assert literal_type(value_, suffix, decimal) == want


def test_literal_wider_than_64_bits() -> None:
    with pytest.raises(ExprError, match="64 bits"):
        literal_type(1 << 64, "", False)


# --- errors: one ExprError each, naming what was wrong --------------------------------------


@pytest.mark.parametrize("text, pattern", [
    ("zones[1].", r"syntax error at column 10: expected a member name"),
    ("1 +", r"syntax error at column 4: expected an expression, found end of input"),
    ("(1", r"syntax error at column 3: expected '\)'"),
    ("1 ? 2 : 3", r"syntax error at column 3: unexpected character '\?'"),
    ("0x", "bad number"), ("09", "bad octal"), ("1zz", "bad number"), ("'ab'", "character"),
    ("", "expected an expression"), ("zones[1] zones", "column 10"),
    ("no_such_thing", r'No symbol "no_such_thing" in current context\.'),
    ("zones[1].nope", r"^There is no member named nope\.$"),  # gdb's words
    ("kmalloc_caches[0][3]->nope", r"^There is no member named nope\.$"),
    ("(struct no_such *)0", r"unknown type 'struct no_such \*'"),
    ("(struct zone)1", r"cannot cast to 'struct zone'"),
    ("*(int *)0x10", r"cannot access memory at 0x10"),
    ("*(struct kmem_cache *)0xffff888000001000 ", None),  # readable (pfn 0 is the BIOS's)
    ("1 / 0", r"^Division by zero$"), ("5 % (2 - 2)", "^Division by zero$"),
    ("1 << -1", "negative shift"), ("zones + zones", "invalid operand"),
    ("zones[1] + 1", r"invalid operand 'struct zone' to '\+'"),
    ("zones[1].name->x", r"^Attempt to extract a component of a value that is not a "
                         r"structure pointer\.$"),  # gdb's words, as for '.':
    ("max_pfn.x", r"^Attempt to extract a component of a value that is not a structure\.$"),
    ("*(void *)0", r"^Attempt to dereference a generic pointer\.$"),
    ("*zones[1]", r"^Attempt to take contents of a non-pointer value\.$"),
    ("*(unsigned long)0x10", r"cannot access memory at 0x10"),  # gdb reads an int there
    ("&1", "address of a value"),
    ("-zones[1]", "invalid operand"), ("!zones[1]", "not a scalar"),
    ("zones[zones]", "index must be an integer"), ("max_pfn[1]", "cannot index"),
    ("sizeof(kmalloc)", "has no size"), ("(" * 300 + "1" + ")" * 300, "nested too deeply"),
    ("-" * 300 + "1", "nested too deeply"), ("1" + "+1" * 300, "nested too deeply"),
    ("(int)" * 2000 + "1", "nested too deeply"), ("sizeof " * 2000 + "1", "nested too deeply"),
    ("a[" * 2000, "nested too deeply"),
    ("0x1ffffffffffffffff", "64 bits"), ("$", "must name a register"),
    ("struct", "expected an expression, found .struct."),
    ("sizeof(struct 1)", "expected a tag"), ("(unsigned long", r"expected '\)'"),
])
def test_errors(machine: Machine, text: str, pattern: str | None) -> None:
    if pattern is None:
        ev(machine, text)
        return
    with pytest.raises(ExprError, match=pattern) as ei:
        ev(machine, text)
    assert isinstance(ei.value, KmemuError) and isinstance(ei.value, ValueError)
    assert "\n" not in str(ei.value)


def test_syntax_errors_carry_the_column() -> None:
    with pytest.raises(ExprError) as ei:
        parse("zones[1] # 2")
    assert ei.value.column == 10
    assert parse("zones[1] @ 2").op == "@"  # gdb's artificial array
    assert [t.kind for t in tokenize("a->b[0x1f]")] == ["ident", "op", "ident", "op", "num",
                                                        "op", "eof"]


def test_a_non_string_is_an_expr_error(machine: Machine) -> None:
    with pytest.raises(ExprError, match="must be a string"):
        evaluate(machine.program, 42)  # type: ignore[arg-type]


# --- properties ------------------------------------------------------------------------------

VOCAB = ["zones", "kmalloc_caches", "mem_map", "max_pfn", "name", "free_area", "nr_free",
         "flags", "managed_pages", "kmalloc", "_stext", "struct", "page", "zone", "kmem_cache",
         "unsigned", "long", "char", "u64", "int", "void", "const", "sizeof", "0", "1", "3",
         "0x10", "0xffff888000000000", "0xffffffff80100000", "077", "'a'", "$rsp", "$rip",
         "$nope", "(", ")", "[", "]", ".", "->", "*", "&", "-", "+", "~", "!", "/", "%", "<<",
         ">>", "<", ">", "<=", ">=", "==", "!=", "^", "|", "&&", "||", "@", "?"]


@LIVE
@given(st.lists(st.sampled_from(VOCAB), max_size=14))
def test_random_token_sequences_raise_only_expr_error(machine: Machine,
                                                      toks: list[str]) -> None:
    text = " ".join(toks)
    try:
        v = evaluate(machine.program, text, machine.registers(), symbols=machine.symbols)
    except ExprError:
        return
    assert isinstance(format_value(v, where=machine.symbolize), str)


@LIVE
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=30))
def test_random_text_raises_only_expr_error(machine: Machine, text: str) -> None:
    try:
        v = evaluate(machine.program, text, {"rax": 1})
    except ExprError:
        return
    assert isinstance(format_value(v), str)


@given(st.text(max_size=40))
def test_the_parser_alone_raises_only_expr_error(text: str) -> None:
    try:
        parse(text, lambda name: name in ("u64", "size_t"))
    except ExprError:
        pass


# Random integer trees printed with C's minimal parentheses must evaluate to what the tree
# means: the parser's precedence and associativity are C's.
PREC = {"*": 10, "/": 10, "+": 9, "-": 9, "<<": 8, ">>": 8, "<": 7, ">": 7, "==": 6,
        "!=": 6, "&": 5, "^": 4, "|": 3, "&&": 2, "||": 1}


def _c_int(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


_OPS = {"*": lambda a, b: a * b, "+": lambda a, b: a + b, "-": lambda a, b: a - b,
        "<<": lambda a, b: a << b, ">>": lambda a, b: a >> b, "<": lambda a, b: a < b,
        ">": lambda a, b: a > b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
        "&": lambda a, b: a & b, "^": lambda a, b: a ^ b, "|": lambda a, b: a | b,
        "&&": lambda a, b: bool(a and b), "||": lambda a, b: bool(a or b)}


def _apply(op: str, a: int, b: int) -> int:
    if op == "/":  # C truncates toward zero
        q = abs(a) // abs(b)
        return _c_int(q if (a < 0) == (b < 0) else -q)
    return _c_int(int(_OPS[op](a, b)))


@st.composite
def trees(draw, depth: int = 0):
    if depth > 3 or draw(st.booleans()):
        return draw(st.integers(0, 50))
    op = draw(st.sampled_from(sorted(PREC)))
    right = draw(trees(depth + 1))
    if op == "/" and (not isinstance(right, int) or right == 0):
        right = draw(st.integers(1, 9))
    if op in ("<<", ">>"):
        right = draw(st.integers(0, 8))
    return (op, draw(trees(depth + 1)), right)


def render(t, parent: int = 0, right_side: bool = False) -> str:
    if isinstance(t, int):
        return str(t)
    op, a, b = t
    text = f"{render(a, PREC[op])} {op} {render(b, PREC[op], True)}"
    need = PREC[op] < parent or (right_side and PREC[op] == parent)
    return f"({text})" if need else text


def meaning(t) -> int:
    if isinstance(t, int):
        return t
    op, a, b = t
    return _apply(op, meaning(a), meaning(b))


@LIVE
@given(trees())
def test_precedence_matches_the_tree(machine: Machine, tree) -> None:
    text = render(tree)
    want = meaning(tree)
    assert int(evaluate(machine.program, text)) == want, text


def test_local_variables_shadow_globals(machine: Machine) -> None:
    import drgn

    size = drgn.Object(machine.program, "u64", value=4000)
    zones = drgn.Object(machine.program, "int", value=7)
    local = {"size": size, "zones": zones}
    assert int(evaluate(machine.program, "size > 1000 && zones == 7", local_vars=local)) == 1
    assert int(evaluate(machine.program, "sizeof zones", local_vars=local)) == 4
