"""Layer 1: the emulated CPU around a Unicorn instance.

What Unicorn leaves to its user, done once here (see ../shared/UNICORN.md):

* **Exception delivery.**  Unicorn never enters the guest IDT; faults and
  ``int n`` reach ``UC_HOOK_INTR``.  :meth:`Cpu.deliver` does what the CPU
  would do for a 64-bit interrupt gate: pick the stack (IST from the TSS if
  the gate asks), align it, push SS, RSP, RFLAGS, CS, RIP (and the error
  code), clear IF/TF/NT/RF and jump to the handler.
* **Stale exception state.**  QEMU's ``old_exception`` (used to turn a
  second fault into #DF) is never reset because Unicorn skips the code that
  resets it, so the second #PF would arrive as #DF and the third as a
  silent triple fault.  :meth:`Cpu.fault_cleanup` patches it back to -1 in
  the CPU context after every fault and reads the fault's error code from
  the same context.  Both offsets are *measured* at import time in a
  scratch instance (:func:`calibrate`), not hard-coded.
* **Budgets.**  A watchdog thread stops a run that exceeds its wall-clock
  budget (``emu_start``'s own timeout costs ~200 µs per call); an
  instruction counter (:class:`InsnCounter`, a block hook counting
  instructions with capstone) exists only while someone asks for counts.

This module imports nothing from the layers above; translation of virtual
addresses is passed in as a callable.
"""

from __future__ import annotations

import ctypes
import struct
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from unicorn import (
    UC_ARCH_X86,
    UC_HOOK_BLOCK,
    UC_HOOK_INTR,
    UC_MODE_64,
    UC_TLB_CPU,
    Uc,
    UcError,
)
from unicorn import unicorn_const as ucc
from unicorn import x86_const as x86

from emu.core.errors import CallStopped, KmemuError

EXC_WITH_ERROR_CODE = frozenset({8, 10, 11, 12, 13, 14, 17, 21, 29, 30})
RFLAGS_IF = 1 << 9
RFLAGS_TF = 1 << 8
RFLAGS_NT = 1 << 14
RFLAGS_RF = 1 << 16

Translate = Callable[[int, str], int]


class CpuError(KmemuError):
    """The emulated CPU cannot continue (e.g. no usable IDT gate: a triple fault)."""


class BudgetExceeded(CallStopped):
    """A run took more instructions or seconds than its budget allowed (the call
    stays suspended where the budget ran out: see :class:`emu.core.errors.CallStopped`)."""

    stopped_by = "budget"
    insns: int | None = None  # for max_insns: the instructions run before the stop


# --- measuring Unicorn's hidden exception state -------------------------------------


@dataclass(frozen=True)
class ContextLayout:
    """Byte offsets inside ``bytes(uc.context_save())`` for the x86-64 CPU state."""

    size: int
    old_exception: int
    error_code: int


def _scratch_run(code: bytes) -> tuple[bytes, bytes]:
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0x1000, 0x10000)
    uc.mem_write(0x1000, code)
    uc.reg_write(x86.UC_X86_REG_RSP, 0x8000)
    before = bytes(uc.context_save())
    uc.hook_add(UC_HOOK_INTR, lambda u, n, d: u.emu_stop())
    uc.emu_start(0x1000, 0x1000 + len(code))
    return before, bytes(uc.context_save())


def _i32(b: bytes, off: int) -> int:
    return struct.unpack_from("<i", b, off)[0]


# xor edx,edx; xor eax,eax; xor ecx,ecx; div ecx           -> #DE
_DIVIDE = bytes.fromhex("31d231c031c9f7f1")
# mov rbx,0x3000; mov word [rbx],SEL; mov ds,[rbx]        -> #GP(SEL)
_LOAD_DS = "48c7c300300000" "66c703{:04x}" "8e1b"


# The registers Cpu.reg() reads by name, as debuggers show them.
REGISTER_NAMES = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10",
                  "r11", "r12", "r13", "r14", "r15", "rip", "rflags", "cs", "ss", "ds", "es",
                  "fs", "gs", "fs_base", "gs_base", "cr0", "cr2", "cr3", "cr4")


