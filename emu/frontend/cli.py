"""Layer 6: the ``kmemu`` command.  Thin: parse, call the library, print.

    kmemu boot [--mem SIZE] [--e820 FILE] [--cmdline STR] [--module FILE.c]... [--quiet] [--json]
    kmemu build [--force]
    kmemu qemu [--mem SIZE] [--cmdline STR] [--timeout S]
    kmemu bench [--json] [--save FILE.json] [--compare REF.json [--noise F]] [--repeat N]
    kmemu e820 [--mem SIZE | --e820 FILE]
    kmemu cflags [--name NAME]
    kmemu compile-commands FILE.c... [-o OUT] [--name NAME] [--cc CC]
    kmemu gdb [--mem SIZE] [--port N] [--listen HOST] [--once]
    kmemu debug [--mem SIZE] [--e820 FILE] [--cmdline STR] [--script FILE]
    kmemu kunit [FILE.c...] [--module FILE.c] [--raw] [--json] [--filter GLOB]
    kmemu info buddy|zones|...|vmalloc|modules [--mem SIZE] [--module FILE.c]... [--json]
    kmemu check failures [--module FILE.c]... [--root SYM]... [-j N] [--json] FUNC [ARG...]
    kmemu check irqs [--module FILE.c]... --handler VECTOR FUNC [ARG...]
    kmemu trace [--module FILE.c]... [--depth N] [--filter GLOB] [--notrace GLOB] [--wall]
                [--folded] [--svg FILE] FUNC [ARG...]
    kmemu replay TRACE [--slab slub|slab|slob] [--mem SIZE] [--json] [--plot DIR]
    kmemu compare TRACE --slab slub,slab,slob [--mem SIZE] [--json] [--plot DIR]

Exit status: 0 on success, 1 when the guest failed (oops, panic, failed
self-tests), 2 for bad usage or a missing tool.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from emu.build import BuildError, build
from emu.core.errors import BadArgument, KmemuError
from emu.firmware.e820 import E820Error, default_map, load_map
from emu.frontend import qemu as qemu_mod
from emu.frontend import trace_cmd
from emu.frontend.events import add_boot_options, print_boot_trace
from emu.kernel.gfp import GfpError
from emu.kernel.mm import format_memblock, format_watermarks
from emu.kernel.slab_select import with_slab_choice
from emu.machine.core import GuestOops, Machine


@contextmanager
def ctrl_c_stops(target: Callable[[], Machine | None]) -> Iterator[None]:
    """Make Ctrl-C stop the emulator (Unicorn holds the GIL-free C loop).

    SIGINT is blocked in the main thread and waited for in a helper thread,
    which calls ``Machine.interrupt()``; the run then raises ``Interrupted``.

    A Ctrl-C is for the rest of the command, not for one run: after it the waiter
    interrupts the machine again every 10 ms, so a run that starts after it (the
    next call of the command, or one that was just starting as the signal came, or
    boot before the machine was registered) stops too instead of running on.

    At the end the waiter is woken by a SIGINT sent to that thread alone, which it
    takes as "done"; it used to notice only at its next 0.1 s timeout, which every
    command paid at exit.  ``lock`` orders the two: the waiter leaves only under it,
    after it has seen ``done``, so the wake-up is never sent to a thread that has
    gone.  A real Ctrl-C in that last instant is still pending when the mask is put
    back, and raises KeyboardInterrupt as it would have a moment later.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "pthread_sigmask"
    ):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    done = threading.Event()
    lock = threading.Lock()

    def waiter() -> None:
        hit = False
        while True:
            got = signal.sigtimedwait({signal.SIGINT}, 0.01 if hit else 5.0)
            with lock:
                if done.is_set():
                    return
                hit = hit or got is not None
                m = target() if hit else None
                if m is not None:
                    m.interrupt()

    t = threading.Thread(target=waiter, name="kmemu-sigint", daemon=True)
    t.start()
    try:
        yield
    finally:
        with lock:
            done.set()
            if t.is_alive() and t.ident is not None:
                signal.pthread_kill(t.ident, signal.SIGINT)
        t.join()
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _machine_args(a: argparse.Namespace, modules: bool = True) -> dict[str, object]:
    kw: dict[str, object] = {"cmdline": a.cmdline}
    if getattr(a, "kasan", False):
        kw["kasan"] = True
    if getattr(a, "slab", None):
        kw["slab"] = a.slab
    if getattr(a, "kmemleak", False):
        kw["kmemleak"] = True
    if getattr(a, "e820", None):  # argparse keeps --mem's default: the map says the size
        kw["e820"] = a.e820
    else:
        kw["mem"] = a.mem
    if modules and getattr(a, "modules", None):
        kw["modules"] = a.modules
    return kw


