"""GFP allocation flags, with Linux's names and bit values (``kernel/include/linux/gfp.h``).

Layer 4 helper (imports only ``emu.core.errors``).

>>> hex(parse("GFP_KERNEL | __GFP_ZERO"))
'0xdc0'
>>> format(0x820)
'GFP_ATOMIC'
>>> mode_string(0xdc0)
'0xdc0(GFP_KERNEL|__GFP_ZERO)'
"""

from __future__ import annotations

import difflib
import re

from emu.core.errors import KmemuError

_BITS = {
    "__GFP_DMA": 0x01, "__GFP_HIGHMEM": 0x02, "__GFP_DMA32": 0x04, "__GFP_MOVABLE": 0x08,
    "__GFP_RECLAIMABLE": 0x10, "__GFP_HIGH": 0x20, "__GFP_IO": 0x40, "__GFP_FS": 0x80,
    "__GFP_ZERO": 0x100, "__GFP_DIRECT_RECLAIM": 0x400, "__GFP_KSWAPD_RECLAIM": 0x800,
    "__GFP_WRITE": 0x1000, "__GFP_NOWARN": 0x2000, "__GFP_RETRY_MAYFAIL": 0x4000,
    "__GFP_NOFAIL": 0x8000, "__GFP_NORETRY": 0x10000, "__GFP_MEMALLOC": 0x20000,
    "__GFP_COMP": 0x40000, "__GFP_NOMEMALLOC": 0x80000, "__GFP_HARDWALL": 0x100000,
    "__GFP_THISNODE": 0x200000, "__GFP_ACCOUNT": 0x400000, "__GFP_ZEROTAGS": 0x800000,
}
_B = _BITS
__GFP_RECLAIM = _B["__GFP_DIRECT_RECLAIM"] | _B["__GFP_KSWAPD_RECLAIM"]
_GFP_KERNEL = __GFP_RECLAIM | _B["__GFP_IO"] | _B["__GFP_FS"]
_GFP_USER = _GFP_KERNEL | _B["__GFP_HARDWALL"]
_GFP_HIGHUSER_MOVABLE = _GFP_USER | _B["__GFP_HIGHMEM"] | _B["__GFP_MOVABLE"]
_GFP_TRANSHUGE_LIGHT = (_GFP_HIGHUSER_MOVABLE | _B["__GFP_COMP"] | _B["__GFP_NOMEMALLOC"]
                        | _B["__GFP_NOWARN"]) & ~__GFP_RECLAIM

COMBINED = {
    "GFP_TRANSHUGE": _GFP_TRANSHUGE_LIGHT | _B["__GFP_DIRECT_RECLAIM"],
    "GFP_TRANSHUGE_LIGHT": _GFP_TRANSHUGE_LIGHT,
    "GFP_HIGHUSER_MOVABLE": _GFP_HIGHUSER_MOVABLE,
    "GFP_HIGHUSER": _GFP_USER | _B["__GFP_HIGHMEM"],
    "GFP_USER": _GFP_USER,
    "GFP_KERNEL_ACCOUNT": _GFP_KERNEL | _B["__GFP_ACCOUNT"],
    "GFP_KERNEL": _GFP_KERNEL,
    "GFP_NOFS": __GFP_RECLAIM | _B["__GFP_IO"],
    "GFP_ATOMIC": _B["__GFP_HIGH"] | _B["__GFP_KSWAPD_RECLAIM"],
    "GFP_NOIO": __GFP_RECLAIM,
    "GFP_NOWAIT": _B["__GFP_KSWAPD_RECLAIM"],
    "GFP_DMA": _B["__GFP_DMA"],
    "GFP_DMA32": _B["__GFP_DMA32"],
}
#: Every name, combined and single, with its value.
GFP_FLAGS: dict[str, int] = {**COMBINED, "__GFP_RECLAIM": __GFP_RECLAIM, **_BITS}
globals().update({k: v for k, v in GFP_FLAGS.items() if not k.startswith("__")})

# The order Linux's %pGg uses: combinations first, then single flags.
_FORMAT_ORDER = [
    *COMBINED.items(),
]
_FORMAT_ORDER.insert(_FORMAT_ORDER.index(("GFP_DMA32", COMBINED["GFP_DMA32"])),
                     ("__GFP_HIGHMEM", _B["__GFP_HIGHMEM"]))
_FORMAT_ORDER += [(k, v) for k, v in _BITS.items()
                  if k not in ("__GFP_DMA", "__GFP_HIGHMEM", "__GFP_DMA32")]

ZONE_MODIFIERS = _B["__GFP_DMA"] | _B["__GFP_HIGHMEM"] | _B["__GFP_DMA32"] | _B["__GFP_MOVABLE"]


