"""Where tokline keeps its files (XDG base directories, via xdg-base-dirs).

The prompt's fast path must not import pathlib-based helpers, so
tokline/prompt/statefiles.py and tokline/prompt/uptodate.py compute the same
directories from os.environ alone; tests/test_incremental.py keeps the two in step.
"""

from __future__ import annotations

import os
from pathlib import Path

from xdg_base_dirs import xdg_config_home, xdg_data_home, xdg_state_home

APP = "tokline"


def config_dir() -> Path:
    return xdg_config_home() / APP


def data_dir() -> Path:
    return xdg_data_home() / APP


def state_dir() -> Path:
    return xdg_state_home() / APP


def config_file() -> Path:
    override = os.environ.get("TOKLINE_CONFIG")
    return Path(override) if override else config_dir() / "config.toml"


def ledger_file() -> Path:
    override = os.environ.get("TOKLINE_LEDGER")
    return Path(override) if override else data_dir() / "ledger.sqlite3"
