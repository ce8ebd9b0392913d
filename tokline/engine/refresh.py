"""Bring the ledger up to date with the logs on disk: one transaction per refresh."""

from __future__ import annotations

import _thread
import contextlib
import itertools
import os
import sqlite3
import sys
from collections import deque
from collections.abc import Callable, Iterator

from tokline import sources
from tokline.engine import changed as changes
from tokline.engine import discover, filescan, malformed
from tokline.engine.native import USE_EXTENSIONS, scan, scan_deferred
from tokline.ledger.store import CostFn, FileState, Ledger
from tokline.prompt import lightjson, manifest
from tokline.sources import claude, codex, documents, totals

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tokline.accounting.pricing import PriceBook

AHEAD_BATCHES = 3  # batches scanned ahead of the writer: bounds memory on a cold scan
BATCH_BYTES = 8 << 20  # deferred records wait in memory for the writer: keeps peak RSS down


def _scan_threads(value: str | None) -> int:
    """TOKLINE_SCAN_THREADS, 1 to 16; anything else means the default, 2."""
    return int(value) if value and value.isdigit() and 1 <= int(value) <= 16 else 2


SCAN_THREADS = _scan_threads(os.environ.get("TOKLINE_SCAN_THREADS"))
THREADS_FROM_BYTES = 64 << 20  # less than this is scanned faster than threads start
FLUSH_ROWS = 8_000  # rows held before they are written: inserts overlap the scanning threads


class RefreshReport:
    def __init__(self) -> None:
        self.files_seen = 0
        self.files_scanned = 0
        self.files_rescanned = 0
        self.bytes_scanned = 0
        self.records = 0
        self.malformed = 0
        self.problems: list[str] = []
        self.new_problems: list[str] = []  # not reported by an earlier refresh
        self.unread: set[str] = set()  # files that could not be read: tried again next time

    @property
    def changed(self) -> bool:
        return self.files_scanned > 0


Progress = Callable[[int, int], None]  # (bytes done, bytes total)
WorkItem = tuple[str, os.stat_result, "FileState | None"]


def refresh(ledger: Ledger, env: dict[str, str] | None = None,
            progress: Progress | None = None, incremental: bool = False,
            prices: PriceBook | None = None,
            carry: Callable[[Ledger], object] | None = None) -> RefreshReport:
    """Scan what changed.  ``incremental`` (the prompt's background refresh) trusts files
    untouched for an hour until the next full check, a minute at most; otherwise every
    directory is walked and every file stat'ed.  With ``prices``, each new row's cost is
    stored as it is written (the snapshot sums them).  ``carry`` (``scan --rebuild``)
    writes into the new ledger first, in the same transaction."""
    env = dict(os.environ) if env is None else env
    report = RefreshReport()
    target = manifest_path(str(ledger.path))
    ledger_ino = os.stat(ledger.path).st_ino
    plan = changes.since_manifest(target, env, ledger_ino, SUFFIXES) if incremental else None
    if plan is not None and _roots_moved(plan.found.files, env):
        plan = None  # a source's list of directories changed (Crush's projects.json)
    codex_roots = codex.roots(env)
    if plan is None:
        roots = {source.name: source.roots(env) for source in sources.ALL}
        candidates = [root for source in sources.ALL for root in source.candidate_roots(env)]
        found = discover.walk([root for each in roots.values() for root in each], SUFFIXES)
        entries: list[manifest.Entry] = [
            (b"m", 0, 0, 0, root) for root in candidates if root not in found.dirs]
        pinned = _pinned(roots[claude.NAME], 1) | _pinned(roots[codex.NAME], 2)
        for source in APPENDED:
            pinned |= _pinned(roots[source.NAME], source.SESSION_DEPTH)
        entries += [(b"p" if path in pinned else b"d", 0, 0, mtime, path)
                    for path, mtime in found.dirs.items()]
        entries += [(b"f", st.st_ino, st.st_size, st.st_mtime_ns, path)
                    for path, st in found.files.items()]
        report.files_seen = len(found.files)
        cold_raw, cold_files, checked_ns = b"", 0, None
    else:
        found, entries, report.files_seen = plan.found, plan.entries, plan.files_known
        cold_raw, cold_files, checked_ns = plan.cold_raw, plan.cold_files, plan.checked_ns
    report.problems.extend(found.problems)
    if found.files or carry is not None:
        try:
            with ledger.write(), ledger.bulk_load():
                if carry is not None:
                    carry(ledger)
                cost_of = None
                if prices is not None:
                    ledger.use_prices(prices.fingerprint())
                    cost_of = prices.cost_of
                limits = NewestLimits()
                _ingest(ledger, found, report, progress, full=plan is None, cost_of=cost_of,
                        readers=_readers(env, codex_roots, limits),
                        rates=prices.rates if prices is not None else None)
                _keep_latest_limits(ledger, limits.items)
        except BaseException:
            ledger.forget_context_cache()
            raise
    _remember_problems(ledger, report)
    entries = _retry_unread(entries, report)
    write_manifest(target, manifest.encode(manifest.env_key(env), ledger_ino, entries,
                                           cold_raw=cold_raw, cold_files=cold_files,
                                           checked_ns=checked_ns))
    return report


