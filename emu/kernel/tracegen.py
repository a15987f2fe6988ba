"""Synthetic kmem traces in Linux's text formats, for tests, benchmarks and demos.

Layer 4 (``emu.kernel``).  :func:`generate` writes a deterministic workload (a
seed) as the lines one Linux version would print, in one of three layouts:

- ``ftrace``: ``/sys/kernel/tracing/trace`` with its ``# tracer: nop`` header
  and the irq-info columns (4 flag characters before 5.18, 5 after);
- ``ftrace-noirq``: the same with ``options/irq-info`` off;
- ``trace-cmd``: ``trace-cmd report`` (``version = 6``, ``cpus=``, padded names).

Versions: ``4.19`` (call_site as a hex address, ``pfn=`` decimal, ``_node``
events, ``kmem_cache_free`` without ``name=``), ``5.10`` (``call_site=%pS``,
``pfn=0x``, still ``_node`` events and no ``name=``), ``6.1`` (``node=`` and
``accounted=`` on every allocation, ``name=`` on ``kmem_cache_free``, no
``_node`` events).  The workload is what a busy kernel does: kmalloc from a
dozen call sites with Linux-like size spreads, object caches (dentry, inode,
filp, skbuff, vm_area_struct, ...), order-0 pages with some order 1-3, mostly
short lifetimes with a long-lived tail, pointers reused LIFO as slab
allocators reuse them, and a few events of other systems.

>>> lines = list(generate(100, seed=1, version="6.1", layout="ftrace"))   # doctest: +SKIP
``python -m emu.kernel.tracegen OPS FILE[.gz] [--version V] [--layout L]`` writes one.
"""

from __future__ import annotations

import gzip
import random
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

VERSIONS = ("4.19", "5.10", "6.1")
LAYOUTS = ("ftrace", "ftrace-noirq", "trace-cmd")

# (call site, sizes to pick from, GFP text): kmalloc users of a running system
_KMALLOC_SITES = [
    ("__alloc_skb+0x9c/0x1c0", (320, 512, 704, 1088, 1728), "GFP_KERNEL|__GFP_NOWARN"),
    ("kmalloc_reserve+0x2c/0x90", (640, 1536, 2304), "GFP_ATOMIC|__GFP_NOWARN"),
    ("load_elf_phdrs+0x4c/0xb0", (392, 448, 504), "GFP_KERNEL"),
    ("seq_buf_alloc+0x17/0x40", (4096, 8192), "GFP_KERNEL_ACCOUNT"),
    ("kstrdup+0x31/0x60", (6, 9, 13, 17, 22, 31), "GFP_KERNEL"),
    ("alloc_pipe_info+0x8a/0x1a0", (640,), "GFP_KERNEL_ACCOUNT"),
    ("single_open+0x2b/0x90", (32,), "GFP_KERNEL_ACCOUNT"),
    ("security_file_alloc+0x1e/0x80", (8, 16), "GFP_KERNEL|__GFP_ZERO"),
    ("bpf_map_area_alloc+0x40/0x90", (16384, 32768), "GFP_KERNEL|__GFP_NOWARN"),
    ("ext4_htree_store_dirent+0x35/0x110", (56, 72, 96, 120), "GFP_KERNEL"),
    ("tty_buffer_alloc+0x5d/0xd0", (1280, 2304), "GFP_ATOMIC|__GFP_NOWARN"),
    ("__kmalloc_node+0x1b/0x40", (96, 192, 24), "GFP_KERNEL"),
]
# (cache name, object size, size with metadata, call site, GFP text)
_CACHES = [
    ("dentry", 192, 192, "__d_alloc+0x2a/0x1f0", "GFP_KERNEL"),
    ("inode_cache", 600, 608, "alloc_inode+0x1b/0x80", "GFP_KERNEL"),
    ("filp", 232, 256, "alloc_empty_file+0x3d/0xc0", "GFP_KERNEL|__GFP_ZERO"),
    ("skbuff_head_cache", 232, 256, "__alloc_skb+0x46/0x1c0", "GFP_ATOMIC|__GFP_NOWARN"),
    ("vm_area_struct", 200, 200, "vm_area_alloc+0x1c/0x80", "GFP_KERNEL"),
    ("anon_vma_chain", 64, 64, "anon_vma_clone+0x5c/0x180", "GFP_KERNEL"),
    ("buffer_head", 104, 104, "alloc_buffer_head+0x1c/0x70", "GFP_NOFS|__GFP_NOFAIL"),
    ("radix_tree_node", 576, 576, "radix_tree_node_alloc+0x41/0xd0", "GFP_NOWAIT|__GFP_NOWARN"),
]
_PAGE_GFP = ("GFP_HIGHUSER_MOVABLE", "GFP_KERNEL", "GFP_KERNEL|__GFP_ZERO",
             "GFP_NOWAIT|__GFP_COMP|__GFP_NOWARN")