@cache
def calibrate() -> ContextLayout:
    """Find ``old_exception`` and ``error_code`` in the context blob by experiment.

    #DE turns old_exception from -1 into 0, #GP into 13; two #GPs with
    different selectors show where the error code lives.
    """
    b1, a1 = _scratch_run(_DIVIDE)
    sel = [bytes.fromhex(_LOAD_DS.format(int.from_bytes(s.to_bytes(2, "big"), "little")))
           for s in (0x28, 0x50)]
    b2, a2 = _scratch_run(sel[0])
    _, a3 = _scratch_run(sel[1])
    n = len(a1)
    old = [o for o in range(0, n - 3, 4)
           if _i32(b1, o) == -1 and _i32(a1, o) == 0 and _i32(b2, o) == -1 and _i32(a2, o) == 13]
    err = [o for o in range(0, n - 3, 4) if _i32(a2, o) == 0x28 and _i32(a3, o) == 0x50]
    if len(old) != 1 or len(err) != 1:
        raise CpuError(
            f"cannot locate Unicorn's exception state (candidates {old}, {err}); "
            "this unicorn version is not supported"
        )
    return ContextLayout(n, old[0], err[0])


# --- instruction counting --------------------------------------------------------------


class InsnCounter:
    """Counts guest instructions with a block hook (installed only while in use).

    Counts are deterministic for the same guest code and inputs.  A block cut
    short by a fault still counts whole (documented approximation).
    """

    def __init__(self, uc: Uc, read_code: Callable[[int, int], bytes]) -> None:
        self.uc = uc
        self.read_code = read_code
        self.count = 0
        self.limit: int | None = None
        self.exceeded = False
        self._sizes: dict[tuple[int, int], int] = {}
        import capstone  # here, not at import: it costs ~0.3 s of every start-up

        self._md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        self._hook: int | None = None
        self.users = 0

    def _on_block(self, uc: Uc, address: int, size: int, _: object) -> None:
        key = (address, size)
        n = self._sizes.get(key)
        if n is None:
            try:
                code = self.read_code(address, size)
                n = sum(1 for _ in self._md.disasm_lite(code, address))
            except KmemuError:
                n = 1
            self._sizes[key] = n = max(n, 1)
        if self.limit is not None and self.count + n > self.limit:
            # Measured: emu_stop in a block hook stops before the block runs, so
            # the block is not counted and a limit of N runs at most N instructions.
            self.exceeded = True
            uc.emu_stop()
            return
        self.count += n

    def acquire(self) -> None:
        if self.users == 0:
            self._hook = add_code_hook(self.uc, UC_HOOK_BLOCK, self._on_block)
            self.uc.ctl_flush_tb()  # translated blocks would not call the new hook
        self.users += 1

    def release(self) -> None:
        if self.users == 0:  # its hook was already taken away (Machine.remove_hooks_since)
            return
        self.users -= 1
        if self.users == 0 and self._hook is not None:
            delete_hook(self.uc, self._hook)
            self._hook = None


def delete_hook(uc: Uc, handle: int) -> None:
    """Delete a Unicorn hook for good; never from inside a hook callback.

    Measured (Unicorn 2.1): code translated while a hook existed keeps calling
    it after ``hook_del`` (a hook in the middle of a block that fired without
    stopping survives), and the Python binding has freed the callback by then:
    the process dies with SIGSEGV.  Flushing the translation cache removes
    those calls.
    """
    uc.hook_del(handle)
    uc.ctl_flush_tb()


# --- the watchdog -----------------------------------------------------------------------


class WatchSlot:
    """One run's deadline; ``deadline == 0`` means disarmed.  Arming is two stores."""

    __slots__ = ("uc", "deadline", "fired", "__weakref__")

    def __init__(self, uc: Uc) -> None:
        self.uc = uc
        self.deadline = 0.0
        self.fired = False

    def arm(self, seconds: float) -> None:
        self.fired = False
        self.deadline = time.monotonic() + seconds

    def disarm(self) -> None:
        self.deadline = 0.0


