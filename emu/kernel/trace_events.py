"""The kmem and vmalloc trace events: their records in the guest ring buffer and
Linux 6.1's text for them (the ``trace`` file).

Layer 4 (``emu.kernel``).  The record layout and event numbers have one
definition, ``kernel/internal/kmemu/trace.h`` (read through :mod:`emu.build.abi`);
each event's fields are TP_STRUCT__entry's of include/trace/events/kmem.h and
vmalloc.h (6.1) in their order, and :data:`EVENTS` holds each TP_printk.

Text, as Linux 6.1 prints it:

* the header of ``trace`` with the nop tracer (``# tracer: nop``, the
  entries-in-buffer/entries-written line with ``#P:1``, the irqs-off ...
  migrate-disable legend and the ``TASK-PID CPU# ||||| TIMESTAMP FUNCTION``
  columns);
* each line as trace_print_context() makes it: ``%16s-%-7d [%03d] `` (pid 0 is
  always ``<idle>``, as __trace_find_cmdline() says), the five latency
  characters, the time (`` %5lu.%06lu`` from nanoseconds rounded to
  microseconds, or `` %12llu`` for a clock that does not count nanoseconds:
  ``counter``), ``: ``, the event name and TP_printk's text;
* ``%p`` hashed as Linux 6.1 does by default in trace output (the hash-ptr
  option, on since 5.12): the low 32 bits of SipHash-2-4 of the address, shown
  as 16 hex digits; NULL prints as zeros.  Linux keys the hash at random per
  boot; kmemu uses a fixed key so that two runs give the same text.  Turn it
  off with the ``hash-ptr`` option or ``no_hash_pointers`` on the command line
  (then ``%p`` prints the address, as ``%px``).

>>> hash_pointer(0)
'0000000000000000'
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from emu.kernel import gfp as gfpmod
from emu.kernel.mm import PAGEBLOCK_ORDER, STRUCT_PAGE_SIZE

VMEMMAP_START = 0xFFFFEA0000000000
U64 = (1 << 64) - 1
PAGE_HDR = 16  # KMEMU_TRACE_PAGE_HDR (trace.h; checked against it in tests)
REC_HDR = 16  # KMEMU_TRACE_REC_HDR
GFP_ACCOUNT = gfpmod.GFP_FLAGS["__GFP_ACCOUNT"]

# Linux's TRACE_FLAG_* (trace_entry.flags)
FLAG_IRQS_OFF, FLAG_NMI, FLAG_HARDIRQ, FLAG_SOFTIRQ, FLAG_BH_OFF = 0x01, 0x04, 0x08, 0x10, 0x80

#: trace_clock names (Linux's) -> KMEMU_TRACE_CLOCK_* and whether it counts ns
CLOCKS: dict[str, tuple[int, bool]] = {
    "local": (0, True), "global": (1, True), "counter": (2, False), "mono": (3, True),
    "boot": (4, True),
}


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def _sl(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


# --------------------------------------------------------------------- %p
_SIPHASH_KEY = (0x6B6D656D75747263, 0x7074725F6B657921)  # kmemu's fixed ptr_key


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & U64


def siphash_1u64(value: int, key: tuple[int, int] = _SIPHASH_KEY) -> int:
    """SipHash-2-4 of one little-endian u64 (Linux's ``siphash_1u64``)."""
    k0, k1 = key
    v0, v1 = k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D
    v2, v3 = k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573

    def rounds(n: int) -> None:
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & U64
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & U64
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & U64
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & U64
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)

    for m in (value & U64, 8 << 56):  # the message, then its length byte
        v3 ^= m
        rounds(2)
        v0 ^= m
    v2 ^= 0xFF
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def hash_pointer(ptr: int) -> str:
    """``%p`` in Linux's trace output: NULL and error pointers raw, others hashed."""
    ptr &= U64
    if ptr == 0 or ptr >= U64 - 4095 + 1:  # IS_ERR_OR_NULL prints the value itself
        return f"{ptr:016x}"
    return f"{siphash_1u64(ptr) & 0xFFFFFFFF:016x}"


def raw_pointer(ptr: int) -> str:
    return f"{ptr & U64:016x}"


# --------------------------------------------------------------------- events
@dataclass
class Ctx:
    """What TP_printk needs beyond the fields: %pS and %p."""

    sym: Callable[[int], str]
    ptr: Callable[[int], str] = hash_pointer


