"""The PC e820 physical memory map, as a BIOS reports it (INT 15h, AX=E820h).

An :class:`E820Map` is a sorted list of ``(base, size, type)`` ranges with
adjacent or overlapping ranges of the same type merged.  It can be built from
entries, from :func:`default_map` (a QEMU/SeaBIOS-like PC layout) or from a
user file via :func:`parse_map` / :func:`load_map`.

User file format
----------------
One range per line, in either form (``END`` is exclusive)::

    START END   TYPE
    START +SIZE TYPE

* Numbers are decimal (``1048576``), hex (``0x100000``) or sizes with a
  binary unit suffix (``1M``, ``1MiB``, ``512K``, ``4G``), case-insensitive.
* ``TYPE`` is a name -- ``usable`` (or ``ram``), ``reserved``, ``acpi``,
  ``nvs``, ``unusable``, ``pmem`` -- or a number (decimal or ``0x`` hex)
  in ``1..0xffffffff``.
* ``#`` starts a comment; blank lines are ignored.
* Lines may come in any order; they are sorted.  Overlapping or touching
  ranges of the same type are merged; overlapping ranges of different types
  are an error naming both lines.

Example::

    # a tiny PC
    0x0        0x9fc00   usable
    0x9fc00    +1K       reserved
    0xf0000    0x100000  reserved
    1M         +63M      usable

Every problem raises :class:`E820Error`; errors in file input are prefixed
with ``source:lineno:``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from emu.core.errors import KmemuError

__all__ = [
    "E820_ACPI",
    "E820_NVS",
    "E820_PMEM",
    "E820_RAM",
    "E820_RESERVED",
    "E820_UNUSABLE",
    "TYPE_NAMES",
    "E820Entry",
    "E820Error",
    "E820Map",
    "check_bootable",
    "check_kernel_limits",
    "default_map",
    "load_map",
    "parse_map",
    "parse_size",
]

E820_RAM = 1
E820_RESERVED = 2
E820_ACPI = 3
E820_NVS = 4
E820_UNUSABLE = 5
E820_PMEM = 7

#: The names Linux prints for each type in its ``BIOS-e820:`` boot lines.
TYPE_NAMES: dict[int, str] = {
    E820_RAM: "usable",
    E820_RESERVED: "reserved",
    E820_ACPI: "ACPI data",
    E820_NVS: "ACPI NVS",
    E820_UNUSABLE: "unusable",
    E820_PMEM: "persistent (type 7)",
}

#: Type names accepted in the user file format (lower case).
_FILE_TYPES: dict[str, int] = {
    "usable": E820_RAM,
    "ram": E820_RAM,
    "reserved": E820_RESERVED,
    "acpi": E820_ACPI,
    "nvs": E820_NVS,
    "unusable": E820_UNUSABLE,
    "pmem": E820_PMEM,
}
#: The name :meth:`E820Map.to_text` writes for each type.
_FILE_NAMES: dict[int, str] = {
    E820_RAM: "usable",
    E820_RESERVED: "reserved",
    E820_ACPI: "acpi",
    E820_NVS: "nvs",
    E820_UNUSABLE: "unusable",
    E820_PMEM: "pmem",
}

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
PAGE_SIZE = 4 * KIB
MAX_PHYS = 1 << 52  # x86-64 architectural physical address limit
MAX_TYPE = 0xFFFFFFFF

#: Legacy VGA / option ROM / BIOS area the emulator always backs with RAM.
LEGACY_AREA = (0xA0000, 0x100000)

_UNITS = {"": 1, "k": KIB, "m": MIB, "g": GIB, "t": 1 << 40, "p": 1 << 50}
_SIZE_RE = re.compile(
    r"(?P<num>0x[0-9a-f]+|[0-9]+)\s*(?:(?P<unit>[kmgtp])(?:i?b)?|b)?", re.IGNORECASE
)


class E820Error(KmemuError, ValueError):
    """An invalid e820 entry, map, size string or map file."""


def type_name(type_: int) -> str:
    """Return the name Linux prints for e820 type *type_*."""
    return TYPE_NAMES.get(type_, f"type {type_}")


@dataclass(frozen=True)
class E820Entry:
    """One e820 range: ``[base, base + size)`` of the given type."""

    base: int
    size: int
    type: int

    @property
    def end(self) -> int:
        """First address after the range (exclusive end)."""
        return self.base + self.size

    def linux_line(self) -> str:
        """Format the entry exactly as Linux prints it at boot."""
        return f"BIOS-e820: {self.describe()}"

    def describe(self) -> str:
        """Short description: ``[mem 0x...-0x...] name`` (inclusive end)."""
        return f"[mem {self.base:#018x}-{self.end - 1:#018x}] {type_name(self.type)}"

    def validate(self) -> None:
        """Raise :class:`E820Error` unless the entry is well formed."""
        for field in ("base", "size", "type"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool):
                raise E820Error(f"e820 entry {field} must be an int, got {value!r}")
        if self.base < 0:
            raise E820Error(f"e820 entry base {self.base:#x} is negative")
        if self.size <= 0:
            raise E820Error(
                f"e820 entry at {self.base:#x} has size {self.size}; must be > 0"
            )
        if self.end > MAX_PHYS:
            raise E820Error(
                f"e820 entry [{self.base:#x}, {self.end:#x}) ends above "
                f"the 52-bit physical limit {MAX_PHYS:#x}"
            )
        if not 1 <= self.type <= MAX_TYPE:
            raise E820Error(
                f"e820 entry at {self.base:#x} has type {self.type}; must be 1..{MAX_TYPE:#x}"
            )


def _sorted_indices(entries: Sequence[E820Entry]) -> list[int]:
    """Indices of *entries* ordered by (base, end, type)."""
    return sorted(
        range(len(entries)),
        key=lambda i: (entries[i].base, entries[i].end, entries[i].type),
    )


def _find_conflict(entries: Sequence[E820Entry]) -> tuple[int, int] | None:
    """Find two overlapping entries of different types.

    Returns ``(earlier, later)`` indices into *entries* (by sort order), or
    ``None``.  A sweep remembering the entry reaching furthest suffices: any
    conflict with an earlier entry is also an overlap with the furthest-reaching
    one, which (by induction) must then itself have a different type.
    """
    reach: int | None = None
    for i in _sorted_indices(entries):
        cur = entries[i]
        if reach is not None:
            far = entries[reach]
            if cur.base < far.end and cur.type != far.type:
                return reach, i
            if cur.end <= far.end:
                continue
        reach = i
    return None


def _merge(entries: Sequence[E820Entry]) -> tuple[E820Entry, ...]:
    """Sort conflict-free *entries*, merging touching/overlapping same-type ranges."""
    merged: list[E820Entry] = []
    for i in _sorted_indices(entries):
        cur = entries[i]
        last = merged[-1] if merged else None
        if last is not None and last.type == cur.type and cur.base <= last.end:
            end = max(last.end, cur.end)
            merged[-1] = E820Entry(last.base, end - last.base, last.type)
        else:
            merged.append(cur)
    return tuple(merged)


def _merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge ``(start, end)`` ranges that overlap or touch; return sorted."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


class E820Map:
    """A validated, sorted, merged e820 memory map."""

    def __init__(self, entries: Iterable[E820Entry] = ()) -> None:
        items = list(entries)
        for entry in items:
            if not isinstance(entry, E820Entry):
                raise E820Error(f"not an E820Entry: {entry!r}")
            entry.validate()
        conflict = _find_conflict(items)
        if conflict is not None:
            first, second = (items[i] for i in conflict)
            raise E820Error(
                f"e820 range {second.describe()} overlaps {first.describe()}"
            )
        self._entries = _merge(items)

    @property
    def entries(self) -> tuple[E820Entry, ...]:
        """The merged entries, sorted by base."""
        return self._entries

    @property
    def usable_bytes(self) -> int:
        """Total bytes of usable (type 1) RAM."""
        return sum(e.size for e in self._entries if e.type == E820_RAM)

    @property
    def ram_top(self) -> int:
        """End of the highest usable range (0 if there is none)."""
        return max((e.end for e in self._entries if e.type == E820_RAM), default=0)

    def regions_to_map(self) -> list[tuple[int, int]]:
        """``(base, size)`` page-aligned ranges the emulator must back with RAM.

        Every entry of any type, rounded outward to 4 KiB, plus the legacy
        VGA/option-ROM/BIOS area, merged and sorted.
        """
        mask = PAGE_SIZE - 1
        ranges = [(e.base & ~mask, (e.end + mask) & ~mask) for e in self._entries]
        ranges.append(LEGACY_AREA)
        return [(start, end - start) for start, end in _merge_ranges(ranges)]

    def to_bios_entries(self) -> list[tuple[int, int, int]]:
        """``(base, length, type)`` triples, as INT 15h E820 returns them."""
        return [(e.base, e.size, e.type) for e in self._entries]

    def lines(self) -> list[str]:
        """The map as Linux prints it at boot, one ``BIOS-e820:`` line per entry."""
        return [e.linux_line() for e in self._entries]

    def to_text(self) -> str:
        """The map in the user file format (see module docstring)."""
        out = ["# e820 map: START END(exclusive) TYPE"]
        for e in self._entries:
            name = _FILE_NAMES.get(e.type, str(e.type))
            out.append(f"{e.base:#012x} {e.end:#012x} {name}")
        return "\n".join(out) + "\n"

    def __iter__(self) -> Iterator[E820Entry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, E820Map):
            return NotImplemented
        return self._entries == other._entries

    def __hash__(self) -> int:
        return hash(self._entries)

    def __repr__(self) -> str:
        return f"E820Map({list(self._entries)!r})"


def parse_size(s: str | int) -> int:
    """Parse a byte count: an int, or ``"16777216"``, ``"0x1000"``, ``"512K"``,
    ``"256M"``, ``"256MiB"``, ``"4G"``, ``"6GiB"`` (binary units, any case)."""
    if isinstance(s, bool) or not isinstance(s, (int, str)):
        raise E820Error(f"size must be an int or a string, got {s!r}")
    if isinstance(s, int):
        if s < 0:
            raise E820Error(f"size {s} is negative")
        return s
    match = _SIZE_RE.fullmatch(s.strip())
    if match is None:
        raise E820Error(
            f"invalid size {s!r} (expected e.g. 4096, 0x1000, 512K, 256M, 4GiB)"
        )
    unit = (match["unit"] or "").lower()
    return int(match["num"], 0) * _UNITS[unit]


def default_map(mem: int | str = "256M") -> E820Map:
    """A PC-like map as QEMU/SeaBIOS report it for *mem* bytes of RAM.

    *mem* must be a multiple of 1 MiB in 16 MiB..64 GiB.  Up to 3 GiB of RAM
    sits below the 3-4 GiB PCI hole; the rest is placed from 4 GiB up.
    """
    size = parse_size(mem)
    if not 16 * MIB <= size <= 64 * GIB:
        raise E820Error(f"memory size {size:#x} out of range: must be 16 MiB..64 GiB")
    if size % MIB:
        raise E820Error(f"memory size {size:#x} is not a multiple of 1 MiB")
    low_top = min(size, 3 * GIB)
    entries = [
        E820Entry(0, 0x9FC00, E820_RAM),
        E820Entry(0x9FC00, 0xA0000 - 0x9FC00, E820_RESERVED),  # EBDA
        E820Entry(0xF0000, 0x10000, E820_RESERVED),  # BIOS ROM
        E820Entry(MIB, low_top - 256 * KIB - MIB, E820_RAM),
        E820Entry(low_top - 256 * KIB, 128 * KIB, E820_ACPI),
        E820Entry(low_top - 128 * KIB, 128 * KIB, E820_RESERVED),
        E820Entry(0xFFFC0000, 4 * GIB - 0xFFFC0000, E820_RESERVED),  # flash
    ]
    if size > 3 * GIB:
        entries.append(E820Entry(4 * GIB, size - 3 * GIB, E820_RAM))
    return E820Map(entries)


def _parse_number(token: str, what: str) -> int:
    """Parse an address or size token from a map file."""
    try:
        return parse_size(token)
    except E820Error:
        raise E820Error(f"invalid {what} {token!r}") from None


def _parse_type(token: str) -> int:
    """Parse a TYPE token: a known name or a decimal/hex number."""
    named = _FILE_TYPES.get(token.lower())
    if named is not None:
        return named
    try:
        return int(token, 0)
    except ValueError:
        names = ", ".join(_FILE_TYPES)
        raise E820Error(
            f"unknown type {token!r} (expected one of {names} or a number)"
        ) from None


def _parse_line(line: str) -> E820Entry | None:
    """Parse one map-file line; ``None`` for blank/comment lines."""
    fields = line.split("#", 1)[0].split()
    if not fields:
        return None
    if len(fields) != 3:
        raise E820Error(
            f"expected 'START END TYPE' or 'START +SIZE TYPE', got {len(fields)} fields"
        )
    start_tok, end_tok, type_tok = fields
    start = _parse_number(start_tok, "start")
    if end_tok.startswith("+"):
        size = _parse_number(end_tok[1:], "size")
    else:
        end = _parse_number(end_tok, "end")
        if end <= start:
            raise E820Error(f"end {end:#x} is not above start {start:#x}")
        size = end - start
    entry = E820Entry(start, size, _parse_type(type_tok))
    entry.validate()
    return entry


def parse_map(text: str, source: str = "<string>") -> E820Map:
    """Parse the user map-file format (see module docstring) into a map."""
    entries: list[E820Entry] = []
    linenos: list[int] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        try:
            entry = _parse_line(line)
        except E820Error as exc:
            raise E820Error(f"{source}:{lineno}: {exc}") from None
        if entry is not None:
            entries.append(entry)
            linenos.append(lineno)
    conflict = _find_conflict(entries)
    if conflict is not None:
        first, second = conflict
        raise E820Error(
            f"{source}:{linenos[second]}: range {entries[second].describe()} overlaps "
            f"line {linenos[first]} range {entries[first].describe()}"
        )
    return E820Map(entries)


def load_map(path: str | os.PathLike[str]) -> E820Map:
    """Read and parse a map file; a missing/unreadable file raises :class:`E820Error`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise E820Error(f"cannot read e820 map {os.fspath(path)!r}: {reason}") from None
    return parse_map(text, source=os.fspath(path))


