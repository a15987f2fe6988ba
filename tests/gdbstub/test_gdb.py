"""Stock gdb against `kmemu gdb`: the session the issue describes, end to end."""

from __future__ import annotations

import re
import socket
import time

from emu.frontend.gdbstub.transport import Decoder, Packet, frame
from tests.gdbstub.conftest import Server, bare


def _active(slabinfo: str, cache: str) -> int:
    m = re.search(rf"^{cache}\s+(\d+)\s", slabinfo, re.M)
    assert m, slabinfo
    return int(m.group(1))


def test_banner_prints_the_gdb_command_line(shared_server: Server) -> None:
    assert "listening on 127.0.0.1:" in shared_server.banner
    assert shared_server.elf.endswith("kernel.elf")


def test_break_call_continue_bt_next_finish_print(gdb_server: Server) -> None:
    out = gdb_server.gdb(
        "monitor slabinfo",
        "break kmalloc",
        "monitor call kmalloc 64 GFP_KERNEL",
        "continue",
        "bt",
        "next",  # kmalloc's second line: the inlined allocation (its last line)
        "finish",
        'eval "monitor identify 0x%lx", $',
        "monitor slabinfo",
        "print kmalloc_caches[0][6]->name",
        "print *kmalloc_caches[0][6]",
        "print zones[1].free_area[0].nr_free",
    )
    assert "Breakpoint 1 at 0x" in out and "slub.c" in out
    assert re.search(r"Breakpoint 1, kmalloc \(size=64, gfp=3264\) at \S*slub\.c:\d+", out), out
    assert re.search(r"#0\s+kmalloc \(size=64, gfp=3264\) at \S*slub\.c:\d+", out), out
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


