"""Stop descriptions are built when read (issue 13: the gdb stub never reads them),
and the DWARF tables a launch needs are kept on disk."""

from __future__ import annotations

import pickle

import pytest

from emu.debug.session import SessionError, Stop
from emu.kernel.filecache import load_on_disk


def test_a_stop_is_described_only_when_read(debug_session) -> None:
    s = debug_session
    s.break_("kmemu_test_add")
    stop = s.call("kmemu_test_add", ["1", "2", "3", "4", "5", "6"])
    assert stop.reason == "breakpoint" and not stop.described
    assert stop.text.startswith("Breakpoint 1, kmemu_test_add (")
    assert stop.described


def test_a_description_left_unread_is_refused_after_the_machine_ran_on(debug_session) -> None:
    s = debug_session
    s.break_("kmemu_test_add")
    first = s.call("kmemu_test_add", ["1", "2", "3", "4", "5", "6"])
    assert s.cont().reason == "done"
    with pytest.raises(SessionError, match="not read before the machine ran on"):
        _ = first.text


def test_wrap_keeps_the_text_lazy_and_in_order() -> None:
    calls = []

    def describe() -> str:
        calls.append(1)
        return "body"

    stop = Stop("step", describe, 0x1000)
    stop.wrap(before="<", after=">")
    stop.wrap(before="[")
    assert calls == [] and not stop.described
    assert stop.text == "[<body>" and stop.text == "[<body>" and calls == [1]


def test_load_on_disk_reuses_the_saved_value_for_the_same_file(tmp_path) -> None:
    f = tmp_path / "kernel.elf"
    f.write_bytes(b"\x7fELF one")
    built = []

    def build(p):
        built.append(p)
        return {"n": len(built)}

    assert load_on_disk(f, "t", "v1", build) == {"n": 1}
    assert load_on_disk(f, "t", "v1", build) == {"n": 1} and len(built) == 1
    assert load_on_disk(f, "t", "v2", build) == {"n": 2}  # another version: rebuilt
    f.write_bytes(b"\x7fELF two, longer")  # another file: rebuilt
    assert load_on_disk(f, "t", "v2", build) == {"n": 3}
    (tmp_path / "kernel.elf.t.pickle").write_bytes(b"not a pickle")
    assert load_on_disk(f, "t", "v2", build) == {"n": 4}
    key, value = pickle.loads((tmp_path / "kernel.elf.t.pickle").read_bytes())
    assert value == {"n": 4} and key[2] == "v2"
