"""The debugger's command language: parsing only, no machine needed.

Layer 6 (``emu.frontend.debugger``).  :func:`parse` turns one line into a typed
command object (a frozen dataclass below) or raises :class:`CommandError`
with a one-line message; it never raises anything else, whatever the text.
Names follow gdb where gdb has the command, with gdb's abbreviations and
any unique prefix (``cont``, ``disas``, ``wat``); kmemu's own commands
(``call``, ``irq``, the allocator views, ``pt``, ``identify``, ``snapshot``)
sit beside them.  :data:`COMMANDS` is the table ``help`` and completion read.

>>> parse("x/8xg $rsp")
Examine(count=8, fmt='x', size='g', expr='$rsp')
>>> parse("b kmalloc if size > 1000")
Break(location='kmalloc', temporary=False, condition='size > 1000')
>>> parse("call kmalloc 100 GFP_KERNEL|__GFP_ZERO")
Call(function='kmalloc', args=('100', 'GFP_KERNEL|__GFP_ZERO'))
>>> parse("")  # blank lines and '#' comments are no command
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

from emu.core.errors import KmemuError


class CommandError(KmemuError, ValueError):
    """A line that is not a valid debugger command; the message says what is wrong."""


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Break:
    location: str | None  # None: the current instruction
    temporary: bool = False
    condition: str = ""


@dataclass(frozen=True)
class Delete:
    numbers: tuple[int, ...] | None  # None: all of them


@dataclass(frozen=True)
class InfoBreakpoints:
    watchpoints_only: bool = False  # gdb's ``info watchpoints``


@dataclass(frozen=True)
class InfoRegisters:
    names: tuple[str, ...] = ()  # () = all


@dataclass(frozen=True)
class Watch:
    expr: str
    access: str = "write"  # write | read | access


@dataclass(frozen=True)
class Step:
    kind: str  # step | next | stepi | nexti
    count: int = 1


@dataclass(frozen=True)
class Continue:
    pass


@dataclass(frozen=True)
class Finish:
    pass


@dataclass(frozen=True)
class Until:
    location: str | None = None


@dataclass(frozen=True)
class Backtrace:
    limit: int | None = None


@dataclass(frozen=True)
class SelectFrame:
    """``frame [N]`` (``level`` None: show the selected one), ``up [N]``, ``down [N]``."""

    level: int | None = None
    delta: int = 0


@dataclass(frozen=True)
class InfoVariables:
    """``info locals`` / ``info args`` (``arguments``) of the selected frame."""

    arguments: bool


@dataclass(frozen=True)
class Examine:
    count: int | None = None  # None: 1
    fmt: str | None = None  # None: the last one used (x at first)
    size: str | None = None  # None: the last one used (w at first), or what fmt implies
    expr: str | None = None  # None: where the last x stopped


@dataclass(frozen=True)
class Disassemble:
    where: str | None = None  # FUNC, ADDR, START,END or START,+LEN; None: around rip
    raw: bool = False  # /r: instruction bytes
    source: bool = False  # /s: file:line headings


@dataclass(frozen=True)
class List:
    location: str | None = None  # None: around rip, or on from the last list


@dataclass(frozen=True)
class Print:
    expr: str
    fmt: str | None = None  # None or a letter of gdbvalue.PRINT_FORMATS
    output: bool = False  # gdb's output: the value alone, not in the history


@dataclass(frozen=True)
class Display:
    """``display[/FMT] EXPR``: print EXPR at every stop; without EXPR, show them all now."""

    expr: str | None = None
    fmt: str | None = None


@dataclass(frozen=True)
class Undisplay:
    numbers: tuple[int, ...] | None = None  # None: all


@dataclass(frozen=True)
class InfoDisplay:
    pass


@dataclass(frozen=True)
class Ptype:
    expr: str


@dataclass(frozen=True)
class Whatis:
    """gdb's ``whatis EXPR|TYPE``: the type, one typedef level unrolled."""

    expr: str


@dataclass(frozen=True)
class Condition:
    number: int
    expr: str = ""  # "": unconditional again


@dataclass(frozen=True)
class Ignore:
    number: int
    count: int


@dataclass(frozen=True)
class Enable:
    numbers: tuple[int, ...] | None  # None: all of them
    on: bool = True  # False: disable
    mode: str | None = None  # gdb's "enable once N..." / "enable delete N..."


@dataclass(frozen=True)
class Advance:
    location: str


@dataclass(frozen=True)
class InfoFrame:
    pass


@dataclass(frozen=True)
class InfoSymbol:
    expr: str


