"""Local variables and arguments anywhere in a function, in any frame, from the DWARF
location lists: Machine.frame_variables, the session's frame selection, info locals."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import pytest

from emu import BreakpointHit, Machine
from emu.core.errors import BadArgument, KmemuError
from emu.debug.session import DebugSession, SessionError

SLAB_VECTOR = 0x32  # mm_test.c: its handler kmallocs slab_irq_size bytes with GFP_ATOMIC


def _stop_in(machine: Machine, fn: str, *args: int, call: str = "kmalloc"):
    bp = machine.break_at(fn, temporary=True)
    try:
        with pytest.raises(BreakpointHit) as ei:
            machine.call(call, *args)
    finally:
        bp.remove()
    return ei.value.call


def _vars(machine: Machine, level: int = 0) -> dict:
    return {v.name: v for v in machine.frame_variables(level)}


def test_locals_past_the_prologue_follow_the_location_lists(machine: Machine) -> None:
    call = _stop_in(machine, "___slab_alloc", 64, 0xCC0)
    call.step()  # past the prologue: the arguments are no longer where the ABI put them
    assert machine.symbolize(machine.cpu.rip).startswith("___slab_alloc+0x")
    assert not machine.symbolize(machine.cpu.rip).startswith("___slab_alloc+0x0/")
    v = _vars(machine)
    assert {"s", "gfp", "c", "flags", "object", "slab"} <= set(v)
    assert v["s"].argument and v["gfp"].argument and not v["c"].argument
    assert v["s"].function == "___slab_alloc" and not v["s"].inlined
    s = v["s"].value
    assert s.name.string_().decode() == "kmalloc-64"
    assert int(v["gfp"].value) == 0xCC0
    # c = &s->cpu_slab is computed: its value is the member's address
    assert int(v["c"].value) == int(s.cpu_slab.address_of_())
    # a variable not yet assigned has no location: absent, as gdb's <optimized out>
    assert v["object"].value.absent_
    call.resume()


def test_inlined_scopes_come_first_and_shadow_the_outer_ones(machine: Machine) -> None:
    cache = int(machine.var("kmalloc_caches")[0][6])  # kmalloc-64
    call = _stop_in(machine, "kmem_cache_alloc", cache, 0xCC0, call="kmem_cache_alloc")
    for _ in range(40):  # into slab_alloc, inlined into kmem_cache_alloc
        call.stepi()
        inl = [v for v in machine.frame_variables() if v.inlined]
        if any(v.function == "slab_alloc" for v in inl):
            break
    else:
        pytest.fail("never inside the inlined slab_alloc")
    vs = machine.frame_variables()
    visible = [v.name for v in vs if not v.shadowed]
    assert len(visible) == len(set(visible))  # each name once as C sees it
    first_outer = next(i for i, v in enumerate(vs) if not v.inlined)
    assert all(v.inlined for v in vs[:first_outer])
    by = {v.name: v for v in vs if not v.shadowed}
    assert by["s"].function == "slab_alloc" and by["s"].argument
    assert by["orig_size"].value.value_() == 64
    # kmem_cache_alloc's own s is still there, marked shadowed by slab_alloc's
    outer_s = [v for v in vs if v.name == "s" and v.function == "kmem_cache_alloc"]
    assert len(outer_s) == 1 and outer_s[0].shadowed and not outer_s[0].inlined
    assert int(outer_s[0].value) == int(by["s"].value)  # the same cache, passed down
    call.resume()


def interrupted_kmalloc(machine: Machine, size: int, stop_at: str,
                        accept: Callable[[list, int], bool], afters: Iterable[int]):
    """Raise the slab vector's interrupt after each of ``afters`` instructions of
    kmalloc(``size``) until the stop at ``stop_at`` (in the handler) has a stack that
    ``accept(frames, trap_level)`` likes: (call, frames, trap_level)."""
    base = machine.snapshot()
    for after in afters:
        machine.restore(base)
        machine.raise_irq(SLAB_VECTOR, after=after)
        bp = machine.break_at(stop_at, temporary=True)
        try:
            machine.call("kmalloc", size, 0xCC0)
        except BreakpointHit as e:
            call = e.call
        else:
            continue
        finally:
            bp.remove()
        frames = machine.backtrace()
        trap = next((f.level for f in frames if f.found_by == "trap frame"), None)
        if trap is not None and accept(frames, trap):
            return call, frames, trap
        call.resume()
    machine.restore(base)
    pytest.fail(f"no interrupt stopped at {stop_at} with the stack wanted")


def test_caller_frames_and_the_frame_an_interrupt_stopped(machine: Machine) -> None:
    """Frames above a trap frame start from the registers the interrupt saved."""
    call, frames, trap = interrupted_kmalloc(
        machine, 64, "slab_irq_handler",
        lambda fr, t: fr[t].function == "kmalloc" and fr[t].offset >= 8, range(3, 20))
    v = _vars(machine, trap)
    assert set(v) >= {"size", "gfp"}
    assert all(x.function == "kmalloc" for x in v.values() if not x.inlined)
    present = {k: int(x.value) for k, x in v.items()
               if k in ("size", "gfp") and not x.value.absent_}
    assert present and all(val == {"size": 64, "gfp": 0xCC0}[k]
                           for k, val in present.items()), present
    # frames below the trap frame: the handler itself and its callers
    assert "regs" in _vars(machine, 0)
    call.resume()


def test_bad_levels_are_errors(machine: Machine) -> None:
    call = _stop_in(machine, "kmalloc", 64, 0xCC0)
    depth = len(machine.backtrace())
    with pytest.raises(BadArgument, match=f"no frame {depth}"):
        machine.frame_variables(depth)
    with pytest.raises(BadArgument, match="no frame -1"):
        machine.frame_variables(-1)
    with pytest.raises(BadArgument, match="int"):
        machine.frame_variables("1")  # type: ignore[arg-type]
    assert machine.frame_variables(depth - 1) == []  # kmemu_call_return: assembly
    assert call.resume() >= 0xFFFF888000000000


# ---------------------------------------------------------------------- the session

@pytest.fixture
def s(debug_session: DebugSession) -> DebugSession:
    return debug_session


def test_print_locals_up_down_and_finish_of_a_selected_frame(s: DebugSession) -> None:
    s.break_("___slab_alloc")
    s.call("kmalloc", ["256", "GFP_KERNEL"])  # above 192: kmalloc -> kmalloc_other -> ...
    s.step()
    assert s.print_expr("s->name") == '$1 = "kmalloc-256", \'\\000\' <repeats 20 times>'
    assert re.search(r"^c = 0x", s.info_variables(False), re.M)
    assert re.search(r"^gfp = 3264$", s.info_variables(True), re.M)
    # gdb's levels: inlined functions are frames (slab_alloc_nocheck... between)
    k = next(f.level for f in s.frames() if f.function == "kmalloc_other")
    assert k > 2 and s.frames()[k - 1].inline
    up = s.move_frame(k)  # past __slab_alloc (Linux's frames: ___slab_alloc <- __slab_alloc)
    # kmalloc_other keeps its arguments across the call (callee-saved registers that the
    # unwinder restores from the callee's CFI): shown with their values
    assert up.startswith(f"#{k:<2} kmalloc_other (size=256, gfp=3264, caller="), up
    assert s.frame_level == k
    assert s.evaluate("$rip").value_() == s.m.backtrace()[2].pc  # the frame's registers
    assert s.move_frame(1 - k).startswith("#1  0x") and s.frame_level == 1
    assert s.print_expr("orig_size") == "$2 = 256"  # __slab_alloc's own argument
    assert s.move_frame(k - 1).startswith(f"#{k:<2} ")
    with pytest.raises(SessionError, match=r"^No frame at level 99\.$"):
        s.select_frame(99)
    assert s.frame_level == k  # a failed selection keeps the old one
    assert s.move_frame(-k).startswith("#0  ") and s.frame_level == 0
    with pytest.raises(SessionError, match="cannot go down"):
        s.move_frame(-1)
    top = len(s.frames()) - 1
    s.select_frame(top)
    with pytest.raises(SessionError, match="cannot go up"):
        s.move_frame(1)
    s.select_frame(k)
    fin = s.finish()  # finishes kmalloc_other, not ___slab_alloc
    assert fin.reason == "finish" and fin.text.startswith(f"Run till exit from #{k} ")
    assert "Value returned is $3 = (void *) 0xffff888" in fin.text
    assert s.m.symbolize(s.m.cpu.rip).startswith("kmalloc+")
    assert s.frame_level == 0  # a run selects frame 0 again
    assert s.cont().reason == "done"


def test_a_step_into_a_function_shows_its_arguments(s: DebugSession) -> None:
    s.break_("kmalloc")
    s.call("kmalloc", ["64", "GFP_KERNEL"])
    for _ in range(20):
        stop = s.step()
        if stop.text.startswith("___slab_alloc ("):
            break
    else:
        pytest.fail("step never entered ___slab_alloc")
    assert re.match(r"___slab_alloc \(s=s@entry=0xffff888[0-9a-f]+, gfp=gfp@entry=3264\) at "
                    r"\S*slub\.c:\d+\n",
                    stop.text), stop.text
    assert s.cont().reason == "done"


def test_idle_kernel_has_no_locals(s: DebugSession) -> None:
    assert s.info_variables(False) == "No locals."
    assert s.info_variables(True) == "No arguments."
    with pytest.raises(SessionError, match="cannot go up"):
        s.move_frame(1)


def test_an_inlined_function_is_a_frame_with_its_own_info_args(s: DebugSession) -> None:
    s.break_("___slab_alloc")
    s.call("kmalloc", ["64", "GFP_KERNEL"])
    for _ in range(200):
        frames = s.frames()
        if frames[0].inline and s.info_variables(True) != "No arguments.":
            break
        s.stepi()
    else:
        pytest.fail("no inlined function with arguments in ___slab_alloc's first 200 insns")
    inner = frames[0].function
    names = {v.function for v in s.variables()}
    assert names == {inner}, names  # gdb looks no further out than the function
    real = next(f.level for f in frames if f.function == "___slab_alloc")
    assert all(f.inline for f in frames[:real]) and not frames[real].inline
    assert frames[real].pc == frames[0].pc and frames[real].cfa == frames[0].cfa
    s.select_frame(real)
    own = s.info_variables(True)
    assert re.search(r"^s = 0xffff888", own, re.M), own
    assert {v.function for v in s.variables()} == {"___slab_alloc"}
    s.select_frame(0)
    # the frame line names the real function's own arguments, not an inlined callee's
    assert re.search(r"___slab_alloc \(s=s@entry=0xffff888[0-9a-f]+, gfp=gfp@entry=3264\)",
                     s.location(args=True, brief=True))
    assert s.cont().reason == "done"


def test_until_star_address(s: DebugSession) -> None:
    s.break_("kmalloc")
    s.call("kmalloc", ["64", "GFP_KERNEL"])
    entry = s.m.symbol("kmalloc")
    rows = [r.address for r in s.m.lines.rows_between(entry + 1, entry + 0x100)]
    first, second = sorted(set(rows))[:2]  # instruction boundaries, whatever gcc emitted
    assert s.until(f"*{first:#x}").reason == "step" and s.m.cpu.rip == first
    assert s.until(f"*kmalloc + {second - entry:#x}").reason == "step"  # *EXPR, as in gdb
    assert s.m.cpu.rip == second
    assert s.cont().reason == "done"


def test_an_aliased_function_shows_its_arguments(s: DebugSession) -> None:
    """alloc_pages is an ELF alias of __alloc_pages: the symbol names the frame, DWARF
    (which knows only __alloc_pages) gives the arguments, at the entry of the order-0
    fast path and of the general one.  (__alloc_pages no longer calls anything with gfp
    and order live after the call: might_sleep's check moved behind page_hooks_key into
    __alloc_pages_general, called in tail position.)"""
    s.break_("__alloc_pages")
    stop = s.call("alloc_pages", ["GFP_KERNEL", "0"])
    assert re.match(r"Breakpoint \d+, (__)?alloc_pages \(gfp=3264, order=0\)", stop.text)
    s.delete()
    assert s.cont().reason == "done"
    s.break_("__alloc_pages")
    stop = s.call("alloc_pages", ["GFP_KERNEL", "1"])
    assert re.match(r"Breakpoint \d+, (__)?alloc_pages \(gfp=3264, order=1\)", stop.text)
    assert s.cont().reason == "done"


def test_conditions_on_globals_do_not_unwind_at_every_hit(s: DebugSession,
                                                          monkeypatch) -> None:
    s.break_("kmalloc", condition="preempt_count == 77")  # never true
    reads, evaluated = [], []
    real, value_of = s.m.frame_variables, s.value_of
    monkeypatch.setattr(s.m, "frame_variables", lambda level=0: reads.append(level) or
                        real(level))
    monkeypatch.setattr(s, "value_of", lambda text: evaluated.append(text) or value_of(text))
    for _ in range(5):
        assert s.call("kmalloc", ["32", "GFP_KERNEL"]).reason == "done"
    assert evaluated == ["preempt_count == 77"] * 5
    assert len(reads) <= 1  # the names visible at kmalloc's entry, once
    s.delete()
    s.break_("kmalloc", condition="size == 48")  # a parameter: read when the name is used
    assert s.call("kmalloc", ["32", "GFP_KERNEL"]).reason == "done"
    assert s.call("kmalloc", ["48", "GFP_KERNEL"]).reason == "breakpoint"
    assert s.cont().reason == "done"


def test_a_watch_on_a_local_ends_with_its_frame(s: DebugSession) -> None:
    s.break_("___slab_alloc")
    s.call("kmalloc", ["64", "GFP_KERNEL"])
    s.next()  # to new_slab's call site (inlined), where gfp is in a register
    s.next()  # back to the top of the loop, as gdb goes
    p = s.watch("gfp")  # ___slab_alloc keeps gfp in its stack frame
    assert p.scoped and p.scope is not None
    s.delete([1])
    stop = s.cont()
    assert stop.reason == "watchpoint" and stop.text.startswith(
        f"Watchpoint {p.number} deleted because the program has left the block in\n"
        "which its expression is valid.\n"), stop.text
    assert "__slab_alloc" in stop.text and p.number not in s.points  # its caller
    assert s.cont().reason == "done"
    # the same stack slot, written by later unrelated code, stops nothing
    assert s.call("vmalloc", ["20000"]).reason == "done"
    # a global in the expression does not make a watch scoped
    g = s.watch("kmalloc_caches[0][6]->cpu_slab.alloc_fast")
    assert not g.scoped
    s.delete()


def test_a_watch_on_a_local_goes_when_its_call_ends_or_is_killed(s: DebugSession) -> None:
    s.break_("___slab_alloc")
    s.call("kmalloc", ["64", "GFP_KERNEL"])
    s.next(2)
    s.delete([1])
    p = s.watch("gfp")
    out = s.kill()
    assert out.startswith(f"Watchpoint {p.number} deleted") and p.number not in s.points


def test_selection_survives_a_failed_finish_but_not_a_restore(s: DebugSession) -> None:
    s.break_("___slab_alloc")
    s.call("kmalloc", ["64", "GFP_KERNEL"])
    snap = s.snapshot("here")
    assert "here" in snap
    top = len(s.frames()) - 1
    s.select_frame(top)  # the host-call trampoline
    with pytest.raises(KmemuError, match="outermost frame"):
        s.finish()
    assert s.frame_level == top
    s.select_frame(2)
    restored = s.restore("here")
    assert s.frame_level == 0
    assert re.search(r"stopped at ___slab_alloc \(s=s@entry=0xffff888[0-9a-f]+, "
                     r"gfp=gfp@entry=3264\)", restored)
    assert s.cont().reason == "done"


def test_registers_of_a_caller_frame(s: DebugSession) -> None:
    s.break_("___slab_alloc")
    s.call("kmalloc", ["64", "GFP_KERNEL"])
    s.step()
    s.move_frame(1)
    caller = s.m.backtrace()[1]
    regs = s.registers()
    assert regs["rip"] == caller.pc and regs["rsp"] == caller.sp and "rax" not in regs
    assert s.evaluate("$pc").value_() == caller.pc
    with pytest.raises(KmemuError, match=r"\$rax is not saved in this frame"):
        s.evaluate("$rax")
    assert s.frame_pc() == caller.pc
    assert s.source_position() == (caller.file, caller.line)
    assert s.cont().reason == "done"


def test_value_history_and_void_finish(s: DebugSession) -> None:
    assert s.print_expr("kmalloc_caches[0][6]->size") == "$1 = 64"
    assert s.print_expr("$1 * 2") == "$2 = 128"
    assert s.print_expr("kmalloc_caches[0][6]->name") == \
        '$3 = "kmalloc-64", \'\\000\' <repeats 21 times>'
    with pytest.raises(KmemuError, match=r"history has no \$9 \(values: \$1\.\.\$3\)"):
        s.evaluate("$9")
    s.break_("kfree")
    ptr = s.call("kmalloc", ["8", "GFP_KERNEL"]).value
    s.call("kfree", [hex(ptr)])
    fin = s.finish()
    assert fin.reason == "done" and "Value returned" not in fin.text
    assert fin.text.startswith("Run till exit from #0  kfree (")


def test_short_values_keep_the_sign(machine: Machine) -> None:
    import drgn

    from emu.kernel.scope import short_value
    prog = machine.program
    assert short_value(drgn.Object(prog, "int", -1)) == "-0x1"
    assert short_value(drgn.Object(prog, "unsigned long", 255)) == "0xff"
    assert short_value(drgn.Object(prog, "_Bool", 1)) == "true"
    assert short_value(drgn.Object(prog, "int")) == "<optimized out>"  # absent


def test_function_colon_colon_reaches_a_shadowed_variable(s: DebugSession) -> None:
    s.break_("kmem_cache_alloc")
    cache = int(s.m.var("kmalloc_caches")[0][6])
    s.call("kmem_cache_alloc", [hex(cache), "GFP_KERNEL"])
    for _ in range(60):  # into slab_alloc, inlined into kmem_cache_alloc: its s shadows
        s.stepi()
        if any(v.shadowed and v.name == "s" for v in s.variables(all_scopes=True)):
            break
    else:
        pytest.fail("no shadowed s in kmem_cache_alloc's first 60 instructions")
    outer = s.evaluate("kmem_cache_alloc::s")
    inner = s.evaluate("slab_alloc::s")
    assert int(outer) == int(inner) == int(s.evaluate("s")) == cache  # passed down
    assert s.evaluate("kmem_cache_alloc::gfp").value_() == 0xCC0
    with pytest.raises(KmemuError, match=r"no variable 'nope' of kfree\(\)"):
        s.evaluate("kfree::nope")
    with pytest.raises(KmemuError, match="expected a variable name after '::'"):
        s.evaluate("kfree::3")
    assert s.cont().reason == "done"


def test_an_entry_value_location_is_an_address_not_the_value(machine: Machine) -> None:
    """Without DW_OP_stack_value, 'entry value of rdi + 8' is where the variable lives."""
    import drgn
    from elftools.dwarf.dwarf_expr import DWARFExprOp

    from emu.kernel.entryval import Context, _from_entry_value
    from emu.kernel.scope import Variable

    zones = machine.symbol("zones")
    absent = drgn.Object(machine.program, "unsigned long")
    v = Variable("x", absent, False, "f", False)
    ctx = Context({}, None, machine.read_u64, lambda ops: zones)
    ev = [DWARFExprOp(0, "DW_OP_entry_value", [[DWARFExprOp(0, "DW_OP_reg5", [], 0)]], 0)]
    at = _from_entry_value(machine.program, v,
                           [*ev, DWARFExprOp(0, "DW_OP_plus_uconst", [8], 3)], ctx)
    assert at.entry and at.value.address_ == zones + 8
    assert int(at.value) == machine.read_u64(zones + 8)
    val = _from_entry_value(machine.program, v,
                            [*ev, DWARFExprOp(0, "DW_OP_stack_value", [], 3)], ctx)
    assert val.value.address_ is None and int(val.value) == zones


def test_watches_on_one_frame_all_end_with_it(s: DebugSession) -> None:
    s.break_("tsplit")
    s.call("vmalloc", ["40000"])
    s.delete()
    a, b = s.watch("*r"), s.watch("*l")  # tsplit's out-parameters: its caller's locals
    assert a.scoped and b.scoped and a.scope_frame == b.scope_frame
    for _ in range(10):
        stop = s.cont()
        if "deleted because" in stop.text:
            break
    else:
        pytest.fail("the watches never went out of scope")
    assert f"Watchpoint {a.number} deleted" in stop.text
    assert f"Watchpoint {b.number} deleted" in stop.text
    assert not s.points
    assert s.cont().reason == "done"


def test_next_out_of_a_function_stops_at_the_callers_statement(s: DebugSession) -> None:
    """tsplit returns to the start of a statement in tremove: next stops there (gdb),
    not somewhere further up."""
    s.break_("tsplit")
    s.call("vmalloc", ["40000"])
    s.delete()
    for _ in range(30):
        stop = s.next()
        if not s.m.symbolize(s.m.cpu.rip).startswith("tsplit"):
            break
    assert s.m.symbolize(s.m.cpu.rip).startswith("tremove+"), stop.text
    assert stop.text.startswith("tremove (")
    s.kill()


def test_a_condition_that_fails_stops_and_says_why(s: DebugSession) -> None:
    s.break_("kfree", condition="size == 1")  # kfree has no size
    ptr = s.call("kmalloc", ["8", "GFP_KERNEL"]).value
    stop = s.call("kfree", [hex(ptr)])
    assert stop.reason == "breakpoint"
    assert stop.text.startswith("Error in testing condition for breakpoint 1:\n"
                                'No symbol "size" in current context.'), stop.text
    assert "\nBreakpoint 1, kfree (p=" in stop.text
    s.delete()
    assert s.cont().reason == "done"


def test_until_a_location_in_this_function_skips_recursion_and_can_repeat(
        s: DebugSession) -> None:
    s.break_("tsplit")
    s.call("vmalloc", ["40000"])
    s.delete()
    here = s.m.cpu.rip
    depth = len(s.m.backtrace())
    stop = s.until(f"*{here:#x}")  # tsplit's entry again: only in this frame, and a
    # recursive call's entry is deeper, so this runs to the frame's return
    assert s.m.cpu.rip != here and len(s.m.backtrace()) < depth, stop.text
    s.kill()


def test_at_entry_values_of_arguments_gone_from_their_registers(s: DebugSession) -> None:
    """tremove passed root and v to tsplit in registers a callee may clobber: above
    frame 0 their current values are unknown, but alloc_vmap_area's call site says
    what tremove was given (gdb's root@entry)."""
    s.break_("tsplit")
    s.call("vmalloc", ["40000"])
    level = next(f.level for f in s.m.backtrace() if f.function == "tremove")
    vs = {v.name: v for v in s.m.frame_variables(level)}
    root = s.m.symbol("free_vmap_root")
    assert vs["root"].value.absent_ and int(vs["root"].at_entry) == root
    assert int(vs["v"].at_entry) >= 0xFFFF888000000000
    s.select_frame(level)
    assert re.match(rf"root@entry = {root:#x} <free_vmap_root>\n"
                    r"v@entry = 0xffff888", s.info_variables(True))
    assert int(s.evaluate("root@entry")) == root
    assert s.evaluate("v@entry->va_start").value_() >= 0xFFFFC90000000000  # in vmalloc space
    assert s.evaluate("root").absent_  # the current value stays unknown
    with pytest.raises(KmemuError, match="no entry value of 'l'"):
        s.evaluate("l@entry")  # a local, not an argument
    s.kill()
