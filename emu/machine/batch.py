"""Layer 5: ``m.batch()``, many kernel calls in one guest entry.

The host writes the operations into the kernel's ring (``kmemu_batch_ring``,
``<kmemu/abi.h>``) and makes one ordinary call, ``kmemu_batch_run(n)``, whose
loop (kernel/host.c) runs them back to back in process context; the results
come back from the ring in one read.  What a batch saves is the host round
trip per operation, not guest work: each operation is the same C call the
kernel would make.

Every operation is checked as :meth:`Machine.call` checks its arguments
(function, argument count and each argument's C type) before anything runs;
a bad one raises that error, naming the operation's index, and nothing ran.
An oops in operation *i* stops the batch: :class:`BatchOops` (a
:class:`GuestOops`) says which operation and holds the results of the ones
before it.  A breakpoint or budget stop inside the batch stops it as it stops
any call (the suspended call is ``kmemu_batch_run``).

>>> ptrs = m.batch([("kmalloc", 64, 0xCC0)] * 100)          # doctest: +SKIP
>>> with m.batch() as b:                                    # doctest: +SKIP
...     for p in ptrs:
...         b.kfree(p)
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from emu.build.abi import define
from emu.core.errors import BadArgument, KmemuError, MachineError
from emu.kernel.gfp import parse as parse_gfp

if TYPE_CHECKING:
    from types import TracebackType

    from emu.machine.core import CallPlan, Machine


@dataclass(frozen=True)
class BatchOp:
    """One operation: a kernel function and its (already checked) arguments."""

    fn: str | int
    args: tuple[int, ...]

    def __str__(self) -> str:
        name = self.fn if isinstance(self.fn, str) else f"{self.fn:#x}"
        return f"{name}({', '.join(hex(a) if abs(a) >= 4096 else str(a) for a in self.args)})"


class Batch:
    """Operations collected for one :meth:`run`; as a context manager it runs them
    when the block ends without an exception (``results`` then holds the results)."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.ops: list[BatchOp] = []
        self._plans: list[tuple[CallPlan, list[int]]] = []
        self.results: list[int] | None = None

    def __len__(self) -> int:
        return len(self.ops)

    def call(self, fn: str | int, *args: int) -> int:
        """Add ``fn(*args)``; returns the operation's index in the results.  The
        arguments are checked now, as :meth:`Machine.call` would check them."""
        m, i = self.machine, len(self.ops)
        try:
            plan = m._call_plans.get((fn, len(args))) if type(fn) in (str, int) else None  # noqa: SLF001
            if plan is None:
                plan = m._call_plan(fn, args)  # noqa: SLF001
            vals = m._call_values(fn, plan, args)  # noqa: SLF001
        except KmemuError as e:
            e.args = (f"batch operation {i}: {e}",)
            raise
        self.ops.append(BatchOp(fn, tuple(args)))
        self._plans.append((plan, vals))
        return i

    def kmalloc(self, size: int, gfp: str | int = "GFP_KERNEL") -> int:
        return self.call("kmalloc", size, parse_gfp(gfp))

    def kzalloc(self, size: int, gfp: str | int = "GFP_KERNEL") -> int:
        return self.call("kzalloc", size, parse_gfp(gfp))

    def kfree(self, addr: int) -> int:
        return self.call("kfree", addr)

    def run(self) -> list[int]:
        """Run every operation, in order, in as few guest entries as the ring allows."""
        self.results = run_batch(self.machine, self.ops, self._plans)
        return self.results

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.run()


def _ring(m: Machine) -> tuple[int, int]:
    """(physical address, entries) of the kernel's ring, checked against abi.h."""
    entries, words = define("KMEMU_BATCH_RING"), define("KMEMU_BATCH_OP_WORDS")
    sym = m._syms().by_name.get("kmemu_batch_ring")  # noqa: SLF001
    if sym is None or sym.size != entries * words * 8:
        raise MachineError("the kernel's kmemu_batch_ring does not match <kmemu/abi.h> "
                           "(KMEMU_BATCH_RING x KMEMU_BATCH_OP_WORDS u64s)")
    return m._sym_pa("kmemu_batch_ring"), entries  # noqa: SLF001


def run_batch(m: Machine, ops: Sequence[BatchOp],
              plans: Sequence[tuple[CallPlan, list[int]]]) -> list[int]:
    """Run checked operations through the ring; see the module docstring."""
    from emu.machine.core import BatchOops, GuestOops

    m._require_ready()  # noqa: SLF001
    if not ops:
        return []
    ring_pa, entries = _ring(m)
    op_size = define("KMEMU_BATCH_OP_WORDS") * 8
    pack = struct.Struct(f"<{op_size // 8}Q").pack
    results: list[int] = []
    for start in range(0, len(ops), entries):
        chunk = plans[start : start + entries]
        m.write_phys(ring_pa, b"".join(pack(p.target, *vals, *(0,) * (6 - len(vals)), 0)
                                       for p, vals in chunk))
        try:
            m.call("kmemu_batch_run", len(chunk))
        except GuestOops as e:
            done = m.read_u64(m.symbol("kmemu_batch_done"))
            raw = m.read_phys(ring_pa, done * op_size)
            results += _results(raw, chunk[:done], op_size)
            i = start + done
            raise BatchOops(e, i, ops[i], results) from None
        results += _results(m.read_phys(ring_pa, len(chunk) * op_size), chunk, op_size)
    return results


def _results(raw: bytes, plans: Sequence[tuple[CallPlan, list[int]]], op_size: int
             ) -> list[int]:
    out = []
    for j, (p, _) in enumerate(plans):
        r = struct.unpack_from("<Q", raw, j * op_size + op_size - 8)[0]  # the op's ret
        out.append(r & p.mask if p.mask else r)
    return out


class BatchMixin:
    """``Machine.batch`` (mixed into :class:`emu.Machine`)."""

    def batch(self: Machine, ops: Iterable[Sequence[object]] | None = None,  # type: ignore[misc]
              ) -> Batch | list[int]:
        """``m.batch([(fn, *args), ...])`` runs the operations now and returns their
        results; ``with m.batch() as b: b.call(fn, *args)`` collects them and runs
        them when the block ends (``b.results``).  See :mod:`emu.machine.batch`."""
        b = Batch(self)
        if ops is None:
            return b
        if isinstance(ops, (str, bytes)) or not isinstance(ops, Iterable):
            raise BadArgument(f"batch() takes a list of (function, *args) operations, "
                              f"got {type(ops).__name__}")
        for i, op in enumerate(ops):
            if not isinstance(op, (tuple, list)) or not op:
                raise BadArgument(f"batch operation {i} must be a (function, *args) tuple, "
                                  f"got {op!r}")
            b.call(*op)  # type: ignore[arg-type]
        return b.run()
