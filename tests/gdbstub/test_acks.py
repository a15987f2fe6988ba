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
    """A target whose monitor commands answer ``delay`` seconds late, as a loaded
    machine's may."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def monitor(self, command: str) -> str:
        time.sleep(self.delay)
        return f"ran: {command}\n"


def _serve(delay: float) -> Iterator[GdbServer]:
    srv = GdbServer(SlowMonitor(delay), port=0)
    t = threading.Thread(target=srv.serve, kwargs={"once": True}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.close()
        t.join(10)


@pytest.fixture
def server() -> Iterator[GdbServer]:
    """For raw clients.  The stub handles one event at a time, in the order they
    arrive: a ``-`` written while a reply is being computed is read after that reply
    went out, however long it took, so these need no slow command."""
    yield from _serve(0.0)


@pytest.fixture
def slow_server() -> Iterator[GdbServer]:
    """For stock gdb, whose ``-`` really is written while it waits: replies later than
    its remotetimeout."""
    yield from _serve(SLOW_S)


class Raw:
    """A raw client that keeps every packet the stub sends (acks skipped), in order."""

    #: The packet a check ends with, and its reply: the stub answers in order, so
    #: anything it sent before this reply (a duplicate, however late) is seen.
    SYNC, SYNC_REPLY = b"qC", b"QC1"

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.dec, self.got = sock, Decoder(), []
        sock.settimeout(10)

    def _read(self) -> None:
        self.got += [e.data for e in self.dec.feed(self.sock.recv(4096))
                     if isinstance(e, Packet)]

    def next(self) -> bytes:
        """The next packet."""
        while not self.got:
            self._read()
        return self.got.pop(0)

    def replies(self) -> list[bytes]:
        """Every packet until the reply to a ``qC`` sent now (not included)."""
        self.sock.sendall(frame(self.SYNC))
        while self.SYNC_REPLY not in self.got:
            self._read()
        at = self.got.index(self.SYNC_REPLY)
        out, self.got = self.got[:at], self.got[at + 1:]
        return out


def test_a_nak_in_no_ack_mode_resends_nothing(server: GdbServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        c = Raw(s)
        s.sendall(frame(b"QStartNoAckMode"))
        assert c.replies() == [b"OK"]
        s.sendall(frame(b"qRcmd," + b"slow".hex().encode()) + b"-")  # gdb's timeout
        s.sendall(frame(b"vCont?"))
        assert c.replies() == [b"ran: slow\n".hex().encode(), b"vCont;c;C;s;S"]
        assert c.replies() == []


def test_a_nak_resends_only_an_unacknowledged_reply(server: GdbServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        c = Raw(s)
        s.sendall(frame(b"?"))
        assert c.next() == b"S05"
        s.sendall(b"-")  # the reply was garbled: send it again (once)
        assert c.replies() == [b"S05"]
        s.sendall(b"+-")  # qC's reply acknowledged: a later '-' is noise
        s.sendall(frame(b"vCont?"))
        assert c.replies() == [b"vCont;c;C;s;S"]
        assert c.replies() == []


@pytest.mark.slow
def test_stock_gdb_after_a_reply_slower_than_its_timeout(slow_server: GdbServer) -> None:
    gdb = shutil.which("gdb")
    if gdb is None:
        pytest.skip("gdb is not installed (apt-get install gdb; .ci/run installs it)")
    res = subprocess.run([gdb, "-q", "-batch", "-nx", "-ex", "set remotetimeout 1",
                          "-ex", f"target remote 127.0.0.1:{slow_server.port}",
                          "-ex", "monitor slow", "-ex", "stepi", "-ex", "print $rip"],
                         capture_output=True, text=True, timeout=60)
    out = res.stdout + res.stderr
    assert "ran: slow" in out
    assert "Invalid remote reply" not in out and "$1 = (void (*)()) 0x0" in out, out
