"""A throwaway PostgreSQL cluster for the team server's tests and bench (issue 17).

``initdb`` in a temporary directory, ``pg_ctl start`` listening on 127.0.0.1 and a free
port (its socket in that directory too, so nothing of the machine's own clusters is
touched), trust authentication, stopped and removed at the end.  PostgreSQL refuses to
run as root: as root both run as the ``postgres`` user (the Debian package makes it), in
a directory given to that user; as anyone else, as themselves.

The ``postgres`` fixture (session scope) hands out one cluster; ``Cluster.new_database``
makes a fresh database per test module, so the legs of a test never see each other's
rows.  Without PostgreSQL the fixture skips, saying why (.ci/run installs it).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

START_TIMEOUT_S = 60


class Unavailable(Exception):
    """No cluster can be started here; the message says why."""


def binaries() -> Path | None:
    """The directory of initdb and pg_ctl: PATH, else the newest /usr/lib/postgresql/*."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Cluster:
    def __init__(self, bindir: Path, root: Path, port: int, as_user: dict[str, Any],
                 settings: dict[str, str]) -> None:
        self.bindir, self.root, self.port = bindir, root, port
        self.data = root / "data"
        self.as_user = as_user
        self.settings = settings
        self.count = 0

    def _run(self, *argv: str, timeout: float = START_TIMEOUT_S) -> None:
        done = subprocess.run([str(self.bindir / argv[0]), *argv[1:]], cwd=self.root,
                              capture_output=True, text=True, timeout=timeout, check=False,
                              **self.as_user)
        if done.returncode != 0:
            raise Unavailable(f"{argv[0]} failed: {(done.stderr or done.stdout).strip()[-800:]}")

    def initdb(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")

    def start(self) -> None:
        options = [f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root}"]
        options += [f"-c {k}={v}" for k, v in self.settings.items()]
        self._run("pg_ctl", "-D", str(self.data), "-o", " ".join(options),
                  "-l", str(self.root / "server.log"), "-t", str(START_TIMEOUT_S), "-w",
                  "start")

    def stop(self) -> None:
        with contextlib.suppress(Unavailable, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop",
                      timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "t") -> str:
        """A new, empty database; its URL."""
        import psycopg

        self.count += 1
        name = f"{prefix}_{os.getpid()}_{self.count}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def start_cluster(settings: dict[str, str] | None = None) -> Cluster:
    """A running cluster; Unavailable with the reason when there can be none."""
    bindir = binaries()
    if bindir is None:
        raise Unavailable("PostgreSQL is not installed (apt-get install postgresql; "
                          ".ci/run does)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise Unavailable("psycopg is not installed (pip install 'tokline[server]')") from None
    root = Path(tempfile.mkdtemp(prefix="tokline-pg-"))
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            raise Unavailable("running as root and there is no postgres user to run "
                              "PostgreSQL as (it refuses root)") from None
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
    cluster = Cluster(bindir, root, free_port(), as_user, settings or {})
    try:
        cluster.initdb()
    except (Unavailable, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise Unavailable(str(exc)) from None
    last = ""
    for _ in range(3):  # a port taken between the probe and the start: try another
        try:
            cluster.start()
            return cluster
        except (Unavailable, subprocess.TimeoutExpired) as exc:
            last = str(exc)
            cluster.port = free_port()
    cluster.stop()
    raise Unavailable(f"PostgreSQL did not start: {last}")


# Throwaway data: durability buys the tests nothing (the bench keeps the defaults).
TEST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                 "max_connections": "300"}


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    try:
        cluster = start_cluster(TEST_SETTINGS)
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()
