"""Compile and link ``kernel/`` into an ELF and a flat image.

Layer 3 (``emu.build``).  Two link passes: the first gives every function
its final address (text comes first in ``kernel.ld``); from it we generate
the kallsyms table (``.kallsyms``: count, ``{addr, size, name_off}`` sorted by
address, then the names) and link again.  Only sections after ``.text``
grow, so no function moves; the build checks that.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from elftools.elf.elffile import ELFFile

from emu.build.layout import KERNEL_PA, MAX_KERNEL_BYTES
from emu.build.toolchain import (
    CFLAGS,
    KASAN_CFLAGS,
    KASAN_DEFINES,
    KASAN_NO_STACK,
    KASAN_NO_STACK_CFLAGS,
    KASAN_SANITIZE_NOT,
    LDFLAGS,
    BuildError,
    Toolchain,
    kernel_include_flags,
)


def kernel_sources(kdir: Path, kasan: bool = False) -> list[Path]:
    """Every C and assembly file of the kernel, in a stable order (``kasan/*.c`` only
    in the KASAN variant)."""
    extra = sorted(kdir.glob("kasan/*.c")) if kasan else []
    extra += sorted(kdir.glob("trace/*.c"))
    return sorted([*kdir.glob("*.c"), *kdir.glob("*.S")]) + sorted(kdir.glob("slab/*.c")) + extra


def file_cflags(src: Path, kasan: bool) -> list[str]:
    """The flags for one kernel file: CFLAGS, plus in the KASAN variant the define
    everywhere and the sanitizer where Linux would instrument."""
    if not kasan:
        return list(CFLAGS)
    sanitize = src.suffix == ".c" and src.parent.name != "kasan" and \
        src.name not in KASAN_SANITIZE_NOT
    if not sanitize:
        return [*CFLAGS, *KASAN_DEFINES]
    return [*CFLAGS, *KASAN_DEFINES,
            *(KASAN_NO_STACK_CFLAGS if src.name in KASAN_NO_STACK else KASAN_CFLAGS)]


def _run(cmd: list[str], what: str) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise BuildError(f"{what} failed:\n$ {' '.join(cmd)}\n{out.stderr.strip()}")


def compile_objects(tc: Toolchain, kdir: Path, obj_dir: Path, kasan: bool = False) -> list[Path]:
    """Compile each source to ``obj_dir`` (in parallel); returns the objects."""
    obj_dir.mkdir(parents=True, exist_ok=True)
    # __FILE__ as "kernel/page_alloc.c", the way Linux prints "mm/page_alloc.c"
    inc = [*kernel_include_flags(kdir), f"-fmacro-prefix-map={kdir.parent}/="]

    def one(src: Path) -> Path:
        obj = obj_dir / (src.parent.name + "_" + src.name + ".o" if src.parent != kdir
                         else src.name + ".o")
        _run([tc.cc, *file_cflags(src, kasan), *inc, "-c", str(src), "-o", str(obj)],
             f"compiling {src.name}")
        return obj

    from concurrent.futures import ThreadPoolExecutor  # only when compiling: ~6 ms to import

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, kernel_sources(kdir, kasan)))


def _link(tc: Toolchain, kdir: Path, objs: list[Path], out: Path) -> None:
    _run([tc.ld, *LDFLAGS, "-T", str(kdir / "kernel.ld"), "-o", str(out), *map(str, objs)],
         "linking the kernel")


def text_symbols(elf_path: Path) -> list[tuple[int, int, str]]:
    """(address, size, name) of every function symbol, sorted by address."""
    with elf_path.open("rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        if symtab is None:
            raise BuildError(f"{elf_path} has no symbol table")
        syms = {
            (s["st_value"], s.name): s["st_size"]
            for s in symtab.iter_symbols()
            if s["st_info"]["type"] == "STT_FUNC" and s.name and s["st_value"]
        }
    return sorted((a, size, n) for (a, n), size in syms.items())


def kallsyms_asm(syms: list[tuple[int, int, str]]) -> str:
    """The ``.kallsyms`` section as GNU assembly (see kallsyms.h)."""
    names = b""
    lines = ['\t.section .kallsyms, "a"', "\t.balign 8", f"\t.quad {len(syms)}"]
    for addr, size, name in syms:
        lines.append(f"\t.quad {addr:#x}\n\t.long {size:#x}, {len(names)}")
        names += name.encode() + b"\0"
    lines.append("\t.byte " + ", ".join(str(b) for b in names) if names else "")
    return "\n".join(lines) + "\n"


def builtin_modules_object(tc: Toolchain, images: list[bytes], work: Path) -> Path:
    """The ``.modules_builtin`` section: ``{u64 len; bytes; pad to 8}`` per module image
    (kernel/module.c's load_builtin_modules reads it when there is no host)."""
    lines = ['\t.section .modules_builtin, "a"', "\t.balign 8"]
    for i, img in enumerate(images):
        f = work / f"builtin{i}.ko"
        f.write_bytes(img)
        lines += [f"\t.quad {len(img)}", f'\t.incbin "{f}"', "\t.balign 8"]
    src = work / "modules_builtin.S"
    src.write_text("\n".join(lines) + "\n")
    obj = work / "modules_builtin.o"
    _run([tc.cc, "-c", str(src), "-o", str(obj)], "assembling the built-in modules")
    return obj


def link_kernel(tc: Toolchain, kdir: Path, work: Path,
                builtin_modules: list[bytes] | None = None, kasan: bool = False) -> Path:
    """Compile, link twice with the generated kallsyms, return the final ELF;
    ``builtin_modules`` (module images) are linked in for hosts without kmemu (QEMU);
    ``kasan`` builds the KASAN variant."""
    objs = compile_objects(tc, kdir, work / "obj", kasan)
    if builtin_modules:
        objs.append(builtin_modules_object(tc, builtin_modules, work))
    pass1 = work / "kernel.pass1.elf"
    _link(tc, kdir, objs, pass1)
    syms = text_symbols(pass1)
    ks_src = work / "kallsyms.S"
    ks_src.write_text(kallsyms_asm(syms))
    ks_obj = work / "kallsyms.o"
    _run([tc.cc, "-c", str(ks_src), "-o", str(ks_obj)], "assembling kallsyms")
    final = work / "kernel.elf"
    _link(tc, kdir, [*objs, ks_obj], final)
    if text_symbols(final) != syms:
        raise BuildError("kallsyms pass moved functions; check kernel.ld section order")
    return final


def flat_image(elf_path: Path) -> tuple[bytes, int]:
    """The loadable bytes from physical KERNEL_PA up, and the entry point."""
    with elf_path.open("rb") as f:
        elf = ELFFile(f)
        entry = elf.header["e_entry"]
        segs = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_filesz"]]
        if not segs:
            raise BuildError(f"{elf_path} has no loadable segments")
        top = max(s["p_paddr"] + s["p_filesz"] for s in segs)
        if min(s["p_paddr"] for s in segs) < KERNEL_PA:
            raise BuildError("kernel segment below its load address; check kernel.ld")
        image = bytearray(top - KERNEL_PA)
        for s in segs:
            off = s["p_paddr"] - KERNEL_PA
            image[off : off + s["p_filesz"]] = s.data()
    if len(image) > MAX_KERNEL_BYTES:
        raise BuildError(
            f"kernel image is {len(image)} bytes; the boot stub's bounce buffer holds "
            f"{MAX_KERNEL_BYTES}"
        )
    return bytes(image), entry


def elf_header_check(elf_path: Path) -> None:
    """Refuse an ELF that is not x86-64 (e.g. a compiler targeting another CPU)."""
    with elf_path.open("rb") as f:
        magic = f.read(20)
    if magic[:4] != b"\x7fELF" or struct.unpack_from("<H", magic, 18)[0] != 62:
        raise BuildError(f"{elf_path} is not an x86-64 ELF file")
