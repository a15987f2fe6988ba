"""gdb's ``x`` and ``info registers`` output, from a memory reader and a register dict.

Layer 6 (``emu.frontend.debugger``).  Pure formatting: the REPL passes ``read(va, n)``
(``Machine.read_virt``) and ``where(addr)`` (``"kmalloc+25"`` or None), so
these functions are tested without a machine.

>>> lines = []
>>> examine(lambda a, n: bytes(range(n)), 0x1000, 4, "x", "w", lambda a: None, lines.append)
4112
>>> lines
['0x1000:\\t0x03020100\\t0x07060504\\t0x0b0a0908\\t0x0f0e0d0c']
"""

from __future__ import annotations

from collections.abc import Callable

from emu.core.errors import BadArgument, KmemuError
from emu.kernel.gdbvalue import char_text, eflags_text, formatted_int

UNIT = {"b": 1, "h": 2, "w": 4, "g": 8}
PER_LINE = {"b": 8, "h": 8, "w": 4, "g": 2}
MAX_STRING = 200  # gdb's "print elements"
PAGE = 4096

Read = Callable[[int, int], bytes]
Where = Callable[[int], "str | None"]
Emit = Callable[[str], None]


class AccessError(KmemuError):
    """An address (or part of a range) that cannot be read."""


def unit_size(fmt: str, size: str | None, last_size: str) -> str:
    """The unit for ``x/FMT``: as given, else 8 bytes for ``a``, 1 for ``c``/``s``,
    else the last one used (gdb's rule)."""
    if size is not None:
        return size
    if fmt == "a":
        return "g"
    if fmt in "cs":
        return "b"
    return last_size


def format_unit(value: int, fmt: str, size: int, where: Where) -> str:
    """One ``size``-byte unit (unsigned ``value``) in gdb's ``x`` format ``fmt``: print's
    formats (:func:`emu.kernel.gdbvalue.formatted_int`), hex and binary padded to the
    unit and ``c`` a signed char, as gdb's ``x`` shows them."""
    if fmt not in "xzduotca" or len(fmt) != 1:
        raise BadArgument(f"x: format {fmt!r} is not a unit format")
    return formatted_int(value, size, fmt, where, signed=True, pad=True)


def label(addr: int, where: Where) -> str:
    name = where(addr)
    return f"{addr:#x} <{name}>:" if name else f"{addr:#x}:"


def _read(read: Read, addr: int, n: int) -> bytes:
    try:
        return read(addr, n)
    except KmemuError as e:
        raise AccessError(f"Cannot access memory at address {addr:#x} "  # gdb's, then why
                           f"({str(e).splitlines()[0]})") from None


def examine(read: Read, addr: int, count: int, fmt: str, size: str, where: Where,
            emit: Emit) -> int:
    """``x/COUNT FMT SIZE ADDR`` for the unit formats (x d u o t a c z) and ``s``:
    emits the lines, returns the address after the last unit (where a bare ``x``
    goes on).  Lines read before an unreadable address are emitted, then
    :class:`AccessError` is raised."""
    if fmt == "s":
        return examine_strings(read, addr, count, where, emit)
    n = UNIT[size]
    per = PER_LINE[size] if fmt not in "a" else 2
    done = 0
    while done < count:
        k = min(per, count - done)
        line_addr = (addr + done * n) & ((1 << 64) - 1)
        data = _read(read, line_addr, k * n)
        vals = [int.from_bytes(data[i * n:(i + 1) * n], "little") for i in range(k)]
        emit(label(line_addr, where) + "\t"
             + "\t".join(format_unit(v, fmt, n, where) for v in vals))
        done += k
    return (addr + count * n) & ((1 << 64) - 1)


def examine_strings(read: Read, addr: int, count: int, where: Where, emit: Emit) -> int:
    """``x/s``: ``count`` NUL-terminated strings (at most 200 characters shown each)."""
    for _ in range(count):
        start, out = addr, bytearray()
        while True:
            chunk = _read(read, addr, min(PAGE - addr % PAGE, 64))
            nul = chunk.find(b"\0")
            if nul >= 0:
                out += chunk[:nul]
                addr += nul + 1
                break
            out += chunk
            addr += len(chunk)
            if len(out) >= MAX_STRING:
                break
        text = "".join(char_text(b, '"') for b in out[:MAX_STRING])
        more = "..." if len(out) > MAX_STRING or nul < 0 else ""
        emit(f"{label(start, where)}\t\"{text}\"{more}")
    return addr


