"""Tab completion: command names, info topics, registers, kernel symbols (no terminal)."""

from __future__ import annotations

import pytest

from emu.frontend.debugger.terminal import Completer

SYMBOLS = ["kmalloc", "kmalloc_caches", "kmem_cache_alloc", "kmem_cache_alloc_bulk",
           "zones", "kfree"]
FUNCTIONS = ["kfree", "kmalloc", "kmem_cache_alloc", "kmem_cache_alloc_bulk"]


@pytest.fixture
def comp() -> Completer:
    return Completer(lambda: SYMBOLS, lambda: FUNCTIONS, lambda: ["before", "after"])


@pytest.mark.parametrize("before, text, expected", [
    ("", "sla", ["slabinfo", "slabtop"]),
    ("", "disas", ["disassemble"]),
    ("  ", "fin", ["finish"]),
    ("", "zz", []),
    ("info ", "r", ["registers"]),
    ("i ", "b", ["breakpoints"]),
    ("info registers ", "ri", ["rip"]),
    ("help ", "wa", ["watch"]),
    ("break ", "kmem_cache_al", ["kmem_cache_alloc", "kmem_cache_alloc_bulk"]),
    ("b ", "kmalloc", ["kmalloc"]),  # functions only: not kmalloc_caches
    ("p ", "kmalloc", ["kmalloc", "kmalloc_caches"]),
    ("p ", "$rs", ["$rsi", "$rsp"]),
    ("x/4xg ", "$ri", ["$rip"]),
    ("identify ", "zo", ["zones"]),
    ("restore ", "b", ["before"]),
    ("next ", "", []),
    ("frobnicate ", "k", []),
])
def test_candidates(comp: Completer, before: str, text: str, expected: list[str]) -> None:
    assert comp.candidates(before, text) == expected
