"""The gdb stub's TCP server: transport events in, protocol replies out.

Layer 6.  One client at a time; when it leaves (``D``, ``k`` or a closed
socket) the machine stays as it is and the next client may attach.  While
the guest runs (``c``/``s``/``vCont``) a watcher thread reads the socket so a
Ctrl-C (a bare 0x03) stops the guest; bytes it reads meanwhile are kept for
the decoder.  Console output the kernel printed during a run, and the
result of a finished call, reach gdb as ``O`` packets before the stop reply.

>>> srv = GdbServer(MachineTarget(DebugSession(m)), port=0)   # doctest: +SKIP
>>> srv.serve()                                                # doctest: +SKIP
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable

from emu.gdbstub.protocol import Protocol
from emu.gdbstub.transport import Ack, BadPacket, Decoder, Interrupt, Packet, frame

LOOPBACK = ("127.0.0.1", "localhost", "::1")
RETRY_S = 0.05  # how often a Ctrl-C is repeated until the run it is meant for stops


def is_resume(data: bytes) -> bool:
    """Packets that run the guest: the watcher thread must listen for Ctrl-C."""
    return data[:1] in (b"c", b"s", b"C", b"S") or (
        data.startswith(b"vCont;") and data != b"vCont?")


class GdbServer:
    def __init__(self, target, host: str = "127.0.0.1", port: int = 1234,
                 log: Callable[[str], None] | None = None) -> None:
        self.target = target
        self.log = log or (lambda _: None)
        self.sock = socket.create_server((host, port), reuse_port=False)
        self.host = host
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    def serve(self, once: bool = False) -> None:
        """Accept clients one after another (only the first if ``once``)."""
        while True:
            conn, peer = self.sock.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one packet per step
            self.log(f"gdb connected from {peer[0]}:{peer[1]}")
            try:
                Connection(conn, self.target).run()
            finally:
                conn.close()
                self.log("gdb disconnected")
            if once:
                return


class Connection:
    def __init__(self, conn: socket.socket, target) -> None:
        self.conn = conn
        self.target = target
        self.proto = Protocol(target)
        self.decoder = Decoder()
        self.last: bytes = b""

    def send(self, raw: bytes) -> None:
        self.conn.sendall(raw)

    def reply(self, payload: bytes) -> None:
        self.last = frame(payload)
        self.send(self.last)

    def run(self) -> None:
        pending = b""
        while True:
            data = pending or self._recv()
            pending = b""
            if not data:
                return
            events = self.decoder.feed(data)
            for i, ev in enumerate(events):
                if isinstance(ev, BadPacket):
                    self.send(b"-")
                elif isinstance(ev, Ack):
                    if not ev.ok and self.last:
                        self.send(self.last)  # the client asks for a resend
                elif isinstance(ev, Interrupt):
                    continue  # Ctrl-C with the guest not running: nothing to stop
                elif isinstance(ev, Packet):
                    if not self.proto.no_ack:
                        self.send(b"+")
                    if is_resume(ev.data):
                        # a Ctrl-C in the same read as the resume packet is for this run
                        early = any(isinstance(e, Interrupt) for e in events[i + 1:])
                        answer, extra = self._run_guest(ev.data, early)
                        pending += extra
                    else:
                        answer = self.proto.handle(ev.data)
                    for text in self.target.take_output():
                        for i in range(0, len(text), 512):
                            self.reply(b"O" + text[i:i + 512].encode().hex().encode())
                    if answer is None:  # 'k': the client is gone
                        return
                    self.reply(answer)

    def _recv(self) -> bytes:
        try:
            return self.conn.recv(65536)
        except OSError:
            return b""

    def _run_guest(self, data: bytes, interrupted: bool = False) -> tuple[bytes | None, bytes]:
        """Handle a resume packet while a watcher thread listens for Ctrl-C.

        A Ctrl-C is repeated every ``RETRY_S`` until the run ends: one that arrives
        before the guest has started running would otherwise be dropped by the run's
        start, and gdb would wait for ever (``interrupted``: one came already)."""
        done = threading.Event()
        ctrl_c = threading.Event()
        if interrupted:
            ctrl_c.set()
        extra = bytearray()
        wake_r, wake_w = socket.socketpair()  # ends the watcher at once when the run ends

        def watch() -> None:
            while not done.is_set():
                if ctrl_c.is_set():
                    self.target.interrupt()
                r, _, _ = select.select([self.conn, wake_r], [], [],
                                        RETRY_S if ctrl_c.is_set() else 1.0)
                if wake_r in r or self.conn not in r:
                    continue
                try:
                    chunk = self.conn.recv(4096)
                except OSError:
                    return
                if not chunk:
                    return
                if b"\x03" in chunk:
                    ctrl_c.set()
                    chunk = chunk.replace(b"\x03", b"")
                extra.extend(chunk)

        t = threading.Thread(target=watch, name="gdb-ctrl-c", daemon=True)
        t.start()
        try:
            answer = self.proto.handle(data)
        finally:
            done.set()
            wake_w.send(b"x")
            t.join()
            wake_r.close()
            wake_w.close()
        return answer, bytes(extra)


def gdb_command_line(elf: str, host: str, port: int) -> str:
    """The exact gdb invocation for this server."""
    return f"gdb -q {elf} -ex 'target remote {host}:{port}'"
