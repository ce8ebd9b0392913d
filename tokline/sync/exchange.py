"""Export this device's changed rows as a segment, import other devices' segments.

Export: the rows whose ``synced`` flag the scan cleared (new or grown since the last
export), in key order, in segments of at most SEGMENT_ROWS rows, numbered after every
segment of this device already at the target.  A row is marked exported only if it is
still as exported (a refresh may have grown it meanwhile: then it goes next time).

Import: every segment not imported yet (this device's own only after ``scan --rebuild``),
stored in one transaction with its record in ``sync_files`` (up to STORE_ROWS rows of
segments together): a kill at any point leaves it imported whole or not at all, and
importing it again changes nothing (the merge is a per-field maximum: see
tokline/ledger/store.py).  An incomplete file is left for the next sync; a corrupt one is
reported once and recorded, so it is skipped until its size changes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from operator import itemgetter
from typing import Any, NamedTuple

from tokline.ledger.schema import UNSYNCED_INDEX
from tokline.ledger.store import IMPORT_UPSERT, Ledger
from tokline.sync import segments
from tokline.sync.device import HEX_DIGITS, to_hex
from tokline.sync.targets import Target

SEGMENT_ROWS = 50_000
FETCH_BATCH = 8  # segments fetched per round trip (each at most 64 MiB, most a few kB)
STORE_ROWS = 200_000  # rows read before they are stored (one transaction)
_KEY, _TS, _OWNER = itemgetter(0), itemgetter(1), itemgetter(14)
PRIVACY = ("name", "hash", "none")
CostFn = Callable[[str, int, int, int, int, int, int, int], "float | None"]
Progress = Callable[[str], None]


class Report(NamedTuple):
    exported_rows: int
    exported_files: list[str]
    imported_rows: int
    imported_files: list[str]
    waiting: list[str]  # incomplete: looked at again next time
    rejected: list[str]  # "name: reason", new this time


def project_for_export(path: str, privacy: str) -> str:
    """What leaves the machine of a project path: its last component, a hash, or nothing.
    What it gives is given back unchanged: a row of this device that a rebuilt ledger
    got back from its own segment holds its project as it left, and may leave again."""
    if privacy == "none" or not path:
        return ""
    if privacy == "hash":
        if len(path) == 18 and path.startswith("h:") and HEX_DIGITS.issuperset(path[2:]):
            return path  # a path is never this (it is not absolute)
        return "h:" + hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    parts = [part for part in path.replace("\\", "/").split("/") if part]
    return parts[-1] if parts else ""


# The rows to export, without their contexts (joined in Python: a few hundred contexts
# for 100,000 rows), in the order of _MARK's parameters.
_EXPORT_SELECT = ("SELECT key, ts_ms, ctx, input, output, cache_5m, cache_1h, cache_read,"
                  " web_search, cost_usd, flags, device FROM usage WHERE synced = 0"
                  " ORDER BY key")
_MARK = ("UPDATE usage SET synced = 1 WHERE key = ? AND synced = 0 AND ts_ms = ? AND ctx = ?"
         " AND input = ? AND output = ? AND cache_5m = ? AND cache_1h = ? AND cache_read = ?"
         " AND web_search = ? AND cost_usd IS ? AND flags = ? AND device = ?")


def export(ledger: Ledger, target: Target, device: int, name: str, privacy: str,
           quota: list[dict[str, Any]] | None = None, known: list[str] | None = None,
           progress: Progress | None = None) -> tuple[int, list[str]]:
    """Write this device's unexported rows; (rows, segment names written)."""
    rows = ledger.db.execute(_EXPORT_SELECT).fetchall()
    # quota goes along with rows, or alone when it changed since the last export
    quota_text = json.dumps(quota or [], sort_keys=True)
    if not rows and (not quota or quota_text == ledger.get_meta("sync_quota")):
        return 0, []
    mine = to_hex(device) + "/"
    listed = known if known is not None else target.names()
    taken = [segments.parse_name(n) for n in listed if n.startswith(mine)]
    seq = max([s for _, s in filter(None, taken)] + [int(ledger.get_meta("sync_seq") or 0)])
    contexts = _contexts(ledger, {r[2] for r in rows})
    # Only this device's own rows hold a local path: a row of another device (which a
    # copy of it here lost to on a tie) is sent on as that device exported it, since
    # hashing its project again would give every device a different one.
    texts: dict[tuple[int, bool], tuple[str, str, str, str]] = {}
    written: list[str] = []
    now = time.time_ns() // 1_000_000
    for start in range(0, max(len(rows), 1), SEGMENT_ROWS):
        batch = rows[start:start + SEGMENT_ROWS]
        seq += 1
        out = []
        for r in batch:
            own = r[11] == device
            cells = texts.get((r[2], own))
            if cells is None:
                source, session, project, model = contexts[r[2]]
                cells = texts[(r[2], own)] = (
                    source, session, project_for_export(project, privacy) if own else project,
                    model)
            out.append((r[0], r[1], *cells, *r[3:]))
        data = segments.encode(device, name, seq, now, out, quota)
        file = segments.file_name(device, seq)
        target.put(file, data)
        written.append(file)
        with ledger.write():
            ledger.db.execute(UNSYNCED_INDEX)  # this ledger exports: find what is left fast
            ledger.set_meta("sync_seq", str(seq))
            ledger.set_meta("sync_quota", quota_text)
            # still as exported: a refresh that grew a row meanwhile left it to go next time
            ledger.db.executemany(_MARK, batch)
            # known, so not read back; a ledger made anew (scan --rebuild) reads it back
            ledger.db.execute("INSERT OR REPLACE INTO sync_files VALUES (?,?,?,?,?)",
                              (file, device, len(data), len(batch), now))
        if progress is not None:
            progress(f"exported {min(start + SEGMENT_ROWS, len(rows)):,} of {len(rows):,} rows")
    return len(rows), written


