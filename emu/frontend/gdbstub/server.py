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
TICK_S = 0.02  # between runs the Ctrl-C watcher looks for one this often...
PARK_S = 2.0  # ...until no run has started for this long (then arm() wakes it)


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
        set_log = getattr(target, "set_log", None)
        if set_log is not None:
            set_log(self.log)

    def close(self) -> None:
        """Stop serving: a thread blocked in ``serve`` returns (shutdown wakes accept)."""
        self._closing = True
        try:
            self.target.attach()  # a call 'D' left running stops: nothing runs after close
        except Exception:  # noqa: BLE001, S110 - closing anyway
            pass
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
        try:
            said = self.target.attach()
        except Exception as e:  # noqa: BLE001 - a bug must not end the server
            said = f"stopping the detached call failed: {type(e).__name__}: {e}"
        if said:
            self.log(said)
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
        self.last: bytes = b""  # the last reply, until the client acknowledges it
        self.watcher: Watcher | None = None

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
        try:
            return self._serve()
        finally:
            if self.watcher is not None:
                self.watcher.close()

    def _serve(self) -> tuple[str, bool]:
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
                    self._ack(ev.ok)
                elif isinstance(ev, Interrupt):
                    continue  # Ctrl-C with the guest not running: nothing to stop
                elif isinstance(ev, Packet):
                    self.last = b""  # a new request: the client has the last reply
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

    def _ack(self, ok: bool) -> None:
        """``+``/``-`` from the client.  ``-`` resends the last reply only while
        acknowledgements are on and it is still unacknowledged.  gdb writes ``-``
        whenever a reply is slower than its ``remotetimeout`` (2 s), in no-ack mode
        too; a reply sent again then would be read as the answer to gdb's *next*
        packet, and every reply after it would be one late (gdb's "Invalid remote
        reply: vCont;c;C;s;S" is the ``vCont?`` answer read as a stop reply).
        gdbserver and QEMU ignore such a ``-`` in the same way."""
        if ok or self.proto.no_ack:
            self.last = b""
        elif self.last:
            self.send(self.last)  # the client asks for a resend

    def _recv(self) -> bytes:
        try:
            return self.conn.recv(65536)
        except OSError as e:
            raise _lost(e) from None

    def _run_guest(self, data: bytes, interrupted: bool = False) -> tuple[bytes | None, bytes]:
        """Handle a resume packet; while a continue runs, :class:`Watcher` listens for
        Ctrl-C (``interrupted``: one came already, in the same read).  A single step
        runs one instruction and needs no watcher: it answers at once.  A client
        that leaves during the run stops it as Ctrl-C would; then
        :class:`ClientGone` is raised instead of answering."""
        if is_step(data):
            return self.proto.handle(data), b""
        if self.watcher is None:
            self.watcher = Watcher(self.conn, self.target.interrupt)
        self.watcher.arm(interrupted)
        try:
            answer = self.proto.handle(data)
        finally:
            gone = self.watcher.disarm()
        if gone:
            raise ClientGone(gone)
        return answer, b""


def is_step(data: bytes) -> bool:
    """A resume packet that steps one instruction (``s``, ``S``, ``vCont;s...``)."""
    if data[:1] in (b"s", b"S"):
        return True
    if not data.startswith(b"vCont;"):
        return False
    from emu.frontend.gdbstub.protocol import PacketError, vcont_action
    try:
        return vcont_action(data[6:]) == "s"
    except PacketError:
        return False  # the handler answers the error