DOCUMENT_SOURCES = tuple(source.module for source in sources.ALL
                         if source.whole_files or source.appended)
APPENDED = tuple(source.module for source in sources.ALL if source.appended)
# whole-file readers remember what a file held between reads (filescan keep_state)
DOCUMENT_NAMES = frozenset(source.name for source in sources.ALL if source.whole_files)
SUFFIXES = tuple(dict.fromkeys((".jsonl", *(s for src in DOCUMENT_SOURCES for s in src.SUFFIXES))))
# Sources whose rows are the increases of running totals (tokline/sources/totals.py).
RUNNING_TOTALS = frozenset(src.NAME for src in DOCUMENT_SOURCES
                           if getattr(src, "RUNNING_TOTALS", False))
_ROOT_MOVERS = tuple(src for src in DOCUMENT_SOURCES if hasattr(src, "moves_roots"))


def _roots_moved(files: dict[str, os.stat_result], env: dict[str, str]) -> bool:
    """A changed file that changes where a source's logs are (Crush's projects.json): an
    incremental plan, made from the last walk's directories, would miss the new ones."""
    return any(source.moves_roots(path, env) for path in files for source in _ROOT_MOVERS)


class NewestLimits:
    """The newest few Codex rate-limit snapshots met in a refresh.  Both scanner threads
    add to it, hence the lock (an unguarded sort raced an append: "list modified")."""

    def __init__(self) -> None:
        self.items: list[tuple[int, object]] = []
        self._guard = _thread.allocate_lock()

    def add(self, ts: int, value: object) -> None:
        with self._guard:
            self.items.append((ts, value))
            if len(self.items) > 64:  # every token row carries them: keep the newest few
                self.items.sort(key=lambda item: item[0])
                del self.items[:-codex.LIMITS_KEPT]


def _readers(env: dict[str, str], codex_roots: list[str], limits: NewestLimits
             ) -> Callable[[str], tuple[str, filescan.Reader] | None]:
    """Which source reads a path, and how; None for files no source wants.  Codex rate
    limits met on the way go to ``limits``."""
    claude_read = filescan.claude_reader(scan, scan_deferred)
    codex_read = codex.reader(limits.add)
    codex_prefixes = tuple(os.path.join(r, "") for r in codex_roots)
    documents_by_prefix = [(os.path.join(root, ""), source)
                           for source in DOCUMENT_SOURCES for root in source.roots(env)]

    def pick(path: str) -> tuple[str, filescan.Reader] | None:
        if path.startswith(codex_prefixes):
            return (codex.NAME, codex_read) if path.endswith(".jsonl") else None
        for prefix, source in documents_by_prefix:
            if path.startswith(prefix):
                if not source.wanted(path):
                    return None
                return source.NAME, _appended(source) if source in APPENDED \
                    else _whole_file(source)
        return (claude.NAME, claude_read) if path.endswith(".jsonl") else None

    return pick


def _whole_file(source: Any) -> filescan.Reader:
    """Sources read whole on each change (``source.parse(path, data)``, or
    ``source.parse_state(path, data, state)`` for one that remembers what a file held
    when it was last read: the state it returns comes back with the next read, even of
    a rewritten file); their SQLite databases (``*.db``, and its ``-wal`` changing) by
    ``source.parse_db(path, since)`` from the newest update seen, which the file's state
    keeps while the file is the same one, only grown (a replaced database is read again
    from the start)."""
    parse_state = getattr(source, "parse_state", None)

    def read(path: str, fd: int, start: int, size: int, state: str | None
             ) -> tuple[list[Any], int, int, str | None]:
        if path.endswith((".db", ".db-wal")):
            since = int(lightjson.loads(state)["since"]) if state and start > 0 else 0
            keyed, newest = source.parse_db(path.removesuffix("-wal"), since)
            return [keyed], size, 0, lightjson.dumps({"since": newest})
        if parse_state is not None:
            keyed, malformed, kept = parse_state(path, os.pread(fd, size, 0), state)
            return [keyed], size, malformed, kept
        keyed, malformed = source.parse(path, os.pread(fd, size, 0))
        return [keyed], size, malformed, None

    return read


def _appended(source: Any) -> filescan.Reader:
    """Append-only JSON lines read from the last complete line (a half-written last line
    waits for the next refresh), a line at a time by ``source.take`` (documents.py
    ``parse_lines``), with what earlier lines left (``source.State``) kept with the file."""
    def read(path: str, fd: int, start: int, size: int, state_text: str | None
             ) -> tuple[list[Any], int, int, str]:
        state = source.State(state_text, path)
        found: dict[str, documents.Usage] = {}
        malformed = 0

        def take(mapped: Any, offset: int, base: int) -> int:
            nonlocal malformed
            end = mapped.rfind(b"\n", offset) + 1
            if end <= offset:
                return offset
            malformed += documents.parse_lines(source.take, source.NEEDLES, mapped, offset,
                                                  end, state, found)
            return int(end)

        end = filescan.each_window(fd, start, size, take)
        return [found], end, malformed, state.dump()

    return read


def _pinned(roots: list[str], depth: int) -> set[str]:
    """Directories where new sessions appear, so always stat'ed: the roots and ``depth``
    levels below (Claude: project dirs; Codex: sessions/YYYY/MM, where a day's dir appears)."""
    found: set[str] = set()
    level = list(roots)
    for _ in range(depth + 1):
        found.update(level)
        below: list[str] = []
        for directory in level:
            try:
                with os.scandir(directory) as entries:
                    below += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue
        level = below if len(below) < 5000 else []
    return found


# A manifest entry that matches no stat (no size is -1, no mtime this late) and is live:
# the no-change checks (prompt/uptodate.py, engine/changed.py) see it as changed.
UNREAD_SIZE = -1
UNREAD_MTIME_NS = 1 << 62


def _retry_unread(entries: list[manifest.Entry], report: RefreshReport) -> list[manifest.Entry]:
    """A file or directory that could not be read is not recorded as seen: its entry is
    one that never matches, so the next ``tokline scan`` and refresh read it again (a
    permission put right changes no mtime)."""
    unread = set(report.unread)
    for problem in report.problems:  # the walk's: "cannot read DIR: reason"
        if problem.startswith("cannot read ") and ": " in problem:
            unread.add(problem[len("cannot read "):problem.rindex(": ")])
    if not unread:
        return entries
    return [(kind, ino, UNREAD_SIZE, UNREAD_MTIME_NS, path)
            if kind in (b"f", b"d", b"p") and path in unread else (kind, ino, size, mtime, path)
            for kind, ino, size, mtime, path in entries]


def write_manifest(target: str, data: bytes) -> None:
    """Record what this refresh saw (after its commit), for the no-change fast path."""
    tmp = f"{target}.{os.getpid()}.tmp"
    try:
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
            progress: Progress | None, full: bool, cost_of: CostFn | None,
            readers: Callable[[str], tuple[str, filescan.Reader] | None],
            rates: claude.RatesFn | None = None) -> None:
    had_rows = ledger.has_usage()
    known = ledger.file_states(None, None if full else list(found.files))
    work = [
        (path, st, known.get(path))
        for path, st in sorted(found.files.items())
        if not filescan.unchanged(known.get(path), st) and readers(path) is not None
    ]
    if not work:
        return
    ledger.preload_contexts(len(work) > 64)
    total_bytes = sum(st.st_size - (k.offset if k else 0) for _, st, k in work)
    done_bytes = 0
    sidechain_ids: set[str] = set()
    main_ids: set[str] | None = set() if had_rows else None  # a cold load needs none
    pending = ledger.usage_batch()  # rows build up in C when the compiled writer writes

    def one(item: WorkItem) -> filescan.FileScan | str:
        path, st, prior = item
        source, read = readers(path)  # type: ignore[misc]
        try:
            return filescan.scan_file(path, source, st, prior, read,
                                      keep_state=source in DOCUMENT_NAMES)
        except (OSError, sqlite3.Error) as exc:
            return f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"

    states: list[FileState] = []
    for item, result in zip(work, _scanned(work, one), strict=True):
        if isinstance(result, str):
            report.problems.append(result)
            report.unread.add(item[0])
            continue
        if result.state.source == codex.NAME:
            pending.extend(codex.usage_rows(result.records, ledger.context_id, cost_of))
            report.records += len(result.records)
        elif result.state.source in RUNNING_TOTALS:
            pending.extend(totals.rows(ledger, result.state.source,
                                       totals.place_of(result.state.path), result.records[0],
                                       cost_of))
        elif result.state.source != claude.NAME:
            pending.extend(documents.rows(result.state.source, result.records[0],
                                          ledger.context_id, cost_of))
            report.records += len(result.records)
        else:
            report.records += claude.add_usage_rows(pending, result, ledger.context_id,
                                                    sidechain_ids, main_ids, cost_of, rates)
        states.append(result.state)
        report.files_scanned += 1
        report.files_rescanned += result.rescanned
        report.bytes_scanned += result.scanned_bytes
        prior = known.get(result.state.path)
        new_malformed = result.state.malformed - (
            prior.malformed if prior is not None and not result.rescanned else 0)
        report.malformed += new_malformed
        if new_malformed > 0:  # a few examples with line numbers, for tokline doctor
            report.problems.extend(malformed.examples(
                result.state.path, result.state.source,
                result.state.size - result.scanned_bytes, result.state.offset, new_malformed))
        done_bytes += result.scanned_bytes
        if len(pending) >= FLUSH_ROWS:
            ledger.write_usage(pending)
            ledger.save_files(states)
            states = []
            if progress is not None:
                progress(done_bytes, total_bytes)
    ledger.save_files(states)
    ledger.write_usage(pending)
    pending.close()
    # A main-conversation row that arrives after its sidechain replay must shadow it too.
    ledger.shadow_sidechain_replays(sidechain_ids | (main_ids or set()))


def _keep_latest_limits(ledger: Ledger, seen: list[tuple[int, object]]) -> None:
    """Codex's newest rate-limit snapshot across every file, by line time."""
    if not seen:
        return
    stored_text = ledger.get_meta(codex.LIMITS_META)
    stored = lightjson.loads(stored_text) if stored_text else None
    changed = False
    for ts, value in sorted(seen, key=lambda item: item[0]):
        if isinstance(value, bytes):  # as the compiled reader keeps it
            try:
                value = lightjson.loads(value.decode("utf-8"), strict=True)
            except ValueError:
                continue
        newer = codex.latest_limits(stored, ts, value)
        if newer is not None:
            stored, changed = newer, True
    if changed:
        ledger.set_meta(codex.LIMITS_META, lightjson.dumps(stored))


def _scanned(work: list[WorkItem], one: Callable[[WorkItem], filescan.FileScan | str]
             ) -> Iterator[filescan.FileScan | str]:
    """Results in work order.  SCAN_THREADS scanner threads (the compiled scan releases
    the GIL) when there is enough to do; a prompt's small refresh skips the thread pool
    import.  TOKLINE_SCAN_THREADS sets how many (two suit a two-core machine)."""
    if not USE_EXTENSIONS or sum(st.st_size - (known.offset if known else 0)
                                 for _, st, known in work) < THREADS_FROM_BYTES:
        for item in work:
            yield one(item)
        return
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - big scans only

    def batch(items: list[WorkItem]) -> list[filescan.FileScan | str]:
        return [one(item) for item in items]

    queue = iter(_batches(work))
    with ThreadPoolExecutor(max_workers=SCAN_THREADS) as pool:
        # A sliding window of batches in flight keeps the threads busy while the caller
        # writes rows, without holding more than a few batches' records at once.  Batches,
        # not files: a file takes a fraction of a millisecond, less than handing it over.
        inflight = deque(pool.submit(batch, items)
                         for items in itertools.islice(queue, AHEAD_BATCHES))
        while inflight:
            results = inflight.popleft().result()
            following = next(queue, None)
            if following is not None:
                inflight.append(pool.submit(batch, following))
            yield from results


def _batches(work: list[WorkItem]) -> Iterator[list[WorkItem]]:
    items: list[WorkItem] = []
    size = 0
    for item in work:
        items.append(item)
        size += item[1].st_size - (item[2].offset if item[2] else 0)
        if size >= BATCH_BYTES:
            yield items
            items, size = [], 0
    if items:
        yield items


PROBLEMS_META = "problems"  # every problem reported so far (JSON list), for tokline doctor


def _remember_problems(ledger: Ledger, report: RefreshReport) -> None:
    """Keep problems in the ledger; only ones not reported before are printed again."""
    if not report.problems:
        return
    known_text = ledger.get_meta(PROBLEMS_META)
    known: list[str] = lightjson.loads(known_text) if known_text else []
    report.new_problems = [p for p in report.problems if p not in known]
    if report.new_problems:
        with ledger.write():
            ledger.set_meta(PROBLEMS_META, lightjson.dumps((known + report.new_problems)[-500:]))


def print_problems(report: RefreshReport) -> None:
    """Each unreadable file or directory once (tokline doctor lists them all)."""
    from tokline.prompt.safetext import clean  # noqa: PLC0415 - only with problems to print

    for problem in report.new_problems:
        print(f"tokline: {clean(problem, 2000)}", file=sys.stderr)
