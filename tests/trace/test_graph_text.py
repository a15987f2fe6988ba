"""function_graph's text, ftrace's knobs and folded stacks on hand-made trees (no machine),
and the SVG flame graph."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from emu.kernel import flamegraph
from emu.kernel.funcgraph import (
    Call,
    TraceError,
    finish_totals,
    folded,
    format_graph,
    format_us,
    parse_folded,
    select,
)


def tree() -> list[Call]:
    """a -> (b -> (c, d), irq 0x30 -> (h), c), then e alone."""
    c1, d, c2, h = Call("c", self_insns=5), Call("d", self_insns=7), Call("c", self_insns=5), \
        Call("h", self_insns=11)
    irq = Call("common_entry", kind="irq", vector=0x30, self_insns=40, children=[h])
    b = Call("b", self_insns=20, children=[c1, d])
    a = Call("a", self_insns=3, children=[b, irq, c2])
    e = Call("e", self_insns=12_345)
    roots = [a, e]
    finish_totals(roots)
    return roots


def test_totals_and_layout() -> None:
    a, e = tree()
    assert a.total_insns == 3 + (20 + 5 + 7) + (40 + 11) + 5 == 91
    text = format_graph([a, e])
    assert text.splitlines()[4:] == [
        " 0)               |  a() {",
        " 0)               |    b() {",
        " 0)   5 insns     |      c();",
        " 0)   7 insns     |      d();",
        " 0)   32 insns    |    }",
        " 0)   ==========> |",
        " 0)               |    common_entry() {",
        " 0)   11 insns    |      h();",
        " 0)   51 insns    |    }",
        " 0)   <========== |",
        " 0)   5 insns     |    c();",
        " 0)   91 insns    |  }",
        " 0) + 12345 insns |  e();",  # Linux's '+' mark: more than 10,000 (ns, here insns)
    ]


def test_exceptions_nest_without_arrows_and_unfinished_frames_are_named() -> None:
    h = Call("die", self_insns=9, returned=False)
    pf = Call("common_entry", kind="irq", vector=14, self_insns=30, children=[h],
              returned=False)
    f = Call("f", self_insns=4, children=[pf], returned=False)
    finish_totals([f])
    text = format_graph([f], comments=[(None, "oops: BUG: kernel NULL pointer dereference")],
                        header=False)
    assert text.splitlines() == [
        " 0)               |  f() {",
        " 0)               |    common_entry() {",
        " 0)   9 insns     |      die();",
        " 0)   39 insns    |    } /* common_entry */",
        " 0)   43 insns    |  } /* f */",
        " 0)               |  /* oops: BUG: kernel NULL pointer dereference */",
    ]


@pytest.mark.parametrize(("ns", "field"), [
    (318, "0.318 us    "), (3036, "3.036 us    "), (14536, "14.536 us   "),
    (40698, "40.698 us   "), (123456789, "123456.7 us "), (12345678901, "12345678 us "),
])
def test_linux_duration_format(ns: int, field: str) -> None:
    assert format_us(ns) == field


def test_wall_clock_lines() -> None:
    a = Call("a", wall_ns=14536, children=[Call("b", wall_ns=318)])
    finish_totals([a])
    assert format_graph([a], clock="wall", header=False).splitlines() == [
        " 0)               |  a() {",
        " 0)   0.318 us    |    b();",
        " 0) + 14.536 us   |  }",
    ]
    with pytest.raises(TraceError):
        format_graph([a], clock="cycles")


def test_select_follows_ftrace() -> None:
    roots = tree()
    # set_ftrace_filter: b is not traced, its callees move up under a
    f = select(roots, filter=["a", "c", "d", "e"])
    a = f[0]
    assert [c.name for c in a.children] == ["c", "d", "c"]
    assert a.total_insns == 91 and a.self_insns == 91 - 17
    assert all(c.depth == 1 for c in a.children)
    # set_ftrace_notrace keeps the callees; set_graph_notrace drops them
    assert [c.name for c in select(roots, notrace=["b"])[0].children] == \
        ["c", "d", "common_entry", "c"]
    assert [c.name for c in select(roots, graph_notrace=["b"])[0].children] == \
        ["common_entry", "c"]
    # set_graph_function: trees rooted at a match only, from depth 0
    g = select(roots, graph=["b", "h"])
    assert [(c.name, c.depth) for c in g] == [("b", 0), ("h", 0)]
    # max_graph_depth counts traced functions only
    d = select(roots, filter=["a", "c", "d", "e"], max_depth=1)
    assert [c.name for c in d] == ["a", "e"] and d[0].children == []
    assert d[0].self_insns == 91
    # the input is untouched
    assert roots[0].children[0].name == "b" and roots[0].self_insns == 3


def test_funcgraph_irqs_and_tail_options() -> None:
    roots = tree()
    quiet = select(roots, irqs=False)
    assert [c.name for c in quiet[0].children] == ["b", "c"]
    assert quiet[0].total_insns == 91 and quiet[0].self_insns == 3 + 51  # the irq's are a's
    assert "==========>" not in format_graph(quiet)
    pf = Call("common_entry", kind="irq", vector=14, self_insns=1)
    f = Call("f", children=[pf])
    finish_totals([f])
    assert select([f], irqs=False)[0].children[0].vector == 14  # exceptions stay
    lines = format_graph(roots, tail=True, header=False).splitlines()
    assert lines[4] == " 0)   32 insns    |    } /* b */"
    assert lines[-2] == " 0)   91 insns    |  } /* a */"


def test_folded_stacks() -> None:
    roots = tree()
    text = folded(roots)
    assert text == ("a 3\n" "a;b 20\n" "a;b;c 5\n" "a;b;d 7\n" "a;c 5\n" "a;common_entry 40\n"
                    "a;common_entry;h 11\n" "e 12345\n")
    assert sum(n for _, n in parse_folded(text)) == sum(r.total_insns for r in roots)
    with pytest.raises(TraceError, match="line 1"):
        parse_folded("a;b x\n")


def test_svg_has_a_frame_per_node_with_its_count() -> None:
    text = "a 3\na;b 20\na;b;c 5\na;b;d 7\na;c 5\nzeta 60\n"
    svg = flamegraph.svg(text, title="t <&>")
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    frames = root.findall(".//s:g[@class='f']", ns)
    got = {}
    for g in frames:
        title = g.find("s:title", ns).text
        rect = g.find("s:rect", ns)
        got.setdefault(g.get("data-name"), []).append(int(g.get("data-n")))
        assert title.startswith(f"{g.get('data-name')} ({int(g.get('data-n')):,} insns")
        assert float(rect.get("width")) > 0
    assert got == {"all": [100], "a": [40], "b": [32], "c": [5, 5], "d": [7], "zeta": [60]}
    # widths are proportional to counts: a is 40% of the graph's width
    a = next(g for g in frames if g.get("data-name") == "a")
    allg = next(g for g in frames if g.get("data-name") == "all")
    wa = float(a.find("s:rect", ns).get("width")) + 0.5
    wall = float(allg.find("s:rect", ns).get("width")) + 0.5
    assert wa / wall == pytest.approx(0.4, abs=1e-3)
    # deeper frames sit higher (smaller y); children start where their parent does
    b = next(g for g in frames if g.get("data-name") == "b")
    assert float(b.find("s:rect", ns).get("y")) < float(a.find("s:rect", ns).get("y"))
    assert b.get("data-x") == a.get("data-x")
    assert "<script" in svg and "function zoom" in svg and "t &lt;&amp;&gt;" in svg
