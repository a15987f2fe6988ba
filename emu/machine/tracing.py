"""Layer 5: Linux's trace events from Python (``m.tracing``, mixed into :class:`emu.Machine`).

>>> m.tracing.enable("kmem:kmalloc", "kmem:kfree")      # doctest: +SKIP
['kmem:kmalloc', 'kmem:kfree']
>>> p = m.kmalloc(64); m.kfree(p)                         # doctest: +SKIP
>>> print(m.tracing.read())                               # doctest: +SKIP
# tracer: nop
...
          <idle>-0       [000] .....     1.234567: kmalloc: call_site=... ptr=...

The kernel writes binary records to its ring buffer (kernel/trace/); this
module reads the buffer from guest memory and formats it with
:mod:`emu.kernel.trace_events`, as Linux's ``trace`` file does at read time.
Switches go through kernel functions (``trace_event_set`` flips the event's
static key through text_poke), so a snapshot restores them with the rest.

Clocks (``trace_clock=`` / :attr:`Tracing.clock`): ``local`` (the default),
``global``, ``mono`` and ``boot`` are the host's monotonic nanoseconds since the
Machine was made (wall time, like sched_clock: not reproducible); ``counter``
is guest instructions run so far (deterministic: the same requests give the
same numbers on every run), printed raw as Linux prints its counter clock.
"""

from __future__ import annotations

import ctypes
import fnmatch
import struct
import time
from typing import TYPE_CHECKING

from emu.core.errors import BadArgument, KmemuError
from emu.kernel import trace_events as te

if TYPE_CHECKING:
    from emu.machine.core import Machine

PAGE_SIZE = 4096


class TraceError(KmemuError):
    """A tracing request the kernel refused (no memory for the buffer, bad size)."""


def cmdline_value(cmdline: str, key: str) -> str | None:
    """The value of the first ``key=value`` word, as the kernel's cmdline_find reads it."""
    for word in cmdline.split():
        if word == key:
            return ""
        if word.startswith(key + "="):
            return word[len(key) + 1:]
    return None


