"""LocalStore: the embedded backend's object store, :class:`~gm.cluster.interface.Cluster` over SQLite.

One ``objects`` table keyed ``(apiVersion/kind, namespace, name)`` holds each object's JSON
body; a ``changes`` table logs every write under a global, monotonically increasing
resourceVersion (kept in ``meta`` so it continues across restarts and never goes back).
``watch`` replays the change log from a resourceVersion, then follows a :class:`~.feed.ChangeFeed`:
one reader thread per store, woken by in-process commits and polling the log every
``poll_interval`` seconds (so writes from another process on the same database file are seen
too), fans new rows out to every watch of their kind. The log is compacted to its last
``keep_changes`` entries; a watcher that asks for a compacted version gets :class:`Expired`
(Kubernetes' 410 Gone) and must list again.

Design: the database is the only shared state (WAL mode, writes in ``BEGIN IMMEDIATE``
transactions, so several processes may write); one connection per store guarded by a lock
makes the store thread-safe. Copies go through JSON (cheaper than
``copy.deepcopy`` for these documents). Deleting an object deletes its dependents (ownerReferences)
recursively, as Kubernetes' garbage collector would. Neighbours: :mod:`.api` serves this
store over REST, :mod:`.runtime`, :mod:`.deployments` and :mod:`.services` watch it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

from gm.cluster.events import EventRecorder
from gm.cluster.interface import (
    POD,
    AlreadyExists,
    ClusterError,
    Conflict,
    EventType,
    Expired,
    Invalid,
    Kind,
    NotFound,
    Obj,
    WatchEvent,
    kind_of,
)
from gm.cluster.local import _objects
from gm.cluster.local.feed import ChangeFeed
from sedna.common.log import get_logger

_LOG = get_logger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    uid TEXT NOT NULL, rv INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name));
CREATE INDEX IF NOT EXISTS objects_uid ON objects (uid);
CREATE TABLE IF NOT EXISTS owners (
    owner_uid TEXT NOT NULL, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS owners_uid ON owners (owner_uid);
CREATE TABLE IF NOT EXISTS changes (
    rv INTEGER PRIMARY KEY, kind TEXT NOT NULL, namespace TEXT NOT NULL,
    type TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('rv', 0), ('compacted', 0);
"""


__all__ = ["LocalStore"]
_Objs = list[Obj]
_Rows = list[tuple[str]]
_Changes = list[tuple[int, str, str, str, str]]
_BATCH = 500


def _key(kind: Kind) -> str:
    return f"{kind.api_version}/{kind.kind}"


def _ns(kind: Kind, namespace: str | None) -> str:
    return (namespace or "default") if kind.namespaced else ""


