"""The kmemu command: boot, e820, build, bench, info, and its errors.

Most tests call ``emu.frontend.cli.main([...])`` in-process (a boot is ~30 ms); a few
run the installed ``kmemu`` console script in a real subprocess.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emu.firmware.e820 import default_map, load_map
from emu.frontend.cli import main

E820_LINE = re.compile(r"^BIOS-e820: \[mem 0x[0-9a-f]{16}-0x[0-9a-f]{16}\] \S.*$")

# A user map with holes (nothing at 0x2000000-0x3000000 and 0x5000000-0x5800000) and
# non-RAM types; the lines are deliberately out of order.
USER_MAP = """\
# a PC with holes
0x100000  0x2000000 usable
0x0       0x9fc00   usable
0x9fc00   +1K       reserved
0xf0000   0x100000  reserved
0x3000000 0x5000000 usable   # after a 16 MiB hole
0x5800000 +1M       acpi
"""
USER_MAP_LINES = [
    "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
    "BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff] reserved",
    "BIOS-e820: [mem 0x00000000000f0000-0x00000000000fffff] reserved",
    "BIOS-e820: [mem 0x0000000000100000-0x0000000001ffffff] usable",
    "BIOS-e820: [mem 0x0000000003000000-0x0000000004ffffff] usable",
    "BIOS-e820: [mem 0x0000000005800000-0x00000000058fffff] ACPI data",
]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def e820_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("BIOS-e820:")]


def kmemu_command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m emu``."""
    script = Path(sys.executable).with_name("kmemu")
    if script.is_file():
        return [str(script)]
    found = shutil.which("kmemu")
    return [found] if found else [sys.executable, "-m", "emu"]


def write_map(tmp_path: Path, name: str, text: str) -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


# ---------------------------------------------------------------- kmemu boot
def test_boot_prints_the_log(capsys) -> None:
    code, out, err = run(capsys, "boot", "--cmdline", "hello=world")
    assert code == 0, err
    assert e820_lines(out) == default_map("256M").lines()
    assert "Command line: hello=world\n" in out
    assert "kmemu: host present" in out
    assert out.splitlines()[-1].startswith("kmemu: kernel ready in ")
    assert "(256 MiB, " in out.splitlines()[-1]
    assert err == ""


def test_boot_empty_cmdline(capsys) -> None:
    code, out, _ = run(capsys, "boot")
    assert code == 0
    assert re.search(r"^Command line: ?$", out, re.MULTILINE)


def test_boot_quiet_prints_nothing(capsys) -> None:
    assert run(capsys, "boot", "--quiet") == (0, "", "")
    assert run(capsys, "boot", "--quiet", "--mem", "16M", "--cmdline", "a=b") == (0, "", "")


def test_boot_json(capsys) -> None:
    code, out, err = run(capsys, "boot", "--json", "--mem", "16M", "--cmdline", "j=1")
    assert code == 0, err
    data = json.loads(out)
    assert data["ok"] is True
    assert data["mem"] == 16 << 20 and data["cmdline"] == "j=1"
    assert [tuple(e) for e in data["e820"]] == default_map("16M").to_bios_entries()
    assert e820_lines(data["console"]) == default_map("16M").lines()
    assert "Command line: j=1" in data["console"]
    assert isinstance(data["events"], list)
    assert data["boot_ms"] > 0


@pytest.mark.parametrize("mem", ["16M", "6G"])
def test_boot_sizes(capsys, mem: str) -> None:
    code, out, err = run(capsys, "boot", "--mem", mem)
    assert code == 0, err
    assert e820_lines(out) == default_map(mem).lines()
    assert "kmemu: host present" in out


def test_boot_6g_has_ram_above_4g(capsys) -> None:
    code, out, _ = run(capsys, "boot", "--mem", "6G")
    assert code == 0
    assert "BIOS-e820: [mem 0x0000000100000000-0x00000001bfffffff] usable" in e820_lines(out)
    assert re.search(r"Normal +\[mem 0x0000000100000000-", out)


