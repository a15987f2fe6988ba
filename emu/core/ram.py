"""Host memory behind guest RAM.

Layer 1 (imports only ``emu.core.errors``).

Guest RAM the guest never touches must cost no host memory, and the number
of Unicorn mappings must stay small (each ``mem_map`` costs time linear in
the mappings already there, and closing the instance the same again:
measured 15 s for 5,000 mappings).  So:

* the ranges the firmware map asks to back (``E820Map.regions_to_map``) are
  grouped into at most :data:`MAX_SPANS` *spans*: when there are more, the
  smallest holes between ranges are filled (the largest stay unmapped, so a
  PC's PCI hole is never backed);
* each span is one anonymous ``MAP_PRIVATE | MAP_NORESERVE`` host mapping
  handed to Unicorn with ``mem_map_ptr``: the kernel commits host pages on
  first touch only, and the overcommit heuristic (which refuses one mapping
  larger than the host's RAM + swap, the ``UC_ERR_NOMEM`` of Unicorn's own
  ``mem_map``) does not apply to ``MAP_NORESERVE`` mappings.  Copy-on-write
  memory snapshots (``context_save`` with ``UC_CTL_CONTEXT_MEMORY``) cover
  such mappings (measured: a write after the snapshot is undone by the
  restore), as long as guest memory is read through the ``Uc``.

A filled hole is host memory the guest could reach only through page tables
the kernel never builds (its direct map covers usable RAM only); the host
side refuses it like any hole: :meth:`GuestRam.check` accepts only ranges
inside what the map asked to back.
"""

from __future__ import annotations

import bisect
import ctypes
import mmap
from collections.abc import Sequence

from unicorn import UC_PROT_ALL, Uc, UcError

from emu.core.errors import KmemuError

#: At most this many Unicorn mappings per machine (see the module docstring).
MAX_SPANS = 64
#: MAP_NORESERVE from <sys/mman.h> (Linux); the mmap module names it from Python 3.12 on.
MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)


class HostMemoryError(KmemuError):
    """The host cannot provide the memory the guest's RAM needs."""


def format_size(n: int) -> str:
    """A byte count the way the errors print it: "64 GiB", "1.062 GiB"."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.4g} {unit}"
    return f"{n} bytes"


def coalesce(regions: Sequence[tuple[int, int]], max_spans: int = MAX_SPANS,
             ) -> list[tuple[int, int]]:
    """``(base, size)`` spans covering sorted, disjoint *regions*, at most *max_spans*.

    Holes between regions are kept, except the smallest ones when there are
    more than ``max_spans - 1`` holes (ties: the lower address is filled first).

    >>> coalesce([(0, 4096), (8192, 4096), (1 << 30, 4096)], max_spans=2)
    [(0, 12288), (1073741824, 4096)]
    """
    if not regions:
        return []
    gaps = [(regions[i + 1][0] - (regions[i][0] + regions[i][1]), i)
            for i in range(len(regions) - 1)]
    kept = {i for _, i in sorted(gaps, key=lambda g: (-g[0], g[1]))[: max(max_spans - 1, 0)]}
    spans = []
    start = regions[0][0]
    for i, (base, size) in enumerate(regions):
        if i + 1 == len(regions) or i in kept:
            spans.append((start, base + size - start))
            if i + 1 < len(regions):
                start = regions[i + 1][0]
    return spans


def available_host_memory() -> int | None:
    """``MemAvailable`` from /proc/meminfo, in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_host_memory(need: int, what: str) -> None:
    """Raise :class:`HostMemoryError` if the host has less than *need* bytes available."""
    avail = available_host_memory()
    if avail is not None and need > avail:
        raise HostMemoryError(f"{what} needs about {format_size(need)} of host memory; "
                              f"the host has {format_size(avail)} available")


class GuestRam:
    """Guest-physical RAM: the ranges to back, and the host mappings behind them."""

    def __init__(self, regions: Sequence[tuple[int, int]]) -> None:
        self.regions = sorted(regions)  # what the firmware map asks to back
        self._starts = [b for b, _ in self.regions]
        self.spans = coalesce(self.regions)  # what is mapped, one host mapping each
        self._buffers: list[tuple[int, int, mmap.mmap, ctypes.c_char]] = []

    @property
    def mapped_bytes(self) -> int:
        return sum(size for _, size in self.spans)

    def allocate(self) -> None:
        """Reserve host address space for every span (nothing is committed yet)."""
        if self._buffers:
            return
        for base, size in self.spans:
            try:
                buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
                                | MAP_NORESERVE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
            except OSError as e:
                self._buffers.clear()
                raise HostMemoryError(
                    f"the host refused {format_size(size)} of memory for guest RAM at "
                    f"{base:#x} ({e.strerror}); the map needs {format_size(self.mapped_bytes)} "
                    f"of host address space in all (see vm.overcommit_memory)") from None
            view = ctypes.c_char.from_buffer(buf)  # also keeps buf from being closed
            self._buffers.append((base, size, buf, view))

    def map_into(self, uc: Uc) -> None:
        """Map every span into *uc*; the buffers then live as long as *uc* does."""
        self.allocate()
        for base, size, _, view in self._buffers:
            try:
                uc.mem_map_ptr(base, size, UC_PROT_ALL, ctypes.addressof(view))
            except UcError as e:
                raise HostMemoryError(f"Unicorn could not map {format_size(size)} of guest RAM "
                                      f"at {base:#x}: {e}") from None
        uc._kmemu_ram = self  # type: ignore[attr-defined]  # Unicorn holds raw pointers

    def check(self, pa: int, n: int) -> bool:
        """True if ``[pa, pa + n)`` lies in one range the firmware map backs."""
        i = bisect.bisect_right(self._starts, pa) - 1
        if i < 0:
            return False
        base, size = self.regions[i]
        return pa + max(n, 1) <= base + size
