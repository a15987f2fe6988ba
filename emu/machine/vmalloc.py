"""Layer 5: vmalloc from Python (mixed into :class:`emu.Machine`).

>>> v = m.vmalloc(20000)         # doctest: +SKIP
>>> print(m.vmallocinfo())       # doctest: +SKIP
0xffffc90000000000-0xffffc90000006000   24576 kmemu_call_return+0x0/0x15 pages=5 vmalloc N0=5
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emu.core.args import check_address
from emu.core.errors import KmemuError
from emu.kernel import vmalloc as vmv
from emu.kernel.gfp import parse as parse_gfp

if TYPE_CHECKING:
    from emu.machine.core import Machine


class VmallocMixin:
    def vmalloc(self: Machine, size: int, gfp: str | int = "GFP_KERNEL", *,
                context: str = "process") -> int:
        """``__vmalloc(size, gfp)``: the area's address, 0 on failure."""
        return self.call("__vmalloc", size, parse_gfp(gfp), context=context)

    def vzalloc(self: Machine, size: int, *, context: str = "process") -> int:
        return self.call("vzalloc", size, context=context)

    def vfree(self: Machine, addr: int, *, context: str = "process") -> None:
        self.call("vfree", addr, context=context)

    def purge_vmap(self: Machine, *, context: str = "process") -> None:
        """Force the lazy purge (``vm_unmap_aliases``)."""
        self.call("vm_unmap_aliases", context=context)

    def vrealloc(self: Machine, addr: int, size: int, gfp: str | int = "GFP_KERNEL", *,
                 context: str = "process") -> int:
        return self.call("vrealloc", addr, size, parse_gfp(gfp), context=context)

    def kvmalloc(self: Machine, size: int, gfp: str | int = "GFP_KERNEL", *,
                 context: str = "process") -> int:
        return self.call("kvmalloc", size, parse_gfp(gfp), context=context)

    def kvfree(self: Machine, addr: int, *, context: str = "process") -> None:
        self.call("kvfree", addr, context=context)

    def vmalloc_aligned(self: Machine, size: int, align: int, start: int = vmv.VMALLOC_START,
                        end: int = vmv.VMALLOC_END, gfp: str | int = "GFP_KERNEL") -> int:
        """``__vmalloc_node_range``: an area aligned to ``align`` (up to 4 MiB) in [start, end)."""
        return self.call("vmalloc_range", size, align, start, end, parse_gfp(gfp), 0)

    def validate_vmalloc(self: Machine) -> list[str]:
        """Page tables against the vmalloc areas; [] when consistent."""
        def translate(va: int) -> int | None:
            try:
                return self.translate(va)
            except KmemuError:
                return None

        with self._reads_held():
            return vmv.validate_vmalloc(self.vmap_areas(), translate, self.read_u64,
                                        self.read_u64(self.symbol("mem_map")))

    def vmap_areas(self: Machine) -> list[vmv.VmapAreaView]:
        with self._reads_held():
            return vmv.read_vmap_areas(self.program, self.read_virt)

    def vmallocinfo(self: Machine) -> str:
        return vmv.format_vmallocinfo(self.vmap_areas(), self.symbolize)

    def describe_vmalloc_address(self: Machine, addr: int) -> str | None:
        check_address(addr)
        return vmv.describe_address(addr, self.vmap_areas(), self.symbolize)
