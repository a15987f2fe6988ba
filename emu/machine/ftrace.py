"""Layer 5: function_graph as the host sees it, and instruction profiles.

Linux's function_graph tracer hooks every traced function's entry (``fentry``) and
replaces its return address; kmemu sees every guest instruction instead, so it
rebuilds the same tree from one Unicorn block hook (``UC_HOOK_BLOCK``: a Python
call per translated block, not per instruction) and counts each function's
instructions exactly.

How a block is read (:class:`GraphTracer`):

* **Entries.**  A block that starts at a function's first byte (the kernel's and
  the loaded modules' ``STT_FUNC`` symbols, ``.cold`` parts excluded) is an entry.
  RSP there says which kind: below the current frame's entry RSP it is a call
  (the return address was pushed); equal, a tail call (``jmp``/``jcc`` to another
  function with the caller's frame already popped: shown nested in the caller, as
  Linux shows it, both ending at the same ``ret``); equal and the same function,
  a loop back to its first instruction (a new frame would be wrong).  At the
  host call's own stack base it is a new outermost call (whatever an oops left
  open before is closed as unfinished).
* **Returns** are read from RSP, not matched to ``ret`` instructions: after a
  block ending in ``ret``, ``iretq`` or an indirect ``jmp`` (a longjmp), every
  frame whose entry RSP is below the new RSP has returned.  So returns that never
  happen (an oops unwinding, a KUnit assertion jumping back) cannot corrupt the
  tree: the frames they skip are closed at the next return that passes them.
* **Interrupts and exceptions** enter through ``idt_stubs`` (one 16-byte stub per
  vector, then ``common_entry``): the stub's block opens a frame ``common_entry``
  of kind ``"irq"`` with its vector, whose tree function_graph prints between
  ``==========>`` and ``<==========`` (for vectors >= 32; exceptions such as a
  page fault nest like a call, as Linux's ``exc_page_fault`` does).
* **Exact counts.**  A block is counted whole when it starts (as
  :class:`emu.core.cpu.InsnCounter` does), but an interrupt or fault can stop it
  part-way: the stub reads the interrupted RIP from the exception frame and takes
  the instructions of that block from it onwards back (a faulting instruction does
  not retire).  Otherwise counts are ``count_instructions()``'s, block for block:
  a ``rep``-prefixed string instruction counts once per iteration (Unicorn runs
  each iteration as a block of its own), so a traced call's instructions equal
  its count without tracing whenever no interrupt cut a block, and with one they
  are the untraced count plus the handler's, to the instruction.
* **Inlined functions** are invisible (their instructions belong to the function
  they were inlined into), exactly as for Linux's tracer, which only sees
  functions with an ``fentry`` call.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from unicorn import UC_HOOK_BLOCK, Uc
from unicorn import x86_const as x86

from emu.core.cpu import EXC_WITH_ERROR_CODE, RegBatch, delete_hook
from emu.core.errors import KmemuError
from emu.kernel import flamegraph
from emu.kernel.funcgraph import (
    Call,
    TraceError,
    check_globs,
    finish_totals,
    folded,
    format_graph,
    select,
)

# block kinds (the block's last instruction)
_PLAIN, _RET, _IRET, _IJMP, _JUMP = range(5)
# Host glue that is not part of any traced call: where the host parks and returns.
_HOST_GLUE = frozenset({"kmemu_idle_loop", "kmemu_call_return", "kmemu_call_oops"})


class _Block(NamedTuple):
    n: int  # instructions
    unwind: bool  # ends in ret, iretq or an indirect jmp: frames may end after it
    kind: int
    target: int  # a direct branch's target (or -1)
    starts: tuple[int, ...]  # each instruction's address
    size: int
    special: bool  # starts a function or an interrupt stub: an entry


class GraphTracer:
    """Builds call trees from a block hook while installed (see the module doc)."""

    def __init__(self, m: object) -> None:
        from emu.machine.core import Machine

        assert isinstance(m, Machine)
        m._require_booted()  # noqa: SLF001 - a profile of a machine that never ran is an error
        self.m = m
        syms = m.symbols or m._syms()  # noqa: SLF001 - the kernel's and the modules'
        self.starts: dict[int, str] = {}
        for s in syms.sorted:
            if (s.kind == "func" and ".cold" not in s.name and s.name not in _HOST_GLUE
                    and s.address not in self.starts):
                self.starts[s.address] = s.name
        ks = m._syms()  # noqa: SLF001
        stubs = ks.by_name["idt_stubs"]
        self.stub_lo, self.stub_hi = stubs.address, stubs.address + stubs.size
        self.entry = ks.by_name["common_entry"].address
        self.base_rsp = m._call_rsp - 8  # noqa: SLF001 - a host call's first RSP
        self._rsp = RegBatch(m.uc, [x86.UC_X86_REG_RSP])
        import capstone  # here, not at import (as InsnCounter)

        self._md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        self._blocks: dict[int, _Block] = {}
        self.roots: list[Call] = []
        self.stack: list[Call] = []
        # instructions outside any function (the host's call glue) go to this frame,
        # which is never in the tree: the hot path then has no branch for "no frame"
        self._outside = Call("<outside>")
        self._top = self._outside
        self._t0: dict[int, int] = {}
        self._prev: tuple[int, _Block, Call] | None = None
        self._unwind_next = False  # the previous block ended in ret / iretq / jmp *
        self._hook: int | None = None

    @property
    def outside(self) -> int:
        return self._outside.self_insns

    @property
    def insns(self) -> int:
        """Every instruction counted (valid after :meth:`stop`)."""
        return self.outside + sum(r.total_insns for r in self.roots)

    # -- installing ---------------------------------------------------------------------
    def start(self) -> None:
        self._hook = self.m.hook_add(UC_HOOK_BLOCK, self._on_block)

    def stop(self) -> None:
        if self._hook is not None:
            delete_hook(self.m.uc, self._hook)
            self._hook = None
        now = time.perf_counter_ns()
        while self.stack:
            self._close(self.stack.pop(), now, returned=False)
        finish_totals(self.roots)

    # -- the hook -------------------------------------------------------------------------
    def _decode(self, address: int, size: int) -> _Block:
        try:
            code = self.m.read_virt(address, size)
            insns = list(self._md.disasm_lite(code, address))
        except KmemuError:
            insns = []
        if not insns:
            b = _Block(1, False, _PLAIN, -1, (address,), size, self._special(address))
        else:
            _, _, mnem, ops = insns[-1]
            kind, target = _PLAIN, -1
            if mnem.startswith("ret"):
                kind = _RET
            elif mnem.startswith("iret"):
                kind = _IRET
            elif mnem.startswith("j"):
                if ops.startswith("0x"):
                    kind, target = _JUMP, int(ops, 16)
                else:
                    kind = _IJMP if mnem == "jmp" else _PLAIN
            b = _Block(len(insns), kind in (_RET, _IRET, _IJMP), kind, target,
                       tuple(a for a, *_ in insns), size, self._special(address))
        self._blocks[address] = b
        return b

    def _special(self, address: int) -> bool:
        return address in self.starts or self.stub_lo <= address < self.stub_hi

    def _on_block(self, uc: Uc, address: int, size: int, _: object) -> None:
        # hot: one call per translated block run; most blocks skip _transfer
        b = self._blocks.get(address)
        if b is None or b.size != size:
            b = self._decode(address, size)
        if b.special or self._unwind_next:
            self._transfer(address, self._prev)
        top = self._top
        top.self_insns += b.n
        self._unwind_next = b.unwind
        self._prev = (address, b, top)

    def _transfer(self, address: int, prev: tuple[int, _Block, Call] | None) -> None:
        rsp = self._rsp.read(x86.UC_X86_REG_RSP)
        name = self.starts.get(address)
        if self.stub_lo <= address < self.stub_hi:
            self._irq_entry(address, rsp)
        elif name is not None:
            self._entry(address, name, rsp)
        else:
            self._unwind(rsp, prev[1].kind)  # type: ignore[index]
        self._top = self.stack[-1] if self.stack else self._outside

    def _uncount(self, b: _Block, rip: int, frame: Call) -> None:
        """The instructions of block ``b`` from ``rip`` on did not run (yet)."""
        frame.self_insns -= sum(1 for a in b.starts if a >= rip)

    def _unwind(self, rsp: int, how: int = _PLAIN) -> None:
        """Close every frame whose entry RSP is below ``rsp``.  Only a ``ret`` to just
        above a frame's return address (and the tail calls sharing it), or the
        ``iretq`` of the innermost interrupt, is a return; frames passed over any
        other way (an oops's jump to kmemu_call_oops, a longjmp, the host restarting
        the stack) never returned."""
        now = 0
        stack = self.stack
        iret_done = False
        while stack and stack[-1].entry_rsp < rsp:
            now = now or time.perf_counter_ns()
            c = stack.pop()
            if how == _RET:
                returned = c.entry_rsp == rsp - 8
            elif how == _IRET and not iret_done and c.kind == "irq":
                returned = iret_done = True
            else:
                returned = False
            self._close(c, now, returned)

    def _close(self, c: Call, now: int, returned: bool) -> None:
        c.returned = returned
        c.wall_ns = now - self._t0.pop(id(c), now)

    def _push(self, c: Call) -> None:
        if self.stack:
            self.stack[-1].children.append(c)
        else:
            self.roots.append(c)
        self.stack.append(c)
        self._t0[id(c)] = time.perf_counter_ns()

    def _entry(self, address: int, name: str, rsp: int) -> None:
        prev = self._prev
        jumped = prev is not None and (prev[1].kind == _IJMP or prev[1].target == address)
        if rsp == self.base_rsp and not jumped:
            # a host call begins (or the glue calls deferred work): anything still
            # open was left by an oops
            now = time.perf_counter_ns()
            while self.stack:
                self._close(self.stack.pop(), now, returned=False)
        else:
            self._unwind(rsp)
        top = self.stack[-1] if self.stack else None
        kind = "call"
        if top is not None:
            if top.kind == "irq" and address == self.entry:
                return  # the stub's jmp to common_entry: the irq frame already is it
            if rsp == top.entry_rsp:
                if address == top.address:
                    return  # a loop back to the first instruction, or a resumed entry
                kind = "tail"
        self._push(Call(name, address, kind=kind, entry_rsp=rsp))

    def _irq_entry(self, address: int, rsp: int) -> None:
        vector = (address - self.stub_lo) // 16
        prev = self._prev
        if prev is not None:  # the interrupted block stopped at the saved RIP
            try:
                rip = self.m.read_u64(rsp + (8 if vector in EXC_WITH_ERROR_CODE else 0))
            except KmemuError:
                rip = -1
            pa, pb, pf = prev
            if pa <= rip < pa + pb.size:
                self._uncount(pb, rip, pf)
        self._unwind(rsp)
        self._push(Call("common_entry", self.entry, kind="irq", vector=vector, entry_rsp=rsp))


# --- results ---------------------------------------------------------------------------------


@dataclass
class TraceResult:
    """One traced call: the tree as run (``tree``), the tree the knobs select (``calls``,
    what ``text`` prints), the function's result and how it ended."""

    function: str
    tree: list[Call]  # every root the call ran: the function, then deferred work if any
    calls: list[Call]  # the view: graph / filter / notrace / depth applied
    retval: int | None
    insns: int  # every instruction counted during the call, glue included
    outside: int  # the host's call glue (kmemu_call_return), outside any function
    clock: str = "insns"
    oops: KmemuError | None = None  # the GuestOops that ended the call, if any
    comments: list[tuple[Call | None, str]] = field(default_factory=list)
    tail: bool = False  # funcgraph-tail: name the function at every closing brace

    @property
    def root(self) -> Call:
        """The traced function's own call (the first root)."""
        return self.tree[0]

    @property
    def text(self) -> str:
        return format_graph(self.calls, self.clock, comments=self.comments, tail=self.tail)

    @property
    def folded(self) -> str:
        return folded(self.calls)

    def svg(self, path: str | Path | None = None, title: str | None = None) -> str:
        """The flame graph of ``calls`` as SVG text (also written to ``path`` if given)."""
        svg = flamegraph.svg(self.folded, title or f"{self.function}: guest instructions")
        if path is not None:
            Path(path).write_text(svg)
        return svg

    def __str__(self) -> str:
        return self.text