def test_boot_user_map_with_holes(capsys, tmp_path: Path) -> None:
    f = write_map(tmp_path, "holes.e820", USER_MAP)
    assert load_map(f).lines() == USER_MAP_LINES
    code, out, err = run(capsys, "boot", "--e820", str(f))
    assert code == 0, err
    assert e820_lines(out) == USER_MAP_LINES
    # the kernel's own view keeps the hole
    assert "node   0: [mem 0x0000000000100000-0x0000000001ffffff]" in out
    assert "node   0: [mem 0x0000000003000000-0x0000000004ffffff]" in out


def test_boot_user_map_json(capsys, tmp_path: Path) -> None:
    f = write_map(tmp_path, "holes.e820", USER_MAP)
    code, out, _ = run(capsys, "boot", "--json", "--e820", str(f))
    data = json.loads(out)
    assert code == 0 and data["ok"]
    assert [tuple(e) for e in data["e820"]] == load_map(f).to_bios_entries()
    assert data["mem"] == load_map(f).usable_bytes


def test_failed_boot_exits_1_with_the_oops(capsys) -> None:
    code, out, err = run(capsys, "boot", "--cmdline", "kmemu_test=boot_oops")
    assert code == 1
    assert "BUG: kernel NULL pointer dereference" in out
    assert err.startswith("kmemu: boot failed") and err.count("\n") == 1


def test_failed_boot_quiet_still_shows_the_log(capsys) -> None:
    code, out, err = run(capsys, "boot", "--quiet", "--cmdline", "kmemu_test=boot_oops")
    assert code == 1
    assert "BUG: kernel NULL pointer dereference" in out and "boot failed" in err


def test_quiet_module_failure_prints_only_the_compiler_error(capsys, tmp_path) -> None:
    """The boot succeeded, so --quiet keeps its log out of the way of the diagnostics."""
    bad = tmp_path / "bad.c"
    bad.write_text("int x(void) { return y; }\n")
    code, out, err = run(capsys, "boot", "--quiet", "--module", str(bad))
    assert code == 1 and out == ""
    assert err.startswith("kmemu: module load failed") and "undeclared" in err


