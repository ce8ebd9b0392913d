"""Bring the ledger up to date with the logs on disk: one transaction per refresh."""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tokline import discover, logscan, manifest
from tokline._speedups import USE_EXTENSIONS, scan
from tokline.ledger import FileState, Ledger, UsageRow
from tokline.sources import claude

AHEAD_FILES = 16  # files scanned ahead of the writer: bounds memory on a cold scan
FLUSH_ROWS = 8_000  # rows held before they are written: inserts overlap the scanning threads


@dataclass
class RefreshReport:
    files_seen: int = 0
    files_scanned: int = 0
    files_rescanned: int = 0
    bytes_scanned: int = 0
    records: int = 0
    malformed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.files_scanned > 0


Progress = Callable[[int, int], None]  # (bytes done, bytes total)


def refresh(ledger: Ledger, env: dict[str, str] | None = None,
            progress: Progress | None = None) -> RefreshReport:
    env = dict(os.environ) if env is None else env
    report = RefreshReport()
    candidates = claude.candidate_roots(env)
    found = discover.walk(claude.roots(env), ".jsonl")
    report.problems.extend(found.problems)
    report.files_seen = len(found.files)
    try:
        with ledger.write(), ledger.bulk_load():
            _ingest(ledger, found, report, progress)
    except BaseException:
        ledger.forget_context_cache()
        raise
    write_manifest(ledger, env, candidates, found)
    return report


def write_manifest(ledger: Ledger, env: dict[str, str], candidates: list[str],
                   found: discover.Found) -> None:
    """Record what this refresh saw (after its commit), for the no-change fast path."""
    entries: list[manifest.Entry] = [
        (b"m", 0, 0, 0, root) for root in candidates if root not in found.dirs]
    entries += [(b"d", 0, 0, mtime, path) for path, mtime in found.dirs.items()]
    entries += [(b"f", st.st_ino, st.st_size, st.st_mtime_ns, path)
                for path, st in found.files.items()]
    target = manifest_path(str(ledger.path))
    tmp = f"{target}.{os.getpid()}.tmp"
    try:
        data = manifest.encode(manifest.env_key(env), os.stat(ledger.path).st_ino, entries)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # the next refresh does the full walk again; nothing is lost


def manifest_path(ledger_path: str) -> str:
    return ledger_path + ".manifest"


def _ingest(ledger: Ledger, found: discover.Found, report: RefreshReport,
            progress: Progress | None) -> None:
    known = ledger.file_states(claude.NAME)
    had_rows = bool(known)
    work = [
        (path, st, known.get(path))
        for path, st in sorted(found.files.items())
        if not logscan.unchanged(known.get(path), st)
    ]
    if not work:
        return
    total_bytes = sum(st.st_size - (k.offset if k else 0) for _, st, k in work)
    done_bytes = 0
    sidechain_ids: set[str] = set()
    main_ids: set[str] = set()
    pending: list[UsageRow] = []

    def one(item: tuple[str, os.stat_result, FileState | None]) -> logscan.FileScan | str:
        path, st, prior = item
        try:
            return logscan.scan_file(path, claude.NAME, st, prior, scan)
        except OSError as exc:
            return f"cannot read {path}: {exc.strerror}"

    workers = 2 if USE_EXTENSIONS and len(work) > 1 else 1
    states: list[FileState] = []
    queue = iter(work)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # A sliding window of files in flight keeps both scanner threads busy while this
        # thread writes rows, without holding more than a few files' records at once.
        inflight = deque(pool.submit(one, item) for item in itertools.islice(queue, AHEAD_FILES))
        while inflight:
            result = inflight.popleft().result()
            following = next(queue, None)
            if following is not None:
                inflight.append(pool.submit(one, following))
            if isinstance(result, str):
                report.problems.append(result)
                continue
            pending.extend(claude.usage_rows(result.records, result.state.path,
                                             ledger.context_id, sidechain_ids, main_ids))
            states.append(result.state)
            report.files_scanned += 1
            report.files_rescanned += result.rescanned
            report.bytes_scanned += result.scanned_bytes
            report.records += len(result.records)
            prior = known.get(result.state.path)
            report.malformed += result.state.malformed - (
                prior.malformed if prior is not None and not result.rescanned else 0)
            done_bytes += result.scanned_bytes
            if len(pending) >= FLUSH_ROWS:
                ledger.upsert_usage(pending)
                pending = []
                ledger.save_files(states)
                states = []
                if progress is not None:
                    progress(done_bytes, total_bytes)
    ledger.save_files(states)
    ledger.upsert_usage(pending)
    # A main-conversation row that arrives after its sidechain replay must shadow it too.
    ledger.shadow_sidechain_replays(sidechain_ids | (main_ids if had_rows else set()))


def print_problems(report: RefreshReport) -> None:
    for problem in report.problems:
        print(f"tokline: {problem}", file=sys.stderr)
