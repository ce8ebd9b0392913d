"""Horizontal bars in eighths of a character cell, for charts in reports and the dashboard."""

from __future__ import annotations

EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(value: float, largest: float, width: int, ascii_only: bool = False) -> str:
    """``value`` of ``largest`` as a bar ``width`` cells wide (padded to that width)."""
    if width <= 0:
        return ""
    share = 0.0 if largest <= 0 or value <= 0 else min(1.0, value / largest)
    if ascii_only:
        return ("#" * round(share * width)).ljust(width)
    eighths = round(share * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (EIGHTHS[part] if part else "")
    if value > 0 and not text:
        text = EIGHTHS[1]  # a small value still shows
    return text.ljust(width)


def chart(rows: list[tuple[str, float, str]], width: int, ascii_only: bool = False) -> str:
    """Label, bar and value text per row, bars scaled to the largest value."""
    if not rows:
        return ""
    label_width = max(len(label) for label, _, _ in rows)
    text_width = max(len(text) for _, _, text in rows)
    room = max(8, width - label_width - text_width - 4)
    largest = max(value for _, value, _ in rows)
    return "\n".join(f"{label:<{label_width}}  {bar(value, largest, room, ascii_only)}  "
                     f"{text:>{text_width}}".rstrip() for label, value, text in rows)
