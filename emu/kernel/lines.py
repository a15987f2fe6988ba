"""Source lines from the kernel's DWARF line table: ``file.c:line`` <-> address.

Layer 4 (``emu.kernel``).

>>> lt = LineTable.load(elf_path)            # doctest: +SKIP
>>> hex(lt.address("slab.c", 240))           # doctest: +SKIP
'0xffffffff80107590'
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from emu.errors import KmemuError


class LineError(KmemuError, LookupError):
    """No code for that file:line, or an unknown file."""


@dataclass(frozen=True)
class LineEntry:
    address: int
    file: str  # as compiled, e.g. "kernel/slab.c"
    line: int


class LineTable:
    def __init__(self, rows: list[LineEntry]) -> None:
        self.rows = sorted(rows, key=lambda r: r.address)
        self._addrs = [r.address for r in self.rows]
        self.by_line: dict[tuple[str, int], int] = {}
        for r in self.rows:
            key = (Path(r.file).name, r.line)
            if key not in self.by_line or r.address < self.by_line[key]:
                self.by_line[key] = r.address

    @classmethod
    def load(cls, elf_path: Path) -> LineTable:
        rows: list[LineEntry] = []
        with Path(elf_path).open("rb") as f:
            elf = ELFFile(f)
            if not elf.has_dwarf_info():
                return cls([])
            dwarf = elf.get_dwarf_info()
            for cu in dwarf.iter_CUs():
                lp = dwarf.line_program_for_CU(cu)
                if lp is None:
                    continue
                files = lp["file_entry"]
                ver5 = lp.header["version"] >= 5
                for entry in lp.get_entries():
                    st = entry.state
                    if st is None or st.end_sequence or not st.is_stmt:
                        continue
                    idx = st.file if ver5 else st.file - 1
                    if not 0 <= idx < len(files):
                        continue
                    rows.append(LineEntry(st.address, files[idx].name.decode(), st.line))
        return cls(rows)

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
        """The source line an address belongs to."""
        i = bisect.bisect_right(self._addrs, address) - 1
        return self.rows[i] if i >= 0 else None

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
