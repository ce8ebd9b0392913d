"""Bring the server's database to the newest schema with Alembic (tokline/server/migrations)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from tokline.server.db import writer

SCRIPTS = Path(__file__).parent / "migrations"


def migrate(engine: Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    with writer(engine).begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
