"""Make it last (issue 10): `kmemu gdb` fuzzed over TCP, then stock gdb against it.

One real `kmemu gdb` process takes a bounded number of hypothesis clients.  Each
sends a random byte stream (well-formed packets that set breakpoints, queue and
run calls, stop at breakpoints; packets with random tails; bad checksums; raw noise,
Ctrl-C and acks) and leaves at a random point of it (mid-packet too), by close,
reset, half-close, or after reading some replies.  After every client the server
must still be running and answer the next one from a clean idle machine ('?' is
S05: no call left stopped; or a call the client left running with 'D' that the
next client's attach stopped, which the server logs and 'k' ends).  At the end a
real gdb session must still work.

Packets that write guest memory or registers (M, X, G, P) are left out: a random
write may legitimately corrupt the kernel, and their parsing is fuzzed against a
fake target in test_protocol.py.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu.frontend.gdbstub.transport import checksum, frame
from tests.gdbstub.conftest import Server, connect, exchange, start_server

EXAMPLES = 200  # bounded for CI: about 10 s on 2 busy cores, with the boot and gdb


def hexs(text: str) -> str:
    return text.encode().hex()


def packets(kmalloc: int) -> list[bytes]:
    """Well-formed packets that change the machine's state in interesting ways."""
    return [p.encode() for p in (
        "?", "g", "p10", "pff", "mffff888000100000,40", "mfffffffffffffff8,10",
        f"Z0,{kmalloc:x},1", f"z0,{kmalloc:x},1", "Z2,ffff888000100000,8",
        "z2,ffff888000100000,8", "Z3,ffff888000100000,8",
        f"qRcmd,{hexs('call kmalloc 64 GFP_KERNEL')}", f"qRcmd,{hexs('slabinfo')}",
        f"qRcmd,{hexs('whatis 0x1ffff888000100000')}", "c", "s", "vCont;c", "vCont;s:1",
        "vCont;zzz", "vCont;", "qXfer:features:read:target.xml:0,400",
        "qXfer:features:read:target.xml:-10,10", "qSupported:multiprocess+", "qC",
        "qfThreadInfo", "Hg0", "T1", "QStartNoAckMode", "D", "k", "vKill;1", "!", "")]


HEADS = [b"g", b"p", b"m", b"Z", b"z", b"c", b"s", b"v", b"q", b"Q", b"H", b"T", b"?",
         b"D", b"vCont;", b"qXfer:features:read:target.xml:", b"qRcmd,", b"Z2,", b"p-"]


def scenarios(kmalloc: int) -> list[bytes]:
    """Packet runs that leave the guest stopped inside a call (the client then leaves)."""
    stop_in_kmalloc = [f"Z0,{kmalloc:x},1", f"qRcmd,{hexs('call kmalloc 64 GFP_KERNEL')}",
                       "c"]
    watch_a_counter = ["Z2,ffff888000100000,8", f"qRcmd,{hexs('call kmalloc 128 GFP_KERNEL')}",
                       "vCont;c"]
    queued_only = [f"qRcmd,{hexs('call vmalloc 8192')}"]
    stepping = [f"qRcmd,{hexs('call kmalloc 32 GFP_KERNEL')}", "s", "vCont;s:1", "s"]
    return [b"".join(frame(p.encode()) for p in run)
            for run in (stop_in_kmalloc, watch_a_counter, queued_only, stepping)]


def pieces(kmalloc: int) -> st.SearchStrategy[bytes]:
    good = st.sampled_from(packets(kmalloc)).map(frame) | st.sampled_from(scenarios(kmalloc))
    tailed = st.tuples(st.sampled_from(HEADS), st.binary(max_size=24)).map(
        lambda ht: frame(ht[0] + ht[1]))
    bad_sum = st.binary(min_size=1, max_size=16).map(
        lambda b: b"$" + b + b"#" + f"{(checksum(b) + 1) & 0xFF:02x}".encode())
    noise = st.binary(max_size=16) | st.sampled_from([b"\x03", b"+", b"-", b"$", b"#", b"}"])
    return st.one_of(good, good, good, tailed, bad_sum, noise)


@st.composite
def client(draw: st.DrawFn, kmalloc: int) -> tuple[bytes, int, str, bool]:
    stream = b"".join(draw(st.lists(pieces(kmalloc), min_size=1, max_size=10)))
    cut = draw(st.integers(0, len(stream)))  # leave at every point, mid-packet too
    how = draw(st.sampled_from(["close", "reset", "half-close", "read-then-close"]))
    interleave = draw(st.booleans())  # read replies while sending (as gdb does)
    return stream, cut, how, interleave



