"""Source lines from the kernel's DWARF line table: ``file.c:line`` <-> address.

Layer 4 (``emu.kernel``).

>>> lt = LineTable.load(elf_path)            # doctest: +SKIP
>>> hex(lt.address("slub.c", 240))           # doctest: +SKIP
'0xffffffff80107590'
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

from elftools.elf.elffile import ELFFile

from emu.core.errors import KmemuError


class LineError(KmemuError, LookupError):
    """No code for that file:line, or an unknown file."""


@dataclass(frozen=True)
class LineEntry:
    address: int
    file: str  # as compiled, e.g. "kernel/slab/slub.c"
    line: int


#: Names the shape of the saved rows (load_on_disk): change it with LineEntry or _read.
_LINES_VERSION = "lines-2+call-sites"


class LineTable:
    """``rows`` are the statement rows (where a line starts, for breakpoints and
    stepping); ``other_rows`` the rest (is_stmt false), which only help
    :meth:`lookup` name the line of an address in the middle of one, as gdb
    does.  ``inlined`` are the address ranges of inlined function bodies."""

    def __init__(self, rows: list[LineEntry], other_rows: list[LineEntry] | None = None,
                 inlined: list[tuple[int, int]] | None = None) -> None:
        self.rows = sorted(rows, key=attrgetter("address"))
        self.other_rows = other_rows or []
        self.inlined = inlined or []
        self._addrs = [r.address for r in self.rows]
        # at one address a statement row wins (it sorts last); ties keep their order
        # (the index), compared as tuples in C, not through a key function per row
        n = len(self.rows)
        order = sorted([(r.address, 1, i) for i, r in enumerate(self.rows)]
                       + [(r.address, 0, n + i) for i, r in enumerate(self.other_rows)])
        both = [*self.rows, *self.other_rows]
        self._all = [both[i] for _, _, i in order]
        self._all_addrs = [r.address for r in self._all]
        edges: dict[int, int] = {}
        for lo, hi in inlined or []:
            if lo < hi:
                edges[lo] = edges.get(lo, 0) + 1
                edges[hi] = edges.get(hi, 0) - 1
        self._inline_at = sorted(edges)
        self._inline_depth: list[int] = []
        depth = 0
        for a in self._inline_at:
            depth += edges[a]
            self._inline_depth.append(depth)
        self.by_line: dict[tuple[str, int], int] = {}
        self.paths: dict[str, str] = {}  # file as in the rows -> gdb's path (gdb_path)
        self.inline_entries: Counter[int] = Counter()  # pc -> inlined ranges starting there
        #: pc -> the call site (file, line) of the outermost inlined body starting there
        self.call_sites: dict[int, tuple[str, int]] = {}
        names: dict[str, str] = {}  # one Path per file, not per row: ~20,000 rows
        for r in self.rows:
            name = names.get(r.file)
            if name is None:
                name = names[r.file] = Path(r.file).name
            key = (name, r.line)
            if key not in self.by_line or r.address < self.by_line[key]:
                self.by_line[key] = r.address

    @classmethod
    def load(cls, elf_path: Path, full_paths: bool = False) -> LineTable:
        """The table of one ELF.  ``full_paths`` joins each file name with its
        directory entry (modules are compiled from wherever their sources are; the
        kernel's names stay as compiled, ``slub.c``).  The parse takes seconds, so
        its rows are kept on disk beside the ELF (emu.kernel.filecache.load_on_disk), and
        the table once per process and ELF (load_per_file: a table is never changed after
        its load, and unpickling and indexing the kernel's ~39,000 rows took ~150 ms, three
        times a boot, for every new Machine that looked a line up)."""
        from emu.kernel.filecache import load_per_file

        return load_per_file(_TABLES[full_paths], elf_path,
                             lambda p: cls._from_disk(p, full_paths))

    @classmethod
    def _from_disk(cls, elf_path: Path, full_paths: bool) -> LineTable:
        from emu.kernel.filecache import gc_paused, load_on_disk

        what = "lines-full" if full_paths else "lines"
        rows, other, inlined, paths, entries, sites = load_on_disk(
            Path(elf_path), what, _LINES_VERSION, lambda p: cls._read(p, full_paths))
        with gc_paused():  # ~80,000 index tuples and lists, all kept or freed at once
            table = cls(rows, other, inlined)
        table.paths = paths
        table.inline_entries = Counter(entries)
        table.call_sites = sites
        return table

    @staticmethod
    def _read(elf_path: Path, full_paths: bool) -> tuple[list, list, list, dict, list, dict]:
        """(statement rows, other rows, inlined ranges, file paths by name, inlined
        entry addresses, call sites by entry address) of one ELF."""
        rows: list[LineEntry] = []
        other: list[LineEntry] = []
        paths: dict[str, str] = {}
        with Path(elf_path).open("rb") as f:
            elf = ELFFile(f)
            if not elf.has_dwarf_info():
                return [], [], [], {}, [], {}
            dwarf = elf.get_dwarf_info()
            per_die, sites = _inlined_ranges(dwarf, full_paths)
            inlined = [r for ranges in per_die for r in ranges]
            entries = [lo for lo, hi in inlined if lo < hi]
            for cu in dwarf.iter_CUs():
                lp = dwarf.line_program_for_CU(cu)
                if lp is None:
                    continue
                files = lp["file_entry"]
                ver5 = lp.header["version"] >= 5
                full = [_file_name(lp, f, ver5) for f in files]
                names = full if full_paths else [f.name.decode() for f in files]
                for name, path in zip(names, full, strict=True):
                    paths.setdefault(name, path)
                for entry in lp.get_entries():
                    st = entry.state
                    if st is None or st.end_sequence:
                        continue
                    idx = st.file if ver5 else st.file - 1
                    if not 0 <= idx < len(files):
                        continue
                    row = LineEntry(st.address, names[idx], st.line)
                    (rows if st.is_stmt else other).append(row)
        return rows, other, inlined, paths, entries, sites

    @classmethod
    def combined(cls, tables: list[LineTable]) -> LineTable:
        """One table over several (the kernel's and each loaded module's)."""
        table = cls([r for t in tables for r in t.rows],
                    [r for t in tables for r in t.other_rows],
                    [r for t in tables for r in t.inlined])
        for t in tables:
            table.paths.update({k: v for k, v in t.paths.items() if k not in table.paths})
            table.inline_entries.update(t.inline_entries)
            table.call_sites.update(t.call_sites)
        return table

    def gdb_path(self, file: str) -> str:
        """``file`` as gdb prints it in frame lines: joined with the directory the
        DWARF line table names (``/work/main/kernel/kmalloc.c``)."""
        return self.paths.get(file, file)

    def inline_depth(self, address: int) -> int:
        """How many inlined function bodies ``address`` is inside (0: the function's own
        code).  ``next`` does not stop deeper than where it started, as gdb's."""
        i = bisect.bisect_right(self._inline_at, address) - 1
        return self._inline_depth[i] if i >= 0 else 0

    def call_site(self, address: int, outer_depth: int = 0) -> LineEntry | None:
        """Where gdb places a stop at ``address`` when inlined bodies start exactly
        there: the call site of the outermost one, in the code around them (gdb has
        not entered them yet).  None when no inlined body starts at ``address`` or
        the code around them is not ``outer_depth`` inlined bodies deep (0: the
        function's own code)."""
        k = self.inline_entries.get(address, 0)
        if not k or self.inline_depth(address) != k + outer_depth:
            return None
        site = self.call_sites.get(address)
        return None if site is None else LineEntry(address, site[0], site[1])

    def address(self, file: str, line: int) -> int:
        """Lowest address of code for ``file:line`` (the basename is enough)."""
        key = (Path(file).name, line)
        if key in self.by_line:
            return self.by_line[key]
        known = {Path(r.file).name for r in self.rows}
        if key[0] not in known:
            raise LineError(f"no source file {file!r} in the kernel's line table")
        nearby = sorted(ln for (f, ln) in self.by_line if f == key[0] and line < ln < line + 20)
        hint = f"; the next line with code is {key[0]}:{nearby[0]}" if nearby else ""
        raise LineError(f"no code at {file}:{line}{hint}")

    def lookup(self, address: int) -> LineEntry | None:
        """The source line an address belongs to (statement or not)."""
        i = bisect.bisect_right(self._all_addrs, address) - 1
        return self._all[i] if i >= 0 else None

    def next_row_address(self, address: int) -> int | None:
        """Where the next line-table row (statement or not) after ``address`` starts:
        the end of ``address``'s row, as gdb's ``info line`` says."""
        i = bisect.bisect_right(self._all_addrs, address)
        return self._all_addrs[i] if i < len(self._all_addrs) else None

    def row_at(self, address: int) -> LineEntry | None:
        """The row that starts exactly at ``address`` (a statement boundary), if any."""
        i = bisect.bisect_right(self._addrs, address) - 1
        return self.rows[i] if i >= 0 and self._addrs[i] == address else None

    def rows_between(self, start: int, end: int) -> list[LineEntry]:
        """Rows with ``start <= address < end``, in address order."""
        lo = bisect.bisect_left(self._addrs, start)
        hi = bisect.bisect_left(self._addrs, end)
        return self.rows[lo:hi]

    def lines_of(self, file: str) -> list[int]:
        """Source lines of ``file`` (basename enough) that have code."""
        name = Path(file).name
        return sorted({ln for (f, ln) in self.by_line if f == name})

    def files(self) -> list[str]:
        return sorted({r.file for r in self.rows})


#: The tables loaded in this process, by (ELF path, mtime), for full_paths False / True.
_TABLES: dict[bool, dict[tuple[str, int], LineTable]] = {False: {}, True: {}}


def _file_name(lp, entry, ver5: bool) -> str:  # lp: elftools LineProgram
    """A file entry's name joined with its include directory (DWARF 4 numbers the
    directories from 1, with 0 the compilation directory; DWARF 5 from 0)."""
    name = entry.name.decode()
    dirs = lp["include_directory"]
    i = entry.dir_index if ver5 else entry.dir_index - 1
    if Path(name).is_absolute() or not 0 <= i < len(dirs):
        return name
    return str(Path(dirs[i].decode()) / name)


def cu_base(cu) -> int:  # cu: elftools CompileUnit
    """The base address a CU's range and location list offsets are relative to."""
    low = cu.get_top_DIE().attributes.get("DW_AT_low_pc")
    return low.value if low is not None else 0


def die_ranges(die, range_lists, base: int) -> list[tuple[int, int]]:
    """[lo, hi) address ranges of a DIE (low/high pc, or DW_AT_ranges relative to
    ``base``, the CU's :func:`cu_base`); ``range_lists`` is ``dwarf.range_lists()``."""
    a = die.attributes
    if "DW_AT_low_pc" in a and "DW_AT_high_pc" in a:
        lo, hi = a["DW_AT_low_pc"].value, a["DW_AT_high_pc"]
        return [(lo, hi.value if hi.form == "DW_FORM_addr" else lo + hi.value)]
    out: list[tuple[int, int]] = []
    if "DW_AT_ranges" in a and range_lists is not None and \
            a["DW_AT_ranges"].form == "DW_FORM_sec_offset":
        for e in range_lists.get_range_list_at_offset(a["DW_AT_ranges"].value, cu=die.cu):
            if hasattr(e, "begin_offset"):
                b = 0 if getattr(e, "is_absolute", False) else base
                out.append((b + e.begin_offset, b + e.end_offset))
    return out


def _inlined_ranges(dwarf, full_paths: bool = False  # dwarf: elftools DWARFInfo
                    ) -> tuple[list[list[tuple[int, int]]], dict[int, tuple[str, int]]]:
    """The [lo, hi) address ranges of each DW_TAG_inlined_subroutine, and for each
    address where one of those ranges starts, the call site (file as the line rows
    name it, line) of the outermost body starting there: gdb stops a ``next`` at
    that call site's line (DIEs come parents first, so the first one seen wins)."""
    range_lists = dwarf.range_lists()
    out: list[list[tuple[int, int]]] = []
    sites: dict[int, tuple[str, int]] = {}
    for cu in dwarf.iter_CUs():
        base = cu_base(cu)
        names = _cu_file_names(dwarf, cu, full_paths)
        for die in cu.iter_DIEs():
            if die.tag != "DW_TAG_inlined_subroutine":
                continue
            ranges = die_ranges(die, range_lists, base)
            out.append(ranges)
            a = die.attributes
            if "DW_AT_call_file" not in a or "DW_AT_call_line" not in a:
                continue
            idx = a["DW_AT_call_file"].value - (0 if names[0] else 1)
            if not 0 <= idx < len(names[1]):
                continue
            for lo, hi in ranges:
                if lo < hi:
                    sites.setdefault(lo, (names[1][idx], a["DW_AT_call_line"].value))
    return out, sites


def _cu_file_names(dwarf, cu, full_paths: bool) -> tuple[bool, list[str]]:
    """(DWARF 5 numbering from 0?, the file names of ``cu``'s line program), named as
    :meth:`LineTable._read` names its rows' files."""
    lp = dwarf.line_program_for_CU(cu)
    if lp is None:
        return True, []
    ver5 = lp.header["version"] >= 5
    files = lp["file_entry"]
    if full_paths:
        return ver5, [_file_name(lp, f, ver5) for f in files]
    return ver5, [f.name.decode() for f in files]
