"""Status templates and the escaping of each host that shows them.

A template is text with ``{field}`` placeholders; ``[...]`` is a group, dropped when a
field in it has no value (no quota yet, no active block), so its separators go too.
``{{``, ``}}``, ``\\[`` and ``\\]`` are literal.  Fields that measure against a limit
(budget %, quota %, block %) are coloured by the thresholds.

Targets: plain, ansi, zsh (``%F{…}``, ``%%``: for a prompt with prompt_subst), bash
(colours between readline's \\001/\\002 markers: for ``${TOKLINE_STATUS}`` in PS1,
whose value bash neither decodes nor expands again), fish, tmux (``#[fg=…]``, ``##``);
the desktop bars polybar (``%{F#…}``; a ``%{`` of the text is kept text by a word joiner),
i3blocks and waybar (Pango markup: ``<span foreground=…>`` for i3blocks, ``& < > ' "``
escaped), swiftbar (``|`` and what else SwiftBar parses kept text) and sketchybar (text
as it is: it goes in one argument).  waybar, swiftbar and sketchybar colour the whole
item, not a span (waybar's class, SwiftBar's ``color=``, SketchyBar's ``label.color``:
tokline/prompt/desktop.py, with :func:`colour`); ``json`` is handled by the caller.
NO_COLOR turns colours off everywhere.  Every span's text goes through
tokline.prompt.safetext first (control and bidi characters shown as escapes, each span
capped), then the target's own escaping; only the colours added here are raw markup.
The block's time-left placeholder (``\x1e``, the whole of a span) passes.
Stdlib only, no ``re``: the status command imports this when asked for a template.
"""

from __future__ import annotations

from collections.abc import Mapping

from tokline.prompt.safetext import clean

# The quota that binds (the window closest to its limit, tokline/prompt/quotaview.py) is
# what a short line shows; an arrow follows a window that is ahead of an even burn.
PRESETS = {
    "minimal": "{today.cost}",
    "full": "{today.cost} today[ · 5h {block.cost} ({block.left} left)][ · {quota.bind}]"
            "[{quota.bind.ahead}]",
    "quota": "[5h {quota.5h}][{quota.5h.ahead}][ ({quota.5h.reset})][ · 7d {quota.7d}]"
             "[{quota.7d.ahead}][ ({quota.7d.reset})]",
    "budget": "{today.cost} today[ · {budget.daily.left} left today][ · {budget.monthly.pct} "
              "of month]",
}
TARGETS = ("plain", "ansi", "zsh", "bash", "fish", "tmux", "polybar", "i3blocks", "waybar",
           "swiftbar", "sketchybar")
# The targets whose whole output is the rendered line (and the stale note): pre-rendered in
# status.lines and answered by the fast path (tokline/prompt/status.py).  The others wrap
# it in their host's format (tokline/prompt/desktop.py).
LINE_TARGETS = TARGETS[:8]
# The targets that colour a span of the line; plain colours nothing, the rest the whole item.
SPAN_COLOURED = ("ansi", "zsh", "bash", "fish", "tmux", "polybar", "i3blocks")

WARN = "warn"
CRIT = "crit"
Value = tuple[str, "str | None"]  # (text, colour level)
Part = "str | Field | Group"


class TemplateError(ValueError):
    """A template that cannot be rendered; the message names the problem."""


class Field:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class Group:
    __slots__ = ("parts",)

    def __init__(self, parts: list[str | Field | Group]) -> None:
        self.parts = parts


def parse_template(text: str) -> list[str | Field | Group]:
    """Parse a template (or a preset's name) into parts; raises TemplateError."""
    text = PRESETS.get(text, text)
    stack: list[list[str | Field | Group]] = [[]]
    literal: list[str] = []
    i = 0

    def flush() -> None:
        if literal:
            stack[-1].append("".join(literal))
            literal.clear()

    while i < len(text):
        ch = text[i]
        pair = text[i:i + 2]
        if pair in ("{{", "}}", "\\[", "\\]"):
            literal.append(pair[1])
            i += 2
            continue
        if ch == "{":
            end = text.find("}", i)
            if end < 0:
                raise TemplateError(f"unclosed '{{' at column {i + 1}")
            name = text[i + 1:end].strip()
            if not name:
                raise TemplateError(f"empty field at column {i + 1}")
            flush()
            stack[-1].append(Field(name))
            i = end + 1
            continue
        if ch == "}":
            raise TemplateError(f"unmatched '}}' at column {i + 1} (write '}}}}')")
        if ch == "[":
            flush()
            stack.append([])
        elif ch == "]":
            if len(stack) == 1:
                raise TemplateError(f"unmatched ']' at column {i + 1}")
            flush()
            group = Group(stack.pop())
            stack[-1].append(group)
        else:
            literal.append(ch)
        i += 1
    if len(stack) != 1:
        raise TemplateError("unclosed '['")
    flush()
    return stack[0]


def fields_of(parts: list[str | Field | Group]) -> list[str]:
    names: list[str] = []
    for part in parts:
        if isinstance(part, Field):
            names.append(part.name)
        elif isinstance(part, Group):
            names.extend(fields_of(part.parts))
    return names


def check_fields(parts: list[str | Field | Group], known: Mapping[str, object]) -> None:
    """Unknown names are errors; known ones may still be empty when rendered."""
    for name in fields_of(parts):
        if name not in known and not _is_dynamic(name):
            sample = ", ".join(sorted(k for k in known if "." in k)[:12])
            raise TemplateError(f"unknown field '{name}' (fields include: {sample}, …)")


