"""Registers gdb writes while the kernel is idle, and the inferior calls they make.

Layer 6.  At idle the CPU sits in ``kmemu_idle_loop`` between host requests;
changing its registers there would break the loop, yet gdb writes registers
at any stop (``set $rdi = 1``) and makes inferior calls (``print
kmalloc(64, 0xcc0)``) by writing the argument registers, a return address on
the stack and ``rip``, then continuing until the return address is reached.

:class:`IdleFrame` keeps what gdb wrote at idle beside the CPU's registers
(reads show it, as on QEMU).  A continue or step whose ``rip`` differs from the
CPU's is an inferior call: it runs the function at that ``rip`` as ``monitor
call`` does (breakpoints inside stop it, and gdb reports "The program being
debugged stopped while in a function called from GDB."), with the argument
registers the function's DWARF names, and when it returns the stub reports
a stop at the return address gdb pushed, with the result in ``rax`` and
``rsp`` past the return address, exactly what gdb waits for.  gdb then
writes its saved registers back, which equal the CPU's, and the frame is gone.
"""

from __future__ import annotations

from dataclasses import dataclass

from emu.core.errors import KmemuError

ARG_REGS = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")


class InferiorCallError(KmemuError):
    """gdb asked to run something that is not a kernel function's entry."""


@dataclass
class PendingReturn:
    """An inferior call on its way: where gdb waits for it, and its registers."""

    name: str
    return_address: int
    registers: dict[str, int]  # what gdb wrote (the rest is the idle CPU's)
    sp: int  # rsp at the call: the return address is there


class IdleFrame:
    """gdb's register writes at idle (see the module docstring)."""

    def __init__(self) -> None:
        self.written: dict[str, int] = {}  # register -> value gdb wrote
        self.pending: PendingReturn | None = None

    def clear(self) -> None:
        self.written.clear()

    def overlay(self, names: tuple[str, ...], values: list[int]) -> list[int]:
        if not self.written:
            return values
        return [self.written.get(n, v) for n, v in zip(names, values, strict=True)]

    def write(self, name: str, value: int, cpu_value: int) -> None:
        if value == cpu_value:
            self.written.pop(name, None)  # gdb restoring what the CPU has
        else:
            self.written[name] = value

    def call_requested(self, cpu_rip: int) -> bool:
        """Whether gdb moved ``rip`` at idle: the next resume is an inferior call."""
        rip = self.written.get("rip")
        return rip is not None and rip != cpu_rip

    def start_call(self, machine, cpu_regs: dict[str, int]):  # -> QueuedCall
        """The call gdb set up, as a :class:`emu.debug.session.QueuedCall`; the
        frame remembers where to return."""
        from emu.debug.session import QueuedCall

        regs = cpu_regs | self.written
        rip = regs["rip"]
        symbols = machine.symbols
        hit = symbols.lookup(rip) if symbols is not None else None
        if hit is None or hit[1] != 0:
            raise InferiorCallError(f"{rip:#x} is not the start of a kernel function: "
                                    "an inferior call at idle runs a whole function")
        name = hit[0].name
        params = symbols.params_at(rip) or symbols.params.get(name)
        nargs = len(params.names) if params is not None else 0
        ret = machine.read_u64(regs["rsp"])  # gdb pushed its return address there
        args = [regs[r] for r in ARG_REGS[:nargs]]
        machine._check_args(tuple(args))  # noqa: SLF001 - 64-bit, at most 6
        machine._resolve_function(name, nargs)  # noqa: SLF001 - known and callable
        self.pending = PendingReturn(name, ret, dict(self.written), regs["rsp"])
        self.written.clear()
        return QueuedCall(name, args)

    def returned(self, result: int) -> None:
        """The call ended: the registers gdb sees at its return address."""
        p = self.pending
        assert p is not None
        self.pending = None
        self.written = p.registers | {"rip": p.return_address, "rsp": p.sp + 8,
                                      "rax": result & ((1 << 64) - 1)}
