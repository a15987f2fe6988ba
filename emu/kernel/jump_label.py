"""Static keys and their patch sites (``kernel/include/linux/jump_label.h``).

Layer 4 (``emu.kernel``).  The kernel's ``__jump_table`` (kept by ``kernel.ld``
between ``__start___jump_table`` and ``__stop___jump_table``) holds one
``struct jump_entry { u64 code, target, key | branch; }`` per site, absolute
addresses.  A site holds the 5-byte nop ``0f 1f 44 00 00`` or ``e9 rel32`` to
its target, the jmp exactly when the key's ``enabled`` differs from the entry's
branch bit.  This reads the table, the keys and the sites' bytes from guest
memory through the reader it is given, and says whether each site matches its
key.  Module tables (``struct module.jump_entries``) are not listed here.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

ENTRY = struct.Struct("<QQQ")
NOP5 = bytes.fromhex("0f1f440000")
SITE_SIZE = 5


@dataclass(frozen=True)
class JumpSite:
    code: int
    target: int
    branch: bool
    bytes_: bytes

    @property
    def state(self) -> str:
        """``"nop"``, ``"jmp"`` (to its target) or ``"other"`` (neither encoding)."""
        if self.bytes_ == NOP5:
            return "nop"
        rel = (self.target - (self.code + SITE_SIZE)) & 0xFFFFFFFF
        return "jmp" if self.bytes_ == b"\xe9" + rel.to_bytes(4, "little") else "other"

    def wants_jump(self, enabled: bool) -> bool:
        return enabled != self.branch


@dataclass
class StaticKey:
    name: str
    address: int
    enabled: bool
    sites: list[JumpSite] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        """Every site holds the encoding the key's state asks for."""
        return all(s.state == ("jmp" if s.wants_jump(self.enabled) else "nop")
                   for s in self.sites)


def static_keys(read: Callable[[int, int], bytes], start: int, stop: int,
                name_of: Callable[[int], str]) -> list[StaticKey]:
    """Every key with sites in the table ``[start, stop)``, by name.

    ``read(va, n)`` reads guest memory; ``name_of(addr)`` names a key's address."""
    raw = read(start, stop - start) if stop > start else b""
    keys: dict[int, StaticKey] = {}
    for code, target, key in ENTRY.iter_unpack(raw):
        addr = key & ~1
        k = keys.get(addr)
        if k is None:
            enabled = int.from_bytes(read(addr, 4), "little", signed=True) > 0
            k = keys[addr] = StaticKey(name_of(addr), addr, enabled)
        k.sites.append(JumpSite(code, target, bool(key & 1), read(code, SITE_SIZE)))
    return sorted(keys.values(), key=lambda k: k.name)


def format_static_keys(keys: list[StaticKey], symbolize: Callable[[int], str]) -> str:
    """A table: key, state, then one line per site (``kmemu info static-keys``)."""
    lines = []
    for k in keys:
        lines.append(f"{k.name}: {'enabled' if k.enabled else 'disabled'}, "
                     f"{len(k.sites)} site(s){'' if k.consistent else ' MISMATCH'}")
        for s in k.sites:
            lines.append(f"  {symbolize(s.code)} ({s.code:#x}): {s.state}"
                         f" -> {symbolize(s.target)}")
    return "\n".join(lines) + ("\n" if lines else "")