@dataclass(frozen=True)
class InfoLine:
    location: str | None = None  # None: the selected frame's line


@dataclass(frozen=True)
class SetVar:
    """``set $NAME = EXPR``: a gdb convenience variable."""

    name: str
    expr: str


@dataclass(frozen=True)
class SetFlavor:
    """``set disassembly-flavor att|intel``."""

    flavor: str


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Trace:
    """``trace [--depth N] [--filter GLOB] [--notrace GLOB] [--graph GLOB] [--no-irqs]
    [--tail] [--wall] [--folded] FUNC ARGS...``: one call's function_graph
    (emu.machine.ftrace)."""

    function: str
    args: tuple[str, ...] = ()
    depth: int | None = None
    filter: tuple[str, ...] = ()
    notrace: tuple[str, ...] = ()
    graph: tuple[str, ...] = ()
    wall: bool = False
    folded: bool = False
    irqs: bool = True
    tail: bool = False


@dataclass(frozen=True)
class Irq:
    vector: int


@dataclass(frozen=True)
class Kmemleak:
    action: str  # scan (echo scan), show (cat the last scan's list), clear (echo clear)


@dataclass(frozen=True)
class View:
    name: str  # buddyinfo slabinfo slabtop vmallocinfo zoneinfo pagetypeinfo modules


@dataclass(frozen=True)
class Map:
    path: str | None = None  # FILE.svg or FILE.png; the terminal without one
    cell_pages: int | None = None


@dataclass(frozen=True)
class Events:
    rest: str  # list | show | pipe | clear | enable P... | disable [P...] | clock [C] | size [KB]


@dataclass(frozen=True)
class AddressView:
    name: str  # pt | identify
    expr: str


@dataclass(frozen=True)
class Snapshot:
    name: str


@dataclass(frozen=True)
class Restore:
    name: str


@dataclass(frozen=True)
class Kill:
    pass


@dataclass(frozen=True)
class Help:
    topic: str | None = None


@dataclass(frozen=True)
class Quit:
    pass


Command = (Break | Delete | InfoBreakpoints | InfoRegisters | Watch | Step | Continue | Finish
           | Until | Backtrace | SelectFrame | InfoVariables | Examine | Disassemble | List
           | Print | Display | Undisplay | InfoDisplay | Ptype | Call | Trace | Irq | View | Map
           | AddressView | Snapshot | Restore | Kill | Help | Quit | Whatis | Condition | Ignore
           | Enable | Advance | InfoFrame | InfoSymbol | InfoLine | SetFlavor | Events)

# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Spec:
    """One command: its gdb name, abbreviations, usage line and a one-line summary."""

    name: str
    aliases: tuple[str, ...]
    usage: str
    summary: str
    parse: Callable[[str, str, str], Command]  # (name, /FORMAT or "", rest)
    group: str
    slash: bool = False  # takes /FORMAT
    repeats: bool = False  # an empty line (interactive) repeats it


MAX_COUNT = 100_000
X_FORMATS = "xduotaczsi"
X_SIZES = "bhwg"
VIEWS = ("buddyinfo", "slabinfo", "slabtop", "vmallocinfo", "zoneinfo", "pagetypeinfo",
         "modules")


def _number(text: str, what: str, lo: int = 1, hi: int = MAX_COUNT) -> int:
    text = text.strip()
    if len(text) > 24 or not re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)", text):
        shown = text if len(text) <= 24 else text[:21] + "..."
        raise CommandError(f"{what}: bad number {shown!r}")
    digits = text.lstrip("+-")  # read as C and gdb read them: 0x10 hex, 010 octal
    base = 16 if digits[:2] in ("0x", "0X") else 8 if digits[:1] == "0" else 10
    n = int(digits, base)
    n = -n if text.startswith("-") else n
    if not lo <= n <= hi:
        raise CommandError(f"{what}: {n} is out of range ({lo}..{hi})")
    return n


def _no_args(cls: type) -> Callable[[str, str, str], Command]:
    def parse(name: str, _fmt: str, rest: str) -> Command:
        if rest:
            raise CommandError(f"{name} takes no arguments (got {rest!r})")
        return cls()
    return parse


def _needs(name: str, rest: str, what: str) -> str:
    if not rest:
        raise CommandError(f"{name} needs {what}; usage: {_usage(name)}")
    return rest


def _one_word(name: str, rest: str, what: str) -> str:
    _needs(name, rest, f"a {what}")
    if len(rest.split()) != 1:
        raise CommandError(f"{name} takes one {what}, got {rest!r}")
    return rest