_OTHER = ("sched_switch: prev_comm=bash prev_pid=812 prev_prio=120 prev_state=S ==> "
          "next_comm=swapper/0 next_pid=0 next_prio=120",
          "rcu_utilization: Start context switch")
_TASKS = ("bash-812", "kworker/0:1-23", "systemd-journal-301", "<idle>-0", "sshd-977")


def _kmalloc_size(n: int) -> int:
    """Linux's kmalloc-N class of n bytes (bytes_alloc), or the page block above 8 KiB."""
    for c in (8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192):
        if n <= c:
            return c
    return 4096 << max(0, (n - 1).bit_length() - 12)


class _Writer:
    """One version's TP_printk formats in one layout."""

    def __init__(self, version: str, layout: str, rng: random.Random) -> None:
        if version not in VERSIONS:
            raise ValueError(f"version must be one of {', '.join(VERSIONS)}")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}")
        self.v, self.layout, self.rng = version, layout, rng
        self.ts = 1000.0
        self.new = version == "6.1"
        self.old = version == "4.19"

    def header(self) -> list[str]:
        if self.layout == "trace-cmd":
            return ["version = 6", "cpus=2"]
        lines = ["# tracer: nop", "#", "# entries-in-buffer/entries-written: 0/0   #P:2", "#"]
        if self.layout == "ftrace":
            lines += ["#                                _-----=> irqs-off/BH-disabled",
                      "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION",
                      "#              | |         |   |||||     |         |"]
        else:
            lines += ["#           TASK-PID     CPU#     TIMESTAMP  FUNCTION",
                      "#              | |         |         |         |"]
        return lines

    def line(self, event: str, fields: str) -> str:
        self.ts += self.rng.random() * 0.0002
        task = self.rng.choice(_TASKS)
        cpu = self.rng.randrange(2)
        if self.layout == "trace-cmd":
            return f"{task:>16} [{cpu:03d}] {self.ts:12.6f}: {event + ':':<22}{fields}"
        flags = "d..1." if self.new else "d..1"
        irq = f" {flags}" if self.layout == "ftrace" else ""
        return f"{task:>16}    [{cpu:03d}]{irq} {self.ts:12.6f}: {event}: {fields}"

    def site(self, s: str) -> str:
        if not self.old:
            return s
        return f"ffffffff81{zlib.crc32(s.encode()) % 0xFFFFFF:06x}"  # 4.x: %lx of the address

    def ptr(self, p: int) -> str:
        return f"{p:016x}"  # %p, hashed since 4.15: 16 hex digits, no 0x

    def alloc(self, event: str, site: str, ptr: int, req: int, alloc: int, gfp: str) -> str:
        f = (f"call_site={self.site(site)} ptr={self.ptr(ptr)} bytes_req={req} "
             f"bytes_alloc={alloc} gfp_flags={gfp}")
        if self.new:
            f += f" node=-1 accounted={'true' if 'ACCOUNT' in gfp else 'false'}"
            return self.line(event, f)
        if self.rng.random() < 0.2:  # older kernels: some callers use the _node variant
            return self.line(event + "_node", f + " node=-1")
        return self.line(event, f)

    def free(self, event: str, site: str, ptr: int, name: str | None) -> str:
        f = f"call_site={self.site(site)} ptr={self.ptr(ptr)}"
        if name and self.new:
            f += f" name={name}"
        return self.line(event, f)

    def pfn(self, pfn: int) -> str:
        return f"pfn={pfn}" if self.old else f"pfn={pfn:#x}"

    def page_alloc(self, pfn: int, order: int, gfp: str) -> str:
        page = 0xFFFFEA0000000000 + pfn * 64
        mt = 1 if "MOVABLE" in gfp else 0
        return self.line("mm_page_alloc", f"page={self.ptr(page)} {self.pfn(pfn)} order={order} "
                         f"migratetype={mt} gfp_flags={gfp}")

    def page_free(self, pfn: int, order: int, batched: bool) -> str:
        page = 0xFFFFEA0000000000 + pfn * 64
        if batched:
            extra = " cold=0" if self.old else ""
            return self.line("mm_page_free_batched", f"page={self.ptr(page)} {self.pfn(pfn)} "
                             f"order=0{extra}")
        return self.line("mm_page_free", f"page={self.ptr(page)} {self.pfn(pfn)} order={order}")