def drain(sock: socket.socket, seconds: float) -> None:
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


def halt_reason(port: int) -> bytes:
    """'?' from a fresh client (it queues behind the one being cleaned up)."""
    return exchange(port, b"?", then=b"D")


def clean_after(port: int, log: list[str]) -> None:
    """The next client finds the machine idle: S05.  The one exception is a call the
    client left running with 'D' that had not ended when this client attached
    (a busy host): attaching stops it where it is, as attaching to a running target
    does, and the server says so.  Then 'k' ends it, and the machine is idle."""
    seen = len(log)
    reply = exchange(port, b"?", then=b"k")
    if reply != b"S05":
        # the server logs the attach before it answers, but the log's reader thread may
        # lag behind on a busy host: wait for the line rather than a fixed time
        deadline = time.monotonic() + 10
        while True:
            said = [line for line in log[seen:] if "left running at detach is stopped" in line]
            if said or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert reply.startswith(b"T05") and said, (reply, log[seen:])
        assert halt_reason(port) == b"S05"


@pytest.fixture(scope="module")
def fuzzed_server() -> Iterator[tuple[Server, list[str]]]:
    """The server and its log lines (read as they come: a full stderr pipe would
    block the server)."""
    import shutil

    if shutil.which("gdb") is None:
        pytest.skip("gdb is not installed (apt-get install gdb; .ci/run installs it)")
    srv = start_server()
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(iter(srv.proc.stderr.readline, "")),
                              daemon=True)
    reader.start()
    try:
        yield srv, log
    finally:
        srv.proc.kill()
        srv.proc.wait(timeout=10)
        reader.join(10)


def kmalloc_address(elf: str) -> int:
    from emu.kernel.symbols import Symbols

    return Symbols.load(elf).address("kmalloc")


@pytest.mark.slow
def test_fuzzed_clients_then_a_real_gdb_session(
        fuzzed_server: tuple[Server, list[str]]) -> None:
    srv, log = fuzzed_server
    kmalloc = kmalloc_address(srv.elf)

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(client(kmalloc))
    def one_client(case: tuple[bytes, int, str, bool]) -> None:
        stream, cut, how, interleave = case
        sock = connect(srv.port)
        try:
            data = stream[:cut]
            step = 7 if interleave else len(data) or 1
            for i in range(0, len(data), step):
                sock.sendall(data[i:i + step])
                if interleave:
                    drain(sock, 0.002)
            if how == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif how == "half-close":
                sock.shutdown(socket.SHUT_WR)
                drain(sock, 2)
            elif how == "read-then-close":
                drain(sock, 0.02)
        except OSError:
            pass  # the server may close first (after 'k' or 'D'): that is fine
        finally:
            sock.close()
        assert srv.proc.poll() is None, "the server died"
        clean_after(srv.port, log)  # idle and clean for the next client

    t0 = time.monotonic()
    one_client()
    fuzz_seconds = time.monotonic() - t0
    assert srv.proc.poll() is None
    out = srv.gdb("break kmalloc", "monitor call kmalloc 64 GFP_KERNEL", "continue", "bt 2",
                  "finish", "continue", "delete", "monitor call kmemu_test_add 1 2 3 4 5 6",
                  "continue")
    assert re.search(r"Breakpoint 1, kmalloc \(size=64, gfp=3264\)", out), out
    assert re.search(r"#1\s+0x[0-9a-f]+ in kmemu_call_return", out), out
    ptr = re.search(r"Value returned is \$1 = \(void \*\) (0xffff888[0-9a-f]+)", out)
    assert ptr, out
    assert f"kmalloc() returned {ptr.group(1)}" in out, out
    assert "kmemu_test_add() returned 0x5b (91)" in out, out
    assert srv.proc.poll() is None
    time.sleep(0.2)
    lost = sum("gdb disconnected: connection" in line for line in log)
    killed = sum("abandoned" in line or "ran to its end" in line
                 for line in log)
    assert not any("internal error" in line for line in log), log
    print(f"{EXAMPLES} fuzzed clients in {fuzz_seconds:.1f} s: {lost} lost connections, "
          f"{killed} stopped calls cleaned up")
