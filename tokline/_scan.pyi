from typing import Any

from tokline._scan_py import Record

def scan(buf: Any, start: int) -> tuple[list[Record], int, int]: ...
