"""Stock gdb against `kmemu gdb`: the session the issue describes, end to end."""

from __future__ import annotations

import re
import socket
import time

from emu.gdbstub.transport import Decoder, Packet, frame
from tests.gdbstub.conftest import Server


def _active(slabinfo: str, cache: str) -> int:
    m = re.search(rf"^{cache}\s+(\d+)\s", slabinfo, re.M)
    assert m, slabinfo
    return int(m.group(1))


def test_banner_prints_the_gdb_command_line(gdb_server: Server) -> None:
    assert "listening on 127.0.0.1:" in gdb_server.banner
    assert gdb_server.elf.endswith("kernel.elf")


def test_break_call_continue_bt_next_finish_print(gdb_server: Server) -> None:
    out = gdb_server.gdb(
        "monitor slabinfo",
        "break kmalloc",
        "monitor call kmalloc 64 GFP_KERNEL",
        "continue",
        "bt",
        "next",
        "next",
        "finish",
        'eval "monitor whatis 0x%lx", $',
        "monitor slabinfo",
        "print kmalloc_caches[0][6]->name",
        "print *kmalloc_caches[0][6]",
        "print zones[1].free_area[0].nr_free",
    )
    assert "Breakpoint 1 at 0x" in out and "kmalloc.c" in out
    assert re.search(r"Breakpoint 1, kmalloc \(size=64, gfp=3264\) at \S*kmalloc\.c:\d+", out), out
    assert re.search(r"#0\s+kmalloc \(size=64, gfp=3264\) at \S*kmalloc\.c:\d+", out), out
    assert re.search(r"#1\s+0x[0-9a-f]+ in kmemu_call_return \(\)", out), out
    assert "#2" not in out  # the trampoline's CFI ends the stack
    lines = re.findall(r"^(\d+)\t", out, re.M)
    assert len(lines) >= 3 and len(set(lines)) >= 2, out  # next moved to other lines
    ptr = re.search(r"Value returned is \$1 = \(void \*\) (0xffff888[0-9a-f]+)", out)
    assert ptr, out
    assert re.search(rf"{ptr.group(1)}: direct map.*\nslab object: kmalloc-64 object \d+ of "
                     r"64 at .*allocated", out), out
    before, after = out.split("slabinfo - version: 2.1")[1:3]
    assert _active(after, "kmalloc-64") > _active(before, "kmalloc-64")
    assert '$2 = "kmalloc-64"' in out
    assert "object_size = 64" in out and "cpu_slab = {" in out
    assert re.search(r"\$4 = \d+", out), out


def test_watchpoint_on_a_cache_counter(gdb_server: Server) -> None:
    out = gdb_server.gdb(
        "monitor call kmalloc 64 GFP_KERNEL",
        "continue",
        "watch kmalloc_caches[0][6]->cpu_slab.alloc_fast",
        "monitor call kmalloc 64 GFP_KERNEL",
        "continue",
        "bt 1",
    )
    assert re.search(r"Hardware watchpoint 1: kmalloc_caches\[0\]\[6\]->cpu_slab\.alloc_fast", out)
    old_new = re.search(r"Old value = (\d+)\s+New value = (\d+)", out)
    assert old_new, out
    assert int(old_new.group(2)) == int(old_new.group(1)) + 1
    assert re.search(r"#0\s+.*(slab_alloc|kmalloc|__kmalloc_cache)", out), out


def test_vmalloc_and_unmapped_memory(gdb_server: Server) -> None:
    out = gdb_server.gdb(
        "break vmalloc",
        "monitor call vmalloc 8192",
        "continue",
        "finish",
        "set $p = (unsigned long *)$",
        "set *$p = 0x1122334455667788",
        "x/2gx $p",
        "monitor pt $p",
        "x/2gx 0xffffc90040000000",
        "x/2gx 0",
        "print *(int *)0x10",
        "monitor bogus",
        "monitor pt",
        "info registers rip",
    )
    assert re.search(r"Value returned is \$1 = \(void \*\) 0xffffc9", out), out
    assert re.search(r"0xffffc9[0-9a-f]+:\s+0x1122334455667788\s+0x0", out), out
    assert "Cannot access memory at address 0xffffc90040000000" in out
    assert "Cannot access memory at address 0x0" in out
    assert "Cannot access memory at address 0x10" in out
    assert "error: unknown monitor command 'bogus'" in out
    assert "error: usage: pt ADDR" in out
    assert re.search(r"rip\s+0x[0-9a-f]+", out)


def _packet(sock: socket.socket, dec: Decoder, data: bytes) -> bytes:
    sock.sendall(frame(data))
    return _reply(sock, dec)


def _reply(sock: socket.socket, dec: Decoder) -> bytes:
    while True:
        for ev in dec.feed(sock.recv(65536)):
            if isinstance(ev, Packet) and not ev.data.startswith(b"O"):
                sock.sendall(b"+")
                return ev.data


def test_ctrl_c_stops_a_running_call_which_can_go_on(gdb_server: Server) -> None:
    with socket.create_connection(("127.0.0.1", gdb_server.port), timeout=30) as s:
        dec = Decoder()
        assert _packet(s, dec, b"?") == b"S05"
        cmd = b"call kmemu_test_spin 0".hex().encode()
        assert b"queued".hex().encode() in _packet(s, dec, b"qRcmd," + cmd)
        s.sendall(frame(b"vCont;c"))
        time.sleep(0.5)  # the guest spins
        s.sendall(b"\x03")
        assert _reply(s, dec) == b"T02thread:1;"
        rip = int.from_bytes(bytes.fromhex(_packet(s, dec, b"p10").decode()), "little")
        assert rip >= 0xFFFFFFFF80000000
        # malformed and bad-checksum packets: NAK or error, and the stub keeps serving
        s.sendall(b"$m12#00")
        assert s.recv(1) == b"-"
        assert _packet(s, dec, b"mzz,4") == b"E01"
        assert _packet(s, dec, b"?") == b"T05thread:1;"  # still stopped in the call
        assert _packet(s, dec, b"vCont;s") == b"T05thread:1;"
        s.sendall(frame(b"k"))
