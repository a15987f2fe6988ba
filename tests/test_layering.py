"""No Python layer imports a layer above it (DESIGN.md, ARCHITECTURE.md).

Every module under ``emu/`` is parsed (not imported) and every import in it is
checked: top-level or inside a function, absolute (``emu.x``, ``from emu import
x``) or relative (``from . import x``, ``from ..kernel import mm``), under
``if TYPE_CHECKING:`` too, and ``importlib.import_module("emu.x")`` with a
literal name.  Imports within one layer are allowed.  A new module must be
given a layer below, so the map stays complete.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import emu

ROOT = Path(emu.__file__).parent

# Low to high; each folder of emu/ is one layer, so a file's path names its layer.
# A key covers the module and everything under it (longest key wins), except "emu",
# which is only the package's own __init__.py.
LAYERS = {
    "emu.core": 1,       # errors, argument checks, the CPU, guest RAM
    "emu.firmware": 2,   # the PC platform: e820, BIOS, disk
    "emu.build": 3,      # toolchain and image
    "emu.kernel": 4,     # knowledge of our kernel (symbols, types, mm/slab views, GFP names)
    "emu.machine": 5,    # the machine, interrupts, and the allocator APIs over it
    "emu.debug": 5,      # the debugging engine: breakpoints, stops, stepping, sessions
    "emu.check": 5,      # checks that drive a machine: KUnit, sweeps
    "emu.frontend": 6,   # front ends (may import anything): CLI, REPL, gdb stub, bench, plugin
    "emu.frontend.pictures": 6,  # the memory map drawn: terminal, SVG, PNG (over emu.kernel.memmap)
    "emu": 6, "emu.__main__": 6,
}


def layer_of(module: str) -> int | None:
    """The layer of a module: the longest dotted prefix in LAYERS.

    ``emu`` itself (``emu/__init__.py``) matches only exactly; as a prefix it
    would give every new module layer 6 and nothing would ever be unassigned.
    """
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        key = ".".join(parts[:n])
        if key in LAYERS:
            return LAYERS[key]
    return LAYERS["emu"] if module == "emu" else None


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules(root: Path = ROOT) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))
            if "_sources" not in p.parts}


def _from_target(base: str, names: list[str], known: set[str]) -> list[str]:
    """``from base import a, b``: a submodule counts as itself, anything else as base."""
    out = [f"{base}.{n}" if f"{base}.{n}" in known else base for n in names]
    return list(dict.fromkeys(out))


def imports(source: str, mod: str, is_package: bool, known: set[str]) -> list[str]:
    """Every ``emu`` module that ``source`` (module ``mod``) imports."""
    pkg = mod if is_package else mod.rpartition(".")[0]
    out: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = pkg.split(".")
                if node.level - 1 >= len(parts):
                    raise AssertionError(f"{mod}: relative import beyond the top package")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            out += _from_target(base, [a.name for a in node.names], known)
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name)
                       and node.func.id in ("import_module", "__import__")))):
            out.append(node.args[0].value)
    return [m for m in out if m == "emu" or m.startswith("emu.")]


def violations(modules: dict[str, Path]) -> list[str]:
    known = set(modules)
    bad = []
    for mod, path in modules.items():
        mine = layer_of(mod)
        for imp in imports(path.read_text(), mod, path.name == "__init__.py", known):
            theirs = layer_of(imp)
            if mine is not None and theirs is not None and theirs > mine:
                bad.append(f"{mod} (layer {mine}) imports {imp} (layer {theirs})")
    return bad


def test_every_module_has_a_layer() -> None:
    missing = [m for m in all_modules() if layer_of(m) is None]
    assert missing == [], f"assign a layer to these modules in tests/test_layering.py: {missing}"


def test_no_upward_imports() -> None:
    bad = violations(all_modules())
    assert bad == [], "upward imports:\n" + "\n".join(bad)


def test_the_layer_map_names_real_modules() -> None:
    """A stale key (module renamed or deleted) would silently stop covering anything."""
    modules = all_modules()
    stale = [k for k in LAYERS if not any(m == k or m.startswith(k + ".") for m in modules)]
    assert stale == []


# --- the checker checks what it claims ------------------------------------------------------

KNOWN = {"emu", "emu.errors", "emu.cpu", "emu.firmware", "emu.firmware.bios",
         "emu.build", "emu.build.layout", "emu.kernel", "emu.kernel.mm", "emu.machine",
         "emu.cli"}


@pytest.mark.parametrize("source, mod, is_pkg, expected", [
    ("import emu.machine", "emu.cpu", False, ["emu.machine"]),
    ("from emu.kernel.mm import PAGE_OFFSET", "emu.cpu", False, ["emu.kernel.mm"]),
    ("from emu import machine, errors", "emu.cpu", False, ["emu.machine", "emu.errors"]),
    ("from emu import __version__", "emu.cpu", False, ["emu"]),
    ("from . import bios", "emu.firmware.disk", False, ["emu.firmware.bios"]),
    ("from .. import machine", "emu.firmware.disk", False, ["emu.machine"]),
    ("from ..kernel import mm", "emu.firmware.disk", False, ["emu.kernel.mm"]),
    ("from ..build.layout import SECTOR", "emu.firmware.bios", False, ["emu.build.layout"]),
    ("from . import bios", "emu.firmware", True, ["emu.firmware.bios"]),
    ("from .machine import Machine", "emu", True, ["emu.machine"]),
    ("def f():\n    from emu.cli import main\n    return main", "emu.cpu", False, ["emu.cli"]),
    ("class C:\n    def m(self):\n        import emu.machine as m\n", "emu.cpu", False,
     ["emu.machine"]),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from emu.machine import M",
     "emu.cpu", False, ["emu.machine"]),
    ("import importlib\nimportlib.import_module('emu.cli')", "emu.cpu", False, ["emu.cli"]),
    ("import os, struct\nfrom unicorn import Uc", "emu.cpu", False, []),
    ("import emulator\nfrom emu_tools import x", "emu.cpu", False, []),
])
def test_imports_are_resolved(source: str, mod: str, is_pkg: bool, expected: list[str]) -> None:
    assert imports(source, mod, is_pkg, KNOWN) == expected


def fake_tree(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    root = tmp_path / "emu"
    for rel, text in {"__init__.py": "", **files}.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return all_modules(root)


def test_upward_imports_are_caught(tmp_path: Path) -> None:
    modules = fake_tree(tmp_path, {
        "core/__init__.py": "",
        "core/errors.py": "",
        "core/cpu.py": "def f():\n    from ..machine.core import Machine\n",
        "machine/__init__.py": "",
        "machine/core.py": "from emu.kernel import mm\nfrom emu.frontend import cli\n",
        "kernel/__init__.py": "",
        "kernel/mm.py": "from ..firmware import bios\nfrom emu.errors import KmemuError\n",
        "firmware/__init__.py": "",
        "firmware/bios.py": "from . import disk\nfrom emu.build import layout\n",
        "firmware/disk.py": "",
        "build/__init__.py": "",
        "build/layout.py": "",
        "frontend/__init__.py": "",
        "frontend/cli.py": "import emu.machine.core\nimport emu.core.cpu\n",
    })
    assert sorted(violations(modules)) == [
        "emu.core.cpu (layer 1) imports emu.machine.core (layer 5)",
        "emu.firmware.bios (layer 2) imports emu.build.layout (layer 3)",
        "emu.machine.core (layer 5) imports emu.frontend.cli (layer 6)",
    ]


def test_a_module_without_a_layer_is_reported(tmp_path: Path) -> None:
    modules = fake_tree(tmp_path, {"core/__init__.py": "", "core/cpu.py": "", "newthing.py": "",
                                   "kernel/__init__.py": "", "kernel/x.py": ""})
    assert [m for m in modules if layer_of(m) is None] == ["emu.newthing"]
