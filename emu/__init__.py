"""kmemu: a tiny x86-64 kernel for memory allocation on an emulated PC.

>>> from emu import Machine
>>> m = Machine.booted()                # doctest: +SKIP
"""

from emu.core.cpu import BudgetExceeded, CpuError
from emu.core.errors import KmemuError, ModuleError, PageFault, SlabAllocatorError
from emu.core.ram import HostMemoryError
from emu.kernel import gfp  # GFP names and values: gfp.parse("GFP_KERNEL"), gfp.format(0xcc0)
from emu.kernel.funcgraph import TraceError
from emu.machine.core import (
    BadArgument,
    BatchOops,
    BootError,
    BreakpointHit,
    CallInterrupted,
    GuestExit,
    GuestOops,
    GuestWaiting,
    Interrupted,
    KasanStop,
    Machine,
    MachineError,
    Snapshot,
    WatchpointHit,
)
from emu.machine.ftrace import Profile, TraceResult
from emu.machine.kasan import KasanReport
from emu.machine.kmemleak import KmemleakObject, KmemleakOff, KmemleakReport
from emu.machine.modules import Module

__all__ = [
    "BadArgument", "BatchOops", "BootError", "BreakpointHit", "BudgetExceeded", "CallInterrupted",
    "CpuError", "GuestExit", "GuestOops", "GuestWaiting", "HostMemoryError", "Interrupted",
    "KasanReport", "KasanStop", "KmemleakObject", "KmemleakOff", "KmemleakReport", "KmemuError",
    "Machine", "MachineError", "Module", "ModuleError", "PageFault", "Profile",
    "SlabAllocatorError", "Snapshot", "TraceError", "TraceResult", "WatchpointHit", "gfp",
]
__version__ = "0.1.0"
