"""`kmemu debug` end to end in a subprocess: --script, standard input, a pseudo-terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emu.frontend.debugger.repl import PROMPT

ROOT = Path(__file__).resolve().parents[2]

SESSION = """\
# kmalloc's slow path (the first kmalloc-64 object), step by step: a transcript CI can read
slabinfo
break ___slab_alloc
call kmalloc 64 GFP_KERNEL
bt
next
next
x/4i $rip
info registers rip
finish
continue
slabinfo
identify $
buddyinfo
p zones[1].free_area[10].nr_free
delete
watch kmalloc_caches[0][6]->cpu_slab.alloc_fast
call kmalloc 64 GFP_KERNEL
disas
continue
x/4xg $
delete 2
snapshot idle
call kmalloc 64 GFP_KERNEL
restore idle
call kmalloc 64 GFP_KERNEL
frobnicate
x/4xg 0
p zones[
identify 0xffffc90000000000 +
next
info breakpoints
quit
call kmalloc 64 GFP_KERNEL
"""


def kmemu_debug(*args: str, stdin: str | None = None, home: Path | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOME=str(home)) if home else None
    return subprocess.run([sys.executable, "-m", "emu", "debug", *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def transcript(out: str) -> list[tuple[str, str]]:
    """(command, its output) for each echoed command."""
    blocks = re.split(rf"^{re.escape(PROMPT)}", out, flags=re.M)
    assert blocks[0].startswith("kmemu debug: kernel ready (256 MiB)")
    return [(b.split("\n", 1)[0], b.split("\n", 1)[1] if "\n" in b else "") for b in blocks[1:]]


def slab_counts(slabinfo: str, cache: str) -> tuple[int, int]:
    """(num_objs, num_slabs) of one cache in /proc/slabinfo's format."""
    f = next(x for x in slabinfo.splitlines() if x.split()[0] == cache).split()
    return int(f[2]), int(f[-2])


def test_script_session(tmp_path: Path) -> None:
    script = tmp_path / "session.kd"
    script.write_text(SESSION)
    res = kmemu_debug("--script", str(script))
    assert res.returncode == 1, res.stderr  # some commands failed on purpose
    assert res.stderr == ""
    steps = transcript(res.stdout)
    cmds = [c for c, _ in steps]
    assert cmds == [x for x in SESSION.splitlines()[1:cmds.index("quit") + 2]]
    assert cmds[-1] == "quit"  # nothing after quit runs
    out = dict(steps)  # (commands that appear twice: the last one)
    it = iter(steps)

    def take(cmd: str) -> str:
        for c, o in it:
            if c == cmd:
                return o
        raise AssertionError(f"{cmd!r} not in the transcript")

    objs, slabs = slab_counts(take("slabinfo"), "kmalloc-64")
    assert re.fullmatch(r"Breakpoint 1 at 0xffffffff[0-9a-f]+: file \S*slub\.c, line \d+\.\n",
                        take("break ___slab_alloc"))
    stop = take("call kmalloc 64 GFP_KERNEL")
    assert re.match(r"Breakpoint 1, ___slab_alloc \(s=s@entry=0x[0-9a-f]+, gfp=gfp@entry=3264\) at "
                    r"\S*slub\.c:(\d+)\n\1\t\t\tif \(c->freelist\)\n$", stop), stop
    bt = [f.split(" (")[0].split()[-1] for f in take("bt").splitlines()]
    # Linux's two slow-path frames, then kmalloc with the fast path and slab_alloc inlined
    # (at the boot defaults no hook is taken: might_sleep's check is inline): inlined
    # functions are frames
    assert bt == ["___slab_alloc", "__slab_alloc", "slab_alloc_nocheck", "slab_alloc",
                  "kmalloc", "kmemu_call_return"], bt
    n1, n2 = take("next"), take("next")
    l0, l1, l2 = (int(re.match(r"(\d+)\t", t).group(1)) for t in
                  (stop.splitlines()[1], n1, n2))
    # as gdb: on to the inlined new_slab's call site (its body starts where the empty
    # checks end), then back to the loop's next check
    assert "new_slab(s, gfp)" in n1 and l0 < l2 < l1, (l0, l1, l2)
    x = take("x/4i $rip").splitlines()
    assert len(x) == 4 and x[0].startswith("=> 0xffffffff") and "<___slab_alloc+" in x[0]
    rip = int(take("info registers rip").split()[1], 16)
    assert x[0].startswith(f"=> {rip:#018x}")
    fin = take("finish")
    # mid-function, the arguments come from DWARF location lists (or are gone by line
    # l2, as gdb would say)
    assert re.match(rf"Run till exit from #0  ___slab_alloc \(s=s@entry=0x[0-9a-f]+, "
                    rf"gfp=gfp@entry=3264\) at \S*slub\.c:{l2}\n", fin), fin
    ptr = int(re.search(r"Value returned is \$\d+ = \(void \*\) (0x[0-9a-f]+)", fin).group(1), 16)
    assert "kmalloc() returned" not in fin  # back in kmalloc, the call goes on
    assert "kmalloc() returned" in take("continue")
    # the first kmalloc-64 object: its slab (64 objects) now shows (a frozen slab counts all
    # its objects as active, as in Linux)
    assert slab_counts(take("slabinfo"), "kmalloc-64") == (objs + 64, slabs + 1)
    what = take("identify $")
    assert what.startswith(f"{ptr:#x}: direct map")
    assert re.search(rf"slab object: kmalloc-64 object \d+ of \d+ at {ptr:#x}, \+0x0 of 64 "
                     r"bytes, allocated", what), what
    dma32 = next(x for x in take("buddyinfo").splitlines() if "DMA32" in x)
    assert take("p zones[1].free_area[10].nr_free") == f"$2 = {dma32.split()[-1]}\n"
    assert take("delete") == ""
    assert take("watch kmalloc_caches[0][6]->cpu_slab.alloc_fast") == \
        "Hardware watchpoint 2: kmalloc_caches[0][6]->cpu_slab.alloc_fast\n"
    hit = take("call kmalloc 64 GFP_KERNEL")
    old, new = (int(v) for v in re.search(r"Old value = (\d+)\nNew value = (\d+)",
                                            hit).groups())
    assert new == old + 1
    # gdb names the inlined function the write is in (slab_alloc_nocheck, inlined in
    # kmalloc), at the line after the write: x86 debug registers trap after it
    assert re.search(r"^slab_alloc_nocheck \([^)]*\) at \S+slub\.c:\d+\n\d+\t.*\n\(written by "
                     r"kmalloc\+0x", hit, re.M), hit
    dis = take("disas")
    assert dis.startswith("Dump of assembler code for function kmalloc:")
    assert re.search(r"^=> 0xffffffff[0-9a-f]+ <\+\d+>:", dis, re.M)
    second = int(re.search(r"kmalloc\(\) returned (0x[0-9a-f]+)", take("continue")).group(1), 16)
    assert second not in (ptr, 0)
    words = take("x/4xg $").splitlines()
    assert words[0].startswith(f"{second:#x}:\t0x") and len(words) == 2
    assert take("snapshot idle") == "snapshot 'idle' saved\n"
    after_snap = take("call kmalloc 64 GFP_KERNEL")
    assert take("restore idle") == "restored 'idle'; the kernel is idle\n"
    assert take("call kmalloc 64 GFP_KERNEL") == after_snap  # the same object again
    assert re.fullmatch(r"kmalloc\(\) returned 0x[0-9a-f]+ \(\d+\); the kernel is idle\n",
                        after_snap)
    for cmd, fragment in [("frobnicate", "unknown command 'frobnicate'"),
                          ("x/4xg 0", "Cannot access memory at address 0x0"),
                          ("p zones[", "syntax error"),
                          ("identify 0xffffc90000000000 +", "error"),
                          ("next", "the kernel is idle")]:
        text = take(cmd)
        assert text.startswith("error: ") and fragment in text and text.count("\n") == 1, text
    assert out["info breakpoints"] == "No breakpoints or watchpoints.\n"


def test_clean_script_exits_0_and_missing_script_2(tmp_path: Path) -> None:
    script = tmp_path / "ok.kd"
    script.write_text("call kmemu_test_add 1 2 3 4 5 6\n\n# done\np $\n")
    res = kmemu_debug("--script", str(script))
    assert res.returncode == 0, res.stdout
    assert res.stdout.endswith(f"{PROMPT}p $\n$1 = 91\n")
    res = kmemu_debug("--script", str(tmp_path / "nope.kd"))
    assert res.returncode == 2 and "cannot read script" in res.stderr


def test_commands_on_standard_input() -> None:
    res = kmemu_debug(stdin="break kfree\ncall kmalloc 8 GFP_KERNEL\ncall kfree $\nbt 1\n"
                            "continue\n")
    assert res.returncode == 0, res.stdout
    steps = dict(transcript(res.stdout))
    assert steps["call kfree $"].startswith("Breakpoint 1, kfree (")
    assert steps["bt 1"].splitlines()[1:] == ["(More stack frames follow...)"]  # gdb's
    assert "kfree() returned" in steps["continue"]


pexpect = pytest.importorskip("pexpect")


def spawn_debug(home: Path, **kw) -> pexpect.spawn:
    """`kmemu debug` on a pseudo-terminal.  pexpect sleeps 50 ms before every write
    (for programs that drop input typed before they read, e.g. password prompts; each
    line here waits for the prompt, readline has set up the terminal by then) and
    100 ms in close() (for the child's status to settle; ``finish`` reaps it first)."""
    child = pexpect.spawn(sys.executable, ["-m", "emu", "debug"], cwd=str(ROOT),
                          env=dict(os.environ, HOME=str(home), TERM="dumb"), encoding="utf-8",
                          timeout=30, **kw)
    child.delaybeforesend = None
    return child


def finish(child: pexpect.spawn) -> None:
    """After EOF: wait for the child's exit (its status), then close at once."""
    child.wait()
    child.ptyproc.delayafterclose = 0  # (pexpect's own attribute is not the one used)
    child.close()


@pytest.mark.slow
def test_terminal_session(tmp_path: Path) -> None:
    """Prompt, completion of a command and of a kernel symbol, an error then a good
    command, Ctrl-C during a call that never ends, Ctrl-C at the prompt, Ctrl-D."""
    child = spawn_debug(tmp_path, dimensions=(40, 200))
    try:
        child.expect_exact(PROMPT)
        child.send("slabin\t")  # a command name
        child.expect_exact("slabinfo")
        child.send("\r")
        child.expect(r"kmalloc-64\s+\d+")
        child.expect_exact(PROMPT)
        child.send("break kmem_cache_al\t")  # a kernel symbol: completes the common prefix
        child.expect_exact("loc")
        child.send("\t\t")  # ambiguous: the second tab lists both
        child.expect_exact("kmem_cache_alloc_bulk")
        child.send("\x15")  # ^U: drop the line
        child.sendline("frobnicate")
        child.expect(r"error: unknown command 'frobnicate'[^\n]*\n")
        child.expect_exact(PROMPT)
        child.sendline("call kmemu_test_add 1 2 3 4 5 6")
        child.expect_exact("returned 0x5b (91)")
        child.expect_exact(PROMPT)
        child.sendline("call kmemu_test_spin 0")  # spins until interrupted
        time.sleep(0.3)
        child.sendintr()
        child.expect_exact("Program received signal SIGINT, Interrupt.")
        child.expect(r"kmemu_test_spin \([^)]*\) at \S*irq\.c:\d+")
        child.expect_exact(PROMPT)
        child.sendline("bt")
        # gdb leaves the address out when the pc begins a line
        child.expect(r"#0  (0x[0-9a-f]+ in )?kmemu_test_spin \(n=0\)")
        child.expect_exact(PROMPT)
        child.sendline("kill")
        child.expect_exact("Call kmemu_test_spin() abandoned")
        child.expect_exact(PROMPT)
        child.sendintr()  # at the prompt: a new prompt, nothing else
        child.expect_exact(PROMPT)
        child.sendline("p $")
        child.expect_exact("$1 = 91")
        child.expect_exact(PROMPT)
        child.sendeof()
        child.expect(pexpect.EOF)
        finish(child)
    finally:
        child.close()
    assert child.exitstatus == 0
    history = (tmp_path / ".kmemu_history").read_text().splitlines()
    assert history[-2:] == ["kill", "p $"]


@pytest.mark.slow
def test_unwritable_history_is_not_an_error(tmp_path: Path) -> None:
    home = tmp_path / "ro"
    home.mkdir()
    (home / ".kmemu_history").mkdir()  # neither readable nor writable as a file
    child = spawn_debug(home)
    try:
        child.expect_exact(PROMPT)
        child.sendline("quit")
        child.expect(pexpect.EOF)
        assert "Traceback" not in (child.before or "")
        finish(child)
    finally:
        child.close()
    assert child.exitstatus == 0
