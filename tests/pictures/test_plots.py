"""plot_replay on synthetic timelines: the series drawn (read back from the axes)
are the timeline's numbers; bad timelines are one-line errors."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from emu.core.errors import BadArgument, PlotUnavailable
from emu.frontend.plots import MIB, TOP_CACHES, plot_replay, replay_charts

CACHES = [f"cache-{i:02d}" for i in range(TOP_CACHES + 3)]


def timeline(n: int = 6) -> list[dict]:
    out = []
    for i in range(n):
        out.append({
            "op": i * 100, "held": (i + 1) * 3 * MIB, "requested": (i + 1) * 2 * MIB,
            # cache-NN peaks at (NN + 1) * 4096 * n: the three smallest are "other"
            "by_cache": {c: (k + 1) * 4096 * (i + 1) for k, c in enumerate(CACHES)},
            "free_by_order": [10 - o + i for o in range(11)],
            "unusable": [min(1.0, o / 10 + i / 100) for o in range(11)],
            "slab_occupancy": {c: [k * i, k * i + 10] for k, c in enumerate(CACHES)},
        })
    return out


def test_the_charts_data() -> None:
    tl = timeline()
    frag, memory, occ = replay_charts(tl)
    assert frag.x == [0, 100, 200, 300, 400, 500]
    assert list(frag.lines) == [f"order {o}" for o in range(11)]
    assert frag.lines["order 3"] == [s["unusable"][3] for s in tl]
    assert memory.lines["held (total)"] == [s["held"] / MIB for s in tl]
    assert memory.lines["requested (total)"] == [s["requested"] / MIB for s in tl]
    top = [f"cache {c}" for c in reversed(CACHES[3:])]
    assert list(memory.lines)[2:] == top + ["other caches (3)"]
    assert memory.lines["other caches (3)"] == [
        sum(s["by_cache"][c] for c in CACHES[:3]) / MIB for s in tl]
    assert occ.categories == list(reversed(CACHES[3:])) + ["other (3)"]
    last = tl[-1]["slab_occupancy"]
    assert occ.bars["num_objs"][0] == last[CACHES[-1]][1]
    assert occ.bars["active_objs"][-1] == sum(last[c][0] for c in CACHES[:3])


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_plot_replay_draws_exactly_the_charts(tmp_path: Path, fmt: str) -> None:
    tl = timeline()
    drawn: dict = {}
    paths = plot_replay(tl, tmp_path / "out", fmt, drawn=drawn)
    assert [p.name for p in paths] == [f"fragmentation.{fmt}", f"memory.{fmt}",
                                       f"slab_occupancy.{fmt}"]
    head = {"png": b"\x89PNG", "svg": b"<?xml"}[fmt]
    assert all(p.read_bytes().startswith(head) for p in paths)
    for chart in replay_charts(tl):
        if chart.lines:
            assert drawn[chart.name] == {k: (chart.x, v) for k, v in chart.lines.items()}
        else:
            assert drawn[chart.name] == chart.bars


def test_one_sample_is_enough(tmp_path: Path) -> None:
    assert len(plot_replay(timeline(1), tmp_path, "svg")) == 3


@pytest.mark.parametrize("bad, message", [
    ([], "a replay timeline must be a non-empty list of samples, got list (empty)"),
    ({"op": 1}, "a replay timeline must be a non-empty list of samples, got dict"),
    ([3], "timeline sample 0 is a int, not a dict"),
    ([{"op": 1}], "timeline sample 0 has no held, requested, by_cache, free_by_order, "
                  "unusable, slab_occupancy"),
])
def test_bad_timelines(tmp_path: Path, bad: object, message: str) -> None:
    with pytest.raises(BadArgument) as e:
        plot_replay(bad, tmp_path)  # type: ignore[arg-type]
    assert str(e.value) == message


def test_bad_orders_format_and_outdir(tmp_path: Path) -> None:
    tl = timeline(2)
    tl[1]["unusable"] = [0.0] * 10
    with pytest.raises(BadArgument, match="timeline sample 1: unusable has 10 orders, not 11"):
        plot_replay(tl, tmp_path)
    with pytest.raises(BadArgument, match="plot format must be png or svg, got 'jpg'"):
        plot_replay(timeline(), tmp_path, "jpg")
    (tmp_path / "file").write_text("")
    with pytest.raises(BadArgument, match="exists and is not a directory"):
        plot_replay(timeline(), tmp_path / "file")


def test_without_matplotlib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = builtins.__import__

    def fake(name: str, *args: object, **kw: object) -> object:
        if name.split(".")[0] == "matplotlib":
            raise ImportError(name)
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(PlotUnavailable) as e:
        plot_replay(timeline(), tmp_path / "out")
    assert str(e.value) == ("plotting a replay needs matplotlib, which is not installed: "
                            "pip install 'kmemu[plot]'")
    assert not (tmp_path / "out").exists()


def test_caches_without_object_counts_are_left_out_of_the_occupancy(tmp_path: Path) -> None:
    tl = timeline(2)
    tl[-1]["slab_occupancy"] = {"slob pages": [None, None], "kmalloc-64": [3, 64]}
    assert replay_charts(tl)[2].categories == ["kmalloc-64"]
    tl[-1]["slab_occupancy"] = {}
    drawn: dict = {}
    plot_replay(tl, tmp_path, "svg", drawn=drawn)
    assert drawn["slab_occupancy"] == {"num_objs": [], "active_objs": []}
