"""Compiled Codex rollout reader (ext/_codex_c.pyx); twin: tokline/engine/_codex_py.py."""

from typing import Any

def candidate_lines(buf: Any, start: int, end: int, needles: tuple[bytes, ...]
                    ) -> list[bytes]: ...
def codex_events(buf: Any, start: int, end: int, needles: tuple[bytes, ...]) -> list[Any]: ...