def cmd_boot(a: argparse.Namespace) -> int:
    echo = None if (a.quiet or a.json) else (lambda line: print(line, end="", flush=True))
    holder: list[Machine] = []
    with ctrl_c_stops(lambda: holder[0] if holder else None):
        m = Machine(**_machine_args(a, modules=False), echo=echo)  # type: ignore[arg-type]
        holder.append(m)
        try:
            m.boot()
            for path in a.modules or ():
                m.load_module(path)
        except KmemuError as e:
            if a.json:
                print(json.dumps({"ok": False, "error": str(e), "console": m.console,
                                  "events": [ev.to_dict() for ev in m.events]}, indent=1))
            else:
                if a.quiet and m.state != "ready":  # the boot itself failed: its log is the story
                    print(m.console, end="")
                if m.state == "ready":  # booted; a module failed (whole message: diagnostics)
                    print(f"kmemu: module load failed: {e}", file=sys.stderr)
                else:  # the log (with the oops) is already on stdout: one line here
                    print(f"kmemu: boot failed: {str(e).splitlines()[0]}", file=sys.stderr)
            return 1
    if a.json:
        print(json.dumps({
            "ok": True, "mem": m.mem, "cmdline": m.cmdline,
            "e820": [[e.base, e.size, e.type] for e in m.e820],
            "boot_ms": round(m.boot_seconds * 1000, 2), "console": m.console,
            "events": [ev.to_dict() for ev in m.events],
            **({"trace": m.tracing.read()} if a.print_trace else {}),
        }, indent=1))
    elif not a.quiet:
        print(f"kmemu: kernel ready in {m.boot_seconds * 1000:.1f} ms "
              f"({m.mem >> 20} MiB, {len(m.e820)} e820 entries)")
    if a.print_trace and not a.json:
        print_boot_trace(m)
    return 0


def cmd_build(a: argparse.Namespace) -> int:
    art = build(force=a.force)
    print(f"image:  {art.image}\nkernel: {art.elf}\n"
          f"kernel image {art.kernel_bytes} bytes, entry {art.entry:#x}, cache key {art.key}")
    return 0


def cmd_qemu(a: argparse.Namespace) -> int:
    cmdline = with_slab_choice(a.cmdline, a.slab, None, False)
    res = qemu_mod.run_qemu(mem=a.mem, cmdline=cmdline, timeout=a.timeout,
                            echo=None if a.quiet else (lambda s: print(s, end="", flush=True)),
                            modules=a.modules or ())
    if a.quiet:
        print(res.output, end="")
    print(f"kmemu: {res.summary()}", file=sys.stderr)
    return 0 if res.ok else 1


def cmd_bench(a: argparse.Namespace) -> int:
    from emu.frontend import bench

    ref = bench.load_rows(a.compare) if a.compare else None  # a bad file fails before the run
    if not 0 <= a.noise < 100:
        raise BadArgument(f"--noise must be a fraction such as 0.25, got {a.noise}")
    rows = bench.run_bench(repeat=a.repeat)
    if a.save:
        bench.save_rows(rows, a.save)
    if a.json:
        print(json.dumps([r.to_dict() for r in rows], indent=1))
    elif ref is None:
        bench.print_table(rows)
    if ref is not None:
        cmp = bench.compare(rows, ref, a.noise)
        return 1 if bench.print_comparison(cmp, a.noise, a.compare) else 0
    return 0