def _is_dynamic(name: str) -> bool:
    # quota.<source>.<window>[.reset] and source.<name>.today depend on the data present.
    parts = name.split(".")
    return (parts[0] == "quota" and len(parts) in (3, 4)) or (
        parts[0] == "source" and len(parts) == 3)


Span = tuple[str, "str | None"]


def spans(parts: list[str | Field | Group], values: Mapping[str, Value | None],
          in_group: bool = False) -> list[Span] | None:
    """Text spans with colour levels.  An empty field drops its group (None); outside a
    group it is left out."""
    out: list[Span] = []
    for part in parts:
        if isinstance(part, str):
            out.append((part, None))
        elif isinstance(part, Field):
            value = values.get(part.name)
            if value is None or value[0] == "":
                if in_group:
                    return None
                continue
            out.append(value)
        else:
            inner = spans(part.parts, values, True)
            if inner is not None:
                out.extend(inner)
    return out


def render(parts: list[str | Field | Group], values: Mapping[str, Value | None], target: str,
           color: bool = True) -> str:
    return encode(spans(parts, values) or [], target, color)


SPAN_LIMIT = 500  # characters of one literal or field, after escaping
LEFT = "\x1e"  # the block's time left in pre-rendered lines (tokline.prompt.fields.LEFT)
_ANSI = {WARN: "\033[33m", CRIT: "\033[31m"}
_NAMES = {WARN: "yellow", CRIT: "red"}
# The colour of each level on the hosts that take a colour value (the bars); OK_COLOUR
# where one is set whatever the level (SketchyBar's label.color keeps the last one set).
COLOURS = {WARN: "#ffb52a", CRIT: "#ff5555"}
OK_COLOUR = "#ffffff"
JOINER = "\u2060"  # WORD JOINER: invisible, it keeps two characters from reading as one token
_PANGO = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&#39;", '"': "&quot;"})


def colour(level: str | None, target: str) -> str:
    """A level's colour on a bar: ``#rrggbb``, or SketchyBar's ``0xaarrggbb``; OK_COLOUR
    below the thresholds."""
    value = COLOURS.get(level or "", OK_COLOUR)
    return "0xff" + value[1:] if target == "sketchybar" else value


def escape(text: str, target: str) -> str:
    if target == "zsh":
        return text.replace("%", "%%")
    if target == "tmux":
        return text.replace("#", "##")
    if target == "polybar":
        # polybar has no escape for a tag's opening: ``%%{`` still opens one (the lemonbar
        # ``%%`` was never taken up, polybar/polybar#2748) and an action tag runs a command
        # on a click.  Anything between ``%`` and ``{`` keeps it text; the joiner shows nothing.
        return text.replace("%{", "%" + JOINER + "{")
    if target in ("i3blocks", "waybar"):
        return text.translate(_PANGO)
    if target == "swiftbar":
        # SwiftBar (and xbar) end the title at the first ``|`` (its parameters follow), read
        # a backslash and ``n`` as a line break, and a streamable plugin starts a new update
        # at ``~~~`` anywhere in its output.  A line's leading ``-`` is handled in encode.
        text = text.replace("|", "\u2223").replace("\\n", "\\" + JOINER + "n")
        while "~~" in text:
            text = text.replace("~~", "~" + JOINER + "~")
        return text
    return text


def encode(found: list[Span], target: str, color: bool = True) -> str:
    if target not in TARGETS:
        raise TemplateError(f"unknown target '{target}' (targets: {', '.join(TARGETS)}, json)")
    coloured = color and target in SPAN_COLOURED
    # runs of one colour, each escaped as one text: what a host reads across two spans
    # (polybar's ``%`` then ``{``, SwiftBar's ``~`` then ``~~``) is escaped as it reads it
    bodies: list[str] = []
    levels: list[str | None] = []
    for text, level in found:
        # the time-left placeholder passes as the block.left field, not inside other text
        body = clean(text.replace("\n", " ").replace("\t", " "), SPAN_LIMIT,
                     LEFT if text == LEFT else "")
        level = level if coloured else None
        if levels and levels[-1] == level:
            bodies[-1] += body
        else:
            bodies.append(body)
            levels.append(level)
    out = "".join(_wrap(escape(body, target), level, target)
                  for body, level in zip(bodies, levels, strict=True))
    if target == "swiftbar" and out.lstrip().startswith("-"):
        out = JOINER + out  # a line of ``---`` is a separator, ``--`` a submenu's item
    return out


def _wrap(body: str, level: str | None, target: str) -> str:
    if level is None:
        return body
    if target == "zsh":
        return f"%F{{{_NAMES[level]}}}{body}%f"
    if target == "bash":
        return f"\001{_ANSI[level]}\002{body}\001\033[0m\002"
    if target == "tmux":
        return f"#[fg={_NAMES[level]}]{body}#[default]"
    if target == "polybar":
        return f"%{{F{colour(level, target)}}}{body}%{{F-}}"
    if target == "i3blocks":
        return f'<span foreground="{colour(level, target)}">{body}</span>'
    return f"{_ANSI[level]}{body}\033[0m"  # ansi, fish: fish prompts print raw escapes


def level_of(percent: float | None, warn: float, critical: float) -> str | None:
    if percent is None:
        return None
    if percent >= critical:
        return CRIT
    if percent >= warn:
        return WARN
    return None
