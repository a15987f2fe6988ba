"""kfree of an address no kmalloc returned is caught on every path, hooks on or off, by
every allocator: an address outside the direct map (Linux's virt_to_folio faults on it
and oopses) and a page that is neither a slab nor a large kmalloc's (Linux 6.1's
free_large_kmalloc WARNs only for an order-0 page, and frees it) each WARN
"kfree: ... is not a kmalloc'ed address", nothing is freed and the machine goes on.
alloc_debug's switches do not change it: they are might_sleep's check and the page
allocator's bad-page checks, not kfree's."""

from __future__ import annotations

import pytest

from emu import Machine

BAD = (0xDEAD_0000_0000_0000,  # non-canonical
       0xFFFF_FFFF_0000_0000,  # above the kernel image, no direct map
       0x1000)                 # user space


@pytest.mark.all_allocators
@pytest.mark.parametrize("hooks", ["boot defaults", "all off"])
def test_kfree_of_a_non_kmalloc_address_warns_and_frees_nothing(
        machine: Machine, allocator: str, hooks: str) -> None:
    m = machine
    if hooks == "all off":
        m.alloc_debug(might_sleep=False, bad_page=False)
    page = m.alloc_pages("GFP_KERNEL", 0)  # the page allocator's, not a kmalloc
    big = m.kmalloc(20000)
    for bad in (*BAD, page) + ((big + 4096,) if allocator != "slab" else ()):
        n, mark = len(m.events), len(m.console)
        m.kfree(bad)
        assert [e.kind for e in m.events[n:]] == ["warn"], (hex(bad), m.events[n:])
        assert f"kfree: {bad:016x} is not a kmalloc'ed address" in m.console[mark:], hex(bad)
        assert m.state == "ready"
    m.alloc_debug(bad_page=True)  # so that a page kfree had freed would be a double free
    n = len(m.events)
    m.free_pages(page, 0)  # still the caller's: freed once, quietly
    m.kfree(big)
    m.kfree(m.kmalloc(64))
    assert m.events[n:] == []


@pytest.mark.parametrize("allocator", ["slub", "slob"])  # SLAB's caches go to 4 MiB
def test_a_kmalloc_block_freed_with_free_pages_leaves_no_record(
        machine: Machine, allocator: str) -> None:
    """A large kmalloc given back with free_pages (the wrong call, which frees it all
    the same) must not leave its page_type behind: the page allocator clears it, as
    Linux 6.12's free_pages_prepare does, so kfree of the block's next owner's pages
    still WARNs (it was taken for a large kmalloc and freed)."""
    m = machine
    p = m.kmalloc(20000)  # a large kmalloc: its own order-3 block
    order = 3
    m.free_pages(p, order)
    q = m.alloc_pages("GFP_KERNEL", order)
    assert q == p  # the same block (the buddy lists are LIFO): its struct page reused
    n = len(m.events)
    m.kfree(q)
    assert [e.kind for e in m.events[n:]] == ["warn"]
    m.free_pages(q, order)
    assert [e.kind for e in m.events[n + 1:]] == []
