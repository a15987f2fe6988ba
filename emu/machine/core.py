"""Layer 5: the PC that boots the kmemu kernel and lets Python drive it.

>>> from emu import Machine
>>> m = Machine.booted(mem="256M")                      # doctest: +SKIP
>>> m.call("kmemu_test_add", 1, 2, 3, 4, 5, 6)          # doctest: +SKIP
91

Boot (phases 1-3 of DESIGN.md): RAM is mapped from the e820 map, sector 0
goes to 0x7c00 and a 16-bit Unicorn instance runs the boot stub with the
BIOS answered from Python until the first 64-bit instruction (0x8c00).
There the CPU context moves to a 64-bit instance (UNICORN.md), low memory
and the kernel image are copied over, and the kernel runs until it reports
READY from its idle loop.  From then on the machine is *idle* between
requests: ``call`` runs one kernel function and comes back to idle,
``raise_irq`` delivers interrupts through the guest IDT, and
``snapshot``/``restore`` copy the whole machine (copy-on-write).
"""

from __future__ import annotations

import contextlib
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from unicorn import (
    UC_ARCH_X86,
    UC_ERR_INSN_INVALID,
    UC_HOOK_CODE,
    UC_HOOK_INSN,
    UC_HOOK_INTR,
    UC_MODE_16,
    Uc,
    UcError,
)
from unicorn import x86_const as x86

from emu.build import Artifacts, build, cmdline_sector
from emu.build import layout as L
from emu.build.abi import define, internal_vectors
from emu.core.args import check_address, check_bytes, check_callable, check_int, check_str
from emu.core.cpu import (
    EXC_WITH_ERROR_CODE,
    WATCHDOG,
    BudgetExceeded,
    CallEntry,
    Cpu,
    InsnCounter,
    RamReader,
    RegBatch,
    add_out_hook,
)
from emu.core.errors import BadArgument, CallStopped, KmemuError, MachineError
from emu.core.ram import GuestRam, HostMemoryError, check_host_memory, format_size
from emu.debug.api import DebugInfoMixin
from emu.debug.stops import (  # noqa: F401 - BreakpointHit & co. are emu.machine.core's names too
    BreakpointHit,
    CallInterrupted,
    KasanPending,
    KasanStop,
    StopsMixin,
    SuspendedCall,
    WatchpointHit,
)
from emu.firmware.bios import Bios
from emu.firmware.disk import Disk
from emu.firmware.e820 import (
    E820Map,
    check_bootable,
    check_kernel_limits,
    default_map,
    load_map,
    parse_size,
)
from emu.kernel import mm, pagetable
from emu.kernel.events import EVENT_SIZE, Event, decode
from emu.kernel.slab_select import cmdline_slab, with_slab_choice
from emu.kernel.symbols import Params, Symbols
from emu.machine.batch import BatchMixin
from emu.machine.faults import FaultInjectionMixin
from emu.machine.ftrace import TraceMixin
from emu.machine.irq import InterruptController, IrqError, IrqState
from emu.machine.kasan import clear_stack_shadow, raise_kasan_reports
from emu.machine.kmemleak import KmemleakMixin
from emu.machine.memmap import MemoryMapMixin
from emu.machine.modules import ModuleMixin, load_modules
from emu.machine.page_alloc import PageAllocatorMixin
from emu.machine.replay_api import ReplayMixin
from emu.machine.slab import SlabMixin
from emu.machine.tracing import TracingMixin, cmdline_value
from emu.machine.vmalloc import VmallocMixin

PORT_CONSOLE, PORT_EXIT = 0xE9, 0xF4
PORT_MAGIC, PORT_EVENT, PORT_CTL = 0xC9E0, 0xC9E4, 0xC9E8
PORT_TRACE_CLOCK, PORT_TRACE_CLOCK_HI = define("KMEMU_PORT_TRACE_CLOCK"), \
    define("KMEMU_PORT_TRACE_CLOCK_HI")
KMEMU_MAGIC = 0x4D454D4B
CTL_READY, CTL_CALL_DONE, CTL_CALL_OOPS, CTL_IRQ_WINDOW = 1, 2, 3, 4
CTL_SLEEP, CTL_SLEEP_FOREVER, CTL_TEXT_POKE = 5, 6, 7
CTL_STOPPED = 100  # host-side only: a stopping breakpoint was hit
ARG_REGS = (x86.UC_X86_REG_RDI, x86.UC_X86_REG_RSI, x86.UC_X86_REG_RDX,
            x86.UC_X86_REG_RCX, x86.UC_X86_REG_R8, x86.UC_X86_REG_R9)
CONTEXTS = ("process", "irqs_off", "preempt_off", "irq")
U64 = (1 << 64) - 1
#: The most one read_phys/read_virt/write_* call moves (the host buffer is made in one piece).
MAX_ACCESS = 1 << 30
#: Host memory a booted machine uses besides struct pages (measured: about 50 MiB).
BOOT_HOST_BYTES = 64 << 20


class BootError(KmemuError):
    """The machine did not reach the kernel's ready state."""


class GuestOops(KmemuError):
    """The guest kernel died in an oops (or BUG) while running a request.

    ``event`` is the structured oops; ``vector``, ``address`` (CR2 for page
    faults), ``rip`` (symbolised) and ``trace`` are copied out for
    convenience and ``console`` holds the oops text as printed.
    """

    def __init__(self, event: Event, console: str, rip_symbol: str,
                 where: str | None = None) -> None:
        self.event = event
        # for page faults: the vmalloc area and offset, or the section of the kernel
        # image ('.rodata of the kernel image') or of a module that was hit
        self.where = where
        self.vector = event.vector
        self.address = event.address
        self.error_code = event.error_code
        self.rip = rip_symbol
        self.trace = list(event.symbols)
        self.console = console
        at = f"; {where}" if where else ""
        super().__init__(f"{event.message} (RIP {rip_symbol}{at})\n{console.rstrip()}")


class BatchOops(GuestOops):
    """An operation of :meth:`Machine.batch` died in an oops, which stopped the batch:
    ``index`` and ``op`` (:class:`emu.machine.batch.BatchOp`) say which, ``results``
    holds the results of the operations before it; the rest is the oops's."""

    def __init__(self, oops: GuestOops, index: int, op: object, results: list[int]) -> None:
        super().__init__(oops.event, oops.console, oops.rip, oops.where)
        self.index, self.op, self.results = index, op, results
        self.args = (f"batch operation {index} ({op}) died: {self.args[0]}",)


class GuestWaiting(CallStopped):
    """The guest is asleep waiting for something only an interrupt could bring
    (e.g. memory for a ``__GFP_NOFAIL`` allocation) and nothing is pending; the
    call stays suspended in its wait (:class:`emu.core.errors.CallStopped`)."""

    stopped_by = "wait"


class Interrupted(CallStopped):
    """The run was stopped from outside (Ctrl-C in the CLI, ``Machine.interrupt()``);
    the call stays suspended where it stopped (:class:`emu.core.errors.CallStopped`)."""

    stopped_by = "interrupt"


class GuestExit(KmemuError):
    """The guest wrote to the exit port (0xf4) when it was not expected to."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(f"guest exited with code {code}")


@dataclass
class Snapshot:
    """A saved machine: CPU + memory (copy-on-write) and the host-side state."""

    machine_id: int
    context: object
    console_len: int
    events_len: int
    irq: IrqState
    exit_code: int | None
    rsp: int
    insns: int
    valid: bool = True
    suspended: SuspendedCall | None = None  # taken while a call was stopped in the guest
    code_version: int = 0  # module text it holds (ModuleMixin._code_version)
    call_frame: bool = False  # the quiet call frame was on the call stack (CallEntry.frame_ok)


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What :meth:`Machine.call` checks once per (function, argument count): the
    address, the name for messages, each argument's allowed range (its C type's,
    from DWARF) and the defined bits of the result (0: all 64)."""

    target: int
    name: str
    bounds: tuple[tuple[int, int], ...]
    mask: int


class _Started(BaseException):
    """Marker: the fast path's ``emu_start`` ran and returned normally."""


_STARTED = _Started()

#: SuspendedCall.stopped_by, as the refusal of another request says it
_STOPPED_BY = {"breakpoint": "at a breakpoint", "watchpoint": "at a watchpoint",
               "interrupt": "by an interrupt", "budget": "by its budget",
               "wait": "waiting for memory", "kasan": "at a KASAN report"}


def _u64(v: int) -> int:
    return v & U64


PAGE_OF_U64 = struct.Struct("<512Q")


@dataclass
class HeldReads:
    """What host reads inside :meth:`Machine._reads_held` remember: the physical page
    behind each virtual page read (pages wholly RAM), every page-table page the walker
    read, whole (a walk of the next page then reads no guest memory), and the bytes of
    each RAM page a small read touched, whole (the views read struct fields a few bytes
    at a time, mostly from pages they read before: one Unicorn read per page, not per
    field).  A page's bytes are kept from its second small read on: a walk that
    touches each page once (a 64 GiB machine's free lists: 16,384 entries, each on
    a page of its own) reads only what it asks for, not 4 KiB per entry."""

    pages: dict[int, int] = field(default_factory=dict)  # va >> 12 -> physical page
    tables: dict[int, tuple[int, ...]] = field(default_factory=dict)  # pa >> 12 -> 512 u64
    data: dict[int, bytes] = field(default_factory=dict)  # physical page -> its 4096 bytes
    once: set[int] = field(default_factory=set)  # physical pages read once, in part

    def clear(self) -> None:
        self.pages.clear()
        self.tables.clear()
        self.data.clear()
        self.once.clear()


