"""Layer 5: stopping inside the guest — suspended calls, single steps, and the
breakpoint, watchpoint and backtrace entry points of :class:`emu.Machine`.

A call that reaches a stopping breakpoint or watchpoint, or that the host
stops (its budget, ``interrupt()``, a wait no interrupt ends: the
:class:`emu.core.errors.CallStopped` errors), is left *suspended*: ``Machine.state``
is "stopped" and the exception carries a :class:`SuspendedCall` that can be
resumed, stepped (see :mod:`emu.debug.stepping`) or aborted (run to its end with the
stopping points off: never dropped halfway).  :class:`StopsMixin` holds the
machine's side of that; ARCHITECTURE.md ("Debugging") has the Unicorn facts it
relies on.

>>> m.break_at("kmalloc")                       # doctest: +SKIP
>>> try:                                        # doctest: +SKIP
...     m.kmalloc(64)
... except BreakpointHit as hit:
...     hit.call.next(); ptr = hit.call.finish()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from unicorn import UC_ERR_INSN_INVALID, Uc, UcError

from emu.core.args import check_callable, check_int
from emu.core.errors import BadArgument, CallStopped, KmemuError, MachineError

if TYPE_CHECKING:
    from emu.machine.core import Machine


class BreakpointHit(KmemuError):
    """A call stopped at a stopping breakpoint; ``call.resume()`` continues it,
    ``call.stepi()`` runs one instruction, ``call.abort()`` abandons it."""

    reason = "breakpoint"

    def __init__(self, call: SuspendedCall, breakpoint: object, where: str) -> None:
        self.call = call
        self.breakpoint = breakpoint
        self.where = where
        err = getattr(breakpoint, "condition_error", None)
        why = f" (its condition raised {err}; stopped as gdb does)" if err else ""
        super().__init__(f"stopped at {where} in {call.name}(){why}")


class WatchpointHit(BreakpointHit):
    """A call stopped just after an access to a stopping watchpoint's range;
    ``hit`` (:class:`emu.debug.breakpoints.WatchHit`) has the old and new value and
    the instruction that made the access."""

    reason = "watchpoint"

    def __init__(self, call: SuspendedCall, hit: object, where: str) -> None:
        super().__init__(call, getattr(hit, "watchpoint", None), where)
        self.hit = hit
        self.args = (f"{hit.describe()}\nstopped at {where} in {call.name}()",)  # type: ignore[attr-defined]


class CannotAbort(MachineError):
    """``abort()`` could not run a stopped call to its end (a runaway loop, a wait
    no interrupt ends); it is still stopped: only ``restore()`` gives a sound machine."""


class CallInterrupted(BreakpointHit):
    """A call suspended by ``Machine.interrupt()`` (Ctrl-C) in a debug session."""

    reason = "interrupted"


class KasanStop(BreakpointHit):
    """A call stopped at the access KASAN just reported (the KASAN kernel, in a debug
    session: ``Machine.stop_on_kasan``).  RIP is in the instrumented function, right
    after its check and before the access; ``report`` is the
    :class:`emu.machine.kasan.KasanInfo` (kind, address, stacks, the report's text)."""

    reason = "kasan"

    def __init__(self, call: SuspendedCall, breakpoint: object, where: str,
                 report: object) -> None:
        super().__init__(call, breakpoint, where)
        self.report = report
        self.args = (f"BUG: KASAN: {report.kind} in {report.site}\n"  # type: ignore[attr-defined]
                     f"stopped at {where} in {call.name}()",)


@dataclass
class KasanPending:
    """The event of a KASAN report that is to stop the call at its access."""

    event: object


@dataclass
class SuspendedCall:
    """A call stopped inside the guest (see :class:`BreakpointHit`).

    Every method that runs the guest stops early at a stopping breakpoint or
    watchpoint (raising :class:`BreakpointHit` / :class:`WatchpointHit`
    again).  When the call's own return ends it, ``done`` becomes true,
    ``result`` holds the call's result and the machine is back at idle.
    """

    machine: Machine
    name: str
    on_done: Callable[[int], int]  # the call's result from the final control value
    done: bool = False
    result: int | None = None
    #: what stopped it last: "breakpoint", "watchpoint", "interrupt", "budget", "wait"
    stopped_by: str = "breakpoint"
    #: a process-context call on the quiet frame: reaching the idle loop's hlt is its end
    #: (entry.S's quiet end).  Interrupts at idle and irq-context calls also come back to
    #: that hlt, on their way to the idle loop's own CTL_READY: not their end.
    quiet: bool = False

    @property
    def rip(self) -> int:
        return self.machine.cpu.rip  # type: ignore[union-attr]

    def resume(self) -> int:
        """Continue to the end of the call (or the next stop): the call's result."""
        self.machine._begin_request()
        return self.machine._resume(self)

    def stepi(self, n: int = 1) -> int:
        """Execute ``n`` instructions (into calls and fault handlers); the new RIP."""
        from emu.debug.stepping import stepi
        self.machine._begin_request()
        return stepi(self, n)

    def step(self, n: int = 1):  # -> emu.kernel.lines.LineEntry | None
        """Run to the start of the next source line, entering called functions that
        have line information (gdb's ``step``); the line, or None if the call ended."""
        from emu.debug.stepping import step_line
        self.machine._begin_request()  # an interrupt() from now on ends the whole step
        return step_line(self, over=False, count=n)

    def next(self, n: int = 1):  # -> emu.kernel.lines.LineEntry | None
        """Like :meth:`step` but runs called functions to their return (gdb's ``next``)."""
        from emu.debug.stepping import step_line
        self.machine._begin_request()
        return step_line(self, over=True, count=n)

    def until(self, where: str | int | None = None):  # -> LineEntry | None
        """gdb's ``until``: without ``where``, ``next`` that does not stop at a line
        before the current one (leaves loops); with it, run to ``where`` or until the
        current function returns, whichever comes first."""
        from emu.debug.stepping import until
        self.machine._begin_request()
        return until(self, where)

    def finish(self, level: int = 0) -> int:
        """Run until the function of frame ``level`` (0: the current one) returns;
        its return value (``rax``, masked to the function's return type).

        If that return ends the whole call, the call completes and this is the
        call's result.
        """
        from emu.debug.stepping import finish
        self.machine._begin_request()
        return finish(self, level)

    def abort(self) -> int:
        """End the call without leaving anything half-done: it runs to its end with
        the stopping breakpoints and watchpoints off (for at most 10 s) and the
        machine is idle again; returns the call's result (free it if you like).
        :class:`CannotAbort` if it cannot end (it stays stopped: ``restore()``)."""
        return self.machine._abort(self)

    def backtrace(self) -> list:  # -> list[emu.kernel.unwind.Frame]
        """The stack of the stopped call, innermost first."""
        return self.machine.backtrace()


class StopsMixin:
    """The machine's side of suspended calls (mixed into :class:`emu.Machine`)."""

    def _suspend(self, call: SuspendedCall) -> None:
        """Leave ``call`` stopped here and raise the matching :class:`BreakpointHit`."""
        from emu.debug.breakpoints import WatchHit

        bp, self._stop_hit = self._stop_hit, None
        self._watch_hits = []
        self.state = "stopped"
        self._suspended = call
        from emu.debug.breakpoints import Breakpoint
        self._hooks_done_at = self.cpu.rip if isinstance(bp, Breakpoint) else None  # type: ignore[union-attr]
        where = self.symbolize(self.cpu.rip)  # type: ignore[union-attr]
        if isinstance(bp, WatchHit):
            call.stopped_by = "watchpoint"
            raise WatchpointHit(call, bp, where)
        if bp == "interrupted":
            call.stopped_by = "interrupt"
            raise CallInterrupted(call, None, where)
        kasan_event = getattr(bp, "kasan_event", None)
        if kasan_event is not None:
            from emu.machine.kasan import read_record
            bp.remove()  # type: ignore[union-attr]
            call.stopped_by = "kasan"
            info = read_record(self, kasan_event)  # type: ignore[arg-type]
            raise KasanStop(call, bp, where, info)
        call.stopped_by = "breakpoint"
        if getattr(bp, "temporary", False):
            bp.remove()  # type: ignore[union-attr]
        raise BreakpointHit(call, bp, where)

    def _arm_kasan_stop(self) -> bool:
        """A run stopped in a KASAN report (KasanPending): set a one-time stop at the
        access site (the report's return address into the instrumented code)."""
        pending = self._stop_hit
        if not isinstance(pending, KasanPending):
            return False
        from emu.debug.breakpoints import Breakpoint
        self._stop_hit = None
        ip = pending.event.args[4]  # type: ignore[attr-defined]
        bp = Breakpoint(self, ip, ip, stop=True, temporary=True)  # type: ignore[arg-type]
        bp.kasan_event = pending.event  # type: ignore[attr-defined]
        bp.install()
        return True

    def _suspend_stopped(self, call: SuspendedCall, e: CallStopped) -> None:
        """Leave ``call`` where the host stopped it (budget, interrupt, wait) and
        say so in ``e``: nothing half-done is left behind the machine's back."""
        self._stop_hit = None
        self._hooks_done_at = None
        self._watch_hits = []
        self.state = "stopped"
        self._suspended = call
        call.stopped_by = e.stopped_by
        e.call, e.detail = call, str(e)
        e.args = (f"{e}; {call.name}() is suspended there: .call.resume() or .call.abort() "
                  "it, or restore() a snapshot",)

    def inline_skipped(self) -> int:
        """How many inlined bodies start at the pc without being entered (gdb's
        skipped inline frames): frame 0 is shown at their call site."""
        rip = self.cpu.rip if self.cpu is not None else None
        if rip is None or self._inline_entered == rip:
            return 0
        return self.lines.inline_entries.get(rip, 0)

    def _check_suspended(self, call: SuspendedCall) -> None:
        if self.state != "stopped" or self._suspended is not call:
            raise MachineError("that call is not the one stopped in the guest")

    def _resume(self, call: SuspendedCall) -> int:
        """Step off the stop (as gdb steps over a breakpoint), then run."""
        self._stepi(call)
        if call.done:
            return call.result  # type: ignore[return-value]
        return self._complete(call, None, None)

    def _stop_in_access(self, uc: Uc, access: int, address: int, size: int) -> None:
        """Stop from a memory hook, so that the access's instruction can run again.

        Measured (Unicorn 2.1): after ``emu_stop`` in a write hook the store
        has been done but the rest of the instruction has not (``push`` has
        written but not moved RSP, ``add`` to memory has stored but not set
        the flags) and RIP is still the instruction's.  So the old bytes are
        put back before the run loop executes it again in one step.
        """
        from unicorn import UC_MEM_WRITE

        if access == UC_MEM_WRITE:
            self._undo_writes.append((address, bytes(uc.mem_read(address, size))))
        self._watch_step_pending = True
        uc.emu_stop()

    def _step_insn(self) -> int | None:
        """Execute the one instruction at RIP for the host (no interrupt delivery,
        as QEMU's gdb stub single-steps); a control value if it ended the run.

        Breakpoints at RIP do not fire; watch hooks record without stopping.
        A fault it raises is delivered to the guest's IDT (the next stepi is in
        the handler).
        """
        cpu, uc = self.cpu, self.uc
        assert cpu is not None
        rip = cpu.rip
        self._inline_entered = None
        self._skip_once = rip  # stopping breakpoints here do not fire again
        self._skip_all = self._hooks_done_at == rip  # every hook here ran when we stopped
        self._hooks_done_at = None
        self._stepping = True
        if self._entry is not None:  # what the step runs may write the call's stack frame
            self._entry.frame_ok = False
        self._exc, self._ctl, self._watch_hits = None, None, []
        # count=1 works through a code hook that Unicorn adds without flushing the
        # translation cache: blocks translated by a normal run would not count, and a
        # step into a loop would never end.
        self._translate_counted()
        try:
            uc.emu_start(rip, 0, 0, 1)
        except UcError as e:
            if e.errno != UC_ERR_INSN_INVALID:
                raise MachineError(f"stepping failed at {self.symbolize(rip)}: {e}") from e
            self._exc = 6
        finally:
            self._stepping = False
            self._skip_once = None
            self._skip_all = False
        self._reap_hooks()
        self._stop_hit = None
        if self._rewatch:
            self._rewatch_all()
        if self._exc is not None and self._ctl is None:
            self._deliver_exception(self._exc)
        if self._ctl is None and self._at_quiet_end(cpu.rip):
            return 2  # CTL_CALL_DONE: a quiet call's end, the idle hlt (Machine._call_fast)
        return self._ctl

    def _rewatch_all(self) -> None:
        self._rewatch = False
        for wp in list(self._watchpoints):
            wp._resolve()  # noqa: SLF001

    def _stepi(self, call: SuspendedCall) -> int:
        self._check_suspended(call)
        cpu = self.cpu
        assert cpu is not None
        self.state = "running"
        try:
            ctl = self._step_insn()
        except MachineError:
            self.state = "crashed"
            raise
        if ctl is not None:  # the call's last instruction (or an oops, or the exit port)
            self._complete_from(call, ctl)
            return cpu.rip
        if self._watch_hits:
            self._stop_hit = self._watch_hits[0]
            self._suspend(call)
        self.state = "stopped"
        return cpu.rip

    def _complete_from(self, call: SuspendedCall, ctl: int) -> int:
        """Finish a call whose stepped instruction reported ``ctl`` (as _run would)."""
        self._ctl_pending = ctl
        return self._complete(call, None, None)

    def _abandon(self) -> None:
        """Back to idle after a run that failed on the host side (state "crashed")."""
        if self.state != "crashed" or self._uc is None:
            raise MachineError(f"the machine is {self.state}, not crashed")
        self._suspended = None
        self._stop_hit = None
        self._hooks_done_at = None
        self._to_idle()
        self.state = "ready"

    #: How long :meth:`SuspendedCall.abort` lets a call run on to its end.
    ABORT_SECONDS = 10.0

    def _drop(self, call: SuspendedCall) -> None:
        """Leave ``call`` where it is and go back to idle: only for front ends that
        must end a call :meth:`_abort` could not (gdb's ``kill`` of a runaway),
        and they say the kernel may hold half-done state."""
        self._check_suspended(call)
        self._stop_hit = None
        self._hooks_done_at = None
        self._suspended = None
        self._to_idle()
        self.state = "ready"

    def _abort(self, call: SuspendedCall, seconds: float | None = None) -> int:
        """End a stopped call by running it to its end with the stopping points off.

        A kernel function cannot be dropped halfway without leaving something
        half-done: inside a critical section its lock stays held (the next
        allocation spins or panics), and outside one too (measured with
        :func:`emu.check.sweep.budget_sweep`: ``vmalloc`` dropped between taking its
        area and mapping it leaves a busy area with no pages).  So the call
        finishes, for at most ``seconds`` (ABORT_SECONDS), and its result (also in
        ``call.result``) is returned for the caller to free if it wants.  A call
        that cannot end raises :class:`CannotAbort` and stays stopped (only
        ``restore()`` helps then); an oops or panic on the way is raised as usual.
        """
        self._check_suspended(call)
        budget = self.budget_seconds
        self.budget_seconds = self.ABORT_SECONDS if seconds is None else seconds
        self._points_off = True
        try:
            return call.resume()
        except (CallStopped, BreakpointHit) as e:
            why = e.detail if isinstance(e, CallStopped) else str(e)
            raise CannotAbort(f"{call.name}() could not be run to its end ({why}); it is "
                              "still stopped: restore() a snapshot") from e
        finally:
            self._points_off = False
            self.budget_seconds = budget
            if self._rewatch:  # page-table entries under a watchpoint were written
                self._rewatch_all()

    def hook_handles(self) -> frozenset[int]:
        """Every Unicorn hook installed now: kmemu's own and its users' (breakpoints,
        watchpoints, ``hook_add``, hooks added straight on ``m.uc``)."""
        return frozenset(self.uc._callbacks)  # noqa: SLF001 - the binding's hook table

    def remove_hooks_since(self, baseline: frozenset[int]) -> int:
        """Delete every hook not in ``baseline`` (from :meth:`hook_handles`): the
        breakpoints, watchpoints and hooks added since, so none of them fires
        again (the pytest plugin does this between tests).  How many went."""
        if not isinstance(baseline, (set, frozenset)) or not all(
                isinstance(h, int) for h in baseline):
            raise BadArgument("baseline must be a set of hook handles from hook_handles(), "
                              f"got {type(baseline).__name__}")
        extra = self.hook_handles() - baseline
        for h in extra:
            self.uc.hook_del(h)
        if extra:
            self.uc.ctl_flush_tb()  # see emu.core.cpu.delete_hook
        for wp in self._watchpoints:
            wp._hooks.clear()  # noqa: SLF001 - deleted above
            wp.installed = False
        self._watchpoints.clear()
        self._retired_hooks.clear()
        counter = self._counter
        if counter is not None and counter._hook in extra:  # noqa: SLF001 - a count left open
            counter._hook, counter.users = None, 0  # noqa: SLF001
        irq = self.irq
        if irq is not None and irq._hook in extra:  # noqa: SLF001 - a timer's tick hook
            irq._hook = None  # noqa: SLF001
            irq._sync_hook()  # noqa: SLF001 - back if the restored state has timers
        return len(extra)

    def lines_kernel(self):  # -> emu.kernel.lines.LineTable
        """The kernel's own DWARF line table."""
        if self._lines is None:
            from emu.kernel.lines import LineTable
            assert self.artifacts is not None or self._syms()
            self._lines = LineTable.load(self.artifacts.elf)  # type: ignore[union-attr]
        return self._lines

    @property
    def lines(self):  # -> emu.kernel.lines.LineTable
        """The DWARF line table of the kernel and the loaded modules (loaded on first use)."""
        view = self._debug_view() if self._module_code_seen else None
        if view is not None:
            return view.lines
        if self._lines is None:
            from emu.kernel.lines import LineTable
            assert self.artifacts is not None or self._syms()
            self._lines = LineTable.load(self.artifacts.elf)  # type: ignore[union-attr]
        return self._lines

    def breakpoint(self, where: str | int, condition: Callable[[Machine], bool] | None = None):
        """A counting breakpoint (see :mod:`emu.debug.breakpoints`); use it as a context manager
        or call ``.install()`` / ``.remove()``."""
        from emu.debug.breakpoints import Breakpoint, resolve_location
        if condition is not None:
            check_callable(condition, "condition")
        return Breakpoint(self, where, resolve_location(self, where), condition)

    def break_at(self, where: str | int, condition: Callable[[Machine], bool] | None = None,
                 temporary: bool = False):
        """A stopping breakpoint, installed: a call that reaches it raises
        :class:`BreakpointHit` whose ``call`` can be resumed or stepped."""
        from emu.debug.breakpoints import Breakpoint, resolve_location
        if condition is not None:
            check_callable(condition, "condition")
        if not isinstance(temporary, bool):
            raise BadArgument(f"temporary must be True or False, got {temporary!r}")
        bp = Breakpoint(self, where, resolve_location(self, where), condition, stop=True,
                        temporary=temporary)
        return bp.install()

    def watchpoint(self, address: int, size: int = 8, access: str = "write", *,
                   stop: bool = False, changes_only: bool = False, expression: str = ""):
        """A watchpoint on the virtual range ``[address, address+size)`` (not yet
        installed: use it as a context manager or call ``.install()``).

        ``access`` is ``"write"``, ``"read"`` or ``"access"``.  Every access is
        recorded in ``.hits`` (:class:`emu.debug.breakpoints.WatchHit`: old and new
        value, the instruction); with ``stop=True`` a call also stops just after
        the access, raising :class:`WatchpointHit`.
        """
        from emu.debug.breakpoints import Watchpoint
        self._require_booted()
        return Watchpoint(self, address, size, access, stop=stop, changes_only=changes_only,
                          expression=expression)

    def watch(self, address: int, size: int = 8, access: str = "write", *,
              changes_only: bool = False, expression: str = ""):
        """A stopping watchpoint, installed (see :meth:`watchpoint`)."""
        return self.watchpoint(address, size, access, stop=True, changes_only=changes_only,
                               expression=expression).install()

    def _require_booted(self) -> None:
        if self.state in ("off", "booting", "crashed", "exited"):
            raise MachineError(f"the machine is {self.state}")

    def _cfi(self):  # -> emu.kernel.unwind.CfiTable
        view = self._debug_view() if self._module_code_seen else None
        if view is not None:
            return view.cfi
        if self._cfi_table is None:
            from emu.kernel.unwind import CfiTable
            self._syms()
            self._cfi_table = CfiTable.load(self.artifacts.elf)  # type: ignore[union-attr]
        return self._cfi_table

    def registers(self) -> dict[str, int]:
        """The general registers, rip, rflags, segment selectors and fs/gs base."""
        from emu.core.cpu import REGISTER_NAMES

        cpu = self.cpu
        assert cpu is not None
        return dict(zip(REGISTER_NAMES, cpu.regs(REGISTER_NAMES), strict=True))

    def backtrace(self, max_frames: int = 64) -> list:  # -> list[emu.kernel.unwind.Frame]
        """Frames of the current stack, innermost first (CFI, then frame pointers)."""
        from emu.kernel.unwind import unwind
        check_int(max_frames, "max_frames", 0, 1 << 20)
        self._require_booted()
        return unwind(self.registers(), self.read_u64, self._cfi(), self.symbols or self._syms(),
                      self.lines, max_frames=max_frames)

    def frames(self, max_frames: int = 64) -> list:  # -> list[emu.debug.frames.DisplayFrame]
        """gdb's frames: :meth:`backtrace`'s real frames with each inlined function
        at their pcs as a level of its own (``f.inline``), innermost first; at most
        ``max_frames`` of them (see :mod:`emu.debug.frames`)."""
        from emu.debug.frames import display_frames
        check_int(max_frames, "max_frames", 0, 1 << 20)
        return display_frames(self, self.backtrace(max_frames=max_frames),
                              self._frame_chains(), limit=max_frames)

    def inline_function(self) -> str | None:
        """The inlined function frame 0 is in, as gdb's ``#0`` names it (after the
        bodies starting at the pc that were not entered yet); None in a function's own
        code.  Cached by pc with :meth:`frames`' chains."""
        from emu.debug.frames import innermost_inline
        if self.lines.inline_depth(self.cpu.rip) - self.inline_skipped() <= 0:  # type: ignore[union-attr]
            return None
        return innermost_inline(self, self._frame_chains())

    def _frame_chains(self):  # -> emu.debug.frames.ChainCache
        """This machine's inline chains by pc (see :mod:`emu.debug.frames`)."""
        from emu.debug.frames import ChainCache
        cache = self.__dict__.get("_frame_chains_cache")
        if cache is None:
            cache = self.__dict__["_frame_chains_cache"] = ChainCache()
        return cache

    def frame_variables(self, level: int = 0) -> list:  # -> list[emu.kernel.scope.Variable]
        """Parameters and local variables in scope in frame ``level`` of
        :meth:`backtrace` (0: where the CPU is), innermost scope first, inlined
        functions' scopes included, read through the DWARF location lists.
        ``v.value`` is a ``drgn.Object``; ``v.value.absent_`` where the compiler
        kept no copy (gdb's ``<optimized out>``).  Frames above an interrupt are
        read from the registers its trap frame saved.  Empty for code without
        debug info (assembly); :class:`BadArgument` for a level the stack lacks.

        >>> {v.name: v.value for v in m.frame_variables()}  # doctest: +SKIP
        {'s': Object(prog, 'struct kmem_cache *', value=0xffff88800ff09500), ...}
        """
        from emu.kernel.entryval import DwarfScopes, apply_entry_values
        from emu.kernel.scope import frame_variables

        if isinstance(level, bool) or not isinstance(level, int):
            raise BadArgument(f"a frame level is an int, not {type(level).__name__}")
        self._require_booted()
        # all of them (at least to level): the entry values below need the callers
        frames = self.backtrace(max_frames=max(64, level + 1))
        if not 0 <= level < len(frames):
            raise BadArgument(f"no frame {level}: the stack has {len(frames)} "
                              f"(levels 0-{len(frames) - 1})")
        start = max(i for i in range(level + 1) if i == 0 or frames[i].found_by == "trap frame")
        regs = self.registers() if start == 0 else frames[start].registers
        params = (self.symbols or self._syms()).params

        def param_names(fn: str) -> tuple[str, ...] | None:
            p = params.get(fn)
            return p.names if p is not None else None

        found = frame_variables(self.program, regs, level - start, param_names=param_names,
                                pc=frames[level].pc,
                                skip_inline=self.inline_skipped() if level == 0 else 0)
        if not found:
            return found
        assert self.artifacts is not None
        scopes = DwarfScopes.load(self.artifacts.elf)
        exact = level == 0 or frames[level].found_by == "trap frame"
        found = _innermost_block_first(found, scopes.locations(
            frames[level].pc if exact else frames[level].pc - 1))
        if any(v.argument and not v.inlined or v.value.absent_ for v in found):
            # what drgn cannot read, and what each argument was on entry, the call sites know
            found = apply_entry_values(
                self.program, found, frames, level,
                regs if start == level else frames[level].registers, scopes, self.read_u64)
        return found


def _innermost_block_first(found: list, locations: list) -> list:
    """``found`` (drgn's order: a function's outer blocks first) in gdb's order: the
    innermost lexical block's variables first, each block's in declaration order,
    as :meth:`emu.kernel.entryval.DwarfScopes.locations` lists them."""
    rank: dict[tuple[str, str], int] = {}
    for i, (fn, name, _) in enumerate(locations):
        rank.setdefault((fn, name), i)
    return sorted(found, key=lambda v: rank.get((v.function or "", v.name), len(rank)))
