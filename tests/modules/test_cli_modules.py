"""--module on the kmemu commands, and `kmemu info modules`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from emu.frontend.cli import main

SRC = Path(__file__).parent / "src"


def test_boot_with_modules(capsys) -> None:
    assert main(["boot", "--module", str(SRC / "mydev.c"), "--module",
                 str(SRC / "twin_a.c")]) == 0
    out = capsys.readouterr().out
    assert "mydev: loading out-of-tree module taints kernel.\nmydev: mydev ready\n" in out
    assert out.rstrip().splitlines()[-1].startswith("kmemu: kernel ready in ")


def test_boot_with_a_module_that_does_not_compile(capsys) -> None:
    assert main(["boot", "--quiet", "--module", str(SRC / "broken.c")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kmemu: module load failed: module broken: compiling ")
    assert re.search(r"broken\.c:6:\d+: error: expected expression", err)


def test_boot_with_a_refused_module(capsys) -> None:
    assert main(["boot", "--quiet", "--module", str(SRC / "unknown_sym.c")]) == 1
    err = capsys.readouterr().err
    assert ("kmemu: module load failed: could not insert module unknown_sym: Unknown symbol "
            "in module, or unknown parameter (see dmesg)\n"
            "unknown_sym: loading out-of-tree module taints kernel.\n") in err
    assert "unknown_sym: Unknown symbol no_such_function (err -2)\n" in err


def test_info_modules(capsys) -> None:
    assert main(["info", "modules", "--module", str(SRC / "mydev.c"), "--module",
                 str(SRC / "no_exit.c")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"no_exit \d+ 0 \[permanent\], Live 0xffffffffa000[0-9a-f]{4} \(O\)",
                        lines[0])
    assert lines[1] == "mydev 16384 0 - Live 0xffffffffa0000000 (O)"
    assert main(["info", "modules", "--json", "--module", str(SRC / "mydev.c")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["name"] == "mydev" and data[0]["address"] == 0xFFFFFFFFA0000000
    assert data[0]["sections"][".text"] == 0xFFFFFFFFA0000000
    assert main(["info", "modules"]) == 0 and capsys.readouterr().out == ""


def test_debug_script_with_a_module(capsys, tmp_path: Path) -> None:
    script = tmp_path / "cmds"
    script.write_text("break mydev_count\ncall mydev_count\nbt 1\ncontinue\nmodules\n")
    assert main(["debug", "--module", str(SRC / "mydev.c"), "--script", str(script)]) == 0
    out = capsys.readouterr().out
    assert "Breakpoint 1, mydev_count () at " in out
    assert "mydev_count() returned 0x0 (0)" in out
    assert re.search(r"^add-symbol-file \S+/mydev\.ko -s \.text 0xffffffffa0000000", out, re.M)


@pytest.mark.slow
def test_qemu_loads_the_same_module_with_the_kernels_loader(capsys) -> None:
    assert main(["qemu", "--quiet", "--module", str(SRC / "mydev.c"), "--module",
                 str(SRC / "unknown_sym.c")]) == 0
    out = capsys.readouterr().out
    assert "mydev: loading out-of-tree module taints kernel.\nmydev: mydev ready\n" in out
    assert "unknown_sym: Unknown symbol no_such_function (err -2)" in out
    assert re.search(r"^kmemu: built-in module at offset \d+ failed to load: -2$", out, re.M)
    assert re.search(r"^kmemu selftest: \d+ passed, 0 failed$", out, re.M)
