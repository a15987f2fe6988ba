"""Layer 5: the virtual interrupt controller and instruction timers.

Vectors raised by Python wait here until the guest can take them: only
while RFLAGS.IF is set, highest vector first (as a local APIC orders them).
The machine asks :meth:`InterruptController.next_deliverable` whenever the
guest stops (hlt, the kernel's interrupt-window port after ``sti``, a timer
expiring, the return address of an interrupted context).

``raise_irq(vector, after=N)`` arms a timer counted in guest instructions
with a code hook that exists only while a timer is armed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from unicorn import UC_HOOK_CODE, Uc

from emu.core.cpu import add_code_hook, delete_hook
from emu.core.errors import KmemuError


class IrqError(KmemuError, ValueError):
    """A bad vector or timer request."""


@dataclass
class IrqState:
    """Snapshot-able state: pending vectors and armed timers ([remaining, vector])."""

    pending: list[int] = field(default_factory=list)
    timers: list[list[int]] = field(default_factory=list)

    def copy(self) -> IrqState:
        return IrqState(list(self.pending), [list(t) for t in self.timers])


class InterruptController:
    """Pending vectors and instruction timers for one machine."""

    def __init__(self, uc: Uc) -> None:
        self.uc = uc
        self.state = IrqState()
        self._hook: int | None = None
        self.delivered: list[int] = []  # every vector delivered, in order

    @staticmethod
    def check_vector(vector: int) -> int:
        if not isinstance(vector, int) or isinstance(vector, bool):
            raise IrqError(f"interrupt vector must be an int, got {type(vector).__name__}")
        if not 32 <= vector <= 255:
            raise IrqError(
                f"interrupt vector {vector} is outside 32..255 (0..31 are CPU exceptions)"
            )
        return vector

    def raise_irq(self, vector: int, after: int | None = None) -> None:
        self.check_vector(vector)
        if after is None or after == 0:
            self.state.pending.append(vector)
            return
        if not isinstance(after, int) or after < 0:
            raise IrqError(f"after must be a non-negative instruction count, got {after!r}")
        self.state.timers.append([after, vector])
        self._sync_hook()

    def has_pending(self) -> bool:
        return bool(self.state.pending)

    def has_timers(self) -> bool:
        return bool(self.state.timers)

    def next_deliverable(self) -> int | None:
        """Remove and return the highest pending vector (caller checked IF)."""
        if not self.state.pending:
            return None
        v = max(self.state.pending)
        self.state.pending.remove(v)
        self.delivered.append(v)
        return v

    def restore(self, state: IrqState) -> None:
        self.state = state.copy()
        self._sync_hook()

    def clear(self) -> None:
        self.state = IrqState()
        self._sync_hook()

    def _sync_hook(self) -> None:
        if self.state.timers and self._hook is None:
            self._hook = add_code_hook(self.uc, UC_HOOK_CODE, self._tick)
            # Code already translated carries no call to a new hook (measured).
            self.uc.ctl_flush_tb()
        elif not self.state.timers and self._hook is not None:
            delete_hook(self.uc, self._hook)
            self._hook = None

    def _tick(self, uc: Uc, address: int, size: int, _: object) -> None:
        fired = False
        for t in self.state.timers:
            t[0] -= 1
            if t[0] <= 0:
                self.state.pending.append(t[1])
                fired = True
        if fired:
            self.state.timers = [t for t in self.state.timers if t[0] > 0]
            uc.emu_stop()

    def fire_next_timer(self) -> None:
        """The CPU is halted: let time pass until the nearest timer expires."""
        if not self.state.timers:
            return
        nearest = min(t[0] for t in self.state.timers)
        for t in self.state.timers:
            t[0] -= nearest
            if t[0] <= 0:
                self.state.pending.append(t[1])
        self.state.timers = [t for t in self.state.timers if t[0] > 0]
        self._sync_hook()

    def after_run(self) -> None:
        """Drop the timer hook once no timer is armed (not from inside the hook)."""
        self._sync_hook()
