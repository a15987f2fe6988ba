"""Issue 10, items 6 and 7 in the REPL, gdb's monitor, the CLI and the API: addresses
over 64 bits, non-canonical walks, ranges too big to watch, kmemu's own vectors.

Each is refused (or said plainly), the same way in every front end, never silently
cut down to something else."""

from __future__ import annotations

import re

import pytest

from emu import Machine
from emu.build.abi import define, internal_vectors
from emu.core.errors import BadArgument
from emu.debug.breakpoints import MAX_WATCH, WatchError, parse_address
from emu.debug.session import DebugSession
from emu.frontend.cli import main
from emu.frontend.gdbstub.protocol import Protocol
from emu.frontend.gdbstub.target import MachineTarget
from tests.debugger.test_repl import Run, one_error, run  # noqa: F401 - the fixture

HUGE = "0x1ffff888000100000"  # 0xffff888000100000 with a 65th bit
TIB = "*(char (*)[1099511627776])0xffff888000000000"
FOUR_MIB = "*(char (*)[4194304])0xffff888000000000"


# ------------------------------------------------------------------ addresses over 64 bits
def test_parse_address_refuses_what_does_not_fit_in_64_bits() -> None:
    assert parse_address("0xffff888000100000") == 0xFFFF888000100000
    assert parse_address("-8") == (1 << 64) - 8  # C's unsigned long of -8, as gdb reads it
    assert parse_address("kmalloc") is None  # not a literal: an expression
    for bad in (HUGE, "0x10000000000000000", "-0x8000000000000001", "18446744073709551616"):
        with pytest.raises(BadArgument, match="not a 64-bit value"):
            parse_address(bad)


@pytest.mark.parametrize("line", [f"x/2xg {HUGE}", f"identify {HUGE}", f"pt {HUGE}",
                                  f"watch *{HUGE}", f"x/s {HUGE}", f"disassemble {HUGE},+4"])
def test_repl_refuses_an_address_over_64_bits(run: Run, line: str) -> None:  # noqa: F811
    one_error(run(line), "is not a 64-bit value")


def test_repl_still_reads_the_64_bit_address(run: Run) -> None:  # noqa: F811
    assert re.match(r"0xffff888000100000:\t0x[0-9a-f]{16}\t0x[0-9a-f]{16}\n",
                    run("x/2xg 0xffff888000100000"))


def test_an_expression_over_64_bits_is_refused_too(run: Run) -> None:  # noqa: F811
    one_error(run(f"x/2xg {HUGE} + 0"), "does not fit in 64 bits")


def test_monitor_refuses_an_address_over_64_bits(machine: Machine) -> None:
    p = Protocol(MachineTarget(DebugSession(machine)))
    for cmd in (f"identify {HUGE}", f"pt {HUGE}"):
        out = bytes.fromhex(p.handle(b"qRcmd," + cmd.encode().hex().encode()).decode()).decode()
        assert out.startswith("error: address") and "not a 64-bit value" in out, out


def test_api_pt_and_ptdump_refuse_values_over_64_bits(machine: Machine) -> None:
    # the message names the 64-bit range (the API's argument checks may say it first)
    with pytest.raises(BadArgument, match="0xffffffffffffffff"):
        machine.pt(int(HUGE, 16))
    with pytest.raises(BadArgument, match="0xffffffffffffffff|0x10000000000000000"):
        machine.ptdump(0, 1 << 65)
    with pytest.raises(BadArgument, match="0xffffffffffffffff|-0x1"):
        machine.ptdump(-1, 0x1000)
    with pytest.raises(BadArgument, match="empty"):
        machine.ptdump(0x2000, 0x1000)


# ------------------------------------------------------------------ non-canonical walks
def test_pt_of_a_non_canonical_address_says_so(run: Run) -> None:  # noqa: F811
    out = run("pt 0xdead000000000000")
    assert out.startswith("pt 0xdead000000000000: non-canonical address"), out
    assert "index" not in out and len(out.splitlines()) == 1  # no made-up 0/0/0/0 walk


