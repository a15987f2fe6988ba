"""Loadable modules: build, load (kernel/module.c), call, symbolise, unload."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from emu import BadArgument, GuestOops, KmemuError, Machine, ModuleError
from emu.build.module import build_module
from emu.kernel.mm import PAGE_OFFSET

SRC = Path(__file__).parent / "src"
MODULES_VADDR = 0xFFFFFFFFA0000000


def counts(m: Machine) -> tuple[int, int]:
    """Free pages plus runtime page-table pages (the module area's tables stay once
    made, as vmalloc's), and live vmap areas, caches emptied."""
    m.purge_vmap()
    m.call("kmem_cache_shrink_all")
    return sum(z.free for z in m.zones()) + int(m.var("pgtable_pages")), len(m.vmap_areas())


def assert_clean(m: Machine) -> None:
    assert m.validate_page_alloc() == []
    assert m.validate_slab() == []
    assert m.validate_vmalloc() == []


def test_load_call_unload(machine: Machine) -> None:
    before = counts(machine)
    mod = machine.load_module(SRC / "mydev.c")
    assert (mod.name, mod.base) == ("mydev", MODULES_VADDR)
    assert mod.size % 4096 == 0 and mod.elf is not None and mod.elf.suffix == ".ko"
    assert "mydev: mydev ready" in machine.console
    assert machine.proc_modules() == f"mydev {mod.size} 0 - Live 0x{mod.base:016x} (O)\n"
    r = machine.call("mydev_alloc", 5)
    machine.call("mydev:mydev_alloc", 6)
    assert machine.find_object(r) is not None  # a real kmalloc object
    assert (machine.call("mydev_sum"), machine.call("mydev_count")) == (11, 2)
    assert machine.read_u64(mod.symbol("mydev_initialised")) & 0xFFFFFFFF == 7
    mod.unload()
    assert "mydev: bye" in machine.console  # exit ran (and freed the records)
    assert machine.modules() == [] and machine.proc_modules() == ""
    assert counts(machine) == before
    assert_clean(machine)
    with pytest.raises(KmemuError, match="unknown kernel symbol .mydev_sum."):
        machine.call("mydev_sum")


def test_page_permissions(machine: Machine) -> None:
    mod = machine.load_module(SRC / "mydev.c")
    text = machine.walk(mod.sections[".text"])
    ro = machine.walk(mod.sections[".rodata"])
    data = machine.walk(mod.sections[".data"])
    assert (text.writable, text.nx) == (False, False)
    assert (ro.writable, ro.nx) == (False, True)
    assert (data.writable, data.nx) == (True, True)
    assert mod.sections[".rodata"] - mod.base == 4096  # each group on its own pages


def test_multi_file_module_and_name(machine: Machine) -> None:
    mod = machine.load_module(SRC / "multi_main.c", SRC / "multi_helper.c", name="multi")
    assert mod.name == "multi"
    assert machine.call("multi_twice_plus_one", 20) == 41
    with pytest.raises(ModuleError, match="invalid module name 'a-b'"):
        machine.load_module(SRC / "mydev.c", name="a-b")


RELOC_TYPES = {"R_X86_64_64", "R_X86_64_PC32", "R_X86_64_PLT32", "R_X86_64_32",
               "R_X86_64_32S", "R_X86_64_PC64"}


def test_every_relocation_type(machine: Machine) -> None:
    b = build_module([SRC / "relocs.S"])
    with b.path.open("rb") as f:
        elf = ELFFile(f)
        seen = {r.entry["r_info_type"] for s in elf.iter_sections()
                if s.header["sh_type"] == "SHT_RELA" and not s.name.startswith(".rela.debug")
                for r in s.iter_relocations()}
    from elftools.elf.enums import ENUM_RELOC_TYPE_x64 as T
    assert {T[n] for n in RELOC_TYPES} <= seen
    mod = machine.load_built_module(b)
    v = mod.symbol("value")
    assert machine.call("reloc_pc32_read") == 0x1122334455667788  # PC32 (text)
    assert machine.call("reloc_32s_read") == 0x1122334455667788   # 32S
    assert machine.call("reloc_64_read") == 0x1122334455667788    # 64
    assert machine.read_u64(mod.symbol("ptr64")) == v + 8          # 64 + addend
    c = mod.symbol("constant")
    assert machine.read_u64(mod.symbol("pc64")) == (c - mod.symbol("pc64")) & (1 << 64) - 1
    rel32 = int.from_bytes(machine.read_virt(mod.symbol("rel32"), 4), "little", signed=True)
    assert rel32 == c - mod.symbol("rel32")                        # PC32 (data)
    assert machine.read_u64(c) == 42
    assert machine.read_virt(mod.symbol("weak32"), 4) == (0x100).to_bytes(4, "little")
    buf = machine.symbol("kmemu_arg_buf")
    machine.write_virt(buf, b"seventeen chars!!\0")
    assert machine.call("reloc_plt32_strlen", buf) == 17          # PLT32 to the kernel


def test_relocation_overflow_refused(machine: Machine) -> None:
    before = counts(machine)
    with pytest.raises(ModuleError) as ei:
        machine.load_module(SRC / "reloc32_overflow.S")
    msg = str(ei.value)
    assert ei.value.errno == 8 and "Invalid module format" in msg
    assert re.search(r"^overflow in relocation type 10 val ffffffffa000[0-9a-f]{4}$", msg, re.M)
    assert "`reloc32_overflow' likely not compiled with -mcmodel=kernel" in msg
    assert machine.modules() == [] and counts(machine) == before
    assert_clean(machine)


def test_unknown_and_unexported_symbols(machine: Machine) -> None:
    before = counts(machine)
    with pytest.raises(ModuleError) as ei:
        machine.load_module(SRC / "unknown_sym.c")
    assert ei.value.errno == 2
    lines = str(ei.value).splitlines()
    assert lines[0] == ("could not insert module unknown_sym: Unknown symbol in module, "
                        "or unknown parameter (see dmesg)")
    # __vmalloc_node_range exists in the kernel but is not exported
    assert "unknown_sym: Unknown symbol no_such_function (err -2)" in lines
    assert "unknown_sym: Unknown symbol __vmalloc_node_range (err -2)" in lines
    assert machine.modules() == [] and counts(machine) == before
    assert_clean(machine)


def test_gpl_only_exports(machine: Machine) -> None:
    with pytest.raises(ModuleError) as ei:
        machine.load_module(SRC / "proprietary.c")
    assert "proprietary: module license 'Proprietary' taints kernel." in str(ei.value)
    assert "proprietary: Unknown symbol vm_unmap_aliases (err -2)" in str(ei.value)
    machine.load_module(SRC / "gpl_user.c")
    machine.call("gpl_user_flush")


def test_second_load_refused(machine: Machine) -> None:
    machine.load_module(SRC / "mydev.c")
    before = counts(machine)
    with pytest.raises(ModuleError) as ei:
        machine.load_module(SRC / "mydev.c")
    assert ei.value.errno == 17
    assert str(ei.value) == ("could not insert module mydev: File exists\n"
                             "mydev: module is already loaded")
    assert len(machine.modules()) == 1 and counts(machine) == before


@pytest.mark.parametrize("src,errno", [("init_enomem.c", 12), ("init_einval.c", 22)])
def test_init_failure_unloads(machine: Machine, src: str, errno: int) -> None:
    before = counts(machine)
    with pytest.raises(ModuleError) as ei:
        machine.load_module(SRC / src)
    assert ei.value.errno == errno
    text = {12: "Cannot allocate memory", 22: "Invalid argument"}[errno]
    assert str(ei.value).splitlines()[0] == f"could not insert module {src[:-2]}: {text}"
    assert machine.modules() == [] and counts(machine) == before
    assert_clean(machine)
    machine.load_module(SRC / "mydev.c")  # the loader still works


def test_init_positive_return_warns(machine: Machine) -> None:
    machine.load_module(SRC / "init_positive.c")
    assert ("do_init_module: 'init_positive'->init suspiciously returned 1, it should follow "
            "0/-E convention\ndo_init_module: loading module anyway...") in machine.console
    assert [m.name for m in machine.modules()] == ["init_positive"]


def test_module_without_exit_is_permanent(machine: Machine) -> None:
    mod = machine.load_module(SRC / "no_exit.c")
    assert "[permanent]," in machine.proc_modules()
    with pytest.raises(ModuleError, match="could not remove module no_exit: Device or resource "
                       "busy"):
        mod.unload()
    with pytest.raises(ModuleError, match="Module nope is not currently loaded"):
        machine.unload_module("nope")


def test_hundred_load_unload_cycles_leak_nothing(machine: Machine) -> None:
    b = build_module([SRC / "mydev.c"])
    machine.load_built_module(b).unload()  # first-use allocations (caches, tables)
    before = counts(machine)
    for i in range(100):
        machine.load_built_module(b)
        machine.call("mydev_alloc", i)
        machine.unload_module("mydev")
    assert counts(machine) == before
    assert_clean(machine)


def test_oops_in_module_is_symbolised(machine: Machine) -> None:
    mod = machine.load_module(SRC / "mydev.c")
    with pytest.raises(GuestOops) as ei:
        machine.call("mydev_peek", 0x10)
    e = ei.value
    assert re.fullmatch(r"mydev_peek\+0x[0-9a-f]+/0x[0-9a-f]+ \[mydev\]", e.rip)
    assert re.search(r"^RIP: 0010:mydev_peek\+0x[0-9a-f]+/0x[0-9a-f]+ \[mydev\]$", e.console,
                     re.M)
    assert "Modules linked in: mydev(O)" in e.console
    assert "Tainted: G           O" in e.console
    assert f"RIP: 0010:{e.rip}\n" in e.console  # the kernel's %pS and the host agree
    assert machine.symbolize(mod.symbol("mydev_sum") + 2).endswith(" [mydev]")


def test_same_function_in_two_modules(machine: Machine) -> None:
    machine.load_module(SRC / "twin_a.c")
    machine.load_module(SRC / "twin_b.c")
    with pytest.raises(BadArgument, match=r"twin_b:twin_value, twin_a:twin_value"):
        machine.call("twin_value")
    assert machine.call("twin_a:twin_value") == 0xA
    assert machine.call("twin_b:twin_value") == 0xB
    with pytest.raises(BadArgument, match="no module 'twin_c' is loaded"):
        machine.call("twin_c:twin_value")


def test_compiler_diagnostics_and_nothing_loaded(machine: Machine) -> None:
    with pytest.raises(ModuleError) as ei:
        machine.load_module(SRC / "broken.c")
    assert ei.value.errno == 0
    assert re.search(r"broken\.c:6:\d+: error: expected expression", str(ei.value))
    assert machine.modules() == []
    with pytest.raises(ModuleError, match="no such file"):
        machine.load_module(SRC / "missing.c")


def test_snapshot_restore_brings_the_module_list_back(machine: Machine) -> None:
    snap = machine.snapshot()
    machine.load_module(SRC / "mydev.c")
    assert machine.call("mydev_count") == 0
    machine.restore(snap)
    assert machine.modules() == []
    with pytest.raises(KmemuError):
        machine.call("mydev_count")


@pytest.mark.kmemu(modules=["src/mydev.c", ["src/multi_main.c", "src/multi_helper.c"]])
def test_marker_loads_modules_before_the_snapshot(machine: Machine) -> None:
    assert [m.name for m in machine.modules()] == ["multi_main", "mydev"]
    machine.call("mydev_alloc", 1)
    assert machine.call("mydev_count") == 1


@pytest.mark.kmemu(modules=["src/mydev.c", ["src/multi_main.c", "src/multi_helper.c"]])
def test_marker_machine_is_restored_between_tests(machine: Machine) -> None:
    assert machine.call("mydev_count") == 0


def test_this_module_is_the_modules_struct_module(machine: Machine) -> None:
    mod = machine.load_module(SRC / "mydev.c")
    assert machine.call("mydev_this_module") == mod.view.addr


def test_new_code_at_a_reused_address_runs_after_restore(machine: Machine) -> None:
    """Translated blocks of one module must not run for another loaded at the same
    address after a restore (Unicorn keeps them; the host flushes)."""
    snap = machine.snapshot()
    with pytest.raises(ModuleError) as ei:
        machine.load_module(SRC / "init_enomem.c")
    assert ei.value.errno == 12
    machine.restore(snap)
    with pytest.raises(ModuleError) as ei:
        machine.load_module(SRC / "init_einval.c")
    assert ei.value.errno == 22
    machine.restore(snap)
    a = machine.load_module(SRC / "twin_a.c")
    assert machine.call("twin_value") == 0xA
    snap2 = machine.snapshot()
    a.unload()
    machine.purge_vmap()  # the freed area is reused at once, not after the lazy purge
    b = machine.load_module(SRC / "twin_b.c")
    assert b.base == a.base and machine.call("twin_value") == 0xB
    machine.restore(snap2)  # twin_a's code is back at that address
    assert machine.call("twin_value") == 0xA


def test_module_function_arity_and_hit_counts(machine: Machine) -> None:
    machine.load_module(SRC / "mydev.c")
    with pytest.raises(BadArgument, match=r"mydev_alloc\(\) takes 1 argument\(s\) \(value\), "
                       "got 0"):
        machine.call("mydev_alloc")
    with machine.breakpoint("mydev_alloc") as bp:
        for i in range(3):
            machine.call("mydev_alloc", i)
    assert bp.hits == 3 and machine.call("mydev_count") == 3


def test_init_sections_are_freed_after_init(machine: Machine) -> None:
    before = len([a for a in machine.vmap_areas() if a.start >= MODULES_VADDR
                  and a.state == "busy"])
    mod = machine.load_module(SRC / "mydev.c")
    busy = [a for a in machine.vmap_areas() if a.start >= MODULES_VADDR and a.state == "busy"]
    assert len(busy) == before + 1 and busy[0].start == mod.base  # the init area is gone
    assert ".init.text" not in mod.sections and ".text" in mod.sections
    assert machine.call("mydev_count") == 0  # the module works without it


def test_oops_in_init_names_the_init_function(machine: Machine) -> None:
    with pytest.raises(GuestOops) as ei:
        machine.load_module(SRC / "init_oops.c")
    e = ei.value
    assert re.fullmatch(r"init_oops_init\+0x[0-9a-f]+/0x[0-9a-f]+ \[init_oops\]", e.rip)
    assert f"RIP: 0010:{e.rip}\n" in e.console  # the kernel's %pS and the host agree
    assert "Modules linked in: init_oops(O+)" in e.console  # still coming up
    assert " Loading " in machine.proc_modules()  # as Linux leaves it


def _patch_twin_value(m: Machine, new: int, how: str) -> None:
    """Rewrite twin_value()'s returned constant in module text, from the host."""
    fn = m.module("twin_a").symbol("twin_value")
    code = m.read_virt(fn, 32)
    at = fn + code.index(b"\x0a\x00\x00\x00")  # mov $0xa, %eax's immediate
    data = new.to_bytes(4, "little")
    if how == "virt":  # module text is read-only: through the direct map, as a kernel bug would
        m.write_virt(PAGE_OFFSET + m.translate(at), data)
    else:
        m.write_phys(m.translate(at), data)


@pytest.mark.parametrize("how", ["virt", "phys"])
def test_host_write_to_module_text_runs_the_new_code(machine: Machine, how: str) -> None:
    machine.load_module(SRC / "twin_a.c")
    assert machine.call("twin_value") == 0xA  # translated now
    snap = machine.snapshot()
    _patch_twin_value(machine, 0xC, how)
    assert machine.call("twin_value") == 0xC
    machine.restore(snap)  # the old text is back: so is its code
    assert machine.call("twin_value") == 0xA
    _patch_twin_value(machine, 0xD, how)
    assert machine.call("twin_value") == 0xD


def test_restore_across_loads_and_unloads_never_runs_stale_code(machine: Machine) -> None:
    """Before a load, after it, after an unload and another load at the same address:
    whichever snapshot is restored, the code that runs is the code in its memory."""
    empty = machine.snapshot()
    a = machine.load_module(SRC / "twin_a.c")
    assert machine.call("twin_value") == 0xA
    machine.restore(empty)  # before the load
    b = machine.load_module(SRC / "twin_b.c")  # same address, twin_a's blocks translated
    assert b.base == a.base and machine.call("twin_value") == 0xB
    with_b = machine.snapshot()  # after a load
    machine.unload_module("twin_b")
    machine.purge_vmap()
    machine.load_module(SRC / "twin_a.c")
    assert machine.call("twin_value") == 0xA
    machine.restore(with_b)
    assert machine.call("twin_value") == 0xB
    machine.restore(empty)
    a = machine.load_module(SRC / "twin_a.c")
    assert machine.call("twin_value") == 0xA
    a.unload()
    machine.purge_vmap()
    b = machine.load_module(SRC / "twin_b.c")
    assert b.base == a.base and machine.call("twin_value") == 0xB
    after_b = machine.snapshot()
    b.unload()
    machine.purge_vmap()
    machine.load_module(SRC / "twin_a.c")
    assert machine.call("twin_value") == 0xA
    machine.restore(after_b)
    assert machine.call("twin_value") == 0xB


def test_restoring_the_same_module_snapshot_keeps_translated_code(
        machine: Machine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The KUnit and fixture pattern, restore S / run / restore S, must not throw the
    translation cache away each time (that cost ~5 ms per case)."""
    machine.load_module(SRC / "twin_a.c")
    snap = machine.snapshot()
    flushes = []
    real = machine.uc.ctl_flush_tb
    monkeypatch.setattr(machine.uc, "ctl_flush_tb", lambda: (flushes.append(1), real())[1])
    for _ in range(3):
        assert machine.call("twin_value") == 0xA
        machine.call("kmalloc", 64, 0xCC0)  # guest memory other than module text
        machine.write_virt(machine.symbol("kmemu_arg_buf"), b"x")
        machine.restore(snap)
    assert flushes == []
