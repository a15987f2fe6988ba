"""``identify ADDR`` (drgn's identify_address; gdb's ``whatis`` is a type query, so the
REPL, ``monitor identify`` and ``Machine.identify`` use this name): which part of kernel
memory owns an address, in words.

Layer 4 (``emu.kernel``).  The classification is a pure function of a few
readers bundled in :class:`Sources` (the Machine's ``DebugInfoMixin`` in
``emu.debug.api`` fills them from live memory), so it can be tested on fakes.
The address decides the region first (x86-64 layout, ``memlayout.h``), then
the region's own structures decide the rest:

* **direct map** (``0xffff888000000000 + pa``): the pfn, its zone and what its
  ``struct page`` says: in a free buddy block (head pfn and order), on the
  per-cpu list, a slab object (cache, index, allocated or free, owner tracks
  with ``slab_debug=U``), part of an ``alloc_pages`` block (head and order),
  or reserved;
* **vmalloc** area: the ``vmap_area`` (bytes inside / past the end / freed),
  its caller, and the backing page described as above;
* **vmemmap** (``0xffffea0000000000 + pfn*64``): the pfn whose ``struct page``
  it is, the field, and that page;
* **kernel image** (``0xffffffff80000000 + pa``): the symbol and section;
* user-half, non-canonical and unmapped kernel addresses are said to be so.

>>> print(m.identify(p))                                         # doctest: +SKIP
0xffff888001234560: direct map, pfn 0x1234 in zone DMA32
slab object: kmalloc-256 object 5 of 16 at 0xffff888001234500, +0x60 of 256 bytes, allocated
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emu.core.errors import KmemuError
from emu.kernel.mm import MAX_PAGE_ORDER, PAGE_OFFSET, PAGE_SHIFT, STRUCT_PAGE_SIZE, PageInfo
from emu.kernel.modules import MODULES_END, MODULES_VADDR
from emu.kernel.pagetable import NON_CANONICAL, check_address, is_canonical
from emu.kernel.vmalloc import VM_ALLOC, VM_MAP, VMALLOC_END, VMALLOC_START, VmapAreaView

U64 = (1 << 64) - 1
USER_END = 0x0000800000000000
DIRECT_MAP_END = PAGE_OFFSET + (1 << 46)  # 64 TiB, Linux's 4-level direct map size
VMEMMAP_START = 0xFFFFEA0000000000
VMEMMAP_END = VMEMMAP_START + (1 << 40)
KERNEL_MAP = 0xFFFFFFFF80000000
PAGE_SIZE = 1 << PAGE_SHIFT


@dataclass(frozen=True)
class Section:
    """An allocated section of the kernel image (``.text``, ``.data``, ``.bss`` ...)."""

    name: str
    start: int
    end: int


def kernel_sections(elf_path: Path | str) -> list[Section]:
    """The loaded (SHF_ALLOC) sections of the kernel ELF, by address."""
    from elftools.elf.elffile import ELFFile

    out = []
    with Path(elf_path).open("rb") as f:
        for s in ELFFile(f).iter_sections():
            if s["sh_flags"] & 0x2 and s["sh_size"] and s.name:  # SHF_ALLOC
                out.append(Section(s.name, s["sh_addr"], s["sh_addr"] + s["sh_size"]))
    return sorted(out, key=lambda s: s.start)


@dataclass
class SlabObject:
    """Where an address lies in a slab (the Machine's ``find_object`` plus the index)."""

    cache: str
    object: int  # start of the object
    offset: int  # address - object (negative: in the left red zone)
    size: int  # the cache's object_size
    allocated: bool
    index: int | None = None  # slot in its slab
    objects: int | None = None  # slots per slab
    alloc_owner: list[str] | None = None  # slab_debug=U: last allocation, innermost first
    free_owner: list[str] | None = None  # ... last free


def _none(_: int) -> None:
    return None


@dataclass
class Sources:
    """What :func:`whatis` reads.  ``page(pfn)`` is the decoded ``struct page``
    (None when the pfn has none); ``translate(va)`` the physical address (raising
    a :class:`KmemuError` saying why when unmapped); ``symbols`` has
    ``lookup(addr) -> (Symbol, offset) | None``; ``zone_names`` by zone index;
    ``slab_object(va)`` and ``vmap_areas()`` the slab and vmalloc views;
    ``page_member(offset)`` names a ``struct page`` field (``"lru.next"``) and
    ``member(symbol, offset)`` the element or field of a kernel variable
    (``"zones", 8 -> "[0]._watermark[1]"``)."""

    page: Callable[[int], PageInfo | None]
    translate: Callable[[int], int]
    symbols: Any
    zone_names: Sequence[str] = ()
    sections: Sequence[Section] = ()
    max_pfn: int = 0
    mem_map: int = VMEMMAP_START
    slab_object: Callable[[int], SlabObject | None] = _none
    vmap_areas: Callable[[], list[VmapAreaView]] = list
    symbolize: Callable[[int], str] = hex
    page_member: Callable[[int], str | None] = _none
    member: Callable[[str, int], str | None] = lambda name, offset: None
    #: the loaded module holding an address: (module name, what part of it), or None
    module_at: Callable[[int], tuple[str, str] | None] = lambda addr: None


@dataclass
class Whatis:
    """The answer: ``kind`` is one of ``free``, ``pcp``, ``slab``, ``allocated``,
    ``in use``, ``reserved``, ``no page`` (direct-map pfns), ``kernel image``,
    ``vmalloc``, ``vmemmap``, ``module``, ``unmapped``, ``user``, ``non-canonical``; ``region``
    names the address range; ``lines`` is the text."""

    address: int
    region: str
    kind: str
    lines: list[str] = field(default_factory=list)
    pfn: int | None = None

    def __str__(self) -> str:
        return "\n".join(self.lines)


def whatis(addr: int, src: Sources) -> Whatis:
    """Classify ``addr`` (an ``unsigned long`` kernel virtual address) with ``src``.

    >>> str(whatis(0x10, src))        # doctest: +SKIP
    '0x0000000000000010: user-space address (NULL + 0x10); kmemu maps nothing below the kernel half'
    """
    addr = check_address(addr)
    head = f"{addr:#018x}:"
    if not is_canonical(addr):
        return Whatis(addr, "non-canonical", "non-canonical", [
            f"{head} {NON_CANONICAL}"])
    if addr < USER_END:
        null = f" (NULL + {addr:#x})" if addr < PAGE_SIZE else ""
        return Whatis(addr, "user", "user", [
            f"{head} user-space address{null}; kmemu maps nothing below the kernel half"])
    if PAGE_OFFSET <= addr < DIRECT_MAP_END:
        return _direct_map(addr, src, head)
    if VMALLOC_START <= addr < VMALLOC_END:
        return _vmalloc(addr, src, head)
    if VMEMMAP_START <= addr < VMEMMAP_END:
        return _vmemmap(addr, src, head)
    if MODULES_VADDR <= addr < MODULES_END:
        return _module(addr, src, head)
    if addr >= KERNEL_MAP:
        return _kernel_image(addr, src, head)
    reason = _unmapped_reason(addr, src)
    return Whatis(addr, "unmapped", "unmapped", [
        f"{head} kernel-half address outside every kmemu region (direct map, vmalloc, "
        f"vmemmap, kernel image): {reason or 'mapped, but by nothing kmemu knows'}"])


def format_whatis(w: Whatis) -> str:
    return str(w)


# --- regions ---------------------------------------------------------------------------------


def _unmapped_reason(addr: int, src: Sources) -> str | None:
    """None when ``addr`` translates; else why not (``not mapped: ...``)."""
    try:
        src.translate(addr)
    except KmemuError as e:
        return f"not mapped ({e})"
    return None


def _direct_map(addr: int, src: Sources, head: str) -> Whatis:
    pa = addr - PAGE_OFFSET
    pfn = pa >> PAGE_SHIFT
    page = src.page(pfn)
    w = Whatis(addr, "direct map", "no page", pfn=pfn)
    if page is None:
        why = "beyond the last pfn" if src.max_pfn and pfn >= src.max_pfn else \
            "in a hole of the physical map (no struct page)"
        reason = _unmapped_reason(addr, src)
        w.lines = [f"{head} direct map, pa {pa:#x}, pfn {pfn:#x}: not RAM, {why}"
                   + (f"; {reason}" if reason else "")]
        return w
    w.lines = [f"{head} direct map, pfn {pfn:#x} in zone {_zone(page, src)}"]
    w.kind, lines = _describe_page(pfn, page, src, addr)
    w.lines += lines
    reason = _unmapped_reason(addr, src)
    if reason:
        w.lines.append(f"this address is {reason}")
    return w


def _vmalloc(addr: int, src: Sources, head: str) -> Whatis:
    from emu.kernel.vmalloc import describe_address

    areas = src.vmap_areas()
    w = Whatis(addr, "vmalloc", "vmalloc",
               [f"{head} vmalloc, {describe_address(addr, areas, src.symbolize)}"])
    area = next((a for a in areas if a.start <= addr < a.end), None)
    if area is not None and area.state == "busy":
        kinds = [k for k, bit in (("vmalloc", VM_ALLOC), ("vmap", VM_MAP)) if area.flags & bit]
        w.lines.append(f"area {area.start:#x}-{area.start + area.size:#x}, {area.size} bytes "
                       f"with the guard page, {area.nr_pages} pages"
                       + (f", {' '.join(kinds)}" if kinds else ""))
    try:
        pa = src.translate(addr)
    except KmemuError as e:
        w.lines.append(f"not mapped ({e})")
        return w
    pfn = pa >> PAGE_SHIFT
    w.pfn = pfn
    page = src.page(pfn)
    w.lines.append(f"backed by pfn {pfn:#x} (pa {pa:#x})"
                   + (f" in zone {_zone(page, src)}" if page else ""))
    if page is not None:
        w.lines += _describe_page(pfn, page, src, PAGE_OFFSET + pa)[1]
    return w


def _module(addr: int, src: Sources, head: str) -> Whatis:
    """The module area: which module, which of its sections, which symbol."""
    hit = src.module_at(addr)
    w = Whatis(addr, "module", "module")
    if hit is None:
        area = next((a for a in src.vmap_areas() if a.start <= addr < a.end), None)
        gone = " (a freed module's area, not purged yet)" if area and area.state == "lazy" else ""
        reason = _unmapped_reason(addr, src)
        w.kind = "unmapped" if reason else "module"
        w.lines = [f"{head} module area, in no loaded module{gone}"
                   + (f": {reason}" if reason else "")]
        return w
    name, part = hit
    sym = src.symbolize(addr) if "+0x" in part else "0x"  # in a section: name the symbol
    w.lines = [f"{head} module {name}, {part}"
               + (f", {sym}" if not sym.startswith("0x") else "")]
    try:
        pa = src.translate(addr)
    except KmemuError as e:
        w.lines.append(f"not mapped ({e})")
        return w
    w.pfn = pa >> PAGE_SHIFT
    page = src.page(w.pfn)
    w.lines.append(f"backed by pfn {w.pfn:#x} (pa {pa:#x})"
                   + (f" in zone {_zone(page, src)}" if page else ""))
    return w


def _vmemmap(addr: int, src: Sources, head: str) -> Whatis:
    rel = addr - src.mem_map
    pfn, off = divmod(rel, STRUCT_PAGE_SIZE)
    w = Whatis(addr, "vmemmap", "vmemmap", pfn=pfn)
    member = src.page_member(off)
    what = f"+{off:#x}" + (f" ({member})" if member else "")
    page = src.page(pfn) if rel >= 0 else None
    if page is None:
        w.lines = [f"{head} vmemmap, would be the struct page of pfn {pfn:#x} {what}, but "
                   f"that pfn has none (no RAM in its 2 MiB section)"]
        reason = _unmapped_reason(addr, src)
        if reason:
            w.lines[0] += f"; {reason}"
        return w
    w.lines = [f"{head} vmemmap, struct page of pfn {pfn:#x} {what}, "
               f"describing {PAGE_OFFSET + (pfn << PAGE_SHIFT):#x} in zone {_zone(page, src)}"]
    w.lines += ["that page: " + line for line in
                _describe_page(pfn, page, src, PAGE_OFFSET + (pfn << PAGE_SHIFT))[1]]
    return w


def _kernel_image(addr: int, src: Sources, head: str) -> Whatis:
    sec = next((s for s in src.sections if s.start <= addr < s.end), None)
    hit = src.symbols.lookup(addr) if src.symbols is not None else None
    pa = addr - KERNEL_MAP
    w = Whatis(addr, "kernel image", "kernel image", pfn=pa >> PAGE_SHIFT)
    if sec is None and hit is None:
        reason = _unmapped_reason(addr, src)
        w.kind = "unmapped" if reason else "kernel image"
        w.lines = [f"{head} kernel mapping (pa {pa:#x}), outside the image's sections"
                   + (f": {reason}" if reason else "")]
        return w
    what = f"{hit[0].name}+{hit[1]:#x}/{hit[0].size:#x}" if hit else "no symbol"
    kind = f" ({hit[0].kind})" if hit and hit[0].kind != "label" else ""
    if hit and hit[0].kind == "object":
        member = src.member(hit[0].name, hit[1])
        if member:
            sep = "" if member.startswith("[") else "."
            kind = f" (object: {hit[0].name}{sep}{member})"
    where = f" in {sec.name}" if sec else ""
    w.lines = [f"{head} kernel image, {what}{kind}{where}, pa {pa:#x}"]
    return w


# --- struct page ---------------------------------------------------------------------------


def _zone(page: PageInfo | None, src: Sources) -> str:
    if page is None:
        return "?"
    z = page.zone
    return src.zone_names[z] if 0 <= z < len(src.zone_names) else f"#{z}"


def _free_block(pfn: int, src: Sources) -> tuple[int, int] | None:
    """(head pfn, order) of the free buddy block holding ``pfn``, if any."""
    for order in range(MAX_PAGE_ORDER + 1):
        h = pfn & ~((1 << order) - 1)
        p = src.page(h)
        if p is not None and p.has("buddy") and p.private == order:
            return h, order
    return None


def _allocation(pfn: int, page: PageInfo, src: Sources) -> tuple[int, int] | None:
    """(head pfn, order) of the ``alloc_pages`` block holding ``pfn``, if recorded."""
    if page.has("tail") and page.word1 & 1:
        head = ((page.word1 - 1) - src.mem_map) // STRUCT_PAGE_SIZE
        hp = src.page(head)
        if hp is not None and hp.alloc_order:
            return head, hp.alloc_order - 1
    for order in range(MAX_PAGE_ORDER + 1):
        h = pfn & ~((1 << order) - 1)
        p = page if h == pfn else src.page(h)
        if p is not None and p.alloc_order == order + 1:
            return h, order
    return None


def _describe_page(pfn: int, page: PageInfo, src: Sources, va: int) -> tuple[str, list[str]]:
    """(kind, lines) for the page ``pfn`` (``va``: the address asked about, direct map)."""
    zone = _zone(page, src)
    if page.has("reserved"):
        return "reserved", ["reserved: not managed by the page allocator (kernel image, "
                            "memblock allocations such as page tables and the vmemmap, "
                            "or firmware)"]
    if page.has("pcp"):
        return "pcp", [f"free: order-0 page on zone {zone}'s per-cpu list (pcp)"]
    block = _free_block(pfn, src)
    if block is not None:
        h, order = block
        return "free", [f"free: page {pfn - h} of an order-{order} free block at pfn {h:#x} "
                        f"({1 << order} pages, pfn {h:#x}-{h + (1 << order) - 1:#x}) on zone "
                        f"{zone}'s free_area[{order}]"]
    obj = src.slab_object(va)
    if obj is not None:
        return "slab", _slab_lines(obj)
    alloc = _allocation(pfn, page, src)
    if alloc is not None:
        h, order = alloc
        part = f"page {pfn - h} of an order-{order} block" if order else "an order-0 page"
        hp = page if h == pfn else src.page(h)
        compound = " (compound)" if page.has("head") or page.has("tail") else ""
        ref = f", refcount {hp.refcount}" if hp is not None else ""
        return "allocated", [f"allocated: {part} at pfn {h:#x}{compound} from the page "
                             f"allocator (alloc_pages){ref}"]
    return "in use", [f"in use: not free, not slab, and no allocation record "
                      f"(flags {page.flags:#x}, refcount {page.refcount})"]


def _slab_lines(o: SlabObject) -> list[str]:
    slot = f" {o.index} of {o.objects}" if o.index is not None and o.objects else ""
    state = "allocated" if o.allocated else "free"
    if o.offset < 0:
        inside = f"{-o.offset} bytes before it (left red zone)"
    elif o.offset >= o.size:
        inside = (f"{o.offset - o.size} bytes past its {o.size} bytes (red zone, free "
                  "pointer, tracking or padding)")
    else:
        inside = f"+{o.offset:#x} of {o.size} bytes"
    lines = [f"slab object: {o.cache} object{slot} at {o.object:#x}, {inside}, {state}"]
    if o.alloc_owner:
        lines.append("  last allocated by: " + " <- ".join(_dedup(o.alloc_owner)))
    if o.free_owner:
        lines.append("  last freed by: " + " <- ".join(_dedup(o.free_owner)))
    return lines


def _dedup(frames: list[str]) -> list[str]:
    """A struct track's ``addr`` is also the first entry of its ``stack``: show it once."""
    return [f for i, f in enumerate(frames) if i == 0 or f != frames[i - 1]]
