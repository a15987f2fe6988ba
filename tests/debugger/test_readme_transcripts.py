"""The README's `kmemu debug` transcripts are true as written, in order: each command
is run in one REPL session and its output compared line by line with the README's
(addresses, 64-bit decimals and the checkout's path aside)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from emu.debug.session import DebugSession
from emu.frontend.debugger.repl import Repl
from emu.frontend.pytest_plugin import booted_machine

README = Path(__file__).parents[2] / "README.md"
PROMPT = "    (kmemu) "


def transcript() -> list[tuple[str, list[str]]]:
    """(command, the README's output lines) for each prompt of the "Debugging"
    section's indented blocks, in order."""
    text = README.read_text()
    section = text[text.index("\n## Debugging\n"):]
    section = section[:section.index("\n## ", 1)]
    steps: list[tuple[str, list[str]]] = []
    for line in section.splitlines():
        if line.startswith(PROMPT):
            steps.append((line[len(PROMPT):], []))
        elif steps and line.startswith("    ") and not line.startswith("    $ "):
            steps[-1][1].append(line[4:])
        elif steps and line.strip():
            steps.append(("", []))  # prose: the block ended
    return [s for s in steps if s[0]]


def normalize(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        line = " ".join(line.split())  # the README shows a terminal's tabs as spaces
        line = re.sub(r"0x[0-9a-f]+", "0x?", line)
        line = re.sub(r"\b\d{10,}\b", "N", line)
        out.append(re.sub(r"/\S*/kernel/", "/.../kernel/", line))
    return [line for line in out if line]


def test_the_readme_debugging_transcripts_are_true_in_order() -> None:
    steps = transcript()
    assert len(steps) >= 15 and steps[0][0] == "break kmalloc", steps[:2]
    m = booted_machine()
    buf = io.StringIO()
    repl = Repl(DebugSession(m), buf)
    try:
        for cmd, want in steps:
            start = buf.tell()
            repl.execute(cmd)
            got = buf.getvalue()[start:].splitlines()
            assert normalize(got) == normalize(want), (cmd, got, want)
    finally:
        repl.s.kill()
        repl.s.delete()
        m.suspend_on_interrupt = False
