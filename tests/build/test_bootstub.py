"""The keystone-assembled boot stub, checked instruction by instruction with capstone,
and the disk image built around it (boot sector, stage 2, command line, kernel)."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import capstone
import pytest
from capstone import x86 as cx86
from keystone import KS_ARCH_X86, KS_MODE_64, Ks

from emu.build import build, cmdline_sector, make_image, source_root
from emu.build import layout as L
from emu.build.bootstub import PIECES, build_bootstub, constants, strip_comments, substitute
from emu.build.kernel import flat_image
from emu.build.toolchain import BuildError

MODES = {"mbr.asm": capstone.CS_MODE_16, "stage2_16.asm": capstone.CS_MODE_16,
         "stage2_32.asm": capstone.CS_MODE_32, "stage2_64.asm": capstone.CS_MODE_64}
BOOT = source_root() / "boot"


@pytest.fixture(scope="module")
def art():
    return build()


@pytest.fixture(scope="module")
def stub(art):
    return build_bootstub(BOOT, art.kernel_bytes, art.entry)


def cs(name: str) -> capstone.Cs:
    md = capstone.Cs(capstone.CS_ARCH_X86, MODES[name])
    md.detail = True
    return md


def disasm(stub, name: str, length: int | None = None) -> list:
    """Linear sweep of a piece (or of its first ``length`` bytes)."""
    addr, code = stub.pieces[name]
    return list(cs(name).disasm(code[:length] if length is not None else code, addr))


def reachable(stub, name: str) -> dict[int, object]:
    """Recursive-descent disassembly from the piece's first byte: address -> insn.

    Follows fall-through and near branch targets; stops at far jumps (they leave
    the piece), indirect jumps and returns.
    """
    addr, code = stub.pieces[name]
    md = cs(name)
    seen: dict[int, object] = {}
    todo = [addr]
    while todo:
        pc = todo.pop()
        while addr <= pc < addr + len(code) and pc not in seen:
            insn = next(md.disasm(code[pc - addr:], pc, 1), None)
            assert insn is not None, f"{name}: undecodable bytes at {pc:#x}"
            seen[pc] = insn
            ops = insn.operands
            if insn.group(capstone.CS_GRP_RET) or insn.group(capstone.CS_GRP_IRET):
                break
            if insn.group(capstone.CS_GRP_JUMP) or insn.group(capstone.CS_GRP_CALL):
                if insn.mnemonic == "ljmp" or ops[0].type != cx86.X86_OP_IMM:
                    break
                todo.append(ops[0].imm)
                if insn.mnemonic == "jmp":
                    break
            pc += insn.size
    return seen


def code_length(stub, name: str) -> int:
    """Bytes of code at the start of a piece (data such as the GDT and strings follows)."""
    addr = stub.pieces[name][0]
    insns = reachable(stub, name).values()
    return max(i.address + i.size for i in insns) - addr


def far_jumps(insns: list) -> list[tuple[int, int]]:
    return [(i.operands[0].imm, i.operands[1].imm) for i in insns if i.mnemonic == "ljmp"]


# --- the boot sector and the pieces ------------------------------------------------------


def test_boot_sector_is_512_bytes_with_signature(stub) -> None:
    assert len(stub.boot_sector) == 512 and stub.boot_sector[510:] == b"\x55\xaa"
    addr, code = stub.pieces["mbr.asm"]
    assert addr == L.BOOT_SECTOR and stub.boot_sector[: len(code)] == code
    assert stub.boot_sector[len(code):510] == bytes(510 - len(code))


@pytest.mark.parametrize("name", list(MODES))
def test_every_byte_of_code_decodes(stub, name: str) -> None:
    """Linear sweep and control-flow walk agree on the code: no garbage, no gaps."""
    addr, code = stub.pieces[name]
    n = code_length(stub, name)
    sweep = disasm(stub, name, n)
    assert sum(i.size for i in sweep) == n, f"{name}: capstone stopped early"
    assert [i.address for i in sweep] == sorted(reachable(stub, name))
    if name in ("stage2_32.asm", "stage2_64.asm"):
        assert n == len(code)  # these two pieces are all code


def test_stage2_is_the_pieces_at_their_addresses_and_zeros_between(stub) -> None:
    assert len(stub.stage2) == L.STAGE2_SECTORS * L.SECTOR == L.STAGE2_END - L.STAGE2_16
    expected = bytearray(len(stub.stage2))
    for name, _mode, load, limit in PIECES[1:]:
        addr, code = stub.pieces[name]
        assert addr == load and addr + len(code) <= limit
        expected[addr - L.STAGE2_16: addr - L.STAGE2_16 + len(code)] = code
    assert stub.stage2 == bytes(expected)


def test_far_jumps(stub) -> None:
    assert far_jumps(disasm(stub, "mbr.asm", code_length(stub, "mbr.asm"))) == [(0, 0x8000)]
    assert far_jumps(disasm(stub, "stage2_16.asm", code_length(stub, "stage2_16.asm"))) == [
        (0x08, L.STAGE2_32)]
    assert L.STAGE2_32 == 0x8800
    assert far_jumps(disasm(stub, "stage2_32.asm")) == [(0x10, L.STAGE2_64)]
    assert L.STAGE2_64 == 0x8C00
    assert far_jumps(disasm(stub, "stage2_64.asm")) == []


def test_boot_sector_reads_stage2_with_its_dap(stub) -> None:
    """The DAP the boot sector hands to INT 13h AH=42h loads stage 2 to 0:8000."""
    insns = disasm(stub, "mbr.asm", code_length(stub, "mbr.asm"))
    k = next(n for n, i in enumerate(insns) if i.mnemonic == "mov" and i.op_str == "ah, 0x42")
    si = next(i for i in reversed(insns[:k]) if i.op_str.startswith("si, "))
    addr, code = stub.pieces["mbr.asm"]
    size, _, count, off, seg, lba = struct.unpack_from("<BBHHHQ", code, si.operands[1].imm - addr)
    assert (size, count, seg, off, lba) == (16, L.STAGE2_SECTORS, 0, L.STAGE2_16, L.STAGE2_LBA)


def baseless_memory_operands(insns: list) -> list[str]:
    """Instructions with an absolute or RIP-relative memory operand."""
    return [f"{i.address:#x}: {i.mnemonic} {i.op_str}" for i in insns for op in i.operands
            if op.type == cx86.X86_OP_MEM and op.mem.base in (0, cx86.X86_REG_RIP)]


def test_the_memory_operand_check_sees_keystone_rip_relative_forms() -> None:
    ks = Ks(KS_ARCH_X86, KS_MODE_64)
    md = cs("stage2_64.asm")
    bad = bytes(ks.asm("mov rdi, [0x4000]", L.STAGE2_64)[0])
    good = bytes(ks.asm("mov rsi, 0x4000\nmov rdi, [rsi]", L.STAGE2_64)[0])
    assert baseless_memory_operands(list(md.disasm(bad, L.STAGE2_64))) != []
    assert baseless_memory_operands(list(md.disasm(good, L.STAGE2_64))) == []


def test_64_bit_piece_has_no_absolute_or_rip_relative_memory_operands(stub, art) -> None:
    insns = disasm(stub, "stage2_64.asm")
    assert baseless_memory_operands(insns) == [], "keystone mis-encodes these (UNICORN.md)"
    movabs = [i for i in insns if i.mnemonic == "movabs" and i.op_str.startswith("rax, ")]
    assert [i.operands[1].imm & (2**64 - 1) for i in movabs] == [art.entry]
    assert art.entry >= L.KERNEL_VIRT
    rdi = [i.operands[1].imm for i in insns if i.op_str.startswith("rdi, ")]
    assert rdi == [L.BOOT_INFO]  # the kernel's argument: the boot-info block
    assert insns[-1].mnemonic == "jmp" and insns[-1].op_str == "rax"


def test_32_bit_piece_enters_long_mode(stub) -> None:
    insns = disasm(stub, "stage2_32.asm")
    ops = [i.op_str for i in insns if i.mnemonic == "mov"]
    assert ops.count("cr3, eax") == 1 and "cr4, eax" in ops and "cr0, eax" in ops
    assert any(i.mnemonic == "wrmsr" for i in insns)


def test_gdt_descriptors(stub) -> None:
    insns = disasm(stub, "stage2_16.asm", code_length(stub, "stage2_16.asm"))
    lgdt = [i for i in insns if i.mnemonic == "lgdt"]
    assert len(lgdt) == 1
    mem = lgdt[0].operands[0].mem
    assert mem.base == 0 and mem.index == 0  # absolute: DS is 0 in stage 2
    addr, code = stub.pieces["stage2_16.asm"]
    assert addr + code_length(stub, "stage2_16.asm") <= mem.disp < addr + len(code)
    limit, base = struct.unpack_from("<HI", code, mem.disp - addr)
    assert limit == 4 * 8 - 1 and base % 8 == 0
    gdt = struct.unpack_from("<4Q", code, base - addr)
    assert gdt[0] == 0  # null descriptor

    def decode(d: int) -> dict[str, int]:
        return {"base": ((d >> 16) & 0xFFFFFF) | ((d >> 56) << 24),
                "limit": (d & 0xFFFF) | (((d >> 48) & 0xF) << 16),
                "access": (d >> 40) & 0xFF, "G": (d >> 55) & 1, "D": (d >> 54) & 1,
                "L": (d >> 53) & 1}

    code32, code64, data = (decode(d) for d in gdt[1:])  # selectors 0x08, 0x10, 0x18
    assert code32 == {"base": 0, "limit": 0xFFFFF, "access": 0x9A, "G": 1, "D": 1, "L": 0}
    assert code64["access"] == 0x9A and code64["L"] == 1 and code64["D"] == 0
    assert data == {"base": 0, "limit": 0xFFFFF, "access": 0x92, "G": 1, "D": 1, "L": 0}


def test_selectors_loaded_are_the_data_descriptor(stub) -> None:
    for name in ("stage2_32.asm", "stage2_64.asm"):
        first = disasm(stub, name)[0]
        assert (first.mnemonic, first.op_str) == ("mov", "ax, 0x18")


# --- sources: placeholders, comments, errors ------------------------------------------------


def test_substitute_unknown_placeholder_is_a_build_error() -> None:
    with pytest.raises(BuildError, match="x.asm: unknown placeholder @NOPE@"):
        substitute("mov ax, @NOPE@", {"A": 1}, "x.asm")


def test_substitute_replaces_with_hex() -> None:
    out = substitute("mov ax, @A@ ; @NOT_A_PLACEHOLDER_IN_COMMENT@\nmov bx, @B_2@", {
        "A": 16, "B_2": 0x8000}, "x.asm")
    assert out == "mov ax, 0x10\nmov bx, 0x8000\n"


def test_strip_comments_keeps_semicolons_in_strings_and_line_numbers() -> None:
    src = '.ascii "a;b" ; comment\n; whole line\nnop;nop\n.asciz "x;" ; "y;z"'
    assert strip_comments(src) == '.ascii "a;b"\n\nnop\n.asciz "x;"\n'


def test_every_placeholder_in_boot_sources_is_known(art) -> None:
    values = constants(art.kernel_bytes, art.entry)
    for name, *_ in PIECES:
        assert "@" not in substitute((BOOT / name).read_text(), values, name)


def test_constants_round_kernel_sectors_up() -> None:
    c = constants(L.SECTOR * 3 + 1, 0xFFFFFFFF80100000)
    assert c["KERNEL_SECTORS"] == 4 and c["KERNEL_DWORDS"] == 4 * L.SECTOR // 4


def copy_boot(tmp_path: Path) -> Path:
    d = tmp_path / "boot"
    shutil.copytree(BOOT, d)
    return d


def test_piece_too_large_is_a_build_error(tmp_path: Path, art) -> None:
    d = copy_boot(tmp_path)
    with (d / "stage2_64.asm").open("a") as f:
        f.write("\n" + "    nop\n" * 1100)
    with pytest.raises(BuildError, match="stage2_64.asm is .* bytes; it must end before"):
        build_bootstub(d, art.kernel_bytes, art.entry)


def test_keystone_error_names_the_line(tmp_path: Path, art) -> None:
    d = copy_boot(tmp_path)
    n = len((d / "stage2_32.asm").read_text().splitlines())
    with (d / "stage2_32.asm").open("a") as f:
        f.write("    frobnicate eax\n")
    with pytest.raises(BuildError, match=rf"boot/stage2_32.asm line {n + 1} .*frobnicate"):
        build_bootstub(d, art.kernel_bytes, art.entry)


# --- the image -----------------------------------------------------------------------------


def sectors(img: bytes, lba: int, count: int = 1) -> bytes:
    return img[lba * L.SECTOR:(lba + count) * L.SECTOR]


def test_layout_constants_are_consistent() -> None:
    assert L.STAGE2_LBA == 1
    assert L.BOOT_SECTOR + 512 <= L.STAGE2_16 < L.STAGE2_32 < L.STAGE2_64 < L.STAGE2_END
    assert L.CMDLINE_LBA == L.STAGE2_LBA + L.STAGE2_SECTORS
    assert L.KERNEL_LBA == L.CMDLINE_LBA + 1


def test_image_layout(art, stub) -> None:
    img = art.image.read_bytes()
    kernel, entry = flat_image(art.elf)
    assert (len(kernel), entry) == (art.kernel_bytes, art.entry)
    assert sectors(img, 0) == stub.boot_sector
    assert sectors(img, L.STAGE2_LBA, L.STAGE2_SECTORS) == stub.stage2
    assert sectors(img, L.CMDLINE_LBA) == bytes(512)  # the default command line is empty
    at = L.KERNEL_LBA * L.SECTOR
    assert img[at: at + len(kernel)] == kernel
    assert len(img) == at + -(-len(kernel) // L.SECTOR) * L.SECTOR
    assert img[at + len(kernel):] == bytes(len(img) - at - len(kernel))


def test_make_image_puts_the_command_line_in_its_sector(stub) -> None:
    img = make_image(stub.boot_sector, stub.stage2, b"\x90" * 700, "mem=64M loglevel=8")
    assert sectors(img, L.CMDLINE_LBA).rstrip(b"\0") == b"mem=64M loglevel=8"
    assert sectors(img, L.KERNEL_LBA, 2) == b"\x90" * 700 + bytes(1024 - 700)


def test_cmdline_sector() -> None:
    assert cmdline_sector("abc") == b"abc" + bytes(509)
    assert cmdline_sector("") == bytes(512)
    assert len(cmdline_sector("x" * (L.CMDLINE_MAX - 1))) == 512  # room for the NUL
    with pytest.raises(BuildError, match="command line is 512 bytes"):
        cmdline_sector("x" * 512)
    with pytest.raises(BuildError, match="command line"):
        cmdline_sector("a\0b")


def test_build_is_cached(art) -> None:
    again = build()
    assert again.key == art.key
    assert (again.image, again.elf) == (art.image, art.elf)
    assert again.directory.name == art.key
    assert (again.kernel_bytes, again.entry) == (art.kernel_bytes, art.entry)