def test_failed_boot_json(capsys) -> None:
    code, out, _ = run(capsys, "boot", "--json", "--cmdline", "kmemu_test=boot_oops")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False
    assert data["error"] and "BUG: kernel NULL pointer dereference" in data["console"]


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("args,words", [
    (["--mem", "3M"], ["memory size", "out of range", "16 MiB"]),
    (["--mem", "banana"], ["invalid size", "'banana'"]),
    (["--mem", "65G"], ["out of range", "64 GiB"]),
    (["--e820", "/nonexistent/kmemu.e820"], ["cannot read", "/nonexistent/kmemu.e820"]),
    (["--cmdline", "x" * 600], ["command line", "600 bytes"]),
])
def test_bad_input_is_exit_2_and_one_line(capsys, args: list[str], words: list[str]) -> None:
    code, out, err = run(capsys, "boot", *args)
    assert code == 2
    assert out == ""
    assert err.startswith("kmemu: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err


def test_bad_maps(capsys, tmp_path: Path) -> None:
    overlap = write_map(tmp_path, "overlap.e820",
                        "0 0x9fc00 usable\n0x100000 0x4000000 usable\n0x200000 +1M reserved\n")
    code, out, err = run(capsys, "boot", "--e820", str(overlap))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"{overlap}:3:" in err and "overlaps line 2" in err

    no_load_area = write_map(tmp_path, "small.e820", "0 0x9fc00 usable\n0x100000 0x500000 usable\n")
    code, out, err = run(capsys, "boot", "--e820", str(no_load_area))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "not bootable" in err and "kernel load area" in err

    # covers the boot stub and the kernel load area, but < 12 MiB usable in all
    too_little = write_map(tmp_path, "tiny.e820", "0 0x9fc00 usable\n1M 10M usable\n")
    code, out, err = run(capsys, "boot", "--e820", str(too_little))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "not bootable" in err and "need at least 12 MiB" in err

    garbage = write_map(tmp_path, "garbage.e820", "0 0x9fc00 usable\n0x100000 lots usable\n")
    code, _, err = run(capsys, "boot", "--e820", str(garbage))
    assert code == 2 and f"{garbage}:2:" in err and "'lots'" in err


def test_argparse_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["boot", "--no-such-option"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# ---------------------------------------------------------------- kmemu e820
def test_e820_command(capsys) -> None:
    code, out, _ = run(capsys, "e820", "--mem", "6G")
    m = default_map("6G")
    assert code == 0
    assert out == "\n".join(m.lines()) + f"\nusable: {m.usable_bytes} bytes " \
                                        f"({m.usable_bytes >> 20} MiB)\n"
    assert "BIOS-e820: [mem 0x0000000100000000-0x00000001bfffffff] usable" in out


def test_e820_command_with_file(capsys, tmp_path: Path) -> None:
    f = write_map(tmp_path, "holes.e820", USER_MAP)
    code, out, _ = run(capsys, "e820", "--e820", str(f))
    assert code == 0 and e820_lines(out) == USER_MAP_LINES
    assert out.splitlines()[-1] == f"usable: {load_map(f).usable_bytes} bytes " \
                                   f"({load_map(f).usable_bytes >> 20} MiB)"


def test_e820_command_bad_size(capsys) -> None:
    code, out, err = run(capsys, "e820", "--mem", "banana")
    assert code == 2 and out == "" and "banana" in err and err.count("\n") == 1


# ---------------------------------------------------------------- kmemu build
def test_build_command(capsys) -> None:
    code, out, _ = run(capsys, "build")
    assert code == 0
    fields = dict(ln.split(":", 1) for ln in out.splitlines()[:2])
    image, elf = Path(fields["image"].strip()), Path(fields["kernel"].strip())
    assert image.is_file() and image.stat().st_size > 0
    assert elf.is_file() and elf.read_bytes()[:4] == b"\x7fELF"
    assert re.search(r"entry 0xffffffff8[0-9a-f]+, cache key \S+", out)


# ---------------------------------------------------------------- kmemu info
def test_info_commands(capsys) -> None:
    code, out, _ = run(capsys, "info", "buddy")
    assert code == 0 and out.startswith("Node 0, zone      DMA ")
    code, out, _ = run(capsys, "info", "zones")
    assert code == 0 and "pages free" in out and "protection: (" in out
    code, out, _ = run(capsys, "info", "memblock")
    assert code == 0 and "memory:" in out and "reserved:" in out
    code, out, _ = run(capsys, "info", "watermarks", "--json")
    assert code == 0 and json.loads(out)["DMA32"]["min"] > 0
    code, out, _ = run(capsys, "info", "slab")
    assert code == 0 and out.startswith("slabinfo - version: 2.1\n") and "kmalloc-64 " in out
    code, out, _ = run(capsys, "info", "pagetable")
    assert code == 0 and "---[ High Kernel Mapping ]---" in out
    code, out, _ = run(capsys, "info", "pagetable", "0xffff888000100000")
    assert code == 0 and "PGD[273]" in out
    code, out, _ = run(capsys, "info", "pagetable", "0xffff888000000000-0xffff888000200000")
    # the marker, low RAM, the read-only alias of the image's text and rodata
    # (strict kernel RWX: from 1 MiB, where the image starts), the rest RW
    assert code == 0 and out.count("\n") == 4, out
    assert re.search(r"^0xffff888000100000-0x[0-9a-f]+ +\d+K +ro +GLB NX pte$", out, re.M), out
    code, _, err = run(capsys, "info", "pagetable", "nonsense")
    assert code == 2 and "ADDR or START-END" in err  # bad usage, as documented
    code, out, _ = run(capsys, "info", "slabtop", "--json")
    assert code == 0 and any(r["name"] == "kmem_cache" for r in json.loads(out))


# ---------------------------------------------------------------- kmemu bench
@pytest.mark.slow
def test_bench_json(capsys, monkeypatch) -> None:
    """Every row of a whole ``kmemu bench --json`` run is well formed.  The rows that
    take a volume (objects, rounds, trace ops, gdb's stepi/next/ignore counts, memory
    sizes) run with a tenth or less: this checks the output, not the figures (measured:
    the whole run 47 s -> 23 s, gdb's rows 23 s -> 3 s, the big-memory rows 4.5 -> 1 s,
    the replay rows' traces 2,000 -> 500 ops 3.5 -> 2.4 s of CPU); gdb's rows skip the
    process that warms caches this session has warmed already."""
    from functools import partial

    from emu.frontend import bench, gdbbench, replay_bench

    monkeypatch.setattr(bench, "kmemleak_rows", partial(bench.kmemleak_rows, objects=200))
    monkeypatch.setattr(bench, "kasan_rows", partial(bench.kasan_rows, rounds=10))
    monkeypatch.setattr(bench, "ftrace_rows", partial(bench.ftrace_rows, rounds=10))
    monkeypatch.setattr(bench, "failure_sweep_rows", partial(bench.failure_sweep_rows, n=4))
    # one fresh-process boot (4 GiB) for the big-memory rows' form; 64 GiB's boot and peak
    # RSS are checked in tests/machine/test_large_memory.py
    monkeypatch.setattr(bench, "memory_rows", partial(bench.memory_rows, sizes=("4G",)))
    monkeypatch.setattr(replay_bench, "replay_rows", partial(replay_bench.replay_rows, ops=500))
    # this session's imports and boots have warmed the bytecode and symbol caches
    monkeypatch.setattr(bench, "gdb_rows", partial(gdbbench.gdb_rows, warm=False))
    gdb_body = gdbbench._body  # noqa: SLF001  (stepi 2000, next 200, ignore 999 and 9999)
    monkeypatch.setattr(gdbbench, "_body", lambda: [
        re.sub(r"^(stepi|next|ignore \$bpnum) (\d+)$",
               lambda c: f"{c.group(1)} {int(c.group(2)) // 10}", cmd) for cmd in gdb_body()])
    code, out, _ = run(capsys, "bench", "--json", "--repeat", "1")
    assert code == 0
    rows = json.loads(out)
    assert isinstance(rows, list) and rows
    for r in rows:
        assert set(r) == {"name", "value", "unit", "target", "note"}
        assert isinstance(r["name"], str) and r["name"]
        assert isinstance(r["value"], (int, float)) and isinstance(r["unit"], str)
    boots = [r for r in rows if r["name"].startswith("boot to ready")]
    calls = [r for r in rows if r["name"].startswith("call() of an empty kernel function")]
    assert boots and calls
    for r in boots:
        assert r["unit"] == "ms" and r["value"] > 0
    for r in calls:
        assert r["unit"] == "us" and r["value"] > 0
    for r in rows:
        if r["unit"] == "insns":
            assert r["value"] > 0 and r["value"] == int(r["value"])


def test_bench_compare_flags_regressions(capsys, tmp_path, monkeypatch) -> None:
    """--save then --compare: instruction counts exactly, times beyond the noise."""
    from emu.frontend import bench

    now = [bench.Row("a call", 10.0, "us"), bench.Row("kmalloc insns", 80, "insns"),
           bench.Row("vmalloc insns", 3000, "insns"), bench.Row("brand new", 1.0, "ms")]
    monkeypatch.setattr(bench, "run_bench", lambda repeat=5: list(now))
    ref = tmp_path / "ref.json"
    code, out, _ = run(capsys, "bench", "--save", str(ref), "--repeat", "1")
    assert code == 0 and "kmalloc insns" in out and json.loads(ref.read_text())[1]["value"] == 80
    saved = json.loads(ref.read_text())
    saved = [r for r in saved if r["name"] != "brand new"]
    saved[0]["value"] = 7.0  # 10 us now: 1.43x, beyond the 0.25 threshold
    saved[1]["value"] = 79  # one instruction more now: a regression
    saved[2]["value"] = 3100  # fewer now: improved
    ref.write_text(json.dumps(saved))
    code, out, _ = run(capsys, "bench", "--compare", str(ref))
    assert code == 1
    lines = {ln.split("  ")[0]: ln for ln in out.splitlines()}
    assert lines["a call"].rstrip().endswith("REGRESSED") and " 1.43 " in lines["a call"]
    assert lines["kmalloc insns"].rstrip().endswith("REGRESSED")
    assert lines["vmalloc insns"].rstrip().endswith("improved")
    assert lines["brand new"].rstrip().endswith("new")
    assert "2 regression(s)" in out
    code, out, _ = run(capsys, "bench", "--compare", str(ref), "--noise", "0.5")
    assert code == 1 and "1 regression(s)" in out  # 1.43x is noise at 0.5
    saved[1]["value"] = 80
    ref.write_text(json.dumps(saved))
    code, out, _ = run(capsys, "bench", "--compare", str(ref), "--noise", "0.5")
    assert code == 0 and out.rstrip().endswith("no regressions")


def test_bench_compare_rates_are_better_higher_and_gone_rows_are_listed() -> None:
    """The gdb stub's stepi rate (unit /s) regresses when it falls, not when it rises;
    a saved row this run lacks is listed as gone, not silently dropped."""
    from emu.frontend import bench

    ref = [bench.Row("stepi rate", 1000.0, "/s"), bench.Row("a call", 10.0, "us"),
           bench.Row("dropped row", 5.0, "ms")]
    cmp = bench.compare([bench.Row("stepi rate", 500.0, "/s"),
                         bench.Row("a call", 5.0, "us")], ref)
    assert [(c.row.name, c.verdict) for c in cmp] == [
        ("stepi rate", "REGRESSED"), ("a call", "improved"), ("dropped row", "gone")]
    faster = bench.compare([bench.Row("stepi rate", 2000.0, "/s")], ref[:1])
    assert faster[0].verdict == "improved"


@pytest.mark.parametrize("content, words", [
    (None, "cannot read"), ("{not json", "is not a saved kmemu bench run"),
    ('[{"name": "x"}]', "is not a saved kmemu bench run"),
])
def test_bench_compare_bad_reference(capsys, tmp_path, content, words) -> None:
    ref = tmp_path / "ref.json"
    if content is not None:
        ref.write_text(content)
    code, _, err = run(capsys, "bench", "--compare", str(ref))  # refused before any run
    assert code != 0 and words in err and err.count("\n") <= 2


# ---------------------------------------------------------------- real processes
def test_console_script_boot() -> None:
    proc = subprocess.run([*kmemu_command(), "boot", "--mem", "32M", "--cmdline", "sub=proc"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert e820_lines(proc.stdout) == default_map("32M").lines()
    assert "Command line: sub=proc" in proc.stdout
    assert all(E820_LINE.match(ln) for ln in e820_lines(proc.stdout))


def test_console_script_bad_input() -> None:
    proc = subprocess.run([*kmemu_command(), "boot", "--mem", "banana"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == "" and proc.stderr.count("\n") == 1 and "banana" in proc.stderr


def test_python_dash_m_emu() -> None:
    proc = subprocess.run([sys.executable, "-m", "emu", "boot", "--quiet", "--mem", "16M"],
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_check_takes_gfp_names_as_call_arguments(capsys) -> None:
    """kmemu check's ARGs are read as kmemu trace and the REPL's call read them:
    integers, or GFP flag expressions (emu.kernel.gfp.parse_argument)."""
    from emu.frontend.cli import _int_args
    from emu.kernel import gfp

    assert _int_args(["64", "0x40", "GFP_KERNEL|__GFP_ZERO"]) == (
        64, 64, gfp.parse("GFP_KERNEL") | gfp.parse("__GFP_ZERO"))
    assert main(["check", "irqs", "kmalloc", "64", "sixty"]) == 2
    err = capsys.readouterr().err
    assert err == ("kmemu: argument 'sixty' is not an integer (decimal or 0x hex) or "
                   "GFP flags\n")
    assert main(["check", "irqs", "kmalloc", "64", "GFP_KERNAL"]) == 2
    err = capsys.readouterr().err
    assert "GFP_KERNAL" in err and err.count("\n") == 1