def _contexts(ledger: Ledger, ids: set[int]) -> dict[int, tuple[str, str, str, str]]:
    """(source, session, project, model) of these context ids."""
    wanted = sorted(ids)
    out: dict[int, tuple[str, str, str, str]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        for row in ledger.db.execute(
                "SELECT id, source, session_id, project, model FROM contexts WHERE id IN"
                f" ({','.join('?' * len(chunk))})", chunk):
            out[row[0]] = row[1:]
    return out


def import_new(ledger: Ledger, target: Target, device: int, cost_of: CostFn,
               listed: list[str], progress: Progress | None = None
               ) -> tuple[int, list[str], list[str], list[str], list[tuple[str, list[Any]]]]:
    """Import the segments of other devices not imported yet: (rows, files imported,
    files waiting, rejections, quota lists met)."""
    known = {name: (size, rows) for name, size, rows in
             ledger.db.execute("SELECT name, size, rows FROM sync_files")}
    # This device's own segments too: each one it wrote is known (export records it),
    # unless the ledger was made anew (scan --rebuild), when its own segments bring back
    # the rows of logs the assistants have deleted since.
    wanted = [n for n in listed if n not in known]
    # A rejected file is read again once its size changed (a sync tool that writes in
    # place was not done with it); only a directory target tells sizes cheaply.
    rejected_before = [n for n, (_size, rows) in known.items() if rows < 0]
    for n, size in target.sizes(rejected_before).items():
        if size != known[n][0]:
            wanted.append(n)
    rows_in = 0
    imported: list[str] = []
    waiting: list[str] = []
    rejected: list[str] = []
    quotas: list[tuple[str, list[Any]]] = []
    # Segments are read and checked outside the ledger's write lock (an ssh target takes
    # its time), then stored many at once: one transaction, one pricing pass, and into
    # an empty ledger (a new device's first sync) without the time index, built after.
    batch: list[tuple[str, int, segments.Segment]] = []
    batch_rows = 0

    def store() -> None:
        nonlocal rows_in, batch_rows
        rows_in += _store(ledger, batch, cost_of, device)
        imported.extend(file for file, _size, _segment in batch)
        batch.clear()
        batch_rows = 0
        if progress is not None:
            progress(f"imported {len(imported):,} of {len(wanted):,} segments"
                     f" ({rows_in:,} rows)")

    ordered = sorted(wanted)
    fetched: dict[str, bytes] = {}
    for number, file in enumerate(ordered, start=1):
        if file not in fetched:  # a batch per round trip (an ssh call, a request)
            fetched = target.fetch(ordered[number - 1:number - 1 + FETCH_BATCH])
        data = fetched.pop(file, None)
        if data is None:
            continue
        parsed = segments.parse_name(file)
        assert parsed is not None
        try:
            segment = segments.decode(data, expect_device=parsed[0])
        except segments.Incomplete:
            waiting.append(file)
            continue
        except segments.SegmentError as exc:
            rejected.append(f"{file}: {exc}")
            with ledger.write():  # recorded (rows -1), so it is reported once
                ledger.db.execute("INSERT OR REPLACE INTO sync_files VALUES (?,?,?,?,?)",
                                  (file, parsed[0], len(data), -1,
                                   time.time_ns() // 1_000_000))
            continue
        batch.append((file, len(data), segment))
        batch_rows += len(segment.rows)
        if segment.quota:
            quotas.append((to_hex(segment.device), segment.quota))
        if batch_rows >= STORE_ROWS:
            store()
    if batch:
        store()
    return rows_in, imported, waiting, rejected, quotas


def _store(ledger: Ledger, batch: list[tuple[str, int, segments.Segment]],
           cost_of: CostFn, mine: int) -> int:
    """Store these segments' rows and their records in ``sync_files``, all or nothing."""
    now = time.time_ns() // 1_000_000
    try:
        with ledger.write(), ledger.bulk_load():
            total = sum(len(segment.rows) for _file, _size, segment in batch)
            ledger.preload_contexts(total > 1000)
            context_id = ledger.context_id
            values: list[tuple[Any, ...]] = []
            append = values.append
            owners: set[int] = set()
            for _file, _size, segment in batch:
                for (key, ts, source, session, project, model, inp, out, c5m, c1h, read, web,
                     cost, flags, owner) in segment.rows:
                    append((key, ts, context_id(source, session, project, model), inp, out,
                            c5m, c1h, read, web, cost, flags,
                            cost_of(model, inp, out, c5m, c1h, read, web, flags), owner))
                owners.update(map(_OWNER, segment.rows))
            ledger.insert_new_contexts()
            if values:
                oldest = min(map(_TS, values))
                ledger.note_change(oldest)
                values.sort(key=_KEY)  # stable: copies of one key merge in segment order
                ledger.db.executemany(IMPORT_UPSERT, values)
                # A row that merged with one already here is left unpriced (its cost_calc
                # that of the old copy); the snapshot prices only its recent weeks again,
                # and a year from another device merges rows of any age.
                ledger.price_pending(oldest, cost_of)
            for file, size, segment in batch:
                if segment.device != mine:  # an old one of its own has an old name
                    ledger.db.execute(
                        "INSERT INTO devices VALUES (?,?,?) ON CONFLICT(id) DO UPDATE SET"
                        " name = excluded.name, last_seen_ms = max(coalesce(last_seen_ms,"
                        " 0), excluded.last_seen_ms)",
                        (segment.device, segment.name or to_hex(segment.device),
                         segment.created_ms))
                ledger.db.execute("INSERT OR REPLACE INTO sync_files VALUES (?,?,?,?,?)",
                                  (file, segment.device, size, len(segment.rows), now))
            # rows recorded by a device whose own segments have not come yet
            ledger.db.executemany("INSERT OR IGNORE INTO devices VALUES (?,?,NULL)",
                                  [(owner, to_hex(owner)) for owner in owners])
    except BaseException:
        ledger.forget_context_cache()
        raise
    return len(values)


def note_local_device(ledger: Ledger, device: int, name: str) -> None:
    with ledger.write():
        ledger.db.execute(
            "INSERT INTO devices VALUES (?,?,?) ON CONFLICT(id) DO UPDATE SET"
            " name = excluded.name, last_seen_ms = excluded.last_seen_ms",
            (device, name, time.time_ns() // 1_000_000))


def sync(ledger: Ledger, target: Target, device: int, name: str, privacy: str,
         cost_of: CostFn, quota: list[dict[str, Any]] | None = None,
         progress: Progress | None = None) -> tuple[Report, list[tuple[str, list[Any]]]]:
    """Export, then import: one exchange with ``target``."""
    note_local_device(ledger, device, name)
    if ledger.get_meta("sync_target") != target.label:
        # A new target (or a first one) has none of this ledger's rows: all go there,
        # those of other devices too (merging them again anywhere changes nothing).
        with ledger.write():
            ledger.db.execute("UPDATE usage SET synced = 0 WHERE synced = 1")
            ledger.set_meta("sync_target", target.label)
            ledger.set_meta("sync_quota", "")
    listed = target.names()
    out_rows, out_files = export(ledger, target, device, name, privacy, quota, listed, progress)
    in_rows, in_files, waiting, rejected, quotas = import_new(ledger, target, device, cost_of,
                                                              listed, progress)
    return Report(out_rows, out_files, in_rows, in_files, waiting, rejected), quotas