def read_code(read: Read, addr: int, n: int) -> bytes:
    """Up to ``n`` bytes at ``addr``, stopping at the first unreadable page (at least one
    byte, else :class:`AccessError`)."""
    out = b""
    while len(out) < n:
        a = addr + len(out)
        k = min(n - len(out), PAGE - a % PAGE)
        try:
            out += read(a, k)
        except KmemuError:
            if not out:
                _read(read, a, k)  # raises with the reason
            break
    return out


# ------------------------------------------------------------------------- registers

REGISTERS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
             "r12", "r13", "r14", "r15", "rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs",
             "fs_base", "gs_base", "cr0", "cr2", "cr3", "cr4")
ALIASES = {"rflags": "eflags", "pc": "rip", "sp": "rsp", "fp": "rbp"}
#: QEMU's gdb target description names these control-register bits (gdb prints the
#: fields in the description's order, highest first); kmemu's stub sends no CRs
_CR_FLAGS = {"cr0": ((31, "PG"), (30, "CD"), (29, "NW"), (18, "AM"), (16, "WP"), (5, "NE"),
                     (4, "ET"), (3, "TS"), (2, "EM"), (1, "MP"), (0, "PE")),
             "cr4": ((22, "PKE"), (21, "SMAP"), (20, "SMEP"), (18, "OSXSAVE"), (17, "PCIDE"),
                     (16, "FSGSBASE"), (14, "SMXE"), (13, "VMXE"), (12, "LA57"), (11, "UMIP"),
                     (10, "OSXMMEXCPT"), (9, "OSFXSR"), (8, "PCE"), (7, "PGE"), (6, "MCE"),
                     (5, "PAE"), (4, "PSE"), (3, "DE"), (2, "TSD"), (1, "PVI"), (0, "VME"))}


def format_flags(value: int) -> str:
    """``[ PF ZF IF ]`` (gdb's eflags)."""
    return eflags_text(value)


def _cr_text(name: str, v: int) -> str:
    """A control register as gdb shows it on QEMU: ``[ PG WP ET PE ]``, cr3's
    ``[ PDBR=65503 PCID=0 ]``, cr2 in decimal."""
    if name == "cr3":
        return f"[ PDBR={v >> 12} PCID={v & 0xFFF} ]"
    bits = _CR_FLAGS.get(name)
    if bits is None:
        return str(v)
    return "[ " + "".join(f"{n} " for bit, n in bits if v >> bit & 1) + "]"


def format_registers(regs: dict[str, int], names: tuple[str, ...], where: Where) -> str:
    """gdb's ``info registers [REG...]``: name, hex, natural value (a symbol for rip,
    flags for eflags, hex for the stack registers, signed decimal for the rest)."""
    want = []
    for raw in names or REGISTERS:
        name = ALIASES.get(raw, raw)
        if name not in REGISTERS:
            raise BadArgument(f"invalid register {raw!r} (known: {' '.join(REGISTERS)})")
        want.append(name)
    rows = []
    for name in want:
        key = "rflags" if name == "eflags" else name
        if key not in regs:  # above frame 0 only callee-saved registers are known
            rows.append(f"{name:<15}<not saved>")
            continue
        v = regs[key]
        if name == "rip":
            w = where(v)
            natural = f"{v:#x} <{w}>" if w else f"{v:#x}"
        elif name == "eflags":
            natural = format_flags(v)
        elif name in ("rsp", "rbp"):
            natural = f"{v:#x}"
        elif name.startswith("cr"):
            natural = _cr_text(name, v)
        else:
            natural = str(v - (1 << 64) if v >> 63 else v)
        rows.append(f"{name:<15}{v:<#19x} {natural}")  # gdb's columns: 15, then 20
    return "\n".join(rows)