class Tracing:
    """``m.tracing``: the kmem/vmalloc events, their buffer, clock and options."""

    def __init__(self, m: Machine) -> None:
        self._m = m
        #: Linux's hash-ptr option: %p hashed in the text (on by default, as 6.1)
        self.hash_ptr = cmdline_value(m.cmdline, "no_hash_pointers") is None
        self._counter_held = False

    # ------------------------------------------------------------ events
    @property
    def available_events(self) -> list[str]:
        """Linux's ``available_events``: ``system:event`` for every event."""
        return list(te.by_name())

    @property
    def enabled_events(self) -> list[str]:
        """Linux's ``set_event``: the events that are on."""
        keys = {k.name: k.enabled for k in self._m.static_keys()}
        return [n for n in te.by_name() if keys.get(f"__tracepoint_{n.split(':')[1]}")]

    def _match(self, patterns: tuple[str, ...]) -> list[te.EventDef]:
        if not patterns:
            raise BadArgument("name at least one event, e.g. 'kmem:kmalloc' or 'kmem:*'")
        out: dict[str, te.EventDef] = {}
        for pat in patterns:
            if not isinstance(pat, str) or not pat.strip():
                raise BadArgument(f"an event pattern must be a non-empty str, got {pat!r}")
            hits = [e for n, e in te.by_name().items() if _matches(pat.strip(), e)]
            if not hits:
                raise BadArgument(f"no trace event matches {pat!r} (available: "
                                  f"{', '.join(self.available_events)})")
            out.update((e.full_name, e) for e in hits)
        return list(out.values())

    def _set(self, patterns: tuple[str, ...], on: int) -> list[str]:
        done = []
        for ev in self._match(patterns):
            r = self._m.call("trace_event_set", ev.id, on)
            if r:
                raise TraceError(f"enabling {ev.full_name} failed: {_errno(r)} "
                                 "(the ring buffer could not be allocated)")
            done.append(ev.full_name)
        return done

    def enable(self, *patterns: str) -> list[str]:
        """Turn events on: ``"kmem:kmalloc"``, ``"kmem:*"``, ``"kmem"``, ``"*:*"`` or
        any fnmatch glob over ``system:event``; returns the events matched."""
        return self._set(patterns, 1)

    def disable(self, *patterns: str) -> list[str]:
        """Turn events off (all of them with no argument)."""
        return self._set(patterns or ("*:*",), 0)

    # ------------------------------------------------------------ buffer
    def clear(self) -> None:
        """Empty the buffer and its counts (Linux: ``echo > trace``)."""
        self._m.call("tracing_reset")

    @property
    def buffer_size_kb(self) -> int:
        """Linux's ``buffer_size_kb``; setting it makes a new, empty buffer."""
        return self._ring()["size"] >> 10

    @buffer_size_kb.setter
    def buffer_size_kb(self, kb: int) -> None:
        if isinstance(kb, bool) or not isinstance(kb, int) or not 1 <= kb <= 1 << 22:
            raise BadArgument(f"buffer_size_kb must be an int from 1 to {1 << 22}, got {kb!r}")
        r = self._m.call("tracing_resize", kb << 10)
        if r:
            raise TraceError(f"resizing the trace buffer to {kb} kB failed: {_errno(r)}")

    @property
    def overwrite(self) -> bool:
        """Linux's ``overwrite`` option: a full buffer drops its oldest events (default)
        rather than the new ones."""
        return bool(self._ring()["overwrite"])

    @overwrite.setter
    def overwrite(self, on: bool) -> None:
        if not isinstance(on, bool):
            raise BadArgument(f"overwrite must be True or False, got {on!r}")
        self._write_field("overwrite", "<I", int(on))

    @property
    def clock(self) -> str:
        """``trace_clock``: local, global, counter, mono or boot."""
        cid = self._ring()["clock"]
        return next(n for n, (i, _) in te.CLOCKS.items() if i == cid)

    @clock.setter
    def clock(self, name: str) -> None:
        if name not in te.CLOCKS:
            raise BadArgument(f"unknown trace clock {name!r} (available: {', '.join(te.CLOCKS)})")
        if name == "counter" and not self._counter_held:
            self._m._insn_counter().acquire()
            self._counter_held = True
        self._m.call("trace_set_clock", te.CLOCKS[name][0])
        if name != "counter" and self._counter_held:
            self._m._insn_counter().release()
            self._counter_held = False

    def stats(self) -> dict[str, int]:
        """Linux's ``per_cpu/cpu0/stats`` numbers: entries, overrun, dropped, read,
        and written (entries + overrun, the header's second number)."""
        r = self._ring()
        return {"entries": r["entries"], "overrun": r["overrun"], "dropped": r["dropped"],
                "read": r["read"], "written": r["entries"] + r["overrun"]}

    # ------------------------------------------------------------ reading
    def events(self) -> list[te.TraceRecord]:
        """The records in the buffer, oldest first (not consumed)."""
        return list(self._records(self._ring()))

    def read(self) -> str:
        """The ``trace`` file: header and one line per event, oldest first."""
        r = self._ring()
        recs = list(self._records(r))
        ctx, in_ns = self._ctx(), te.CLOCKS[self.clock][1]
        lines = [te.format_line(x, ctx, in_ns) for x in recs]
        head = te.format_header(r["entries"], r["entries"] + r["overrun"])
        return head + "".join(line + "\n" for line in lines)

    def read_pipe(self) -> str:
        """``trace_pipe``: the lines not read before, consumed; a ``CPU:0 [LOST N
        EVENTS]`` line first when the writer overwrote unread events."""
        r = self._ring()
        recs = list(self._records(r))
        ctx, in_ns = self._ctx(), te.CLOCKS[self.clock][1]
        out = [te.lost_line(r["lost_unread"])] if r["lost_unread"] and recs else []
        out += [te.format_line(x, ctx, in_ns) for x in recs]
        self._consume(r, len(recs))
        return "".join(line + "\n" for line in out)

    # ------------------------------------------------------------ guest memory
    def _ctx(self) -> te.Ctx:
        return te.Ctx(self._m.symbolize, te.hash_pointer if self.hash_ptr else te.raw_pointer)

    def _ring(self) -> dict[str, int]:
        obj = self._m.var("trace_ring")
        return {name: int(obj.member_(name)) for name in _RING_FIELDS}

    def _write_field(self, name: str, fmt: str, value: int) -> None:
        import drgn
        addr = self._m.var("trace_ring").address_ + drgn.offsetof(
            self._m.kernel_program.type("struct trace_ring"), name)
        self._m.write_virt(addr, struct.pack(fmt, value))

    def _pages_in_order(self, r: dict[str, int]) -> list[int]:
        """Indexes of the pages holding records, oldest first."""
        if not r["pages"] or not r["nr_pages"]:
            return []
        n, i, out = r["nr_pages"], r["head"], []
        while True:
            out.append(i)
            if i == r["tail"]:
                return out
            i = (i + 1) % n

    def _records(self, r: dict[str, int]):  # -> Iterator[TraceRecord]
        first = True
        for i in self._pages_in_order(r):
            page = self._m.read_virt(r["pages"] + i * PAGE_SIZE, PAGE_SIZE)
            recs = te.decode_records(page)
            skip = r["read_entries"] if first else 0
            first = False
            for k, rec in enumerate(recs):
                if k >= skip:
                    yield rec

    def _consume(self, r: dict[str, int], n: int) -> None:
        """Advance the reader past n records: head/read_off/read_entries, read, entries."""
        if not n:  # nothing to take: a loss stays to be reported with the next records
            return
        tail, head = r["tail"], r["tail"]
        page = self._m.read_virt(r["pages"] + tail * PAGE_SIZE, PAGE_SIZE)
        _, commit, entries = struct.unpack_from("<QII", page, 0)
        for name, fmt, value in (("head", "<I", head), ("read_off", "<I", commit),
                                 ("read_entries", "<I", entries), ("read", "<Q", r["read"] + n),
                                 ("entries", "<Q", r["entries"] - n), ("lost_unread", "<Q", 0)):
            self._write_field(name, fmt, value)