def cmd_kunit(a: argparse.Namespace) -> int:
    """Run KUnit suites: FILE.c... built into one module, or the built-in suites."""
    from emu.check import kunit

    holder: list[Machine] = []
    with ctrl_c_stops(lambda: holder[0] if holder else None):
        m = Machine(**_machine_args(a))  # type: ignore[arg-type]
        holder.append(m)
        m.boot()
        if (a.module or a.files) and not hasattr(m, "load_module"):
            raise kunit.KunitError("KUnit files are loaded as modules; this kmemu has no "
                                   "module loader (Machine.load_module)")
        for extra in a.module or ():
            m.load_module(extra)
        if a.files:
            mod = m.load_module(*a.files)
            suites = kunit.module_suites(m, mod)
            if not suites:
                raise kunit.KunitError(f"{', '.join(a.files)}: no KUnit suites "
                                       "(kunit_test_suite(...) registers one)")
        else:
            suites = kunit.builtin_suites(m)
        run = kunit.run_suites(m, filter=a.filter, suites=suites,
                               budget_seconds=a.timeout)
    if a.json:
        print(run.to_json())
    elif a.raw:
        print(run.ktap, end="")
    else:
        print(kunit.summary(run), end="")
    if not run.cases:
        print("kmemu: no KUnit test cases matched", file=sys.stderr)
        return 1
    return 1 if run.failed or (a.fail_on_leak and run.leaks) else 0
def _int_args(values: Sequence[str]) -> tuple[int, ...]:
    """A call's arguments on the command line: integers (decimal or 0x hex) or GFP flag
    expressions (``GFP_KERNEL|__GFP_ZERO``), one reading with ``kmemu trace``."""
    return trace_cmd.call_args(list(values))


def cmd_check(a: argparse.Namespace) -> int:
    """Sweeps: every allocation failing in turn, or an interrupt at every instruction."""
    from emu.check import failures, irqs

    args = _int_args(a.args)
    kw = _machine_args(a, modules=False)
    if a.modules:
        kw["modules"] = [str(Path(p).resolve()) for p in a.modules]
    if a.what == "failures":
        if a.jobs < 1:
            raise BadArgument(f"-j takes a positive number of processes, got {a.jobs}")
        with ctrl_c_stops(lambda: None):
            runs = failures.sweep_failures_parallel(kw, a.function, *args, jobs=a.jobs,
                                                    roots=a.roots or ())
        bad = runs.failures
        if a.json:
            print(json.dumps({"function": runs.function,
                              "allocations": len(runs.baseline.allocations),
                              "runs": [{"k": r.k, "plan": list(r.plan), "site": r.site,
                                        "outcome": r.outcome, "detail": r.detail,
                                        "chain": list(r.chain),
                                        "leaks": [lk.describe() for lk in r.leaks]}
                                       for r in runs]}, indent=1))
        else:
            print(runs)
        return 1 if bad or runs.baseline.outcome != "ok" else 0
    if a.handler is None:
        raise BadArgument("kmemu check irqs needs --handler VECTOR (the interrupt to raise)")
    holder: list[Machine] = []
    with ctrl_c_stops(lambda: holder[0] if holder else None):
        m = Machine.booted(**kw)  # type: ignore[arg-type]
        holder.append(m)
        swept = irqs.sweep_irqs(m, a.function, *args, handler=int(a.handler, 0))
    print(swept)
    return 1 if swept.failures else 0


def cmd_cflags(a: argparse.Namespace) -> int:
    from emu.build.modflags import module_cflags

    print(shlex.join(module_cflags(name=a.name, kasan=a.kasan)))
    return 0


def cmd_compile_commands(a: argparse.Namespace) -> int:
    from emu.build.modflags import write_compile_commands

    out = Path(a.output)
    entries = write_compile_commands(a.files, out, cc=a.cc, name=a.name)
    print(f"kmemu: wrote {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} to "
          f"{out.resolve()}")
    return 0


INFO = ("buddy", "zones", "pagetypeinfo", "watermarks", "memblock", "slab", "slabtop",
        "pagetable", "vmalloc", "modules")


