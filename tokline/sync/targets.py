"""Where segments are exchanged: a directory, or one on another machine through ``ssh``.

Both hold the same layout (``<device hex>/seg-<seq>.tlseg``, tokline/sync/segments.py).
A device writes only under its own directory, each file atomically: to a dot-named
temporary file (which no reader lists), fsync, rename.  The ssh target runs the system's
``ssh`` (its config, agent and known_hosts), or the command in TOKLINE_SSH_COMMAND as
git's GIT_SSH_COMMAND does, with POSIX shell commands only: nothing of tokline is needed
on the other side.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import subprocess
import tarfile
import time
import urllib.parse
from collections.abc import Iterable

from tokline.sync.segments import MAX_COMPRESSED, parse_name

SSH_TIMEOUT_S = 120.0  # one ssh command: listing, fetching or writing segments
STALE_TMP_S = 3600.0  # a temporary file this old was left by a killed sync


class Unreachable(Exception):
    """The target cannot be used now (unmounted, ssh down); the message says why."""


class Target:
    label: str

    def names(self) -> list[str]:
        """Every segment's name (other files are not listed)."""
        raise NotImplementedError

    def fetch(self, names: Iterable[str]) -> dict[str, bytes]:
        """The bytes of the named segments; one that vanished meanwhile is left out."""
        raise NotImplementedError

    def put(self, name: str, data: bytes) -> None:
        """Write a new segment of this device atomically."""
        raise NotImplementedError

    def sizes(self, names: Iterable[str]) -> dict[str, int]:
        """The sizes of these segments where telling them is cheap (else none)."""
        return {}


def parse(text: str) -> Target:
    """A target from the config or the command line: a path, ``ssh://…`` or a team
    server's ``https://…`` (``http://`` on loopback only)."""
    if text.startswith("ssh://"):
        return SshTarget(text)
    if text.startswith(("https://", "http://")):
        return ServerTarget(text)
    if "://" in text:
        raise ValueError(f"unknown sync target {text!r}: a directory, ssh://[user@]host/path "
                         "or a tokline server's https:// address")
    return DirectoryTarget(os.path.expanduser(text))


