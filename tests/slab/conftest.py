"""The slab tests' machines: ``machine`` boots SLUB unless a test takes ``allocator``.

``@pytest.mark.all_allocators`` runs a test once per slab allocator (slab=slub, slab,
slob): the ``allocator`` argument is parametrized and ``machine`` boots with it.  The
machines come from the session's per-worker cache (``booted_machine``), so each
allocator boots once per worker.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emu import Machine
from emu.frontend.pytest_plugin import _module_paths, booted_machine, marker_kwargs

ALLOCATORS = ("slub", "slab", "slob")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "all_allocators: run once per slab allocator "
                            "(the `allocator` argument; `machine` boots with it)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("all_allocators"):
        metafunc.parametrize("allocator", ALLOCATORS)


@pytest.fixture
def allocator() -> str:
    return "slub"


@pytest.fixture
def machine(request: pytest.FixtureRequest, allocator: str) -> Iterator[Machine]:
    """The plugin's ``machine``, booted with ``slab=allocator`` (SLUB by default)."""
    marker = request.node.get_closest_marker("kmemu")
    kw = marker_kwargs(marker) if marker else {}
    if "modules" in kw:
        kw["modules"] = _module_paths(kw["modules"], request.path.parent)
    if allocator != "slub":
        kw["slab"] = allocator
    m = booted_machine(**kw)
    request.node._kmemu_machine = m
    yield m
