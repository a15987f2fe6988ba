"""kmemleak (issue 14 part 3): Linux's scan in the guest, its report, and the
situations Linux documents (tests/kmemleak/src/leaky.c has one function each)."""

from __future__ import annotations

import zlib

import pytest

from emu import KmemleakOff, Machine

LEAKY = pytest.mark.kmemu(modules=["src/leaky.c"], kmemleak=True)
KMEMLEAK = pytest.mark.kmemu(kmemleak=True)
JIFFIES = 4294667296  # INITIAL_JIFFIES with HZ=1000: kmemu has no timer tick


def crc32_le(data: bytes) -> int:
    """Linux's crc32(0, data, len): zlib's CRC without its pre- and post-inversion."""
    return ~zlib.crc32(data, 0xFFFFFFFF) & 0xFFFFFFFF


@KMEMLEAK
def test_idle_boot_reports_nothing(machine: Machine) -> None:
    assert "kmemleak: Kernel memory leak detector initialized" in machine.console
    assert machine.kmemleak_enabled()
    assert machine.kmemleak_scan() == []
    assert "suspected memory leaks" not in machine.console


@KMEMLEAK
def test_nothing_after_the_self_tests(machine: Machine) -> None:
    assert machine.call("kmemu_selftest") == 0
    assert machine.kmemleak_scan() == []


@LEAKY
def test_exact_report_text(machine: Machine) -> None:
    mark = len(machine.console)
    machine.call("leak_known")
    [obj] = machine.kmemleak_scan()
    body = bytes(range(65, 81)) + bytes(range(16, 64))
    assert machine.read_virt(obj.address, 64) == body
    assert (obj.size, obj.comm, obj.pid, obj.jiffies, obj.new) == (64, "swapper/0", 0, JIFFIES,
                                                                   True)
    assert obj.hex_dump == body[:32]
    assert obj.checksum == crc32_le(body)
    # from the allocator's hook up: the allocator's frames, the module's, the host call's
    names = [f.split("+")[0] for f in obj.backtrace]
    assert names[0] == "slab_post_alloc" and names[-1] == "kmemu_call_return"
    assert names[-3:-1] == ["kmalloc", "leak_known"] and obj.backtrace[-2].endswith(" [leaky]")
    frames = "".join(f"    [<{a:016x}>] {s}\n" for a, s in zip(obj.trace, obj.backtrace,
                                                                strict=True))
    expected = (
        f"unreferenced object 0x{obj.address:08x} (size 64):\n"
        f'  comm "swapper/0", pid 0, jiffies {JIFFIES}\n'
        "  hex dump (first 32 bytes):\n"
        "    41 42 43 44 45 46 47 48 49 4a 4b 4c 4d 4e 4f 50  ABCDEFGHIJKLMNOP\n"
        "    10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f  ................\n"
        f"  backtrace (crc {crc32_le(body):x}):\n" + frames)
    assert obj.text == expected
    # the console: the new object as the debugfs file shows it, then Linux's count
    assert machine.console[mark:] == expected + (
        "kmemleak: 1 new suspected memory leaks (see /sys/kernel/debug/kmemleak)\n")
    [ev] = [e for e in machine.events if e.kind == "kmemleak"]
    assert ev.message == f"unreferenced object 0x{obj.address:08x} (size 64)"
    assert ev.args[:2] == (obj.address, 64) and list(ev.trace) == obj.trace


@LEAKY
def test_a_leak_hidden_inside_another_leak_is_reported_too(machine: Machine) -> None:
    machine.call("leak_hidden")
    parent, child = machine.kmemleak_scan()
    # the parent points at the child, but an unreferenced object is not scanned
    assert machine.read_u64(parent.address) == child.address
    assert [o.backtrace[-2].split("+")[0] for o in (parent, child)] == ["leak_hidden"] * 2
    assert parent.serial < child.serial


@LEAKY
def test_pointer_into_the_middle_is_a_reference(machine: Machine) -> None:
    machine.call("keep_middle")
    assert machine.kmemleak_scan() == []
    # drop the only pointer
    machine.write_virt(machine.module("leaky").symbol("kept_middle"), bytes(8))
    [obj] = machine.kmemleak_scan()
    assert obj.size == 128 and obj.backtrace[-2].startswith("keep_middle+")


@LEAKY
def test_struct_page_pointer_references_its_pages(machine: Machine) -> None:
    machine.call("keep_page")
    assert machine.kmemleak_scan() == []
    machine.write_virt(machine.module("leaky").symbol("kept_page"), bytes(8))
    [obj] = machine.kmemleak_scan()
    assert (obj.size, obj.backtrace[1].split("+")[0]) == (8192, "alloc_pages")


@LEAKY
def test_not_leak_is_scanned_ignore_is_not(machine: Machine) -> None:
    machine.call("leak_not_leak")  # its child is referenced from it
    assert machine.kmemleak_scan() == []
    machine.call("leak_ignore")  # never reported, never scanned: its child leaks
    [child] = machine.kmemleak_scan()
    assert child.size == 64 and child.backtrace[-2].startswith("leak_ignore+")


@LEAKY
def test_vmalloc_leak(machine: Machine) -> None:
    machine.call("leak_vmalloc")
    [obj] = machine.kmemleak_scan()
    assert obj.address >= 0xFFFFC90000000000 and obj.size == 4 * 4096
    assert obj.backtrace[1].startswith("vmalloc+")


@LEAKY
def test_module_unload(machine: Machine) -> None:
    # the module's .bss is a root while it is loaded: init's object is referenced
    assert machine.kmemleak_scan() == []
    machine.unload_module("leaky")  # its exit frees it
    assert machine.kmemleak_scan() == []


