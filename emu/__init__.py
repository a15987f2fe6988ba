"""kmemu: a tiny x86-64 kernel for memory allocation on an emulated PC.

>>> from emu import Machine
>>> m = Machine.booted()                # doctest: +SKIP
"""

from emu.cpu import BudgetExceeded, CpuError
from emu.errors import KmemuError, ModuleError, PageFault
from emu.machine import (
    BadArgument,
    BootError,
    BreakpointHit,
    CallInterrupted,
    GuestExit,
    GuestOops,
    GuestWaiting,
    Interrupted,
    Machine,
    MachineError,
    Snapshot,
    WatchpointHit,
)
from emu.module_api import Module
from emu.ram import HostMemoryError

__all__ = [
    "BadArgument", "BootError", "BreakpointHit", "BudgetExceeded", "CallInterrupted", "CpuError",
    "GuestExit", "GuestOops", "GuestWaiting", "HostMemoryError", "Interrupted", "KmemuError",
    "Machine", "MachineError", "Module", "ModuleError", "PageFault", "Snapshot", "WatchpointHit",
]
__version__ = "0.1.0"