def _pagetable_text(m: Machine, where: str | None) -> str:
    """ADDR: the walk for one address; START-END: ptdump of a range; nothing: everything."""
    from emu.debug.breakpoints import parse_address

    if not where:
        return m.ptdump()
    parts = where.split("-", 1)
    nums = [parse_address(x) for x in parts]  # over 64 bits: BadArgument, not cut
    if any(n is None for n in nums) or not all(parts):
        raise BadArgument(f"pagetable takes ADDR or START-END (hex or decimal), got {where!r}")
    if len(nums) == 2:
        return m.ptdump(nums[0], nums[1])  # type: ignore[arg-type]
    return m.pt(nums[0])  # type: ignore[arg-type]


def cmd_info(a: argparse.Namespace) -> int:
    """Boot, then print one allocator view (computed from guest memory)."""
    if a.where and a.what != "pagetable":
        raise BadArgument(f"info {a.what} takes no address argument")
    m = Machine.booted(**_machine_args(a))  # type: ignore[arg-type]
    if a.what == "pagetable":
        print(_pagetable_text(m, a.where), end="")
        return 0
    if a.json:
        data: object = {
            "buddy": lambda: [{"zone": z.name, "free_blocks": z.nr_free} for z in m.zones()
                              if z.populated],
            "zones": lambda: [vars(z) for z in m.zones()],
            "pagetypeinfo": lambda: [{"zone": z.name, "Unmovable": z.nr_free} for z in m.zones()
                                     if z.populated],
            "watermarks": m.watermarks,
            "memblock": m.memblock,
            "slab": lambda: [{k: v for k, v in vars(c).items() if k not in ("random", "slabs")}
                             for c in m.caches()],
            "slabtop": lambda: m.slabtop() and [  # SLOB has none: its error, one line
                {"name": c.name, "bytes": (c.nr_slabs << c.order) * 4096,
                 "active_objs": c.active_objs, "num_objs": c.total_objects}
                for c in m.caches()],
            "vmalloc": lambda: [vars(v) for v in m.vmap_areas()],
            "modules": lambda: [{"name": x.name, "size": x.size, "refcount": x.view.refcnt,
                                 "state": x.view.state, "address": x.base,
                                 "taints": x.view.flags, "elf": str(x.elf),
                                 "sections": x.sections} for x in m.modules()],
        }[a.what]()
        print(json.dumps(data, indent=1))
        return 0
    text = {"buddy": m.buddyinfo, "zones": m.zoneinfo, "pagetypeinfo": m.pagetypeinfo,
            "watermarks": lambda: format_watermarks(m.zones()),
            "memblock": lambda: format_memblock(m.memblock()),
            "slab": m.slabinfo, "slabtop": m.slabtop, "vmalloc": m.vmallocinfo,
            "modules": m.proc_modules}[a.what]()
    print(text, end="")
    return 0


