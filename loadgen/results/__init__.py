"""One local store of every run: a SQLite database that every training and inference run appends a record to.

A run's own files stay as they are (``results.json``, ``train_result.json``, the logs); the store indexes them:
one row a run with its command, git revision, environment, settings, figures, validity and the paths of its files.
``python -m loadgen.results`` lists, shows, compares and exports the rows.

The database is ``results/results.sqlite`` under the working folder, or ``$MLPERF_RESULTS_DB``. It runs in
SQLite's write-ahead-log mode with a generous busy timeout, so runs writing at the same time wait for each other
instead of failing, and each record is one transaction: a run killed while it writes leaves the rows before it
whole and no part of its own. Writing the record never fails a run: a store that cannot be written is said in one
line on stderr. Standard library only.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sqlite3
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ENV = "MLPERF_RESULTS_DB"
DEFAULT = Path("results") / "results.sqlite"
# A training run, an inference run, the olympic score of a --runs set, a Server QPS search.
KINDS = ("training", "inference", "olympic", "qps-search")
BUSY_S = 60  # how long a writer waits for another
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    kind TEXT NOT NULL,
    benchmark TEXT,
    scenario TEXT,
    mode TEXT,
    backend TEXT,
    status TEXT,
    validity TEXT,
    command TEXT,
    git_revision TEXT,
    figures TEXT,
    settings TEXT,
    environment TEXT,
    paths TEXT,
    source TEXT
)"""
COLUMNS = ("id", "created", "kind", "benchmark", "scenario", "mode", "backend", "status", "validity", "command",
           "git_revision", "figures", "settings", "environment", "paths", "source")
JSON_COLUMNS = ("figures", "settings", "environment", "paths")


def path() -> Path:
    return Path(os.environ.get(ENV) or DEFAULT)


@contextlib.contextmanager
def connect(db: str | os.PathLike | None = None) -> Iterator[sqlite3.Connection]:
    """A connection to the store (created on first use), in WAL mode, closed on exit."""
    target = Path(db) if db is not None else path()
    target.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(target, timeout=BUSY_S, isolation_level=None)
    try:
        _prepare(conn)
        yield conn
    finally:
        conn.close()


def _prepare(conn: sqlite3.Connection) -> None:
    """WAL mode and the table. Switching a new database to WAL takes a lock that SQLite's busy timeout does not
    wait for, so two runs creating the store at once retry here until one of them has done it."""
    import time

    deadline = time.monotonic() + BUSY_S
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    conn.execute("PRAGMA synchronous=NORMAL")  # in WAL mode a crash at this level loses no committed row


def _row(kind: str, record: Mapping[str, Any], source: str | os.PathLike | None) -> dict[str, Any]:
    """The store's row for a results.json (inference) or train_result.json (training) record."""
    env = record.get("environment") or {}
    if kind == "inference":
        backend = record.get("backend") or {}
        fields = {"benchmark": record.get("model"), "scenario": record.get("scenario"), "mode": record.get("mode"),
                  "backend": backend.get("name") or (record.get("harness") or {}).get("backend_flag"),
                  "status": record.get("status"), "validity": record.get("validity"),
                  "figures": record.get("figures") or ({"error": record.get("error")} if record.get("error") else {}),
                  "settings": record.get("settings") or {}, "paths": record.get("files") or {}}
    elif kind == "training":
        fields = {"benchmark": record.get("benchmark"), "scenario": None, "mode": record.get("config"),
                  "backend": None, "status": "ok",
                  "validity": "reached" if record.get("reached_target") else "not reached",
                  "figures": {"time_to_train_s": record.get("time_to_train_s"), "epochs": record.get("epochs"),
                              "steps": record.get("steps"), "metrics": record.get("metrics"),
                              "targets": record.get("targets"), "history": record.get("history")},
                  "settings": {k: record.get(k) for k in ("config", "division", "seed", "world_size", "resumed")},
                  "paths": record.get("files") or {}}
    elif kind == "olympic":
        fields = {"benchmark": record.get("benchmark"), "scenario": None, "mode": record.get("config"),
                  "backend": None, "status": "ok", "validity": "scored" if record.get("score_s") else "no score",
                  "figures": dict(record), "settings": {}, "paths": record.get("files") or {}}
    elif kind == "qps-search":
        fields = {"benchmark": record.get("model"), "scenario": "Server", "mode": "qps-search",
                  "backend": record.get("backend"), "status": "ok",
                  "validity": "VALID" if record.get("server_qps") else "none confirmed", "figures": dict(record),
                  "settings": record.get("settings") or {}, "paths": record.get("files") or {}}
    else:
        raise ValueError(f"unknown kind {kind!r} (choose from {', '.join(KINDS)})")
    return {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "kind": kind,
            "command": json.dumps(env.get("command") or []), "git_revision": env.get("git_revision"),
            "environment": env, "source": None if source is None else str(Path(source).resolve()), **fields}


