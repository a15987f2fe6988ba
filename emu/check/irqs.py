"""Layer 5: the interrupt-at-every-instruction sweep.

>>> runs = m.sweep_irqs("kmalloc", 64, 0xcc0, handler=0x32)   # doctest: +SKIP
>>> assert not runs.failures, runs

The call runs once to learn its length N and the address of each instruction;
then for k = 1..N+1 it runs again from the same snapshot with the interrupt
``handler`` (a vector whose kernel handler does something, e.g. allocate from
the same cache) raised to arrive after k instructions (``raise_irq(after=k)``:
delivered at the first point from there where interrupts are enabled, as on
hardware).  Each run is judged like a failure-sweep run: ``oops``, ``warn``,
``invalid-state`` (a bad-page/slab report, a validator's complaint, or
``check(m, result)`` raising or returning problems), ``not-delivered`` (the
interrupt was still pending after the call and a follow-up), else ``ok``.
Each k is independent, so :func:`irq_point` runs one in another process or
pytest item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from unicorn import UC_HOOK_CODE

from emu.check.failures import event_headline
from emu.core.cpu import delete_hook
from emu.core.errors import BadArgument, CallStopped, KmemuError

if TYPE_CHECKING:
    from emu.machine.core import Machine

_WARN_KINDS = {"warn", "sleep_in_atomic"}
_INVALID_KINDS = {"bad_page", "slab"}
_OOPS_KINDS = {"oops", "bug", "panic"}

Check = Callable[["Machine", int], "list[str] | None"]


@dataclass
class IrqRun:
    """The interrupt raised to arrive after ``k`` instructions of the call."""

    k: int
    where: str  # the instruction it was due at (symbolised); "(return)" past the end
    outcome: str
    detail: str = ""
    result: int | None = None

    @property
    def site(self) -> str:
        return self.where

    def __str__(self) -> str:
        return f"{self.k:>5}  {self.where:<40} {self.outcome:<14} {self.detail}"


class IrqSweep(list[IrqRun]):
    """The runs of :func:`sweep_irqs`; ``str()`` is the table of the runs not ok."""

    def __init__(self, function: str, vector: int, length: int, runs: Iterable[IrqRun] = ()):
        super().__init__(runs)
        self.function, self.vector, self.length = function, vector, length

    @property
    def failures(self) -> list[IrqRun]:
        return [r for r in self if r.outcome != "ok"]

    def __str__(self) -> str:
        bad = self.failures
        head = (f"{self.function}: IRQ {self.vector:#x} at each of {len(self)} points "
                f"({self.length} instructions), {len(bad)} not ok")
        return "\n".join([head, *(str(r) for r in bad)])

    __repr__ = __str__


class _IrqSweep:
    def __init__(self, m: Machine, fn: str | int, args: tuple[int, ...], vector: int,
                 context: str, check: Check | None,
                 validate: Callable[[Machine], list[str]] | None) -> None:
        if isinstance(vector, bool) or not isinstance(vector, int):
            raise BadArgument(f"handler is the interrupt vector to raise, got {vector!r}")
        for name, f in (("check", check), ("validate", validate)):
            if f is not None and not callable(f):
                raise BadArgument(f"{name} must be callable, got {f!r}")
        m.irq.check_vector(vector)  # type: ignore[union-attr]
        self.m, self.fn, self.args, self.vector, self.context = m, fn, args, vector, context
        self.check, self.validate = check, validate
        self.name = fn if isinstance(fn, str) else m.symbolize(fn)
        self.start = m.snapshot()
        self.events_at = len(m.events)
        self.rips = self._trace()

    def _trace(self) -> list[int]:
        """The address of every instruction of one uninterrupted run."""
        m, rips = self.m, []
        h = m.hook_add(UC_HOOK_CODE, lambda _u, a, _s, _d: rips.append(a))
        try:
            m.call(self.fn, *self.args, context=self.context)
        finally:
            delete_hook(m.uc, h)
            m.restore(self.start)
        return rips

    def close(self) -> None:
        self.m.restore(self.start)

    def run(self, k: int) -> IrqRun:
        m = self.m
        m.restore(self.start)
        where = m.symbolize(self.rips[k - 1]) if k <= len(self.rips) else "(return)"
        run = IrqRun(k, where, "ok")
        try:
            m.raise_irq(self.vector, after=k)
            run.result = m.call(self.fn, *self.args, context=self.context)
            m.call("kmemu_test_nop")  # a still-pending interrupt comes in at the idle loop
        except CallStopped as e:
            if e.stopped_by == "interrupt":  # Ctrl-C / interrupt(): the sweep ends, not a run
                raise
            run.outcome, run.detail = "oops", f"did not finish: {str(e).splitlines()[0]}"
            return run
        except KmemuError as e:
            run.outcome, run.detail = "oops", str(e).splitlines()[0]
            return run
        bad = [e for e in m.events[self.events_at:]
               if e.kind in _OOPS_KINDS | _WARN_KINDS | _INVALID_KINDS]
        if bad:
            e = bad[0]
            run.outcome = ("oops" if e.kind in _OOPS_KINDS else
                           "warn" if e.kind in _WARN_KINDS else "invalid-state")
            run.detail = event_headline(e)
            return run
        if m.irq.has_pending():  # type: ignore[union-attr]
            run.outcome, run.detail = "not-delivered", "the interrupt is still pending"
            return run
        problems: list[str] = []
        if self.check is not None:
            try:
                problems = list(self.check(m, run.result) or [])
            except AssertionError as e:
                problems = [f"check failed: {e}"]
        if self.validate is not None:
            problems += self.validate(m)
        if problems:
            run.outcome, run.detail = "invalid-state", "; ".join(problems[:2])
        return run


def start_irq_sweep(m: Machine, fn: str | int, *args: int, handler: int,
                    context: str = "process", check: Check | None = None,
                    validate: Callable[[Machine], list[str]] | None = None) -> _IrqSweep:
    """The sweep's state (the call traced once); :meth:`_IrqSweep.run` runs one point."""
    return _IrqSweep(m, fn, args, handler, context, check, validate)


def sweep_irqs(m: Machine, fn: str | int, *args: int, handler: int, context: str = "process",
               check: Check | None = None,
               validate: Callable[[Machine], list[str]] | None = None,
               points: Iterable[int] | None = None) -> IrqSweep:
    """Raise interrupt ``handler`` at every instruction of ``fn(*args)`` (1..N+1), one run
    each, and judge each run (see the module docstring).  The machine is back where
    it was afterwards."""
    sw = start_irq_sweep(m, fn, *args, handler=handler, context=context, check=check,
                         validate=validate)
    try:
        ks = range(1, len(sw.rips) + 2) if points is None else list(points)
        return IrqSweep(sw.name, handler, len(sw.rips), [sw.run(k) for k in ks])
    finally:
        sw.close()
