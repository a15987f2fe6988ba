"""Layer 5: budget-cut sweeps — stop a call after every one of its instructions
and check that the machine is still sound.

A host-side stop (an instruction or time budget, ``Machine.interrupt()``) can
land between any two instructions of a kernel function.  The rule
(ARCHITECTURE.md, "Stopped calls") is that the call then stays suspended where
it stopped, and that ``abort()`` (``resume()`` with the stopping points off)
ends it with the result of an uncut call and nothing half-done.
:func:`budget_sweep` checks that rule for one call at every cut point, so
every new kernel entry point can be swept the same way:

>>> report = budget_sweep(m, "kmalloc", 64, 0xcc0)     # doctest: +SKIP
>>> assert not report.failures, report

How: from a snapshot, the call is run once uncut (its length N and result);
then, for a chunk of cut points, it is started with ``max_insns`` (which stops
before the block that would exceed it) and single-stepped to the first cut;
at each cut the stopped machine is saved, checked (abort, then a follow-up and
the validators), restored, and stepped one instruction on.  So the sweep costs
about one step and the rest of the call per cut, not a whole run from the start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emu.core.cpu import BudgetExceeded
from emu.core.errors import KmemuError

if TYPE_CHECKING:
    from emu.debug.stops import SuspendedCall
    from emu.machine.core import Machine

#: Cut points saved on the snapshot stack before the sweep goes back to its start
#: (Unicorn keeps a copy-on-write layer per snapshot until an older one is restored).
CHUNK = 256


@dataclass
class CutFailure:
    """One cut point after which the machine was not sound."""

    insns: int  # instructions the call had run when it was cut
    where: str  # the symbolised RIP of the cut
    action: str  # "stop" (the stopped state), "abort" or "resume"
    problem: str

    def __str__(self) -> str:
        return f"cut after {self.insns} insns at {self.where}, {self.action}: {self.problem}"


@dataclass
class SweepReport:
    """What :func:`budget_sweep` found: ``failures`` is empty when every cut was sound."""

    function: str
    length: int  # instructions of the uncut call
    result: int  # the uncut call's result
    cuts: range
    failures: list[CutFailure] = field(default_factory=list)

    def __str__(self) -> str:
        head = (f"{self.function}: {len(self.cuts)} cuts ({self.cuts.start}..{self.cuts.stop - 1}"
                f" of {self.length} instructions), {len(self.failures)} unsound")
        return "\n".join([head, *(f"  {f}" for f in self.failures[:20])] +
                         ([f"  ... {len(self.failures) - 20} more"] if len(self.failures) > 20
                          else []))


def follow_up_allocations(m: Machine) -> None:
    """The default check after an abort: a kmalloc and a page allocation work
    (not freed: the sweep restores the cut point afterwards)."""
    if not m.kmalloc(64):
        raise KmemuError("kmalloc(64) failed")
    if not m.alloc_pages("GFP_KERNEL", 0):
        raise KmemuError("alloc_pages(GFP_KERNEL, 0) failed")


def cheap_validators(m: Machine) -> list[str]:
    """validate_vmalloc (under a millisecond; the page and slab walks take ~150 ms each)."""
    return m.validate_vmalloc()


def full_validators(m: Machine) -> list[str]:
    return m.validate_page_alloc() + m.validate_slab() + m.validate_vmalloc()


def call_length(m: Machine, fn: str, *args: int, context: str = "process") -> tuple[int, int]:
    """(instructions, result) of ``fn(*args)`` from the current state, which is kept."""
    snap = m.snapshot()
    try:
        with m.count_instructions() as n:
            result = m.call(fn, *args, context=context)
        return n[0], result
    finally:
        m.restore(snap)


def budget_sweep(m: Machine, fn: str, *args: int, cuts: range | None = None,
                 follow_up: Callable[[Machine], None] = follow_up_allocations,
                 validate: Callable[[Machine], list[str]] = cheap_validators,
                 full_every: int = 0, context: str = "process") -> SweepReport:
    """Cut ``fn(*args)`` after each number of instructions in ``cuts`` (default:
    every point inside the call, ``range(1, N)``) and check each cut.

    At every cut: the machine must say "stopped" with this call suspended;
    ``abort()`` (which runs the call on to its end) must return the uncut
    call's result and leave the machine "ready", ``follow_up(m)`` must work
    and ``validate(m)`` (plus :func:`full_validators` every ``full_every``
    cuts, 0: never) must find nothing.  The machine is back at its starting
    state afterwards.
    """
    start = m.snapshot()
    try:
        length, result = call_length(m, fn, *args, context=context)
        if cuts is None:
            cuts = range(1, length)
        report = SweepReport(fn, length, result, cuts)
        todo = [k for k in cuts if 0 < k < length]
        with m._counted_runs():  # noqa: SLF001 - steps and runs alternate at every cut
            for i in range(0, len(todo), CHUNK):
                m.restore(start)
                _sweep_chunk(m, fn, args, context, todo[i:i + CHUNK], report, follow_up,
                             validate, full_every)
        return report
    finally:
        m.restore(start)


def _sweep_chunk(m: Machine, fn: str, args: tuple[int, ...], context: str, ks: list[int],
                 report: SweepReport, follow_up: Callable[[Machine], None],
                 validate: Callable[[Machine], list[str]], full_every: int) -> None:
    """Cuts ``ks`` (ascending) of one run: stop at the first, then step from cut to cut."""
    try:
        m.call(fn, *args, context=context, max_insns=ks[0])
    except BudgetExceeded as e:
        call, ran = e.call, e.insns
    else:
        report.failures.append(CutFailure(ks[0], "-", "stop", "the call was not cut"))
        return
    assert call is not None
    for k in ks:
        if ran < k:
            call.stepi(k - ran)
            ran = k
        if call.done:  # its last instructions (the return to the host): nothing to cut
            return
        _check_cut(m, call, k, report, follow_up, validate,
                   full_every > 0 and k % full_every == 0)


def _check_cut(m: Machine, call: SuspendedCall, k: int, report: SweepReport,
               follow_up: Callable[[Machine], None], validate: Callable[[Machine], list[str]],
               full: bool) -> None:
    """The rule at one cut: "stopped", then abort() finishes the call with the uncut
    result (abort is resume() with the stopping points off, so this checks both)
    and leaves a kernel where ``follow_up`` works and the validators find nothing."""
    where = m.symbolize(call.rip)

    def fail(action: str, problem: str) -> None:
        report.failures.append(CutFailure(k, where, action, problem))

    if m.state != "stopped" or m._suspended is not call:  # noqa: SLF001
        fail("stop", f"the machine says {m.state!r}, not stopped in the call")
        return
    here = m.snapshot()
    try:
        got = call.abort()
        if m.state != "ready":
            fail("abort", f"the machine is {m.state!r} afterwards")
            return
        if got != report.result:
            fail("abort", f"the call returned {got:#x}, uncut {report.result:#x}")
        follow_up(m)
        found = validate(m) + (full_validators(m) if full else [])
        if found:
            fail("abort", "; ".join(found[:3]))
    except KmemuError as e:
        if getattr(e, "stopped_by", None) == "interrupt":  # Ctrl-C / interrupt(): the sweep
            raise  # ends (restored to its start), rather than recording a failing cut
        fail("abort", f"{type(e).__name__}: {str(e).splitlines()[0]}")
    finally:
        m.restore(here)
