"""GFP flags: emu/kernel/gfp.py on its own, and against kernel/include/linux/gfp.h + kernel/gfp.c.

The C side is checked by compiling it with the host gcc (skipped without one):
the kernel build line must accept ``kernel/gfp.c``; a host program built with
``-I kernel/include`` prints every ``GFP`` macro of ``gfp.h`` so the two tables
cannot drift; ``gfp.c`` linked into a host driver must print what
:func:`emu.kernel.gfp.format` prints.

"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emu.core.errors import KmemuError
from emu.kernel import gfp
from emu.kernel.gfp import GFP_FLAGS, GfpError

ROOT = Path(__file__).resolve().parent.parent
KERNEL = ROOT / "kernel"
INCLUDE = KERNEL / "include"
INTERNAL = KERNEL / "internal"
GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc not installed")

KERNEL_CFLAGS = [
    "-std=gnu11", "-ffreestanding", "-nostdlib", "-nostdinc", "-fno-builtin", "-mno-red-zone",
    "-mno-sse", "-mgeneral-regs-only", "-mcmodel=kernel", "-fno-pic", "-O2", "-Wall", "-Wextra",
    "-Werror",
]

# Linux's ___GFP_*_BIT enum (include/linux/gfp_types.h, 6.8+), in order; None is
# ___GFP_UNUSED_BIT (0x200, once ___GFP_ATOMIC).
ENUM_ORDER = [
    "DMA", "HIGHMEM", "DMA32", "MOVABLE", "RECLAIMABLE", "HIGH", "IO", "FS", "ZERO", None,
    "DIRECT_RECLAIM", "KSWAPD_RECLAIM", "WRITE", "NOWARN", "RETRY_MAYFAIL", "NOFAIL", "NORETRY",
    "MEMALLOC", "COMP", "NOMEMALLOC", "HARDWALL", "THISNODE", "ACCOUNT", "ZEROTAGS",
]
SINGLE = {f"__GFP_{n}": 1 << i for i, n in enumerate(ENUM_ORDER) if n}
UNUSED_BIT = 0x200

COMPOUND = {
    "__GFP_RECLAIM": 0xC00,
    "GFP_KERNEL": 0xCC0,
    "GFP_KERNEL_ACCOUNT": 0x400CC0,
    "GFP_ATOMIC": 0x820,
    "GFP_NOWAIT": 0x800,
    "GFP_NOIO": 0xC00,
    "GFP_NOFS": 0xC40,
    "GFP_USER": 0x100CC0,
    "GFP_DMA": 0x1,
    "GFP_DMA32": 0x4,
    "GFP_HIGHUSER": 0x100CC2,
    "GFP_HIGHUSER_MOVABLE": 0x100CCA,
    "GFP_TRANSHUGE_LIGHT": 0x1C20CA,
    "GFP_TRANSHUGE": 0x1C24CA,
}

DMA, HIGHMEM, DMA32, MOVABLE = 0x1, 0x2, 0x4, 0x8
NOFAIL, NORETRY, DIRECT_RECLAIM = 0x8000, 0x10000, 0x400
# GFP_ZONE_BAD from include/linux/gfp.h: the zone-modifier combinations gfp_zone() BUGs on.
ZONE_BAD = {
    DMA | HIGHMEM, DMA | DMA32, DMA32 | HIGHMEM, DMA | DMA32 | HIGHMEM,
    MOVABLE | HIGHMEM | DMA, MOVABLE | DMA32 | DMA, MOVABLE | DMA32 | HIGHMEM,
    MOVABLE | DMA32 | DMA | HIGHMEM,
}


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(("name", "value"), [
    ("GFP_KERNEL", 0xCC0), ("GFP_ATOMIC", 0x820), ("GFP_NOWAIT", 0x800),
    ("__GFP_ZERO", 0x100), ("__GFP_NOWARN", 0x2000), ("__GFP_NOFAIL", 0x8000),
    ("__GFP_NORETRY", 0x10000), ("__GFP_DMA", 0x1), ("__GFP_DMA32", 0x4), ("__GFP_HIGH", 0x20),
    ("__GFP_DIRECT_RECLAIM", 0x400), ("__GFP_KSWAPD_RECLAIM", 0x800),
])
def test_well_known_values(name: str, value: int) -> None:
    assert GFP_FLAGS[name] == value
    assert gfp.parse(name, strict=False) == value


@pytest.mark.parametrize(("name", "value"), sorted(SINGLE.items()))
def test_single_flags_follow_linux_enum(name: str, value: int) -> None:
    assert GFP_FLAGS[name] == value


@pytest.mark.parametrize(("name", "value"), sorted(COMPOUND.items()))
def test_compound_flags(name: str, value: int) -> None:
    assert GFP_FLAGS[name] == value


def test_flag_table_is_exactly_linux_names() -> None:
    assert set(GFP_FLAGS) == set(SINGLE) | set(COMPOUND)
    assert all(v & UNUSED_BIT == 0 for v in GFP_FLAGS.values())
    assert gfp.ZONE_MODIFIERS == DMA | HIGHMEM | DMA32 | MOVABLE


def test_compound_definitions() -> None:
    f = GFP_FLAGS
    assert f["GFP_HIGHUSER"] == f["GFP_USER"] | f["__GFP_HIGHMEM"]
    assert f["GFP_HIGHUSER_MOVABLE"] == f["GFP_HIGHUSER"] | f["__GFP_MOVABLE"]
    assert f["GFP_TRANSHUGE"] == f["GFP_TRANSHUGE_LIGHT"] | f["__GFP_DIRECT_RECLAIM"]
    assert f["GFP_TRANSHUGE_LIGHT"] & f["__GFP_RECLAIM"] == 0
    assert f["GFP_ATOMIC"] & f["__GFP_DIRECT_RECLAIM"] == 0
    assert f["GFP_NOWAIT"] == f["GFP_ATOMIC"] & ~f["__GFP_HIGH"]


# --------------------------------------------------------------------------- parse


@pytest.mark.parametrize(("spec", "value"), [
    (0xCC0, 0xCC0),
    (0, 0),
    (0x820, 0x820),
    ("GFP_KERNEL | __GFP_ZERO", 0xDC0),
    ("GFP_ATOMIC|__GFP_NOWARN", 0x2820),
    ("  GFP_KERNEL\t|\n__GFP_ZERO  ", 0xDC0),
    ("0x820", 0x820),
    ("0X820", 0x820),
    ("3264", 0xCC0),
    ("GFP_KERNEL | 0x100", 0xDC0),
    ("GFP_KERNEL|GFP_KERNEL", 0xCC0),
    ("GFP_KERNEL | __GFP_DMA32", 0xCC4),
    ("GFP_HIGHUSER_MOVABLE", 0x100CCA),
])
def test_parse(spec: str | int, value: int) -> None:
    assert gfp.parse(spec) == value


@pytest.mark.parametrize(("spec", "match"), [
    ("GFP_KERNL", r"unknown GFP flag 'GFP_KERNL'.*did you mean GFP_KERNEL"),
    ("__GFP_ZER0", r"did you mean __GFP_ZERO"),
    ("GFP_KERNEL | __GFP_NOWARNN", r"'__GFP_NOWARNN'.*did you mean __GFP_NOWARN"),
    ("gfp_kernel", r"unknown GFP flag 'gfp_kernel'"),  # names are case-sensitive
    ("XYZZY", r"unknown GFP flag 'XYZZY'$"),
    ("", r"empty"),
    ("   ", r"empty"),
    ("GFP_KERNEL |", r"empty"),
    ("| GFP_KERNEL", r"empty"),
    ("GFP_KERNEL || __GFP_ZERO", r"empty"),
    ("0xZZ", r"0xZZ"),
    ("-1", r"'-1'"),
    ("0x100000000", r"32 bits"),
    (2**32, r"32-bit"),
    (-1, r"32-bit"),
    (True, r"bool"),
    (1.0, r"float"),
    (None, r"NoneType"),
])
def test_parse_errors(spec: object, match: str) -> None:
    with pytest.raises(GfpError, match=match):
        gfp.parse(spec)  # type: ignore[arg-type]


def test_gfp_error_is_kmemu_and_value_error() -> None:
    assert issubclass(GfpError, KmemuError)
    assert issubclass(GfpError, ValueError)
    with pytest.raises(ValueError):
        gfp.parse("nonsense")


@pytest.mark.parametrize("zone", [
    z for z in range(16)
])
def test_zone_combinations_rejected_exactly_as_gfp_zone_bad(zone: int) -> None:
    spec = f"GFP_KERNEL | {zone:#x}"
    if zone in ZONE_BAD:
        with pytest.raises(GfpError, match="zone"):
            gfp.parse(spec)
        assert gfp.parse(spec, strict=False) == 0xCC0 | zone
    else:
        assert gfp.parse(spec) == 0xCC0 | zone


@pytest.mark.parametrize("spec", [
    "GFP_KERNEL | __GFP_DMA | __GFP_DMA32",
    "__GFP_DMA | __GFP_HIGHMEM",
    "GFP_DMA32 | __GFP_HIGHMEM",
    "GFP_HIGHUSER | __GFP_DMA",
])
def test_more_than_one_zone_message(spec: str) -> None:
    with pytest.raises(GfpError, match="more than one zone"):
        gfp.parse(spec)


def test_nofail_noretry_rejected_unless_not_strict() -> None:
    with pytest.raises(GfpError, match="__GFP_NOFAIL and __GFP_NORETRY"):
        gfp.parse("GFP_KERNEL | __GFP_NOFAIL | __GFP_NORETRY")
    with pytest.raises(GfpError, match="__GFP_NOFAIL and __GFP_NORETRY"):
        gfp.parse(0xCC0 | NOFAIL | NORETRY)
    assert gfp.parse("GFP_KERNEL | __GFP_NOFAIL | __GFP_NORETRY", strict=False) == 0x18CC0
    assert gfp.parse("GFP_KERNEL | __GFP_NOFAIL") == 0x8CC0
    assert gfp.parse("GFP_KERNEL | __GFP_NORETRY") == 0x10CC0


def test_nofail_without_direct_reclaim_rejected_when_strict() -> None:
    with pytest.raises(GfpError, match="__GFP_NOFAIL"):
        gfp.parse("GFP_ATOMIC | __GFP_NOFAIL")


def test_nofail_without_direct_reclaim_allowed_when_not_strict() -> None:
    assert gfp.parse("GFP_ATOMIC | __GFP_NOFAIL", strict=False) == 0x8820
    assert gfp.parse("GFP_NOWAIT | __GFP_NOFAIL", strict=False) == 0x8800


def test_error_message_shows_mode() -> None:
    with pytest.raises(GfpError, match=re.escape("0x18cc0(GFP_KERNEL|__GFP_NOFAIL|__GFP_NORETRY)")):
        gfp.parse("GFP_KERNEL|__GFP_NOFAIL|__GFP_NORETRY")


# --------------------------------------------------------------------------- format


@pytest.mark.parametrize(("value", "text"), [
    (0xCC0, "GFP_KERNEL"),
    (0x820, "GFP_ATOMIC"),
    (0x800, "GFP_NOWAIT"),
    (0xDC0, "GFP_KERNEL|__GFP_ZERO"),
    (0x2820, "GFP_ATOMIC|__GFP_NOWARN"),
    (0x400CC0, "GFP_KERNEL_ACCOUNT"),
    (0x400DC0, "GFP_KERNEL_ACCOUNT|__GFP_ZERO"),
    (0xC40, "GFP_NOFS"),
    (0xC00, "GFP_NOIO"),  # never __GFP_RECLAIM: GFP_NOIO comes first and has the same bits
    (0x100CC0, "GFP_USER"),
    (0x100CC2, "GFP_HIGHUSER"),
    (0x100CCA, "GFP_HIGHUSER_MOVABLE"),
    (0x140CCA, "GFP_HIGHUSER_MOVABLE|__GFP_COMP"),
    (0x1C20CA, "GFP_TRANSHUGE_LIGHT"),
    (0x1C24CA, "GFP_TRANSHUGE"),
    (0xCC1, "GFP_KERNEL|GFP_DMA"),
    (0xCC4, "GFP_KERNEL|GFP_DMA32"),
    (0x821, "GFP_ATOMIC|GFP_DMA"),  # Linux's test_printf expects this one
    (0x2, "__GFP_HIGHMEM"),
    (0x20, "__GFP_HIGH"),
    (0x400, "__GFP_DIRECT_RECLAIM"),
    (0xCC0 | UNUSED_BIT, "GFP_KERNEL|0x200"),
    (0xFC000000, "0xfc000000"),  # Linux's test_printf: ~__GFP_BITS_MASK stays numeric
    (0xFC000020, "__GFP_HIGH|0xfc000000"),
    (0x1000000, "0x1000000"),
    (0, "none"),  # as Linux's tracepoints; %pGg itself prints nothing for 0
])
def test_format(value: int, text: str) -> None:
    assert gfp.format(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (0xDC0, "0xdc0(GFP_KERNEL|__GFP_ZERO)"),
    (0xCC0, "0xcc0(GFP_KERNEL)"),
    (0x820, "0x820(GFP_ATOMIC)"),
    (0x0, "0x0(none)"),
])
def test_mode_string(value: int, text: str) -> None:
    assert gfp.mode_string(value) == text


def test_single_flags_after_compounds() -> None:
    text = gfp.format(0xCC0 | 0x2000 | 0x100 | 0x40000)
    names = text.split("|")
    assert names[0] == "GFP_KERNEL"
    assert set(names[1:]) == {"__GFP_NOWARN", "__GFP_ZERO", "__GFP_COMP"}


def test_allows_blocking() -> None:
    assert gfp.allows_blocking(gfp.parse("GFP_KERNEL"))
    assert gfp.allows_blocking(gfp.parse("GFP_NOIO"))
    assert gfp.allows_blocking(gfp.parse("GFP_TRANSHUGE"))
    assert not gfp.allows_blocking(gfp.parse("GFP_ATOMIC"))
    assert not gfp.allows_blocking(gfp.parse("GFP_NOWAIT"))
    assert not gfp.allows_blocking(gfp.parse("GFP_TRANSHUGE_LIGHT"))
    assert not gfp.allows_blocking(gfp.parse("__GFP_KSWAPD_RECLAIM"))


@pytest.mark.parametrize(("spec", "zone"), [
    ("GFP_KERNEL", "Normal"),
    ("GFP_ATOMIC", "Normal"),
    ("GFP_KERNEL | __GFP_DMA", "DMA"),
    ("GFP_DMA", "DMA"),
    ("GFP_KERNEL | __GFP_DMA32", "DMA32"),
    ("GFP_HIGHUSER", "Normal"),  # no ZONE_HIGHMEM on x86-64
    ("GFP_HIGHUSER_MOVABLE", "Normal"),
    ("GFP_KERNEL | __GFP_MOVABLE", "Normal"),
])
def test_zone_modifier(spec: str, zone: str) -> None:
    assert gfp.zone_modifier(gfp.parse(spec)) == zone


# --------------------------------------------------------------------------- round trips

single_subsets = st.sets(st.sampled_from(sorted(SINGLE.values())), min_size=1).map(
    lambda s: sum(s))
any_nonzero = st.integers(1, 2**32 - 1)


@given(single_subsets)
def test_parse_format_round_trip_single_flags(x: int) -> None:
    assert gfp.parse(gfp.format(x), strict=False) == x


@given(any_nonzero)
def test_parse_format_round_trip_any_bits(x: int) -> None:
    assert gfp.parse(gfp.format(x), strict=False) == x


@given(any_nonzero)
def test_format_tokens_are_disjoint_and_cover(x: int) -> None:
    tokens = gfp.format(x).split("|")
    values = [gfp.parse(t, strict=False) for t in tokens]
    assert sum(values) == x  # disjoint: no bit is claimed twice
    *names, last = tokens
    assert all(t in GFP_FLAGS for t in names)
    if last not in GFP_FLAGS:  # leftover bits no name covers: bit 9 and bits 24..31
        assert re.fullmatch(r"0x[0-9a-f]+", last)
        assert values[-1] & ~(UNUSED_BIT | 0xFF000000) == 0


@given(single_subsets, st.booleans())
def test_parse_spelling_is_irrelevant(x: int, spaced: bool) -> None:
    names = [n for n, v in SINGLE.items() if x & v]
    spec = (" | " if spaced else "|").join(names)
    assert gfp.parse(spec, strict=False) == x
    assert gfp.parse(x, strict=False) == x
    assert gfp.parse(hex(x), strict=False) == x


@given(single_subsets)
def test_strict_parse_agrees_with_linux_rules(x: int) -> None:
    zone = x & (DMA | HIGHMEM | DMA32 | MOVABLE)
    bad = (zone in ZONE_BAD or (x & NOFAIL and x & NORETRY)
           or (x & NOFAIL and not x & DIRECT_RECLAIM))
    if bad:
        with pytest.raises(GfpError):
            gfp.parse(x)
    else:
        assert gfp.parse(x) == x


# --------------------------------------------------------------------------- the C side


def _run(cmd: list[str | Path], **kw: object) -> str:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout}{r.stderr}"
    return r.stdout


@needs_gcc
def test_gfp_c_compiles_with_kernel_flags(tmp_path: Path) -> None:
    _run([GCC, *KERNEL_CFLAGS, "-I", INCLUDE, "-I", INTERNAL, "-c", KERNEL / "gfp.c", "-o",
          tmp_path / "gfp.o"], cwd=ROOT)
    assert (tmp_path / "gfp.o").stat().st_size > 0


@needs_gcc
def test_gfp_h_compiles_alone_with_kernel_flags(tmp_path: Path) -> None:
    src = tmp_path / "only.c"
    src.write_text("#include <linux/gfp.h>\n"
                   "bool f(gfp_t g) { return gfpflags_allow_blocking(g); }\n"
                   "_Static_assert(sizeof(gfp_t) == 4, \"gfp_t is 32 bits\");\n"
                   "_Static_assert((gfp_t)-1 > 0, \"gfp_t is unsigned\");\n")
    _run([GCC, *KERNEL_CFLAGS, "-I", INCLUDE, "-c", src, "-o", tmp_path / "only.o"])


@pytest.fixture(scope="module")
def header_values(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Every object-like GFP macro of gfp.h, evaluated by a host program."""
    if GCC is None:
        pytest.skip("gcc not installed")
    tmp = tmp_path_factory.mktemp("gfp_h")
    probe = tmp / "probe.c"
    probe.write_text("#include <linux/gfp.h>\n")
    macros = _run([GCC, "-E", "-dM", "-nostdinc", "-I", INCLUDE, probe])
    names = sorted({m.group(1) for m in re.finditer(r"^#define (_*GFP_\w+) ", macros, re.M)})
    assert "GFP_KERNEL" in names and "___GFP_DMA" in names
    prog = tmp / "values.c"
    lines = [f'\tprintf("{n} %u\\n", (unsigned int)({n}));' for n in names]
    prog.write_text("#include <linux/gfp.h>\nint printf(const char *fmt, ...);\n"
                    "int main(void)\n{\n" + "\n".join(lines) + "\n\treturn 0;\n}\n")
    exe = tmp / "values"
    _run([GCC, "-std=gnu11", "-O0", "-Wall", "-Werror", "-I", INCLUDE, prog, "-o", exe])
    out = _run([exe])
    return {n: int(v) for n, v in (line.split() for line in out.splitlines())}


