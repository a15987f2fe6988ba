"""Tests of :mod:`emu.firmware.e820`."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.core.errors import KmemuError
from emu.firmware.e820 import (
    E820_ACPI,
    E820_NVS,
    E820_PMEM,
    E820_RAM,
    E820_RESERVED,
    E820_UNUSABLE,
    TYPE_NAMES,
    E820Entry,
    E820Error,
    E820Map,
    check_bootable,
    default_map,
    load_map,
    parse_map,
    parse_size,
)

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
PAGE = 4 * KIB


def covered(m: E820Map, start: int, end: int, type_: int) -> bool:
    """True if a single entry of type *type_* covers [start, end)."""
    return any(e.type == type_ and e.base <= start and e.end >= end for e in m)


def usable_overlapping(m: E820Map, start: int, end: int) -> list[E820Entry]:
    return [e for e in m if e.type == E820_RAM and e.base < end and e.end > start]


# --------------------------------------------------------------------------- constants


def test_type_constants_and_names() -> None:
    assert (E820_RAM, E820_RESERVED, E820_ACPI, E820_NVS, E820_UNUSABLE, E820_PMEM) == (
        1,
        2,
        3,
        4,
        5,
        7,
    )
    assert TYPE_NAMES == {
        1: "usable",
        2: "reserved",
        3: "ACPI data",
        4: "ACPI NVS",
        5: "unusable",
        7: "persistent (type 7)",
    }


def test_error_hierarchy() -> None:
    assert issubclass(E820Error, KmemuError)
    assert issubclass(E820Error, ValueError)


# --------------------------------------------------------------------------- entries


def test_entry_end_and_linux_line() -> None:
    e = E820Entry(0, 0x9FC00, E820_RAM)
    assert e.end == 0x9FC00
    assert (
        e.linux_line()
        == "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable"
    )


@pytest.mark.parametrize(
    ("entry", "line"),
    [
        (
            E820Entry(0x9FC00, 0x400, 2),
            "BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff] reserved",
        ),
        (
            E820Entry(0xFFC0000, 0x20000, 3),
            "BIOS-e820: [mem 0x000000000ffc0000-0x000000000ffdffff] ACPI data",
        ),
        (
            E820Entry(0x1000, 0x1000, 4),
            "BIOS-e820: [mem 0x0000000000001000-0x0000000000001fff] ACPI NVS",
        ),
        (
            E820Entry(0x1000, 0x1000, 5),
            "BIOS-e820: [mem 0x0000000000001000-0x0000000000001fff] unusable",
        ),
        (
            E820Entry(0x100000000, 0x40000000, 7),
            "BIOS-e820: [mem 0x0000000100000000-0x000000013fffffff] persistent (type 7)",
        ),
        (
            E820Entry(0x1000, 0x1000, 12),
            "BIOS-e820: [mem 0x0000000000001000-0x0000000000001fff] type 12",
        ),
        (
            E820Entry((1 << 52) - 0x1000, 0x1000, 1),
            "BIOS-e820: [mem 0x000ffffffffff000-0x000fffffffffffff] usable",
        ),
    ],
)
def test_linux_line_formats(entry: E820Entry, line: str) -> None:
    assert entry.linux_line() == line


def test_entry_is_frozen() -> None:
    e = E820Entry(0, 0x1000, 1)
    with pytest.raises(AttributeError):
        e.base = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (E820Entry(0, 0, 1), "size"),
        (E820Entry(0x1000, -5, 1), "size"),
        (E820Entry(-0x1000, 0x2000, 1), "negative"),
        (E820Entry(1 << 52, 0x1000, 1), "52-bit"),
        (E820Entry((1 << 52) - 0x1000, 0x2000, 1), "52-bit"),
        (E820Entry(0, 0x1000, 0), "type"),
        (E820Entry(0, 0x1000, 0x1_0000_0000), "type"),
        (E820Entry(0, 0x1000, -1), "type"),
        (E820Entry(0, "big", 1), "size"),  # type: ignore[arg-type]
    ],
)
def test_map_rejects_invalid_entries(entry: E820Entry, words: str) -> None:
    with pytest.raises(E820Error, match=words):
        E820Map([entry])


def test_map_accepts_extreme_valid_entries() -> None:
    m = E820Map([E820Entry(0, 1 << 52, 0xFFFFFFFF)])
    assert m.entries == (E820Entry(0, 1 << 52, 0xFFFFFFFF),)


def test_map_rejects_non_entries() -> None:
    with pytest.raises(E820Error):
        E820Map([(0, 0x1000, 1)])  # type: ignore[list-item]


# --------------------------------------------------------------------------- E820Map


def test_map_sorts_and_merges() -> None:
    m = E820Map(
        [
            E820Entry(0x3000, 0x1000, E820_RAM),
            E820Entry(0x0, 0x2000, E820_RAM),
            E820Entry(0x2000, 0x1000, E820_RAM),  # touches both: merged
            E820Entry(0x2800, 0x2000, E820_RAM),  # overlaps: merged
            E820Entry(0x4800, 0x800, E820_RESERVED),  # adjacent, other type: kept
            E820Entry(0x10000, 0x1000, E820_RESERVED),
        ]
    )
    assert m.entries == (
        E820Entry(0, 0x4800, E820_RAM),
        E820Entry(0x4800, 0x800, E820_RESERVED),
        E820Entry(0x10000, 0x1000, E820_RESERVED),
    )
    assert len(m) == 3
    assert list(m) == list(m.entries)
    assert m.to_bios_entries() == [
        (0, 0x4800, 1),
        (0x4800, 0x800, 2),
        (0x10000, 0x1000, 2),
    ]


def test_map_contained_same_type_merged() -> None:
    m = E820Map([E820Entry(0, 0x10000, 2), E820Entry(0x1000, 0x1000, 2)])
    assert m.entries == (E820Entry(0, 0x10000, 2),)


def test_map_overlap_of_different_types_names_both() -> None:
    with pytest.raises(E820Error) as info:
        E820Map(
            [E820Entry(0, 0x10000, E820_RAM), E820Entry(0x8000, 0x10000, E820_RESERVED)]
        )
    msg = str(info.value)
    assert "0x0000000000000000-0x000000000000ffff" in msg
    assert "0x0000000000008000-0x0000000000017fff" in msg


def test_map_overlap_hidden_behind_merge_detected() -> None:
    # The reserved range overlaps the first usable entry, not the second.
    with pytest.raises(E820Error):
        E820Map(
            [
                E820Entry(0, 0x100000, E820_RAM),
                E820Entry(0x1000, 0x1000, E820_RAM),
                E820Entry(0x50000, 0x1000, E820_RESERVED),
            ]
        )


def test_empty_map() -> None:
    m = E820Map()
    assert len(m) == 0
    assert m.usable_bytes == 0
    assert m.ram_top == 0
    assert m.regions_to_map() == [(0xA0000, 0x60000)]
    assert parse_map(m.to_text()) == m


def test_equality_and_hash() -> None:
    a = E820Map([E820Entry(0, 0x1000, 1), E820Entry(0x1000, 0x1000, 1)])
    b = E820Map([E820Entry(0, 0x2000, 1)])
    assert a == b
    assert hash(a) == hash(b)
    assert a != E820Map([E820Entry(0, 0x2000, 2)])
    assert a != "not a map"


def test_usable_bytes_and_ram_top() -> None:
    m = E820Map(
        [
            E820Entry(0, 0x9FC00, E820_RAM),
            E820Entry(MIB, 7 * MIB, E820_RAM),
            E820Entry(8 * MIB, MIB, E820_RESERVED),
        ]
    )
    assert m.usable_bytes == 0x9FC00 + 7 * MIB
    assert m.ram_top == 8 * MIB


def test_lines() -> None:
    m = default_map("256M")
    assert m.lines() == [
        "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
        "BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff] reserved",
        "BIOS-e820: [mem 0x00000000000f0000-0x00000000000fffff] reserved",
        "BIOS-e820: [mem 0x0000000000100000-0x000000000ffbffff] usable",
        "BIOS-e820: [mem 0x000000000ffc0000-0x000000000ffdffff] ACPI data",
        "BIOS-e820: [mem 0x000000000ffe0000-0x000000000fffffff] reserved",
        "BIOS-e820: [mem 0x00000000fffc0000-0x00000000ffffffff] reserved",
    ]


# --------------------------------------------------------------------------- regions_to_map


def test_regions_to_map_rounds_outward_and_adds_vga() -> None:
    m = E820Map(
        [
            E820Entry(0, 0x9FC00, E820_RAM),
            E820Entry(0x9FC00, 0x400, E820_RESERVED),
            E820Entry(0x200800, 0x1000, E820_NVS),  # unaligned both ends
            E820Entry(0x400000, 0x1000, E820_RAM),
        ]
    )
    assert m.regions_to_map() == [
        (0, 0x100000),  # usable + EBDA + VGA/ROM area, merged
        (0x200000, 0x2000),
        (0x400000, 0x1000),
    ]


def test_regions_to_map_default_256m() -> None:
    assert default_map("256M").regions_to_map() == [
        (0, 0x10000000),
        (0xFFFC0000, 0x40000),
    ]


def test_regions_to_map_default_6g() -> None:
    assert default_map("6G").regions_to_map() == [
        (0, 3 * GIB),
        (0xFFFC0000, 0x40000 + 3 * GIB),  # flash touches high RAM at 4 GiB
    ]


# --------------------------------------------------------------------------- parse_size


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (0, 0),
        (4096, 4096),
        ("16777216", 16 * MIB),
        ("0x1000", 0x1000),
        ("0X1000", 0x1000),
        ("512K", 512 * KIB),
        ("512k", 512 * KIB),
        ("512KiB", 512 * KIB),
        ("512kb", 512 * KIB),
        ("256M", 256 * MIB),
        ("256m", 256 * MIB),
        ("256MiB", 256 * MIB),
        ("256mib", 256 * MIB),
        ("256MB", 256 * MIB),
        ("4G", 4 * GIB),
        ("6GiB", 6 * GIB),
        ("1T", 1 << 40),
        (" 64M ", 64 * MIB),
        ("64 M", 64 * MIB),
        ("100B", 100),
        ("0x10M", 16 * MIB),
        ("0x1b", 0x1B),
    ],
)
def test_parse_size_accepts(text: str | int, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "abc",
        "M",
        "12Q",
        "1.5G",
        "-1",
        "-4K",
        "4GG",
        "0x",
        "4 G B",
        "4iB",
        "0xg",
        "1_000",
    ],
)
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(E820Error, match="size"):
        parse_size(text)


@pytest.mark.parametrize("bad", [-1, True, 1.5, None])
def test_parse_size_rejects_bad_values(bad: object) -> None:
    with pytest.raises(E820Error):
        parse_size(bad)  # type: ignore[arg-type]


@given(
    n=st.integers(0, 1 << 20),
    unit=st.sampled_from(["", "K", "M", "G", "k", "m", "g"]),
    suffix=st.sampled_from(["", "iB", "B", "ib"]),
)
def test_parse_size_units_property(n: int, unit: str, suffix: str) -> None:
    if not unit:
        suffix = ""
    mult = {"": 1, "k": KIB, "m": MIB, "g": GIB}[unit.lower()]
    assert parse_size(f"{n}{unit}{suffix}") == n * mult
    assert parse_size(hex(n) + unit) == n * mult


# --------------------------------------------------------------------------- default_map


def _check_default_low(m: E820Map, low_top: int) -> None:
    assert m.entries[:3] == (
        E820Entry(0, 0x9FC00, E820_RAM),
        E820Entry(0x9FC00, 0x400, E820_RESERVED),
        E820Entry(0xF0000, 0x10000, E820_RESERVED),
    )
    assert E820Entry(MIB, low_top - 256 * KIB - MIB, E820_RAM) in m.entries
    assert E820Entry(low_top - 256 * KIB, 128 * KIB, E820_ACPI) in m.entries
    assert E820Entry(low_top - 128 * KIB, 128 * KIB, E820_RESERVED) in m.entries
    assert E820Entry(0xFFFC0000, 0x40000, E820_RESERVED) in m.entries


@pytest.mark.parametrize(
    ("mem", "low_top", "high"),
    [
        ("16M", 16 * MIB, 0),
        ("256M", 256 * MIB, 0),
        ("3G", 3 * GIB, 0),
        ("4G", 3 * GIB, 1 * GIB),
        ("6G", 3 * GIB, 3 * GIB),
        ("8G", 3 * GIB, 5 * GIB),
        (8 * GIB, 3 * GIB, 5 * GIB),
        ("64G", 3 * GIB, 61 * GIB),
    ],
)
def test_default_map_layout(mem: str | int, low_top: int, high: int) -> None:
    m = default_map(mem)
    _check_default_low(m, low_top)
    expected_usable = 0x9FC00 + (low_top - 256 * KIB - MIB) + high
    assert m.usable_bytes == expected_usable
    assert len(m) == 7 + (1 if high else 0)
    if high:
        assert m.entries[-1] == E820Entry(4 * GIB, high, E820_RAM)
        assert m.ram_top == 4 * GIB + high
    else:
        assert m.ram_top == low_top - 256 * KIB
    # The PCI hole 3-4 GiB never holds usable RAM.
    assert usable_overlapping(m, 3 * GIB, 4 * GIB) == []
    check_bootable(m)


def test_default_map_6g_details() -> None:
    m = default_map("6G")
    high = [e for e in m if e.base >= 4 * GIB]
    assert high == [E820Entry(4 * GIB, 3 * GIB, E820_RAM)]
    assert usable_overlapping(m, 3 * GIB, 4 * GIB) == []
    assert m.usable_bytes == 6 * GIB - MIB - 256 * KIB + 0x9FC00
    assert (
        m.lines()[-1] == "BIOS-e820: [mem 0x0000000100000000-0x00000001bfffffff] usable"
    )


def test_default_map_default_argument() -> None:
    assert default_map() == default_map("256M") == default_map(256 * MIB)


@pytest.mark.parametrize(
    ("mem", "words"),
    [
        ("15M", "range"),
        (8 * MIB, "range"),
        ("65G", "range"),
        (16 * MIB + 4096, "multiple of 1 MiB"),
        ("300M", None),  # fine, sanity
        ("junk", "size"),
    ],
)
def test_default_map_size_checks(mem: str | int, words: str | None) -> None:
    if words is None:
        assert default_map(mem).usable_bytes > 0
        return
    with pytest.raises(E820Error, match=words):
        default_map(mem)


# --------------------------------------------------------------------------- parse_map / load_map

SAMPLE = """\
# a tiny PC
0x0        0x9fc00   usable
0x9fc00    +1K       reserved   # EBDA