class Watcher:
    """Watches the client's socket while the guest runs, on one thread per connection.

    It peeks (``MSG_PEEK``), never reads: the bytes stay for the decoder, which
    ignores a Ctrl-C that arrives when nothing runs.  A Ctrl-C (a bare 0x03) calls
    ``interrupt`` and repeats it every ``RETRY_S`` until the run ends (one that
    arrives before the guest has started running would otherwise be dropped by
    the run's start, and gdb would wait for ever); a client that leaves does the
    same and is reported by :meth:`disarm`.  Arming and disarming take a lock the
    thread holds whenever it calls ``interrupt``: after :meth:`disarm` returns no
    interrupt of the finished run can reach the next one.  Starting a thread per
    run cost ~3 ms (measured), more than a whole breakpoint round trip.

    Most runs end within a millisecond (a breakpoint gdb resumes from), and
    waking the thread twice per run (to watch, then to stop watching) was a
    quarter of such a round trip.  So a run is left to the thread's next look:
    between runs it looks every ``TICK_S`` (a Ctrl-C waits that long at most,
    unnoticeable to a person), and only after ``PARK_S`` without any run does it
    wait untimed, for :meth:`arm` to wake it.  :meth:`disarm` wakes it only if
    it is watching the socket, and a wake-up already pending is enough: the
    wake pipe can never fill and block the server.
    """

    def __init__(self, conn: socket.socket, interrupt: Callable[[], None]) -> None:
        self.conn, self.interrupt = conn, interrupt
        self._lock = threading.Condition()
        self._armed = self._closed = self._ctrl_c = False
        self._gone: str | None = None
        self._runs = 0  # arm() calls: the thread parks only after a quiet PARK_S
        self._parked = False  # waiting untimed: arm() must notify
        self._selecting = False  # watching the socket: disarm() must wake it
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._watch, name="gdb-ctrl-c", daemon=True)
        self._thread.start()

    def arm(self, interrupted: bool) -> None:
        with self._lock:
            self._armed, self._ctrl_c, self._gone = True, interrupted, None
            self._runs += 1
            if self._parked or interrupted:
                self._lock.notify()

    def disarm(self) -> str | None:
        """The run is over; why the client left during it, if it did."""
        with self._lock:
            self._armed = False
            gone, wake = self._gone, self._selecting
        if wake:
            self._wake()
        return gone

    def close(self) -> None:
        with self._lock:
            self._closed, self._armed = True, False
            self._lock.notify()
        self._wake()
        self._thread.join()
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x", socket.MSG_NOSIGNAL)
        except BlockingIOError:
            pass  # the thread has wake-ups pending already

    def _wait_for_a_run(self) -> None:
        """With the lock held: until a run is armed (or the watcher closed)."""
        quiet = 0.0
        while not self._armed and not self._closed:
            self._parked = quiet >= PARK_S
            runs = self._runs
            self._lock.wait(None if self._parked else TICK_S)
            quiet = 0.0 if self._runs != runs else quiet + TICK_S
        self._parked = False

    def _watch(self) -> None:
        while True:
            with self._lock:
                self._wait_for_a_run()
                if self._closed:
                    return
                if self._ctrl_c:
                    self.interrupt()
                busy = self._ctrl_c or self._gone is not None
                self._selecting = True
            # after a Ctrl-C (still unread: peeked) or a departure the socket stays
            # readable; only the retry timer and the wake-up matter then
            watched = [self._wake_r] if busy else [self.conn, self._wake_r]
            r, _, _ = select.select(watched, [], [], RETRY_S if busy else 1.0)
            with self._lock:
                self._selecting = False
            if self._wake_r in r:
                try:
                    while self._wake_r.recv(64):
                        pass
                except BlockingIOError:
                    pass
                continue
            if self.conn in r:
                self._look()

    def _look(self) -> None:
        """What the client sent while the guest runs: Ctrl-C, its departure, or
        other bytes (left for the decoder; looked at again in ``RETRY_S``)."""
        try:
            seen = self.conn.recv(65536, socket.MSG_PEEK)
        except OSError as e:
            seen, why = b"", f"{_lost(e)} while the guest ran"
        else:
            why = "connection closed by the client while the guest ran"
        with self._lock:
            if not self._armed:
                return
            if not seen:
                self._gone, self._ctrl_c = why, True  # nobody is left to stop the run
            elif b"\x03" in seen:
                self._ctrl_c = True
            else:
                self._lock.wait(RETRY_S)  # not for the run: do not spin on it


def gdb_command_line(elf: str, host: str, port: int) -> str:
    """The exact gdb invocation for this server."""
    return f"gdb -q {elf} -ex 'target remote {host}:{port}'"
