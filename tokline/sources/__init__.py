"""Log sources: where each assistant keeps its files and how its records become usage rows.

``ALL`` is the one list of them: the refresh walks their roots, ``tokline watch`` waits on
them, ``tokline doctor`` shows them and ``--source`` takes their names.  A source with no
files (Cursor: the background refresh fetches its usage from its web API,
tokline/remote/cursor.py) has no roots, and its module's ``ORIGIN`` says where its usage
comes from instead.  Each module is imported when first asked for, so importing this
package costs nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


class Source:
    """One assistant's logs: its name (that of its module here, and its ``NAME``) and
    whether its files are read whole on each change (tokline/sources/documents.py)
    rather than from the last offset (JSON lines: Claude Code, Codex).  ``appended``
    sources keep JSON lines too, read from the last offset one record at a time by
    their module's ``take`` (tokline/sources/documents.py ``parse_lines``)."""

    __slots__ = ("appended", "name", "whole_files")

    def __init__(self, name: str, whole_files: bool, appended: bool = False) -> None:
        self.name = name
        self.whole_files = whole_files
        self.appended = appended

    def __repr__(self) -> str:
        return f"Source({self.name!r})"

    @property
    def module(self) -> Any:
        import importlib  # noqa: PLC0415 - only once a source is used

        return importlib.import_module(f"{__name__}.{self.name}")

    def roots(self, env: Mapping[str, str] | None = None) -> list[str]:
        """The directories of its logs that exist."""
        return self.module.roots(env)  # type: ignore[no-any-return]

    def candidate_roots(self, env: Mapping[str, str] | None = None) -> list[str]:
        """Where its logs would be."""
        return self.module.candidate_roots(env)  # type: ignore[no-any-return]


ALL = (Source("claude", False), Source("codex", False), Source("gemini", True),
       Source("opencode", True), Source("copilot", True),
       Source("qwen", False, appended=True), Source("pi", False, appended=True),
       Source("kimi", False, appended=True), Source("roo", True),
       Source("cline", True), Source("kilo", True), Source("amp", True),
       # running totals (tokline/sources/totals.py)
       Source("droid", True), Source("goose", True), Source("crush", True),
       # no files: its usage comes from its web API (tokline/remote/cursor.py)
       Source("cursor", False))
NAMES = tuple(source.name for source in ALL)
