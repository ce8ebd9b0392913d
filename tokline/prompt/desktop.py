"""What ``tokline status --target T`` prints, and ``tokline watch --target T`` on each change.

The one-line targets (tokline/prompt/template.py LINE_TARGETS: the shells, tmux, polybar,
i3blocks) print the template rendered with their escaping, then the stale note.  The others
(waybar, swiftbar, sketchybar) wrap it in their host's format and colour the whole item by
the highest threshold level of the fields (fields.top_level, an editor's ``rendered.level``):

* waybar: one JSON object, ``text`` (Pango, escaped), ``tooltip`` (the menu below),
  ``class`` ("ok", "warn" or "crit") and ``percentage`` (:func:`percent`), for a
  ``"return-type": "json"`` module;
* swiftbar: a SwiftBar/xbar plugin's output: the title line, ``---``, the menu lines, each
  with ``color=`` at its level;
* sketchybar: the arguments of ``sketchybar --set NAME``, one a line (``label=…``,
  ``label.color=0xff……``), which the item script passes on as they are.

Escaping and colours are template.encode's and template.colour's alone.  Stdlib only.
"""

from __future__ import annotations

import datetime as dt

from tokline.prompt import lightjson, quotaview
from tokline.prompt import template as render
from tokline.prompt.fields import field_values, note_of, top_level

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# SwiftBar turns ``:name:`` into an SF Symbol or an emoji unless told not to (xbar ignores
# symbolize and takes emojize)
SWIFTBAR_PLAIN = "symbolize=false emojize=false"
PERIODS = (("today", "Today"), ("week", "This week"), ("month", "This month"))


def output(target: str, view: Mapping[str, Any], parts: list[str | render.Field | render.Group],
           now_s: float, age_s: float | None, zone: dt.tzinfo | None = None,
           color: bool = True) -> str:
    """The text of ``target`` for the snapshot ``view`` (fields.as_of) at ``now_s``, its data
    ``age_s`` old; no final newline."""
    values = field_values(view, zone, now_s)
    note = note_of(view, age_s)
    if target in render.LINE_TARGETS:
        return render.render(parts, values, target, color) + note
    line = [*(render.spans(parts, values) or []), (note, None)]
    level = top_level(values)
    if target == "waybar":
        tooltip = "\n".join(render.encode(spans, target) for spans in menu(view, values))
        return lightjson.dumps({"text": render.encode(line, target), "tooltip": tooltip,
                                "class": level or "ok", "percentage": percent(view)})
    if target == "swiftbar":
        out = [_swiftbar(line, level, color), "---"]
        out += [_swiftbar(spans, _level_of(spans), color) for spans in menu(view, values)]
        return "\n".join(out)
    if target == "sketchybar":
        return (f"label={render.encode(line, target)}\n"
                f"label.color={render.colour(level if color else None, target)}")
    raise render.TemplateError(f"unknown target '{target}'")


def _swiftbar(spans: list[render.Span], level: str | None, color: bool) -> str:
    shade = f" color={render.colour(level, 'swiftbar')}" if color and level else ""
    return f"{render.encode(spans, 'swiftbar')} | {SWIFTBAR_PLAIN}{shade}"


def _level_of(spans: list[render.Span]) -> str | None:
    return top_level({str(n): span for n, span in enumerate(spans)})


def menu(view: Mapping[str, Any], values: Mapping[str, render.Value | None]
         ) -> list[list[render.Span]]:
    """The lines of a tooltip or a menu: the periods, the block, every quota window and
    budget, each as spans with the fields' levels."""
    lines: list[list[render.Span]] = []
    for name, label in PERIODS:
        cost, tokens = values.get(f"{name}.cost"), values.get(f"{name}.tokens")
        if cost is not None:
            lines.append([(f"{label} ", None), cost,
                          *([(f" · {tokens[0]} tokens", None)] if tokens else [])])
    if values.get("block.cost") is not None:
        lines.append([("5h block ", None),
                      *_parts(values, ("block.cost", "{}"), ("block.pct", " · {}"),
                              ("block.left", " · {} left"), ("block.end", " (ends {})"),
                              ("block.burn", " · {}"))])
    for entry in view.get("quota") or []:
        prefix = f"quota.{entry['source']}.{entry['window']}"
        if values.get(prefix) is not None:
            lines.append([(f"{entry['source']} {entry['window']} ", None),
                          *_parts(values, (prefix, "{}"), (f"{prefix}.reset", " · resets {}"),
                                  (f"{prefix}.pace", " · pace {}"),
                                  (f"{prefix}.runout", " · runs out {}"),
                                  (f"{prefix}.as_of", " · as of {}"))])
    for name in ("daily", "weekly", "monthly"):
        if values.get(f"budget.{name}.left") is not None:
            lines.append([(f"Budget {name} ", None),
                          *_parts(values, (f"budget.{name}.left", "{} left"),
                                  (f"budget.{name}.pct", " ({} used)"))])
    return lines


def _parts(values: Mapping[str, render.Value | None], *wanted: tuple[str, str]
           ) -> list[render.Span]:
    """The spans of the fields that have a value, each in its words (``"{}"`` the value)."""
    out: list[render.Span] = []
    for name, words in wanted:
        value = values.get(name)
        if value is None or value[0] == "":
            continue
        before, _, after = words.partition("{}")
        out += [(before, None), value, (after, None)]
    return [span for span in out if span[0]]


def percent(view: Mapping[str, Any]) -> int:
    """The percentage closest to a limit, 0 when there is none: the binding quota window
    (quotaview.binding), the active block's share of its limit, a budget's."""
    found: list[float] = []
    bound = quotaview.binding(view.get("quota") or [])
    if bound is not None:
        found.append(float(bound["used_percent"]))
    block = view.get("block") or {}
    if block.get("active") and isinstance(block.get("used_percent"), (int, float)):
        found.append(float(block["used_percent"]))
    for entry in (view.get("budget") or {}).values():
        if isinstance(entry.get("used_percent"), (int, float)):
            found.append(float(entry["used_percent"]))
    return max(0, round(max(found))) if found else 0