@dataclass
class Profile:
    """Instruction profile of a Python block (``with m.profile() as p``): filled in when
    the block ends."""

    roots: list[Call] = field(default_factory=list)
    insns: int = 0
    outside: int = 0

    @property
    def folded(self) -> str:
        return folded(self.roots)

    @property
    def text(self) -> str:
        return format_graph(self.roots)

    def svg(self, path: str | Path | None = None, title: str = "guest instructions") -> str:
        svg = flamegraph.svg(self.folded, title)
        if path is not None:
            Path(path).write_text(svg)
        return svg


@dataclass(frozen=True)
class Knobs:
    """ftrace's knobs, checked: globs that match functions, a depth, a clock."""

    graph: tuple[str, ...] = ()
    graph_notrace: tuple[str, ...] = ()
    filter: tuple[str, ...] = ()
    notrace: tuple[str, ...] = ()
    depth: int | None = None
    clock: str = "insns"
    irqs: bool = True
    tail: bool = False


def check_knobs(functions: Sequence[str], depth: object = None, filter: object = None,  # noqa: A002
                notrace: object = None, graph: object = None, graph_notrace: object = None,
                clock: object = "insns", irqs: object = True, tail: object = False) -> Knobs:
    if depth is not None and (type(depth) is not int or depth < 0):
        raise TraceError(f"depth (max_graph_depth) must be an int >= 0, got {depth!r}")
    if clock not in ("insns", "wall"):
        raise TraceError(f"clock must be 'insns' or 'wall', got {clock!r}")
    for name, v in (("irqs (funcgraph-irqs)", irqs), ("tail (funcgraph-tail)", tail)):
        if not isinstance(v, bool):
            raise TraceError(f"{name} must be True or False, got {v!r}")
    return Knobs(tuple(check_globs(graph, "set_graph_function", functions)),  # type: ignore[arg-type]
                 tuple(check_globs(graph_notrace, "set_graph_notrace", functions)),  # type: ignore[arg-type]
                 tuple(check_globs(filter, "set_ftrace_filter", functions)),  # type: ignore[arg-type]
                 tuple(check_globs(notrace, "set_ftrace_notrace", functions)),  # type: ignore[arg-type]
                 depth or None,  # Linux: max_graph_depth 0 is no limit
                 str(clock), bool(irqs), bool(tail))