class GfpError(KmemuError, ValueError):
    """A GFP specification that is unknown, malformed or a combination Linux rejects."""


def _parse_token(tok: str) -> int:
    if re.fullmatch(r"0[xX][0-9a-fA-F]+|\d+", tok):
        v = int(tok, 0)
        if v >= 1 << 32:
            raise GfpError(f"GFP value {tok} does not fit in 32 bits")
        return v
    if tok in GFP_FLAGS:
        return GFP_FLAGS[tok]
    close = difflib.get_close_matches(tok, GFP_FLAGS, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise GfpError(f"unknown GFP flag {tok!r}{hint}")


def check(gfp: int) -> None:
    """Reject combinations Linux treats as bugs."""
    zone_bits = gfp & (_B["__GFP_DMA"] | _B["__GFP_DMA32"] | _B["__GFP_HIGHMEM"])
    if zone_bits & (zone_bits - 1):
        raise GfpError(f"GFP mode {mode_string(gfp)} names more than one zone "
                       "(__GFP_DMA, __GFP_DMA32 and __GFP_HIGHMEM exclude each other)")
    if gfp & _B["__GFP_NOFAIL"] and gfp & _B["__GFP_NORETRY"]:
        raise GfpError(f"GFP mode {mode_string(gfp)}: __GFP_NOFAIL and __GFP_NORETRY "
                       "contradict each other")
    if gfp & _B["__GFP_NOFAIL"] and not gfp & _B["__GFP_DIRECT_RECLAIM"]:
        raise GfpError(f"GFP mode {mode_string(gfp)}: __GFP_NOFAIL needs __GFP_DIRECT_RECLAIM "
                       "(Linux warns and fails such a request); pass strict=False to send it")


#: Strings parsed before (and accepted): ``m.kmalloc(64)`` parses "GFP_KERNEL" per call.
_PARSED: dict[tuple[str, bool], int] = {}


def parse(spec: str | int, strict: bool = True) -> int:
    """GFP flags from an int or ``"GFP_KERNEL | __GFP_ZERO"``; :class:`GfpError` if bad.

    ``strict`` also rejects combinations Linux considers bugs (see :func:`check`).
    """
    if type(spec) is str:
        hit = _PARSED.get((spec, strict))
        if hit is not None:
            return hit
    if isinstance(spec, bool):
        raise GfpError("GFP flags must be a name string or an int, not a bool")
    if isinstance(spec, int):
        if not 0 <= spec < 1 << 32:
            raise GfpError(f"GFP value {spec:#x} is not a 32-bit unsigned value")
        gfp = spec
    elif isinstance(spec, str):
        tokens = [t.strip() for t in spec.split("|")]
        if not spec.strip() or any(not t for t in tokens):
            raise GfpError(f"empty GFP flag in {spec!r}")
        gfp = 0
        for t in tokens:
            gfp |= _parse_token(t)
        if strict:
            check(gfp)
        if type(spec) is str and len(_PARSED) < 4096:
            _PARSED[(spec, strict)] = gfp
        return gfp
    else:
        raise GfpError(f"GFP flags must be a string or an int, got {type(spec).__name__}")
    if strict:
        check(gfp)
    return gfp


_FLAG_EXPRESSION = re.compile(r"(__)?GFP_\w+(\s*\|\s*(__)?GFP_\w+)*")


def parse_argument(text: str) -> int | None:
    """A call argument written as GFP flags (``GFP_KERNEL``, ``GFP_KERNEL|__GFP_ZERO``),
    as the REPL's ``call`` and ``kmemu trace`` take them; None if ``text`` is no flag
    expression (an unknown flag name in one is an error, from :func:`parse`)."""
    return parse(text) if _FLAG_EXPRESSION.fullmatch(text) else None


def format(gfp: int) -> str:  # noqa: A001 - mirrors the kernel's gfp_format
    """Linux's ``%pGg`` text: ``GFP_KERNEL|__GFP_ZERO`` (leftover bits in hex)."""
    if not gfp:
        return "none"
    names = []
    for name, mask in _FORMAT_ORDER:
        if gfp & mask == mask:
            names.append(name)
            gfp &= ~mask
    if gfp:
        names.append(f"{gfp:#x}")
    return "|".join(names)


def mode_string(gfp: int) -> str:
    """``0xdc0(GFP_KERNEL|__GFP_ZERO)``, as in ``page allocation failure: ... mode:``."""
    return f"{gfp:#x}({format(gfp)})"


def allows_blocking(gfp: int) -> bool:
    return bool(gfp & _B["__GFP_DIRECT_RECLAIM"])


def zone_modifier(gfp: int) -> str:
    if gfp & _B["__GFP_DMA"]:
        return "DMA"
    if gfp & _B["__GFP_DMA32"]:
        return "DMA32"
    return "Normal"