def test_watchpoint_on_a_cache_counter(shared_server: Server) -> None:
    out = shared_server.gdb(
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
    assert re.search(r"#0\s+.*(slab_alloc|kmalloc)", out), out


def test_vmalloc_and_unmapped_memory(shared_server: Server) -> None:
    out = shared_server.gdb(
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
    # (a fresh server: the 'k' at the end leaves kmemu_test_spin(0) to DebugSession.kill,
    # which lets it run on for KILL_SECONDS before abandoning it; a shared server would
    # spend that second, and make the next test's gdb wait for it)
    with socket.create_connection(("127.0.0.1", gdb_server.port), timeout=30) as s:
        dec = Decoder()
        assert _packet(s, dec, b"?") == b"S05"
        cmd = b"call kmemu_test_spin 0".hex().encode()
        assert b"queued".hex().encode() in _packet(s, dec, b"qRcmd," + cmd)
        s.sendall(frame(b"vCont;c"))
        time.sleep(0.5)  # the guest spins
        s.sendall(b"\x03")
        assert bare(_reply(s, dec)) == b"T02thread:1;"
        rip = int.from_bytes(bytes.fromhex(_packet(s, dec, b"p10").decode()), "little")
        assert rip >= 0xFFFFFFFF80000000
        # malformed and bad-checksum packets: NAK or error, and the stub keeps serving
        s.sendall(b"$m12#00")
        assert s.recv(1) == b"-"
        assert _packet(s, dec, b"mzz,4") == b"E01"
        assert bare(_packet(s, dec, b"?")) == b"T05thread:1;"  # still stopped in the call
        assert bare(_packet(s, dec, b"vCont;s")) == b"T05thread:1;"
        s.sendall(frame(b"k"))


def _name_values(text: str) -> dict[str, str]:
    """``name = value`` lines -> {name: value}, pointers and integers normalised to int text."""
    out: dict[str, str] = {}
    for name, value in re.findall(r"^(\w+) = (.*)$", text, re.M):
        value = re.sub(r"^\([^)]*\)", "", value.strip())  # kmemu's (type) prefix
        num = re.match(r"(0x[0-9a-f]+|\d+)\b", value)
        out.setdefault(name, str(int(num.group(1), 0)) if num else value)  # innermost wins
    return out


def _groups(text: str) -> dict[str, dict[str, str]]:
    """kmemu's info args/locals by function ('' when there is no heading)."""
    out: dict[str, dict[str, str]] = {}
    fn = ""
    for line in text.splitlines():
        head = re.fullmatch(r"(\w+)( \(inlined\))?:", line)
        if head:
            fn = head.group(1)
        else:
            out.setdefault(fn, {}).update(_name_values(line))
    return out


def test_gdb_and_kmemu_debug_agree_on_locals(gdb_server: Server) -> None:
    """gdb reads the locals itself from DWARF through our registers and memory; kmemu's
    own reader (drgn) must find the same values at the same stop."""
    from emu import Machine
    from emu.debug.session import DebugSession

    out = gdb_server.gdb(
        "break ___slab_alloc",
        "monitor call kmalloc 128 GFP_KERNEL",
        "continue",
        "next",
        'printf "==pc %lu\\n", $pc',
        "echo ==args\\n", "info args",
        "echo ==locals\\n", "info locals",
        "up",
        "echo ==up\\n", "info locals",
        "echo ==end\\n",
    )
    gdb_args = _name_values(out.split("==args")[1].split("==locals")[0])
    gdb_locals = _name_values(out.split("==locals")[1].split("==up")[0])
    up = out.split("==up")[0].split("==locals")[1]
    gdb_up_fn = re.search(r"^#1 .* in (\w+) \(", up, re.M)
    assert gdb_up_fn, out
    gdb_up = _name_values(out.split("==up")[1].split("==end")[0])
    assert {"s", "gfp"} <= set(gdb_args) and "c" in gdb_locals, out

    s = DebugSession(Machine.booted(mem="256M"))
    s.break_("___slab_alloc")
    s.call("kmalloc", ["128", "GFP_KERNEL"])
    pc = int(re.search(r"==pc (\d+)", out).group(1))
    s.until(f"*{pc:#x}")  # where gdb's next stopped (the line steppers may differ)
    assert s.m.cpu.rip == pc
    # gdb numbers inlined scopes as frames; kmemu groups them under bt's frames, with
    # a heading per function when there is more than one
    ours_args = _groups(s.info_variables(True))
    ours_locals = _groups(s.info_variables(False))
    one = "___slab_alloc" if "___slab_alloc" in ours_args else ""
    assert ours_args[one] == gdb_args
    assert ours_locals[one if one in ours_locals else ""] == gdb_locals
    s.move_frame(1)
    ours_up = _groups(s.info_variables(False))
    fn = gdb_up_fn.group(1)  # slab_alloc, inlined into kmalloc or slab_alloc_hooks
    assert ours_up[fn if fn in ours_up else ""] == gdb_up


def test_entry_values_agree_with_gdb(gdb_server: Server) -> None:
    """Past its first lines, some of __zone_watermark_ok's parameters (alloc_flags and
    highest_zoneidx; which ones depends on GCC's register allocation) live only as 'the
    value the register had at entry' (DW_OP_entry_value); gdb and kmemu both get them
    from the caller's call site."""
    from emu import Machine
    from emu.debug.session import DebugSession

    out = gdb_server.gdb(
        "break __zone_watermark_ok",
        "monitor call alloc_pages GFP_KERNEL 2",
        "continue", "next", "next", "next", "next", "next", "next",
        'printf "==pc %lu\\n", $pc',
        "echo ==args\\n", "info args", "echo ==end\\n",
    )
    gdb_args = _name_values(out.split("==args")[1].split("==end")[0])
    # ALLOC_WMARK_LOW | ALLOC_KSWAPD (== __GFP_KSWAPD_RECLAIM, part of GFP_KERNEL)
    assert gdb_args.get("order") == "2" and gdb_args.get("alloc_flags") == "2049", out

    s = DebugSession(Machine.booted(mem="256M"))
    s.break_("__zone_watermark_ok")
    s.call("alloc_pages", ["GFP_KERNEL", "2"])
    pc = int(re.search(r"==pc (\d+)", out).group(1))
    s.until(f"*{pc:#x}")
    assert _name_values(s.info_variables(True)) == gdb_args
    entry = {v.name for v in s.variables() if v.entry}
    assert {"alloc_flags", "highest_zoneidx"} <= entry, entry


def test_at_entry_values_agree_with_gdb(gdb_server: Server) -> None:
    from emu import Machine
    from emu.debug.session import DebugSession

    out = gdb_server.gdb("break tsplit", "monitor call vmalloc 40000", "continue",
                         "frame 1", "echo ==args\\n", "info args", "echo ==end\\n")
    gdb_args = _name_values(out.split("==args")[1].split("==end")[0])
    s = DebugSession(Machine.booted(mem="256M"))
    s.break_("tsplit")
    s.call("vmalloc", ["40000"])
    s.select_frame(1)
    ours = _name_values(s.info_variables(True).replace("@entry", ""))
    assert ours == gdb_args and set(ours) == {"root", "v"}, (ours, out)