@LEAKY
def test_module_unload_forgetting_its_object(machine: Machine) -> None:
    machine.call("set_forget_on_exit")
    machine.unload_module("leaky")
    [obj] = machine.kmemleak_scan()
    assert obj.size == 256  # kmalloc(200) from kmalloc-256
    # allocated by the init function, whose area is gone: a bare address, as Linux prints
    names = [f.split("+")[0] for f in obj.backtrace]
    i = names.index("kmalloc")
    assert names[i + 1].startswith("0xffffffffa") and names[i + 2].startswith("load_module_image")


@LEAKY
def test_reported_once_then_cleared(machine: Machine) -> None:
    machine.call("leak_vmalloc")
    first = machine.kmemleak_scan()
    assert [o.new for o in first] == [True]
    again = machine.kmemleak_scan()
    assert [(o.address, o.new) for o in again] == [(first[0].address, False)]
    assert machine.console.count("new suspected memory leaks") == 1
    machine.kmemleak_clear()  # Linux's echo clear: never reported again
    assert machine.kmemleak_scan() == []
    machine.call("leak_known")
    assert [o.size for o in machine.kmemleak_scan()] == [64]


@LEAKY
def test_since_keeps_later_allocations(machine: Machine) -> None:
    machine.call("leak_vmalloc")
    since = machine.kmemleak_serial()
    machine.call("leak_known")
    assert [o.size for o in machine.kmemleak_scan(since=since)] == [64]
    assert len(machine.kmemleak_scan()) == 2


@LEAKY
def test_hardirq_comm(machine: Machine) -> None:
    machine.call("leak_known", context="irq")
    [obj] = machine.kmemleak_scan()
    assert obj.text.splitlines()[1] == f'  comm "hardirq", pid 0, jiffies {JIFFIES}'


def test_scan_without_kmemleak(machine: Machine) -> None:
    with pytest.raises(KmemleakOff) as e:
        machine.kmemleak_scan()
    assert str(e.value) == ("kmemleak_scan: kmemleak is off; boot with Machine(kmemleak=True), "
                            "`kmemu boot --kmemleak` or kmemleak=on on the command line")
    with pytest.raises(KmemleakOff):
        machine.kmemleak_clear()
    assert machine.call("kmemleak_scan_host", 0) == (1 << 64) - 1  # the kernel says so too
    assert machine.state == "ready"


@pytest.mark.kmemu(cmdline="kmemleak=off")
def test_kmemleak_off_on_the_command_line(machine: Machine) -> None:
    assert not machine.kmemleak_enabled()
    assert "memory leak detector" not in machine.console


def test_bad_argument() -> None:
    from emu import BadArgument

    with pytest.raises(BadArgument, match="kmemleak must be True or False"):
        Machine(kmemleak="yes")  # type: ignore[arg-type]


WIDGETS = pytest.mark.kmemu(modules=["../check/src/widgets.c"], kmemleak=True)


@WIDGETS
def test_failure_sweep_then_scan_finds_the_error_path_leak(machine: Machine) -> None:
    """The sweep (part 2) finds the allocation whose failure leaks; failing it once
    more and scanning, kmemleak reports what the error path forgot, in Linux's words."""
    runs = machine.sweep_failures("widget_add_leaky", 4, roots=["widgets"])
    # the same table as without kmemleak: its metadata allocations are not counted
    assert [(r.k, r.site, r.outcome) for r in runs] == [
        (1, "widgets.c:66", "ok"), (2, "widgets.c:69", "ok"), (3, "widgets.c:72", "ok"),
        (4, "widgets.c:75", "leak")]
    assert [(lk.size, lk.site) for lk in runs[3].leaks] == [(7, "widgets.c:69"),
                                                            (32, "widgets.c:72")]
    assert machine.kmemleak_scan() == []  # the sweep restored the machine
    nth = machine.fail_nth(runs[3].k)
    assert machine.call("widget_add_leaky", 4) == (-12) & 0xFFFFFFFF and nth.fired  # int
    leaks = machine.kmemleak_scan()
    assert [(o.size, o.backtrace[-2].split("+")[0]) for o in leaks] == [
        (8, "widget_add_leaky"), (32, "widget_add_leaky")]  # the name and the buffer
    assert leaks[0].hex_dump[:7] == b"widget\0"  # kstrdup("widget") in kmalloc-8
    # the correct version leaves nothing unreferenced, failing or not
    for k in range(1, 5):
        machine.fail_nth(k)
        machine.call("widget_add", 4)
    machine.call("widget_add", 4)
    assert machine.kmemleak_scan(since=leaks[1].serial + 1) == []


@KMEMLEAK
def test_pages_linked_through_struct_pages_are_referenced(machine: Machine) -> None:
    """The hoard (kernel/mm_test.c) keeps its pages on a list through page->lru: only
    the first and last are pointed at from .bss; Linux's struct page scan finds the rest."""
    assert machine.call("kmemu_test_hoard", 5, 0xCC0, 0) == 5
    assert machine.kmemleak_scan() == []
    assert machine.call("kmemu_test_hoard_release", 5) == 5
    assert machine.kmemleak_scan() == []


@KMEMLEAK
def test_large_kmalloc_is_its_page_block(machine: Machine) -> None:
    p = machine.call("kmalloc", 20000, 0xCC0)  # order 3 from the page allocator
    [obj] = machine.kmemleak_scan()
    assert (obj.address, obj.size) == (p, 32768)  # Linux: 20000 (see ARCHITECTURE.md)
    assert obj.text.startswith(f"unreferenced object 0x{p:08x} (size 32768):\n")
    machine.kfree(p)
    assert machine.kmemleak_scan() == []