def test_api_pt_of_a_non_canonical_address(machine: Machine) -> None:
    assert "non-canonical" in machine.pt(0x0000800000000000)
    assert "PGD index 273" in machine.pt(0xFFFF888000000000)  # canonical: the walk


@pytest.mark.parametrize("where, words", [
    ("0xdead000000000000", "non-canonical address"),
    (HUGE, "is not a 64-bit value"),
    (f"0-{HUGE}", "is not a 64-bit value"),
    ("0x2000-0x1000", "empty"),
    ("1_000", "takes ADDR or START-END"),  # int(x, 0) took Python's 1_000
])
def test_cli_info_pagetable(capsys, where: str, words: str) -> None:
    rc = main(["info", "pagetable", where, "--mem", "64M"])
    out, err = capsys.readouterr()
    assert words in out + err, (out, err)
    assert rc == (0 if "non-canonical" in words else 2)


# ------------------------------------------------------------------ ranges too big to watch
@pytest.mark.parametrize("expr, size", [(TIB, 1 << 40), (FOUR_MIB, 4 << 20)])
def test_repl_watch_of_a_range_too_big_is_refused_not_cut_to_1_mib(
        run: Run, expr: str, size: int) -> None:  # noqa: F811
    out = run(f"watch {expr}")
    one_error(out, f"watch size must be 1..{MAX_WATCH} bytes, got {size}")
    assert run("info breakpoints").startswith("No breakpoints")


def test_the_api_refuses_the_same_range_with_the_same_words(machine: Machine) -> None:
    with pytest.raises(WatchError, match=f"watch size must be 1..{MAX_WATCH} bytes, got 4194304"):
        machine.watch(0xFFFF888000000000, 4 << 20)


def test_a_zero_sized_object_is_refused_not_widened_to_a_byte(run: Run) -> None:  # noqa: F811
    one_error(run("watch *(char (*)[0])0xffff888000100000"), "got 0")


def test_a_watch_within_the_limit_still_works(run: Run) -> None:  # noqa: F811
    out = run("watch *(char (*)[4096])0xffff888000100000")
    assert out == "Hardware watchpoint 1: *(char (*)[4096])0xffff888000100000\n"


def test_gdb_stub_z2_z3_z4_use_the_same_check(machine: Machine) -> None:
    s = DebugSession(machine)
    p = Protocol(MachineTarget(s))
    try:
        for z in (b"Z2", b"Z3", b"Z4"):
            assert p.handle(z + b",ffff888000000000,400000").startswith(b"E"), z
            assert p.handle(z + b",ffff888000000000,0").startswith(b"E"), z
            assert p.handle(z + b",dead000000000000,8").startswith(b"E"), z
        assert s.points == {}
        assert p.handle(b"Z2,ffff888000100000,100000") == b"OK"  # exactly the limit
    finally:
        s.delete()


# ------------------------------------------------------------------ kmemu's own vectors
def test_internal_vectors_come_from_the_kernel_header() -> None:
    assert internal_vectors() == {define("KMEMU_CALL_VECTOR"): "KMEMU_CALL_VECTOR"}
    assert define("KMEMU_CALL_VECTOR") == 0xEC and define("KMEMU_TEST_VECTOR") == 0x30


def test_repl_irq_refuses_the_call_vector(run: Run) -> None:  # noqa: F811
    before = len(run.m.events)
    one_error(run("irq 0xec"), "is kmemu's own")
    assert len(run.m.events) == before and run.m.state == "ready"  # no oops
    assert run("irq 0x30") == "IRQ 0x30 delivered; the kernel is idle\n"


def test_api_raise_irq_refuses_the_call_vector_and_calls_still_use_it(
        machine: Machine) -> None:
    from emu.machine.irq import IrqError

    with pytest.raises(IrqError, match="kmemu's own"):
        machine.raise_irq(0xEC)
    with pytest.raises(IrqError, match="kmemu's own"):
        machine.raise_irq(0xEC, after=10)
    assert machine.call("kmemu_test_add", 1, 2, 3, 4, 5, 6, context="irq") == 91
