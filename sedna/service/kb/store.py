"""Knowledge-base operations: register index versions, publish them, change task status, query.

:class:`KnowledgeStore` is what the server's routes call. Registering a version validates the
index (:mod:`.schema`), requires every blob it names to be stored already (with the size the
index says), then in **one transaction** numbers the version, records it and updates Sedna's
tables: task groups (sample and task counts, deploy flag), tasks (attributes), the group's
current model (a new row when the model's hash changed), task-group relations (Sedna's
``transfer_radio = 1 / tasks in the group``) and sample sets. A failed registration changes
nothing. ``published`` marks what the edge serves: the latest published version.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from typing import Any

from sedna.service.kb.blobs import BlobStore
from sedna.service.kb.db import Database, Transaction
from sedna.service.kb.errors import KBNotFoundError, KBValidationError
from sedna.service.kb.schema import blob_refs, validate_index


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def canonical(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


class KnowledgeStore:
    """The KB's state: a :class:`Database` plus a :class:`BlobStore`."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs

    # -- blobs -------------------------------------------------------------------------------------
    def record_blob(self, ref: dict[str, Any]) -> None:
        with self.db.transaction() as tx:
            if tx.one("SELECT sha256 FROM ll_blobs WHERE sha256 = ?", (ref["sha256"],)) is None:
                tx.execute("INSERT INTO ll_blobs (sha256, size, format, created_at) VALUES (?, ?, ?, ?)",
                           (ref["sha256"], ref["size"], ref["format"], _now()))

    # -- versions ----------------------------------------------------------------------------------
    def register(self, doc: Any, publish: bool = False, parent: int | None = None) -> int:
        """Validate and store ``doc`` as the next version; return its number."""
        doc = copy.deepcopy(validate_index(doc))
        for ref in blob_refs(doc):
            if not self.blobs.has(ref["sha256"]):
                raise KBValidationError("blob", f"{ref['sha256']} ({ref['format']}) named by the index has not been "
                                                f"uploaded; PUT it to /knowledgebase/blobs/{ref['sha256']} first")
            self.blobs.verify(ref)
        with self.db.transaction() as tx:
            row = tx.one("SELECT MAX(version) FROM ll_versions")
            version = int(row[0] or 0) + 1 if row else 1
            doc["version"] = version
            doc.setdefault("createTime", _now())
            text = canonical(doc)
            now = _now()
            tx.execute("INSERT INTO ll_versions (version, created_at, published, published_at, parent, index_json, "
                       "index_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (version, now, int(publish), now if publish else None, parent, text,
                        hashlib.sha256(text.encode()).hexdigest()))
            self._record_tasks(tx, doc, version, now)
        return version

    def _record_tasks(self, tx: Transaction, doc: dict[str, Any], version: int, now: str) -> None:
        for section, data_type in (("seen_task", 0), ("unseen_task", 2)):
            for group in (doc.get(section) or {}).get("task_groups", []):
                count = sum((t.get("samples") or {}).get("count", 0) for t in group["tasks"])
                grp = tx.one("SELECT id FROM ll_task_grp WHERE name = ?", (group["entry"],))
                if grp is None:
                    grp = tx.one("INSERT INTO ll_task_grp (name, deploy, sample_num, task_num) VALUES (?, ?, ?, ?) "
                                 "RETURNING id", (group["entry"], int(group.get("deploy", True)), count,
                                                  len(group["tasks"])))
                else:
                    tx.execute("UPDATE ll_task_grp SET deploy = ?, sample_num = ?, task_num = ? WHERE id = ?",
                               (int(group.get("deploy", True)), count, len(group["tasks"]), grp[0]))
                assert grp is not None
                grp_id = grp[0]
                model = group["model"]
                current = tx.one("SELECT model_url FROM ll_task_models WHERE task_id = ? AND is_current = 1",
                                 (grp_id,))
                if current is None or current[0] != model["blob"]["sha256"]:
                    tx.execute("UPDATE ll_task_models SET is_current = 0 WHERE task_id = ?", (grp_id,))
                    tx.execute("INSERT INTO ll_task_models (task_id, model_url, is_current, metrics, version, "
                               "created_at) VALUES (?, ?, 1, ?, ?, ?)",
                               (grp_id, model["blob"]["sha256"], json.dumps(model.get("metrics", {})), version, now))
                radio = 1.0 / len(group["tasks"])
                for task in group["tasks"]:
                    attr = json.dumps(task.get("meta_attr", []))
                    row = tx.one("SELECT id FROM ll_tasks WHERE name = ?", (task["entry"],))
                    if row is None:
                        row = tx.one("INSERT INTO ll_tasks (name, task_attr, created_at, updated_at) VALUES "
                                     "(?, ?, ?, ?) RETURNING id", (task["entry"], attr, now, now))
                    else:
                        tx.execute("UPDATE ll_tasks SET task_attr = ?, updated_at = ? WHERE id = ?",
                                   (attr, now, row[0]))
                    assert row is not None
                    task_id = row[0]
                    if tx.one("SELECT id FROM ll_task_relation WHERE grp_id = ? AND task_id = ?",
                              (grp_id, task_id)) is None:
                        tx.execute("INSERT INTO ll_task_relation (grp_id, task_id, transfer_radio) VALUES (?, ?, ?)",
                                   (grp_id, task_id, radio))
                    tx.execute("UPDATE ll_task_relation SET transfer_radio = ? WHERE grp_id = ?", (radio, grp_id))
                    samples = task.get("samples") or {}
                    blob = (samples.get("blob") or {}).get("sha256", "")
                    known = tx.one("SELECT s.id FROM ll_samples s JOIN ll_task_sample ts ON ts.sample_id = s.id "
                                   "WHERE ts.task_id = ? AND s.data_url = ? AND s.sample_num = ?",
                                   (task_id, blob, samples.get("count", 0)))
                    if known is None:
                        sample = tx.one("INSERT INTO ll_samples (data_url, descr, data_type, updated_at, sample_num, "
                                        "version) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                                        (blob, task["entry"], data_type, now, samples.get("count", 0), version))
                        assert sample is not None
                        tx.execute("INSERT INTO ll_task_sample (sample_id, task_id) VALUES (?, ?)",
                                   (sample[0], task_id))

    def publish(self, version: int) -> None:
        """Mark ``version`` published (the edge serves the latest published version)."""
        with self.db.transaction() as tx:
            if tx.one("SELECT version FROM ll_versions WHERE version = ?", (version,)) is None:
                raise KBNotFoundError(f"index version {version} does not exist")
            tx.execute("UPDATE ll_versions SET published = 1, published_at = ? WHERE version = ?", (_now(), version))

    def get(self, version: int | None = None, published: bool = True) -> dict[str, Any]:
        """The index of ``version`` (default: the latest published one, or latest of all)."""
        if version is not None:
            rows = self.db.query("SELECT index_json FROM ll_versions WHERE version = ?", (version,))
            if not rows:
                raise KBNotFoundError(f"index version {version} does not exist")
        else:
            where = "WHERE published = 1" if published else ""
            rows = self.db.query(f"SELECT index_json FROM ll_versions {where} ORDER BY version DESC LIMIT 1")
            if not rows:
                raise KBNotFoundError("no index version has been published yet" if published
                                      else "the knowledge base has no index version yet")
        return json.loads(rows[0][0])

    def versions(self) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT version, created_at, published, published_at, parent, index_sha256 "
                             "FROM ll_versions ORDER BY version")
        return [{"version": r[0], "createdAt": r[1], "published": bool(r[2]), "publishedAt": r[3],
                 "parent": r[4], "sha256": r[5]} for r in rows]

    def latest_published(self) -> int | None:
        rows = self.db.query("SELECT MAX(version) FROM ll_versions WHERE published = 1")
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def update_status(self, tasks: list[str], status: int, version: int | None = None,
                      publish: bool | None = None) -> int:
        """Sedna's ``update/status``: set ``deploy`` of the named groups in a new version; return it."""
        base = self.get(version, published=False)
        base_version = int(base["version"])
        names = {g["entry"] for s in ("seen_task", "unseen_task") for g in (base.get(s) or {}).get("task_groups", [])}
        unknown = [t for t in tasks if t not in names]
        if unknown:
            raise KBValidationError("tasks", f"unknown task group(s) {unknown} in version {base_version} "
                                             f"(known: {sorted(names)})")
        for section in ("seen_task", "unseen_task"):
            for group in (base.get(section) or {}).get("task_groups", []):
                if group["entry"] in tasks:
                    group["deploy"] = bool(status)
        base.pop("createTime", None)
        was_published = any(v["version"] == base_version and v["published"] for v in self.versions())
        return self.register(base, publish=was_published if publish is None else publish, parent=base_version)

    def tasks(self) -> list[dict[str, Any]]:
        """Task groups with their tasks, current model and sample count (Sedna's tables, joined)."""
        groups = self.db.query("SELECT id, name, deploy, sample_num, task_num FROM ll_task_grp ORDER BY id")
        out = []
        for gid, name, deploy, sample_num, task_num in groups:
            model = self.db.query("SELECT model_url, metrics, version FROM ll_task_models WHERE task_id = ? AND "
                                  "is_current = 1", (gid,))
            members = self.db.query("SELECT t.name, t.task_attr, r.transfer_radio FROM ll_task_relation r JOIN "
                                    "ll_tasks t ON t.id = r.task_id WHERE r.grp_id = ? ORDER BY t.id", (gid,))
            out.append({"entry": name, "deploy": bool(deploy), "sampleNum": sample_num, "taskNum": task_num,
                        "model": {"sha256": model[0][0], "metrics": json.loads(model[0][1]),
                                  "version": model[0][2]} if model else None,
                        "tasks": [{"entry": m[0], "meta_attr": json.loads(m[1]), "transfer_radio": m[2]}
                                  for m in members]})
        return out
