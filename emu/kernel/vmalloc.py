"""Views of the vmalloc area, from guest memory (C: ``kernel/vmalloc.c``).

Layer 4 (``emu.kernel``).  Busy areas come from an in-order walk of the busy
treap, lazily freed ones from ``purge_list``.

>>> print(format_vmallocinfo(read_vmap_areas(prog, read), symbolize))   # doctest: +SKIP
0xffffc90000000000-0xffffc90000006000   24576 test_fn+0x1c/0x40 pages=5 vmalloc N0=5
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

VMALLOC_START = 0xFFFFC90000000000
VMALLOC_END = 0xFFFFE90000000000
VM_ALLOC, VM_MAP, VM_NO_GUARD = 0x2, 0x4, 0x40
Read = Callable[[int, int], bytes]


@dataclass
class VmapAreaView:
    start: int
    end: int  # va_end: includes the guard page
    state: str  # "busy" or "lazy" (unmapped, waiting for the purge)
    size: int = 0  # vm->size (with guard); 0 for lazy areas
    nr_pages: int = 0
    caller: int = 0
    flags: int = 0
    pages: int = 0  # struct page ** (vmalloc'ed areas)

    @property
    def mapped_size(self) -> int:
        guard = 0 if self.flags & VM_NO_GUARD else 4096
        return self.size - guard if self.size else self.end - self.start - 4096


_LAYOUT: dict[int, dict[str, int]] = {}


def _layout(prog) -> dict[str, int]:
    if id(prog) not in _LAYOUT:
        from drgn import offsetof

        va = prog.type("struct vmap_area")
        vm = prog.type("struct vm_struct")
        _LAYOUT[id(prog)] = {
            **{f"va.{n}": offsetof(va, n) for n in ("va_start", "va_end", "left", "right",
                                                      "list", "vm")},
            **{f"vm.{n}": offsetof(vm, n) for n in ("size", "flags", "nr_pages", "caller",
                                                      "pages")},
        }
    return _LAYOUT[id(prog)]


def _u(read: Read, addr: int, n: int = 8) -> int:
    return int.from_bytes(read(addr, n), "little")


def read_vmap_areas(prog, read: Read) -> list[VmapAreaView]:
    """Busy and lazily freed areas, by address."""
    lay = _layout(prog)
    out: list[VmapAreaView] = []
    stack: list[int] = []
    node = _u(read, prog["busy_vmap_root"].address_)
    while stack or node:  # in-order walk of the busy treap
        while node:
            stack.append(node)
            node = _u(read, node + lay["va.left"])
        node = stack.pop()
        vm = _u(read, node + lay["va.vm"])
        area = VmapAreaView(_u(read, node + lay["va.va_start"]),
                            _u(read, node + lay["va.va_end"]), "busy")
        if vm:
            area.size = _u(read, vm + lay["vm.size"])
            area.flags = _u(read, vm + lay["vm.flags"])
            area.nr_pages = _u(read, vm + lay["vm.nr_pages"], 4)
            area.caller = _u(read, vm + lay["vm.caller"])
            area.pages = _u(read, vm + lay["vm.pages"])
        out.append(area)
        node = _u(read, node + lay["va.right"])
    head = prog["purge_list"].address_
    p = _u(read, head)
    while p != head and len(out) < 1 << 20:
        node = p - lay["va.list"]
        out.append(VmapAreaView(_u(read, node + lay["va.va_start"]),
                                _u(read, node + lay["va.va_end"]), "lazy"))
        p = _u(read, p)
    return sorted(out, key=lambda a: a.start)


def format_vmallocinfo(areas: list[VmapAreaView], symbolize: Callable[[int], str]) -> str:
    """``/proc/vmallocinfo``: one line per area, lazily freed ones as "unpurged vm_area"."""
    lines = []
    for a in areas:
        if a.state == "lazy":
            lines.append(f"0x{a.start:016x}-0x{a.end:016x} {a.end - a.start:7d} "
                         "unpurged vm_area")
            continue
        line = f"0x{a.start:016x}-0x{a.start + a.size:016x} {a.size:7d}"
        if a.caller:
            line += f" {symbolize(a.caller)}"
        if a.nr_pages:
            line += f" pages={a.nr_pages}"
        if a.flags & VM_ALLOC:
            line += " vmalloc"
        if a.flags & VM_MAP:
            line += " vmap"
        if a.nr_pages:
            line += f" N0={a.nr_pages}"
        lines.append(line)
    return "\n".join(lines) + ("\n" if lines else "")


def describe_address(addr: int, areas: list[VmapAreaView],
                     symbolize: Callable[[int], str]) -> str | None:
    """Where a vmalloc-range address falls: inside, in a guard page, or in a freed area."""
    if not VMALLOC_START <= addr < VMALLOC_END:
        return None
    for a in areas:
        if not a.start <= addr < a.end:
            continue
        if a.state == "lazy":
            return (f"{addr - a.start} bytes into a freed {a.end - a.start - 4096}-byte vmalloc "
                    "area (unpurged)")
        where = f"allocated at {symbolize(a.caller)}" if a.caller else "with no caller"
        if addr >= a.start + a.mapped_size:
            return (f"{addr - a.start - a.mapped_size} bytes past the end of a "
                    f"{a.mapped_size}-byte vmalloc area {where}")
        return f"{addr - a.start} bytes inside a {a.mapped_size}-byte vmalloc area {where}"
    return "not in any vmalloc area (free, or freed and purged)"


def validate_vmalloc(areas: list[VmapAreaView], translate: Callable[[int], int | None],
                     read_u64: Callable[[int], int], mem_map: int) -> list[str]:
    """Page tables against the areas: every page of a busy area mapped to its own page,
    guard pages and lazily freed areas unmapped, no physical page mapped twice."""
    problems: list[str] = []
    seen: dict[int, int] = {}
    for a in areas:
        if a.state == "lazy":
            for va in range(a.start, a.end, 4096):
                if translate(va) is not None:
                    problems.append(f"lazily freed 0x{va:x} is still mapped")
            continue
        for i in range(a.mapped_size // 4096):
            va = a.start + i * 4096
            pa = translate(va)
            if pa is None:
                problems.append(f"0x{va:x} of a busy area is not mapped")
                continue
            if a.flags & VM_ALLOC and a.pages:
                want = (read_u64(a.pages + 8 * i) - mem_map) // 64
                if pa >> 12 != want:
                    problems.append(f"0x{va:x} maps pfn {pa >> 12:#x}, pages[{i}] is {want:#x}")
            if pa >> 12 in seen:
                problems.append(f"pfn {pa >> 12:#x} mapped at 0x{va:x} and 0x{seen[pa >> 12]:x}")
            seen[pa >> 12] = va
        if not a.flags & VM_NO_GUARD and translate(a.start + a.mapped_size) is not None:
            problems.append(f"guard page 0x{a.start + a.mapped_size:x} is mapped")
    return problems
