"""Inlined functions are frames, in the REPL as in gdb: ``bt``, ``frame N``, ``up``,
``down``, ``info frame``, ``print``/``info locals`` and ``finish`` at stops inside
SLUB's inlined fast path, each command's output compared line by line with stock
gdb's for the same command against ``kmemu gdb`` (addresses aside).

The script: a watchpoint on kmalloc-64's fast-path counter stops in
``slab_alloc_nocheck``, inlined in ``slab_alloc_hooked``, inlined in
``slab_alloc_hooks`` (a real function), called from ``slab_alloc`` inlined in
``kmalloc``: six frames over three real ones.  A breakpoint at
``slab_alloc_hooks`` then shows a caller frame that is inlined.  Both machines boot
with slab_debug on one other cache, which sends every allocation through the hooks
(tests/gdbstub/conftest.py HOOKS_CMDLINE; at the boot defaults kmalloc takes none).
"""

from __future__ import annotations

import io

import pytest

from emu.debug.session import DebugSession
from emu.frontend.debugger.repl import Repl
from emu.frontend.pytest_plugin import booted_machine
from tests.debugger.test_gdb_words import normalize
from tests.gdbstub.conftest import HOOKS_CMDLINE, gdb_sections

WATCH = "watch kmalloc_caches[0][6]->cpu_slab.alloc_fast"
# (name, gdb's setup commands, the REPL's setup commands, the command compared)
STEPS: list[tuple[str, tuple[str, ...], tuple[str, ...], str]] = [
    # kmalloc-64's first use refills it (no fast-path hit); the second hits the watch
    ("watch_stop", ("monitor call kmalloc 64 GFP_KERNEL", "continue", WATCH,
                    "monitor call kmalloc 64 GFP_KERNEL"),
     ("call kmalloc 64 GFP_KERNEL", WATCH), "continue"),
    ("bt", (), (), "bt"),
    ("bt_1", (), (), "bt 1"),
    ("info_frame_inline", (), (), "info frame"),
    ("frame_1", (), (), "frame 1"),
    ("info_frame_inline_caller", (), (), "info frame"),
    ("info_locals_inline", (), (), "info locals"),
    ("print_inline_arg", (), (), "p orig_size"),
    ("up_to_real", (), (), "up"),
    ("print_real_arg", (), (), "p gdb"),
    ("up_across_call", (), (), "up"),
    ("info_frame_inline_above", (), (), "info frame"),
    ("up_to_caller_of_inline", (), (), "up"),
    ("down", (), (), "down"),
    ("down_2", (), (), "down 2"),
    ("frame_0", (), (), "frame 0"),
    ("down_at_bottom", (), (), "down"),
    ("finish_inline", (), (), "finish"),
    ("bt_after_finish", (), (), "bt"),
    # a real function whose caller is an inlined body
    ("break_stop", ("delete", "continue", "break slab_alloc_hooks",
                    "monitor call kmalloc 64 GFP_KERNEL"),
     ("delete", "continue", "break slab_alloc_hooks"), "continue"),
    ("bt_real_in_inline", (), (), "bt"),
    ("frame_1_inline_caller", (), (), "frame 1"),
    ("info_frame_inline_caller_of_real", (), (), "info frame"),
    ("finish_outer_inline", (), (), "finish"),
]
# the REPL's 'continue' starts no call: the call that gdb queued and continued
REPL_RUN = {"watch_stop": "call kmalloc 64 GFP_KERNEL", "break_stop": "call kmalloc 64 GFP_KERNEL"}


def _gdb_transcript() -> dict[str, str]:
    return gdb_sections([(name, tuple(setup), cmd) for name, setup, _, cmd in STEPS],
                        "--cmdline", HOOKS_CMDLINE)


def _repl_transcript() -> dict[str, str]:
    m = booted_machine(cmdline=HOOKS_CMDLINE)
    buf = io.StringIO()
    repl = Repl(DebugSession(m), buf)
    out = {}
    try:
        for name, _, setup, cmd in STEPS:
            for c in setup:
                repl.execute(c)
            start = buf.tell()
            repl.execute(REPL_RUN.get(name, cmd))
            out[name] = buf.getvalue()[start:]
    finally:
        repl.s.kill()
        repl.s.delete()
        m.suspend_on_interrupt = False
    return out


@pytest.fixture(scope="module")
def transcripts() -> tuple[dict[str, str], dict[str, str]]:
    return _gdb_transcript(), _repl_transcript()


@pytest.mark.parametrize("name", [s[0] for s in STEPS])
def test_inline_frames_as_gdb_prints_them(name: str, transcripts) -> None:
    gdb, repl = transcripts
    want, got = normalize(gdb[name]), normalize(repl[name])
    assert want, f"gdb printed nothing for {name}: the script went astray\n{gdb}"
    if name == "watch_stop":  # kmemu's own line after gdb's: who wrote the value
        assert got[:len(want)] == want, (gdb[name], repl[name])
        assert len(got) == len(want) + 1 and got[-1].startswith("(written by "), got
        return
    assert got == want, (gdb[name], repl[name])
