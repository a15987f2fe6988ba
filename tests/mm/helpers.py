"""Shared helpers for the page-allocator tests."""

from __future__ import annotations

from emu import Machine
from emu.kernel.gfp import parse

PAGE_OFFSET = 0xFFFF888000000000
# Allocations that ignore watermarks, to drive a zone anywhere (the hoard's own GFP).
GRAB = "GFP_ATOMIC | __GFP_MEMALLOC | __GFP_NOWARN"


def hoard(m: Machine, n: int, gfp: str, order: int = 0) -> int:
    """Take up to n blocks of 2^order pages into the kernel's test hoard."""
    return m.call("kmemu_test_hoard", n, parse(gfp), order)


def release(m: Machine, n: int) -> int:
    """Free up to n hoarded blocks, most recent first."""
    return m.call("kmemu_test_hoard_release", n)


def zone(m: Machine, name: str):
    return next(z for z in m.zones() if z.name == name)


def assert_consistent(m: Machine) -> None:
    problems = m.validate_page_alloc()
    assert problems == [], "\n".join(problems)


def event_kinds(m: Machine, since: int = 0) -> list[str]:
    return [e.kind for e in m.events[since:]]


ZONE_INDEX = {"DMA": 0, "DMA32": 1, "Normal": 2}


def empty_zone(m: Machine, name: str, keep: int = 0) -> None:
    """Take every free page of one zone into the hoard (pcp drained first), then give
    ``keep`` order-0 pages back to the buddy lists."""
    m.drain_all_pages()
    for order in range(10, -1, -1):
        m.call("kmemu_test_hoard_zone", ZONE_INDEX[name], 1 << 40, order)
    if keep:
        release(m, keep)
        m.drain_all_pages()