def _usable_covers(m: E820Map, start: int, end: int) -> bool:
    """True if one usable entry of *m* covers ``[start, end)``."""
    return any(e.type == E820_RAM and e.base <= start and e.end >= end for e in m)


def check_bootable(m: E820Map) -> None:
    """Raise :class:`E820Error` unless *m* can boot a kernel in the emulator.

    Needs usable RAM covering [0x1000, 0x90000) (boot stub, page tables,
    stack, bounce buffer) and [1 MiB, 9 MiB) (kernel load area), and at
    least 12 MiB usable in total.
    """
    needs = [
        (0x1000, 0x90000, "the boot stub, page tables, stack and bounce buffer"),
        (MIB, 9 * MIB, "the kernel load area"),
    ]
    for start, end, what in needs:
        if not _usable_covers(m, start, end):
            raise E820Error(
                f"e820 map not bootable: no single usable range covers "
                f"[{start:#x}, {end:#x}) for {what}"
            )
    if m.usable_bytes < 12 * MIB:
        raise E820Error(
            f"e820 map not bootable: only {m.usable_bytes:#x} bytes usable, need at least 12 MiB"
        )


def check_kernel_limits(m: E820Map, max_ram: int, max_entries: int) -> None:
    """Raise :class:`E820Error` if the kernel could not take *m*.

    *max_ram* is the highest physical address the kernel can hold usable
    RAM below (its ``MAX_SECTIONS``), *max_entries* the number of entries
    the boot loader and the kernel keep (``E820_MAX_ENTRIES``); both come
    from the built kernel, so the refusal happens before boot instead of as
    a kernel panic or a silently shortened map.
    """
    if len(m) > max_entries:
        raise E820Error(
            f"e820 map not bootable: {len(m)} entries (after merging), but the kmemu "
            f"boot loader and kernel hold at most {max_entries} (E820_MAX_ENTRIES)"
        )
    if m.ram_top > max_ram:
        raise E820Error(
            f"e820 map not bootable: usable RAM ends at {m.ram_top:#x}, above the "
            f"{max_ram >> 30} GiB ({max_ram:#x}) the kmemu kernel supports (MAX_SECTIONS)"
        )
