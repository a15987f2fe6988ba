"""Suite-wide settings.

Hypothesis's per-example deadline is a timed assert: on a loaded two-core CI
machine (pytest-xdist runs both cores) pure-Python examples such as e820 text
round trips went past 200 ms and failed.  Speed lives in ``kmemu bench``, so
every property test here runs without a deadline.

Under pytest-xdist the tests marked ``slow`` (several seconds each) are handed
out first.  pyproject's ``--maxschedchunk 1`` makes each worker take the next
test from one shared queue as it finishes one, so the long tests start at once
on both workers and the short ones fill in around them, instead of a long test
arriving last on one worker while the other sits idle (ARCHITECTURE.md, "Test
suite").  Without -n the order is the files' own.

pytester (the plugin's own tests) and the REPL's history-file tests point HOME at a
temporary folder, and HOME is where the build cache lives by default
(``~/.cache/kmemu``).  The cache is pinned here for the whole session (unless
KMEMU_CACHE already says where it is), so their child processes reuse the kernel and
modules built for this session instead of building everything again (~5 s of CPU each).

Bytecode: with PYTHONDONTWRITEBYTECODE set (as in this project's shared environment)
nothing is cached, so every run, and every pytest-xdist worker, compiled each test
module again after pytest's assertion rewriting: measured, 7.4 s of CPU of a 2,228-test
collection, 2.7 s with the cache.  Then the cache goes to ``$KMEMU_CACHE/pyc``
(``sys.pycache_prefix``: mirrored absolute paths, nothing written into the source
tree; writes are atomic, so workers share it), as it does for ``kmemu bench``'s gdb
launch.  The tests' child processes get the same (PYTHONPYCACHEPREFIX, and no
PYTHONDONTWRITEBYTECODE): importing the CLI took 0.27 s of CPU, 0.15 s with bytecode.
Set PYTHONPYCACHEPREFIX to choose the folder yourself.  pytest also rewrites the asserts
of every package that ships a pytest plugin (hypothesis: 73 modules), so hypothesis is
imported only after the prefix is set: ~0.5 s of CPU less per pytest process.
"""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from emu.build import cache_root

os.environ.setdefault("KMEMU_CACHE", str(cache_root()))

if sys.dont_write_bytecode and not sys.pycache_prefix:  # before any test module is imported
    sys.pycache_prefix = str(cache_root() / "pyc")
    sys.dont_write_bytecode = False
    # and the Python processes the tests start (the CLI, gdb servers, pytester, pexpect)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = sys.pycache_prefix

from hypothesis import settings  # noqa: E402 - after the cache: pytest rewrites hypothesis

# xdist's controller loads only this conftest: its scheduler hook lives in xdist_groups
from tests.xdist_groups import pytest_xdist_make_scheduler  # noqa: E402,F401

settings.register_profile("kmemu", deadline=None)
settings.load_profile("kmemu")


@pytest.fixture
def qemu() -> str:
    """The QEMU binary the QEMU tests boot the image with (.ci/run installs it)."""
    path = shutil.which("qemu-system-x86_64")
    if path is None:
        pytest.skip("qemu-system-x86_64 is not installed (Debian/Ubuntu: apt-get install "
                    "qemu-system-x86)")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: every worker sorts alike
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable
