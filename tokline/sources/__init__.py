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
    their module's ``take`` (tokline/sources/documents.py ``parse_lines``).  ``env`` names
    the environment variables its module reads to find its files, besides the common
    ones (COMMON_ENV)."""

    __slots__ = ("appended", "env", "name", "whole_files")

    def __init__(self, name: str, whole_files: bool, appended: bool = False,
                 env: tuple[str, ...] = ()) -> None:
        self.name = name
        self.whole_files = whole_files
        self.appended = appended
        self.env = env

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


ALL = (Source("claude", False, env=("CLAUDE_CONFIG_DIR",)),
       Source("codex", False, env=("CODEX_HOME",)),
       Source("gemini", True, env=("GEMINI_DATA_DIR",)),
       Source("opencode", True, env=("OPENCODE_DATA_DIR",)),
       Source("copilot", True, env=("COPILOT_HOME",)),
       Source("qwen", False, appended=True, env=("QWEN_RUNTIME_DIR",)),
       Source("pi", False, appended=True, env=("PI_CODING_AGENT_DIR",)),
       Source("kimi", False, appended=True, env=("KIMI_CODE_HOME", "KIMI_SHARE_DIR")),
       Source("roo", True, env=("ROO_TASKS_DIR",)),
       Source("cline", True, env=("CLINE_DATA_DIR", "CLINE_DIR", "CLINE_SESSION_DATA_DIR",
                                  "CLINE_TASKS_DIR")),
       Source("kilo", True, env=("KILO_DB", "KILO_TASKS_DIR")),
       Source("amp", True, env=("AMP_DATA_DIR",)),
       # running totals (tokline/sources/totals.py)
       Source("droid", True, env=("DROID_SESSIONS_DIR",)),
       Source("goose", True, env=("GOOSE_PATH_ROOT",)),
       Source("crush", True, env=("CRUSH_GLOBAL_DATA",)),
       # no files: its usage comes from its web API (tokline/remote/cursor.py)
       Source("cursor", False, env=("TOKLINE_CURSOR_STATE_DB",)))
NAMES = tuple(source.name for source in ALL)
# What every source's locations may depend on: the home and XDG directories, and where a
# portable VS Code keeps the extensions' storage (Roo, Cline, Kilo).
COMMON_ENV = ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "VSCODE_PORTABLE")
# Every environment variable that decides which logs are read (the stat manifest's key).
ENV = COMMON_ENV + tuple(name for source in ALL for name in source.env)
