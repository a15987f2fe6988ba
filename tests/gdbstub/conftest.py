"""A `kmemu gdb` server in a subprocess, and real gdb in batch mode against it."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    elf: str
    banner: str

    def gdb(self, *commands: str, timeout: float = 60) -> str:
        """Run gdb -batch with these commands after connecting; its whole output."""
        gdb = shutil.which("gdb")
        assert gdb is not None
        args = [gdb, "-q", "-batch", "-nx", self.elf, "-ex", "set pagination off",
                "-ex", f"target remote 127.0.0.1:{self.port}"]
        for c in commands:
            args += ["-ex", c]
        res = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        return res.stdout + res.stderr


def start_server(*extra: str) -> Server:
    proc = subprocess.Popen([sys.executable, "-m", "emu", "gdb", "--port", "0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    banner = ""
    for _ in range(3):
        line = proc.stdout.readline()
        banner += line
        if "target remote" in line:
            break
    m = re.search(r"gdb -q (\S+) -ex 'target remote 127\.0\.0\.1:(\d+)'", banner)
    if m is None:
        proc.kill()
        raise AssertionError(f"no gdb command line in the banner:\n{banner}"
                             f"{proc.stderr.read() if proc.stderr else ''}")
    return Server(proc, int(m.group(2)), m.group(1), banner)


#: A kernel command line under which kmalloc takes the allocator's hooks path (a real
#: function, slab_alloc_hooks, between inlined bodies), for tests of frames there: slab_debug
#: on one cache turns slub_debug_enabled on, which holds slab_hooks_key for every cache (as
#: Linux's key: each cache then tests its own flags).  At the boot defaults kmalloc takes
#: no hooks (<kmemu/alloc_hooks.h>); kmemleak would, but its own allocations nest.
HOOKS_CMDLINE = "slab_debug=F,kmalloc-8"


def require_gdb() -> str:
    """Stock gdb's path; the test is skipped without it (.ci/run installs it)."""
    gdb = shutil.which("gdb")
    if gdb is None:
        pytest.skip("gdb is not installed (apt-get install gdb; .ci/run installs it)")
    return gdb


def gdb_sections(steps: list[tuple[str, tuple[str, ...], str]],
                 *server_args: str) -> dict[str, str]:
    """Stock gdb on a fresh `kmemu gdb` server (started with ``server_args``) running
    each step's setup commands, then its command: ``{step name: what the command
    printed}`` (the setup's output is not kept).  Not -batch: gdb speaks to a user
    then (its 'ignore' says what it will do)."""
    gdb = require_gdb()
    srv = start_server(*server_args)
    try:
        args = [gdb, "-q", "-nx", srv.elf, "-ex", "set pagination off", "-ex", "set width 0",
                "-ex", "set confirm off", "-ex", f"target remote 127.0.0.1:{srv.port}"]
        for name, setup, cmd in steps:
            args += ["-ex", "echo @@-\\n"]
            for c in setup:
                args += ["-ex", c]
            args += ["-ex", f"echo @@{name}\\n", "-ex", cmd]
        args += ["-ex", "echo @@end\\n"]
        res = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=120)
    finally:
        srv.proc.kill()
        srv.proc.wait(timeout=10)
    return dict(re.findall(r"^@@([\w-]+)\n(.*?)(?=^@@)", res.stdout, re.S | re.M))


def _serve(*args: str) -> Iterator[Server]:
    require_gdb()
    srv = start_server(*args)
    try:
        yield srv
    finally:
        srv.proc.kill()
        srv.proc.wait(timeout=10)


@pytest.fixture
def gdb_server() -> Iterator[Server]:
    """A fresh server, for a test whose checks depend on the allocator's state (a first
    kmalloc-64 taking a new slab, values compared with a freshly booted machine's)."""
    yield from _serve()


@pytest.fixture(scope="session")
def _shared_servers() -> Iterator[dict[tuple[str, ...], Server]]:
    servers: dict[tuple[str, ...], Server] = {}
    try:
        yield servers
    finally:
        for srv in servers.values():
            srv.proc.kill()
            srv.proc.wait(timeout=10)


def _shared(servers: dict[tuple[str, ...], Server], *args: str) -> Server:
    require_gdb()
    srv = servers.get(args)
    if srv is None or srv.proc.poll() is not None:  # (a test before may have ended it)
        srv = servers[args] = start_server(*args)
        # its log lines (two or three per client) are read as they come: a full stderr
        # pipe would block the server
        assert srv.proc.stderr is not None
        threading.Thread(target=srv.proc.stderr.read, daemon=True).start()
    return srv


@pytest.fixture
def shared_server(_shared_servers: dict[tuple[str, ...], Server]) -> Server:
    """A server shared by the tests (of this worker) that rely only on what the stub
    promises every new client: an idle machine with none of an earlier client's
    breakpoints, watchpoints or stopped call (the clean-up after each client that
    test_disconnect.py and test_fuzz_server.py check).  Each `kmemu gdb` start is ~0.4 s
    of CPU (Python, imports, boot, line table)."""
    return _shared(_shared_servers)


@pytest.fixture
def gdb_hooks_server(_shared_servers: dict[tuple[str, ...], Server]) -> Server:
    """A shared server (as ``shared_server``) whose kmalloc takes the hooks path
    (HOOKS_CMDLINE)."""
    return _shared(_shared_servers, "--cmdline", HOOKS_CMDLINE)


def connect(port: int, timeout: float = 20) -> socket.socket:
    """A raw client socket to a stub on loopback (no Nagle: packets go out whole)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def exchange(port: int, data: bytes, then: bytes = b"k") -> bytes:
    """Send one packet from a fresh client, acknowledge the reply, send ``then``
    (``k`` or ``D``) and leave; the reply's payload."""
    from emu.frontend.gdbstub.transport import Decoder, Packet, frame

    with connect(port) as sock:
        sock.sendall(frame(data))
        dec = Decoder()
        while True:
            chunk = sock.recv(4096)
            assert chunk, "the server closed the connection"
            for ev in dec.feed(chunk):
                if isinstance(ev, Packet):
                    sock.sendall(b"+" + frame(then))
                    return ev.data


def bare(reply: bytes) -> bytes:
    """A stop reply without its expedited registers (``NN:HEX;`` fields, which the
    stub adds to every ``T`` reply): ``T05swbreak:;thread:1;``."""
    return re.sub(rb"(?<=;)[0-9a-f]{2}:[0-9a-f]+;", b"", reply)