def generate(ops: int, seed: int = 1, version: str = "6.1", layout: str = "ftrace",
             live_target: int = 3000, mix: tuple[float, float] = (0.55, 0.9)
             ) -> Iterator[str]:
    """``ops`` kmem event lines (plus a header and about 1% other events).  An
    allocation is a kmalloc below ``mix[0]``, a kmem_cache_alloc below ``mix[1]``,
    else pages (``mix=(1, 1)``: kmalloc/kfree traffic only)."""
    rng = random.Random(seed)  # the workload: the same in every version and layout
    w = _Writer(version, layout, random.Random(seed + 1))  # tasks, timestamps, _node choices
    yield from w.header()
    live: list[tuple] = []  # (kind, ptr/pfn, site, extra)
    free_ptrs: dict[int, list[int]] = {}  # bytes_alloc -> pointers to reuse (LIFO)
    next_ptr = 0xFFFF888004000000
    free_pfns: list[int] = []
    next_pfn = 0x10000
    for _ in range(ops):
        if rng.random() < 0.01:
            yield w.line(*rng.choice(_OTHER).split(": ", 1))
        # allocate while below the live target, free at random otherwise (a long tail stays)
        grow = len(live) < live_target * (0.6 + 0.4 * rng.random())
        if grow or not live:
            r = rng.random()
            if r < mix[0]:
                site, sizes, gfp = rng.choice(_KMALLOC_SITES)
                req = rng.choice(sizes)
                alloc = _kmalloc_size(req)
                pool = free_ptrs.setdefault(alloc, [])
                ptr = pool.pop() if pool else next_ptr
                if ptr == next_ptr:
                    next_ptr += max(alloc, 4096 if alloc >= 4096 else alloc)
                live.append(("k", ptr, site, alloc))
                yield w.alloc("kmalloc", site, ptr, req, alloc, gfp)
            elif r < mix[1]:
                name, osize, size, site, gfp = rng.choice(_CACHES)
                pool = free_ptrs.setdefault(-size, [])
                ptr = pool.pop() if pool else next_ptr
                if ptr == next_ptr:
                    next_ptr += size
                live.append(("c", ptr, site, (name, size)))
                yield w.alloc("kmem_cache_alloc", site, ptr, osize, size, gfp)
            else:
                order = 0 if rng.random() < 0.85 else rng.choice((1, 2, 3))
                pfn = free_pfns.pop() if order == 0 and free_pfns else next_pfn
                if pfn == next_pfn:
                    next_pfn += 1 << order
                live.append(("p", pfn, "", order))
                yield w.page_alloc(pfn, order, rng.choice(_PAGE_GFP))
        else:
            # mostly recent objects die young; an old one now and then
            i = len(live) - 1 - int(rng.expovariate(1 / 40)) if rng.random() < 0.8 \
                else rng.randrange(len(live))
            i = max(0, min(i, len(live) - 1))
            kind, key, site, extra = live.pop(i)
            if kind == "k":
                free_ptrs.setdefault(extra, []).append(key)
                yield w.free("kfree", site, key, None)
            elif kind == "c":
                name, size = extra
                free_ptrs.setdefault(-size, []).append(key)
                yield w.free("kmem_cache_free", site, key, name)
            else:
                if extra == 0:
                    free_pfns.append(key)
                yield w.page_free(key, extra, batched=extra == 0 and rng.random() < 0.3)


def write(path: str | Path, ops: int, seed: int = 1, version: str = "6.1",
          layout: str = "ftrace", **kw: object) -> Path:
    """Write :func:`generate`'s lines to ``path`` (gzip when it ends in .gz)."""
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "wt", encoding="utf-8") as f:  # type: ignore[operator]
        for line in generate(ops, seed, version, layout, **kw):  # type: ignore[arg-type]
            f.write(line + "\n")
    return p


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m emu.kernel.tracegen",
                                 description="write a synthetic Linux kmem trace")
    ap.add_argument("ops", type=int)
    ap.add_argument("file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--version", choices=VERSIONS, default="6.1")
    ap.add_argument("--layout", choices=LAYOUTS, default="ftrace")
    ap.add_argument("--kmalloc-only", action="store_true", help="kmalloc/kfree traffic only")
    a = ap.parse_args(argv)
    write(a.file, a.ops, a.seed, a.version, a.layout,
          **({"mix": (1.0, 1.0)} if a.kmalloc_only else {}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
