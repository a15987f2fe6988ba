"""The TCP server's Ctrl-C handling against a fake target whose runs start late: an
interrupt that arrives before the run has started must still stop it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from emu.frontend.gdbstub.protocol import FakeTarget
from emu.frontend.gdbstub.server import GdbServer
from emu.frontend.gdbstub.transport import Decoder, Packet, frame

START_DELAY = 0.3  # the target is "starting the run" this long before it listens


class LateStartTarget(FakeTarget):
    """Like Machine: a run forgets interrupts from before it started, then runs until
    interrupted (or gives up after 5 s, reporting S05: what a lost Ctrl-C looks like)."""

    def __init__(self) -> None:
        super().__init__()
        self.stop = threading.Event()

    def interrupt(self) -> None:
        self.stop.set()

    def take_output(self) -> list[str]:
        return []

    def resume(self, step: bool) -> str:
        time.sleep(START_DELAY)
        self.stop.clear()  # an interrupt() before this point is not for this run
        return "S02" if self.stop.wait(5) else "S05"


@pytest.fixture
def client() -> Iterator[socket.socket]:
    srv = GdbServer(LateStartTarget(), port=0)
    t = threading.Thread(target=srv.serve, kwargs={"once": True}, daemon=True)
    t.start()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            yield s
    finally:
        srv.close()


def _reply(sock: socket.socket) -> bytes:
    dec = Decoder()
    while True:
        for ev in dec.feed(sock.recv(4096)):
            if isinstance(ev, Packet):
                return ev.data


def test_ctrl_c_before_the_run_starts_still_stops_it(client: socket.socket) -> None:
    client.sendall(frame(b"c"))
    time.sleep(START_DELAY / 3)  # the watcher listens, the run has not started
    t0 = time.monotonic()
    client.sendall(b"\x03")
    assert _reply(client) == b"S02"
    assert time.monotonic() - t0 < 4  # not the target's 5 s give-up


def test_ctrl_c_in_the_same_read_as_the_resume_packet(client: socket.socket) -> None:
    client.sendall(frame(b"c") + b"\x03")
    assert _reply(client) == b"S02"


def test_many_short_runs_never_block_on_the_watchers_wake_pipe() -> None:
    """Runs that end before the watcher looks (a breakpoint hit gdb resumes from at
    once) used to leave a wake-up byte each: after a few hundred the pipe was full
    and the server blocked for ever in disarm()."""
    from emu.frontend.gdbstub.server import Watcher

    a, b = socket.socketpair()
    w = Watcher(a, lambda: None)
    done = threading.Event()

    def many() -> None:
        for _ in range(5000):
            w.arm(False)
            w.disarm()
        done.set()

    threading.Thread(target=many, daemon=True).start()
    try:
        assert done.wait(20), "disarm() blocked"
    finally:
        w.close()
        a.close()
        b.close()


def test_a_ctrl_c_during_a_long_run_is_seen_after_the_watcher_parked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """After a quiet spell the watcher waits untimed; arm() must wake it.  The spell
    is made short (its length is a latency choice, not part of the behaviour) and the
    test waits until the watcher says it parked, rather than for a time it guesses."""
    from emu.frontend.gdbstub import server

    monkeypatch.setattr(server, "PARK_S", 5 * server.TICK_S)
    a, b = socket.socketpair()
    stopped = threading.Event()
    w = server.Watcher(a, stopped.set)
    try:
        deadline = time.monotonic() + 10
        while not w._parked and time.monotonic() < deadline:  # noqa: SLF001
            time.sleep(server.TICK_S)
        assert w._parked, "the watcher never parked"  # noqa: SLF001
        w.arm(False)
        b.sendall(b"\x03")
        assert stopped.wait(5)
        w.disarm()
    finally:
        w.close()
        a.close()
        b.close()