def _p_break(name: str, _fmt: str, rest: str) -> Command:
    m = re.fullmatch(r"(?P<loc>.*?)(?:(?:^|\s+)if(?=[\s(]|$)(?P<cond>.*))?", rest, re.S)
    assert m is not None
    loc, cond = m.group("loc").strip(), m.group("cond")
    if cond is not None and not cond.strip():
        raise CommandError(f"{name}: condition missing after 'if'")
    if loc and len(loc.split()) > 1 and not loc.startswith("*"):
        raise CommandError(f"{name}: one location expected (a function, sym+off, file.c:LINE or "
                           f"*ADDR), got {loc!r}; a condition is written 'if EXPR'")
    return Break(loc or None, name == "tbreak", (cond or "").strip())


def _numbers(name: str, rest: str) -> tuple[int, ...]:
    """``1 3-5`` -> (1, 3, 4, 5): breakpoint or display numbers."""
    nums: list[int] = []
    for word in rest.replace(",", " ").split():
        if re.fullmatch(r"\d+-\d+", word):
            a, b = (_number(x, name, 1, 1 << 31) for x in word.split("-"))
            if a > b or b - a > MAX_COUNT:
                raise CommandError(f"{name}: bad range {word!r}")
            nums.extend(range(a, b + 1))
        else:
            nums.append(_number(word, name, 1, 1 << 31))
    return tuple(nums)


def _p_delete(name: str, _fmt: str, rest: str) -> Command:
    if not rest:
        return Delete(None)
    words = rest.split(None, 1)
    if words[0] in ("display", "displays"):  # gdb's 'delete display N'
        return _p_undisplay(name, "", words[1] if len(words) > 1 else "")
    return Delete(_numbers(name, rest))


def _p_undisplay(name: str, _fmt: str, rest: str) -> Command:
    return Undisplay(_numbers(name, rest) if rest else None)


def _print_format(name: str, fmt: str) -> str | None:
    """``/x`` -> "x": the output formats print and display take (gdb's letters,
    :data:`emu.kernel.gdbvalue.PRINT_FORMATS`); refused in gdb's words."""
    from emu.kernel.gdbvalue import PRINT_FORMATS

    letter = fmt[1:] or None
    if letter is None or (len(letter) == 1 and letter in PRINT_FORMATS):
        return letter
    if letter == "i":  # gdb's i is x's and display's
        raise CommandError(f'Format letter "{letter}" is meaningless in "{name}" command.')
    if letter == "f":
        raise CommandError(f"{name}/f: kmemu does not print floating point (its kernel has "
                           "none)")
    if len(letter) == 1 and letter.isalpha():
        return letter  # gdb evaluates first, then says the format is undefined
    raise CommandError(f'Undefined output format "{letter}".')


def _p_display(name: str, fmt: str, rest: str) -> Command:
    if fmt[1:] == "i":  # gdb's display/i shows x/i at each stop; kmemu's does not yet
        raise CommandError("display/i is not supported: use x/i EXPR at the stop")
    letter = _print_format(name, fmt)
    if not rest.strip() and letter:
        raise CommandError(f"{name}/{letter} needs an expression")
    return Display(rest.strip() or None, letter)


INFO_TOPICS = {"breakpoints": ("b", "br", "break"), "watchpoints": ("wat", "watch"),
               "registers": ("r", "reg"), "locals": (), "args": (), "display": (),
               "frame": ("f",), "symbol": (), "line": ()}


def _p_info(name: str, _fmt: str, rest: str) -> Command:
    words = rest.split()
    if not words:
        raise CommandError("info needs a topic: info breakpoints | info registers [REG...] | "
                           "info locals | info args | info frame | info symbol ADDR | "
                           "info line [LOCATION]")
    topic = _resolve(words[0], {t: a for t, a in INFO_TOPICS.items()}, "info topic")
    arg = rest.split(None, 1)[1].strip() if len(words) > 1 else ""
    if topic == "frame":
        if arg:
            raise CommandError("info frame takes no arguments (select one with 'frame N')")
        return InfoFrame()
    if topic == "symbol":
        if not arg:
            raise CommandError("Argument required (address).")
        return InfoSymbol(arg)
    if topic == "line":
        if len(arg.split()) > 1:
            raise CommandError(f"info line takes one location, got {arg!r}")
        return InfoLine(arg or None)
    if topic in ("breakpoints", "watchpoints", "locals", "args", "display"):
        if len(words) > 1:
            raise CommandError(f"info {topic} takes no arguments")
        if topic in ("locals", "args"):
            return InfoVariables(topic == "args")
        if topic == "display":
            return InfoDisplay()
        return InfoBreakpoints(topic == "watchpoints")
    regs = tuple(w.lstrip("$").lower() for w in words[1:])
    for r in regs:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", r):
            raise CommandError(f"info registers: invalid register name {r!r}")
    return InfoRegisters(regs)


def _p_watch(name: str, _fmt: str, rest: str) -> Command:
    expr = re.sub(r"^-l(ocation)?\s+", "", rest)  # gdb's -l: a watch is always on the location
    _needs(name, expr.strip(), "an expression")
    return Watch(expr.strip(), {"watch": "write", "rwatch": "read", "awatch": "access"}[name])


def _p_step(name: str, _fmt: str, rest: str) -> Command:
    if len(rest.split()) > 1:
        raise CommandError(f"{name} takes at most one argument (a count), got {rest!r}")
    return Step(name, _number(rest, name) if rest else 1)


def _p_until(name: str, _fmt: str, rest: str) -> Command:
    if name == "advance":
        return Advance(_one_word(name, rest, "location"))
    return Until(rest or None)


def _p_condition(name: str, _fmt: str, rest: str) -> Command:
    words = rest.split(None, 1)
    if not words:
        raise CommandError("Argument required (breakpoint number).")
    return Condition(_number(words[0], name, 1, 1 << 31), words[1].strip() if len(words) > 1
                     else "")


def _p_ignore(name: str, _fmt: str, rest: str) -> Command:
    words = rest.split()
    if not words:
        raise CommandError("Argument required (a breakpoint number).")
    if len(words) != 2:
        raise CommandError("Second argument (specified ignore-count) is missing.")
    return Ignore(_number(words[0], name, 1, 1 << 31), _number(words[1], name, 0, 1 << 31))


def _p_enable(name: str, _fmt: str, rest: str) -> Command:
    words = rest.split()
    if words and words[0] in ("breakpoints", "br", "b"):  # gdb's 'disable breakpoints N'
        words = words[1:]
    mode = None
    if name == "enable" and words and words[0] in ("once", "delete"):
        mode, words = words[0], words[1:]
        if not words:
            raise CommandError("Argument required (one or more breakpoint numbers).")
    rest = " ".join(words)
    return Enable(_numbers(name, rest) if rest.strip() else None, name == "enable", mode)


def _p_set(name: str, _fmt: str, rest: str) -> Command:
    m = re.fullmatch(r"(?:var(?:iable)?\s+)?\$(\w+)\s*=(?!=)\s*(.*)", rest.strip(), re.S)
    if m is not None:  # gdb's convenience variables: set $n = EXPR
        if not m.group(2).strip():
            raise CommandError("set: an expression is needed after '='")
        return SetVar(m.group(1), m.group(2).strip())
    words = rest.replace("=", " ").split()
    if len(words) != 2 or words[0] != "disassembly-flavor":
        raise CommandError("set: only 'set $NAME = EXPR' and 'set disassembly-flavor "
                           "att|intel' are supported")
    if words[1] not in ("att", "intel"):
        raise CommandError(f'Undefined item: "{words[1]}".')
    return SetFlavor(words[1])


def _p_backtrace(name: str, _fmt: str, rest: str) -> Command:
    if len(rest.split()) > 1:
        raise CommandError(f"{name} takes at most one argument (a frame count), got {rest!r}")
    return Backtrace(_number(rest, name) if rest else None)


def _p_frame(name: str, _fmt: str, rest: str) -> Command:
    if len(rest.split()) > 1:
        raise CommandError(f"{name} takes at most one argument (a frame "
                           f"{'level' if name == 'frame' else 'count'}), got {rest!r}")
    if name == "frame":
        return SelectFrame(_number(rest, name, lo=0) if rest else None)
    count = _number(rest, name, lo=-MAX_COUNT) if rest else 1  # up -1 is down 1, as in gdb
    return SelectFrame(None, count if name == "up" else -count)


def parse_x_format(fmt: str) -> tuple[int | None, str | None, str | None]:
    """``/8xg`` -> ``(8, "x", "g")`` (count, format letter, size letter; None if absent)."""
    m = re.fullmatch(r"/(\d*)([A-Za-z]*)", fmt)
    if m is None:
        raise CommandError(f"x: bad format {fmt!r}; expected /[COUNT][FORMAT][SIZE] like /8xg")
    count = _number(m.group(1), "x: count") if m.group(1) else None
    letter = size = None
    for ch in m.group(2):
        if ch in X_SIZES and size is None:
            size = ch
        elif ch in X_FORMATS and letter is None:
            letter = ch
        else:
            raise CommandError(f"x: invalid format letter {ch!r} in {fmt!r} (formats: "
                               f"{' '.join(X_FORMATS)}; sizes: {' '.join(X_SIZES)}; one of each)")
    return count, letter, size