def test_header_defines_every_python_name(header_values: dict[str, int]) -> None:
    public = {n: v for n, v in header_values.items() if not n.startswith("___")}
    assert set(public) - {"GFP_ZONEMASK"} == set(GFP_FLAGS)
    for name, value in GFP_FLAGS.items():
        assert public[name] == value, f"{name}: gfp.h {public[name]:#x} != gfp.py {value:#x}"
    assert public["GFP_ZONEMASK"] == gfp.ZONE_MODIFIERS


def test_header_raw_bits_match_masks(header_values: dict[str, int]) -> None:
    raw = {n[1:]: v for n, v in header_values.items() if n.startswith("___GFP_")}
    assert raw == SINGLE


@pytest.fixture(scope="module")
def c_format(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kernel/gfp.c built for the host (freestanding, libc's snprintf), with a driver.

    The driver reads ``value len`` lines (len < 512) and prints, for each, the return
    value, whether the byte at ``buf[len]`` is untouched, whether there is a NUL in
    ``buf[0:len]`` (trivially true for len 0), and the text.
    """
    if GCC is None:
        pytest.skip("gcc not installed")
    tmp = tmp_path_factory.mktemp("gfp_c")
    _run([GCC, "-std=gnu11", "-ffreestanding", "-nostdinc", "-fno-builtin", "-O2", "-Wall",
          "-Wextra", "-Werror", "-I", INCLUDE, "-I", INTERNAL, "-c", KERNEL / "gfp.c", "-o",
          tmp / "gfp.o"])
    (tmp / "drv.c").write_text(r"""
#include <stdio.h>
#include <string.h>
int gfp_format(char *buf, unsigned long len, unsigned int gfp);
int main(void)
{
	unsigned int v;
	unsigned long len;
	char buf[600];
	while (scanf("%x %lu", &v, &len) == 2 && len < 512) {
		memset(buf, '#', sizeof(buf));
		int n = gfp_format(buf, len, v);
		int intact = buf[len] == '#';                    /* nothing written past len */
		int terminated = len == 0 || memchr(buf, 0, len) != NULL;
		buf[len] = 0;
		printf("%d %d %d %s\n", n, intact, terminated, buf);
	}
	return 0;
}
""")
    exe = tmp / "fmt"
    _run([GCC, "-O2", "-Wall", "-Werror", tmp / "drv.c", tmp / "gfp.o", "-o", exe])
    return exe


def _c_format_many(exe: Path, values: list[int], length: int = 511) -> list[tuple[int, str]]:
    """(return value, text) of gfp_format() for each value; asserts it stayed in bounds."""
    out = _run([exe], input="".join(f"{v:#x} {length}\n" for v in values))
    rows = [line.split(" ", 3) for line in out.splitlines()]
    assert len(rows) == len(values)
    for v, (_, intact, terminated, _) in zip(values, rows, strict=True):
        assert intact == "1", f"gfp_format({v:#x}, len={length}) wrote past the buffer"
        assert terminated == "1", f"gfp_format({v:#x}, len={length}) left no NUL"
    return [(int(n), text) for n, _, _, text in rows]


def _check_agree(exe: Path, values: list[int]) -> None:
    got = _c_format_many(exe, values)
    pairs = zip(values, got, strict=True)
    bad = [(hex(v), c, gfp.format(v)) for v, (_, c) in pairs if c != gfp.format(v)]
    assert not bad, f"gfp.c and emu.kernel.gfp disagree (value, C, Python): {bad[:10]}"
    for v, (n, c) in zip(values, got, strict=True):
        assert n == len(c), (hex(v), n, c)


def test_c_format_matches_python_on_named_values(c_format: Path) -> None:
    values = sorted(set(GFP_FLAGS.values()))
    values += [v | UNUSED_BIT for v in values] + [0, UNUSED_BIT, 0xFC000000, 0xFC000020]
    values += [GFP_FLAGS["GFP_KERNEL"] | s for s in SINGLE.values()]
    values += [GFP_FLAGS["GFP_ATOMIC"] | s for s in SINGLE.values()]
    _check_agree(c_format, values)


def test_c_format_matches_python_on_every_bit(c_format: Path) -> None:
    _check_agree(c_format, [1 << b for b in range(32)])


def test_c_format_matches_python_on_pairs_and_random(c_format: Path) -> None:
    singles = sorted(SINGLE.values())
    values = [a | b for i, a in enumerate(singles) for b in singles[i + 1:]]
    rng = random.Random(0x6FB)
    values += [rng.getrandbits(32) for _ in range(2000)]
    values += [rng.getrandbits(24) & ~UNUSED_BIT for _ in range(2000)]
    _check_agree(c_format, values)


@pytest.mark.parametrize("length", [1, 2, 5, 10, 11, 20])
def test_c_format_truncates_like_snprintf(c_format: Path, length: int) -> None:
    full = "GFP_KERNEL|__GFP_ZERO"
    [(n, text)] = _c_format_many(c_format, [0xDC0], length)
    assert n == len(full)  # the length it would have needed
    assert text == full[: length - 1]


def test_c_format_len_zero_writes_nothing(c_format: Path) -> None:
    [(n, _)] = _c_format_many(c_format, [0xDC0], 0)
    assert n == len("GFP_KERNEL|__GFP_ZERO")