0xf0000    0x100000  RESERVED
1M         +63M      ram
64M        +1M       acpi
65M        +1M       nvs
66M        +1M       unusable
4G         +1G       pmem
5G         +4K       12
0x140001000 +0x1000 0xc
"""


def test_parse_map_sample() -> None:
    m = parse_map(SAMPLE)
    assert m.to_bios_entries() == [
        (0, 0x9FC00, 1),
        (0x9FC00, 0x400, 2),
        (0xF0000, 0x10000, 2),
        (MIB, 63 * MIB, 1),
        (64 * MIB, MIB, 3),
        (65 * MIB, MIB, 4),
        (66 * MIB, MIB, 5),
        (4 * GIB, GIB, 7),
        (5 * GIB, 0x2000, 12),  # two type-12 lines merged
    ]


def test_parse_map_unsorted_and_merge() -> None:
    m = parse_map("2M 3M usable\n0 1M usable\n1M 2M usable\n0x2800000 +1M reserved\n")
    assert m.entries == (E820Entry(0, 3 * MIB, 1), E820Entry(0x2800000, MIB, 2))


def test_parse_map_default_map_round_trip() -> None:
    for mem in ("16M", "256M", "3G", "4G", "6G", "8G"):
        m = default_map(mem)
        assert parse_map(m.to_text()) == m


def test_to_text_format() -> None:
    m = E820Map([E820Entry(0, 0x9FC00, 1), E820Entry(0x100000, 0x1000, 99)])
    lines = [ln for ln in m.to_text().splitlines() if not ln.startswith("#")]
    assert lines == ["0x0000000000 0x000009fc00 usable", "0x0000100000 0x0000101000 99"]


@pytest.mark.parametrize(
    ("text", "lineno", "words"),
    [
        ("0 1M usable\n0x100000 usable\n", 2, "fields"),
        ("0 1M usable\n\n# c\n0 1M usable extra\n", 4, "fields"),
        ("zz 1M usable\n", 1, "invalid start 'zz'"),
        ("0 1Q usable\n", 1, "invalid end '1Q'"),
        ("0 +x usable\n", 1, "invalid size 'x'"),
        ("0 +0 usable\n", 1, "size"),
        ("2M 1M usable\n", 1, "not above start"),
        ("1M 1M usable\n", 1, "not above start"),
        ("0 1M bogus\n", 1, "unknown type 'bogus'"),
        ("0 1M 0\n", 1, "type"),
        ("0 1M 0x100000000\n", 1, "type"),
        ("# ok\n0 +4096 usable\n0 +8P usable\n", 3, "52-bit"),
    ],
)
def test_parse_map_errors_have_line_numbers(text: str, lineno: int, words: str) -> None:
    with pytest.raises(E820Error) as info:
        parse_map(text, source="my.map")
    msg = str(info.value)
    assert msg.startswith(f"my.map:{lineno}: ")
    assert words in msg


def test_parse_map_default_source() -> None:
    with pytest.raises(E820Error, match=r"^<string>:1: "):
        parse_map("nonsense\n")


def test_parse_map_overlap_names_both_lines() -> None:
    text = "# header\n0 1M usable\n8M 16M usable\n0x80000 +1M reserved\n"
    with pytest.raises(E820Error) as info:
        parse_map(text, source="x.map")
    msg = str(info.value)
    assert msg.startswith("x.map:4: ")
    assert "line 2" in msg
    assert "0x0000000000080000-0x000000000017ffff" in msg
    assert "0x0000000000000000-0x00000000000fffff" in msg


def test_parse_map_overlap_reported_at_later_sorted_line() -> None:
    # Line 1 sorts after line 2 and is the one that overlaps.
    with pytest.raises(E820Error, match=r"^f:1: .*line 2"):
        parse_map("0x800 +0x1000 reserved\n0 +0x1000 usable\n", source="f")


def test_parse_map_same_type_overlap_ok() -> None:
    m = parse_map("0 +2M usable\n1M +2M usable\n")
    assert m.entries == (E820Entry(0, 3 * MIB, 1),)


def test_load_map(tmp_path: Path) -> None:
    path = tmp_path / "pc.map"
    m = default_map("4G")
    path.write_text(m.to_text())
    assert load_map(path) == m
    assert load_map(str(path)) == m


def test_load_map_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.map"
    path.write_text("0 1M usable\n0 1M weird\n")
    with pytest.raises(E820Error, match=r"bad\.map:2: unknown type"):
        load_map(path)


def test_load_map_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.map"
    with pytest.raises(E820Error, match=r"nope\.map"):
        load_map(path)


# --------------------------------------------------------------------------- check_bootable


def _bootable_entries() -> list[E820Entry]:
    return [E820Entry(0, 0x9FC00, E820_RAM), E820Entry(MIB, 15 * MIB, E820_RAM)]


def test_check_bootable_minimal() -> None:
    check_bootable(E820Map(_bootable_entries()))
    check_bootable(default_map("16M"))


@pytest.mark.parametrize(
    ("entries", "words"),
    [
        (
            [E820Entry(0x2000, 0x9E000, 1), E820Entry(MIB, 15 * MIB, 1)],
            r"\[0x1000, 0x90000\)",
        ),
        (
            [E820Entry(0, 0x8F000, 1), E820Entry(MIB, 15 * MIB, 1)],
            r"\[0x1000, 0x90000\)",
        ),
        (
            # split in two with a reserved hole: no *single* range covers it
            [
                E820Entry(0, 0x40000, 1),
                E820Entry(0x40000, 0x1000, 2),
                E820Entry(0x41000, 0x5E000, 1),
                E820Entry(MIB, 15 * MIB, 1),
            ],
            "boot stub",
        ),
        (
            [E820Entry(0, 0x9FC00, 1), E820Entry(2 * MIB, 30 * MIB, 1)],
            "kernel load area",
        ),
        ([E820Entry(0, 0x9FC00, 1), E820Entry(MIB, 7 * MIB, 1)], "kernel load area"),
        (
            [
                E820Entry(0, 0x9FC00, 1),
                E820Entry(MIB, 8 * MIB, 1),
                E820Entry(9 * MIB, MIB, 2),
            ],
            "12 MiB",
        ),
        ([E820Entry(0, 0x9FC00, 2), E820Entry(MIB, 15 * MIB, 1)], "boot stub"),
        ([E820Entry(0, 0x9FC00, 1), E820Entry(MIB, 15 * MIB, 7)], "kernel load area"),
        ([], "not bootable"),
    ],
)
def test_check_bootable_refusals(entries: list[E820Entry], words: str) -> None:
    with pytest.raises(E820Error, match=words):
        check_bootable(E820Map(entries))


def test_check_bootable_exactly_12mib() -> None:
    # 0x9fc00 low + 12 MiB - 0x9fc00 high = exactly 12 MiB usable.
    m = E820Map([E820Entry(0, 0x9FC00, 1), E820Entry(MIB, 12 * MIB - 0x9FC00, 1)])
    assert m.usable_bytes == 12 * MIB
    check_bootable(m)
    m = E820Map(
        [E820Entry(0, 0x9FC00, 1), E820Entry(MIB, 12 * MIB - 0x9FC00 - 0x400, 1)]
    )
    with pytest.raises(E820Error, match="12 MiB"):
        check_bootable(m)


# --------------------------------------------------------------------------- properties

UNIT = 0x800  # half a page, so page rounding is exercised
entry_st = st.builds(
    lambda base, size, type_: E820Entry(base * UNIT, size * UNIT, type_),
    st.integers(0, 64),
    st.integers(1, 12),
    st.sampled_from([1, 2, 3, 12]),
)


def _unit_types(entries: list[E820Entry]) -> dict[int, set[int]]:
    """Map each UNIT-sized cell to the set of types covering it."""
    cells: dict[int, set[int]] = {}
    for e in entries:
        for cell in range(e.base // UNIT, e.end // UNIT):
            cells.setdefault(cell, set()).add(e.type)
    return cells


@settings(max_examples=300)
@given(st.lists(entry_st, max_size=12))
def test_map_invariants(entries: list[E820Entry]) -> None:
    cells = _unit_types(entries)
    conflict = any(len(types) > 1 for types in cells.values())
    if conflict:
        with pytest.raises(E820Error, match="overlaps"):
            E820Map(entries)
        return
    m = E820Map(entries)
    es = m.entries
    for a, b in pairwise(es):
        assert a.base < b.base  # sorted
        assert a.end <= b.base  # non-overlapping
        assert not (a.end == b.base and a.type == b.type)  # merged
    assert _unit_types(list(es)) == cells  # same coverage, same types
    assert m.usable_bytes == sum(UNIT for t in cells.values() if t == {1})
    assert E820Map(reversed(entries)) == m  # order-independent


@settings(max_examples=200)
@given(st.lists(entry_st, max_size=12))
def test_text_round_trip(entries: list[E820Entry]) -> None:
    try:
        m = E820Map(entries)
    except E820Error:
        return
    assert parse_map(m.to_text()) == m
    assert parse_map("\n".join(reversed(m.to_text().splitlines()))) == m


@settings(max_examples=200)
@given(st.lists(entry_st, max_size=12))
def test_regions_to_map_invariants(entries: list[E820Entry]) -> None:
    try:
        m = E820Map(entries)
    except E820Error:
        return
    regions = m.regions_to_map()
    for base, size in regions:
        assert base % PAGE == 0 and size % PAGE == 0 and size > 0
    for (b1, s1), (b2, _) in pairwise(regions):
        assert b1 + s1 < b2  # sorted, disjoint, not even touching

    def inside(start: int, end: int) -> bool:
        return any(b <= start and end <= b + s for b, s in regions)

    assert inside(0xA0000, 0x100000)
    for e in m:
        assert inside(e.base, e.end)
    # Nothing is mapped that is neither an entry page nor the legacy area.
    pages = {p for e in m for p in range(e.base // PAGE, (e.end + PAGE - 1) // PAGE)}
    pages |= set(range(0xA0000 // PAGE, 0x100000 // PAGE))
    mapped = {p for b, s in regions for p in range(b // PAGE, (b + s) // PAGE)}
    assert mapped == pages


@settings(max_examples=100)
@given(st.integers(16, 64 * 1024))
def test_default_map_property(mib: int) -> None:
    m = default_map(mib * MIB)
    assert m.usable_bytes == mib * MIB - MIB - 256 * KIB + 0x9FC00
    assert usable_overlapping(m, 3 * GIB, 4 * GIB) == []
    assert parse_map(m.to_text()) == m
    check_bootable(m)
