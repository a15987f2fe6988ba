"""Exceptions kmemu raises. Everything derives from :class:`KmemuError`.

Layer 1 (imported by every layer; imports nothing from ``emu``).
"""

from __future__ import annotations


class KmemuError(Exception):
    """Base class of every error kmemu raises."""


class PageFault(KmemuError):
    """A virtual address did not translate (the walk stopped at a level)."""

    def __init__(
        self, va: int, level: str, entry: int | None, reason: str, access: str = "read"
    ) -> None:
        self.va, self.level, self.entry, self.reason, self.access = va, level, entry, reason, access
        ent = "" if entry is None else f" (entry {entry:#018x})"
        super().__init__(f"cannot {access} {va:#018x}: {reason} at {level}{ent}")


class BadArgument(KmemuError, ValueError):
    """A call or accessor got an argument it cannot use; the message says which."""


class MachineError(KmemuError):
    """The machine cannot do what was asked (not booted, already exited, ...)."""


class SlabAllocatorError(KmemuError):
    """A slab view or call the running slab allocator does not have (SLOB's missing
    /proc/slabinfo, SLAB's reaping asked of SLUB, ...); the message names both."""


class ModuleError(KmemuError):
    """A loadable module could not be built, loaded or unloaded.

    ``errno`` is the kernel's error number when the kernel refused (0 for a
    build failure: the message then holds the compiler's own diagnostics).
    """

    def __init__(self, message: str, errno: int = 0) -> None:
        self.errno = errno
        super().__init__(message)


class CallStopped(KmemuError):
    """The host stopped a call before its end: a budget ran out, ``interrupt()``
    (Ctrl-C), or the guest waits for something no interrupt will bring.

    The call is not lost and not half-finished behind your back: it stays
    suspended where it stopped (``Machine.state`` is "stopped") and ``call`` is
    the :class:`emu.debug.stops.SuspendedCall`: inspect the machine, then
    ``call.resume()`` it or ``call.abort()`` it, or ``restore()`` a snapshot.
    ``call`` is None when no call was running (e.g. during boot).
    """

    call = None  # the emu.debug.stops.SuspendedCall left stopped (set by the run loop)
    stopped_by = "host"  # each subclass says what: "budget", "interrupt", "wait"

    @property
    def detail(self) -> str:
        """The message without the advice on what to do with the stopped call."""
        return self.__dict__.get("_detail", str(self))

    @detail.setter
    def detail(self, text: str) -> None:
        self.__dict__["_detail"] = text
