"""The bench's guest-instruction rows cannot grow silently.

Guest instruction counts are deterministic (the ``machine`` fixture restores the
same post-boot snapshot), so each row of ``kmemu bench`` counted in instructions
is held to an upper bound: the count measured when the bound was last set, plus
a small margin (2 % + 2 instructions) so that a harmless change of code layout
does not fail CI.  Making a path shorter always passes; making one longer fails
here until the bound is raised on purpose, in the same commit that explains why.
"""

from __future__ import annotations

import pytest

from emu import Machine
from emu.frontend import bench, bench_slab

#: Per group of rows (the bench function that makes them): row name -> instructions
#: when last measured (kmemu bench, 256 MiB).
MEASURED: dict[str, dict[str, int]] = {
    "calls": {
        # the return keeps the host's stack words (subq) and goes back to the idle
        # loop's state itself (movq, pushq, popfq, jmp, its hlt): 31 -> 35
        "call() guest instructions": 35,
        # (379552 on main before might_sleep's key: its ~20 new jump-table entries lengthen
        # every static-key toggle of the jump-label self-tests, which scan the table)
        "kmemu_selftest guest instructions": 382299,
    },
    "page allocator": {
        # debug off: no hook holds page_hooks_key (one nop); debug on (the boot default):
        # might_sleep's and the bad-page checks through __alloc_pages_general and
        # __free_pages_hooks, which the "alone" rows measure too; the trace events' and
        # kmemleak's keys add a nop each on those hooks paths (188 -> 194)
        "alloc_pages+__free_pages order 0 (pcp), debug off": 100,
        "alloc_pages+__free_pages order 0 (pcp), debug on": 194,
        "  alloc_pages order 0 alone": 89,
        "  __free_pages order 0 alone": 87,
        "alloc+free order 3 (buddy lists)": 644,
    },
    "slab": {
        # kfree's address check on every path (pfn < max_pfn: 2 instructions; 76 before)
        "kmalloc(64)+kfree fast path, debug off": 78,
        "  kmalloc(64) alone": 36,
        "  kfree alone": 42,
    },
    "kmem_cache": {
        "kmem_cache_alloc+kmem_cache_free, dedicated cache": 59,
    },
    "vmalloc": {
        # the boot default (debug on): its page calls take the page hooks, its slab calls
        # only might_sleep's inline check (2893 while that held the slab hooks key)
        "vmalloc(4 pages)+vfree, no purge": 2584,
        "  ... plus the purge": 3166,
        "vmalloc(1 page) with 1000 live areas": 1895,
        "vmalloc(1 page) with 15000 live areas": 2310,
    },
    "kunit": {
        "  kunit_case_run(list_test_list_init) guest instructions": 1917,
    },
    "trace events": {
        "kmalloc(64)+kfree, trace events off": 78,
        "kmalloc(64)+kfree, kmem:kmalloc+kfree on": 479,
        "kmalloc(64)+kfree, every kmem/vmalloc event on": 477,
    },
}

#: The three slab allocators side by side (bench_slab.insn_rows), each on a machine booted
#: with that slab=: at the boot defaults (might_sleep's check on: inline behind its own key,
#: debug_atomic_sleep_key; no hook taken) and with every debug check off.  Before that key
#: might_sleep's check held slab_hooks_key, so the boot defaults ran every allocator's hooks
#: path: kmalloc(64)+kfree SLUB 185, SLAB 204, SLOB 492; kmem_cache_alloc+free 181, 174, 410.
BY_ALLOCATOR: dict[str, dict[str, int]] = {
    "slub": {"SLUB: kmalloc(64)+kfree": 87,
             "SLUB: kmalloc(64)+kfree, debug off": 78,
             "SLUB: kmem_cache_alloc+free, 64-byte cache": 68,
             "SLUB: kmem_cache_alloc+free, 64-byte cache, debug off": 59},
    "slab": {"SLAB: kmalloc(64)+kfree": 138,
             "SLAB: kmalloc(64)+kfree, debug off": 129,
             "SLAB: kmem_cache_alloc+free, 64-byte cache": 119,
             "SLAB: kmem_cache_alloc+free, 64-byte cache, debug off": 110},
    "slob": {"SLOB: kmalloc(64)+kfree": 448,
             "SLOB: kmalloc(64)+kfree, debug off": 439,
             "SLOB: kmem_cache_alloc+free, 64-byte cache": 366,
             "SLOB: kmem_cache_alloc+free, 64-byte cache, debug off": 357},
}


#: The bench's functions making each group (the same ones ``run_bench`` calls).
GROUPS = {
    "calls": bench.call_insn_rows,
    "page allocator": bench.page_allocator_rows,
    "slab": bench.slab_rows,
    "kmem_cache": bench.kmem_cache_rows,
    "vmalloc": bench.vmalloc_rows,
    "kunit": bench.kunit_insn_rows,
    "trace events": bench.trace_event_rows,
}


def bound(measured: int) -> int:
    return int(measured * 1.02) + 2


def check_rows(rows: dict[str, float], held: dict[str, int]) -> None:
    assert set(rows) == set(held), ("the bench's instruction rows changed: add new ones to "
                                    f"MEASURED, drop gone ones: {sorted(set(rows) ^ set(held))}")
    over = {name: f"{value:.0f} > {bound(held[name])} (measured {held[name]})"
            for name, value in rows.items() if value > bound(held[name])}
    assert not over, f"guest instruction counts grew: {over}"


@pytest.mark.parametrize("group", GROUPS)
def test_instruction_rows_stay_under_their_bounds(machine: Machine, group: str) -> None:
    check_rows({r.name: r.value for r in GROUPS[group](machine) if r.unit == "insns"},
               MEASURED[group])


@pytest.mark.parametrize("slab", [pytest.param(s, marks=pytest.mark.kmemu(slab=s))
                                  for s in BY_ALLOCATOR])
def test_each_allocators_rows_stay_under_their_bounds(machine: Machine, slab: str) -> None:
    assert machine.slab == slab
    check_rows({r.name: r.value for r in bench_slab.insn_rows(machine)}, BY_ALLOCATOR[slab])


#: bench.boot_insn_rows, fresh boots (not the fixture's machine).
BOOT: dict[str, int] = {
    # each struct page written once (eight stores) instead of a memset, a flags pass and a
    # clear pass at the hand-over to the buddy allocator: 2025492 -> 1004564, 25 -> 9 per page
    "boot, guest instructions (64-bit part)": 1004564,
    "  boot, guest instructions per 4 KiB page of RAM": 9,
}


def test_boot_rows_stay_under_their_bounds() -> None:
    check_rows({r.name: r.value for r in bench.boot_insn_rows()}, BOOT)


def test_instruction_rows_is_every_group() -> None:
    """bench.instruction_rows (what a quick look at the counts prints) and this file
    cover the same rows."""
    import inspect

    src = inspect.getsource(bench.instruction_rows)
    for fn in GROUPS.values():
        assert fn.__name__ in src


def test_a_grown_count_fails_and_a_shorter_one_passes() -> None:
    held = {"row": 100}
    check_rows({"row": 60.0}, held)
    check_rows({"row": float(bound(100))}, held)
    with pytest.raises(AssertionError, match=r"grew: \{'row': '105 > 104 \(measured 100\)'\}"):
        check_rows({"row": 105.0}, held)
    with pytest.raises(AssertionError, match="rows changed"):
        check_rows({"other": 1.0}, held)
