"""Acknowledgements: a ``-`` resends only a reply still waiting for its ``+``.

gdb writes ``-`` whenever a reply takes longer than ``remotetimeout``, in no-ack
mode too.  The stub used to resend its last reply on every ``-``: after a slow
reply (a loaded machine, a long ``monitor`` command) gdb then read that reply
again as the answer to its next packet, and from there on every reply was one
late: "warning: Invalid remote reply: vCont;c;C;s;S" (the ``vCont?`` answer read
as a stop reply), seen once under load.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from emu.frontend.gdbstub.protocol import FakeTarget
from emu.frontend.gdbstub.server import GdbServer
from emu.frontend.gdbstub.transport import Decoder, Packet, frame

SLOW_S = 1.6  # longer than the 1 s remotetimeout the gdb test sets


class SlowMonitor(FakeTarget):
    """A target whose monitor commands answer late, as a loaded machine's may."""

    def monitor(self, command: str) -> str:
        time.sleep(SLOW_S)
        return f"ran: {command}\n"


@pytest.fixture
def server() -> Iterator[GdbServer]:
    srv = GdbServer(SlowMonitor(), port=0)
    t = threading.Thread(target=srv.serve, kwargs={"once": True}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.close()
        t.join(10)


def _replies(sock: socket.socket, n: int) -> list[bytes]:
    """The next ``n`` packets the stub sends (acks skipped), then whatever else
    arrives within 0.3 s (a duplicate would)."""
    dec, got = Decoder(), []
    sock.settimeout(10)
    while len(got) < n:
        got += [e.data for e in dec.feed(sock.recv(4096)) if isinstance(e, Packet)]
    sock.settimeout(0.3)
    try:
        while data := sock.recv(4096):
            got += [e.data for e in dec.feed(data) if isinstance(e, Packet)]
    except TimeoutError:
        pass
    return got


@pytest.mark.slow
def test_a_nak_in_no_ack_mode_resends_nothing(server: GdbServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(frame(b"QStartNoAckMode"))
        assert _replies(s, 1) == [b"OK"]
        s.sendall(frame(b"qRcmd," + b"slow".hex().encode()) + b"-")  # gdb's timeout
        s.sendall(frame(b"vCont?"))
        assert _replies(s, 2) == [b"ran: slow\n".hex().encode(), b"vCont;c;C;s;S"]


def test_a_nak_resends_only_an_unacknowledged_reply(server: GdbServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(frame(b"?"))
        assert _replies(s, 1) == [b"S05"]
        s.sendall(b"-")  # the reply was garbled: send it again
        assert _replies(s, 1) == [b"S05"]
        s.sendall(b"+-")  # acknowledged: a later '-' is noise
        s.sendall(frame(b"vCont?"))
        assert _replies(s, 1) == [b"vCont;c;C;s;S"]


@pytest.mark.slow
def test_stock_gdb_after_a_reply_slower_than_its_timeout(server: GdbServer) -> None:
    gdb = shutil.which("gdb")
    if gdb is None:
        pytest.skip("gdb is not installed (apt-get install gdb; .ci/run installs it)")
    res = subprocess.run([gdb, "-q", "-batch", "-nx", "-ex", "set remotetimeout 1",
                          "-ex", f"target remote 127.0.0.1:{server.port}",
                          "-ex", "monitor slow", "-ex", "stepi", "-ex", "print $rip"],
                         capture_output=True, text=True, timeout=60)
    out = res.stdout + res.stderr
    assert "ran: slow" in out
    assert "Invalid remote reply" not in out and "$1 = (void (*)()) 0x0" in out, out
