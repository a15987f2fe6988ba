"""Argument checks shared by every public entry point.

Layer 1 (imports only :mod:`emu.core.errors`).  The rule (README, "Errors"): a
public method checks what it is given before it uses it and refuses a bad
value with a one-line :class:`~emu.core.errors.BadArgument` naming the parameter,
so no ``TypeError``, ``OverflowError`` or library error escapes.

>>> check_int(4096, "size")
4096
>>> check_int(-1, "order")
Traceback (most recent call last):
...
emu.core.errors.BadArgument: order must be an int in 0..0xffffffffffffffff, got -1
"""

from __future__ import annotations

from emu.core.errors import BadArgument

U64 = (1 << 64) - 1


def check_int(value: object, what: str, lo: int = 0, hi: int = U64) -> int:
    """``value`` as an int in ``lo..hi`` (bools are not ints here)."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        span = f"{lo}..{hi:#x}" if lo == 0 else f"{lo}..{hi}"
        got = f"{value!r}" if isinstance(value, int) else f"{type(value).__name__} {value!r}"
        raise BadArgument(f"{what} must be an int in {span}, got {got}")
    return value


def check_address(value: object, what: str = "address") -> int:
    """A 64-bit virtual or physical address."""
    return check_int(value, what)


def check_optional_int(value: object, what: str, lo: int = 0, hi: int = U64) -> int | None:
    return None if value is None else check_int(value, what, lo, hi)


def check_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise BadArgument(f"{what} must be a str, got {type(value).__name__} {value!r}")
    return value


def check_bytes(value: object, what: str = "data") -> bytes:
    """Bytes-like data (bytes, bytearray, memoryview) as bytes."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise BadArgument(f"{what} must be bytes, bytearray or memoryview, got "
                          f"{type(value).__name__}")
    return bytes(value)


def check_callable(value: object, what: str) -> object:
    if not callable(value):
        raise BadArgument(f"{what} must be callable, got {type(value).__name__}")
    return value
