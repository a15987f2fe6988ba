"""kfree of an address no kmalloc returned is caught on every path, hooks on or off, by
every allocator: an address outside the direct map (Linux's virt_to_folio faults on it
and oopses) and a page that is neither a slab nor a large kmalloc's (Linux 6.1's
free_large_kmalloc WARNs only for an order-0 page, and frees it) each WARN "kfree: ... is not a kmalloc'ed address", nothing
is freed and the machine goes on.  alloc_debug's switches do not change it: they are
might_sleep's check and the page allocator's bad-page checks, not kfree's."""

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
