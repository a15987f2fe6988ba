"""The kmemu command: boot, e820, build, bench, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emu.cli import main
from emu.firmware.e820 import default_map


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_boot_prints_the_log(capsys) -> None:
    code, out, _ = run(capsys, "boot", "--cmdline", "hello=world")
    assert code == 0
    for line in default_map("256M").lines():
        assert line in out
    assert "Command line: hello=world" in out
    assert "kmemu: kernel ready in" in out


def test_boot_quiet_and_json(capsys) -> None:
    assert run(capsys, "boot", "--quiet") == (0, "", "")
    code, out, _ = run(capsys, "boot", "--json", "--mem", "16M")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["mem"] == 16 << 20
    assert [tuple(e) for e in data["e820"]] == default_map("16M").to_bios_entries()
    assert "BIOS-e820" in data["console"]


def test_boot_6g(capsys) -> None:
    code, out, _ = run(capsys, "boot", "--mem", "6G")
    assert code == 0
    assert "BIOS-e820: [mem 0x0000000100000000-0x00000001bfffffff] usable" in out


def test_boot_user_map(capsys, tmp_path: Path) -> None:
    f = tmp_path / "map.e820"
    f.write_text("0x0 0x9fc00 usable\n0x100000 0x2000000 usable\n0x3000000 +32M usable\n")
    code, out, _ = run(capsys, "boot", "--e820", str(f))
    assert code == 0
    assert "BIOS-e820: [mem 0x0000000003000000-0x0000000004ffffff] usable" in out


@pytest.mark.parametrize("args,msg", [
    (["--mem", "3M"], "16 MiB"),
    (["--mem", "banana"], "banana"),
    (["--e820", "/nonexistent/map"], "/nonexistent/map"),
    (["--cmdline", "x" * 600], "command line"),
])
def test_bad_input(capsys, args: list[str], msg: str) -> None:
    code, out, err = run(capsys, "boot", *args)
    assert code == 2 and msg in err and err.count("\n") == 1


def test_bad_maps(capsys, tmp_path: Path) -> None:
    overlap = tmp_path / "overlap"
    overlap.write_text("0 0x9fc00 usable\n0x100000 0x4000000 usable\n0x200000 +1M reserved\n")
    code, _, err = run(capsys, "boot", "--e820", str(overlap))
    assert code == 2 and "overlap" in err and ":3:" in err
    small = tmp_path / "small"
    small.write_text("0 0x9fc00 usable\n0x100000 0x500000 usable\n")
    code, _, err = run(capsys, "boot", "--e820", str(small))
    assert code == 2 and "usable" in err


def test_failed_boot_exits_1_with_the_oops(capsys) -> None:
    code, out, err = run(capsys, "boot", "--cmdline", "kmemu_test=boot_oops")
    assert code == 1
    assert "BUG: kernel NULL pointer dereference" in out and "boot failed" in err


def test_e820_command(capsys) -> None:
    code, out, _ = run(capsys, "e820", "--mem", "6G")
    assert code == 0 and "\n".join(default_map("6G").lines()) in out


def test_build_command(capsys) -> None:
    code, out, _ = run(capsys, "build")
    image = Path(out.splitlines()[0].split(":", 1)[1].strip())
    assert code == 0 and image.is_file()


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
    code, out, _ = run(capsys, "info", "slabtop", "--json")
    assert code == 0 and any(r["name"] == "kmem_cache" for r in json.loads(out))


def test_bench_json(capsys) -> None:
    code, out, _ = run(capsys, "bench", "--json", "--repeat", "1")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0
    assert any(n.startswith("boot to ready") for n in rows)
    call = next(r for n, r in rows.items() if n.startswith("call() round trip"))
    assert call["value"] > 0 and call["unit"] == "us"


def test_console_script_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "emu", "boot", "--quiet", "--mem", "32M"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
