"""The keystone-assembled boot stub, checked instruction by instruction with capstone."""

from __future__ import annotations

import struct

import capstone
import pytest

from emu.build import build, cmdline_sector, source_root
from emu.build import layout as L
from emu.build.bootstub import build_bootstub, strip_comments, substitute
from emu.build.kernel import flat_image
from emu.build.toolchain import BuildError

MODES = {"mbr.asm": capstone.CS_MODE_16, "stage2_16.asm": capstone.CS_MODE_16,
         "stage2_32.asm": capstone.CS_MODE_32, "stage2_64.asm": capstone.CS_MODE_64}


@pytest.fixture(scope="module")
def art():
    return build()


@pytest.fixture(scope="module")
def stub(art):
    return build_bootstub(source_root() / "boot", art.kernel_bytes, art.entry)


def disasm(stub, name: str) -> list:
    addr, code = stub.pieces[name]
    md = capstone.Cs(capstone.CS_ARCH_X86, MODES[name])
    md.detail = True
    return list(md.disasm(code, addr))


def code_end(stub, name: str, insns: list) -> int:
    """Where the instructions end (data follows the last hlt/jmp in 16-bit pieces)."""
    return insns[-1].address + insns[-1].size if insns else stub.pieces[name][0]


def test_boot_sector_signature(stub) -> None:
    assert len(stub.boot_sector) == 512 and stub.boot_sector[510:] == b"\x55\xaa"


def far_jumps(insns: list) -> list[str]:
    return [i.op_str for i in insns if i.mnemonic == "ljmp"]


def test_far_jumps(stub) -> None:
    assert far_jumps(disasm(stub, "mbr.asm")) == ["0:0x8000"]
    assert far_jumps(disasm(stub, "stage2_16.asm")) == ["8:0x8800"]
    assert far_jumps(disasm(stub, "stage2_32.asm")) == ["0x10:0x8c00"]


def test_64_bit_piece_has_no_absolute_or_rip_relative_memory_operands(stub, art) -> None:
    insns = disasm(stub, "stage2_64.asm")
    addr, code = stub.pieces["stage2_64.asm"]
    assert sum(i.size for i in insns) == len(code)  # every byte decodes
    for i in insns:
        for op in i.operands:
            if op.type == capstone.x86.X86_OP_MEM:
                pytest.fail(f"memory operand in 64-bit boot code: {i.mnemonic} {i.op_str}")
    movabs = [i for i in insns if i.mnemonic == "movabs"]
    assert movabs and int(movabs[0].op_str.split(", ")[1], 16) == art.entry
    assert insns[-1].mnemonic == "jmp" and insns[-1].op_str == "rax"


def test_32_bit_piece_decodes_fully(stub) -> None:
    insns = disasm(stub, "stage2_32.asm")
    assert sum(i.size for i in insns) == len(stub.pieces["stage2_32.asm"][1])
    movs = [i.op_str for i in insns if i.mnemonic == "mov" and "cr3" in i.op_str]
    assert movs == ["cr3, eax"]


def test_gdt_descriptors(stub) -> None:
    insns = disasm(stub, "stage2_16.asm")
    lgdt = next(i for i in insns if i.mnemonic == "lgdt")
    desc_addr = lgdt.operands[0].mem.disp
    addr, code = stub.pieces["stage2_16.asm"]
    limit, base = struct.unpack_from("<HI", code, desc_addr - addr)
    assert limit == 31
    gdt = struct.unpack_from("<4Q", code, base - addr)
    assert gdt[0] == 0
    access = [(d >> 40) & 0xFF for d in gdt[1:]]
    flags = [(d >> 52) & 0xF for d in gdt[1:]]
    assert access == [0x9A, 0x9A, 0x92]  # code32 at 0x08, code64 at 0x10, data at 0x18
    assert flags[0] & 0x4 and not flags[0] & 0x2  # 32-bit code: D=1, L=0
    assert flags[1] & 0x2 and not flags[1] & 0x4  # 64-bit code: L=1, D=0


def test_image_layout(art) -> None:
    img = art.image.read_bytes()
    kernel, _ = flat_image(art.elf)
    assert img[:512][510:] == b"\x55\xaa"
    s2 = img[L.STAGE2_LBA * 512:(L.STAGE2_LBA + L.STAGE2_SECTORS) * 512]
    assert s2[: 4] != bytes(4)
    assert img[L.CMDLINE_LBA * 512:(L.CMDLINE_LBA + 1) * 512] == bytes(512)
    assert img[L.KERNEL_LBA * 512: L.KERNEL_LBA * 512 + len(kernel)] == kernel
    assert len(img) % 512 == 0


def test_placeholders_and_comments() -> None:
    with pytest.raises(BuildError, match="@NOPE@"):
        substitute("mov ax, @NOPE@", {}, "x.asm")
    assert substitute("mov ax, @A@ ; note", {"A": 16}, "x.asm").strip() == "mov ax, 0x10"
    assert strip_comments('.ascii "a;b" ; comment') == '.ascii "a;b"\n'


def test_cmdline_sector() -> None:
    assert cmdline_sector("abc")[:4] == b"abc\0"
    with pytest.raises(BuildError, match="command line"):
        cmdline_sector("x" * 512)


def test_build_is_cached(art) -> None:
    again = build()
    assert again.key == art.key and again.image == art.image