class LocalStore:
    """A :class:`~gm.cluster.interface.Cluster` persisted in one SQLite file (or ``":memory:"``).

    Parameters
    ----------
    path:
        Database file (created with its directory) or ``":memory:"`` for a private store.
    keep_changes:
        How many change-log entries to keep for ``watch``; older ones are compacted.
    poll_interval:
        Seconds between a watcher's polls of the log (to see other processes' writes).
    """

    def __init__(self, path: str | Path, keep_changes: int = 10000, poll_interval: float = 0.1) -> None:
        if keep_changes < 1:
            raise ValueError(f"keep_changes must be >= 1, got {keep_changes!r}")
        self.path = str(path)
        self.keep_changes = keep_changes
        self._poll_interval = poll_interval
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._closed = False
        self._wrote = False
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._feed = ChangeFeed(self._read_changes, self._cond, self._head, poll_interval,
                                    max(keep_changes, 1000), lambda: self._closed)
        self.events = EventRecorder(self)
        """Writes :meth:`emit_event`'s Events; its ``window`` and clock may be replaced (tests)."""

    @property
    def poll_interval(self) -> float:
        """Seconds between polls of the change log for other processes' writes."""
        return self._poll_interval

    @poll_interval.setter
    def poll_interval(self, value: float) -> None:
        self._poll_interval = self._feed.poll_interval = value

    # ------------------------------------------------------------------ reads

    def get(self, kind: Kind, namespace: str, name: str) -> Obj:
        with self._lock:
            self._check_open()
            row = self._db.execute("SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?",
                                   (_key(kind), _ns(kind, namespace), name)).fetchone()
        if row is None:
            where = f" in namespace {namespace!r}" if kind.namespaced else ""
            raise NotFound(f"{kind.kind} {name!r} not found{where}")
        return _decode(row[0])

    def list(self, kind: Kind, namespace: str | None = None,
             labels: Mapping[str, str] | None = None) -> _Objs:
        return self.list_with_version(kind, namespace, labels)[0]

    def list_with_version(self, kind: Kind, namespace: str | None = None,
                          labels: Mapping[str, str] | None = None) -> tuple[_Objs, str]:
        """Like :meth:`list`, plus the store's resourceVersion at that moment (to watch from)."""
        with self._lock:
            self._check_open()
            self._db.execute("BEGIN")
            try:
                rows = self._select(kind, namespace)
                rv = self._meta("rv")
            finally:
                self._db.execute("COMMIT")
        items = [_decode(body) for (body,) in rows]
        return [o for o in items if _objects.labels_match(o, labels)], str(rv)

    def list_owned(self, kind: Kind, owner_uid: str) -> _Objs:
        """Objects of ``kind`` whose ownerReferences name ``owner_uid`` (indexed: no scan of the kind)."""
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                "SELECT o.body FROM owners w JOIN objects o ON o.kind=w.kind AND o.namespace=w.namespace "
                "AND o.name=w.name WHERE w.owner_uid=? AND w.kind=? ORDER BY o.namespace, o.name",
                (owner_uid, _key(kind))).fetchall()
        return [_decode(body) for (body,) in rows]

    def resource_version(self) -> str:
        """The newest resourceVersion in the store."""
        with self._lock:
            self._check_open()
            return str(self._meta("rv"))

    # ----------------------------------------------------------------- writes

    def create(self, obj: Obj) -> Obj:
        kind = kind_of(obj)
        new = _clone(obj)
        meta = new.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise Invalid("metadata must be an object", [("metadata", "must be an object")])
        meta.pop("resourceVersion", None)
        meta["namespace"] = _ns(kind, meta.get("namespace"))
        if not kind.namespaced:
            meta.pop("namespace")
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise Invalid("metadata.name or metadata.generateName is required",
                              [("metadata.name", "Required value: name or generateName is required")])
            _objects.check_name(prefix.rstrip("-.") or "x", "metadata.generateName")
        else:
            _objects.check_name(meta["name"])
        meta["uid"] = str(uuid.uuid4())
        meta["generation"] = 1
        meta["creationTimestamp"] = _objects.now()
        new.pop("status", None)
        if kind == POD:
            new["status"] = {"phase": "Pending"}
        with self._write() as rv:
            if not meta.get("name"):
                meta["name"] = self._free_name(kind, meta["generateName"], _ns(kind, meta.get("namespace")))
            elif self._exists(kind, _ns(kind, meta.get("namespace")), meta["name"]):
                raise AlreadyExists(f"{kind.kind} {meta['name']!r} already exists")
            self._check_owners_alive(meta)
            meta["resourceVersion"] = str(rv)
            body = self._put(kind, new, rv, "ADDED", insert=True)
        return _decode(body)

    def update(self, obj: Obj) -> Obj:
        kind = kind_of(obj)
        given_meta = obj.get("metadata") or {}
        namespace, name = _ns(kind, given_meta.get("namespace")), given_meta.get("name")
        if not name:
            raise Invalid("metadata.name is required", [("metadata.name", "Required value")])
        with self._write() as rv:
            old = self._get_locked(kind, namespace, name)
            old_meta = old["metadata"]
            wanted = given_meta.get("resourceVersion")
            if wanted and str(wanted) != old_meta["resourceVersion"]:
                raise Conflict(f"{kind.kind} {name!r} was modified (resourceVersion {wanted} is stale, "
                               f"current is {old_meta['resourceVersion']}): read it again and retry")
            new = _clone(obj)
            new.pop("status", None)
            if "status" in old:
                new["status"] = old["status"]
            meta = new["metadata"]
            for field in ("uid", "creationTimestamp", "generation", "resourceVersion", "namespace"):
                if field in old_meta:
                    meta[field] = old_meta[field]
            if _spec_of(new) != _spec_of(old):
                meta["generation"] = int(old_meta.get("generation", 1)) + 1
            if new == old:
                return old
            meta["resourceVersion"] = str(rv)
            body = self._put(kind, new, rv, "MODIFIED")
        return _decode(body)

    def patch_status(self, kind: Kind, namespace: str, name: str, status: Mapping[str, Any]) -> Obj:
        if not isinstance(status, Mapping):
            raise Invalid("status must be an object", [("status", "must be an object")])
        with self._write() as rv:
            old = self._get_locked(kind, _ns(kind, namespace), name)
            new = {**old, "metadata": dict(old["metadata"]),
                   "status": _objects.merge_patch(old.get("status") or {}, status)}
            if new == old:
                return old
            new["metadata"]["resourceVersion"] = str(rv)
            body = self._put(kind, new, rv, "MODIFIED")
        return _decode(body)

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        with self._write() as rv:
            root = self._get_locked(kind, _ns(kind, namespace), name)
            queue, seen = [(kind_of(root), root)], set()
            while queue:
                k, obj = queue.pop(0)
                uid = obj["metadata"]["uid"]
                if uid in seen:
                    continue
                seen.add(uid)
                rv = self._delete_one(k, obj, rv)
                for dk, dns, dname in self._db.execute(
                        "SELECT kind, namespace, name FROM owners WHERE owner_uid=?", (uid,)).fetchall():
                    row = self._db.execute("SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?",
                                           (dk, dns, dname)).fetchone()
                    if row is not None:
                        child = _decode(row[0])
                        queue.append((kind_of(child), child))

    def _check_owners_alive(self, meta: Obj) -> None:
        """Refuse a dependent whose every owner is gone (garbage, as Kubernetes' collector sees it):
        closes the race of a controller with a stale cache re-creating a child of a deleted owner."""
        uids = [ref.get("uid") for ref in meta.get("ownerReferences") or [] if ref.get("uid")]
        if uids and not any(self._db.execute("SELECT 1 FROM objects WHERE uid=?", (uid,)).fetchone()
                            for uid in uids):
            owners = ", ".join(f"{r.get('kind')}/{r.get('name')}" for r in meta["ownerReferences"])
            raise NotFound(f"cannot create {meta.get('name') or meta.get('generateName')!r}: its owner "
                           f"{owners} no longer exists")

    def emit_event(self, involved: Obj, reason: str, message: str, type_: str = "Normal") -> None:
        """Record an Event about ``involved``, counting repeats (:mod:`gm.cluster.events`); never raises."""
        try:
            with self._lock:  # one writer per store: the recorder's get-then-write stays atomic in-process
                self.events.record(involved, reason, message, type_)
        except (ClusterError, sqlite3.Error, KeyError, TypeError) as exc:
            _LOG.warning("could not record event %s for %s: %s", reason, involved.get("kind"), exc)

    # ------------------------------------------------------------------ watch

    def watch(self, kind: Kind, namespace: str | None = None, resource_version: str | None = None,
              stop: threading.Event | None = None) -> Iterator[WatchEvent]:
        """Yield changes after ``resource_version`` (``None``, ``""`` or ``"0"``: ADDED for all, then changes).

        Raises :class:`Expired` when the log no longer holds the changes after ``resource_version``.
        """
        stop = stop or threading.Event()
        ns = _ns(kind, namespace) if namespace is not None else None
        if resource_version in (None, "", "0"):
            items, rv = self.list_with_version(kind, namespace)
            for obj in items:
                if stop.is_set():
                    return
                yield WatchEvent("ADDED", obj)
            last = int(rv)
        else:
            try:
                last = int(str(resource_version))
            except ValueError:
                raise Invalid(f"resourceVersion must be an integer string, got {resource_version!r}",
                              [("resourceVersion", "must be an integer")]) from None
        yield from self.changes(kind, ns, last, stop)

    def close(self) -> None:
        """Close the database; running watches end."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            self._feed.close()
            self._db.close()

    # -------------------------------------------------------------- internals

    def changes(self, kind: Kind, ns: str | None, last: int, stop: threading.Event) -> Iterator[WatchEvent]:
        """Changes of ``kind`` (in ``ns``) after version ``last`` — replayed from the log, then from the feed.

        Unlike ``watch(resource_version="0")`` this never lists first: ``last=0`` means every change.
        """
        key = _key(kind)
        sub, position = self._feed.subscribe(key, ns)
        try:
            while last < position:  # catch up on what the feed had passed when we subscribed
                with self._lock:
                    if self._closed:
                        return
                    self._check_compacted(last)
                    where, args = ("AND namespace=? ", (ns,)) if ns is not None else ("", ())
                    rows = self._db.execute(
                        f"SELECT rv, type, body FROM changes WHERE rv>? AND rv<=? AND kind=? {where}"
                        f"ORDER BY rv LIMIT {_BATCH}", (last, position, key, *args)).fetchall()
                if not rows:
                    break
                for rv, type_, body in rows:
                    if stop.is_set():
                        return
                    last = rv
                    yield WatchEvent(cast(EventType, type_), _decode(body))
            last = max(last, position)
            while not stop.is_set():
                for rv, _k, _n, type_, body in sub.take(self.poll_interval):
                    if rv <= last:
                        continue
                    if stop.is_set():
                        return
                    last = rv
                    yield WatchEvent(cast(EventType, type_), _decode(body))
                if sub.closed:
                    if sub.error is not None:
                        raise sub.error
                    return
        finally:
            self._feed.unsubscribe(sub)

    def _head(self) -> int:
        with self._lock:
            self._check_open()
            return self._meta("rv")

    def _check_compacted(self, last: int) -> None:
        compacted = self._meta("compacted")
        if last < compacted:
            raise Expired(f"resourceVersion {last} is too old (changes up to {compacted} were compacted): "
                          "list again and watch from there")

    def _read_changes(self, after: int) -> tuple[_Changes, int]:
        """For the feed (lock held): up to a batch of log rows after ``after``, and the compaction horizon."""
        if self._closed:
            return [], after
        rows = self._db.execute("SELECT rv, kind, namespace, type, body FROM changes WHERE rv>? ORDER BY rv "
                                f"LIMIT {_BATCH}", (after,)).fetchall()
        return rows, self._meta("compacted")

    class _Tx:
        def __init__(self, store: LocalStore) -> None:
            self.store = store

        def __enter__(self) -> int:
            store = self.store
            store._lock.acquire()
            try:
                store._check_open()
                store._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                store._lock.release()
                raise
            store._wrote = False
            return store._meta("rv") + 1

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            store = self.store
            try:
                if exc_type is None:
                    store._db.execute("COMMIT")
                    if store._wrote:
                        store._cond.notify_all()
                else:
                    store._db.execute("ROLLBACK")
            finally:
                store._lock.release()

    def _write(self) -> LocalStore._Tx:
        return LocalStore._Tx(self)

    def _check_open(self) -> None:
        if self._closed:
            raise ClusterError(f"the store {self.path!r} is closed")

    def _meta(self, key: str) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()[0])

    def _select(self, kind: Kind, namespace: str | None) -> _Rows:
        if namespace is None:
            return self._db.execute("SELECT body FROM objects WHERE kind=? ORDER BY namespace, name",
                                    (_key(kind),)).fetchall()
        return self._db.execute("SELECT body FROM objects WHERE kind=? AND namespace=? ORDER BY name",
                                (_key(kind), _ns(kind, namespace))).fetchall()

    def _exists(self, kind: Kind, namespace: str, name: str) -> bool:
        return self._db.execute("SELECT 1 FROM objects WHERE kind=? AND namespace=? AND name=?",
                                (_key(kind), namespace, name)).fetchone() is not None

    def _get_locked(self, kind: Kind, namespace: str, name: str) -> Obj:
        row = self._db.execute("SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?",
                               (_key(kind), namespace, name)).fetchone()
        if row is None:
            raise NotFound(f"{kind.kind} {name!r} not found" + (f" in namespace {namespace!r}" if namespace else ""))
        return _decode(row[0])

    def _free_name(self, kind: Kind, prefix: str, namespace: str) -> str:
        for _ in range(20):
            name = prefix + _objects.random_suffix()
            if not self._exists(kind, namespace, name):
                return name
        raise AlreadyExists(f"no free name with generateName {prefix!r} after 20 tries")

    def _put(self, kind: Kind, obj: Obj, rv: int, type_: EventType, insert: bool = False) -> str:
        meta = obj["metadata"]
        ns, name, body = _ns(kind, meta.get("namespace")), meta["name"], json.dumps(obj, separators=(",", ":"))
        self._db.execute("INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?,?)",
                         (_key(kind), ns, name, meta["uid"], rv, body))
        if not insert:
            self._db.execute("DELETE FROM owners WHERE kind=? AND namespace=? AND name=?", (_key(kind), ns, name))
        self._db.executemany("INSERT INTO owners VALUES (?,?,?,?)",
                             [(uid, _key(kind), ns, name) for uid in _objects.owner_uids(obj)])
        self._log(kind, ns, type_, body, rv)
        return body

    def _delete_one(self, kind: Kind, obj: Obj, rv: int) -> int:
        meta = obj["metadata"]
        ns = _ns(kind, meta.get("namespace"))
        self._db.execute("DELETE FROM objects WHERE kind=? AND namespace=? AND name=?", (_key(kind), ns, meta["name"]))
        self._db.execute("DELETE FROM owners WHERE kind=? AND namespace=? AND name=?", (_key(kind), ns, meta["name"]))
        meta["resourceVersion"] = str(rv)
        self._log(kind, ns, "DELETED", json.dumps(obj, separators=(",", ":")), rv)
        return rv + 1

    def _log(self, kind: Kind, ns: str, type_: str, body: str, rv: int) -> None:
        self._db.execute("INSERT INTO changes VALUES (?,?,?,?,?)", (rv, _key(kind), ns, type_, body))
        self._db.execute("UPDATE meta SET value=? WHERE key='rv'", (rv,))
        self._wrote = True
        horizon = rv - self.keep_changes
        if horizon > 0 and rv % max(1, min(100, self.keep_changes)) == 0:
            self._db.execute("DELETE FROM changes WHERE rv<=?", (horizon,))
            self._db.execute("UPDATE meta SET value=max(value, ?) WHERE key='compacted'", (horizon,))


def _decode(text: str | bytes) -> Obj:
    """A stored JSON body as an object."""
    obj: Obj = json.loads(text)
    return obj


def _clone(obj: Obj) -> Obj:
    """A deep copy of a JSON document (through JSON: cheaper than ``copy.deepcopy`` for plain JSON)."""
    return _decode(json.dumps(obj))


def _spec_of(obj: Obj) -> dict[str, Any]:
    """Everything but metadata and status: what a generation counts changes of."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}
