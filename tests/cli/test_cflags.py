"""`kmemu cflags` and `kmemu compile-commands`: the flags a module is built with."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from emu.build.modflags import include_dir, module_cflags
from emu.frontend.cli import main

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")

MODULE = """\
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/list.h>

struct rec { int v; struct list_head node; };
static LIST_HEAD(recs);

static int __init mydev_init(void)
{
	struct rec *r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	list_add(&r->node, &recs);
	pr_info("loaded\\n");
	return 0;
}
module_init(mydev_init);
MODULE_LICENSE("GPL");
"""


def test_cflags_prints_the_module_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cflags", "--name", "mydev"]) == 0
    flags = shlex.split(capsys.readouterr().out)
    assert flags == module_cflags(name="mydev")
    for f in ("-DMODULE", "-mcmodel=kernel", "-fno-pic", "-mno-red-zone", "-nostdinc",
              '-DKBUILD_MODNAME="mydev"'):
        assert f in flags
    assert flags[flags.index("-I") + 1] == str(include_dir())
    assert "-Werror" not in flags and not any("internal" in f for f in flags)


@needs_gcc
def test_a_module_compiles_with_the_printed_flags(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mydev.c").write_text(MODULE)
    assert main(["cflags", "--name", "mydev"]) == 0
    flags = shlex.split(capsys.readouterr().out)
    r = subprocess.run(["gcc", *flags, "-Werror", "-fsyntax-only", str(tmp_path / "mydev.c")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_cflags_refuses_a_bad_module_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cflags", "--name", "my-dev"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kmemu: module name 'my-dev' is not a C identifier") and "\n" not in err


@needs_gcc
def test_compile_commands_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mydev.c").write_text(MODULE)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "my-helper.c").write_text("#include <linux/string.h>\n"
                                                  "size_t h(const char *s) { return strlen(s); }\n")
    monkeypatch.chdir(tmp_path)
    assert main(["compile-commands", "mydev.c", "sub/my-helper.c"]) == 0
    assert "wrote 2 entries" in capsys.readouterr().out
    db = json.loads((tmp_path / "compile_commands.json").read_text())
    assert isinstance(db, list) and len(db) == 2
    for entry in db:
        assert set(entry) == {"directory", "file", "arguments"}
        assert Path(entry["directory"]).is_absolute() and Path(entry["file"]).is_absolute()
        assert Path(entry["file"]).is_file()
        args = entry["arguments"]
        assert all(isinstance(a, str) for a in args) and "-DMODULE" in args
        assert args[args.index("-c") + 1] == entry["file"]
        # the recorded command really compiles the file
        cmd = [a for a in args if a != "-o" and not a.endswith(".o")] + ["-fsyntax-only"]
        r = subprocess.run(cmd, cwd=entry["directory"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    names = {e["file"]: [a for a in e["arguments"] if "KBUILD_MODNAME" in a] for e in db}
    assert names[str(tmp_path / "sub" / "my-helper.c")] == ['-DKBUILD_MODNAME="my_helper"']

    # -o elsewhere, and updating keeps the other files' entries
    out = tmp_path / "sub" / "db.json"
    assert main(["compile-commands", "mydev.c", "-o", str(out)]) == 0
    assert main(["compile-commands", "sub/my-helper.c", "-o", str(out)]) == 0
    assert {Path(e["file"]).name for e in json.loads(out.read_text())} == {"mydev.c",
                                                                            "my-helper.c"}


def test_compile_commands_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["compile-commands", "nope.c"]) == 2
    assert capsys.readouterr().err.strip() == "kmemu: nope.c: no such file"
    (tmp_path / "x.h").write_text("")
    assert main(["compile-commands", "x.h"]) == 2
    assert "not a C source file" in capsys.readouterr().err
    (tmp_path / "a.c").write_text("")
    (tmp_path / "compile_commands.json").write_text("{not json")
    assert main(["compile-commands", "a.c"]) == 2
    assert "not a JSON compile database" in capsys.readouterr().err
    assert not (tmp_path / "a.o").exists()
