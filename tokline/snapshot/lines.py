"""``status.lines``: the configured template pre-rendered for every one-line target
(template.LINE_TARGETS), in up to five variants that take over at the day's and the
block's end and at the first two quota changes (tokline/prompt/statefiles.py describes the
file; the prompt's readers only pick a variant and fill in the time left)."""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from collections.abc import Mapping

from tokline.accounting.localtime import resolve_zone
from tokline.config import Config
from tokline.errors import ToklineError
from tokline.prompt import lightjson, quotaview
from tokline.prompt import template as render
from tokline.prompt.fields import as_of, field_values
from tokline.prompt.statefiles import (
    LINES,
    LINES_MAGIC,
    SNAPSHOT,
    config_stamp,
    dir_problem,
    refusal,
    state_dir,
    write_private,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


QUOTA_MARKS = 2  # quota changes pre-rendered; a later one waits for the refresh


def boundaries(snap: Mapping[str, Any]) -> list[float]:
    """Times at which the rendered line changes without new data: the day's and the
    active block's end, and the first QUOTA_MARKS quota changes (a window's reset, its
    figure back at 0 %; a figure turning old, marked ``*``).  Each variant is rendered
    at its mark, so each reads right however many marks have passed; once one passes,
    the prompt also starts a refresh, which renders the line anew (statefiles.touch
    says it must) with the changes after it."""
    marks = [float(snap["today"]["end"])]
    block = snap.get("block") or {}
    if block.get("active"):
        marks.append(float(block["end"]))
    made = float(snap.get("generated_at") or 0)
    changes = [m for m in quotaview.changes_at(as_of(snap, made)["quota"], made)
               if m < marks[0]]  # the day's end renders every window anew anyway
    marks += sorted(changes)[:QUOTA_MARKS]
    # whole seconds, up: the variant rendered at a mark must read the change it marks
    return sorted({float(math.ceil(m)) for m in marks})


def render_lines(snap: Mapping[str, Any], template: str
                 ) -> tuple[list[float], dict[str, list[str]]]:
    """The moments the line changes at (:func:`boundaries`) and, per target and per target
    without colour (``<target>-nc``), the line from now and from each of those moments."""
    parts = render.parse_template(template)
    zone = zone_of(snap)
    marks = boundaries(snap)
    values = [field_values(as_of(snap, moment), zone, moment, left_placeholder=True)
              for moment in (float(snap["generated_at"]), *marks)]
    lines: dict[str, list[str]] = {}
    for target in render.LINE_TARGETS:
        lines[target] = [render.render(parts, fields, target, True) for fields in values]
    for target in render.LINE_TARGETS:
        lines[f"{target}-nc"] = [render.render(parts, fields, target, False)
                                 for fields in values]
    return marks, lines


def zone_of(snap: Mapping[str, Any]) -> dt.tzinfo | None:
    try:
        return resolve_zone(snap.get("timezone") or None)
    except (KeyError, ValueError):
        return None


def write(snap: Mapping[str, Any], cfg: Config, env: Mapping[str, str] = os.environ) -> None:
    directory = state_dir(env)
    problem = dir_problem(directory)
    if problem is not None:  # another user could read, swap or plant what is written
        raise ToklineError(refusal(directory, problem))
    marks, lines = render_lines(snap, cfg.template)
    block = snap.get("block") or {}
    block_end = f"{block['end']:.0f}" if block.get("active") else "-"
    # CHECKED: when the data was known current, the moment the snapshot was computed.
    # Plain decimals only (no "1e+06"): the shells read these with integer arithmetic.
    checked = int(float(snap.get("generated_at") or time.time()))
    head = " ".join([LINES_MAGIC, f"{cfg.refresh_interval_s:.10g}",
                     f"{cfg.stale_after_s:.10g}", config_stamp(env), block_end, f"{checked}",
                     *(f"{m:.0f}" for m in marks)])
    body = "".join(f"{target}\t" + "\t".join(variants) + "\n"
                   for target, variants in lines.items())
    write_private(os.path.join(directory, SNAPSHOT),
                  lightjson.dumps(snap).encode())
    write_private(os.path.join(directory, LINES), (head + "\n" + body).encode())
