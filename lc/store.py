"""The LC's durable state in one SQLite file (``<state-dir>/lc.db``).

Tables: ``objects`` (every object the GM sent this node, reloaded on restart so the edge keeps
running without the GM; Sedna's LC waited for the GM instead), ``outbox`` (status reports not
yet acknowledged by the GM; ``seq`` is ``AUTOINCREMENT`` so it never goes back, even after
deletes), ``counters`` (each worker's latest cumulative counters, so aggregates survive a restart)
and ``meta`` (the outbox epoch, last reported dataset counts). A report and the state it derives
from are written in one transaction. One connection guarded by a lock; WAL mode.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sedna.controlplane.edgehub import ObjectKey, ObjectRef

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, rv TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name));
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    payload TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
    scope TEXT NOT NULL, worker TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (scope, worker));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Store:
    """Objects, outbox, worker counters and metadata of one LC."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        self._lock = threading.RLock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('outbox_epoch', ?)", (secrets.token_hex(8),))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and one ``BEGIN IMMEDIATE`` transaction; commit on success."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---------------------------------------------------------------- objects

    def put_object(self, key: ObjectKey, resource_version: str, obj: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?)",
                             (*key, resource_version, json.dumps(obj, separators=(",", ":"))))

    def delete_object(self, key: ObjectKey) -> bool:
        """Forget the object and the worker counters kept for it (its workers are gone with it)."""
        with self.transaction() as db:
            db.execute("DELETE FROM counters WHERE scope=?", (str(key),))
            return db.execute("DELETE FROM objects WHERE kind=? AND namespace=? AND name=?", key).rowcount > 0

    def get_object(self, key: ObjectKey) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?", key).fetchone()
        return None if row is None else json.loads(row[0])

    def list_objects(self, kind: str | None = None) -> list[dict[str, Any]]:
        where, args = ("", ()) if kind is None else (" WHERE kind=?", (kind,))
        with self._lock:
            rows = self._db.execute(f"SELECT body FROM objects{where} ORDER BY kind, namespace, name", args).fetchall()
        return [json.loads(body) for (body,) in rows]

    def refs(self) -> list[ObjectRef]:
        """``(key, resourceVersion)`` of every object held: the hello's content."""
        with self._lock:
            rows = self._db.execute("SELECT kind, namespace, name, rv FROM objects ORDER BY kind, namespace, name")
            return [ObjectRef(ObjectKey(k, ns, n), rv) for k, ns, n, rv in rows.fetchall()]

    # ----------------------------------------------------------------- outbox

    def enqueue(self, key: ObjectKey, payload: dict[str, Any], db: sqlite3.Connection | None = None) -> int:
        """Append a report to the outbox; return its sequence number."""
        with self._lock:
            cur = (db or self._db).execute(
                "INSERT INTO outbox (kind, namespace, name, payload, created) VALUES (?,?,?,?,?)",
                (*key, json.dumps(payload, separators=(",", ":")), time.time()))
            return int(cur.lastrowid or 0)

    def outbox_after(self, seq: int, limit: int = 500) -> list[tuple[int, ObjectKey, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute("SELECT seq, kind, namespace, name, payload FROM outbox WHERE seq>? "
                                    "ORDER BY seq LIMIT ?", (seq, limit)).fetchall()
        return [(s, ObjectKey(k, ns, n), json.loads(p)) for s, k, ns, n, p in rows]

    def outbox_get(self, seq: int) -> tuple[ObjectKey, dict[str, Any]] | None:
        with self._lock:
            row = self._db.execute("SELECT kind, namespace, name, payload FROM outbox WHERE seq=?", (seq,)).fetchone()
        return None if row is None else (ObjectKey(*row[:3]), json.loads(row[3]))

    def outbox_delete(self, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE seq=?", (seq,))

    def outbox_size(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    # --------------------------------------------------------- counters, meta

    def update_counters(self, scope: str, worker: str, body: dict[str, Any],
                        derive: Callable[[list[dict[str, Any]]], T]) -> T:
        """Store ``worker``'s latest counters under ``scope``; return ``derive(all workers' counters)``.

        Call inside :meth:`transaction` to make the update and the derived report atomic.
        """
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO counters VALUES (?,?,?)",
                             (scope, worker, json.dumps(body, separators=(",", ":"))))
            rows = self._db.execute("SELECT body FROM counters WHERE scope=? ORDER BY worker", (scope,)).fetchall()
        return derive([json.loads(b) for (b,) in rows])

    def get_counters(self, scope: str, worker: str) -> dict[str, Any] | None:
        """The record last stored for ``worker`` under ``scope`` (call inside the same transaction)."""
        with self._lock:
            row = self._db.execute("SELECT body FROM counters WHERE scope=? AND worker=?", (scope, worker)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str, db: sqlite3.Connection | None = None) -> None:
        with self._lock:
            (db or self._db).execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value))

    def outbox_epoch(self) -> str:
        return self.get_meta("outbox_epoch") or ""
