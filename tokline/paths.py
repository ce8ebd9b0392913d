"""Where tokline keeps its files (XDG base directories, via xdg-base-dirs).

The prompt's fast path must not import pathlib-based helpers, so
tokline/prompt/statefiles.py and tokline/prompt/uptodate.py compute the same
directories from os.environ alone; tests/test_incremental.py keeps the two in step.

:func:`require_private` refuses a directory another user owns or may write to (the rule of
tokline.prompt.statefiles.dir_problem), with a one-line ToklineError: the ledger's data
dir is checked whenever :func:`ledger_file` names it.  A path given in TOKLINE_LEDGER or
TOKLINE_CONFIG is the user's own choice and is not checked.
"""

from __future__ import annotations

import os
from pathlib import Path

from xdg_base_dirs import xdg_config_home, xdg_data_home, xdg_state_home

from tokline.errors import ToklineError
from tokline.prompt.statefiles import dir_problem, refusal

APP = "tokline"


def config_dir() -> Path:
    return xdg_config_home() / APP


def data_dir() -> Path:
    return xdg_data_home() / APP


def state_dir() -> Path:
    return xdg_state_home() / APP


def require_private(directory: Path) -> Path:
    """``directory`` when it is missing or the user's own and private; else ToklineError."""
    problem = dir_problem(os.fspath(directory))
    if problem is not None:
        raise ToklineError(refusal(os.fspath(directory), problem))
    return directory


def config_file() -> Path:
    override = os.environ.get("TOKLINE_CONFIG")
    return Path(override) if override else config_dir() / "config.toml"


def ledger_file() -> Path:
    override = os.environ.get("TOKLINE_LEDGER")
    return Path(override) if override else require_private(data_dir()) / "ledger.sqlite3"
