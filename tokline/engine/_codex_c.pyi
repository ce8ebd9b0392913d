"""Compiled Codex rollout reader (ext/_codex_c.pyx); twin: tokline/engine/_codex_py.py."""

from collections.abc import Callable
from typing import Any

def candidate_lines(buf: Any, start: int, end: int, needles: tuple[bytes, ...]
                    ) -> list[bytes]: ...
def codex_events(buf: Any, start: int, end: int, needles: tuple[bytes, ...]) -> list[Any]: ...
def read_events(buf: Any, start: int, end: int, needles: tuple[bytes, ...], state: Any,
                on_limits: Callable[[int, Any], None], latest: int,
                read_line: Callable[..., int], kept: int) -> tuple[list[Any], int]: ...
