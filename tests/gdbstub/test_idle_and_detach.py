"""Stock gdb against the stub at idle and across detach (issue 13, bugs 2-5), compared
with QEMU's gdbstub on the same image where the same commands run there.

One stub (in this process, over the booted machine) serves every gdb run of the
module; the gdb runs happen once, in the fixture, and each test reads its part.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from emu import Machine
from emu.debug.session import DebugSession
from emu.frontend import gdbbench
from emu.frontend.gdbstub.server import GdbServer
from emu.frontend.gdbstub.target import MachineTarget

# The same commands on both back ends: gdb's inferior calls and register writes.
SAME = ["print kmemu_test_add(1, 2, 3, 4, 5, 6)", "set $rdi = 7", "print $rdi",
        "print kmemu_test_add(2, 0, 0, 0, 0, 1)"]

IDLE = [
    "bt", "echo --idle-bt-end--\\n",
    *SAME,
    "info symbol $pc",
    "break kmemu_test_add", "print kmemu_test_add(1, 1, 1, 1, 1, 1)", "bt 1", "continue",
    "info symbol $pc", "delete",
    "print irq_count[0x30]", "monitor irq 0x30", "break test_irq_handler", "continue",
    "bt 1", "continue", "print irq_count[0x30]", "delete",
    "monitor irq 5", "monitor irq 0xec",
]
DETACH_ADD = ["break kmemu_test_add", "monitor call kmemu_test_add 1 2 3 4 5 6", "continue",
              "detach"]
AFTER_ADD = ["monitor result", "bt", "break kmemu_test_spin",
             "monitor call kmemu_test_spin 0", "continue", "detach"]
REATTACH = ["bt 1", "info symbol $pc", "kill"]


@dataclass
class Runs:
    machine: Machine
    outputs: list[str]
    logs: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def runs() -> Iterator[Runs]:
    if shutil.which("gdb") is None:
        pytest.skip("gdb is not installed (apt-get install gdb)")
    m = Machine.booted()
    m.budget_seconds = 30.0
    logs: list[str] = []
    srv = GdbServer(MachineTarget(DebugSession(m)), "127.0.0.1", 0, log=logs.append)
    t = threading.Thread(target=srv.serve, daemon=True)
    t.start()
    outputs = []
    try:
        for cmds in (IDLE, DETACH_ADD, AFTER_ADD, REATTACH):
            out, _ = gdbbench._run_gdb(str(m.artifacts.elf), srv.port, cmds, 120)  # noqa: SLF001
            outputs.append(out)
    finally:
        srv.close()
        t.join(10)
    yield Runs(m, outputs, logs)
    if m.state != "ready":
        m.restore(Machine.booted().snapshot())


def test_bt_at_idle_ends_at_the_idle_loop(runs: Runs) -> None:
    head = runs.outputs[0].split("--idle-bt-end--")[0]
    assert re.search(r"^#0\s+kmemu_idle_loop \(\) at \S*entry\.S:\d+$", head, re.M), head
    assert "#1" not in head and "Backtrace stopped" not in head, head


def test_inferior_calls_and_register_writes_at_idle(runs: Runs) -> None:
    out = runs.outputs[0]
    assert "$1 = 91" in out and "$2 = 7" in out and "$3 = 8" in out, out
    assert "E03" not in out and "Could not write register" not in out, out
    # back at the idle loop after each call: gdb wrote its saved registers back
    assert re.search(r"^kmemu_idle_loop \+ \d+ in section \.text$", out, re.M), out


def test_a_breakpoint_inside_an_inferior_call_stops_it(runs: Runs) -> None:
    out = runs.outputs[0]
    assert "The program being debugged stopped while in a function called from GDB." in out
    assert re.search(r"#0\s+kmemu_test_add \(a=1, b=1, c=1, d=1, e=1, f=1\)", out), out
    # continue ends the call where gdb waits for it; the machine is idle again
    assert len(re.findall(r"^kmemu_idle_loop \+ \d+ in section \.text$", out, re.M)) == 2, out


def test_monitor_irq_at_idle_is_delivered_by_continue(runs: Runs) -> None:
    out = runs.outputs[0]
    before, after = (int(v) for v in re.findall(r"^\$\d+ = (\d+)$", out, re.M)[-2:])
    assert after == before + 1, out
    assert "IRQ 0x30 queued: 'continue' delivers it" in out
    assert re.search(r"Breakpoint \d+, test_irq_handler \(regs=0x", out), out
    assert "error: interrupt vector 5 is outside 32..255" in out
    assert "error: vector 0xec is kmemu's own" in out


def test_detach_lets_a_stopped_call_finish_and_keeps_its_result(runs: Runs) -> None:
    assert re.search(r"Breakpoint 1, kmemu_test_add \(a=1, b=2", runs.outputs[1])
    assert "kmemu_test_add() returned 0x5b (91) (after gdb detached); the kernel is idle" \
        in runs.logs, runs.logs
    after = runs.outputs[2]
    assert "kmemu_test_add() returned 0x5b (91) (after gdb detached)" in after, after
    assert re.search(r"^#0\s+kmemu_idle_loop \(\)", after, re.M), after  # it did end


def test_the_next_attach_stops_a_call_left_running(runs: Runs) -> None:
    assert any(re.match(r"the call kmemu_test_spin\(\) left running at detach is stopped "
                        r"at kmemu_test_spin\+", line) for line in runs.logs), runs.logs
    out = runs.outputs[3]
    assert re.search(r"^#0\s+(0x[0-9a-f]+ in )?kmemu_test_spin \(n=0\)", out, re.M), out
    assert re.search(r"^kmemu_test_spin \+ \d+ in section \.text$", out, re.M), out


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None or shutil.which("gdb") is None,
                    reason="needs qemu-system-x86_64 and gdb")
def test_same_values_as_qemu_for_the_same_commands(runs: Runs) -> None:
    out, _, _ = gdbbench.qemu_gdb(SAME)
    values = re.findall(r"^\$\d+ = .*$", out, re.M)
    assert values == ["$1 = 91", "$2 = 7", "$3 = 8"], out
    assert re.findall(r"^\$\d+ = .*$", runs.outputs[0], re.M)[:3] == values


def test_irq_while_a_call_is_stopped_is_delivered_when_it_runs_on(debug_session) -> None:
    s = debug_session
    s.break_("kmemu_test_spin")
    s.call("kmemu_test_spin", ["1000"])
    stop = s.irq(0x30)
    assert stop.reason == "pending" and "delivered when kmemu_test_spin() runs on" in stop.text
    s.break_("test_irq_handler")
    stop = s.cont()
    assert stop.reason == "breakpoint" and s.m.symbolize(stop.rip).startswith("test_irq_handler")
    assert s.call_in_progress.name == "kmemu_test_spin"  # taken inside the stopped call
    s.delete()
    assert s.cont().reason == "done"
