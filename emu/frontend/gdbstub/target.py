"""The gdb stub's view of a kmemu machine: :class:`emu.frontend.gdbstub.protocol.Target`
over a :class:`emu.debug.session.DebugSession`.

Layer 6.  Registers are the CPU's; memory is virtual, through the guest
page tables (an unmapped address answers ``E14``, never a crash); ``Z0/Z1``
become session breakpoints and ``Z2/Z3/Z4`` watchpoints on the physical
bytes behind the range.  ``continue`` at idle runs the call queued with
``monitor call`` (or stops at once saying the kernel is idle); a finished
call stops at the idle loop with its result as console output.
"""

from __future__ import annotations

from emu.core.errors import KmemuError
from emu.debug.session import SIGINT, DebugSession, Stop

_WATCH_ACCESS = {2: "write", 3: "read", 4: "access"}
_WATCH_REPLY = {"write": "watch", "read": "rwatch", "access": "awatch"}
_REG_ALIASES = {"eflags": "rflags"}
READ_ONLY = frozenset({"cs", "ss", "ds", "es", "fs", "gs", "fs_base", "gs_base"})


class MachineTarget:
    def __init__(self, session: DebugSession) -> None:
        self.s = session
        self.m = session.m
        self._output: list[str] = []
        self._console_mark = len(self.m.console)

    # --- registers and memory ---------------------------------------------------------
    def read_register(self, name: str) -> int:
        return self.m.cpu.reg(_REG_ALIASES.get(name, name))  # type: ignore[union-attr]

    def write_register(self, name: str, value: int) -> None:
        current = self.read_register(name)
        if current == value:
            return  # gdb's G packet rewrites every register
        if self.s.call_in_progress is None:
            raise KmemuError("registers can only be changed while a call is stopped")
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
            if self.s.point_at("breakpoint", addr) is None:
                self.s.break_(addr)
            return True
        access = _WATCH_ACCESS[kind]
        self.s.watch(addr, size=length, access=access, changes_only=False)
        return True

    def remove_breakpoint(self, kind: int, addr: int, length: int) -> bool:
        ptype = "breakpoint" if kind in (0, 1) else {
            2: "hw watchpoint", 3: "read watchpoint", 4: "acc watchpoint"}[kind]
        p = self.s.point_at(ptype, addr)
        if p is None:
            return False
        self.s.delete([p.number])
        return True

    # --- run control ------------------------------------------------------------------
    def resume(self, step: bool) -> str:
        stop = self.s.stepi() if step and (self.s.call_in_progress is not None
                                           or self.s.queued is not None) else \
            self.s.cont() if not step else Stop(
                "idle", "The kernel is idle: nothing to step. Queue work with "
                "'monitor call FUNC ARGS...', then continue or stepi.", self.m.cpu.rip,  # type: ignore[union-attr]
                signal=SIGINT)  # not SIGTRAP: gdb's next/step would step again forever
        self._collect_console()
        return self.stop_reply(stop)

    def stop_reply(self, stop: Stop) -> str:
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
        try:
            out = self.s.monitor(command)
        except KmemuError as e:
            return f"error: {e}\n"
        return out + "\n"

    def detach(self) -> str | None:
        """``D``, ``k`` and a lost client: points go, a stopped call is killed (see
        DebugSession.kill: abandoned, or run to its end inside a locked section) and
        a queued one dropped; the machine stays for the next client.  Returns what
        happened to the call (None when there was none)."""
        self.s.delete()
        said = None
        if self.s.call_in_progress is not None or self.m.state == "crashed":
            said = self.s.kill()
        self.s.queued = None
        # Output a departed client never received, and what the kernel printed while
        # the call was killed, are not the next client's: it starts from here.
        self._output.clear()
        self._console_mark = len(self.m.console)
        return said

    def halt_reason(self) -> str:
        return "T05thread:1;" if self.s.call_in_progress is not None else "S05"

    def libraries(self) -> str:
        """The loaded modules as gdb's library list: each module's ``.ko`` linked at its
        load addresses (``emu.build.module.link_for_debug``), so gdb reads its symbols
        with no ``add-symbol-file`` (offset 0: the segment address is the first
        PT_LOAD's, which is where the module is)."""
        from xml.sax.saxutils import quoteattr

        from emu.machine.modules import debug_files

        files = debug_files(self.m, self.m._module_views())  # noqa: SLF001
        libs = "".join(f"<library name={quoteattr(str(path))}><segment address=\"{v.base:#x}\"/>"
                       "</library>" for v, path in files)
        return f'<library-list version="1.0">{libs}</library-list>'