def append(kind: str, record: Mapping[str, Any], source: str | os.PathLike | None = None,
           db: str | os.PathLike | None = None) -> int:
    """Add one run's record, in one transaction; its id."""
    row = _row(kind, record, source)
    for column in JSON_COLUMNS:
        row[column] = json.dumps(row[column], sort_keys=True, default=str)
    names = [c for c in COLUMNS if c != "id"]
    with connect(db) as conn:
        cursor = conn.execute(f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                              [row[c] for c in names])
        return int(cursor.lastrowid)


def record_run(kind: str, record: Mapping[str, Any], source: str | os.PathLike | None) -> None:
    """:func:`append` for a run that has just finished: a store that cannot be written costs one line on stderr,
    never the run. ``MLPERF_RESULTS_DB=off`` keeps no record."""
    if os.environ.get(ENV) == "off":
        return
    try:
        append(kind, record, source)
    except (sqlite3.Error, OSError, ValueError) as exc:
        print(f"warning: the run was not added to the results store {path()}: {exc}", file=sys.stderr)


def rows(db: str | os.PathLike | None = None, kind: str | None = None, benchmark: str | None = None,
         ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Records, oldest first, with their JSON columns decoded."""
    where, params = [], []
    for column, value in (("kind", kind), ("benchmark", benchmark)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if ids:
        where.append(f"id IN ({', '.join('?' for _ in ids)})")
        params.extend(ids)
    query = f"SELECT {', '.join(COLUMNS)} FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "")
    if not Path(db if db is not None else path()).exists():
        return []  # reading makes no store
    with connect(db) as conn:
        found = [dict(zip(COLUMNS, r, strict=True)) for r in conn.execute(query + " ORDER BY id", params)]
    for row in found:
        for column in (*JSON_COLUMNS, "command"):
            row[column] = json.loads(row[column]) if row[column] else None
    return found


def headline(row: Mapping[str, Any]) -> str:
    """A record's main figure, as the list shows it."""
    figures = row.get("figures") or {}
    if row["kind"] == "olympic":
        score = figures.get("score_s")
        return f"olympic score {score:.1f} s" if score is not None else f"no score: {figures.get('how')}"
    if row["kind"] == "qps-search":
        server, offline = figures.get("server_qps"), figures.get("offline_qps")
        return f"Server {server or 0:.1f} QPS, Offline {offline or 0:.1f} samples/s"
    if row["kind"] == "training":
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in (figures.get("metrics") or {}).items()
                            if isinstance(v, (int, float)))
        seconds = figures.get("time_to_train_s")
        return f"{seconds:.1f} s to train; {metrics}" if seconds is not None else metrics
    if row.get("status") != "ok":
        return f"failed: {figures.get('error', '')}"[:80]
    metrics = figures.get("metrics") or []
    if metrics:
        return ", ".join(f"{m['name']}={m['text']}" for m in metrics)
    qps = figures.get("qps")
    tiles = figures.get("tiles_s") or {}
    p99 = tiles.get("99.0")
    return (f"{qps:.2f} samples/s" if qps is not None else "n/a") + (f", p99 {1e3 * p99:.3f} ms" if p99 else "")