class TraceMixin:
    """``Machine.trace`` and ``Machine.profile``."""

    def trace(self, fn: str | int, *args: int, depth: int | None = None,
              filter: str | Sequence[str] | None = None,  # noqa: A002 - ftrace's knob
              notrace: str | Sequence[str] | None = None,
              graph: str | Sequence[str] | None = None,
              graph_notrace: str | Sequence[str] | None = None,
              clock: str = "insns", irqs: bool = True, tail: bool = False,
              context: str = "process") -> TraceResult:
        """Call ``fn(*args)`` as :meth:`call` does and return its function_graph.

        ``graph`` is set_graph_function (only trees under a match), ``graph_notrace``
        set_graph_notrace, ``filter``/``notrace`` set_ftrace_filter/set_ftrace_notrace
        (globs, a string with several separated by spaces or commas, or a list),
        ``depth`` max_graph_depth (0 or None: no limit), ``clock`` "insns" or "wall",
        ``irqs`` and ``tail`` the funcgraph-irqs and funcgraph-tail options.
        An oops does not raise: the result has ``oops`` set, ``retval`` None, and the
        frames the oops left are marked unfinished (``returned`` False).
        """
        from emu.machine.core import GuestOops

        m = self  # type: ignore[assignment]
        k = check_knobs((m.symbols or m._syms()).functions(), depth, filter, notrace,  # type: ignore[attr-defined]
                        graph, graph_notrace, clock, irqs, tail)
        m._require_ready()  # type: ignore[attr-defined]
        t = GraphTracer(m)
        t.start()
        retval: int | None = None
        oops: KmemuError | None = None
        try:
            retval = m.call(fn, *args, context=context)  # type: ignore[attr-defined]
        except GuestOops as e:
            oops = e
        finally:
            t.stop()
        if not t.roots:
            raise TraceError(f"{fn} ran no traceable function")
        view = select(t.roots, k.graph, k.graph_notrace, k.filter, k.notrace, k.depth, k.irqs)
        comments: list[tuple[Call | None, str]] = []
        if oops is not None:
            first = next((ln for ln in str(oops).splitlines() if ln.strip()), "oops")
            comments.append((None, f"oops: {first.strip()}"))
        name = fn if isinstance(fn, str) else m.symbolize(fn)  # type: ignore[attr-defined]
        return TraceResult(name, t.roots, view, retval, t.insns, t.outside, k.clock, oops,
                           comments, k.tail)

    @contextlib.contextmanager
    def profile(self) -> Iterator[Profile]:
        """``with m.profile() as p: ...`` traces every guest instruction the block runs;
        afterwards ``p.roots`` are its call trees, ``p.folded`` the folded stacks and
        ``p.svg(path)`` the flame graph."""
        t = GraphTracer(self)
        p = Profile()
        t.start()
        try:
            yield p
        finally:
            t.stop()
            p.roots, p.insns, p.outside = t.roots, t.insns, t.outside
