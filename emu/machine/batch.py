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

    from emu.machine.core import Machine


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
    when the block ends without an exception (``results`` then holds the results).

    Each operation is kept as the ring will hold it (function address, six argument
    words, a result word: ``_words``, flat) and as given (``_given``, for
    :attr:`ops` and :class:`BatchOops`), so running a batch is one ``struct.pack``
    per ring, one write, one call and one read (see ARCHITECTURE.md)."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self._given: list[tuple[str | int, tuple[int, ...]]] = []
        self._words: list[int] = []  # KMEMU_BATCH_OP_WORDS per operation
        self._masks: list[int] = []  # each operation's result mask (0: all 64 bits)
        self.results: list[int] | None = None

    def __len__(self) -> int:
        return len(self._given)

    @property
    def ops(self) -> list[BatchOp]:
        """The operations, in order."""
        return [BatchOp(fn, args) for fn, args in self._given]

    def call(self, fn: str | int, *args: int) -> int:
        """Add ``fn(*args)``; returns the operation's index in the results.  The
        arguments are checked now, as :meth:`Machine.call` would check them."""
        m, i = self.machine, len(self._given)
        plan = m._call_plans.get((fn, len(args))) if type(fn) in (str, int) else None  # noqa: SLF001
        if plan is not None:  # the common case: plain ints within the plan's bounds
            for a, (lo, hi) in zip(args, plan.bounds, strict=False):
                if type(a) is not int or not lo <= a <= hi or a < 0:  # < 0: made u64 below
                    break
            else:
                self._given.append((fn, args))
                self._words += (plan.target, *args, *_ZEROS[len(args):])  # zeros, then ret
                self._masks.append(plan.mask)
                return i
        try:
            if plan is None:
                plan = m._call_plan(fn, args)  # noqa: SLF001
            vals = m._call_values(fn, plan, args)  # noqa: SLF001
        except KmemuError as e:
            e.args = (f"batch operation {i}: {e}",)
            raise
        self._given.append((fn, tuple(args)))
        self._words += (plan.target, *vals, *_ZEROS[len(vals):])
        self._masks.append(plan.mask)
        return i

    def kmalloc(self, size: int, gfp: str | int = "GFP_KERNEL") -> int:
        return self.call("kmalloc", size, parse_gfp(gfp))

    def kzalloc(self, size: int, gfp: str | int = "GFP_KERNEL") -> int:
        return self.call("kzalloc", size, parse_gfp(gfp))

    def kfree(self, addr: int) -> int:
        return self.call("kfree", addr)

    def run(self) -> list[int]:
        """Run every operation, in order, in as few guest entries as the ring allows."""
        self.results = run_batch(self.machine, self._given, self._words, self._masks)
        return self.results

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.run()


_ZEROS = (0,) * 7  # an operation's unused argument words and its result word


def _ring(m: Machine) -> tuple[int, int]:
    """(physical address, entries) of the kernel's ring, checked against abi.h."""
    entries, words = define("KMEMU_BATCH_RING"), define("KMEMU_BATCH_OP_WORDS")
    sym = m._syms().by_name.get("kmemu_batch_ring")  # noqa: SLF001
    if sym is None or sym.size != entries * words * 8 or words != 8:  # fn, 6 args, ret
        raise MachineError("the kernel's kmemu_batch_ring does not match <kmemu/abi.h> "
                           "(KMEMU_BATCH_RING x KMEMU_BATCH_OP_WORDS u64s)")
    return m._sym_pa("kmemu_batch_ring"), entries  # noqa: SLF001


def run_batch(m: Machine, given: Sequence[tuple[str | int, tuple[int, ...]]],
              words: Sequence[int], masks: Sequence[int]) -> list[int]:
    """Run checked operations through the ring; see the module docstring.  ``words``:
    the ring's eight u64s per operation; ``masks``: each result's mask (0: none)."""
    from emu.machine.core import BatchOops, GuestOops

    m._require_ready()  # noqa: SLF001
    if not given:
        return []
    ring_pa, entries = _ring(m)
    results: list[int] = []
    for start in range(0, len(given), entries):
        n = min(entries, len(given) - start)
        m.write_phys(ring_pa, struct.pack(f"<{8 * n}Q", *words[8 * start: 8 * (start + n)]))
        try:
            m.call("kmemu_batch_run", n)
        except GuestOops as e:
            done = m.read_u64(m.symbol("kmemu_batch_done"))
            results += _results(m.read_phys(ring_pa, done * 64), masks[start:start + done])
            i = start + done
            raise BatchOops(e, i, BatchOp(*given[i]), results) from None
        results += _results(m.read_phys(ring_pa, n * 64), masks[start:start + n])
    return results


def _results(raw: bytes, masks: Sequence[int]) -> list[int]:
    """Each operation's ret word (the last of its eight), masked as call() masks."""
    out = list(struct.unpack(f"<{len(raw) // 8}Q", raw)[7::8])
    if any(masks):
        out = [r & k if k else r for r, k in zip(out, masks, strict=True)]
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
