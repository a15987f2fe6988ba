"""Issue 10, item 1: a client that leaves at any point never ends the server.

The server logs the disconnect, deletes what the client set and serves the next one;
no socket write can raise SIGPIPE, whatever the process's signal settings."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from emu.frontend.gdbstub.protocol import FakeTarget
from emu.frontend.gdbstub.server import GdbServer
from emu.frontend.gdbstub.transport import frame
from tests.gdbstub.conftest import Server, connect, exchange


class RunningTarget(FakeTarget):
    """A fake whose ``c`` runs until interrupted (5 s at most: then it says S05)."""

    def __init__(self) -> None:
        super().__init__()
        self.running = threading.Event()
        self.stop = threading.Event()
        self.interrupted = False

    def interrupt(self) -> None:
        self.stop.set()

    def take_output(self) -> list[str]:
        return []

    def resume(self, step: bool) -> str:
        self.log.append("continue")
        self.stop.clear()
        self.running.set()
        self.interrupted = self.stop.wait(5)
        self.running.clear()
        return "S02" if self.interrupted else "S05"


@dataclass
class Served:
    srv: GdbServer
    target: RunningTarget
    thread: threading.Thread
    logs: list[str] = field(default_factory=list)

    def wait_clients(self, n: int) -> None:
        deadline = time.monotonic() + 10
        while self.srv.clients < n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.srv.clients >= n, self.logs


@pytest.fixture
def served() -> Iterator[Served]:
    target = RunningTarget()
    logs: list[str] = []
    srv = GdbServer(target, port=0, log=logs.append)
    t = threading.Thread(target=srv.serve, daemon=True)
    s = Served(srv, target, t, logs)
    t.start()
    try:
        yield s
    finally:
        srv.close()
        t.join(5)
        assert not t.is_alive()



def reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def ask(port: int, data: bytes) -> bytes:
    return exchange(port, data, then=b"k")


@pytest.mark.parametrize("packet", [b"?", b"g", b"m10,4"])
def test_a_client_that_sends_and_closes_at_once_leaves_the_server_serving(
        served: Served, packet: bytes) -> None:
    for _ in range(10):
        sock = connect(served.srv.port)
        sock.sendall(frame(packet))
        sock.close()
    served.wait_clients(10)
    assert ask(served.srv.port, b"?") == b"S05"
    assert served.thread.is_alive()
    assert sum("gdb disconnected" in line for line in served.logs) >= 10


def test_a_client_that_resets_the_connection_leaves_the_server_serving(
        served: Served) -> None:
    for data in (frame(b"g"), frame(b"m10,4") * 50, b"$m10", b"+", b""):
        sock = connect(served.srv.port)
        if data:
            sock.sendall(data)
        reset(sock)
    served.wait_clients(5)
    assert ask(served.srv.port, b"?") == b"S05"


def test_a_client_that_leaves_in_the_middle_of_a_packet(served: Served) -> None:
    sock = connect(served.srv.port)
    sock.sendall(b"$m10,")
    sock.close()
    served.wait_clients(1)
    assert "connection closed by the client" in served.logs[-1]
    assert ask(served.srv.port, b"?") == b"S05"


def test_a_client_that_leaves_while_the_guest_runs_stops_the_run(served: Served) -> None:
    sock = connect(served.srv.port)
    sock.sendall(frame(b"c"))
    assert served.target.running.wait(5)
    sock.close()
    served.wait_clients(1)
    assert served.target.interrupted  # stopped as by Ctrl-C, not by the 5 s give-up
    assert "while the guest ran" in served.logs[-1]
    assert "detach" in served.target.log  # what the client set is cleaned up
    assert ask(served.srv.port, b"?") == b"S05"


def test_a_lost_client_gets_what_it_set_deleted(served: Served) -> None:
    sock = connect(served.srv.port)
    sock.sendall(frame(b"Z0,ffffffff80101000,1"))
    assert sock.recv(1) == b"+"
    sock.close()
    served.wait_clients(1)
    assert served.target.log == ["detach"]
    assert "breakpoints and watchpoints are deleted" in served.logs[-1]


def test_a_client_that_detaches_is_not_cleaned_up_twice(served: Served) -> None:
    assert ask(served.srv.port, b"D") == b"OK"
    served.wait_clients(1)
    assert served.target.log == ["detach (resume)"]  # D resumes a stopped call
    assert "detached ('D')" in served.logs[-1]


SCRIPT = textwrap.dedent("""
    import signal, sys
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # as `kmemu boot | head` wants it
    from emu.frontend.gdbstub.protocol import FakeTarget
    from emu.frontend.gdbstub.server import GdbServer
    srv = GdbServer(FakeTarget(), port=0)
    print(srv.port, flush=True)
    srv.serve()
""")


def test_no_socket_write_raises_sigpipe_even_with_sigpipe_at_its_default() -> None:
    """With SIGPIPE's default action, a write to a socket whose peer left would kill
    the process: every write uses MSG_NOSIGNAL."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        for i in range(30):
            sock = connect(port)
            sock.sendall(frame(b"g") * 20)  # replies keep coming after the peer is gone
            reset(sock) if i % 2 else sock.close()
        # the server takes its clients one at a time, in the order they connected: this
        # one is answered only after it has written to (and lost) all 30
        try:
            reply = ask(port, b"?")
        except (OSError, AssertionError):  # refused or cut off: the server died
            proc.wait(10)
            reply = None
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert reply == b"S05"
    finally:
        proc.kill()
        proc.wait(10)


def test_kmemu_gdb_survives_the_issue_repro(shared_server: Server) -> None:
    """The issue's repro: `$?`, `$g` and `$m...` sent and the socket closed at once."""
    for packet in (b"?", b"g", b"mffff888000000000,40") * 3:
        sock = connect(shared_server.port)
        sock.sendall(frame(packet))
        sock.close()
    out = shared_server.gdb("monitor call kmemu_test_add 1 2 3 4 5 6", "continue")
    assert "kmemu_test_add() returned 0x5b (91)" in out, out
    assert shared_server.proc.poll() is None


def test_output_a_lost_client_never_got_is_not_sent_to_the_next(machine) -> None:
    """Found by the fuzzer: the result of a call the lost client ran reached the next
    client as an 'O' packet before its reply to '?' (gdb wants a stop reply there)."""
    from emu.debug.session import DebugSession
    from emu.frontend.gdbstub.target import MachineTarget

    target = MachineTarget(DebugSession(machine))
    target.monitor("call kmemu_test_add 1 2 3 4 5 6")
    assert target.resume(step=False) == "T05thread:1;"
    # the client vanished before take_output(): the server cleans up as for 'D'
    assert target.detach() is None
    assert target.take_output() == []
    machine.call("kmemu_test_add", 1, 1, 1, 1, 1, 1)  # prints nothing, but moves on
    target.monitor("call kmemu_test_add 1 2 3 4 5 6")
    target.resume(step=False)
    assert target.take_output() == ["kmemu_test_add() returned 0x5b (91); the kernel is idle\n"]