_RING_FIELDS = ("pages", "nr_pages", "head", "tail", "read_off", "read_entries", "entries",
                "overrun", "dropped", "read", "lost_unread", "size", "overwrite", "clock",
                "nr_enabled")


def _matches(pat: str, ev: te.EventDef) -> bool:
    """Linux's set_event words ("sys:ev", "sys:", "sys", "ev", "*:*") and fnmatch globs."""
    if ":" not in pat:
        return pat in (ev.system, ev.name) or fnmatch.fnmatchcase(ev.name, pat)
    sys, name = pat.split(":", 1)
    return fnmatch.fnmatchcase(ev.system, sys or "*") and fnmatch.fnmatchcase(ev.name, name or "*")


def _errno(r: int) -> str:
    v = r - (1 << 32) if r >> 31 and r < 1 << 32 else r - (1 << 64) if r >> 63 else r
    return {-12: "-ENOMEM", -22: "-EINVAL"}.get(v, str(v))


class TracingMixin:
    """``m.tracing`` and the host's side of the trace clock port."""

    _tracing: Tracing | None = None
    _trace_clock_hi = 0
    _trace_clock_pa = 0
    _trace_clock_buf: ctypes.c_uint32 | None = None

    @property
    def tracing(self) -> Tracing:
        """The trace events (Linux's tracefs ``events/``, ``trace``, ``trace_pipe``)."""
        if self._tracing is None:
            self._tracing = Tracing(self)  # type: ignore[arg-type]
        return self._tracing

    def _trace_clock_in(self, uc, hi: bool) -> int:  # noqa: ANN001 - a Unicorn instance
        """Port KMEMU_PORT_TRACE_CLOCK (low half, latching the high) / _HI."""
        if hi:
            return self._trace_clock_hi
        if not self._trace_clock_pa:
            import drgn
            m: Machine = self  # type: ignore[assignment]
            self._trace_clock_pa = m._sym_pa("trace_ring") + drgn.offsetof(
                m.kernel_program.type("struct trace_ring"), "clock")
        # trace_ring.clock through Unicorn's C API into a reused buffer: the binding's
        # mem_read allocates per call (~20 us, twice the rest of the event's cost)
        from unicorn.unicorn_py3.unicorn import uclib
        if self._trace_clock_buf is None:
            self._trace_clock_buf = ctypes.c_uint32()
        uclib.uc_mem_read(uc._uch, self._trace_clock_pa,  # noqa: SLF001 - the C handle
                          ctypes.cast(ctypes.byref(self._trace_clock_buf), ctypes.c_char_p), 4)
        cid = self._trace_clock_buf.value
        if cid == te.CLOCKS["counter"][0]:
            v = self._insn_counter().count  # type: ignore[attr-defined]
        else:
            v = time.monotonic_ns() - self._trace_t0  # type: ignore[attr-defined]
        self._trace_clock_hi = (v >> 32) & 0xFFFFFFFF
        return v & 0xFFFFFFFF