def _page(f: dict, c: Ctx) -> str:
    pfn = f["pfn"]
    return c.ptr(0) if pfn == U64 else c.ptr(VMEMMAP_START + pfn * STRUCT_PAGE_SIZE)


def _pfn(f: dict) -> int:
    return 0 if f["pfn"] == U64 else f["pfn"]


def _accounted(v: bool) -> str:
    return "true" if v else "false"


def _fmt_kmem_cache_alloc(f: dict, c: Ctx) -> str:
    return (f"call_site={c.sym(f['call_site'])} ptr={c.ptr(f['ptr'])} "
            f"bytes_req={f['bytes_req']} bytes_alloc={f['bytes_alloc']} "
            f"gfp_flags={gfpmod.format(f['gfp_flags'])} node={_s32(f['node'])} "
            f"accounted={_accounted(f['accounted'])}")


def _fmt_kmalloc(f: dict, c: Ctx) -> str:
    # 6.1 computes accounted in TP_printk: CONFIG_MEMCG_KMEM and __GFP_ACCOUNT
    return (f"call_site={c.sym(f['call_site'])} ptr={c.ptr(f['ptr'])} "
            f"bytes_req={f['bytes_req']} bytes_alloc={f['bytes_alloc']} "
            f"gfp_flags={gfpmod.format(f['gfp_flags'])} node={_s32(f['node'])} "
            f"accounted={_accounted(f['gfp_flags'] & GFP_ACCOUNT)}")


def _fmt_kfree(f: dict, c: Ctx) -> str:
    return f"call_site={c.sym(f['call_site'])} ptr={c.ptr(f['ptr'])}"


def _fmt_kmem_cache_free(f: dict, c: Ctx) -> str:
    return f"call_site={c.sym(f['call_site'])} ptr={c.ptr(f['ptr'])} name={f['name']}"


def _fmt_mm_page_free(f: dict, c: Ctx) -> str:
    return f"page={_page(f, c)} pfn={_pfn(f):#x} order={_s32(f['order'])}"


def _fmt_mm_page_free_batched(f: dict, c: Ctx) -> str:
    return f"page={_page(f, c)} pfn={_pfn(f):#x} order=0"


def _fmt_mm_page_alloc(f: dict, c: Ctx) -> str:
    return (f"page={_page(f, c)} pfn={_pfn(f):#x} order={_s32(f['order'])} "
            f"migratetype={_s32(f['migratetype'])} gfp_flags={gfpmod.format(f['gfp_flags'])}")


def _fmt_zone_locked(f: dict, c: Ctx) -> str:
    return (f"page={_page(f, c)} pfn={_pfn(f):#x} order={f['order'] & 0xFFFFFFFF} "
            f"migratetype={_s32(f['migratetype'])} percpu_refill={_s32(f['percpu_refill'])}")


def _fmt_pcpu_drain(f: dict, c: Ctx) -> str:
    return (f"page={_page(f, c)} pfn={_pfn(f):#x} order={_s32(f['order'])} "
            f"migratetype={_s32(f['migratetype'])}")


def _fmt_extfrag(f: dict, c: Ctx) -> str:
    fb = _s32(f["fallback_order"])
    return (f"page={_page(f, c)} pfn={_pfn(f):#x} alloc_order={_s32(f['alloc_order'])} "
            f"fallback_order={fb} pageblock_order={PAGEBLOCK_ORDER} "
            f"alloc_migratetype={_s32(f['alloc_migratetype'])} "
            f"fallback_migratetype={_s32(f['fallback_migratetype'])} "
            f"fragmenting={int(fb < PAGEBLOCK_ORDER)} "
            f"change_ownership={_s32(f['change_ownership'])}")


def _fmt_alloc_vmap_area(f: dict, c: Ctx) -> str:
    return (f"va_start: {f['addr']} size={f['size']} align={f['align']} "
            f"vstart={f['vstart']:#x} vend={f['vend']:#x} failed={_s32(f['failed'])}")


def _fmt_purge(f: dict, c: Ctx) -> str:
    return f"start={f['start']:#x} end={f['end']:#x} num_purged={f['npurged'] & 0xFFFFFFFF}"