def _gdb_log(text: str) -> None:
    """The stub's log line on stderr; a closed stderr ends the log, not the server."""
    try:
        print(f"kmemu gdb: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def cmd_gdb(a: argparse.Namespace) -> int:
    """Boot, then serve the GDB remote protocol until interrupted (or one client)."""
    from emu.debug.session import DebugSession
    from emu.frontend.gdbstub.server import LOOPBACK, GdbServer, gdb_command_line
    from emu.frontend.gdbstub.target import MachineTarget

    host = a.listen or "127.0.0.1"
    if not 0 <= a.port <= 65535:
        raise BadArgument(f"--port must be 0..65535, got {a.port}")
    m = Machine.booted(**_machine_args(a))  # type: ignore[arg-type]
    m.budget_seconds = float("inf")  # a debugged call runs until it stops or gdb sends Ctrl-C
    try:
        srv = GdbServer(MachineTarget(DebugSession(m)), host, a.port, log=_gdb_log)
    except OSError as e:
        raise BadArgument(f"cannot listen on {host}:{a.port}: {e.strerror or e}") from None
    if host not in LOOPBACK:
        print(f"kmemu gdb: WARNING: listening on {host}, not loopback: anyone who can reach "
              "this port can read and write guest memory and run kernel code",
              file=sys.stderr)
    assert m.artifacts is not None
    print(f"kmemu gdb: kernel ready; listening on {host}:{srv.port}\n"
          f"connect with:\n  {gdb_command_line(str(m.artifacts.elf), host, srv.port)}",
          flush=True)
    # Link the modules for gdb, and read the line table, now, while gdb starts and
    # reads the kernel's symbols (a client that connects meanwhile waits in the listen
    # queue): gdb gives up on a reply after 2 s, and doing this before the banner made
    # every launch slower.
    srv.target.libraries()
    m.lines  # noqa: B018 - loaded now, not at the first stop (it decides gdb's frame there)
    for mod in m.modules():  # gdb also gets them as shared libraries (qXfer:libraries)
        print(f"module {mod.name}: (gdb) {mod.add_symbol_file()}", flush=True)
    try:
        srv.serve(once=a.once)
    except KeyboardInterrupt:
        print("kmemu gdb: stopped", file=sys.stderr)
    finally:
        srv.close()
    return 0


def cmd_debug(a: argparse.Namespace) -> int:
    """Boot, then run debugger commands: a terminal, ``--script FILE`` or standard input.
    Exit status 1 when a scripted command failed (see emu.frontend.debugger.repl.run_debugger)."""
    from emu.debug.session import DebugSession
    from emu.frontend.debugger.repl import read_script, run_debugger

    lines = read_script(a.script) if a.script else None
    m = Machine.booted(**_machine_args(a))  # type: ignore[arg-type]
    print(f"kmemu debug: kernel ready ({m.mem >> 20} MiB); 'help' lists the commands",
          flush=True)
    return run_debugger(DebugSession(m), lines)


def cmd_map(a: argparse.Namespace) -> int:
    """Boot, then draw physical memory by owner (emu.frontend.pictures.command)."""
    from emu.frontend.pictures.command import run_map
    from emu.frontend.pictures.mpl import pyplot

    if a.png:
        pyplot("a PNG map")  # before booting: refused at once without matplotlib
    return run_map(Machine.booted(**_machine_args(a)), a)  # type: ignore[arg-type]


def cmd_e820(a: argparse.Namespace) -> int:
    m = load_map(a.e820) if a.e820 else default_map(a.mem)
    print("\n".join(m.lines()))
    print(f"usable: {m.usable_bytes} bytes ({m.usable_bytes >> 20} MiB)")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kmemu", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def machine_opts(sp: argparse.ArgumentParser, e820: bool = True,
                     modules: bool = False, kasan: bool = True, slab: bool = True) -> None:
        group = sp.add_mutually_exclusive_group() if e820 else sp
        group.add_argument("--mem", default="256M", help="RAM size, 16M..64G (default 256M)")
        if e820:
            group.add_argument("--e820", metavar="FILE", help="use this memory map (see "
                               "`kmemu e820 --help` for the format) instead of --mem")
        sp.add_argument("--cmdline", default="", help="kernel command line")
        if slab:  # (kmemu compare takes a list of them instead)
            sp.add_argument("--slab", choices=("slub", "slab", "slob"),
                            help="the slab allocator (adds slab=...; default slub)")
        if kasan:
            sp.add_argument("--kasan", action="store_true",
                            help="boot the KASAN variant: kernel and modules built with "
                            "-fsanitize=kernel-address, bad accesses reported as Linux does")
            sp.add_argument("--kmemleak", action="store_true",
                            help="track every allocation for kmemleak (kmemleak=on on the "
                            "command line); scan with `kmemleak` in kmemu debug")
        if modules:
            sp.add_argument("--module", dest="modules", action="append", metavar="FILE.c",
                            help="build and load this module after boot (repeatable; "
                            "kernel/module.c loads it as Linux's insmod would)")

    b = sub.add_parser("boot", help="build if needed, boot, print the boot log")
    machine_opts(b, modules=True)
    b.add_argument("--quiet", action="store_true", help="print nothing unless boot fails")
    b.add_argument("--json", action="store_true", help="print a JSON summary instead")
    add_boot_options(b)
    b.set_defaults(fn=cmd_boot)

    bd = sub.add_parser("build", help="build the disk image and kernel ELF")
    bd.add_argument("--force", action="store_true", help="rebuild even if cached")
    bd.set_defaults(fn=cmd_build)

    q = sub.add_parser("qemu", help="boot the same image on qemu-system-x86_64")
    machine_opts(q, e820=False, modules=True, kasan=False)
    q.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    q.add_argument("--quiet", action="store_true", help="print the log only at the end")
    q.set_defaults(fn=cmd_qemu)

    be = sub.add_parser("bench", help="measure boot, snapshot and call costs")
    be.add_argument("--json", action="store_true", help="print the rows as JSON")
    be.add_argument("--save", metavar="FILE.json", help="also save the rows as JSON")
    be.add_argument("--compare", metavar="REF.json",
                    help="print each figure beside a saved run (--save/--json); exit 1 if "
                         "any regressed: an instruction count at all, a measured figure "
                         "beyond the noise threshold")
    be.add_argument("--noise", type=float, default=0.25,
                    help="noise threshold for measured figures, as a fraction (default 0.25:"
                         " a time 1.25x the saved one is a regression)")
    be.add_argument("--repeat", type=int, default=5, help="boots per size (default 5)")
    be.set_defaults(fn=cmd_bench)

    k = sub.add_parser("kunit", help="build, load and run KUnit suites (or the built-in ones) "
                       "and print a kunit.py-style summary; exit 1 if any case failed")
    k.add_argument("files", nargs="*", metavar="FILE.c",
                   help="test sources, built into one module (none: the kernel's own suites)")
    machine_opts(k)
    k.add_argument("--module", action="append", metavar="FILE.c",
                   help="load this module first (repeatable)")
    k.add_argument("--filter", metavar="GLOB", help="SUITE_GLOB[.CASE_GLOB], as "
                   "kunit.filter_glob")
    out = k.add_mutually_exclusive_group()
    out.add_argument("--raw", action="store_true", help="print the KTAP output as is")
    out.add_argument("--json", action="store_true", help="print structured results")
    k.add_argument("--fail-on-leak", action="store_true",
                   help="exit 1 when a case left allocations behind")
    k.add_argument("--timeout", type=float, default=30.0,
                   help="seconds per case before it fails as timed out (default 30)")
    k.set_defaults(fn=cmd_kunit)

    i = sub.add_parser("info", help="boot and print an allocator view: "
                       "buddy, zones, pagetypeinfo, watermarks, memblock, slab, slabtop, "
                       "pagetable [ADDR|START-END], vmalloc")
    i.add_argument("what", choices=INFO)
    i.add_argument("where", nargs="?", help="for pagetable: ADDR or START-END")
    machine_opts(i, modules=True)
    i.add_argument("--json", action="store_true", help="structured data instead of text")
    i.set_defaults(fn=cmd_info)

    from emu.frontend.pictures.command import add_parser as add_map_parser
    add_map_parser(sub, machine_opts, cmd_map)

    g = sub.add_parser("gdb", help="boot, then serve gdb's remote protocol on 127.0.0.1:1234")
    machine_opts(g, modules=True)
    g.add_argument("--port", type=int, default=1234, help="TCP port (default 1234; 0: any free)")
    g.add_argument("--listen", metavar="HOST", help="address to listen on instead of "
                   "127.0.0.1 (a warning is printed: the stub gives full control of the guest)")
    g.add_argument("--once", action="store_true", help="exit when the first client leaves")
    g.set_defaults(fn=cmd_gdb)

    dbg = sub.add_parser("debug", help="boot, then debug the kernel at a gdb-like prompt "
                         "(break, step, print, x, call kmalloc 64 GFP_KERNEL, slabinfo, ...)")
    machine_opts(dbg, modules=True)
    dbg.add_argument("--script", metavar="FILE", help="run the commands in FILE (one a line, "
                     "# comments) instead of reading a terminal; exit 1 if any failed")
    dbg.set_defaults(fn=cmd_debug)

    ck = sub.add_parser("check", help="sweeps: fail every allocation of a call in turn "
                        "(failures), or interrupt it at every instruction (irqs); exit 1 if "
                        "any run was not ok")
    ck.add_argument("what", choices=["failures", "irqs"])
    ck.add_argument("function", metavar="FUNC", help="the kernel or module function to call")
    ck.add_argument("args", nargs="*", metavar="ARG", help="its arguments: integers "
                    "(decimal or 0x hex) or GFP flags (GFP_KERNEL|__GFP_ZERO)")
    machine_opts(ck, modules=True)
    ck.add_argument("-j", "--jobs", type=int, default=1,
                    help="failures: worker processes, each booting once (default 1)")
    ck.add_argument("--root", dest="roots", action="append", metavar="SYM",
                    help="failures: a variable (kernel, or MODULE:NAME) whose pointers keep "
                    "what they reach from counting as leaked (repeatable)")
    ck.add_argument("--handler", metavar="VECTOR", help="irqs: the interrupt vector to raise")
    ck.add_argument("--json", action="store_true", help="failures: structured results")
    ck.set_defaults(fn=cmd_check)

    trace_cmd.add_parser(sub, machine_opts)

    cf = sub.add_parser("cflags", help="print the compiler flags and include path a module "
                        "is built with (gcc $(kmemu cflags) -c mydev.c)")
    cf.add_argument("--name", help="module name for KBUILD_MODNAME (default: none defined)")
    cf.add_argument("--kasan", action="store_true",
                    help="the flags of a module for the KASAN kernel (-fsanitize=kernel-address)")
    cf.set_defaults(fn=cmd_cflags)

    cc = sub.add_parser("compile-commands", help="write compile_commands.json for module "
                        "sources, so clangd/VS Code complete kmemu's <linux/...> headers")
    cc.add_argument("files", nargs="+", metavar="FILE.c")
    cc.add_argument("-o", "--output", default="compile_commands.json",
                    help="where to write it (default ./compile_commands.json; entries for "
                    "other files already there are kept)")
    cc.add_argument("--name", help="module name (default: each file's stem)")
    cc.add_argument("--cc", default=os.environ.get("CC", "gcc"),
                    help="compiler recorded in the commands (default $CC or gcc)")
    cc.set_defaults(fn=cmd_compile_commands)

    from emu.frontend import replay_cmd  # kmemu replay, kmemu compare

    replay_cmd.add_parsers(sub, machine_opts)

    e = sub.add_parser("e820", help="print a memory map as the kernel will see it",
                       description="Map file format: one range per line, `START END TYPE` "
                       "(END exclusive) or `START +SIZE TYPE`; numbers in decimal, 0x-hex or "
                       "with K/M/G; TYPE usable|reserved|acpi|nvs|unusable|pmem or a number; "
                       "# starts a comment.")
    machine_opts(e, kasan=False)
    e.set_defaults(fn=cmd_e820)
    return p


