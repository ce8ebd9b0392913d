"""Export this device's changed rows as a segment, import other devices' segments.

Export: the rows whose ``synced`` flag the scan cleared (new or grown since the last
export), in key order, in segments of at most SEGMENT_ROWS rows, numbered after every
segment of this device already at the target.  A row is marked exported only if it is
still as exported (a refresh may have grown it meanwhile: then it goes next time).

Import: every segment of another device not imported yet, each in one transaction with
its record in ``sync_files``: a kill at any point leaves it imported whole or not at
all, and importing it again changes nothing (the merge is a per-field maximum: see
tokline/ledger/store.py).  An incomplete file is left for the next sync; a corrupt one
is reported once and recorded, so it is skipped until its size changes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from tokline.ledger.store import IMPORT_UPSERT, Ledger
from tokline.sync import segments
from tokline.sync.device import to_hex
from tokline.sync.targets import Target

SEGMENT_ROWS = 50_000
FETCH_BATCH = 8  # segments fetched per round trip (each at most 64 MiB, most a few kB)
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
    """What leaves the machine of a project path: its last component, a hash, or nothing."""
    if privacy == "none" or not path:
        return ""
    if privacy == "hash":
        return "h:" + hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    parts = [part for part in path.replace("\\", "/").split("/") if part]
    return parts[-1] if parts else ""


_EXPORT_SELECT = (
    "SELECT u.key, u.ts_ms, c.source, c.session_id, c.project, c.model, u.input, u.output,"
    " u.cache_5m, u.cache_1h, u.cache_read, u.web_search, u.cost_usd, u.flags, u.device,"
    " u.ctx FROM usage u JOIN contexts c ON c.id = u.ctx WHERE u.synced = 0 ORDER BY u.key")
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
    written: list[str] = []
    now = time.time_ns() // 1_000_000
    for start in range(0, max(len(rows), 1), SEGMENT_ROWS):
        batch = rows[start:start + SEGMENT_ROWS]
        seq += 1
        # Only this device's own rows hold a local path: a row of another device (which a
        # copy of it here lost to on a tie) is sent on as that device exported it, since
        # hashing its project again would give every device a different one.
        out = [(*r[:4], project_for_export(r[4], privacy) if r[14] == device else r[4],
                *r[5:15]) for r in batch]
        data = segments.encode(device, name, seq, now, out, quota)
        file = segments.file_name(device, seq)
        target.put(file, data)
        written.append(file)
        with ledger.write():
            ledger.set_meta("sync_seq", str(seq))
            ledger.set_meta("sync_quota", quota_text)
            ledger.db.executemany(_MARK, [(r[0], r[1], r[15], *r[6:15]) for r in batch])
        if progress is not None:
            progress(f"exported {min(start + SEGMENT_ROWS, len(rows)):,} of {len(rows):,} rows")
    return len(rows), written


def import_new(ledger: Ledger, target: Target, device: int, cost_of: CostFn,
               listed: list[str], progress: Progress | None = None
               ) -> tuple[int, list[str], list[str], list[str], list[tuple[str, list[Any]]]]:
    """Import the segments of other devices not imported yet: (rows, files imported,
    files waiting, rejections, quota lists met)."""
    known = {name: (size, rows) for name, size, rows in
             ledger.db.execute("SELECT name, size, rows FROM sync_files")}
    mine = to_hex(device) + "/"
    wanted = [n for n in listed if not n.startswith(mine) and n not in known]
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
        rows_in += _store(ledger, file, len(data), segment, cost_of)
        imported.append(file)
        if segment.quota:
            quotas.append((to_hex(segment.device), segment.quota))
        if progress is not None:
            progress(f"imported {number:,} of {len(wanted):,} segments ({rows_in:,} rows)")
    return rows_in, imported, waiting, rejected, quotas


def _store(ledger: Ledger, file: str, size: int, segment: segments.Segment,
           cost_of: CostFn) -> int:
    try:
        with ledger.write():
            ledger.preload_contexts(len(segment.rows) > 1000)
            values = []
            for r in segment.rows:
                ctx = ledger.context_id(r.source, r.session, r.project, r.model)
                values.append((r.key, r.ts_ms, ctx, r.input, r.output, r.cache_5m, r.cache_1h,
                               r.cache_read, r.web_search, r.cost_usd, r.flags,
                               cost_of(r.model, r.input, r.output, r.cache_5m, r.cache_1h,
                                       r.cache_read, r.web_search, r.flags), r.device))
            ledger.insert_new_contexts()
            if values:
                ledger.note_change(min(v[1] for v in values))
            values.sort(key=lambda v: v[0])
            ledger.db.executemany(IMPORT_UPSERT, values)
            if values:
                # A row that merged with one already here is left unpriced (its cost_calc
                # that of the old copy); the snapshot prices only its recent weeks again,
                # and a year from another device merges rows of any age.
                ledger.price_pending(min(v[1] for v in values), cost_of)
            stamp = segment.created_ms
            ledger.db.execute(
                "INSERT INTO devices VALUES (?,?,?) ON CONFLICT(id) DO UPDATE SET"
                " name = excluded.name, last_seen_ms = max(coalesce(last_seen_ms, 0),"
                " excluded.last_seen_ms)", (segment.device, segment.name or to_hex(segment.device),
                                            stamp))
            # rows recorded by a device whose own segments have not come yet
            ledger.db.executemany("INSERT OR IGNORE INTO devices VALUES (?,?,NULL)",
                                  {(r.device, to_hex(r.device)) for r in segment.rows})
            ledger.db.execute("INSERT OR REPLACE INTO sync_files VALUES (?,?,?,?,?)",
                              (file, segment.device, size, len(values),
                               time.time_ns() // 1_000_000))
    except BaseException:
        ledger.forget_context_cache()
        raise
    return len(segment.rows)


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