def _fmt_noflush(f: dict, c: Ctx) -> str:
    return f"va_start={f['va_start']:#x} nr_lazy={f['nr_lazy']} nr_lazy_max={f['nr_lazy_max']}"


@dataclass(frozen=True)
class EventDef:
    """One trace event: its id (KMEMU_TRACE_EV_*), fields in record order, TP_printk."""

    id: int
    system: str
    name: str
    fields: tuple[str, ...]
    fmt: Callable[[dict, Ctx], str]
    string: str | None = None  # a trailing string field (kmem_cache_free's name)

    @property
    def full_name(self) -> str:
        return f"{self.system}:{self.name}"


_DEFS = [
    ("KMEM_CACHE_ALLOC", "kmem", "kmem_cache_alloc",
     ("call_site", "ptr", "bytes_req", "bytes_alloc", "gfp_flags", "node", "accounted"),
     _fmt_kmem_cache_alloc, None),
    ("KMALLOC", "kmem", "kmalloc",
     ("call_site", "ptr", "bytes_req", "bytes_alloc", "gfp_flags", "node"), _fmt_kmalloc, None),
    ("KFREE", "kmem", "kfree", ("call_site", "ptr"), _fmt_kfree, None),
    ("KMEM_CACHE_FREE", "kmem", "kmem_cache_free", ("call_site", "ptr"), _fmt_kmem_cache_free,
     "name"),
    ("MM_PAGE_FREE", "kmem", "mm_page_free", ("pfn", "order"), _fmt_mm_page_free, None),
    ("MM_PAGE_FREE_BATCHED", "kmem", "mm_page_free_batched", ("pfn",), _fmt_mm_page_free_batched,
     None),
    ("MM_PAGE_ALLOC", "kmem", "mm_page_alloc", ("pfn", "order", "gfp_flags", "migratetype"),
     _fmt_mm_page_alloc, None),
    ("MM_PAGE_ALLOC_ZONE_LOCKED", "kmem", "mm_page_alloc_zone_locked",
     ("pfn", "order", "migratetype", "percpu_refill"), _fmt_zone_locked, None),
    ("MM_PAGE_PCPU_DRAIN", "kmem", "mm_page_pcpu_drain", ("pfn", "order", "migratetype"),
     _fmt_pcpu_drain, None),
    ("MM_PAGE_ALLOC_EXTFRAG", "kmem", "mm_page_alloc_extfrag",
     ("pfn", "alloc_order", "fallback_order", "alloc_migratetype", "fallback_migratetype",
      "change_ownership"), _fmt_extfrag, None),
    ("ALLOC_VMAP_AREA", "vmalloc", "alloc_vmap_area",
     ("addr", "size", "align", "vstart", "vend", "failed"), _fmt_alloc_vmap_area, None),
    ("PURGE_VMAP_AREA_LAZY", "vmalloc", "purge_vmap_area_lazy", ("start", "end", "npurged"),
     _fmt_purge, None),
    ("FREE_VMAP_AREA_NOFLUSH", "vmalloc", "free_vmap_area_noflush",
     ("va_start", "nr_lazy", "nr_lazy_max"), _fmt_noflush, None),
]


def _events() -> dict[int, EventDef]:
    from emu.build.abi import trace_define
    out = {}
    for macro, system, name, fields, fmt, string in _DEFS:
        eid = trace_define(f"KMEMU_TRACE_EV_{macro}")
        out[eid] = EventDef(eid, system, name, fields, fmt, string)
    return out


_EVENTS: dict[int, EventDef] | None = None


def events() -> dict[int, EventDef]:
    """{id: EventDef} for every event the kernel has."""
    global _EVENTS
    if _EVENTS is None:
        _EVENTS = _events()
    return _EVENTS


def by_name() -> dict[str, EventDef]:
    """{"kmem:kmalloc": EventDef, ...} in id order."""
    return {e.full_name: e for e in sorted(events().values(), key=lambda e: e.id)}


def by_name_short() -> dict[str, EventDef]:
    """{"kmalloc": EventDef, ...}: event names are unique across kmem and vmalloc."""
    return {e.name: e for e in events().values()}


