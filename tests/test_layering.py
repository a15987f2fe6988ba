"""No Python layer imports a layer above it (DESIGN.md, ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import emu

ROOT = Path(emu.__file__).parent

LAYERS = {
    "emu.errors": 1, "emu.cpu": 1,
    "emu.firmware": 2,
    "emu.build": 3,
    "emu.kernel": 4, "emu.gfp": 4,
    "emu.irq": 5, "emu.machine": 5, "emu.page_alloc_api": 5, "emu.slab_api": 5,
    "emu.vmalloc_api": 5, "emu.breakpoints": 5,
    "emu.cli": 6, "emu.bench": 6, "emu.qemu": 6, "emu.pytest_plugin": 6, "emu.debugger": 6,
    "emu.gdbstub": 6, "emu": 6, "emu.__main__": 6,
}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in LAYERS:
            return LAYERS[key]
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, mod: str) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                out.append(".".join(base + ([node.module] if node.module else [])))
            elif node.module == "emu":  # from emu import gfp: the submodule is what counts
                out += [f"emu.{a.name}" if (ROOT / f"{a.name}.py").exists()
                        or (ROOT / a.name).is_dir() else "emu" for a in node.names]
            elif node.module:
                out.append(node.module)
    return [m for m in out if m == "emu" or m.startswith("emu.")]


def test_every_module_has_a_layer() -> None:
    missing = [module_name(p) for p in ROOT.rglob("*.py")
               if layer_of(module_name(p)) is None and "_sources" not in p.parts]
    assert missing == [], f"assign a layer in tests/test_layering.py: {missing}"


def test_no_upward_imports() -> None:
    bad = []
    for p in ROOT.rglob("*.py"):
        if "_sources" in p.parts:
            continue
        mod = module_name(p)
        mine = layer_of(mod)
        for imp in imports(p, mod):
            theirs = layer_of(imp)
            if theirs is not None and mine is not None and theirs > mine:
                bad.append(f"{mod} (layer {mine}) imports {imp} (layer {theirs})")
    assert bad == [], "\n".join(bad)
