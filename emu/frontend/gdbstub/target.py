"""The gdb stub's view of a kmemu machine: :class:`emu.frontend.gdbstub.protocol.Target`
over a :class:`emu.debug.session.DebugSession`.

Layer 6.  Registers are the CPU's; memory is virtual, through the guest
page tables (an unmapped address answers ``E14``, never a crash); ``Z0/Z1``
become session breakpoints and ``Z2/Z3/Z4`` watchpoints on the physical
bytes behind the range.  ``continue`` at idle runs the call queued with
``monitor call`` (or stops at once saying the kernel is idle); a finished
call stops at the idle loop with its result as console output.  Register
writes and inferior calls at idle go through :class:`emu.frontend.gdbstub.idle.IdleFrame`.

``detach`` (``D``) while a call is stopped resumes it, as gdb's detach means:
the call runs on in the background with no breakpoints; its end (or an oops)
is logged, and ``monitor result`` shows it.  The next client to attach stops
it wherever it is, as attaching stops a running target.  ``kill`` (``k``) and
a client that vanishes end the call instead (:meth:`MachineTarget.detach`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from emu.core.errors import BadArgument, KmemuError
from emu.debug.session import SIGINT, DebugSession, Stop
from emu.frontend.gdbstub.idle import IdleFrame
from emu.frontend.gdbstub.protocol import LIVE

_WATCH_ACCESS = {2: "write", 3: "read", 4: "access"}
_WATCH_REPLY = {"write": "watch", "read": "rwatch", "access": "awatch"}
_REG_ALIASES = {"eflags": "rflags"}
READ_ONLY = frozenset({"cs", "ss", "ds", "es", "fs", "gs", "fs_base", "gs_base"})


class MachineTarget:
    def __init__(self, session: DebugSession) -> None:
        self.s = session
        self.m = session.m
        self._output: list[str] = []
        self._cpu_names: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._console_mark = len(self.m.console)
        self.idle = IdleFrame()
        self.log: Callable[[str], None] = lambda _: None
        self._detached: threading.Thread | None = None  # a call resumed by 'D'
        self._last_end = ""  # how the last call ended ('monitor result')
        self._irq: int | None = None  # 'monitor irq' at idle: delivered by the next continue

    def set_log(self, log: Callable[[str], None]) -> None:
        """Where the stub logs (the server's log: stderr for ``kmemu gdb``)."""
        self.log = log

    # --- registers and memory ---------------------------------------------------------
    def read_register(self, name: str) -> int:
        return self.read_registers((name,))[0]

    def read_registers(self, names: tuple[str, ...]) -> list[int]:
        cpu_names = self._cpu_names.get(names)
        if cpu_names is None:
            cpu_names = self._cpu_names[names] = tuple(_REG_ALIASES.get(n, n) for n in names)
        values = self.m.cpu.regs(cpu_names)  # type: ignore[union-attr]
        return self.idle.overlay(names, values) if self._at_idle() else values

    def _at_idle(self) -> bool:
        return self.m.state == "ready"

    def write_register(self, name: str, value: int) -> None:
        current = self.read_register(name)
        if current == value:
            return  # gdb's G packet rewrites every register
        if name in READ_ONLY:
            raise KmemuError(f"{name} is read-only here: the kernel's segments and bases "
                             "are fixed, and interrupts return through them")
        if self._at_idle():  # kept for an inferior call (the idle loop's own stay)
            cpu_value = self.m.cpu.reg(_REG_ALIASES.get(name, name))  # type: ignore[union-attr]
            self.idle.write(name, value, cpu_value)
            return
        if self.s.call_in_progress is None:
            raise KmemuError(f"registers cannot be changed now (the machine is {self.m.state})")
        if name in READ_ONLY:
            raise KmemuError(f"{name} is read-only here: the kernel's segments and bases "
                             "are fixed, and interrupts return through them")
        self.m.cpu.set_reg(_REG_ALIASES.get(name, name), value)  # type: ignore[union-attr]

    def read_memory(self, addr: int, n: int) -> bytes:
        return self.m.read_virt(addr, n)

    def write_memory(self, addr: int, data: bytes) -> None:
        """gdb's ``M``/``X`` packets: any mapped page, kernel text and rodata included
        (a debugger is not bound by the kernel's read-only mappings; see write_virt)."""
        self.m.write_virt(addr, data)

    # --- breakpoints and watchpoints --------------------------------------------------
    def add_breakpoint(self, kind: int, addr: int, length: int) -> bool:
        if kind in (0, 1):
            p = self.s.point_at("breakpoint", addr)
            if p is None:
                self.s.break_(addr)
            else:
                p.bp.enabled = True  # type: ignore[union-attr]
            return True
        access = _WATCH_ACCESS[kind]
        self.s.watch(addr, size=length, access=access, changes_only=False)
        return True

    def remove_breakpoint(self, kind: int, addr: int, length: int) -> bool:
        ptype = "breakpoint" if kind in (0, 1) else {
            2: "hw watchpoint", 3: "read watchpoint", 4: "acc watchpoint"}[kind]
        p = self.s.point_at(ptype, addr)
        if p is None or (p.bp is not None and not p.bp.enabled):
            return False
        if p.bp is not None:
            # gdb removes its breakpoints at every stop and inserts them again before
            # it resumes: turned off, not deleted, the hook stays and no translated
            # code is flushed (detach deletes them all)
            p.bp.enabled = False
        else:
            self.s.delete([p.number])
        return True

    # --- run control ------------------------------------------------------------------
    def resume(self, step: bool) -> str:
        if self._at_idle() and self.idle.call_requested(self.m.cpu.rip):  # type: ignore[union-attr]
            regs = dict(zip(LIVE, self.m.cpu.regs(  # type: ignore[union-attr]
                tuple(_REG_ALIASES.get(n, n) for n in LIVE)), strict=True))
            self.s.queued = self.idle.start_call(self.m, regs)
        elif self._at_idle():
            self.idle.clear()
        irq, self._irq = self._irq, None
        if irq is not None and self._at_idle() and not step and self.s.queued is None:
            stop = self.s.irq(irq)
        elif step and (self.s.call_in_progress is not None or self.s.queued is not None):
            stop = self.s.stepi()
        elif not step:
            stop = self.s.cont()
        else:
            stop = Stop("idle", "The kernel is idle: nothing to step. Queue work with "
                        "'monitor call FUNC ARGS...', then continue or stepi.",
                        self.m.cpu.rip,  # type: ignore[union-attr]
                        signal=SIGINT)  # not SIGTRAP: gdb's next/step would step again forever
        self._collect_console()
        return self.stop_reply(stop)

    def stop_reply(self, stop: Stop) -> str:
        if stop.reason == "done":
            self._last_end = stop.text.removesuffix("; the kernel is idle")
        if stop.reason in ("done", "oops", "exited"):
            pending, self.idle.pending = self.idle.pending, None
            if stop.reason == "done" and pending is not None:
                # an inferior call: gdb waits at its return address and prints the value
                self.idle.pending = pending
                self.idle.returned(stop.value or 0)
                return "T05swbreak:;thread:1;"
        if stop.reason in ("done", "idle", "oops", "error"):
            self._output.append(stop.text + "\n")
        if stop.reason == "watchpoint" and stop.watch is not None:
            kind = _WATCH_REPLY[stop.watch.watchpoint.access]
            return f"T05{kind}:{stop.watch.watchpoint.address:x};thread:1;"
        if stop.reason == "breakpoint":
            return "T05swbreak:;thread:1;"
        return f"T{stop.signal:02x}thread:1;"

    def interrupt(self) -> None:
        self.s.interrupt()

    def take_output(self) -> list[str]:
        """Console text to send as ``O`` packets before the stop reply."""
        out, self._output = self._output, []
        return out

    def _collect_console(self) -> None:
        text = self.m.console
        if len(text) > self._console_mark:
            self._output.insert(0, text[self._console_mark:])
        self._console_mark = len(text)

    def monitor(self, command: str) -> str:
        words = command.split()
        try:
            if words and words[0] == "irq":
                out = self.monitor_irq(words[1:])
            elif words and words[0] == "result":
                if len(words) > 1:
                    raise BadArgument("result takes no arguments")
                out = self._last_end or "No call has ended yet."
            else:
                out = self.s.monitor(command)
        except KmemuError as e:
            text = str(e)
            if text.startswith("unknown monitor command"):
                text += "; and the stub's own: irq VECTOR, result"
            return f"error: {text}\n"
        return out + "\n"

    def monitor_irq(self, args: list[str]) -> str:
        """``monitor irq VECTOR``: a hardware interrupt, delivered as the CPU would
        take it: while a call is stopped, when its code next runs with interrupts
        enabled; at idle, by the next ``continue`` (a breakpoint in the handler
        stops there)."""
        from emu.build.abi import internal_vectors
        from emu.machine.irq import InterruptController

        if len(args) != 1:
            raise BadArgument("usage: irq VECTOR (0x20..0xff)")
        vector = self.s.value_of(args[0])
        if self.s.call_in_progress is not None:
            return self.s.irq(vector).text
        InterruptController.check_vector(vector)
        if vector in internal_vectors():  # Machine.raise_irq's check, now, not at continue
            raise BadArgument(f"vector {vector:#x} is kmemu's own ({internal_vectors()[vector]})")
        self._irq = vector
        return f"IRQ {vector:#x} queued: 'continue' delivers it (the kernel is idle)"

    def attach(self) -> str | None:
        """A client connects: a call left running by ``D`` is stopped where it is,
        as attaching to a running target stops it; what happened, for the log."""
        t, self._detached = self._detached, None
        if t is None:
            return None
        while t.is_alive():
            self.s.interrupt()  # repeated: one before the run starts is dropped
            t.join(0.05)
        self._output.clear()
        self._console_mark = len(self.m.console)
        call = self.s.call_in_progress
        if call is not None:
            return (f"the call {call.name}() left running at detach is stopped at "
                    f"{self.m.symbolize(self.m.cpu.rip)}")  # type: ignore[union-attr]
        return None

    def detach(self, resume: bool = False) -> str | None:
        """``D`` (``resume``), ``k`` and a lost client: points go and a queued call is
        dropped; the machine stays for the next client.  A stopped call is resumed
        for ``D`` (in the background, see the module docstring) and killed
        otherwise (DebugSession.kill: run to its end with the points off, or
        abandoned).  Returns what happened to the call (None when there was none)."""
        self.s.delete()
        self.idle.clear()
        self.idle.pending = None
        self._irq = None
        said = None
        if resume and self.s.call_in_progress is not None:
            said = self._resume_detached()
        elif self.s.call_in_progress is not None or self.m.state == "crashed":
            said = self.s.kill()
        self.s.queued = None
        # Output a departed client never received, and what the kernel printed while
        # the call was killed, are not the next client's: it starts from here.
        self._output.clear()
        self._console_mark = len(self.m.console)
        return said

    def _resume_detached(self) -> str:
        call = self.s.call_in_progress
        assert call is not None

        def run() -> None:
            stop = self.s.cont()
            if stop.reason == "done":
                self._last_end = stop.text.removesuffix("; the kernel is idle") + \
                    " (after gdb detached)"
                self.log(f"{self._last_end}; the kernel is idle")
            elif stop.reason != "interrupted":
                self._last_end = f"{call.name}() did not end after gdb detached: " + \
                    stop.text.splitlines()[0]
                self.log(self._last_end)

        self._detached = threading.Thread(target=run, name="kmemu-detached-call", daemon=True)
        self._detached.start()
        return (f"the call {call.name}() runs on (gdb detached); its end is logged and "
                "'monitor result' shows it")

    def halt_reason(self) -> str:
        return "T05thread:1;" if self.s.call_in_progress is not None else "S05"

    def libraries(self) -> str:
        """The loaded modules as gdb's library list: each module's ``.ko`` linked at its
        load addresses (``emu.build.module.link_for_debug``), so gdb reads its symbols
        with no ``add-symbol-file`` (offset 0: the segment address is the first
        PT_LOAD's, which is where the module is)."""
        from html import escape  # not xml.sax.saxutils: it imports urllib, 70 ms of launch

        from emu.machine.modules import debug_files

        files = debug_files(self.m, self.m._module_views())  # noqa: SLF001
        libs = "".join(f"<library name=\"{escape(str(path))}\"><segment address=\"{v.base:#x}\"/>"
                       "</library>" for v, path in files)
        return f'<library-list version="1.0">{libs}</library-list>'