# --------------------------------------------------------------------- records
@dataclass
class TraceRecord:
    """One event as read from the ring (the structured form of a trace line)."""

    event: str  # "kmalloc"
    system: str  # "kmem"
    ts: int  # the clock's raw value: ns, or instructions for counter
    fields: dict[str, int | str]
    flags: int = 0  # Linux's TRACE_FLAG_*
    preempt_count: int = 0
    pid: int = 0
    cpu: int = 0
    comm: str = field(default="<idle>")

    @property
    def name(self) -> str:
        return f"{self.system}:{self.event}"


def decode_records(page: bytes) -> Iterator[TraceRecord]:
    """The records of one buffer page (its header first)."""
    _, commit, _ = struct.unpack_from("<QII", page, 0)
    off, end = PAGE_HDR, PAGE_HDR + commit
    evs = events()
    while off < end:
        etype, flags, pc, length, nr, ts = struct.unpack_from("<HBBHHQ", page, off)
        if length < REC_HDR or off + length > end:
            raise ValueError(f"corrupt trace record at page offset {off}: length {length}")
        vals = struct.unpack_from(f"<{nr}Q", page, off + REC_HDR)
        ev = evs.get(etype)
        if ev is None:
            raise ValueError(f"trace record of unknown event type {etype}")
        f: dict[str, int | str] = dict(zip(ev.fields, vals, strict=False))
        if ev.string:
            raw = page[off + REC_HDR + 8 * nr: off + length]
            f[ev.string] = raw.split(b"\0", 1)[0].decode(errors="replace")
        yield TraceRecord(ev.name, ev.system, ts, f, flags, pc)
        off += length


# --------------------------------------------------------------------- text
def lat_fmt(flags: int, preempt_count: int) -> str:
    """trace_print_lat_fmt's five characters (need-resched is never set here)."""
    irqs_off = ("D" if flags & FLAG_IRQS_OFF and flags & FLAG_BH_OFF else
                "d" if flags & FLAG_IRQS_OFF else "b" if flags & FLAG_BH_OFF else ".")
    nmi, hard, soft = flags & FLAG_NMI, flags & FLAG_HARDIRQ, flags & FLAG_SOFTIRQ
    hardsoft = ("Z" if nmi and hard else "z" if nmi else "H" if hard and soft else
                "h" if hard else "s" if soft else ".")
    depth = f"{preempt_count & 0xF:x}" if preempt_count & 0xF else "."
    migrate = f"{preempt_count >> 4:x}" if preempt_count & 0xF0 else "."
    return f"{irqs_off}.{hardsoft}{depth}{migrate}"


def format_time(ts: int, in_ns: bool) -> str:
    """trace_print_time: `` %5lu.%06lu`` of ns rounded to us, or `` %12llu``."""
    if not in_ns:
        return f" {ts:12d}"
    us = (ts + 500) // 1000
    return f" {us // 1_000_000:5d}.{us % 1_000_000:06d}"


def format_line(rec: TraceRecord, ctx: Ctx, in_ns: bool = True) -> str:
    """One line of the ``trace`` file, without its newline."""
    ev = by_name()[rec.name]
    return (f"{rec.comm:>16}-{rec.pid:<7d} [{rec.cpu:03d}] "
            f"{lat_fmt(rec.flags, rec.preempt_count)}{format_time(rec.ts, in_ns)}: "
            f"{rec.event}: {ev.fmt(rec.fields, ctx)}")


def format_header(entries: int, written: int, cpus: int = 1, tracer: str = "nop") -> str:
    """The header of ``trace`` (print_trace_header for the nop tracer, irq-info on)."""
    sp = " " * 28 + "  "
    return (f"# tracer: {tracer}\n#\n"
            f"# entries-in-buffer/entries-written: {entries}/{written}   #P:{cpus}\n#\n"
            f"#{sp}  _-----=> irqs-off/BH-disabled\n"
            f"#{sp} / _----=> need-resched\n"
            f"#{sp}| / _---=> hardirq/softirq\n"
            f"#{sp}|| / _--=> preempt-depth\n"
            f"#{sp}||| / _-=> migrate-disable\n"
            f"#{sp}|||| /     delay\n"
            "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n"
            "#              | |         |   |||||     |         |\n")


def lost_line(lost: int, cpu: int = 0) -> str:
    """print_trace_line's note before the first record after a loss (consuming reads)."""
    return f"CPU:{cpu} [LOST {lost} EVENTS]"
