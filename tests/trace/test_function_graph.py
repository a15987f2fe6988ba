"""function_graph on the real kernel: trees checked against what kmemu measures otherwise
(breakpoint hit counts, count_instructions), interrupts, oopses, tail calls, the knobs."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from emu import Machine, MachineError
from emu.kernel.funcgraph import Call, TraceError, parse_folded
from emu.kernel.gfp import parse as gfp
from emu.machine.ftrace import TraceResult

GFP_KERNEL = gfp("GFP_KERNEL")
TEST_VECTOR = 0x30
DEMO = pytest.mark.kmemu(modules=["src/trace_demo.c"])


def names(calls: list[Call]) -> Counter[str]:
    return Counter(c.name for r in calls for c in r.walk())


def check_tree(t: TraceResult) -> None:
    """Every frame's total is its own instructions plus its children's; all counted."""
    for r in t.tree:
        for c in r.walk():
            assert c.self_insns >= 0
            assert c.total_insns == c.self_insns + sum(k.total_insns for k in c.children)
            for k in c.children:
                assert k.depth == c.depth + 1
    assert sum(r.total_insns for r in t.tree) + t.outside == t.insns


def against_breakpoints(m: Machine, fn: str, *args: int) -> tuple[Counter[str], TraceResult]:
    """The same call from the same state, counted with one breakpoint per function the
    trace saw: each must be hit exactly as often as it appears in the tree."""
    snap = m.snapshot()
    t = m.trace(fn, *args)
    check_tree(t)
    seen = names(t.tree)
    m.restore(snap)
    bps = {name: m.breakpoint(name) for name in seen}
    for bp in bps.values():
        bp.install()
    try:
        m.call(fn, *args)
    finally:
        for bp in bps.values():
            bp.remove()
    assert {n: bp.hits for n, bp in bps.items()} == dict(seen)
    m.restore(snap)
    with m.count_instructions() as n:
        m.call(fn, *args)
    assert t.insns == n[0]  # no interrupt cut a block: the same count either way
    m.restore(snap)
    return seen, t


def test_kmalloc_slow_then_fast_path(machine: Machine) -> None:
    # the first kmalloc-64 after boot takes a new slab from the page allocator; the
    # second one is the fast path, which never leaves the slab allocator
    slow, ts = against_breakpoints(machine, "kmalloc", 64, GFP_KERNEL)
    assert {"kmalloc", "___slab_alloc", "__alloc_pages"} <= set(slow)
    machine.call("kmalloc", 64, GFP_KERNEL)
    fast, tf = against_breakpoints(machine, "kmalloc", 64, GFP_KERNEL)
    assert fast["kmalloc"] == 1 and "___slab_alloc" not in fast and "__alloc_pages" not in fast
    assert tf.root.name == "kmalloc" and tf.retval and tf.oops is None
    assert tf.root.total_insns < ts.root.total_insns
    assert ts.retval != tf.retval


@DEMO
def test_text_layout(machine: Machine) -> None:
    t = machine.trace("demo_top", 3, filter="demo_*")
    lines = t.text.splitlines()
    assert lines[:4] == ["# tracer: function_graph", "#",
                         "# CPU  DURATION                  FUNCTION CALLS",
                         "# |     |   |                     |   |   |   |"]
    top = t.calls[0]
    a, b2 = top.children
    b1 = a.children[0]

    def d(c: Call) -> str:  # the duration field, Linux's width
        return f" 0)   {f'{c.total_insns} insns ':<12}|  "

    leaf = b1.children[0]
    assert leaf.total_insns == 2  # lea; ret
    assert lines[4:] == [
        " 0)               |  demo_top() {",
        " 0)               |    demo_a() {",
        " 0)               |      demo_b() {",
        f"{d(leaf)}      demo_leaf();",
        f"{d(leaf)}      demo_leaf();",
        f"{d(b1)}    }}",
        f"{d(a)}  }}",
        " 0)               |    demo_b() {",
        f"{d(leaf)}    demo_leaf();",
        f"{d(leaf)}    demo_leaf();",
        f"{d(b2)}  }}",
        f"{d(top)}}}",
    ]
    assert len(d(leaf)) == len(" 0)               |  ")
    # the hidden kmalloc and kfree are still in demo_a's time, as in Linux
    full = t.tree[0]
    assert top.total_insns == full.total_insns
    assert a.self_insns == full.children[0].total_insns - b1.total_insns


def test_alloc_pages_with_a_buddy_split(machine: Machine) -> None:
    before = machine.buddyinfo()
    seen, _ = against_breakpoints(machine, "alloc_pages", GFP_KERNEL, 3)
    assert seen["get_page_from_freelist"] == 1  # __rmqueue_smallest: a frame unless inlined
    machine.call("alloc_pages", GFP_KERNEL, 3)
    assert machine.buddyinfo() != before  # an order-3 block came out of a larger one


def test_vmalloc_tree(machine: Machine) -> None:
    seen, _ = against_breakpoints(machine, "vmalloc", 3 * 4096)
    assert seen["vmalloc"] == 1 and seen["alloc_vmap_area"] == 1
    assert seen["__alloc_pages"] >= 3  # one page each, plus page tables


def test_root_total_is_the_call_count(machine: Machine) -> None:
    snap = machine.snapshot()
    with machine.count_instructions() as n:
        machine.call("kmalloc", 200, GFP_KERNEL)
    machine.restore(snap)
    with machine.count_instructions() as both:  # both hooks on the same run
        t = machine.trace("kmalloc", 200, GFP_KERNEL)
    assert t.insns == n[0] == both[0]
    glue = sum(r.total_insns for r in t.tree[1:]) + t.outside  # deferred work, trampoline
    assert t.root.total_insns == n[0] - glue
    assert [r.name for r in t.tree[1:]] == ["kmemu_deferred_work"]


def test_interrupt_in_the_middle(machine: Machine) -> None:
    snap = machine.snapshot()
    quiet = machine.trace("kmemu_test_spin", 1000).root.total_insns
    machine.restore(snap)
    with machine.profile() as p:
        machine.raise_irq(TEST_VECTOR)
    alone = p.roots[0]
    assert alone.kind == "irq" and alone.vector == TEST_VECTOR
    for after in (200, 201, 333):  # the timer cuts a block at different instructions
        machine.restore(snap)
        machine.raise_irq(TEST_VECTOR, after=after)
        t = machine.trace("kmemu_test_spin", 1000)
        check_tree(t)
        irq = [c for c in t.root.walk() if c.kind == "irq"]
        assert len(irq) == 1 and irq[0].returned and irq[0].depth == 1
        assert [c.name for c in irq[0].walk()] == [c.name for c in alone.walk()]
        assert irq[0].total_insns == alone.total_insns
        # the interrupted block's unrun part is not counted twice: exact to the insn
        assert t.root.total_insns == quiet + alone.total_insns
    hidden = machine.trace  # funcgraph-irqs off: the handler's instructions stay counted
    machine.restore(snap)
    machine.raise_irq(TEST_VECTOR, after=200)
    q = hidden("kmemu_test_spin", 1000, irqs=False)
    assert q.calls[0].children == [] and q.calls[0].total_insns == t.root.total_insns
    assert "==========>" not in q.text
    lines = t.text.splitlines()
    i = lines.index(" 0)   ==========> |")
    assert lines[i + 1] == " 0)               |    common_entry() {"
    j = lines.index(" 0)   <========== |")
    assert re.fullmatch(r" 0\)   \d+ insns +\|    }", lines[j - 1])
    assert "test_irq_handler();" in "".join(lines[i:j])


@DEMO
def test_tail_calls_nest_in_their_caller(machine: Machine) -> None:
    t = machine.trace("demo_twice", 4)
    assert t.retval == (5 * 3 + 1) + (6 * 3 + 1)
    check_tree(t)
    tails = t.root.children
    assert [c.name for c in tails] == ["demo_tail", "demo_tail"]
    for c in tails:
        assert c.kind == "call" and c.returned
        assert [(k.name, k.kind, k.returned) for k in c.children] == [("demo_leaf", "tail",
                                                                        True)]
        assert c.self_insns == 2 and c.children[0].total_insns == 2  # addq; jmp / lea; ret
    assert " 0)               |    demo_tail() {\n 0)   2 insns     |      demo_leaf();\n" \
        in t.text


@DEMO
def test_oops_mid_call_leaves_the_tree_whole(machine: Machine) -> None:
    t = machine.trace("demo_oops", 7)
    assert t.retval is None and t.oops is not None and "NULL pointer" in str(t.oops)
    check_tree(t)
    assert t.root.name == "demo_oops" and not t.root.returned
    kmalloc, crash = t.root.children
    assert kmalloc.name == "kmalloc" and kmalloc.returned
    assert crash.name == "demo_crash" and not crash.returned
    entry = crash.children[0]
    assert entry.kind == "irq" and entry.vector == 14 and not entry.returned
    assert "die" in names([entry])
    assert t.text.splitlines()[-1].startswith(" 0)               |  /* oops: BUG: kernel NULL")
    assert " 0) + " in t.text and "} /* demo_oops */" in t.text
    # the next call's tree starts clean at depth 0, nothing left from the oops
    t2 = machine.trace("demo_twice", 1)
    assert t2.oops is None and t2.root.name == "demo_twice" and t2.root.depth == 0
    assert [r.name for r in t2.tree] == ["demo_twice", "kmemu_deferred_work"]


@DEMO
def test_knobs(machine: Machine) -> None:
    snap = machine.snapshot()

    def run(**kw: object):  # noqa: ANN202
        machine.restore(snap)
        return machine.trace("demo_top", 2, **kw)

    def shape(c: Call) -> object:
        return (c.name, [shape(k) for k in c.children]) if c.children else c.name

    full = run()
    leaves = ["demo_leaf", "demo_leaf"]
    # set_ftrace_filter: only matches; the callees of hidden functions move up
    f = run(filter="demo_*")
    assert [shape(c) for c in f.calls] == [
        ("demo_top", [("demo_a", [("demo_b", leaves)]), ("demo_b", leaves)])]
    assert f.calls[0].total_insns == full.root.total_insns
    # set_ftrace_notrace: demo_a vanishes, what it called becomes demo_top's
    n = run(notrace="demo_a,kmemu_deferred_work,vfree_pending", depth=2)
    assert [shape(c) for c in n.calls] == [("demo_top", ["kmalloc", "kfree", "demo_b",
                                                         "demo_b"])]
    # max_graph_depth
    d = run(depth=2, graph="demo_top")
    assert [shape(c) for c in d.calls] == [("demo_top", ["demo_a", "demo_b"])]
    assert "    demo_a();" in d.text
    assert max(c.depth for r in d.calls for c in r.walk()) == 1
    assert run(depth=0).text == full.text  # 0 is no limit, as in Linux
    # set_graph_function: every tree rooted at a match, from depth 0
    g = run(graph="demo_b")
    assert [shape(c) for c in g.calls] == [("demo_b", leaves)] * 2
    assert [c.depth for c in g.calls] == [0, 0]
    # set_graph_notrace: a match and all below it vanish
    gn = run(graph_notrace="demo_a", filter="demo_*")
    assert [shape(c) for c in gn.calls] == [("demo_top", [("demo_b", leaves)])]
    # bad knobs: one line, before anything runs
    machine.restore(snap)
    for kw, msg in [({"filter": "no_such_fn*"}, "set_ftrace_filter: 'no_such_fn*' matches no"),
                    ({"notrace": ["kmalloc", "zz*"]}, "set_ftrace_notrace: 'zz*'"),
                    ({"depth": -1}, "max_graph_depth"), ({"clock": "tsc"}, "clock must be"),
                    ({"filter": 3}, "globs are strings"),
                    ({"irqs": "no"}, "funcgraph-irqs"), ({"tail": 1}, "funcgraph-tail")]:
        with pytest.raises(TraceError, match=re.escape(msg)):
            machine.trace("demo_top", 1, **kw)
    assert machine.call("demo_top", 2) == full.retval  # still usable, same result


def test_wall_clock_durations(machine: Machine) -> None:
    t = machine.trace("kmalloc", 64, GFP_KERNEL, clock="wall")
    assert all(c.wall_ns > 0 for r in t.tree for c in r.walk())
    for line in t.text.splitlines()[4:]:
        if "insns" in line:
            raise AssertionError(line)
    assert re.search(r"^ 0\) [ +!#*@$] \d+(\.\d{1,3})? us +\|  }$", t.text, re.M)


def test_folded_stacks_sum_to_the_total(machine: Machine) -> None:
    t = machine.trace("vmalloc", 2 * 4096)
    stacks = parse_folded(t.folded)
    assert sum(n for _, n in stacks) == sum(r.total_insns for r in t.calls)
    assert sum(r.total_insns for r in t.calls) == t.insns - t.outside
    assert all(s[0] in ("vmalloc", "kmemu_deferred_work") for s, _ in stacks)
    assert len({";".join(s) for s, _ in stacks}) == len(stacks)  # merged
    own = Counter()
    for s, n in stacks:
        own[s[-1]] += n
    assert own["vmalloc"] == t.root.self_insns
    # the flame graph: one frame per merged stack prefix, each with its subtree's count
    prefixes: Counter[tuple[str, ...]] = Counter()
    for s, n in stacks:
        for i in range(1, len(s) + 1):
            prefixes[tuple(s[:i])] += n
    svg = ET.fromstring(t.svg())
    frames = svg.findall(".//{http://www.w3.org/2000/svg}g[@class='f']")
    assert len(frames) == len(prefixes) + 1  # and "all"
    drawn = Counter((g.get("data-name"), int(g.get("data-n"))) for g in frames)
    want = Counter((p[-1], n) for p, n in prefixes.items())
    want[("all", sum(n for _, n in stacks))] += 1
    assert drawn == want


def test_profile_of_a_python_block(machine: Machine) -> None:
    snap = machine.snapshot()
    with machine.count_instructions() as n:
        a = machine.call("kmalloc", 64, GFP_KERNEL)
        machine.call("kfree", a)
        machine.call("alloc_pages", GFP_KERNEL, 0)
    machine.restore(snap)
    with machine.profile() as p:
        a = machine.call("kmalloc", 64, GFP_KERNEL)
        machine.call("kfree", a)
        machine.call("alloc_pages", GFP_KERNEL, 0)
    assert p.insns == n[0]
    tops = [r.name for r in p.roots if r.name != "kmemu_deferred_work"]
    assert tops == ["kmalloc", "kfree", "__alloc_pages"]  # alloc_pages is an alias
    assert sum(n for _, n in parse_folded(p.folded)) == p.insns - p.outside


def test_trace_and_profile_need_a_running_machine() -> None:
    m = Machine()  # never booted
    with pytest.raises(MachineError, match="the machine is off"):
        with m.profile():
            pass
    with pytest.raises(MachineError, match="boot"):
        m.trace("kmalloc", 64, GFP_KERNEL)