def _p_x(name: str, fmt: str, rest: str) -> Command:
    count, letter, size = parse_x_format(fmt) if fmt else (None, None, None)
    return Examine(count, letter, size, rest or None)


def _p_disas(name: str, fmt: str, rest: str) -> Command:
    mods = fmt[1:]
    if bad := set(mods) - {"r", "s", "m"}:
        raise CommandError(f"{name}: unknown modifier(s) {''.join(sorted(bad))!r} "
                           "(/r bytes, /s source lines)")
    return Disassemble(rest or None, "r" in mods, bool({"s", "m"} & set(mods)))


def _p_list(name: str, _fmt: str, rest: str) -> Command:
    if len(rest.split()) > 1:
        raise CommandError(f"{name} takes one location (function, file.c:LINE), got {rest!r}")
    return List(rest or None)


def _p_print(name: str, fmt: str, rest: str) -> Command:
    letter = _print_format(name, fmt)
    return Print(_needs(name, rest, "an expression"), letter, output=name == "output")


def _p_ptype(name: str, _fmt: str, rest: str) -> Command:
    return Ptype(_needs(name, rest, "an expression or a type"))


def split_call(rest: str) -> tuple[str, tuple[str, ...]]:
    """``kmalloc 64 GFP_KERNEL`` or ``kmalloc(64, GFP_KERNEL | __GFP_ZERO)`` ->
    ``("kmalloc", ("64", "GFP_KERNEL | __GFP_ZERO"))``."""
    m = re.fullmatch(r"([A-Za-z_]\w*)\s*\((.*)\)\s*", rest, re.S)
    if m is not None:
        fn, inner = m.group(1), m.group(2)
        args, depth, cur = [], 0, ""
        for ch in inner:
            depth += ch in "([" and 1 or ch in ")]" and -1 or 0
            if ch == "," and depth == 0:
                args.append(cur.strip())
                cur = ""
            else:
                cur += ch
        if cur.strip() or args:
            args.append(cur.strip())
        if any(not a for a in args):
            raise CommandError(f"call: empty argument in {rest!r}")
        return fn, tuple(args)
    words = rest.split()
    fn, args = words[0], []
    for w in words[1:]:  # GFP_KERNEL | __GFP_ZERO: glue words around '|'
        if args and (w.startswith("|") or args[-1].endswith("|")):
            args[-1] = f"{args[-1]}{w}"
        else:
            args.append(w)
    if not re.fullmatch(r"([A-Za-z_]\w*:)?[A-Za-z_]\w*", fn):  # MODULE:FUNC for modules
        raise CommandError(f"call needs a kernel function name, got {fn!r}")
    return fn, tuple(args)


def _p_call(name: str, _fmt: str, rest: str) -> Command:
    _needs(name, rest, "a function")
    return Call(*split_call(rest))


_TRACE_KNOBS = ("--depth", "--filter", "--notrace", "--graph")


def _p_trace(name: str, _fmt: str, rest: str) -> Command:
    words = rest.split()
    knobs: dict[str, list[str]] = {k: [] for k in _TRACE_KNOBS}
    flags = {"--wall": False, "--folded": False, "--no-irqs": False, "--tail": False}
    while words and words[0].startswith("--"):
        w = words.pop(0)
        if w in flags:
            flags[w] = True
        elif w in knobs:
            if not words:
                raise CommandError(f"trace: {w} needs a value")
            knobs[w].append(words.pop(0))
        else:
            raise CommandError(f"trace: unknown option {w!r} (options: "
                               f"{', '.join((*_TRACE_KNOBS, *flags))})")
    if not words:
        raise CommandError(f"usage: {_usage(name)}")
    depth = None
    if knobs["--depth"]:
        depth = _number(knobs["--depth"][-1], "trace --depth", 0)
    fn, args = split_call(" ".join(words))
    return Trace(fn, args, depth, tuple(knobs["--filter"]), tuple(knobs["--notrace"]),
                 tuple(knobs["--graph"]), flags["--wall"], flags["--folded"],
                 not flags["--no-irqs"], flags["--tail"])


def _p_irq(name: str, _fmt: str, rest: str) -> Command:
    return Irq(_number(_one_word(name, rest, "vector"), name, 0, 255))