class Watchdog:
    """One thread for the whole process that stops overdue runs (polls every 5 ms)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: weakref.WeakSet[WatchSlot] = weakref.WeakSet()
        self._thread: threading.Thread | None = None

    def slot(self, uc: Uc) -> WatchSlot:
        s = WatchSlot(uc)
        with self._lock:
            self._slots.add(s)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="kmemu-watchdog",
                                                daemon=True)
                self._thread.start()
        return s

    def _loop(self) -> None:
        while True:
            time.sleep(0.005)
            now = time.monotonic()
            with self._lock:
                slots = list(self._slots)
            for s in slots:
                d = s.deadline
                if d and now >= d:
                    s.fired = True
                    s.deadline = 0.0
                    s.uc.emu_stop()


WATCHDOG = Watchdog()


# --- fast register access ------------------------------------------------------------


@cache
def unchecked(name: str) -> Callable[..., int]:
    """Unicorn's C function ``name`` with no ctypes argument conversion (``restype``
    int, no ``argtypes``): every argument must already be the ctypes object its C
    parameter takes (``c_void_p`` handle, ``c_uint64`` address, prebuilt arrays), or
    a Python int for a C ``int``.  The binding's prototypes convert each argument on
    every call; measured on a 2-argument register read, 840 -> 350 ns a call.  For
    the hot path only (CallEntry, RegBatch): everything else keeps the binding."""
    from unicorn.unicorn_py3.unicorn import uclib

    fn = getattr(ctypes.CDLL(uclib._name), name)  # noqa: SLF001 - the loaded library's path
    fn.restype = ctypes.c_int
    return fn


class RamReader:
    """Reads of guest physical memory with ``uc_mem_read`` called unchecked and no
    ctypes objects made per call (one thread at a time, as the machine itself).

    The binding's ``mem_read`` makes a buffer, copies it into a bytearray, and callers
    wanting ``bytes`` copy again; the views and validators make hundreds of thousands
    of reads (struct fields, page-table entries, pages).  Measured per read: 8 bytes
    2.6 -> 1.5 us, a page 3.3 -> 2.0 us, a u64 entry 2.0 -> 1.0 us.  A failed read
    raises ``UcError`` as the binding's does.
    """

    _PAGE = 4096
    _KEEP = 16 << 20  # the largest buffer kept between reads (PAGES_PER_READ's)

    def __init__(self, uc: Uc) -> None:
        self._fn = unchecked("uc_mem_read")
        self._uch = uc._uch  # noqa: SLF001 - the documented C handle
        self._buf = ctypes.create_string_buffer(self._PAGE)
        self._buf_addr = ctypes.addressof(self._buf)
        self._pa, self._n = ctypes.c_uint64(), ctypes.c_size_t()
        self._word = ctypes.c_uint64()
        self._word_ref, self._eight = ctypes.byref(self._word), ctypes.c_size_t(8)

    def read(self, pa: int, n: int) -> bytes:
        """``n`` bytes at physical ``pa`` (the caller checked that they are RAM).  The
        buffer grows to the largest read so far up to ``_KEEP`` (the bulk ``mem_map``
        reads: a fresh one was zeroed first, a third of such a read's cost)."""
        self._pa.value, self._n.value = pa, n
        if n > len(self._buf):
            if n > self._KEEP:
                buf = ctypes.create_string_buffer(n)
                self._check(self._fn(self._uch, self._pa, buf, self._n))
                return buf.raw
            self._buf = ctypes.create_string_buffer(n)
            self._buf_addr = ctypes.addressof(self._buf)
        self._check(self._fn(self._uch, self._pa, self._buf, self._n))
        return ctypes.string_at(self._buf_addr, n)

    def u64(self, pa: int) -> int:
        """The little-endian u64 at physical ``pa``."""
        self._pa.value = pa
        self._check(self._fn(self._uch, self._pa, self._word_ref, self._eight))
        return self._word.value

    @staticmethod
    def _check(status: int) -> None:
        if status:
            raise UcError(status)


class RegBatch:
    """Writes (or reads) a fixed list of 64-bit registers with one C call.

    The Python binding's ``reg_write_batch`` spends ~10 µs in Python per
    call; this prebuilds the ctypes arrays once and calls the C function
    unchecked (:func:`unchecked`), so a host call stays cheap.
    """

    def __init__(self, uc: Uc, regs: list[int]) -> None:
        n = len(regs)
        self._fn = unchecked("uc_reg_write_batch")  # each argument prebuilt below
        self._read = unchecked("uc_reg_read")  # a C int and a pointer: no conversion
        self._uch = uc._uch  # noqa: SLF001 - the documented C handle
        self._regs = (ctypes.c_int32 * n)(*regs)
        self._vals = (ctypes.c_uint64 * n)()
        base = ctypes.addressof(self._vals)
        self._ptrs = (ctypes.c_void_p * n)(*[base + 8 * i for i in range(n)])
        self._n = n
        self._one = ctypes.c_uint64()

    def write(self, values: list[int]) -> None:
        self._vals[: len(values)] = values
        status = self._fn(self._uch, self._regs, self._ptrs, len(values))
        if status:
            raise CpuError(f"register write failed (unicorn error {status})")

    def read(self, reg: int) -> int:
        self._read(self._uch, reg, ctypes.byref(self._one))
        return self._one.value

    def read_all(self) -> list[int]:
        """Every register of the batch, with one C call (64-bit registers only)."""
        from unicorn.unicorn_py3.unicorn import uclib

        ctypes.memset(self._vals, 0, 8 * self._n)  # segment registers fill 2 bytes
        status = uclib.uc_reg_read_batch(self._uch, self._regs, self._ptrs, self._n)
        if status:
            raise CpuError(f"register read failed (unicorn error {status})")
        return list(self._vals)


# --- the CPU ---------------------------------------------------------------------------


class Cpu:
    """A 64-bit Unicorn instance plus what the CPU does that Unicorn does not.

    >>> cpu = Cpu.create()           # doctest: +SKIP
    >>> cpu.rip                      # doctest: +SKIP
    0
    """

    def __init__(self, uc: Uc) -> None:
        self.uc = uc
        self.layout = calibrate()
        self._fast = RegBatch(uc, [x86.UC_X86_REG_RIP])
        self._batches: dict[tuple[str, ...], RegBatch] = {}
        self.full_snapshots = False

    @staticmethod
    def new_uc64() -> Uc:
        uc = Uc(UC_ARCH_X86, UC_MODE_64)
        uc.ctl_set_tlb_mode(UC_TLB_CPU)
        return uc

    # registers -----------------------------------------------------------------
    def reg(self, name: str) -> int:
        return self.uc.reg_read(getattr(x86, f"UC_X86_REG_{name.upper()}"))

    def regs(self, names: tuple[str, ...]) -> list[int]:
        """The 64-bit registers ``names`` (as :meth:`reg` names them), read with one C
        call: a debugger reads them all at every stop."""
        batch = self._batches.get(names)
        if batch is None:
            batch = self._batches[names] = RegBatch(
                self.uc, [getattr(x86, f"UC_X86_REG_{n.upper()}") for n in names])
        return batch.read_all()

    def set_reg(self, name: str, value: int) -> None:
        self.uc.reg_write(getattr(x86, f"UC_X86_REG_{name.upper()}"), value)

    @property
    def rip(self) -> int:
        return self._fast.read(x86.UC_X86_REG_RIP)

    @property
    def rflags(self) -> int:
        return self._fast.read(x86.UC_X86_REG_RFLAGS)

    def irqs_enabled(self) -> bool:
        return bool(self.rflags & RFLAGS_IF)

    # context modes ---------------------------------------------------------------
    def set_context_mode(self, full: bool) -> None:
        """Full = CPU + memory (copy-on-write snapshots); otherwise CPU only."""
        mode = ucc.UC_CTL_CONTEXT_CPU | (ucc.UC_CTL_CONTEXT_MEMORY if full else 0)
        self.uc.ctl(ucc.UC_CTL_CONTEXT_MODE, ucc.UC_CTL_IO_WRITE, ctypes.c_int(mode))
        self.full_snapshots = full

    def fault_cleanup(self) -> int:
        """Reset QEMU's ``old_exception`` after a fault; return the fault's error code."""
        full = self.full_snapshots
        if full:
            self.set_context_mode(False)
        try:
            ctx = self.uc.context_save()
            raw = bytearray(bytes(ctx))
            err = _i32(raw, self.layout.error_code) & 0xFFFFFFFF
            struct.pack_into("<i", raw, self.layout.old_exception, -1)
            buf = (ctypes.c_char * len(raw)).from_buffer(raw)
            ctypes.memmove(ctx.context, buf, len(raw))
            self.uc.context_restore(ctx)
        finally:
            if full:
                self.set_context_mode(True)
        return err

    # interrupt delivery ----------------------------------------------------------
    def deliver(self, vector: int, error_code: int | None, translate: Translate) -> int:
        """Enter the guest's handler for ``vector`` as the CPU would; returns the handler."""
        uc = self.uc
        _, idt_base, idt_limit, _ = uc.reg_read(x86.UC_X86_REG_IDTR)
        if vector * 16 + 15 > idt_limit:
            raise CpuError(f"vector {vector:#x} beyond the IDT limit {idt_limit:#x}: triple fault")
        gate = self._read_virt(idt_base + vector * 16, 16, translate)
        lo, sel, ist, typ, mid, hi, _ = struct.unpack("<HHBBHII", gate)
        if not typ & 0x80 or (typ & 0x0F) not in (0x0E, 0x0F):
            raise CpuError(f"IDT gate {vector:#x} is not a present 64-bit gate ({typ:#x}): "
                           "triple fault")
        handler = lo | (mid << 16) | (hi << 32)
        rsp = uc.reg_read(x86.UC_X86_REG_RSP)
        ss = uc.reg_read(x86.UC_X86_REG_SS)
        cs = uc.reg_read(x86.UC_X86_REG_CS)
        rflags = uc.reg_read(x86.UC_X86_REG_RFLAGS)
        rip = uc.reg_read(x86.UC_X86_REG_RIP)
        new_rsp = rsp
        if ist & 7:
            _, tss_base, _, _ = uc.reg_read(x86.UC_X86_REG_TR)
            new_rsp = struct.unpack("<Q", self._read_virt(tss_base + 0x24 + 8 * ((ist & 7) - 1),
                                                          8, translate))[0]
        new_rsp &= ~0xF
        frame = [ss, rsp, rflags, cs, rip]
        if error_code is not None:
            frame.append(error_code)
        new_rsp -= 8 * len(frame)
        data = struct.pack(f"<{len(frame)}Q", *reversed(frame))
        self._write_virt(new_rsp, data, translate)
        if (typ & 0x0F) == 0x0E:
            rflags &= ~RFLAGS_IF
        rflags &= ~(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF)
        uc.reg_write_batch([(x86.UC_X86_REG_RSP, new_rsp), (x86.UC_X86_REG_RFLAGS, rflags),
                            (x86.UC_X86_REG_CS, sel), (x86.UC_X86_REG_RIP, handler)])
        return handler

    def _read_virt(self, va: int, n: int, translate: Translate) -> bytes:
        out = b""
        while n:
            chunk = min(n, 0x1000 - (va & 0xFFF))
            out += bytes(self.uc.mem_read(translate(va, "read"), chunk))
            va, n = va + chunk, n - chunk
        return out

    def _write_virt(self, va: int, data: bytes, translate: Translate) -> None:
        while data:
            chunk = min(len(data), 0x1000 - (va & 0xFFF))
            self.uc.mem_write(translate(va, "write"), data[:chunk])
            va, data = va + chunk, data[chunk:]



# --- the host round trip in a few C calls ----------------------------------------------


class CallEntry:
    """Enters and leaves host calls with the fewest C calls the binding allows.

    ``Machine.call``'s common path (see ``Machine._call_fast``) is: load
    RSP/RIP/RFLAGS/RBP and the arguments, run, read the result register and RIP.
    The return address and quiet word on the call's stack are written only when
    :attr:`frame_ok` is false (the guest keeps them: entry.S), and a quiet end
    leaves the registers at idle by itself; otherwise :meth:`to_idle` puts
    RSP/RIP/RFLAGS back.  Through the Python binding each of those is a checked
    wrapper; here the ctypes arrays are built once and ``uc_emu_start`` is called
    directly (the binding's hook-exception protocol kept: :meth:`run` returns what
    a hook raised instead of raising it).
    """

    def __init__(self, uc: Uc, stack_pa: int, ret_addr: int, idle: tuple[int, int, int],
                 result_reg: int) -> None:

        self.uc = uc
        self._uch = uc._uch  # noqa: SLF001 - the documented C handle
        # unchecked C calls (see unchecked()): every argument a prebuilt ctypes object
        self._mem_write = unchecked("uc_mem_write")
        self._start = unchecked("uc_emu_start")
        self._stack_pa_c = ctypes.c_uint64(stack_pa)
        self._frame_size = ctypes.c_size_t(16)
        self._begin = ctypes.c_uint64()
        self._zero = ctypes.c_uint64(0)
        self._no_count = ctypes.c_size_t(0)
        self._stack_pa = stack_pa
        self._ret_addr = ret_addr
        self.enter_regs = RegBatch(uc, [x86.UC_X86_REG_RSP, x86.UC_X86_REG_RIP,
                                        x86.UC_X86_REG_RFLAGS, x86.UC_X86_REG_RBP,
                                        x86.UC_X86_REG_RDI, x86.UC_X86_REG_RSI,
                                        x86.UC_X86_REG_RDX, x86.UC_X86_REG_RCX,
                                        x86.UC_X86_REG_R8, x86.UC_X86_REG_R9])
        self._idle = RegBatch(uc, [x86.UC_X86_REG_RSP, x86.UC_X86_REG_RIP,
                                   x86.UC_X86_REG_RFLAGS])
        self._idle.write(list(idle))  # the values stay in its array: to_idle() just sends
        self._result_reg = result_reg
        self._read_batch = unchecked("uc_reg_read_batch")
        self._end_regs = (ctypes.c_int32 * 2)(result_reg, x86.UC_X86_REG_RIP)
        self._end_vals = (ctypes.c_uint64 * 2)()
        base = ctypes.addressof(self._end_vals)
        self._end_ptrs = (ctypes.c_void_p * 2)(base, base + 8)
        #: the word above the return address: KMEMU_CALL_QUIET (no port write at the end)
        #: or 0; set with :meth:`set_quiet_word` once the host knows the kernel has it
        self._frames = {q: ctypes.create_string_buffer(struct.pack("<QQ", ret_addr, q), 16)
                        for q in (0,)}
        self._quiet = 0
        #: the call's stack holds the quiet frame (return address, KMEMU_CALL_QUIET) as
        #: :meth:`push_return` wrote it: the owner clears this whenever anything but a
        #: quiet call's end may have run or written there (Machine: every other run,
        #: host writes, restore() to a snapshot taken without it)
        self.frame_ok = False

    def set_quiet_word(self, value: int) -> None:
        """Enable quiet ends (``value`` = KMEMU_CALL_QUIET) for :meth:`push_return`."""
        self._frames[value] = ctypes.create_string_buffer(
            struct.pack("<QQ", self._ret_addr, value), 16)
        self._quiet = value

    def push_return(self, quiet: bool) -> None:
        """The call's return address at the top of its stack, and above it the quiet
        word (0 unless ``quiet`` and enabled); :attr:`frame_ok` says whether the
        quiet frame is now there."""
        frame = self._frames[self._quiet if quiet else 0]
        self.frame_ok = False
        status = self._mem_write(self._uch, self._stack_pa_c, frame, self._frame_size)
        if status:
            raise CpuError(f"writing the call's return address failed (unicorn error {status})")
        self.frame_ok = bool(quiet and self._quiet)

    @property
    def quiet(self) -> bool:
        return bool(self._quiet)

    def result_and_rip(self) -> tuple[int, int]:
        """The result register and RIP, in one C call."""
        status = self._read_batch(self._uch, self._end_regs, self._end_ptrs, 2)
        if status:
            raise CpuError(f"register read failed (unicorn error {status})")
        return self._end_vals[0], self._end_vals[1]

    def run(self, begin: int) -> BaseException | None:
        """``emu_start(begin, 0)``: None, or the error (``UcError``, or what a hook raised)."""
        uc = self.uc
        uc._hook_exception = None  # noqa: SLF001 - the binding's protocol, see emu_start
        self._begin.value = begin
        zero = self._zero
        status = self._start(self._uch, self._begin, zero, zero, self._no_count)
        if status:
            return UcError(status)
        return uc._hook_exception  # noqa: SLF001

    def result(self) -> int:
        return self.enter_regs.read(self._result_reg)

    def to_idle(self) -> None:
        status = self._idle._fn(self._idle._uch, self._idle._regs, self._idle._ptrs, 3)  # noqa: SLF001
        if status:
            raise CpuError(f"register write failed (unicorn error {status})")


def _hook_failed(uc: Uc, e: BaseException) -> None:
    """The binding's protocol for an exception in a hook: keep the first, stop the run;
    ``emu_start`` raises it."""
    if uc._hook_exception is None:  # noqa: SLF001
        uc._hook_exception = e  # noqa: SLF001
    uc.emu_stop()


def _register_hook(uc: Uc, htype: int, fptr: object, begin: int, end: int,
                   *extra: ctypes.c_int) -> int:
    """``uc_hook_add`` of a ctypes callback made here, kept alive in the binding's own
    table so that ``uc.hook_del`` deletes it as any other hook."""
    from unicorn.unicorn_py3.unicorn import uc_hook_h, uclib

    handle = uc_hook_h()
    status = uclib.uc_hook_add(uc._uch, ctypes.byref(handle), htype, fptr,  # noqa: SLF001
                               ctypes.c_void_p(0), ctypes.c_uint64(begin), ctypes.c_uint64(end),
                               *extra)
    if status:
        raise UcError(status)
    uc._callbacks[handle.value] = fptr  # noqa: SLF001 - kept alive; hook_del drops it
    return handle.value


def add_out_hook(uc: Uc, callback: Callable[[Uc, int, int, int], None]) -> int:
    """``uc.hook_add(UC_HOOK_INSN, ..., UC_X86_INS_OUT)`` with one Python frame per
    ``out`` instead of the binding's three (every host call ends in one).  An
    exception in ``callback`` stops the run and is re-raised by ``emu_start``, as
    with the binding's hooks; ``uc.hook_del`` deletes it as any other hook."""
    from unicorn import UC_HOOK_INSN
    from unicorn.unicorn_py3.arch.intel import HOOK_INSN_OUT_CFUNC

    def on_out(_h: int, port: int, size: int, value: int, _key: int) -> None:
        try:
            callback(uc, port, size, value)
        except BaseException as e:  # noqa: BLE001 - the binding's protocol
            _hook_failed(uc, e)

    return _register_hook(uc, UC_HOOK_INSN, HOOK_INSN_OUT_CFUNC(on_out), 1, 0,
                          ctypes.c_int(x86.UC_X86_INS_OUT))


#: ``void cb(uc_engine *uc, uint64_t address, uint32_t size, void *user_data)``, with the
#: engine as a plain pointer (the binding's type makes a ctypes object per call)
_CODE_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32,
                               ctypes.c_void_p)


def add_code_hook(uc: Uc, htype: int, callback: Callable[[Uc, int, int, object], None],
                  begin: int = 1, end: int = 0) -> int:
    """``uc.hook_add(htype, callback, None, begin, end)`` for ``UC_HOOK_CODE`` or
    ``UC_HOOK_BLOCK`` with one Python frame per call instead of the binding's three
    (its exception guard, its unpacking, the callback).  The hooks that run per
    block or per instruction (the instruction counter, the interrupt timer) are
    called millions of times in a test run.  Same protocol as the binding: an
    exception stops the run and ``emu_start`` raises it; ``uc.hook_del`` deletes it.
    The caller flushes translated code if it must see blocks already translated."""
    from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE

    if htype not in (UC_HOOK_CODE, UC_HOOK_BLOCK):
        raise CpuError(f"add_code_hook takes UC_HOOK_CODE or UC_HOOK_BLOCK, not {htype}")

    def on_code(_h: int, address: int, size: int, _key: int) -> None:
        try:
            callback(uc, address, size, None)
        except BaseException as e:  # noqa: BLE001 - the binding's protocol
            _hook_failed(uc, e)

    return _register_hook(uc, htype, _CODE_CFUNC(on_code), begin, end)
