"""Numbers of the guest/host ABI read from their one definition, ``kernel/internal/kmemu/abi.h``
(and the trace events' ``trace.h``).

Layer 3 (``emu.build``).  The header is part of the sources every build uses
(:func:`emu.build.source_root`), so the host never carries a copy that could
drift from what the kernel was compiled with.

>>> hex(define("KMEMU_CALL_VECTOR"))  # doctest: +SKIP
'0xec'
"""

from __future__ import annotations

import re
from functools import cache

from emu.build import BuildError, source_root

HEADER = "kernel/internal/kmemu/abi.h"
#: Vectors kmemu raises for itself and a user must not: the call vector runs the
#: request in ``kmemu_req``, which outside a host call is nothing (a NULL handler).
INTERNAL_VECTOR_NAMES = ("KMEMU_CALL_VECTOR",)
_DEFINE = re.compile(r"^#define\s+(KMEMU_\w+)\s+(0[xX][0-9a-fA-F]+|\d+)\b", re.M)


@cache
def header_defines(header: str) -> dict[str, int]:
    """Every numeric ``#define KMEMU_*`` of one header of the sources."""
    text = (source_root() / header).read_text()
    return {name: int(value, 0) for name, value in _DEFINE.findall(text)}


def header_define(header: str, name: str) -> int:
    try:
        return header_defines(header)[name]
    except KeyError:
        raise BuildError(f"{header} defines no {name}") from None


def defines() -> dict[str, int]:
    """Every numeric ``#define KMEMU_*`` of ``<kmemu/abi.h>``."""
    return header_defines(HEADER)


def define(name: str) -> int:
    return header_define(HEADER, name)


def internal_vectors() -> dict[int, str]:
    """{vector: macro name} of kmemu's own interrupt vectors."""
    return {define(n): n for n in INTERNAL_VECTOR_NAMES}


TRACE_HEADER = "kernel/internal/kmemu/trace.h"


def trace_defines() -> dict[str, int]:
    """Every numeric ``#define KMEMU_TRACE_*`` of ``<kmemu/trace.h>`` (events, clocks,
    the record layout)."""
    return header_defines(TRACE_HEADER)


def trace_define(name: str) -> int:
    return header_define(TRACE_HEADER, name)