def _p_kmemleak(name: str, _fmt: str, rest: str) -> Command:
    action = rest or "scan"
    if action not in ("scan", "show", "clear"):
        raise CommandError(f"kmemleak takes scan, show or clear, got {rest!r}")
    return Kmemleak(action)


def _p_view(name: str, fmt: str, rest: str) -> Command:
    if rest:
        raise CommandError(f"{name} takes no arguments (got {rest!r})")
    return View(name)


def _p_map(name: str, _fmt: str, rest: str) -> Command:
    """map [FILE.svg|FILE.png] [CELL_PAGES], in either order."""
    path: str | None = None
    cell_pages: int | None = None
    for word in rest.split():
        if word.lower().endswith((".svg", ".png")) and path is None:
            path = word
        elif cell_pages is None and word[:1].isdigit():
            cell_pages = _number(word, "map: pages per cell", 1, 1 << 24)
        else:
            raise CommandError(f"map: {word!r} is neither FILE.svg/FILE.png nor a number of "
                               f"pages per cell; usage: {_usage(name)}")
    return Map(path, cell_pages)


def _p_events(name: str, _fmt: str, rest: str) -> Command:
    return Events(rest)


def _p_whatis(name: str, _fmt: str, rest: str) -> Command:
    return Whatis(_needs(name, rest, "an expression or a type"))


def _p_address(name: str, _fmt: str, rest: str) -> Command:
    return AddressView(name, _needs(name, rest, "an address or expression"))


def _p_snapshot(name: str, _fmt: str, rest: str) -> Command:
    word = _one_word(name, rest, "name")
    return Snapshot(word) if name == "snapshot" else Restore(word)


def _p_help(name: str, _fmt: str, rest: str) -> Command:
    if len(rest.split()) > 1:
        raise CommandError(f"help takes one command name, got {rest!r}")
    return Help(rest or None)