#: Exit status when the reader of standard output went away (``kmemu boot | head``):
#: what a shell shows for a process ended by SIGPIPE.
EXIT_STDOUT_CLOSED = 128 + 13


def stdout_reader_gone() -> bool:
    """True when standard output is a pipe (or socket) whose reader has closed it.

    Python ignores SIGPIPE, so a write there raises BrokenPipeError; so does a write
    to any socket whose peer left.  Only the first means "the user is done reading"
    (poll reports POLLERR on a pipe with no reader left)."""
    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else 1
        p = select.poll()
        p.register(fd, select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in p.poll(0))
    except (OSError, ValueError):
        return False


def _quiet_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's final flush cannot complain."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ is not None else 1)
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``kmemu`` command.  SIGPIPE keeps Python's setting (ignored): a reader of
    standard output that leaves ends the command quietly with status 141, and a gdb
    client that leaves is the stub's business (it logs it and serves the next one)."""
    args = parser().parse_args(argv)
    try:
        return _run(args)
    except BrokenPipeError:
        if not stdout_reader_gone():
            raise
        _quiet_stdout()
        return EXIT_STDOUT_CLOSED


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.fn(args))
    except GuestOops as e:
        print(f"kmemu: {e}", file=sys.stderr)
        return 1
    except (E820Error, BuildError, qemu_mod.QemuError, GfpError, BadArgument) as e:
        print(f"kmemu: {e}", file=sys.stderr)
        return 2
    except KmemuError as e:
        print(f"kmemu: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
