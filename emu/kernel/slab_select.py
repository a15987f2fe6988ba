"""Which slab allocator a kernel runs: ``slab=slub|slab|slob`` on its command line.

Layer 4 (``emu.kernel``).  The kernel holds all three (kernel/slab/slub.c is SLUB,
kernel/slab/slab.c SLAB, kernel/slab/slob.c SLOB); ``slab_select()`` patches
SLUB's entry points into jumps to the chosen one at boot and records the choice
in the byte ``slab_allocator`` (0, 1, 2 in :data:`ALLOCATORS` order).

>>> with_slab_choice("quiet", "slob", None, False)
'quiet slab=slob'
>>> with_slab_choice("slab=slab", None, None, False)
'slab=slab'
"""

from __future__ import annotations

import re

from emu.core.errors import BadArgument

ALLOCATORS = ("slub", "slab", "slob")
#: the slab_debug= letters each allocator has (Linux: SLAB had red zones, poisoning and
#: the last user; consistency checks (F) are SLUB's; SLOB had no debugging at all)
DEBUG_LETTERS = {"slub": "FZPU", "slab": "ZPU", "slob": ""}


def cmdline_slab(cmdline: str) -> str | None:
    """The value of the last ``slab=`` word of a command line (None without one)."""
    found = re.findall(r"(?:^|\s)slab=(\S*)", cmdline)
    return found[-1] if found else None


def _check_debug(allocator: str, cmdline: str) -> None:
    found = re.findall(r"(?:^|\s)sl[au]b_debug(?:=(\S*))?(?=\s|$)", cmdline)
    if not found:
        return
    letters = DEBUG_LETTERS[allocator]
    if not letters:
        raise BadArgument("slab_debug: SLOB has no debug options (Linux's SLOB had none); "
                          "boot with slab=slub or slab=slab to debug")
    for value in found:
        flags = value.split(",", 1)[0] if value else letters
        bad = sorted({ch.upper() for ch in flags} - set(letters) - {"-"})
        if bad:
            raise BadArgument(f"slab_debug={value}: {allocator.upper()} has no "
                              f"{', '.join(bad)} option (it has {', '.join(letters)}; "
                              f"F, consistency checks, is SLUB's)")


def with_slab_choice(cmdline: str, slab: str | None, slab_debug: str | None,
                     kasan: bool) -> str:
    """``cmdline`` with ``slab=`` added for ``slab`` (checked against the rest).

    Raises :class:`BadArgument` for an allocator kmemu does not have (in ``slab``
    or already on the command line), for debug letters the chosen allocator lacks,
    and for KASAN with anything but SLUB.
    """
    if slab is not None:
        if not isinstance(slab, str) or slab not in ALLOCATORS:
            raise BadArgument(f"slab must be one of {', '.join(ALLOCATORS)}, got {slab!r}")
        given = cmdline_slab(cmdline)
        if given is not None and given != slab:
            raise BadArgument(f"slab={slab!r} but the command line says slab={given}")
        if given is None:
            cmdline = f"{cmdline} slab={slab}".strip()
    chosen = cmdline_slab(cmdline)
    if chosen is not None and chosen not in ALLOCATORS:
        raise BadArgument(f"slab={chosen}: unknown slab allocator (slub, slab or slob)")
    allocator = chosen or "slub"
    if kasan and allocator != "slub":
        raise BadArgument(f"KASAN works with SLUB only (its shadow hooks are SLUB's); "
                          f"got slab={allocator}")
    _check_debug(allocator, f"{cmdline} slab_debug={slab_debug}" if slab_debug else cmdline)
    return cmdline


def allocator_of(read_u8: int) -> str:
    """The name for the guest's ``slab_allocator`` byte."""
    if not 0 <= read_u8 < len(ALLOCATORS):
        raise BadArgument(f"slab_allocator holds {read_u8}, not 0..2: not a kmemu kernel?")
    return ALLOCATORS[read_u8]
