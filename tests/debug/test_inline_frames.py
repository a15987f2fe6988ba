"""emu.debug.frames: gdb's frame list, inlined functions as levels over the unwinder's
real frames (the REPL's output is compared with gdb's in
tests/debugger/test_gdb_frames.py; this checks the Python side)."""

from __future__ import annotations

import pytest

from emu.core.errors import KmemuError
from emu.debug import frames as frames_mod
from emu.debug.session import DebugSession


def _stop_in_fast_path(s: DebugSession) -> None:
    """A watchpoint stop in slab_alloc_nocheck, inlined twice into slab_alloc_hooks."""
    s.call("kmalloc", ["64", "GFP_KERNEL"])  # kmalloc-64's first use refills it
    s.watch("kmalloc_caches[0][6]->cpu_slab.alloc_fast")
    stop = s.call("kmalloc", ["64", "GFP_KERNEL"])
    assert stop.reason == "watchpoint", stop.text
    s.delete()


def test_frames_are_the_real_frames_with_inlined_levels(debug_session: DebugSession) -> None:
    s = debug_session
    _stop_in_fast_path(s)
    m = s.m
    frames = m.frames()
    assert (frames[0].function, frames[0].inline) == ("slab_alloc_nocheck", True)
    # the hooks (when on) and kmalloc inline the fast path: a real function closes each chain
    assert any(f.function == "kmalloc" and not f.inline for f in frames)
    assert sum(f.inline for f in frames) >= 2
    assert [f.level for f in frames] == list(range(len(frames)))
    real = m.backtrace()
    # every real frame appears, in order, closing its own chain
    assert [f.physical for f in frames if not f.inline] == real
    assert [f.function for f in frames if not f.inline] == [f.function for f in real]
    for f in frames:
        assert f.pc == f.physical.pc and f.cfa == f.physical.cfa
        assert f.innermost == (f.index == 0)
    # an outer function's line is the inner call's site
    assert (frames[1].file, frames[1].line) != (frames[0].file, frames[0].line)
    assert m.frames(max_frames=2) == frames[:2]
    s.cont()


def test_chains_are_cached_by_pc(debug_session: DebugSession,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    s = debug_session
    _stop_in_fast_path(s)
    first = s.m.frames()
    calls = []
    real = frames_mod._drgn_chains
    monkeypatch.setattr(frames_mod, "_drgn_chains",
                        lambda m: calls.append(1) or real(m))
    assert s.m.frames() == first and not calls  # no DWARF read again at the same pcs
    s.cont()


def test_selection_scope_and_finish_of_an_inline_frame(debug_session: DebugSession) -> None:
    s = debug_session
    _stop_in_fast_path(s)
    assert "object" in {v.name for v in s.variables()}
    s.select_frame(1)  # the function slab_alloc_nocheck was inlined into
    outer = s.selected_display_frame()
    assert outer.level == 1 and outer.physical.level == 0
    assert s.selected_frame() is None  # frame 0's real frame: the CPU's registers
    assert {v.function for v in s.variables()} <= {outer.function}
    with pytest.raises(KmemuError, match='No symbol "object" in current context'):
        s.evaluate("object")  # slab_alloc_nocheck's local: not in its caller's scope
    assert s.evaluate("slab_alloc_nocheck::object").value_() != 0  # :: reaches it
    s.select_frame(0)
    stop = s.finish()
    assert stop.text.startswith("Run till exit from #0  slab_alloc_nocheck (")
    assert "Value returned" not in stop.text  # an inlined body returns nothing
    if stop.reason == "finish":  # stopped where the body was left
        assert stop.value is None
        assert all(f.function != "slab_alloc_nocheck" for f in s.frames())
        assert s.cont().reason == "done"
    else:  # the body was kmalloc's tail: the host call ended on the way, said after gdb's
        assert stop.reason == "done" and "kmalloc() returned 0xffff888" in stop.text