_S = Spec
COMMANDS: tuple[Spec, ...] = (
    _S("break", ("b", "br"), "break [LOCATION] [if COND]",
       "stop where LOCATION is reached: FUNC, FUNC+OFF, file.c:LINE, *ADDR", _p_break, "points"),
    _S("tbreak", (), "tbreak [LOCATION] [if COND]", "a breakpoint deleted after its first stop",
       _p_break, "points"),
    _S("watch", (), "watch EXPR", "stop after EXPR's memory is written with a new value "
       "(e.g. watch zones[1].free_area[0].nr_free, watch *0xADDR)", _p_watch, "points"),
    _S("rwatch", (), "rwatch EXPR", "stop after EXPR's memory is read", _p_watch, "points"),
    _S("awatch", (), "awatch EXPR", "stop after EXPR's memory is read or written", _p_watch,
       "points"),
    _S("condition", (), "condition N [EXPR]", "stop at breakpoint N only when EXPR is non-zero "
       "(without EXPR: at every hit)", _p_condition, "points"),
    _S("ignore", (), "ignore N COUNT", "let the next COUNT hits of breakpoint N pass without "
       "stopping", _p_ignore, "points"),
    _S("enable", ("en",), "enable [once|delete] [N...]", "enable breakpoints/watchpoints N "
       "(all without arguments); once: disabled by their next stop, delete: deleted by it",
       _p_enable, "points"),
    _S("disable", ("disa", "dis"), "disable [N...]", "disable breakpoints/watchpoints N (all "
       "without arguments)", _p_enable, "points"),
    _S("delete", ("d",), "delete [N...]", "delete breakpoints/watchpoints N (N-M ranges); all "
       "without arguments", _p_delete, "points"),
    _S("info", ("i", "inf"), "info breakpoints | info registers [REG...] | info locals | "
       "info args | info display | info frame | info symbol ADDR | info line [LOCATION]",
       "list breakpoints and watchpoints, show registers, the selected frame's local "
       "variables, arguments or layout, the displays, the symbol at ADDR or where a line's "
       "code is", _p_info, "state"),
    _S("call", (), "call FUNC ARGS...",
       "call a kernel function (e.g. call kmalloc 100 GFP_KERNEL|__GFP_ZERO); it stops at "
       "breakpoints inside", _p_call, "run"),
    _S("trace", (), "trace [--depth N] [--filter GLOB] [--notrace GLOB] [--graph GLOB] "
       "[--no-irqs] [--tail] [--wall] [--folded] FUNC ARGS...",
       "call a function and print its call tree as ftrace's function_graph does, with guest "
       "instructions per function (--folded: flame graph stacks)", _p_trace, "run"),
    _S("continue", ("c", "cont", "fg"), "continue", "resume the stopped call", _no_args(Continue),
       "run", repeats=True),
    _S("step", ("s",), "step [N]", "run to the next source line, into calls", _p_step, "run",
       repeats=True),
    _S("next", ("n",), "next [N]", "run to the next source line, over calls", _p_step, "run",
       repeats=True),
    _S("stepi", ("si",), "stepi [N]", "run one instruction", _p_step, "run", repeats=True),
    _S("nexti", ("ni",), "nexti [N]", "run one instruction, over calls", _p_step, "run",
       repeats=True),
    _S("finish", ("fin",), "finish", "run until the selected frame's function returns; show "
       "its value",
       _no_args(Finish), "run"),
    _S("until", ("u",), "until [LOCATION]", "run to the next line past this one (loops), or to "
       "LOCATION in this frame", _p_until, "run", repeats=True),
    _S("advance", (), "advance LOCATION", "run to LOCATION in any frame, or until the current "
       "function returns", _p_until, "run"),
    _S("kill", ("k",), "kill", "abandon the stopped call; the kernel goes back to idle",
       _no_args(Kill), "run"),
    _S("irq", (), "irq VECTOR", "raise an interrupt (at idle now; in a stopped call when it "
       "runs on with interrupts enabled), e.g. irq 0x30", _p_irq, "run"),
    _S("backtrace", ("bt", "where"), "backtrace [N]", "show the call stack (N frames; "
       "inlined functions are frames of their own, as in gdb)",
       _p_backtrace, "state"),
    _S("frame", ("f",), "frame [N]", "select frame N of the backtrace for print, info "
       "locals and finish (show the selected frame without N)", _p_frame, "state"),
    _S("up", (), "up [N]", "select the frame N callers out (the caller by default)", _p_frame,
       "state"),
    _S("down", ("do",), "down [N]", "select the frame N callees in", _p_frame, "state"),
    _S("x", (), "x/[COUNT][FMT][SIZE] ADDR",
       "examine memory: FMT x d u o t a c z s i, SIZE b h w g (x/8xg $rsp, x/4i $rip, x/s ADDR)",
       _p_x, "state", slash=True, repeats=True),
    _S("disassemble", ("disas",), "disassemble[/rs] [FUNC | ADDR | START,END | START,+LEN]",
       "disassemble a function (the selected frame's by default; => marks its pc)", _p_disas,
       "state", slash=True),
    _S("list", ("l",), "list [LOCATION]", "show source around LOCATION or the selected "
       "frame's line; again to go on", _p_list, "state", repeats=True),
    _S("print", ("p", "inspect"), "print[/FMT] EXPR",
       "evaluate a C expression over the selected frame's variables and kernel globals "
       "(c->freelist, zones[1].free_area[0].nr_free, $rax, *(struct kmem_cache *)ADDR, "
       "slab_alloc::s); $ is the last value (or the last call's result), $1 $2 earlier "
       "prints, $$N the Nth back; FMT is gdb's x d u o t z c a s",
       _p_print, "state", slash=True),
    _S("output", (), "output[/FMT] EXPR",
       "print's value alone: no $N =, not in the value history (gdb's output)",
       _p_print, "state", slash=True),
    _S("display", ("disp",), "display[/FMT] [EXPR]",
       "print EXPR after every stop (e.g. display c->freelist); alone: show them now",
       _p_display, "state", slash=True),
    _S("undisplay", ("undisp",), "undisplay [N...]", "stop displaying N (all without N)",
       _p_undisplay, "state"),
    _S("ptype", (), "ptype EXPR|TYPE", "show the type of an expression, or a type's definition",
       _p_ptype, "state"),
    _S("whatis", (), "whatis EXPR|TYPE", "show the type of an expression (a typedef unrolled "
       "one level)", _p_whatis, "state"),
    _S("set", (), "set $NAME = EXPR | set disassembly-flavor att|intel",
       "a convenience variable ($NAME in later expressions, void until set), or the "
       "syntax of disassemble and x/i (AT&T by default, as gdb)", _p_set, "state"),
    _S("buddyinfo", (), "buddyinfo", "free blocks per zone and order (/proc/buddyinfo)",
       _p_view, "views"),
    _S("slabinfo", (), "slabinfo", "slab caches (/proc/slabinfo)", _p_view, "views"),
    _S("slabtop", (), "slabtop", "slab caches by size", _p_view, "views"),
    _S("vmallocinfo", (), "vmallocinfo", "vmalloc areas (/proc/vmallocinfo)", _p_view, "views"),
    _S("zoneinfo", (), "zoneinfo", "zones, watermarks, counters (/proc/zoneinfo)", _p_view,
       "views"),
    _S("pagetypeinfo", (), "pagetypeinfo", "free blocks per migrate type", _p_view, "views"),
    _S("modules", (), "modules", "loaded modules (/proc/modules) and gdb's add-symbol-file "
       "command for each", _p_view, "views"),
    _S("map", (), "map [FILE.svg|FILE.png] [CELL_PAGES]", "physical memory by owner: a grid "
       "of pages coloured by who holds them, with a legend of counts (the census of "
       "m.memory_map()); to a picture with FILE", _p_map, "views"),
    _S("events", (), "events [list | show | pipe | clear | enable PATTERN... | "
       "disable [PATTERN...] | clock [NAME] | size [KB]]",
       "the kmem/vmalloc trace events: list them (* = on), turn them on or off "
       "(events enable kmem:*), show Linux's trace text, consume it (pipe), empty the "
       "buffer, the trace clock (counter: guest instructions) and buffer_size_kb",
       _p_events, "views"),
    _S("pt", (), "pt ADDR", "page-table walk of ADDR with every level's entry", _p_address,
       "views"),
    _S("identify", (), "identify ADDR", "which zone, page, slab object or vmalloc area owns "
       "ADDR (drgn's identify_address)", _p_address, "views"),
    _S("kmemleak", (), "kmemleak [scan|show|clear]", "scan for unreferenced objects and print "
       "the new ones (Linux's echo scan; needs --kmemleak); show: the last scan's list (cat "
       "/sys/kernel/debug/kmemleak); clear: never report the listed ones again (echo clear)",
       _p_kmemleak, "views"),
    _S("snapshot", (), "snapshot NAME", "save the machine (also inside a stopped call)",
       _p_snapshot, "session"),
    _S("restore", (), "restore NAME", "go back to a snapshot (newer ones are discarded)",
       _p_snapshot, "session"),
    _S("help", ("h",), "help [COMMAND]", "list commands, or explain one", _p_help, "session"),
    _S("quit", ("q", "exit"), "quit", "leave the debugger", _no_args(Quit), "session"),
)

