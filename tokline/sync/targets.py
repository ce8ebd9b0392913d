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
import os
import shlex
import signal
import subprocess
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import IO, TypeVar

from tokline.sync.segments import MAX_COMPRESSED, parse_name

STALE_TMP_S = 3600.0  # a temporary file this old was left by a killed sync


class Unreachable(Exception):
    """The target cannot be used now (unmounted, ssh down); the message says why."""


class Target:
    label: str

    def names(self) -> list[str]:
        """Every segment's name (other files are not listed)."""
        raise NotImplementedError

    def fetch(self, names: Iterable[str]) -> dict[str, bytes]:
        """The bytes of the named segments; one that vanished meanwhile is left out.
        One ``read`` each; a target with a cheaper batch (ssh) does its own."""
        out = {}
        for name in names:
            if parse_name(name) is not None:
                data = self.read(name)
                if data is not None:
                    out[name] = data
        return out

    def read(self, name: str) -> bytes | None:
        """One segment's bytes (a valid name), None when it vanished."""
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
        raise ValueError(f"unknown sync target {redact(text)!r}: a directory, "
                         "ssh://[user@]host/path or a tokline server's https:// address")
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

    def read(self, name: str) -> bytes | None:
        try:
            with open(os.path.join(self.root, name), "rb") as fh:
                return fh.read(MAX_COMPRESSED + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise Unreachable(f"{self.root}/{name}: {exc.strerror or exc}") from None

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


# The ssh target.  Every command is one line of POSIX sh run as ``sh -c '…'``, so the
# user's login shell (bash, zsh, fish, tcsh…) only has to start ``sh``; the script avoids
# ``!`` (csh history) and anything beyond POSIX (macOS, the BSDs and busybox run it too).
SSH_TIMEOUT_S = 120.0  # one ssh command, plus the time its bytes may take at MIN_RATE
MIN_RATE = 64 << 10  # bytes per second a transfer may be as slow as
LIST_LIMIT = 64 << 20  # bytes of a listing's answer
FETCH_BATCH = 50  # segments in one tar
# As scp does: no pty (it would mangle the tar stream), no X11 or agent forwarding, none
# of the config's port forwardings (a busy port would fail the connection) nor its
# LocalCommand; BatchMode: never a password or host-key prompt (the background has no
# one to answer it); ServerAlive: a link that died mid-transfer ends ssh within 45 s.
SSH_OPTIONS = ("-T", "-x", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
               "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3",
               "-o", "ForwardAgent=no", "-o", "ClearAllForwardings=yes",
               "-o", "PermitLocalCommand=no")
# exit codes of the remote scripts (ssh's own failures are 255)
_NO_DIR, _MKDIR, _WRITE, _EXISTS, _NOT_DIR, _NO_TAR, _SHORT = 3, 4, 5, 6, 7, 8, 9
_T = TypeVar("_T")


def redact(text: str) -> str:
    """``text`` fit for messages and sync-state.json: a URL's password hidden."""
    scheme, sep, rest = text.partition("://")
    authority, slash, path = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return text
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{hostport}{slash}{path}"


def _controls(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


class SshTarget(Target):
    def __init__(self, url: str) -> None:
        usage = f"sync target {redact(url)!r}: expected ssh://[user@]host[:port]/path"
        if _controls(url):
            raise ValueError("sync target: an ssh:// URL with a control character")
        try:
            parsed = urllib.parse.urlsplit(url)
            port = parsed.port
        except ValueError:
            raise ValueError(usage) from None
        if parsed.password is not None:  # said without the URL, which holds it
            raise ValueError("sync target: ssh:// takes no password (ssh uses its keys, "
                             "agent and config); remove ':<password>' from the URL")
        host = parsed.hostname
        path = urllib.parse.unquote(parsed.path)
        user = urllib.parse.unquote(parsed.username or "") or None
        if not host or not path.startswith("/") or path == "/" or port == 0:
            raise ValueError(usage)
        if parsed.query or parsed.fragment:
            raise ValueError(f"{usage} (write ? and # of a path as %3F and %23)")
        # a host or user that ssh would take for an option (CVE-2017-1000117 in git)
        if host.startswith("-") or (user or "").startswith("-") or _controls(path + (user or "")):
            raise ValueError(usage)
        self.host, self.user, self.port = host, user, port
        # ssh://host/path is /path; ssh://host/~/path is path in the remote home ($HOME,
        # as ~ is to the shell, not the directory sshd starts in)
        if path == "/~" or path.startswith("/~/"):
            rest = path[3:].lstrip("/")
            self.path = "~/" + rest if rest else "~"
            self._dir = '"$HOME"' + (f"/{shlex.quote(rest)}" if rest else "")
        elif path.startswith("/~"):
            raise ValueError(f"sync target {url!r}: ~user is not supported; use "
                             "ssh://host/~/path (the remote home) or an absolute path")
        else:
            self.path = path
            self._dir = shlex.quote(path)
        self.label = url

    # running one script on the other side

    def _argv(self, script: str) -> list[str]:
        try:
            base = shlex.split(os.environ.get("TOKLINE_SSH_COMMAND") or "ssh")
        except ValueError as exc:
            raise ValueError(f"TOKLINE_SSH_COMMAND: {exc}") from None
        argv = [*(base or ["ssh"]), *SSH_OPTIONS]
        if self.port:
            argv += ["-p", str(self.port)]
        if self.user:
            argv += ["-l", self.user]
        # "--" ends ssh's options before the host: nothing after it is read as one
        return [*argv, "--", self.host, "sh -c " + shlex.quote(script)]

    def _run(self, script: str, read: Callable[[IO[bytes]], _T], data: bytes = b"",
             timeout_s: float | None = None) -> _T:
        """Run ``script`` there with ``data`` on its stdin; ``read`` consumes its stdout.
        Unreachable with one line saying why when ssh or the script fails."""
        timeout_s = SSH_TIMEOUT_S if timeout_s is None else timeout_s
        argv = self._argv(script)
        try:
            # its own session: no terminal to prompt on, and a timeout ends the whole
            # group (a wrapper in TOKLINE_SSH_COMMAND and its ssh alike)
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE if data else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True)
        except FileNotFoundError:
            raise Unreachable(f"{argv[0]} not found: install the OpenSSH client or set "
                              "TOKLINE_SSH_COMMAND") from None
        except OSError as exc:
            raise Unreachable(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        assert proc.stdout is not None and proc.stderr is not None
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            _kill(proc)

        timer = threading.Timer(timeout_s, expire)
        tail = bytearray()
        helpers = [threading.Thread(target=_drain, args=(proc.stderr, tail), daemon=True)]
        if data:
            helpers.append(threading.Thread(target=_feed, args=(proc.stdin, data),
                                            daemon=True))
        failure: Exception | None = None
        killed = False
        try:
            timer.start()
            for helper in helpers:
                helper.start()
            try:
                result = read(proc.stdout)
            except (tarfile.TarError, EOFError, OSError, _Unusable) as exc:
                failure = exc
            # What follows the answer (a tar's padding, junk), so the other side can
            # finish; more than a little of it: the answer was not what the script says
            if len(proc.stdout.read(1 << 20)) == 1 << 20:
                failure = failure or _Unusable("longer than its script writes")
                killed = True
                _kill(proc)
            proc.wait()
            for helper in helpers:
                helper.join(5.0)
        finally:
            timer.cancel()
            if proc.returncode is None:  # an exception (^C) on our side: end it now
                _kill(proc)
                proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if expired.is_set():
            raise Unreachable(f"no answer from {self.host} within {timeout_s:.0f} s")
        if proc.returncode != 0 and not killed:
            raise Unreachable(self._why(proc.returncode, bytes(tail)))
        if failure is not None:
            raise Unreachable(f"unreadable answer from {self.host} ({failure}); does a "
                              "shell start-up file there print something?")
        return result

    def _why(self, code: int, stderr: bytes) -> str:
        """One line for a failed command: ssh's last word, or what the script's exit
        code means."""
        from tokline.prompt.safetext import clean  # noqa: PLC0415 - only on failures

        lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines()]
        last = clean(next((ln for ln in reversed(lines) if ln), ""), 300)
        where = f"{self.path} on {self.host}"
        if code == _NO_DIR:
            return f"{where} does not exist; if this is the first device, create it: " \
                   + self._mkdir_hint()
        known = {_NOT_DIR: f"{where} is not a directory or cannot be entered",
                 _MKDIR: f"cannot create a folder in {where}",
                 _WRITE: f"cannot write in {where} (disk full? permissions?)",
                 _EXISTS: f"a segment of this device already exists in {where} (two "
                          "syncs of this device at once?)",
                 _NO_TAR: f"tar is not installed on {self.host}",
                 _SHORT: f"a segment arrived incomplete in {where} (connection cut?)"}
        if code in known:
            return known[code]
        if code == 255:  # ssh's own: connection, host key, authentication
            return last or "ssh failed (exit 255)"
        return f"the command failed on {self.host} (exit {code}{': ' + last if last else ''})"

    def _mkdir_hint(self) -> str:
        """The command that makes the directory, to paste in a shell: the remote shell
        splits the command again, hence the quoting twice (and ~/x as x: ssh starts in
        the home directory, and a quoted ~ is not expanded)."""
        where = self.path[2:] if self.path.startswith("~/") else self.path
        words = ["ssh", *(["-p", str(self.port)] if self.port else []),
                 f"{self.user}@{self.host}" if self.user else self.host,
                 f'"mkdir -p {shlex.quote(where)}"' if not set(where) & set('"$`\\!')
                 else shlex.quote("mkdir -p " + shlex.quote(where))]
        return " ".join(words)

    def _enter(self) -> str:
        return (f'd={self._dir}; [ -d "$d" ] || {{ [ -e "$d" ] && exit {_NOT_DIR}; '
                f'exit {_NO_DIR}; }}; cd "$d" || exit {_NOT_DIR}')

    # the Target interface

    def names(self) -> list[str]:
        # builtins only: one process on the other side whatever the number of segments;
        # a symbolic link is not a segment (nor is it for the directory target)
        out = self._run(self._enter() + '; for f in */seg-*.tlseg; do if [ -f "$f" ];'
                        " then [ -h \"$f\" ] || printf '%s\\n' \"$f\"; fi; done; exit 0",
                        _limited(LIST_LIMIT))
        return sorted(name for name in out.decode("utf-8", "replace").splitlines()
                      if parse_name(name))

    def fetch(self, names: Iterable[str]) -> dict[str, bytes]:
        wanted = [name for name in names if parse_name(name)]
        out: dict[str, bytes] = {}
        for start in range(0, len(wanted), FETCH_BATCH):
            batch = wanted[start:start + FETCH_BATCH]
            # Names are checked (hex/seg-digits.tlseg): no quoting or "--" needed.  tar
            # leaves out (and complains of) files that vanished meanwhile: not a
            # failure.  COPYFILE_DISABLE: macOS tar adds no ._ files for xattrs.
            script = (self._enter() + f"; command -v tar >/dev/null 2>&1 || exit {_NO_TAR};"
                      f" COPYFILE_DISABLE=1 tar -cf - {' '.join(batch)} 2>/dev/null; exit 0")
            out.update(self._run(script, _untar(set(batch)),
                                 timeout_s=SSH_TIMEOUT_S + len(batch) * MAX_COMPRESSED / MIN_RATE))
        return out

    def put(self, name: str, data: bytes) -> None:
        if parse_name(name) is None:
            raise ValueError(f"not a segment name: {name!r}")
        folder, _base = name.split("/")
        # The directory target's steps: a dot-named temporary file, its size checked (a
        # cut connection ends cat's input early, and a short file must never become a
        # segment), sync, then a rename that never replaces a segment.  Temporary files
        # a killed sync left are dropped after a day.
        self._run(
            self._enter() + f"; [ -e {name} ] && exit {_EXISTS}; mkdir -p {folder} || exit"
            f" {_MKDIR}; find {folder} -name '.seg-*.tmp' -type f -mtime +0 -exec rm -f"
            " {} + 2>/dev/null;"
            f' t={folder}/.{_base}.$$.tmp; cat >"$t" || {{ rm -f "$t"; exit {_WRITE}; }};'
            f' [ $(wc -c <"$t") -eq {len(data)} ] || {{ rm -f "$t"; exit {_SHORT}; }};'
            f' sync "$t" 2>/dev/null || sync; [ -e {name} ] && {{ rm -f "$t"; exit {_EXISTS};'
            f' }}; mv "$t" {name} || {{ rm -f "$t"; exit {_WRITE}; }}; exit 0',
            _limited(1 << 20), data, SSH_TIMEOUT_S + len(data) / MIN_RATE)


class _Unusable(Exception):
    """An answer that cannot be what the script prints."""


def _limited(limit: int) -> Callable[[IO[bytes]], bytes]:
    def read(stream: IO[bytes]) -> bytes:
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise _Unusable(f"more than {limit >> 20} MiB")
        return data

    return read


def _untar(wanted: set[str]) -> Callable[[IO[bytes]], dict[str, bytes]]:
    """A reader of a tar stream: the wanted regular files, each read to MAX_COMPRESSED
    + 1 bytes at most (a longer one is then rejected by its size, never held whole)."""
    def read(stream: IO[bytes]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        peek = getattr(stream, "peek", None)
        if peek is not None and not peek(1):
            return out  # every file vanished and this tar wrote nothing
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if member.isfile() and member.name in wanted:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        out[member.name] = handle.read(MAX_COMPRESSED + 1)
        return out

    return read


def _drain(stream: IO[bytes], tail: bytearray) -> None:
    """Read a stream to its end keeping its last 4 KiB (ssh's stderr: its last line
    says what went wrong)."""
    with contextlib.suppress(OSError, ValueError):
        while chunk := stream.read1(1 << 14):  # type: ignore[attr-defined]
            tail += chunk
            del tail[:-4096]


def _feed(stream: IO[bytes], data: bytes) -> None:
    # a script that stops reading (the segment exists, a disk is full) ends the pipe: its
    # exit code says why
    with contextlib.suppress(OSError, ValueError):
        stream.write(data)
    with contextlib.suppress(OSError, ValueError):
        stream.close()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)


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

    def read(self, name: str) -> bytes | None:
        try:
            return self._call("GET", f"/api/v1/sync/segments/{name}")
        except FileNotFoundError:
            return None

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
