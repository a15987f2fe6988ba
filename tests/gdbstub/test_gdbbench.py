"""The gdb comparison behind ``kmemu bench``'s stub rows reads gdb's output right."""

from __future__ import annotations

from pathlib import Path

from emu.frontend import gdbbench


def test_the_loop_line_is_the_spin_loops_increment() -> None:
    file, line = gdbbench._spin_loop_line().split(":")  # noqa: SLF001
    src = (Path(gdbbench.__file__).resolve().parents[2] / "kernel" / file).read_text()
    assert src.splitlines()[int(line) - 1].strip() == "i++;"


def test_figures_are_parsed_from_gdbs_output() -> None:
    out = ("KMEMU-BENCH first=100.5\nKMEMU-BENCH stepi2000=2.0\nKMEMU-BENCH next200=0.25\n"
           "KMEMU-BENCH ignore999=0.75\nKMEMU-BENCH ignore9999=7.5\n")
    f = gdbbench._parse(gdbbench.GdbFigures("x"), out, 100.0, 100.5)  # noqa: SLF001
    assert (f.stepi_per_s, f.next200_s, f.ignore999_s, f.ignore9999_s, f.launch_s) == \
        (1000.0, 0.25, 0.75, 7.5, 0.5)
    assert f.error == ""
    bad = gdbbench._parse(gdbbench.GdbFigures("x"), "The program is not being run.\n",  # noqa: SLF001
                          0.0, 0.0)
    assert bad.error.startswith("gdb did not finish the run") and bad.launch_s is None
    table = gdbbench.format_table([f, bad])
    assert "1,000.000 /s" in table and "x: gdb did not finish" in table