class DirectoryTarget(Target):
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.label = self.root

    def _check(self) -> None:
        if not os.path.isdir(self.root):
            raise Unreachable(f"{self.root} does not exist (not mounted?); create it "
                              f"(mkdir -p {shlex.quote(self.root)}) if this is the first device")

    def names(self) -> list[str]:
        self._check()
        found = []
        try:
            with os.scandir(self.root) as top:
                folders = [entry.name for entry in top if entry.is_dir(follow_symlinks=False)]
            for folder in folders:
                try:
                    with os.scandir(os.path.join(self.root, folder)) as inner:
                        for entry in inner:
                            name = f"{folder}/{entry.name}"
                            if parse_name(name) and entry.is_file(follow_symlinks=False):
                                found.append(name)
                except OSError:
                    continue  # a folder that vanished or cannot be read: not a device's
        except OSError as exc:
            raise Unreachable(f"{self.root}: {exc.strerror or exc}") from None
        return sorted(found)

    def sizes(self, names: Iterable[str]) -> dict[str, int]:
        out = {}
        for name in names:
            if parse_name(name) is not None:
                try:
                    out[name] = os.stat(os.path.join(self.root, name)).st_size
                except OSError:
                    continue
        return out

    def fetch(self, names: Iterable[str]) -> dict[str, bytes]:
        out = {}
        for name in names:
            if parse_name(name) is None:
                continue
            try:
                with open(os.path.join(self.root, name), "rb") as fh:
                    out[name] = fh.read(MAX_COMPRESSED + 1)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise Unreachable(f"{self.root}/{name}: {exc.strerror or exc}") from None
        return out

    def put(self, name: str, data: bytes) -> None:
        self._check()
        if parse_name(name) is None:
            raise ValueError(f"not a segment name: {name!r}")
        folder, base = name.split("/")
        where = os.path.join(self.root, folder)
        os.makedirs(where, exist_ok=True)
        _drop_stale_temporaries(where)
        tmp = os.path.join(where, f".{base}.{os.getpid()}.tmp")
        final = os.path.join(where, base)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            if os.path.exists(final):  # never overwrite: segments are append-only
                raise FileExistsError(final)
            os.rename(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        try:  # the rename itself durable too
            dfd = os.open(where, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass


def _drop_stale_temporaries(folder: str) -> None:
    now = time.time()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith(".seg-") and entry.name.endswith(".tmp"):
                    try:
                        if now - entry.stat(follow_symlinks=False).st_mtime > STALE_TMP_S:
                            os.unlink(entry.path)
                    except OSError:
                        pass
    except OSError:
        pass


class SshTarget(Target):
    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        if not parsed.hostname or not parsed.path or parsed.path == "/":
            raise ValueError(f"sync target {url!r}: expected ssh://[user@]host[:port]/path")
        self.host = parsed.hostname
        self.user = parsed.username
        try:
            self.port = parsed.port
        except ValueError:
            raise ValueError(f"sync target {url!r}: bad port") from None
        # ssh://host/path is /path; ssh://host/~/path is relative to the remote home
        path = urllib.parse.unquote(parsed.path)
        self.path = path[3:] or "." if path.startswith("/~/") else path
        self.label = url

    def _ssh(self, script: str, stdin: bytes = b"") -> bytes:
        base = shlex.split(os.environ.get("TOKLINE_SSH_COMMAND") or "ssh")
        argv = [*base, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        if self.port:
            argv += ["-p", str(self.port)]
        argv += [f"{self.user}@{self.host}" if self.user else self.host, "--", script]
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True,
                                  timeout=SSH_TIMEOUT_S, check=False)
        except FileNotFoundError:
            raise Unreachable(f"{base[0]} is not installed") from None
        except subprocess.TimeoutExpired:
            raise Unreachable(f"{self.label}: ssh took more than {SSH_TIMEOUT_S:.0f} s") \
                from None
        if done.returncode == 3:
            raise Unreachable(f"{self.label}: the directory does not exist on {self.host}; "
                              "create it there if this is the first device")
        if done.returncode != 0:
            why = " ".join(done.stderr.decode("utf-8", "replace").split())[-300:]
            raise Unreachable(f"{self.label}: ssh failed ({why or f'exit {done.returncode}'})")
        return done.stdout

    def _cd(self) -> str:
        return f"cd -- {shlex.quote(self.path)} 2>/dev/null || exit 3"

    def names(self) -> list[str]:
        # builtins only: one process on the other side whatever the number of segments
        out = self._ssh(self._cd() + '; for f in */seg-*.tlseg; do [ -f "$f" ] && '
                        "printf '%s\\n' \"$f\"; done; exit 0")
        return sorted(name for name in out.decode("utf-8", "replace").splitlines()
                      if parse_name(name))

    def fetch(self, names: Iterable[str]) -> dict[str, bytes]:
        wanted = [name for name in names if parse_name(name)]
        out: dict[str, bytes] = {}
        for start in range(0, len(wanted), 200):  # one command line stays short
            batch = wanted[start:start + 200]
            # tar leaves out (and complains of) files that vanished; that is not a failure
            listing = " ".join(shlex.quote(name) for name in batch)
            data = self._ssh(self._cd() + f"; tar -cf - -- {listing} 2>/dev/null; exit 0")
            try:
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                    for member in tar:
                        if member.isfile() and member.name in batch \
                                and member.size <= MAX_COMPRESSED:
                            handle = tar.extractfile(member)
                            if handle is not None:
                                out[member.name] = handle.read()
            except tarfile.TarError as exc:
                if data:
                    raise Unreachable(f"{self.label}: unreadable answer ({exc})") from None
        return out

    def put(self, name: str, data: bytes) -> None:
        if parse_name(name) is None:
            raise ValueError(f"not a segment name: {name!r}")
        folder, base = name.split("/")
        tmp = f"{folder}/.{base}.$$.tmp"
        final = shlex.quote(name)
        # the same steps as the directory target: a dot-named file, sync, then a rename
        # that never replaces an existing segment
        self._ssh(self._cd() + f"; mkdir -p -- {shlex.quote(folder)} || exit 4;"
                  f' t="{tmp}"; cat > "$t" || {{ rm -f "$t"; exit 5; }};'
                  f' if [ -e {final} ]; then rm -f "$t"; exit 6; fi;'
                  f' sync "$t" 2>/dev/null || sync; mv -- "$t" {final}', stdin=data)


SERVER_TIMEOUT_S = 30.0
TOKEN_PROVIDER = "tokline-server"  # the keyring entry of a server's token, by its address


def server_base(url: str) -> str:
    """A server's address as tokens are kept by: scheme, host and port, no trailing /.
    Plain http only to this machine: a token must not cross a network in clear."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise ValueError(f"not a server address: {url!r} (https://host[:port])")
    if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("a tokline server is reached over https (http only on this machine)")
    return f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}"


def server_token(base: str) -> str | None:
    """The token for ``base``: TOKLINE_SERVER_TOKEN, else the keyring (tokline login)."""
    if os.environ.get("TOKLINE_SERVER_TOKEN"):
        return os.environ["TOKLINE_SERVER_TOKEN"]
    from tokline.remote import credentials  # noqa: PLC0415

    try:
        return credentials.get(TOKEN_PROVIDER, base)[0]
    except credentials.SecretStoreError:
        return None


class ServerTarget(Target):
    """A tokline team server: segments pushed with PUT, the person's others listed and
    pulled with GET (tokline/server/app.py)."""

    def __init__(self, url: str) -> None:
        self.base = server_base(url)
        self.label = self.base
        self._token: str | None = None

    def _call(self, method: str, path: str, data: bytes | None = None) -> bytes:
        import urllib.error  # noqa: PLC0415
        import urllib.request  # noqa: PLC0415

        # once per sync, not per segment: each keyring lookup is a round trip to it
        token = self._token = self._token or server_token(self.base)
        if not token:
            raise Unreachable(f"no token for {self.base}: run `tokline login {self.base}`")
        request = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"authorization": f"Bearer {token}", "user-agent": "tokline-sync",
                     "content-type": "application/gzip"})
        try:
            with urllib.request.urlopen(request, timeout=SERVER_TIMEOUT_S) as answer:
                body: bytes = answer.read(MAX_COMPRESSED + 1)
                return body
        except urllib.error.HTTPError as exc:
            reason = _reason(exc.read(2000))
            if exc.code == 401:
                raise Unreachable(f"{self.base} refused the token (run `tokline login "
                                  f"{self.base}` again)") from None
            if exc.code == 404 and method == "GET":
                raise FileNotFoundError(path) from None
            raise Unreachable(f"{self.base}: HTTP {exc.code} {reason}".strip()) from None
        except (urllib.error.URLError, OSError) as exc:
            why = getattr(exc, "reason", exc)
            raise Unreachable(f"{self.base} cannot be reached ({why})") from None

    def names(self) -> list[str]:
        import json  # noqa: PLC0415

        try:
            found = json.loads(self._call("GET", "/api/v1/sync/segments"))
        except ValueError:
            raise Unreachable(f"{self.base}: not a tokline server's answer") from None
        names = found.get("names") if isinstance(found, dict) else None
        return sorted(n for n in names or [] if isinstance(n, str) and parse_name(n))

    def fetch(self, names: Iterable[str]) -> dict[str, bytes]:
        out = {}
        for name in names:
            if parse_name(name) is None:
                continue
            try:
                out[name] = self._call("GET", f"/api/v1/sync/segments/{name}")
            except FileNotFoundError:
                continue
        return out

    def put(self, name: str, data: bytes) -> None:
        if parse_name(name) is None:
            raise ValueError(f"not a segment name: {name!r}")
        self._call("PUT", f"/api/v1/sync/segments/{name}", data)


def _reason(body: bytes) -> str:
    import json  # noqa: PLC0415

    try:
        found = json.loads(body)
    except ValueError:
        return ""
    error = found.get("error") if isinstance(found, dict) else None
    return f"({' '.join(str(error).split())[:300]})" if error else ""
