"""`kmemu gdb` in odd places: real gdb and raw packets at idle, inside locked regions,
across the end of a call, with bad monitor commands and malformed packets."""

from __future__ import annotations

import re
import socket
import subprocess

import pytest

from emu.build import source_root
from emu.frontend.gdbstub.transport import Decoder, Packet, frame
from tests.gdbstub.conftest import Server, bare


class Client:
    """A raw remote-protocol client (TCP_NODELAY, as gdb's own socket)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.dec = Decoder()
        self.output: list[str] = []

    def packet(self, data: bytes) -> bytes:
        self.sock.sendall(frame(data))
        return self.reply()

    def reply(self) -> bytes:
        while True:
            chunk = self.sock.recv(65536)
            assert chunk, "the stub closed the connection"
            for ev in self.dec.feed(chunk):
                if isinstance(ev, Packet):
                    self.sock.sendall(b"+")
                    if ev.data.startswith(b"O") and ev.data != b"OK":
                        self.output.append(bytes.fromhex(ev.data[1:].decode()).decode())
                        continue
                    return ev.data

    def monitor(self, text: str) -> str:
        raw = self.packet(b"qRcmd," + text.encode().hex().encode())
        return bytes.fromhex(raw.decode()).decode()

    def close(self) -> None:
        self.sock.sendall(frame(b"k"))
        self.sock.close()


# =========================================================================== bugs
def test_next_at_idle_does_not_hang_gdb(shared_server: Server) -> None:
    try:
        out = shared_server.gdb("next", timeout=30)  # the bug: it never returned
    except subprocess.TimeoutExpired:
        pytest.fail("gdb's `next` at idle did not return")
    assert "idle" in out


def test_single_steps_into_a_queued_call(shared_server: Server) -> None:
    """Twenty raw 's' packets move through the call (their latency is a bench figure,
    not an assert: the watcher thread is woken through a socketpair, TCP_NODELAY)."""
    c = Client(shared_server.port)
    try:
        assert "queued" in c.monitor("call kmemu_test_spin 100000")
        assert bare(c.packet(b"s")) == b"T05thread:1;"
        rips = set()
        for _ in range(20):
            assert bare(c.packet(b"s")) == b"T05thread:1;"
            rips.add(c.packet(b"p10"))
        assert len(rips) > 1
    finally:
        c.close()


def test_detach_inside_a_locked_region_then_reconnect(gdb_server: Server) -> None:
    src = (source_root() / "kernel" / "slab" / "slub.c").read_text().splitlines()
    line = src.index("\ts->node.nr_slabs++;") + 1  # new_slab, inside list_lock
    first = gdb_server.gdb(f"break slub.c:{line}",
                           "monitor call kmalloc 64 GFP_KERNEL", "continue", "detach")
    assert re.search(rf"Breakpoint 1, new_slab .* at \S*slub\.c:{line}", first), first
    out = gdb_server.gdb("monitor call kmalloc 64 GFP_KERNEL", "continue",
                         "monitor call kmemu_test_add 1 2 3 4 5 6", "continue")
    assert "Remote failure reply" not in out, out
    assert "the machine is exited" not in out, out
    assert "kmemu_test_add() returned 0x5b" in out, out


def test_monitor_call_with_a_too_wide_argument(shared_server: Server) -> None:
    out = shared_server.gdb("monitor call kmalloc 99999999999999999999999 0", "continue",
                         "monitor call kmemu_test_add 1 2 3 4 5 6", "continue")
    assert "Remote failure reply" not in out, out
    assert re.search(r"error: .*64 bits", out), out
    assert "kmemu_test_add() returned 0x5b" in out


# =========================================================================== odd cases that work
def test_kill_then_a_second_client(shared_server: Server) -> None:
    first = shared_server.gdb("break kmalloc", "monitor call kmalloc 64 GFP_KERNEL", "continue",
                           "kill")
    assert "Breakpoint 1, kmalloc" in first and "killed" in first
    out = shared_server.gdb("info registers rip", "monitor call kmemu_test_add 1 2 3 4 5 6",
                         "continue", "monitor call kmalloc 64 GFP_KERNEL", "continue")
    assert "kmemu_idle_loop" in out
    assert "kmemu_test_add() returned 0x5b (91)" in out
    assert re.search(r"kmalloc\(\) returned 0xffff888", out), out  # old breakpoint gone


def test_stepi_across_ret_to_the_end_of_the_call(shared_server: Server) -> None:
    out = shared_server.gdb("break kmemu_test_add", "monitor call kmemu_test_add 1 2 3 4 5 6",
                         "continue", "delete", "stepi 8", "bt", "continue",
                         "monitor call kmemu_test_add 1 1 1 1 1 1", "continue")
    assert re.search(r"#\d\s+0x[0-9a-f]+ in kmemu_call_return \(\)", out), out
    assert "kmemu_test_add() returned 0x5b (91)" in out
    assert "kmemu_test_add() returned 0x15 (21)" in out


def test_finish_twice_from_a_nested_function(gdb_hooks_server: Server) -> None:
    # kmalloc calls slab_alloc_hooks while a hook is on (slab_debug, on this server)
    out = gdb_hooks_server.gdb("break slab_alloc_hooks", "monitor call kmalloc 64 GFP_KERNEL",
                         "continue", "finish", "finish", "continue")
    vals = re.findall(r"Value returned is \$\d = \(void \*\) (0xffff888[0-9a-f]+)", out)
    assert len(vals) == 2 and vals[0] == vals[1], out
    assert re.search(r"kmemu_call_return \(\) at \S*entry\.S:\d+", out), out
    assert f"kmalloc() returned {vals[0]}" in out


def test_until_advance_and_tbreak(gdb_hooks_server: Server) -> None:
    out = gdb_hooks_server.gdb("break kmalloc", "monitor call kmalloc 64 GFP_KERNEL", "continue",
                         "until", "advance slab_alloc_hooks", "bt 2", "delete",
                         "tbreak kfree", "continue", "monitor call kfree 0", "continue",
                         "continue", "continue")
    # the breakpoint's line, then 'until' kmalloc's later (and last) line: no call stepped
    # into (kmalloc's two lines: the size class, then the inlined allocation)
    first = int(re.search(r"Breakpoint 1, kmalloc \(.*\) at \S*slub\.c:(\d+)", out).group(1))
    after = out.split(f"\n{first}\t", 1)[1]
    lines = [int(x) for x in re.findall(r"^(\d+)\t", after, re.M)[:1]]
    assert len(lines) == 1 and first < lines[0], out
    # gdb shows the inlined slab_alloc as kmalloc's frame #1 (kmalloc calls the hooks there)
    assert re.search(r"#1\s+0x[0-9a-f]+ in slab_alloc \(", out), out
    assert re.search(r"Temporary breakpoint \d, kfree \(p=0x0\)", out), out
    assert "The kernel is idle: nothing to run" in out


def test_all_registers(shared_server: Server) -> None:
    out = shared_server.gdb("info all-registers")
    for name in ("rax", "rip", "eflags", "cs", "ss", "fs_base", "gs_base", "st0", "st7",
                 "fctrl", "fop"):
        assert re.search(rf"^{name}\s+", out, re.M), (name, out)
    assert re.search(r"^fctrl\s+0x37f", out, re.M), out


def test_bad_monitor_calls_are_errors(shared_server: Server) -> None:
    out = shared_server.gdb("monitor call kmalloc 64 GFP_BOGUS", "monitor call kmalloc 64",
                         "monitor call nosuch 1", "monitor call kmalloc 64 (",
                         "monitor call zones", "monitor pt nosuch", "monitor identify 1+",
                         "monitor call kmemu_test_add 1 2 3 4 5 6", "continue")
    assert "error: unknown GFP flag 'GFP_BOGUS'" in out
    assert "error: kmalloc() takes 2 argument(s) (size, gfp), got 1" in out
    assert "error: unknown kernel symbol 'nosuch'" in out
    assert out.count("error: ") >= 7, out
    assert "kmemu_test_add() returned 0x5b (91)" in out


def test_raw_packet_edge_cases(shared_server: Server) -> None:
    c = Client(shared_server.port)
    try:
        assert c.packet(b"?") == b"S05"
        g = c.packet(b"g")
        # idle: register writes are kept for an inferior call (as QEMU allows them at
        # any stop) and read back; writing the CPU's values back drops them
        assert c.packet(b"P0=0500000000000000") == b"OK"
        assert c.packet(b"p0") == b"0500000000000000"
        assert c.packet(b"G" + g) == b"OK" and c.packet(b"g") == g
        assert c.packet(b"P12=00000000").startswith(b"E")  # cs: read-only
        assert c.packet(b"mffff888000000000,100000") == b"E01"  # over MAX_MEM
        assert c.packet(b"mfffffffffffffff8,10") == b"E01"  # wraps past 2^64: malformed
        assert c.packet(b"Mffffc90040000000,4:01020304") == b"E14"  # unmapped
        assert c.packet(b"p100") == b"E01" and c.packet(b"P0=00") == b"E01"
        kmalloc = "ffffffff80101b70"  # Z0 twice: one breakpoint; z0 twice: OK then E01
        assert [c.packet(f"{z},{kmalloc},1".encode()) for z in ("Z0", "Z0", "z0", "z0")] == \
            [b"OK", b"OK", b"OK", b"E01"]
        assert c.packet(b"Z2,ffff888000001000,40000000") == b"E01"  # too big to watch
        assert c.packet(b"Z2,1000,8") == b"OK" and c.packet(b"z2,1000,8") == b"OK"
        c.sock.sendall(b"\x03")  # Ctrl-C with nothing running: ignored
        assert c.packet(b"?") == b"S05"
        assert "queued" in c.monitor("call kmemu_test_add 1 2 3 4 5 6")
        assert bare(c.packet(b"c")) == b"T05thread:1;"
        assert any("returned 0x5b" in o for o in c.output), c.output
        assert bare(c.packet(b"c")) == b"T05thread:1;"  # continue at idle: stops at once
    finally:
        c.close()
