"""The gdb stub's TCP server: transport events in, protocol replies out.

Layer 6.  One client at a time; when it leaves (``D``, ``k`` or a closed
socket) the next client may attach.  A client that vanishes (its socket
closed or reset at any point, even in the middle of a packet, a reply or a
run) never ends the server: the disconnect is logged, the points it set are
deleted and a call it left stopped is killed, as ``D`` would have done (it
cannot remove them itself any more), and the server waits for the next
client.  Every write to the socket uses ``MSG_NOSIGNAL``, so no SIGPIPE can
reach the process whatever its signal settings; a broken connection is a
:class:`ClientGone`.  While the guest runs (``c``/``s``/``vCont``) a watcher
thread reads the socket so a Ctrl-C (a bare 0x03) stops the guest; bytes it
reads meanwhile are kept for the decoder, and a client that leaves during the
run stops it as a Ctrl-C would.  Console output the kernel printed during a
run, and the result of a finished call, reach gdb as ``O`` packets before
the stop reply.

>>> srv = GdbServer(MachineTarget(DebugSession(m)), port=0)   # doctest: +SKIP
>>> srv.serve()                                                # doctest: +SKIP
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable

from emu.frontend.gdbstub.protocol import Protocol
from emu.frontend.gdbstub.transport import Ack, BadPacket, Decoder, Interrupt, Packet, frame

LOOPBACK = ("127.0.0.1", "localhost", "::1")
RETRY_S = 0.05  # how often a Ctrl-C is repeated until the run it is meant for stops


def is_resume(data: bytes) -> bool:
    """Packets that run the guest: the watcher thread must listen for Ctrl-C."""
    return data[:1] in (b"c", b"s", b"C", b"S") or (
        data.startswith(b"vCont;") and data != b"vCont?")


class ClientGone(Exception):
    """The client's connection broke (closed or reset by the peer)."""


def _lost(e: OSError) -> ClientGone:
    return ClientGone(f"connection lost ({e.strerror or type(e).__name__})")


class GdbServer:
    def __init__(self, target, host: str = "127.0.0.1", port: int = 1234,
                 log: Callable[[str], None] | None = None) -> None:
        self.target = target
        self.log = log or (lambda _: None)
        self.sock = socket.create_server((host, port), reuse_port=False)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.clients = 0  # clients served so far (tests watch it)
        self._closing = False

    def close(self) -> None:
        """Stop serving: a thread blocked in ``serve`` returns (shutdown wakes accept)."""
        self._closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # never listened, or already shut down
        self.sock.close()

    def serve(self, once: bool = False) -> None:
        """Accept clients one after another (only the first if ``once``).  Returns
        when ``once`` is done or the listening socket is closed."""
        while True:
            try:
                conn, peer = self.sock.accept()
            except (ConnectionAbortedError, ConnectionResetError):
                continue  # the client gave up before we accepted it
            except OSError:
                if self._closing:
                    return
                raise
            self.serve_client(conn, f"{peer[0]}:{peer[1]}")
            if once:
                return

    def serve_client(self, conn: socket.socket, peer: str) -> None:
        """One client from connect to disconnect; never raises for anything the client
        does (a kmemu bug is logged as one line and the server goes on)."""
        self.log(f"gdb connected from {peer}")
        detached = False
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one packet per step
            how, detached = Connection(conn, self.target).run()
        except ClientGone as e:
            how = str(e)
        except OSError as e:
            how = str(_lost(e))
        except Exception as e:  # noqa: BLE001 - a bug must not end the server
            how = f"internal error: {type(e).__name__}: {e}"
        finally:
            conn.close()
            self.clients += 1
        if not detached:
            how += self._clean_up()
        self.log(f"gdb disconnected: {how}")

    def _clean_up(self) -> str:
        """What ``D`` does, for a client that left without it: its points go and a
        call it left stopped is killed, so the next client starts clean."""
        try:
            said = self.target.detach()
        except Exception as e:  # noqa: BLE001
            return f"; cleaning up failed: {type(e).__name__}: {e}"
        return "; its breakpoints and watchpoints are deleted" + (f"; {said}" if said else "")


class Connection:
    def __init__(self, conn: socket.socket, target) -> None:
        self.conn = conn
        self.target = target
        self.proto = Protocol(target)
        self.decoder = Decoder()
        self.last: bytes = b""

    def send(self, raw: bytes) -> None:
        """Write to the client: never SIGPIPE; a broken connection is ClientGone."""
        try:
            self.conn.sendall(raw, socket.MSG_NOSIGNAL)
        except OSError as e:
            raise _lost(e) from None

    def reply(self, payload: bytes) -> None:
        self.last = frame(payload)
        self.send(self.last)

    def run(self) -> tuple[str, bool]:
        """Serve until the client leaves: (how it left, whether it detached)."""
        pending = b""
        while True:
            data = pending or self._recv()
            pending = b""
            if not data:
                return "connection closed by the client", False
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
                        for k in range(0, len(text), 512):
                            self.reply(b"O" + text[k:k + 512].encode().hex().encode())
                    if answer is None:  # 'k': the client is gone
                        return "killed ('k')", True
                    self.reply(answer)
                    if self.proto.detached:
                        return "detached ('D')", True

    def _recv(self) -> bytes:
        try:
            return self.conn.recv(65536)
        except OSError as e:
            raise _lost(e) from None

    def _run_guest(self, data: bytes, interrupted: bool = False) -> tuple[bytes | None, bytes]:
        """Handle a resume packet while a watcher thread listens for Ctrl-C.

        A Ctrl-C is repeated every ``RETRY_S`` until the run ends: one that arrives
        before the guest has started running would otherwise be dropped by the run's
        start, and gdb would wait for ever (``interrupted``: one came already).  A
        client that leaves during the run stops it the same way; then
        :class:`ClientGone` is raised instead of answering."""
        done = threading.Event()
        ctrl_c = threading.Event()
        gone: list[str] = []
        if interrupted:
            ctrl_c.set()
        extra = bytearray()
        wake_r, wake_w = socket.socketpair()  # ends the watcher at once when the run ends

        def watch() -> None:
            while not done.is_set():
                if ctrl_c.is_set():
                    self.target.interrupt()
                watched = [wake_r] if gone else [self.conn, wake_r]
                r, _, _ = select.select(watched, [], [], RETRY_S if ctrl_c.is_set() else 1.0)
                if wake_r in r or self.conn not in r:
                    continue
                try:
                    chunk = self.conn.recv(4096)
                except OSError as e:
                    chunk, why = b"", f"{_lost(e)} while the guest ran"
                else:
                    why = "connection closed by the client while the guest ran"
                if not chunk:
                    gone.append(why)
                    ctrl_c.set()  # nobody is left to stop the run: stop it now
                    continue
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
            wake_w.send(b"x", socket.MSG_NOSIGNAL)
            t.join()
            wake_r.close()
            wake_w.close()
        if gone:
            raise ClientGone(gone[0])
        return answer, bytes(extra)


def gdb_command_line(elf: str, host: str, port: int) -> str:
    """The exact gdb invocation for this server."""
    return f"gdb -q {elf} -ex 'target remote {host}:{port}'"