GROUPS = (("points", "Breakpoints and watchpoints"), ("run", "Running"),
          ("state", "Looking at the stopped kernel"), ("views", "Allocator views (kmemu)"),
          ("session", "Session"))

BY_NAME: dict[str, Spec] = {s.name: s for s in COMMANDS}
_ALIASES: dict[str, str] = {a: s.name for s in COMMANDS for a in s.aliases}


def _usage(name: str) -> str:
    spec = BY_NAME.get(name) or BY_NAME.get(_ALIASES.get(name, ""))
    return spec.usage if spec else name


def _resolve(word: str, table: dict[str, tuple[str, ...]], what: str) -> str:
    """A name from its full form, an alias or a unique prefix (gdb's rule)."""
    if word in table:
        return word
    for name, aliases in table.items():
        if word in aliases:
            return name
    hits = sorted(n for n in table if n.startswith(word))
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise CommandError(f"ambiguous {what} {word!r}: {', '.join(hits)}")
    known = list(table) + [a for al in table.values() for a in al]
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    shown = word if len(word) <= 40 else word[:37] + "..."
    raise CommandError(f"unknown {what} {shown!r}{hint} (try 'help')")


def resolve(word: str) -> Spec:
    """The command a word names (``b`` -> break, ``cont`` -> continue)."""
    return BY_NAME[_resolve(word, {s.name: s.aliases for s in COMMANDS}, "command")]


_LINE = re.compile(r"\s*(?P<word>[A-Za-z][\w-]*)(?P<fmt>/\S*)?(?P<rest>.*)", re.S)


def parse(line: str) -> Command | None:
    """One line -> a command, or None for a blank line or a ``#`` comment.

    Raises :class:`CommandError` (one line) for anything else that is wrong.
    """
    if not isinstance(line, str):
        raise CommandError(f"a command line must be text, not {type(line).__name__}")
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    m = _LINE.fullmatch(text)
    if m is None:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise CommandError(f"unknown command {shown!r} (commands start with a name; try 'help')")
    spec = resolve(m.group("word"))
    fmt = m.group("fmt") or ""
    rest = m.group("rest").strip()
    if spec.slash and not fmt and rest.startswith("/"):  # gdb also takes "x /4xg ADDR"
        fmt, rest = (rest.split(None, 1) + [""])[:2]
    if fmt and not spec.slash:
        raise CommandError(f"{spec.name} takes no /FORMAT (got {fmt!r})")
    if "\n" in rest or "\r" in rest:
        raise CommandError("one command per line")
    return spec.parse(spec.name, fmt, rest)
