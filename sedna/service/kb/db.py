"""The knowledge base's tables on SQLite (default) or PostgreSQL (``postgresql://`` URL, psycopg 3).

Table names are Sedna's (``ll_task_grp``, ``ll_tasks``, ``ll_task_models``, ``ll_task_relation``,
``ll_samples``, ``ll_task_sample``) plus ``ll_versions`` (every index version, as JSON) and
``ll_blobs`` (known files). :class:`Database` hides the two dialects' differences -- the
parameter style and the id column -- behind ``?`` placeholders; one connection is shared behind
a lock (the server is one process), and :meth:`Database.transaction` commits or rolls back.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sedna.service.kb.errors import KBError

_TABLES = """
CREATE TABLE IF NOT EXISTS ll_versions (
    version INTEGER PRIMARY KEY, created_at TEXT NOT NULL, published INTEGER NOT NULL DEFAULT 0,
    published_at TEXT, parent INTEGER, index_json TEXT NOT NULL, index_sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ll_blobs (
    sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL, format TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ll_task_grp (
    id {id}, name TEXT UNIQUE NOT NULL, deploy INTEGER NOT NULL DEFAULT 0,
    sample_num INTEGER NOT NULL DEFAULT 0, task_num INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS ll_tasks (
    id {id}, name TEXT UNIQUE NOT NULL, task_attr TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ll_task_models (
    id {id}, task_id INTEGER NOT NULL REFERENCES ll_task_grp(id), model_url TEXT NOT NULL,
    is_current INTEGER NOT NULL DEFAULT 0, metrics TEXT NOT NULL DEFAULT '{{}}', version INTEGER NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ll_task_relation (
    id {id}, grp_id INTEGER NOT NULL REFERENCES ll_task_grp(id), task_id INTEGER NOT NULL REFERENCES ll_tasks(id),
    transfer_radio DOUBLE PRECISION NOT NULL DEFAULT 0, UNIQUE (grp_id, task_id));
CREATE TABLE IF NOT EXISTS ll_samples (
    id {id}, data_url TEXT NOT NULL DEFAULT '', descr TEXT NOT NULL DEFAULT '', data_type SMALLINT NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL, sample_num INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ll_task_sample (
    id {id}, sample_id INTEGER NOT NULL REFERENCES ll_samples(id), task_id INTEGER NOT NULL REFERENCES ll_tasks(id));
"""


class Database:
    """One connection to SQLite (``sqlite:///path`` or a plain path) or PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        if url.startswith(("postgresql://", "postgres://")):
            try:
                import psycopg
            except ImportError:
                raise KBError("a PostgreSQL KB database needs psycopg 3: pip install 'psycopg[binary]'") from None
            self.dialect = "postgresql"
            self._conn: Any = psycopg.connect(url, autocommit=False)
            id_column = "BIGSERIAL PRIMARY KEY"
        else:
            path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.dialect = "sqlite"
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            id_column = "INTEGER PRIMARY KEY AUTOINCREMENT"
        with self.transaction() as tx:
            for statement in _TABLES.format(id=id_column).split(";"):
                if statement.strip():
                    tx.execute(statement)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Run statements atomically: commit on success, roll back on any exception."""
        with self._lock:
            if self.dialect == "sqlite":
                self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self)
            except BaseException:
                self._conn.rollback()
                raise
            self._conn.commit()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only statement."""
        with self._lock:
            cur = self._conn.execute(self._sql(sql), tuple(params))
            rows = cur.fetchall()
            if self.dialect == "postgresql":
                self._conn.commit()  # end the implicit read transaction
            return list(rows)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class Transaction:
    """Statements inside :meth:`Database.transaction`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._db._conn.execute(self._db._sql(sql), tuple(params))
        return list(cur.fetchall()) if cur.description else []

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.execute(sql, params)
        return rows[0] if rows else None