class Machine(PageAllocatorMixin, SlabMixin, VmallocMixin, ModuleMixin, DebugInfoMixin,
              StopsMixin, BatchMixin, FaultInjectionMixin, TraceMixin, MemoryMapMixin,
              ReplayMixin, TracingMixin, KmemleakMixin):
    """An emulated PC with the kmemu kernel.  See the module docstring."""

    _port_console_log = -1  # KMEMU_PORT_CONSOLE_LOG once the kernel runs (_handover)

    def __init__(self, mem: int | str | None = None, e820: str | Path | E820Map | None = None,
                 cmdline: str = "", *, budget_seconds: float = 60.0,
                 echo: Callable[[str], None] | None = None, count_insns: bool = False,
                 slab_debug: str | None = None, kasan: bool = False,
                 slab: str | None = None, kmemleak: bool = False) -> None:
        """``mem`` (default 256M) gives a PC-like map of that size; ``e820`` (a map
        file's path or an :class:`E820Map`) gives the map itself: not both.
        ``slab`` ("slub", the default, "slab" or "slob") chooses the slab allocator,
        as ``slab=`` on the command line does."""
        if e820 is None:
            self.e820 = default_map("256M" if mem is None else mem)
        elif mem is not None:
            raise BadArgument(f"both mem={mem!r} and e820= were given: the e820 map says how "
                              "much memory there is; pass one of them")
        elif isinstance(e820, E820Map):
            self.e820 = e820
        elif isinstance(e820, (str, PathLike)):
            self.e820 = load_map(e820)
        else:
            raise BadArgument(f"e820 must be a map file's path or an E820Map, got "
                              f"{type(e820).__name__}")
        check_bootable(self.e820)
        self.mem = parse_size("256M" if mem is None else mem) if e820 is None else \
            self.e820.usable_bytes
        self._check_budget(budget_seconds, None)
        if not isinstance(count_insns, bool):
            raise BadArgument(f"count_insns must be True or False, got {count_insns!r}")
        if echo is not None and not callable(echo):
            raise BadArgument(f"echo must be a callable taking a str, got {type(echo).__name__}")
        if not isinstance(cmdline, str):
            raise BadArgument(f"cmdline must be a str, got {type(cmdline).__name__}")
        if slab_debug is not None:  # the same as slab_debug= on the command line
            if not isinstance(slab_debug, str) or " " in slab_debug:
                raise BadArgument(f"slab_debug must be like 'FZPU' or 'FZ,kmalloc-64', "
                                  f"got {slab_debug!r}")
            cmdline = f"{cmdline} slab_debug={slab_debug}".strip()
        if not isinstance(kasan, bool):
            raise BadArgument(f"kasan must be True or False, got {kasan!r}")
        if not isinstance(kmemleak, bool):
            raise BadArgument(f"kmemleak must be True or False, got {kmemleak!r}")
        if kmemleak:  # the same as kmemleak=on on the command line
            cmdline = f"{cmdline} kmemleak=on".strip()
        # slab= (the slab allocator) is checked against slab_debug= and KASAN here
        cmdline = with_slab_choice(cmdline, slab, None, kasan)  # slab_debug= is in cmdline
        #: the slab allocator this machine boots: "slub", "slab" or "slob"
        self.slab = cmdline_slab(cmdline) or "slub"
        #: the KASAN variant: kernel and modules built with -fsanitize=kernel-address
        self.kasan = kasan
        self._cmdline_sector = cmdline_sector(cmdline)
        self.cmdline = cmdline
        self.budget_seconds = budget_seconds
        self.echo = echo
        self.artifacts: Artifacts | None = None
        self._kernel_symbols: Symbols | None = None
        self._uc: Uc | None = None
        self._ram: GuestRam | None = None  # host memory behind guest RAM, from boot()
        self.cpu: Cpu | None = None
        self.irq: InterruptController | None = None
        self.bios: Bios | None = None
        self._console = bytearray()
        self._line = bytearray()
        self.events: list[Event] = []
        self.exit_code: int | None = None
        self.state = "off"
        self._ctl: int | None = None
        self._want_irq_stop = False
        self._idle_rsp = 0
        self._idle_rip = 0
        self._counter: InsnCounter | None = None
        self._prog = None
        self._resolved: dict[tuple[str, int], int] = {}
        self._arg_bounds: dict[int, tuple[tuple[int, int], ...]] = {}  # _check_arg_types
        self._module_params: dict[int, Params] = {}  # module functions resolved by call()
        self._ret_masks: dict[int, int] = {}  # functions returning bool/int: defined bits
        self._call_plans: dict[tuple[str | int, int], CallPlan] = {}  # call()'s checks, cached
        self._snapshots: list[Snapshot] = []
        self._lines = None
        self._cfi_table = None
        self._stop_hit: object | None = None  # the stopping breakpoint just hit
        self._skip_once: int | None = None  # the address a step starts at (see _step_insn)
        self._skip_all = False
        self._points_off = False  # abort() finishing a call: stopping points do not stop
        self._hooks_done_at: int | None = None  # stopped by a breakpoint here: hooks ran
        self._suspended: SuspendedCall | None = None
        self._watchpoints: list = []  # installed emu.debug.breakpoints.Watchpoint objects
        self._pair_guard = None  # breakpoints.LockedPairGuard while stopping watches exist
        #: the pc where ``step`` entered the inlined bodies starting there (gdb's
        #: step_into_inline_frame): until the next instruction runs, frame 0 is the
        #: innermost of them rather than their call site (LineTable.call_site)
        self._inline_entered: int | None = None
        self._stepping = False  # executing one instruction on the host's behalf
        self._tb_counted = False  # translated blocks carry Unicorn's count hook
        self._keep_counting = False  # runs keep that hook too (_counted_runs)
        self._retired_hooks: list[int] = []  # to delete once the run is over
        self._watch_step_pending = False  # a watch hook stopped before an access: step it
        self._rewatch = False  # a page-table entry under a watchpoint was written
        self._ctl_pending: int | None = None
        self._undo_writes: list[tuple[int, bytes]] = []  # stores to put back (_stop_in_access)
        self._watch_hits: list = []  # stopping watchpoint hits of the last step
        #: Debug sessions set this: Ctrl-C / interrupt() then suspends a call
        #: (BreakpointHit with reason "interrupted") instead of abandoning it.
        self.suspend_on_interrupt = False
        #: KASAN kernel: a report stops the call at the faulting access (KasanStop)
        #: instead of raising KasanReport when it returns; debug sessions set it
        self.stop_on_kasan = False
        # trace_clock=counter stamps events with the instructions run since boot
        self._count_insns = count_insns or cmdline_value(cmdline, "trace_clock") == "counter"
        self._trace_t0 = time.monotonic_ns()  # reset at power-on (boot())
        self._irq_flag: bool | None = None
        self._irq_flag_pa = 0
        self._interrupted = False
        self._sleeping = 0
        self.sleeps = 0  # guest waits for memory so far (timed out or woken)
        self._active_uc: Uc | None = None
        self._quiet_end = 0  # see _find_quiet_end
        self._entry: CallEntry | None = None  # made at the first idle (_enter_idle)
        self.boot_seconds = 0.0
        self._held: HeldReads | None = None  # see _reads_held

    # ------------------------------------------------------------------ boot
    @classmethod
    def booted(cls, modules: object = (), **kw: object) -> Machine:
        """A booted machine; ``modules=["a.c", ["b1.c", "b2.c"]]`` loads those modules
        (a list is one module of several files)."""
        m = cls(**kw)  # type: ignore[arg-type]
        m.boot()
        if modules:
            load_modules(m, modules)  # type: ignore[arg-type]
        return m

    def boot(self) -> Machine:
        """Power on and run until the kernel is ready for requests."""
        if self.state != "off":
            raise MachineError(f"boot() on a machine that is {self.state}")
        t0 = time.perf_counter()
        self.artifacts = build(kasan=self.kasan)
        self._trace_t0 = time.monotonic_ns()  # the "local" trace clock: from power-on
        self.symbols = Symbols.load(self.artifacts.elf)
        self._check_capacity()
        image = self.artifacts.image.read_bytes()
        disk = Disk(image, {L.CMDLINE_LBA: self._cmdline_sector})
        self.bios = Bios(disk, self.e820.to_bios_entries())
        try:
            uc16 = self._power_on(image[: L.SECTOR])
        except HostMemoryError:
            self._ram = None  # nothing ran: the machine is still off
            raise
        self.state = "booting"
        self._run_firmware(uc16)
        self._handover(uc16)
        stop = self._run()
        if stop == CTL_CALL_OOPS:
            self.state = "crashed"
            oops = next((e.message for e in reversed(self.events) if e.kind == "oops"), "oops")
            raise BootError(f"kernel died during boot: {oops}\n{self.console_tail(40)}")
        if stop != CTL_READY:
            raise BootError(f"kernel stopped during boot ({stop}):\n{self.console_tail()}")
        self._enter_idle()
        self.cpu.set_context_mode(True)  # type: ignore[union-attr]
        self.state = "ready"
        self.boot_seconds = time.perf_counter() - t0
        return self

    def _check_capacity(self) -> None:
        """Refuse, before power-on, a map the kernel or the host cannot take.

        RAM: the built kernel's ``section_present`` has one bit per 2 MiB
        section it can hold (MAX_SECTIONS).  Entries: E820_MAX_ENTRIES, mirrored
        in emu.build.layout for the boot stub (a test compares).  Host memory:
        guest RAM costs nothing until touched (emu.core.ram), but boot writes a
        struct page for every page.
        """
        syms = self._syms()
        max_ram = syms.by_name["section_present"].size * 8 * mm.PAGES_PER_SECTION << mm.PAGE_SHIFT
        check_kernel_limits(self.e820, max_ram, L.E820_MAX)
        pages = self.e820.usable_bytes >> mm.PAGE_SHIFT
        check_host_memory(pages * mm.STRUCT_PAGE_SIZE + BOOT_HOST_BYTES,
                          f"booting {format_size(self.e820.usable_bytes)} of guest RAM")

    def _power_on(self, sector0: bytes) -> Uc:
        """Phase 1: a 16-bit CPU over all of RAM (see emu.core.ram), sector 0 at 0x7c00."""
        self._ram = GuestRam(self.e820.regions_to_map())
        uc = Uc(UC_ARCH_X86, UC_MODE_16)
        self._ram.map_into(uc)
        uc.mem_write(L.BOOT_SECTOR, sector0)
        for reg, val in (("CS", 0), ("DS", 0), ("ES", 0), ("SS", 0), ("SP", 0x7000),
                         ("EDX", 0x80), ("IP", L.BOOT_SECTOR)):
            uc.reg_write(getattr(x86, f"UC_X86_REG_{reg}"), val)
        return uc

    def _run_firmware(self, uc: Uc) -> None:
        """Phases 2-3: BIOS services from Python until the first 64-bit instruction."""
        reached = [False]
        bios = self.bios
        assert bios is not None
        failure: list[BaseException] = []

        def on_intr(u: Uc, vector: int, _: object) -> None:
            try:
                bios.interrupt(u, vector)
            except KmemuError as e:
                failure.append(e)
                u.emu_stop()

        def on_lm(u: Uc, address: int, size: int, _: object) -> None:
            reached[0] = True
            u.emu_stop()

        uc.hook_add(UC_HOOK_INTR, on_intr)
        uc.hook_add(UC_HOOK_CODE, on_lm, None, L.STAGE2_64, L.STAGE2_64)
        uc.hook_add(UC_HOOK_INSN, self._port_in, None, 1, 0, x86.UC_X86_INS_IN)
        uc.hook_add(UC_HOOK_INSN, self._port_out, None, 1, 0, x86.UC_X86_INS_OUT)
        slot = WATCHDOG.slot(uc)
        slot.arm(self.budget_seconds)
        self._active_uc = uc
        try:
            uc.emu_start(L.BOOT_SECTOR, 0xFFFFFFFFF)
        except UcError as e:
            raise BootError(f"boot stub crashed: {e} (BIOS output: {bios.tty.decode()!r})") from e
        finally:
            slot.disarm()
        if failure:
            raise BootError(str(failure[0])) from failure[0]
        if self._interrupted:
            raise Interrupted("interrupted during the boot stub")
        if not reached[0]:
            why = "ran out of time" if slot.fired else "stopped"
            raise BootError(f"boot stub {why} before long mode; BIOS output: "
                            f"{bios.tty.decode(errors='replace')!r}")

    def _handover(self, uc16: Uc) -> None:
        """Move the CPU to a 64-bit instance (see UNICORN.md) over the same host
        memory: what the boot stub wrote is already there."""
        ctx = uc16.context_save()
        uc = Cpu.new_uc64()
        assert self._ram is not None
        self._ram.map_into(uc)
        uc.context_restore(ctx)
        self._uc = self._active_uc = uc
        self._reader = RamReader(uc)  # the host's reads of guest memory (views, walks)
        self._irq_flag_pa = self._sym_pa("kmemu_irq_pending")
        self._log = (self._sym_pa("log_buf"), self._syms().by_name["log_buf"].size,
                     self._sym_pa("log_next"))
        self._port_console_log = define("KMEMU_PORT_CONSOLE_LOG")
        self._watch = WATCHDOG.slot(uc)
        self.cpu = Cpu(uc)
        # The 16-bit instance leaves QEMU's old_exception at 14 (measured:
        # an internal fetch fault around the mode switch); clear it so the
        # kernel's first real #PF is not turned into #DF.
        self.cpu.fault_cleanup()
        self.irq = InterruptController(uc)
        uc.hook_add(UC_HOOK_INTR, self._on_intr)
        uc.hook_add(UC_HOOK_INSN, self._port_in, None, 1, 0, x86.UC_X86_INS_IN)
        add_out_hook(uc, self._port_out)  # every host call ends in an out: the lean hook
        self._exc: int | None = None
        if self._count_insns:
            self._insn_counter().acquire()

    # ------------------------------------------------------------------ ports
    def _port_in(self, uc: Uc, port: int, size: int, _: object) -> int:
        if port == PORT_MAGIC and self.state != "off":
            return KMEMU_MAGIC if self._uc is not None else 0xFFFFFFFF
        if port in (PORT_TRACE_CLOCK, PORT_TRACE_CLOCK_HI) and self._uc is not None:
            return self._trace_clock_in(uc, port == PORT_TRACE_CLOCK_HI)
        return (1 << (8 * size)) - 1  # nothing there: the ISA bus floats high

    def _port_out(self, uc: Uc, port: int, size: int, value: int, _: object = None) -> None:
        if port == PORT_CTL and self._uc is not None:  # first: every host call ends here
            if value in (CTL_SLEEP, CTL_SLEEP_FOREVER):
                self._sleeping = value  # the hlt that follows stops the run
            elif value == CTL_TEXT_POKE:
                self._kernel_text_poked()
            elif value == CTL_IRQ_WINDOW:
                if self.irq is not None and self.irq.has_pending():
                    self._want_irq_stop = True
                    uc.emu_stop()
            else:
                self._ctl = value
                uc.emu_stop()
        elif port == PORT_CONSOLE:
            self._console_byte(value & 0xFF)
        elif port == self._port_console_log:
            self._console_bytes(self._log_tail(uc, value))
        elif port == PORT_EVENT and self._uc is not None:
            raw = bytes(uc.mem_read(value, EVENT_SIZE))
            assert self.symbols is not None
            ev = decode(raw, self.symbolize)
            self.events.append(ev)
            if ev.kind == "kasan" and self.stop_on_kasan and self.state == "running":
                self._stop_hit = KasanPending(ev)  # on to the access: _arm_kasan_stop
                uc.emu_stop()
        elif port == PORT_EXIT:
            self.exit_code = value
            self._ctl = -1
            uc.emu_stop()

    def _log_tail(self, uc: Uc, n: int) -> bytes:
        """The last ``n`` bytes the kernel logged (``log_buf`` ring, ending at ``log_next``)."""
        buf_pa, size, next_pa = self._log
        n = min(n, size)
        start = (struct.unpack("<Q", uc.mem_read(next_pa, 8))[0] - n) % size
        first = min(n, size - start)
        data = bytes(uc.mem_read(buf_pa + start, first))
        return data + bytes(uc.mem_read(buf_pa, n - first)) if first < n else data

    def _console_bytes(self, data: bytes) -> None:
        self._console += data
        if self.echo is None:
            return
        self._line += data
        while (i := self._line.find(b"\n")) >= 0:
            self.echo(self._line[: i + 1].decode(errors="replace"))
            del self._line[: i + 1]

    def _console_byte(self, b: int) -> None:
        self._console.append(b)
        if self.echo is None:
            return
        self._line.append(b)
        if b == 10:
            self.echo(self._line.decode(errors="replace"))
            self._line.clear()

    def _on_intr(self, uc: Uc, vector: int, _: object) -> None:
        self._exc = vector
        uc.emu_stop()

    # ------------------------------------------------------------------ run loop
    def _run(self, budget_seconds: float | None = None, max_insns: int | None = None,
             first: BaseException | None = None) -> int:
        """Run from the current RIP until a control stop; returns the CTL_* value.

        Faults are delivered to the guest IDT, pending interrupts whenever
        IF is set, and a budget overrun raises :class:`BudgetExceeded`.
        ``first``: the first ``emu_start`` already ran (the fast path's, with the
        watchdog armed for this budget); ``_STARTED``, or the exception it raised.
        """
        uc, cpu, irq = self._uc, self.cpu, self.irq
        assert uc is not None and cpu is not None and irq is not None
        self._inline_entered = None
        if self._entry is not None:  # anything may run now (IRQs at idle, stops, stepping)
            self._entry.frame_ok = False
        seconds = self.budget_seconds if budget_seconds is None else budget_seconds
        watch = self._watch
        if first is None:
            watch.arm(seconds)
        counter = None
        if max_insns is not None:
            counter = self._insn_counter()
            counter.acquire()
            counter.limit, counter.exceeded = counter.count + max_insns, False
        try:
            while True:
                if first is None:
                    if irq.has_pending() and cpu.irqs_enabled():
                        self._deliver_irq()
                    self._sync_irq_flag(irq.has_pending())
                    if self._interrupted:  # interrupt() between two emu_start calls
                        return self._take_interrupt()
                    self._ctl, self._exc, self._want_irq_stop = None, None, False
                    count = self._run_count()
                try:
                    if first is None:
                        uc.emu_start(cpu.rip, 0, 0, count)
                    elif first is not _STARTED:
                        raise first
                except UcError as e:
                    if e.errno == UC_ERR_INSN_INVALID:
                        self._exc = 6
                    else:
                        raise MachineError(
                            f"emulation failed at {self.symbolize(cpu.rip)}: {e}") from e
                finally:
                    first = None
                irq.after_run()
                self._reap_hooks()
                if self._watch_step_pending and self._ctl is None and self._exc is None:
                    self._watch_step_pending = False
                    for pa, data in reversed(self._undo_writes):  # see _stop_in_access
                        uc.mem_write(pa, data)
                    self._undo_writes.clear()
                    ctl = self._step_insn()  # the access a watch hook stopped in
                    if ctl is not None:
                        self._ctl = ctl
                    elif self._watch_hits and self._stop_hit is None:
                        self._stop_hit = self._watch_hits[0]
                    if self._stop_hit is None and ctl is None:
                        continue
                self._watch_step_pending = False
                self._undo_writes.clear()
                if self._stop_hit is not None and self._ctl is None:
                    return CTL_STOPPED
                if self._ctl is not None:
                    if self._ctl == -1 and self.state == "booting":
                        raise BootError(f"kernel exited with code {self.exit_code} during boot:"
                                        f"\n{self.console_tail()}")
                    return self._ctl
                if self._exc is not None:
                    self._deliver_exception(self._exc)
                    continue
                if self._interrupted:
                    return self._take_interrupt()
                if watch.fired:
                    raise BudgetExceeded(
                        f"guest ran longer than {seconds:g} s (at {self.symbolize(cpu.rip)})")
                if counter is not None and counter.exceeded:
                    ran = counter.count - (counter.limit - max_insns)  # type: ignore[operator]
                    e = BudgetExceeded(f"guest would run more than {max_insns} instructions "
                                       f"(stopped after {ran}, at {self.symbolize(cpu.rip)})")
                    e.insns = ran
                    raise e
                if self._at_quiet_end(cpu.rip):
                    return CTL_CALL_DONE  # a quiet call's end (entry.S); see _call_fast
                if irq.has_pending() and cpu.irqs_enabled():
                    continue
                if self._halted():
                    if irq.has_timers():
                        if self._sleeping:  # a wait for memory the timer's interrupt ends
                            self.sleeps += 1
                            self._sleeping = 0
                        irq.fire_next_timer()  # time passes while the CPU is halted
                        continue
                    if self._sleeping:
                        self.sleeps += 1
                        if self._sleeping == CTL_SLEEP:
                            self._sleeping = 0  # the timeout ends the wait: resume
                            continue
                        self._sleeping = 0
                        raise GuestWaiting(
                            f"guest is waiting for memory at {self.symbolize(cpu.rip)} and no "
                            "interrupt is pending to free any (see the console for the "
                            "allocation)")
                    reason = ("interrupts disabled" if not cpu.irqs_enabled()
                              else "no interrupt pending")
                    raise MachineError(f"guest halted at {self.symbolize(cpu.rip)} with "
                                       f"{reason}: it would wait forever")
        finally:
            watch.disarm()
            if counter is not None:
                counter.limit = None
                counter.release()

    def _reap_hooks(self) -> None:
        """Delete hooks their own callbacks retired (never from inside a callback)."""
        if self._retired_hooks:
            for h in self._retired_hooks:
                self.uc.hook_del(h)
            self._retired_hooks.clear()
            self.uc.ctl_flush_tb()

    def _take_interrupt(self) -> int:
        self._interrupted = False
        if self.suspend_on_interrupt and self.state == "running":
            self._stop_hit = "interrupted"
            return CTL_STOPPED
        raise Interrupted(f"interrupted at {self.symbolize(self.cpu.rip)}")  # type: ignore[union-attr]

    def _sync_irq_flag(self, pending: bool) -> None:
        """Mirror "a vector is pending" into the kernel's kmemu_irq_pending (<linux/irqflags.h>)."""
        if pending != self._irq_flag:
            self.uc.mem_write(self._irq_flag_pa, b"\x01" if pending else b"\x00")
            self._irq_flag = pending

    def _halted(self) -> bool:
        try:
            rip = self.cpu.rip  # type: ignore[union-attr]
            return self.read_virt(rip - 1, 1) == b"\xf4"
        except KmemuError:
            return False

    def _deliver_exception(self, vector: int) -> None:
        cpu = self.cpu
        assert cpu is not None
        err = cpu.fault_cleanup()
        code = err if vector in EXC_WITH_ERROR_CODE else None
        try:
            cpu.deliver(vector, code, self._translate_for_cpu)
        except KmemuError as e:  # e.g. RSP set to 0 from a debugger: no stack to push on
            raise MachineError(f"cannot deliver exception {vector} at "
                               f"{self.symbolize(cpu.rip)}: {e}") from e

    def _deliver_irq(self) -> None:
        irq, cpu = self.irq, self.cpu
        assert irq is not None and cpu is not None
        v = irq.next_deliverable()
        if v is None:
            return
        ret = cpu.rip
        cpu.deliver(v, None, self._translate_for_cpu)
        if irq.has_pending():
            self._stop_at_return(ret)

    def _stop_at_return(self, rip: int) -> None:
        """Stop when the interrupted code resumes, to deliver what is still pending."""
        uc = self._uc
        assert uc is not None
        holder: list[int] = []

        def hit(u: Uc, address: int, size: int, _: object) -> None:
            if holder[0] not in self._retired_hooks:  # deleted after the run (delete_hook)
                u.emu_stop()
                self._retired_hooks.append(holder[0])

        self.hook_add(UC_HOOK_CODE, hit, None, rip, rip, _holder=holder)

    def _translate_for_cpu(self, va: int, access: str) -> int:
        return self.translate(va, access)

    # ------------------------------------------------------------------ idle & calls
    def _enter_idle(self) -> None:
        cpu = self.cpu
        assert cpu is not None
        self._idle_rsp = cpu.reg("rsp")
        self._idle_rip = cpu.rip
        self._call_rsp = (self._idle_rsp - 512) & ~0xF
        self._ret_addr = struct.pack("<Q", self.call_return_address)
        self._call_stack_pa = self.translate(self._call_rsp - 8, "write")
        self._req_pa = self._sym_pa("kmemu_req")
        # call: RSP, RIP, RFLAGS, RBP, then the argument registers
        self._call_regs = RegBatch(self.uc, [x86.UC_X86_REG_RSP, x86.UC_X86_REG_RIP,
                                             x86.UC_X86_REG_RFLAGS, x86.UC_X86_REG_RBP,
                                             *ARG_REGS])
        self._entry = CallEntry(self.uc, self._call_stack_pa, self.call_return_address,
                                (self._idle_rsp, self._idle_rip, 0x202), x86.UC_X86_REG_R12)
        self._quiet_end = self._find_quiet_end()
        if self._quiet_end:
            self._entry.set_quiet_word(define("KMEMU_CALL_QUIET"))

    def _at_quiet_end(self, rip: int) -> bool:
        """Whether a run stopped at ``rip`` ended the call it runs at the quiet end: the
        idle hlt, which only a quiet call's end counts as its end (an interrupt at idle
        returns there too, and goes on round the idle loop to CTL_READY)."""
        call = self._suspended
        return bool(self._quiet_end) and rip == self._quiet_end and call is not None \
            and call.quiet

    def _find_quiet_end(self) -> int:
        """Where a quiet call stops: the idle RIP, just past the idle loop's hlt, which
        kmemu_call_return's quiet end jumps to on the idle stack (entry.S).  0 (every
        call ends with the CALL_DONE port write) if this kernel's idle loop is not where
        it says (``kmemu_idle_rsp`` is not the idle RSP, or the idle RIP does not follow
        ``kmemu_idle_hlt``) or the call's two stack words are not one physical run."""
        names = self._syms().by_name
        if "kmemu_idle_rsp" not in names or "kmemu_idle_hlt" not in names:
            return 0
        try:
            idle_rsp, = struct.unpack("<Q", self.read_virt(names["kmemu_idle_rsp"].address, 8))
            hlt = names["kmemu_idle_hlt"].address
            at_hlt = self.read_virt(hlt, 1) == b"\xf4" and self._idle_rip == hlt + 1
            contiguous = self.translate(self._call_rsp, "write") == self._call_stack_pa + 8
        except KmemuError:
            return 0
        return self._idle_rip if idle_rsp == self._idle_rsp and at_hlt and contiguous else 0

    @property
    def call_return_address(self) -> int:
        """Where every host call returns: just past the nop at kmemu_call_return."""
        return self.symbol("kmemu_call_return") + 1

    def _sym_pa(self, name: str) -> int:
        return self.symbol(name) - L.KERNEL_VIRT

    def _require_ready(self) -> None:
        if self.state == "stopped":
            call = self._suspended
            how = _STOPPED_BY.get(call.stopped_by if call else "", "at a breakpoint")
            name = f"{call.name}()" if call else "a call"
            raise MachineError(f"{name} is stopped {how} (at {self.symbolize(self.cpu.rip)}): "  # type: ignore[union-attr]
                               "resume() or abort() it, or restore() a snapshot, first")
        if self.state != "ready":
            raise MachineError(f"the machine is {self.state}; boot() it first"
                               if self.state == "off" else f"the machine is {self.state}")

    def _to_idle(self) -> None:
        self._call_regs.write([self._idle_rsp, self._idle_rip, 0x202])
        if self.kasan:  # frames a call left without their epilogues keep stack red zones
            clear_stack_shadow(self)

    def _resolve_function(self, fn: str | int, nargs: int) -> int:
        hit = self._resolved.get((fn, nargs)) if isinstance(fn, str) else None
        if hit is None:
            hit = self._resolve_uncached(fn, nargs)
            if isinstance(fn, str):
                self._resolved[(fn, nargs)] = hit
        return hit

    def _resolve_uncached(self, fn: str | int, nargs: int) -> int:
        assert self._kernel_symbols is not None
        if isinstance(fn, int) and not isinstance(fn, bool):
            return _u64(fn)
        if not isinstance(fn, str):
            raise BadArgument(f"function must be a symbol name or an address, got {fn!r}")
        sym = self._kernel_symbols.by_name.get(fn) if ":" not in fn else None
        if sym is None:
            hit = self._resolve_module_function(fn)
            if hit is not None:
                return self._module_function_target(fn, nargs, *hit)
            self._kernel_symbols.address(fn)  # raises with suggestions
        assert sym is not None
        if sym.kind != "func":
            raise BadArgument(f"{fn!r} is a kernel variable, not a function")
        p = self._kernel_symbols.params_at(sym.address)  # aliases (alloc_pages) share the DWARF
        if p is not None and (nargs < len(p.names) or (nargs > len(p.names) and not p.variadic)):
            want = ", ".join(p.names) or "no arguments"
            raise BadArgument(f"{fn}() takes {len(p.names)} argument(s) ({want}), got {nargs}")
        if p is not None and p.ret_size < 8:  # only the low bytes of rax are defined (SysV)
            self._ret_masks[sym.address] = (1 << (8 * p.ret_size)) - 1
        return sym.address

    def _module_function_target(self, fn: str, nargs: int, address: int,
                                p: Params | None) -> int:
        if p is not None and (nargs < len(p.names) or (nargs > len(p.names) and not p.variadic)):
            want = ", ".join(p.names) or "no arguments"
            raise BadArgument(f"{fn}() takes {len(p.names)} argument(s) ({want}), got {nargs}")
        if p is not None and p.ret_size < 8:
            self._ret_masks[address] = (1 << (8 * p.ret_size)) - 1
        if p is not None:
            self._module_params[address] = p  # for _check_arg_types
        return address

    @staticmethod
    def _check_args(args: tuple[object, ...]) -> list[int]:
        if len(args) > 6:
            raise BadArgument(f"at most 6 register arguments are supported, got {len(args)}")
        out = []
        for i, a in enumerate(args):
            if isinstance(a, bool) or not isinstance(a, int):
                raise BadArgument(f"argument {i + 1} must be an int, got {type(a).__name__} "
                                  f"{a!r}")
            if not -(1 << 63) <= a < (1 << 64):
                raise BadArgument(f"argument {i + 1} ({a}) does not fit in 64 bits")
            out.append(_u64(a))
        return out

    def _check_arg_types(self, fn: str | int, target: int, args: tuple[object, ...] | list[int],
                         ) -> None:
        """Each argument against its C parameter's type (DWARF), before anything runs:
        an order of 2**32 for an ``unsigned int`` would reach the kernel as 0."""
        bounds = self._arg_bounds.get(target)
        if bounds is None:  # once per function: the DWARF walk, then plain tuples
            p = self._params_at(target)
            bounds = self._arg_bounds[target] = tuple(
                (t.lo, t.hi) if t is not None else (-(1 << 63), U64)
                for t in (p.types if p is not None else ()))
        for i, (a, (lo, hi)) in enumerate(zip(args, bounds, strict=False)):  # variadic: more
            if not lo <= a <= hi:  # type: ignore[operator]  # ints: _check_args ran first
                self._bad_arg_type(fn, target, i, a)

    def _params_at(self, target: int) -> Params | None:
        """The DWARF parameters of the kernel or module function at ``target``."""
        return self._syms().params_at(target) or self._module_params.get(target)

    def _bad_arg_type(self, fn: str | int, target: int, i: int, a: object) -> None:
        p = self._params_at(target)
        assert p is not None
        t = p.types[i]
        assert t is not None
        name = fn if isinstance(fn, str) else self.symbolize(target).partition("+")[0]
        span = f"{t.lo}..{t.hi}" if t.signed else f"0..{t.hi:#x}"
        raise BadArgument(f"{name}() argument {i + 1} ({p.names[i]}, {t.name}) must be in "
                          f"{span}, got {a}")

    @staticmethod
    def _check_budget(budget_seconds: object, max_insns: object) -> None:
        """A run's limits: seconds > 0 (int or float, inf for none), instructions >= 1."""
        if budget_seconds is not None and (
                isinstance(budget_seconds, bool) or not isinstance(budget_seconds, (int, float))
                or not budget_seconds > 0):  # inf: no time limit (debug sessions); NaN fails
            raise BadArgument(f"budget_seconds must be a positive number of seconds, got "
                              f"{budget_seconds!r}")
        if max_insns is not None and (isinstance(max_insns, bool)
                                      or not isinstance(max_insns, int) or max_insns < 1):
            raise BadArgument(f"max_insns must be a positive instruction count, got "
                              f"{max_insns!r}")

    def call(self, fn: str | int, *args: int, context: str = "process",
             budget_seconds: float | None = None, max_insns: int | None = None) -> int:
        """Call a kernel function (SysV ABI) and return its 64-bit result (``rax``).

        ``context`` is ``"process"`` (interrupts on), ``"irqs_off"``,
        ``"preempt_off"`` or ``"irq"`` (inside a real hard-IRQ handler).
        A guest oops raises :class:`GuestOops`; the machine is back at idle
        afterwards (tainted, as Linux would be) and ``restore()`` gives a clean one.
        An :meth:`interrupt` from the moment this is entered stops the call (even
        before its first instruction, as the gdb stub does for an early Ctrl-C).

        The common case (process context, no limits of its own, nothing pending)
        takes :meth:`_call_fast`; everything else the careful run loop (:meth:`_run`).
        """
        self._interrupted = False  # _begin_request, inlined: this is the hot path
        if self.state != "ready":
            self._require_ready()
        limited = budget_seconds is not None or max_insns is not None
        if limited:
            self._check_budget(budget_seconds, max_insns)
        plan = self._call_plans.get((fn, len(args))) if type(fn) in (str, int) else None
        if plan is None:
            plan = self._call_plan(fn, args)
        vals = self._call_values(fn, plan, args) if args else []
        if context == "process":
            if not limited:
                return self._call_fast(plan, vals)
            return self._call_careful(plan, vals, budget_seconds, max_insns)
        if context not in CONTEXTS:
            raise BadArgument(f"context must be one of {', '.join(CONTEXTS)}; got {context!r}")
        return self._call_in_context(plan, vals, context, budget_seconds, max_insns)

    # The call path, in four pieces (see ARCHITECTURE.md "The host round trip"):
    #   _call_plan     once per (function, argument count): resolve, DWARF checks
    #   _call_values   every call: the arguments against the plan's bounds
    #   _call_fast     every process-context call: one emu_start, no Python loop
    #   _call_careful  the same call through _complete/_run (stops, IRQs, budgets)
    def _call_plan(self, fn: str | int, args: tuple[object, ...]) -> CallPlan:
        """Resolve ``fn`` for ``len(args)`` arguments (symbol, DWARF parameter count,
        types and return width) once; cached until the module list changes."""
        self._check_args(args)  # the first bad argument's error, as before any lookup
        target = self._resolve_function(fn, len(args))
        self._check_arg_types(fn, target, args)
        bounds = self._arg_bounds[target]
        wide = (-(1 << 63), U64)
        per_arg = tuple(bounds[i] if i < len(bounds) else wide for i in range(len(args)))
        p = self._params_at(target)
        mask = (1 << (8 * p.ret_size)) - 1 if p is not None and p.ret_size < 8 else 0
        name = fn if isinstance(fn, str) else self.symbolize(target)
        plan = CallPlan(target, name, per_arg, mask)
        if type(fn) in (str, int):  # not bool: True == 1 would share 1's entry
            self._call_plans[(fn, len(args))] = plan
        return plan

    def _call_values(self, fn: str | int, plan: CallPlan, args: tuple[object, ...]) -> list[int]:
        """The arguments as 64-bit register values; every one must be a plain int in its
        parameter's range (anything else takes the full checks, which say what is wrong)."""
        vals = []
        for a, (lo, hi) in zip(args, plan.bounds, strict=False):  # one per argument
            if type(a) is not int or not lo <= a <= hi:
                self._check_args(args)  # int subclasses (IntFlag, ...) pass these
                self._check_arg_types(fn, plan.target, args)
            vals.append(a if a >= 0 else a & U64)  # type: ignore[operator]
        return vals

    def _call_fast(self, plan: CallPlan, vals: Sequence[int]) -> int:
        """Run a process-context call with one ``emu_start`` and return its result.

        Taken only when nothing needs the run loop before the first instruction (no
        pending or timed interrupt, the IRQ flag in guest memory already clear, no
        stepped instruction's stop to report).  When the run ends in anything but
        the call's clean return (an exception to deliver, a breakpoint, a
        watchpoint, an oops, the budget) the call goes on through the careful path
        from exactly where it stopped: nothing is run twice.
        """
        irq = self.irq
        if (irq.state.pending or irq.state.timers  # type: ignore[union-attr]
                or self._irq_flag is not False or self._ctl_pending is not None
                or self._interrupted or self.kasan  # KASAN reports: _complete's events
                or self._keep_counting):  # _run's emu_start passes the count
            return self._call_careful(plan, vals, None, None)
        entry = self._entry
        if not entry.frame_ok:  # the quiet frame: the call ends at the idle loop's hlt
            entry.push_return(True)
        entry.enter_regs.write([self._call_rsp - 8, plan.target, 0x202, 0, *vals])
        mark = len(self._console)
        self.state = "running"
        self._ctl, self._exc, self._want_irq_stop = None, None, False
        self._tb_counted = False
        watch = self._watch
        watch.arm(self.budget_seconds)
        first = entry.run(plan.target)
        if (first is None and self._exc is None and self._stop_hit is None
                and not self._watch_step_pending and not self._retired_hooks
                and not irq.state.timers):  # type: ignore[union-attr]
            result, rip = entry.result_and_rip()  # %r12: kmemu_call_return's convention
            quiet = self._ctl is None and rip == self._quiet_end  # idle again, frame kept
            if quiet or self._ctl == CTL_CALL_DONE:
                watch.disarm()
                if not quiet:  # the port's end: the registers are not at idle
                    entry.frame_ok = False
                    entry.to_idle()
                self.state = "ready"
                return result & plan.mask if plan.mask else result
        entry.frame_ok = False
        return self._complete(SuspendedCall(self, plan.name, self._call_finish(plan), quiet=True),
                              None, None, mark=mark, first=first or _STARTED)

    def _call_finish(self, plan: CallPlan) -> Callable[[int], int]:
        """The end of a process-context call: its result from %r12, back to idle."""
        def finish(stop: int) -> int:
            if stop != CTL_CALL_DONE:
                raise MachineError(f"kernel stopped unexpectedly during {plan.name} "
                                   f"(control {stop})")
            result = self._call_regs.read(x86.UC_X86_REG_R12)  # kmemu_call_return's convention
            self._to_idle()
            return result & plan.mask if plan.mask else result

        return finish

    def _call_careful(self, plan: CallPlan, vals: list[int], budget_seconds: float | None,
                      max_insns: int | None, target: int | None = None) -> int:
        """A call entered at ``target`` (default: the function itself) through the full
        run loop: budgets, instruction limits, pending interrupts."""
        self._entry.push_return(True)  # the same guest memory whichever path runs the call
        self._call_regs.write([self._call_rsp - 8, plan.target if target is None else target,
                               0x202, 0, *vals])
        return self._complete(SuspendedCall(self, plan.name, self._call_finish(plan), quiet=True),
                              budget_seconds, max_insns)

    def _call_in_context(self, plan: CallPlan, vals: list[int], context: str,
                         budget_seconds: float | None, max_insns: int | None) -> int:
        """irqs_off / preempt_off (a wrapper in kernel/host.c runs the request) and irq
        (the call vector's handler runs it, inside a real hard-IRQ entry)."""
        uc = self._uc
        assert uc is not None
        req = struct.pack("<Q6QQQ", plan.target, *(vals + [0] * (6 - len(vals))), 0, 0)
        uc.mem_write(self._req_pa, req)
        if context != "irq":
            return self._call_careful(plan, [], budget_seconds, max_insns,
                                      target=self.symbol(f"kmemu_call_{context}"))
        mask = plan.mask

        def finish_irq(stop: int) -> int:
            if stop != CTL_READY:
                raise MachineError(f"kernel did not return to idle after the IRQ call "
                                   f"({stop})")
            done, = struct.unpack("<Q", uc.mem_read(self._req_pa + 64, 8))
            if not done:
                raise MachineError("the call vector's handler did not run")
            r = struct.unpack("<Q", uc.mem_read(self._req_pa + 56, 8))[0]
            self._to_idle()  # stopped at the READY out, before the hlt: as raise_irq's end
            return r & mask if mask else r

        self.irq.raise_irq(define("KMEMU_CALL_VECTOR"))  # type: ignore[union-attr]
        self._to_idle()
        return self._complete(SuspendedCall(self, plan.name, finish_irq), budget_seconds,
                              max_insns)

    def _complete(self, call: SuspendedCall, budget_seconds: float | None,
                  max_insns: int | None, mark: int | None = None,
                  first: BaseException | None = None) -> int:
        """Run a started call to its end, or suspend it at a stopping breakpoint.
        ``mark`` and ``first``: see :meth:`_run_request` (the fast path's hand-over)."""
        self.state = "running"
        self._suspended = call
        events_mark = len(self.events)
        try:
            stop = self._run_request(budget_seconds, max_insns, mark, first)
        except CallStopped as e:  # budget, interrupt, wait: the call stays where it is
            self._suspend_stopped(call, e)
            raise
        except BaseException:
            self._suspended = None
            if self.state == "running":  # oops (back at idle, tainted as Linux is)
                self.state = "ready"
            raise
        if stop == CTL_STOPPED:
            if self._arm_kasan_stop():  # stopped in a KASAN report: run to the access
                return self._complete(call, budget_seconds, max_insns)
            self._suspend(call)
        result = self._call_done(call, stop)
        if self.kasan:
            raise_kasan_reports(self, events_mark, result)
        return result

    def _call_done(self, call: SuspendedCall, stop: int) -> int:
        self.state = "ready"
        self._suspended = None
        call.done = True
        call.result = call.on_done(stop)
        return call.result

    def _run_request(self, budget_seconds: float | None, max_insns: int | None,
                     mark: int | None = None, first: BaseException | None = None) -> int:
        """Run the request to its control stop and turn an oops or an exit into its
        exception.  ``first`` set: :meth:`_call_fast` already ran the first
        ``emu_start`` (``_STARTED``, or what it raised) with the console at ``mark``."""
        if mark is None:
            mark = len(self._console)
        # no clearing of _interrupted here: an interrupt() since the request began (while
        # its arguments were checked against DWARF, say) stops the run as it starts
        try:
            if self._ctl_pending is not None:  # a stepped instruction already ended the run
                stop, self._ctl_pending = self._ctl_pending, None
            else:
                stop = self._run(budget_seconds, max_insns, first)
        except MachineError:
            self.state = "crashed"
            raise
        if stop == CTL_CALL_OOPS:
            self._to_idle()
            oops = next((e for e in reversed(self.events) if e.kind == "oops"), None)
            text = self._console[mark:].decode(errors="replace")
            if oops is None:
                raise MachineError(f"kernel reported an oops without an event:\n{text}")
            where = None
            if oops.vector == 14:
                try:
                    where = (self.describe_vmalloc_address(oops.address)
                             or self.describe_section_address(oops.address))
                except KmemuError:
                    where = None
            raise GuestOops(oops, text, self.symbolize(oops.rip), where)
        if stop == -1:
            self.state = "exited"
            raise GuestExit(self.exit_code or 0)
        return stop

    def raise_irq(self, vector: int, after: int | None = None) -> None:
        """Raise an interrupt now (delivered at once if the machine is idle) or after N insns.

        While a call is stopped the vector is only made pending: it is delivered
        when the call runs on with interrupts enabled (``resume()``), e.g. to give
        memory to a call stopped by :class:`GuestWaiting`.
        kmemu's own vectors (the call vector 0xec) are refused: raised from
        outside a host call they would run a request that is not there.
        """
        self._begin_request()
        if self.state != "stopped":
            self._require_ready()
        irq = self.irq
        assert irq is not None
        own = internal_vectors().get(vector) if isinstance(vector, int) else None
        if own is not None:
            raise IrqError(f"vector {vector:#x} is kmemu's own ({own}: it runs host calls in "
                           "interrupt context; use call(..., context='irq'))")
        irq.raise_irq(vector, after)
        if self.state == "stopped":
            return
        if after is None or after == 0:
            def finish(stop: int) -> int:
                if stop != CTL_READY:
                    raise MachineError(f"kernel did not return to idle after IRQ {vector:#x}")
                self._to_idle()
                return 0

            self._to_idle()
            # Like a call: a breakpoint in the handler suspends it (BreakpointHit), and
            # resume() finishes the interrupt and returns to idle.
            self._complete(SuspendedCall(self, f"irq {vector:#x}", finish), None, None)

    def hook_add(self, htype: int, callback: Callable[..., object], user_data: object = None,
                 begin: int = 1, end: int = 0, *args: int, _holder: list[int] | None = None,
                 ) -> int:
        """``uc.hook_add`` that also works for code already run.

        Unicorn instruments code when it translates it, so a hook added
        later is not called from blocks already in the translation cache;
        this flushes the cache after adding the hook.  Use it (or call
        ``m.uc.ctl_flush_tb()`` yourself) for hooks on ``m.uc``.
        """
        check_int(htype, "hook type", 1, (1 << 32) - 1)
        check_callable(callback, "callback")
        check_address(begin, "begin")
        check_address(end, "end")
        for a in args:
            check_int(a, "hook argument")
        h = self.uc.hook_add(htype, callback, user_data, begin, end, *args)
        if _holder is not None:
            _holder.append(h)
        self.uc.ctl_flush_tb()
        return h

    def _begin_request(self) -> None:
        """A host request (call, raise_irq, resume) starts: an interrupt() from before
        it, while nothing ran, is not for it; one from now on is."""
        self._interrupted = False

    def interrupt(self) -> None:
        """Stop whatever the guest is running (safe from another thread)."""
        self._interrupted = True
        if self._active_uc is not None:
            self._active_uc.emu_stop()

    @property
    def insns(self) -> int:
        """Guest instructions counted so far (needs ``Machine(count_insns=True)``)."""
        return self._counter.count if self._counter is not None else 0

    # ------------------------------------------------------------------ memory
    @property
    def uc(self) -> Uc:
        """The underlying ``unicorn.Uc`` (64-bit).  Power users may add hooks;
        kmemu's own hooks keep working alongside them."""
        if self._uc is None:
            raise MachineError("the machine has not been booted")
        return self._uc

    def _check_range(self, addr: object, n: object, what: str) -> None:
        if isinstance(addr, bool) or not isinstance(addr, int) or addr < 0 or addr > U64:
            raise BadArgument(f"{what} address must be a non-negative 64-bit int, got {addr!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise BadArgument(f"{what} length must be a non-negative int, got {n!r}")
        if what == "physical" and addr + n > U64 + 1:  # virtual: the walk faults there
            raise BadArgument(f"{what} range {addr:#x}+{n:#x} runs past the end of the 64-bit "
                              "address space")

    @staticmethod
    def _check_size(addr: int, n: int, what: str) -> None:
        if n > MAX_ACCESS:
            raise BadArgument(f"{what} access of {n:#x} bytes at {addr:#x} is larger than "
                              f"{MAX_ACCESS >> 20} MiB; access large ranges in pieces")

    def _check_ram(self, pa: int, n: int) -> None:
        """Refuse a physical range that is not all RAM, before any host buffer exists."""
        if self._ram is None:
            raise MachineError("the machine has not been booted")
        if not self._ram.check(pa, n):
            raise BadArgument(f"physical range {pa:#x}+{n:#x} is not RAM (the e820 map backs "
                              "no single range covering it)")

    def read_phys(self, pa: int, n: int) -> bytes:
        held = self._held
        if (held is not None and type(pa) is int and type(n) is int and 0 <= pa <= U64
                and 0 < n <= 4096 - (pa & 0xFFF)):  # within one page: from its held bytes
            data = self._held_page(held, pa & ~0xFFF)
            if data is not None:
                return data[pa & 0xFFF:(pa & 0xFFF) + n]
        self._check_range(pa, n, "physical")
        self._check_ram(pa, n)
        self._check_size(pa, n, "physical")
        return self._reader.read(pa, n)

    def write_phys(self, pa: int, data: bytes) -> None:
        data = check_bytes(data)
        self._check_range(pa, len(data), "physical")
        self._check_ram(pa, len(data))
        self._check_size(pa, len(data), "physical")
        self._host_writing([(pa, len(data))])
        self.uc.mem_write(pa, bytes(data))

    def _read_u64(self, pa: int) -> int:
        """A page-table entry (the walker's reader): RAM only, as for read_phys."""
        held = self._held
        if held is not None and not pa & 7:
            table = held.tables.get(pa >> 12)
            if table is None and self._ram is not None and self._ram.check(pa & ~0xFFF, 4096):
                table = held.tables[pa >> 12] = PAGE_OF_U64.unpack(
                    self._reader.read(pa & ~0xFFF, 4096))
            if table is not None:
                return table[(pa & 0xFFF) >> 3]
        self._check_ram(pa, 8)
        return self._reader.u64(pa)

    @property
    def cr3(self) -> int:
        return self.uc.reg_read(x86.UC_X86_REG_CR3)

    def translate(self, va: int, access: str = "read") -> int:
        """Physical address of ``va`` through the guest's own page tables (CR3), for a
        supervisor ``access`` of ``"read"``, ``"write"`` or ``"exec"``.

        Raises :class:`emu.PageFault` naming the level where the walk stopped, or the
        entry that refuses the access: kernel text is not writable and nothing but
        text is executable (strict kernel RWX).
        """
        self._check_range(va, 0, "virtual")
        return pagetable.walk_pa(self._read_u64, self.cr3, va, access=access)

    def walk(self, va: int) -> pagetable.Translation:
        check_address(va, "virtual address")
        return pagetable.walk(self._read_u64, self.cr3, va)

    #: the count _counted_runs' runs pass to emu_start: never reached
    _COUNT_FOREVER = 1 << 62

    @contextlib.contextmanager
    def _counted_runs(self) -> Iterator[None]:
        """Inside, runs keep Unicorn's instruction-count hook, so single steps and runs
        can alternate without throwing translated code away.

        A step is ``emu_start(count=1)``, which needs every block it may enter to have
        been translated with Unicorn's count hook (``_step_insn`` flushes once so);
        and a run with ``count=0`` after it makes Unicorn delete that hook and flush
        every translated block.  A sweep that steps to a cut, then runs the rest of the
        call and a follow-up, paid a whole retranslation per cut.  Runs in here pass
        a count that is never reached instead: the hook (a C callback per
        instruction) stays, and so does the code translated with it.  Calls take the
        careful path (``_call_fast``'s C entry runs with count 0).  Leaving the scope
        costs nothing: the next plain run flushes as it always did.
        """
        outer = self._keep_counting
        self._keep_counting = True
        try:
            yield
        finally:
            self._keep_counting = outer

    def _run_count(self) -> int:
        """The ``count`` of the next ``emu_start`` of ``_run``: 0 (no limit) normally; in
        ``_counted_runs`` a count never reached, the first such run after plain ones
        flushing the blocks they translated without the hook (as ``_step_insn`` does)."""
        if not self._keep_counting:
            self._tb_counted = False  # Unicorn flushes when the count hook goes
            return 0
        self._translate_counted()
        return self._COUNT_FOREVER

    def _translate_counted(self) -> None:
        """From now on every block runs with Unicorn's count hook: code translated
        without it (by a plain run) is flushed, once; blocks translated before a hook
        was added would not call it (UNICORN.md: late hooks)."""
        if not self._tb_counted:
            self.uc.ctl_flush_tb()
            self._tb_counted = True

    @contextlib.contextmanager
    def _reads_held(self) -> Iterator[None]:
        """Inside, host reads remember what they walked (see :class:`HeldReads`): for
        views and validators, which make thousands of small reads and a few large ones
        and neither run the guest nor write memory meanwhile, so the page tables cannot
        change under them.  A host write inside forgets everything held."""
        if self._held is not None:  # nested: the outer scope holds them
            yield
            return
        self._held = HeldReads()
        try:
            yield
        finally:
            self._held = None

    def read_virt(self, va: int, n: int) -> bytes:
        held = self._held
        if (held is not None and type(va) is int and type(n) is int and 0 <= va <= U64
                and 0 < n <= 4096 - (va & 0xFFF)):  # within one page: one walk, as below
            page = held.pages.get(va >> 12)
            if page is None:
                pa = pagetable.walk_pa(self._read_u64, self.cr3, va)
                self._check_ram(pa, n)
                page = pa & ~0xFFF
                if self._ram is not None and self._ram.check(page, 4096):
                    held.pages[va >> 12] = page  # a page not wholly RAM is walked each time
            data = self._held_page(held, page)
            if data is None:  # the page's first read, or not wholly RAM: just these bytes
                return self._reader.read(page | (va & 0xFFF), n)
            return data[va & 0xFFF:(va & 0xFFF) + n]
        return self._read_virt(va, n)

    def _host_writing(self, ranges: list[tuple[int, int]]) -> None:
        """The host is about to write these physical (address, length) ranges: what any
        of them may change is forgotten (module text, the call's kept stack frame, the
        held reads, which may include a page table)."""
        self._host_writes(ranges)
        if self._entry is not None:
            self._entry.frame_ok = False
        if self._held is not None:
            self._held.clear()

    def _held_page(self, held: HeldReads, page: int) -> bytes | None:
        """The 4096 bytes of the physical ``page`` inside a held scope (read whole on
        its second read), or None: its first read, or a page not wholly RAM."""
        data = held.data.get(page)
        if data is None:
            if page not in held.once:
                held.once.add(page)
            elif self._ram is not None and self._ram.check(page, 4096):
                data = held.data[page] = self._reader.read(page, 4096)
        return data

    def _read_virt(self, va: int, n: int) -> bytes:
        self._check_range(va, n, "virtual")
        self._check_size(va, n, "virtual")
        chunks = pagetable.translate_range(self._read_u64, self.cr3, va, n)
        for _, pa, size in chunks:  # all checked before a host buffer is made
            self._check_ram(pa, size)
        return b"".join(self._reader.read(pa, size) for _, pa, size in chunks)

    def write_virt(self, va: int, data: bytes) -> None:
        """Write guest memory at ``va`` as a debugger does: every page must be mapped,
        but read-only pages (kernel text and rodata, a module's text) are written
        too, through their physical address; the guest's own writes there oops.
        The gdb stub's ``M`` packets come through here, and so does anything a script
        or the REPL writes."""
        data = check_bytes(data)
        self._check_range(va, len(data), "virtual")
        self._check_size(va, len(data), "virtual")
        chunks = pagetable.translate_range(self._read_u64, self.cr3, va, len(data), "read")
        for _, pa, size in chunks:  # all translated and checked before anything is written
            self._check_ram(pa, size)
        self._host_writing([(pa, size) for _, pa, size in chunks])
        off = 0
        for _, pa, size in chunks:
            self.uc.mem_write(pa, bytes(data[off : off + size]))
            off += size

    def read_u64(self, va: int) -> int:
        return struct.unpack("<Q", self.read_virt(va, 8))[0]

    # ------------------------------------------------------------------ symbols & types
    @property
    def symbols(self) -> Symbols | None:
        """The kernel's symbols, with the loaded modules' added (what debuggers look
        addresses and functions up in); :meth:`symbol` and :meth:`_syms` are the
        kernel's alone."""
        ks = self._kernel_symbols
        if ks is None or not self._module_code_seen:
            return ks
        view = self._debug_view()
        return view.symbols if view is not None else ks

    @symbols.setter
    def symbols(self, value: Symbols | None) -> None:
        self._kernel_symbols = value

    def _syms(self) -> Symbols:
        if self._kernel_symbols is None:
            if self.artifacts is None:
                self.artifacts = build(kasan=self.kasan)
            self.symbols = Symbols.load(self.artifacts.elf)
        assert self._kernel_symbols is not None
        return self._kernel_symbols

    def symbol(self, name: str) -> int:
        """Address of a kernel symbol; :class:`emu.SymbolError` if there is none."""
        return self._syms().address(check_str(name, "symbol name"))

    def symbolize(self, addr: int) -> str:
        """``kmalloc+0x1c/0x90``, or ``mydev_alloc+0x1c/0x90 [mydev]`` in a module."""
        addr = check_address(addr)
        return self._module_symbolize(addr) or self._syms().symbolize(addr)

    @property
    def program(self):  # -> drgn.Program
        """drgn over the kernel and the loaded modules (their DWARF at load addresses)."""
        view = self._debug_view() if self._module_code_seen else None
        return view.program if view is not None else self.kernel_program

    @property
    def kernel_program(self):  # -> drgn.Program
        """drgn over the kernel's DWARF alone."""
        if self._prog is None:
            from emu.kernel.types import kernel_program
            self._require_booted()
            assert self.artifacts is not None
            self._prog = kernel_program(self.artifacts.elf, self.read_virt)
        return self._prog

    def var(self, name: str):  # -> drgn.Object
        """A kernel global as a drgn Object reading live guest memory."""
        import drgn
        check_str(name, "variable name")
        try:
            return self.program[name]
        except (KeyError, LookupError, drgn.ObjectNotFoundError) as e:
            raise BadArgument(f"no kernel variable {name!r} in the debug info") from e

    def obj(self, type_name: str, addr: int):  # -> drgn.Object
        """``obj("struct kmem_cache *", addr)``: a pointer is dereferenced for you.

        The object's memory must be mapped now (:class:`emu.PageFault` names the
        level where the walk stopped); reads are live, so memory unmapped later
        raises drgn's ``FaultError`` when the object is read."""
        import drgn
        check_str(type_name, "type name")
        check_address(addr)
        try:
            t = self.program.type(type_name)
        except (LookupError, SyntaxError, ValueError) as e:
            raise BadArgument(f"unknown kernel type {type_name!r}: {e}") from e
        target = t.type if t.kind == drgn.TypeKind.POINTER else t
        try:
            size = drgn.sizeof(target)
        except (TypeError, ValueError):  # void, a function or an incomplete type
            size = 0
        # drgn reads lazily and its own FaultError is not a KmemuError: an object that
        # is not mapped at all is refused here, with the walk's level (emu.PageFault)
        self.read_virt(addr, min(max(size, 1), 1 << 20))
        if t.kind == drgn.TypeKind.POINTER:
            return drgn.Object(self.program, t, value=addr)[0]
        return drgn.Object(self.program, t, address=addr)

    # ------------------------------------------------------------------ console & events
    @property
    def console(self) -> str:
        return self._console.decode(errors="replace")

    def console_tail(self, lines: int = 30) -> str:
        if check_int(lines, "lines") == 0:
            return ""
        return "\n".join(self.console.splitlines()[-lines:])

    def dmesg(self) -> str:
        """The kernel's own log ring (``log_buf``), oldest first."""
        size = self._syms().by_name["log_buf"].size  # LOG_BUF_LEN, from the ELF
        nxt = self.read_u64(self.symbol("log_next"))
        buf = self.read_virt(self.symbol("log_buf"), size)
        if nxt <= size:
            return buf[:nxt].decode(errors="replace")
        i = nxt % size
        return (buf[i:] + buf[:i]).decode(errors="replace")

    # ------------------------------------------------------------------ snapshots
    def snapshot(self) -> Snapshot:
        """Save the whole machine (copy-on-write; cheap).

        Snapshots form a stack, as Unicorn's copy-on-write layers do:
        restoring one discards every snapshot taken after it (restoring
        those later raises :class:`BadArgument` instead of crashing).
        """
        if self.state != "stopped":
            self._require_ready()
        assert self.irq is not None
        snap = Snapshot(id(self), self.uc.context_save(), len(self._console), len(self.events),
                        self.irq.state.copy(), self.exit_code, self._idle_rsp,
                        self._counter.count if self._counter else 0,
                        suspended=self._suspended if self.state == "stopped" else None,
                        code_version=self._code_version,
                        call_frame=self._entry is not None and self._entry.frame_ok)
        self._snapshots.append(snap)
        return snap

    def restore(self, snap: Snapshot) -> None:
        """Go back to a snapshot of this machine (also after an oops or a crash)."""
        if not isinstance(snap, Snapshot) or snap.machine_id != id(self):
            raise BadArgument("restore() needs a Snapshot taken from this machine")
        if not snap.valid:
            raise BadArgument("this snapshot was discarded when an older snapshot was restored; "
                              "take snapshots again after restoring")
        idx = next(i for i, s in enumerate(self._snapshots) if s is snap)
        for later in self._snapshots[idx + 1 :]:
            later.valid = False
        del self._snapshots[idx + 1 :]
        self.uc.context_restore(snap.context)  # type: ignore[arg-type]
        if self._entry is not None:  # guest memory went back: the call frame with it
            self._entry.frame_ok = snap.call_frame
        self._restore_code_version(snap.code_version)  # also the module list, if it differs
        # guest memory went back, and the flag with it: read it (a write would copy its
        # page, ~50 us after every restore) so the next run writes it only if it differs
        self._irq_flag = self.uc.mem_read(self._irq_flag_pa, 1) != b"\x00"
        del self._console[snap.console_len :]
        self._line.clear()
        del self.events[snap.events_len :]
        assert self.irq is not None
        self.irq.restore(snap.irq)
        self.exit_code = snap.exit_code
        call = snap.suspended
        if call is not None:  # back inside the stopped call, which may be continued again
            call.done, call.result = False, None
        self.state = "stopped" if call is not None else "ready"
        self._suspended = call
        self._stop_hit = None
        self._hooks_done_at = None
        self._watch_step_pending = False
        self._undo_writes.clear()
        self._rewatch_all()  # the page tables went back too

    # ------------------------------------------------------------------ instruction counts
    def _insn_counter(self) -> InsnCounter:
        if self._counter is None:
            self._counter = InsnCounter(self.uc, lambda a, n: self.read_virt(a, n))
        return self._counter

    @contextlib.contextmanager
    def count_instructions(self) -> Iterator[list[int]]:
        """``with m.count_instructions() as n: ...``; ``n[0]`` is the guest count after."""
        c = self._insn_counter()
        c.acquire()
        start = c.count
        box = [0]
        try:
            yield box
        finally:
            box[0] = c.count - start
            c.release()

    def __repr__(self) -> str:
        return f"<Machine {self.mem >> 20} MiB {self.state}>"

