from typing import Any

from tokline.records import Record

def scan(buf: Any, start: int) -> tuple[list[Record], int, int]: ...
