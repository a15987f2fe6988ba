"""Static keys: text_poke() patches the sites, the emulator runs the new code at
once (both ways), restores bring the old code back, and the host's reader agrees
with the bytes (kernel/jump_label.c, emu/kernel/jump_label.py)."""

from __future__ import annotations

from pathlib import Path

from emu import Machine
from emu.build.layout import TEXT_POKE_PAGES, TEXT_POKE_VADDR

FNS = ("kmemu_test_branch_unlikely", "kmemu_test_branch_likely_false",
       "kmemu_test_branch_likely", "kmemu_test_branch_unlikely_true")


def branches(m: Machine) -> list[int]:
    return [m.call(f) for f in FNS]


def test_keys_toggle_at_run_time_both_ways(machine: Machine) -> None:
    assert branches(machine) == [0, 0, 1, 1]  # the build's bytes: no patching needed
    pokes = int(machine.var("text_pokes"))
    for which, on, want in [(0, 1, [1, 1, 1, 1]), (1, 0, [1, 1, 0, 0]),
                            (0, 0, [0, 0, 0, 0]), (1, 1, [0, 0, 1, 1]), (0, 1, [1, 1, 1, 1])]:
        assert machine.call("kmemu_test_static_key_set", which, on) == on
        assert branches(machine) == want  # translated code was re-made from the new bytes
        keys = {k.name: k for k in machine.static_keys()}
        assert keys["kmemu_test_key_false"].consistent and keys["kmemu_test_key_true"].consistent
    assert int(machine.var("text_pokes")) == pokes + 5 * 2  # two sites per key
    assert machine.call("kmemu_test_static_key_set", 0, 1) == 1  # already on: nothing written
    assert int(machine.var("text_pokes")) == pokes + 10


def test_reader_sees_the_patched_bytes(machine: Machine) -> None:
    keys = {k.name: k for k in machine.static_keys()}
    k = keys["kmemu_test_key_false"]
    assert not k.enabled and sorted(s.state for s in k.sites) == ["jmp", "nop"]
    machine.call("kmemu_test_static_key_set", 0, 1)
    k = {k.name: k for k in machine.static_keys()}["kmemu_test_key_false"]
    assert k.enabled and k.consistent and sorted(s.state for s in k.sites) == ["jmp", "nop"]
    by_fn = {machine.symbolize(s.code).split("+")[0]: s.state for s in k.sites}
    assert by_fn == {"kmemu_test_branch_unlikely": "jmp", "kmemu_test_branch_likely_false": "nop"}
    # every key of the kernel matches its sites (slab_debug, KUnit tracking, ...)
    assert all(k.consistent for k in machine.static_keys())


def test_restore_brings_the_old_code_back(machine: Machine) -> None:
    snap = machine.snapshot()
    assert branches(machine) == [0, 0, 1, 1]
    machine.call("kmemu_test_static_key_set", 0, 1)
    assert branches(machine) == [1, 1, 1, 1]
    machine.restore(snap)  # memory has the old bytes; translations of the new are dropped
    assert branches(machine) == [0, 0, 1, 1]


def test_poke_window_is_empty_between_pokes(machine: Machine) -> None:
    machine.call("kmemu_test_static_key_set", 0, 1)
    for i in range(TEXT_POKE_PAGES):
        assert machine.call("text_poke_virt_to_phys", TEXT_POKE_VADDR + i * 4096) == (1 << 64) - 1
    # and the kernel's text itself is still mapped where it runs
    kmalloc = machine.symbols.address("kmalloc")
    assert machine.call("text_poke_virt_to_phys", kmalloc) != (1 << 64) - 1


MODULE = """#include <linux/module.h>
#include <linux/jump_label.h>
static DEFINE_STATIC_KEY_FALSE(mod_key);
int mod_branch(void) { return static_branch_unlikely(&mod_key) ? 7 : 3; }
void mod_set(int on)
{
	if (on)
		static_branch_enable(&mod_key);
	else
		static_branch_disable(&mod_key);
}
static int __init jl_init(void) { static_branch_enable(&mod_key); return 0; }
static void __exit jl_exit(void) { }
module_init(jl_init);
module_exit(jl_exit);
MODULE_LICENSE("GPL");
"""


def test_module_sites_are_patched(machine: Machine, tmp_path: Path) -> None:
    src = tmp_path / "jlmod.c"
    src.write_text(MODULE)
    machine.load_module(src)
    assert machine.call("jlmod:mod_branch") == 7  # its init turned the key on
    machine.call("jlmod:mod_set", 0)
    assert machine.call("jlmod:mod_branch") == 3
    machine.call("jlmod:mod_set", 1)
    assert machine.call("jlmod:mod_branch") == 7
    machine.unload_module("jlmod")


def test_refcounted_key_patches_on_first_and_last_user(machine: Machine) -> None:
    """static_branch_inc/dec (Linux's static_key_slow_inc/dec): the site jumps from the
    first user to the last; only those two changes write code; one dec too many WARNs
    and leaves the key off."""
    pokes = int(machine.var("text_pokes"))
    assert machine.call("kmemu_test_branch_shared") == 0
    assert machine.call("kmemu_test_static_key_get", 1) == 1
    assert machine.call("kmemu_test_branch_shared") == 1
    assert int(machine.var("text_pokes")) == pokes + 1
    assert machine.call("kmemu_test_static_key_get", 1) == 2
    assert machine.call("kmemu_test_static_key_get", 0) == 1
    assert machine.call("kmemu_test_branch_shared") == 1  # a user still holds it
    assert int(machine.var("text_pokes")) == pokes + 1
    key = {k.name: k for k in machine.static_keys()}["kmemu_test_key_shared"]
    assert key.enabled and key.consistent
    assert machine.call("kmemu_test_static_key_get", 0) == 0
    assert machine.call("kmemu_test_branch_shared") == 0
    assert int(machine.var("text_pokes")) == pokes + 2
    n = len(machine.events)
    assert machine.call("kmemu_test_static_key_get", 0) == 0
    assert [e.kind for e in machine.events[n:]] == ["warn"]
    assert "static_key_slow_dec() with no user" in machine.console
    assert machine.call("kmemu_test_branch_shared") == 0
