"""Layer 5: Linux's fault injection from Python (mixed into :class:`emu.Machine`).

>>> m.failslab(probability=100, interval=1, times=3, verbose=1)   # doctest: +SKIP
{'probability': 100, 'interval': 1, 'times': 3, ...}
>>> nth = m.fail_nth(2)          # the 2nd counted allocation from now fails
>>> m.call("mydev_create", 4)    # doctest: +SKIP
>>> nth.fired                    # doctest: +SKIP
True

The attributes are the kernel's ``struct fault_attr`` (kernel/fault_inject.c),
one u64 slot each, in the order ``fault_attr_names`` gives: Linux's debugfs
files with ``-`` made ``_``.  The sweeps (:mod:`emu.check.failures`) use the same
counting state (``fault_state``) as ``fail_nth``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from emu.core.errors import BadArgument

if TYPE_CHECKING:
    from emu.machine.core import Machine

#: Attributes only one of the two has (Linux: fail_page_alloc's own debugfs files).
_ONLY_PAGE = {"ignore_gfp_highmem", "min_order"}
#: Signed in Linux (atomic_t); the rest are unsigned long / bool.
_SIGNED = {"times", "space"}
_BOOL = {"task_filter", "ignore_gfp_wait", "ignore_gfp_highmem"}
_ADDRESS = {"require_start", "require_end", "reject_start", "reject_end"}
_STACK_MAX = 32  # Linux's MAX_STACK_TRACE_DEPTH: stacktrace_depth is clamped to it
U64 = (1 << 64) - 1


@dataclass(frozen=True)
class FaultLayout:
    """Where the kernel keeps the fault-injection state (``fault_host_layout``)."""

    names: tuple[str, ...]  # struct fault_attr's slots, in order
    record_size: int
    trace_depth: int
    log_max: int
    fail_max: int
    fail_at: int  # offsetof(struct fault_state, fail_at)
    nr_records: int  # offsetof(struct fault_state, nr_records)


def fault_layout(m: Machine) -> FaultLayout:
    cached = getattr(m, "_fault_layout", None)
    if cached is not None:
        return cached
    raw = m.read_virt(m.symbol("fault_attr_names"), 512)
    names = tuple(n.decode() for n in raw.split(b"\0\0", 1)[0].split(b"\0"))
    vals = struct.unpack("<6Q", m.read_virt(m.symbol("fault_host_layout"), 48))
    lay = FaultLayout(names, *vals)
    m._fault_layout = lay  # type: ignore[attr-defined]  # noqa: SLF001
    return lay


def _check_value(attr: str, name: str, value: object) -> int:
    if isinstance(value, bool):
        if name not in _BOOL:
            raise BadArgument(f"{attr}: {name} takes a number, got {value!r}")
        return int(value)
    if not isinstance(value, int):
        raise BadArgument(f"{attr}: {name} must be an int, got {type(value).__name__}")
    if name in _BOOL and value not in (0, 1):
        raise BadArgument(f"{attr}: {name} is a boolean (0 or 1), got {value}")
    if name in _SIGNED:
        if not -(1 << 31) <= value < (1 << 31):
            raise BadArgument(f"{attr}: {name} is an int (-1 for no limit), got {value}")
        return value & U64
    if not 0 <= value <= U64:
        raise BadArgument(f"{attr}: {name} must be 0..2**64-1, got {value}")
    return min(value, _STACK_MAX) if name == "stacktrace_depth" else value


class FailNth:
    """An armed ``fail_nth(n)``: ``fired`` says whether the n-th allocation failed."""

    def __init__(self, m: Machine, n: int) -> None:
        self._m = m
        self.n = n

    @property
    def fired(self) -> bool:
        st = self._m._fault_state()  # noqa: SLF001
        return st[2 + fault_layout(self._m).fail_max] > 0

    def __repr__(self) -> str:
        return f"<fail_nth {self.n}: {'fired' if self.fired else 'not fired'}>"


class FaultInjectionMixin:
    def _fault_attr(self: Machine, which: str, attrs: dict[str, object]) -> dict[str, int]:
        lay = fault_layout(self)
        base = self.symbol(which)
        names = [n for n in lay.names if which == "fail_page_alloc" or n not in _ONLY_PAGE]
        for name, value in attrs.items():
            if name not in names:
                raise BadArgument(f"{which} has no attribute {name!r}; it has "
                                  f"{', '.join(names)}")
            v = _check_value(which, name, value)
            self.write_virt(base + 8 * lay.names.index(name), struct.pack("<Q", v))
        raw = struct.unpack(f"<{len(lay.names)}Q", self.read_virt(base, 8 * len(lay.names)))
        out = {}
        for name, v in zip(lay.names, raw, strict=True):
            if name in names:
                out[name] = v - (1 << 64) if name in _SIGNED and v >> 63 else v
        self._fault_update_active()
        return out

    def failslab(self: Machine, **attrs: object) -> dict[str, int]:
        """Set failslab's attributes (Linux's debugfs names with ``_``: ``probability``,
        ``interval``, ``times``, ``space``, ``verbose``, ``task_filter``,
        ``stacktrace_depth``, ``require_start``/``require_end``/``reject_start``/
        ``reject_end``, ``ignore_gfp_wait``) and return all of them."""
        return self._fault_attr("failslab", attrs)

    def fail_page_alloc(self: Machine, **attrs: object) -> dict[str, int]:
        """As :meth:`failslab`, plus ``ignore_gfp_highmem`` and ``min_order``."""
        return self._fault_attr("fail_page_alloc", attrs)

    def _fault_state(self: Machine) -> tuple[int, ...]:
        lay = fault_layout(self)
        n = lay.nr_records // 8 + 2
        return struct.unpack(f"<{n}Q", self.read_virt(self.symbol("fault_state"), 8 * n))

    def _fault_arm(self: Machine, fail_at: tuple[int, ...], recording: bool) -> None:
        """Counting from zero: fail the counted allocations ``fail_at`` (from 1)."""
        lay = fault_layout(self)
        if len(fail_at) > lay.fail_max:
            raise BadArgument(f"at most {lay.fail_max} allocations can be made to fail at once")
        slots = list(fail_at) + [0] * (lay.fail_max - len(fail_at))
        raw = struct.pack(f"<Q{lay.fail_max}QQQQQQ", 0, *slots, len(fail_at), 0, int(recording),
                          0, 0)
        self.write_virt(self.symbol("fault_state"), raw)
        self._fault_update_active()

    def _fault_update_active(self: Machine) -> None:
        """fault_inject_active: any attribute with a probability, or counting armed."""
        lay = fault_layout(self)
        prob = lay.names.index("probability") * 8
        on = any(self.read_u64(self.symbol(a) + prob) for a in ("failslab", "fail_page_alloc"))
        st = self._fault_state()
        on = on or bool(st[1 + lay.fail_max]) or bool(st[3 + lay.fail_max])
        if bool(self.read_virt(self.symbol("fault_inject_active"), 1)[0]) != on:
            self.call("fault_inject_set_active", int(on))

    def fail_nth(self: Machine, n: int | None = None) -> FailNth | int:
        """``/proc/thread-self/fail-nth``: ``fail_nth(n)`` makes the n-th allocation (slab,
        kmalloc, page or vmalloc, counted from 1, task context) from now on fail and
        returns a handle whose ``fired`` says whether it did; ``fail_nth(0)`` disarms.
        ``fail_nth()`` reads the file: the allocations still to go, 0 once it fired."""
        if n is None:
            lay = fault_layout(self)
            st = self._fault_state()
            seq, nr, fired = st[0], st[1 + lay.fail_max], st[2 + lay.fail_max]
            return 0 if fired or not nr else st[1] - seq
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < (1 << 31):
            raise BadArgument(f"fail_nth takes a count of allocations (0 disarms), got {n!r}")
        self._fault_arm((n,) if n else (), recording=False)
        return FailNth(self, n)

    def sweep_failures(self: Machine, fn: str | int, *args: int, **kw: object):  # -> FailureSweep
        """Fail every allocation ``fn(*args)`` makes, one run each, and judge each run:
        see :func:`emu.check.failures.sweep_failures` (``context``, ``roots``,
        ``failure``, ``validate``, ``budget_seconds``, ``points``)."""
        from emu.check.failures import sweep_failures
        return sweep_failures(self, fn, *args, **kw)  # type: ignore[arg-type]

    def sweep_irqs(self: Machine, fn: str | int, *args: int, handler: int, **kw: object):
        """Raise interrupt ``handler`` at every instruction of ``fn(*args)``, one run
        each: see :func:`emu.check.irqs.sweep_irqs` (``context``, ``check``,
        ``validate``, ``points``).  Returns an :class:`emu.check.irqs.IrqSweep`."""
        from emu.check.irqs import sweep_irqs
        return sweep_irqs(self, fn, *args, handler=handler, **kw)  # type: ignore[arg-type]
