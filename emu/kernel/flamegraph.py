"""Layer 4: an SVG flame graph drawn from folded stacks, with no dependency.

The layout is flamegraph.pl's: stacks merged into a tree, siblings in name order,
the root at the bottom, each frame as wide as its instructions (its own plus its
callees').  Every frame is a ``<g class="f">`` holding a ``<title>`` (name and count:
the browser shows it on hover), a ``<rect>`` and a clipped ``<text>``; the frame's
count and position are also its ``data-n``/``data-x``/``data-w`` attributes, which
the few lines of plain JavaScript use to zoom: a click makes that frame the full
width (frames beside it are hidden, those below are greyed), a click on the
background resets.  Frames narrower than 0.1 px are left out (their counts are
still in their parents' widths), as flamegraph.pl does with --minwidth.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from emu.kernel.funcgraph import parse_folded

WIDTH = 1200
FRAME_H = 16
PAD_TOP = 40
PAD_BOTTOM = 24
MIN_WIDTH_PX = 0.1


def escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as XML entities (xml.sax.saxutils.escape's text, without
    importing it: it imports urllib, ~25 ms of every CLI process's start, since the
    machine imports ftrace and ftrace this module)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass
class Node:
    name: str
    total: int = 0
    children: dict[str, Node] = field(default_factory=dict)


def merge(text: str) -> Node:
    """The folded stacks as one tree under an ``all`` root."""
    root = Node("all")
    for frames, count in parse_folded(text):
        root.total += count
        node = root
        for f in frames:
            node = node.children.setdefault(f, Node(f))
            node.total += count
    return root


def _color(name: str) -> str:
    """A warm colour per name (stable across graphs: a hash, not a random draw)."""
    h = hashlib.md5(name.encode()).digest()  # noqa: S324 - a colour, not security
    return f"rgb({205 + h[0] % 50},{h[1] % 230},{h[2] % 55})"


_SCRIPT = """
<script type="text/ecmascript"><![CDATA[
var W = %(width)d;
function frames() { return document.querySelectorAll("g.f"); }
function place(g, x, w) {
  var r = g.querySelector("rect"), t = g.querySelector("text");
  r.setAttribute("x", x); r.setAttribute("width", Math.max(w - 0.5, 0));
  t.setAttribute("x", x + 3);
  var name = g.getAttribute("data-name"), fit = Math.floor((w - 6) / 7);
  t.textContent = fit >= name.length ? name : (fit > 2 ? name.slice(0, fit - 2) + ".." : "");
}
function zoom(e) {
  e.stopPropagation();
  var z = e.currentTarget, zx = +z.getAttribute("data-x"), zw = +z.getAttribute("data-w");
  var zy = +z.querySelector("rect").getAttribute("y");
  frames().forEach(function (g) {
    var x = +g.getAttribute("data-x"), w = +g.getAttribute("data-w");
    var y = +g.querySelector("rect").getAttribute("y");
    var inside = x >= zx - 1e-9 && x + w <= zx + zw + 1e-9;
    var below = y > zy && x <= zx + 1e-9 && x + w >= zx + zw - 1e-9;
    g.style.display = inside || below ? "" : "none";
    g.style.opacity = below ? 0.5 : 1;
    if (inside || below) {
      var nx = Math.max(0, (x - zx) / zw * W), nw = Math.min(W, w / zw * W);
      place(g, nx + %(pad)d, below ? W : nw);
    }
  });
}
function reset() {
  frames().forEach(function (g) {
    g.style.display = ""; g.style.opacity = 1;
    place(g, +g.getAttribute("data-x") * W + %(pad)d, +g.getAttribute("data-w") * W);
  });
}
window.addEventListener("load", function () {
  frames().forEach(function (g) { g.addEventListener("click", zoom); });
  document.querySelector("rect.bg").addEventListener("click", reset);
});
]]></script>
"""


def svg(folded_text: str, title: str = "guest instructions", unit: str = "insns") -> str:
    """The flame graph of ``folded_text`` (``a;b;c count`` lines) as an SVG document."""
    root = merge(folded_text)
    depth = _depth(root)
    pad = 10
    height = PAD_TOP + depth * FRAME_H + PAD_BOTTOM
    total = max(root.total, 1)
    out = [f'<?xml version="1.0" standalone="no"?>\n'
           f'<svg version="1.1" width="{WIDTH + 2 * pad}" height="{height}" '
           f'xmlns="http://www.w3.org/2000/svg" font-family="Verdana, sans-serif" '
           f'font-size="12">\n',
           _SCRIPT % {"width": WIDTH, "pad": pad},
           f'<rect class="bg" x="0" y="0" width="{WIDTH + 2 * pad}" height="{height}" '
           f'fill="#f8f8f0"/>\n',
           f'<text x="{(WIDTH + 2 * pad) // 2}" y="24" text-anchor="middle" '
           f'font-size="17">{escape(title)}</text>\n']
    # (node, x in units of the total, level)
    stack: list[tuple[Node, int, int]] = [(root, 0, 0)]
    while stack:
        node, x, level = stack.pop()
        w = node.total / total
        if w * WIDTH < MIN_WIDTH_PX:
            continue
        y = height - PAD_BOTTOM - (level + 1) * FRAME_H
        label = f"{node.name} ({node.total:,} {unit}, {100 * node.total / total:.2f}%)"
        px, pw = x / total * WIDTH + pad, w * WIDTH
        fit = int((pw - 6) // 7)
        text = node.name if fit >= len(node.name) else (node.name[: fit - 2] + ".."
                                                         if fit > 2 else "")
        out.append(f'<g class="f" data-name="{escape(node.name).replace(chr(34), "&quot;")}" '
                   f'data-n="{node.total}" data-x="{x / total:.9f}" data-w="{w:.9f}">'
                   f'<title>{escape(label)}</title>'
                   f'<rect x="{px:.2f}" y="{y}" width="{max(pw - 0.5, 0):.2f}" '
                   f'height="{FRAME_H - 1}" fill="{_color(node.name)}" rx="2"/>'
                   f'<text x="{px + 3:.2f}" y="{y + FRAME_H - 4}">{escape(text)}</text></g>\n')
        cx = x
        for name in sorted(node.children):
            child = node.children[name]
            stack.append((child, cx, level + 1))
            cx += child.total
    out.append("</svg>\n")
    return "".join(out)


def _depth(root: Node) -> int:
    best, stack = 0, [(root, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in n.children.values())
    return best
