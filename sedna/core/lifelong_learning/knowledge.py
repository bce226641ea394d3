"""The knowledge base in memory: task groups with their models, prototypes, samples, calibration.

:class:`Knowledge` is what training builds and inference serves. :meth:`Knowledge.save` writes it
into a :class:`~sedna.service.kb.sources.LocalKB` -- each model through the estimator's own
``save`` (``.npz`` or ``.onnx``), prototypes as ``.npy``, samples as ``.npz`` -- and returns the
index document naming those files by hash. :meth:`Knowledge.load` reads an index back, loading
each group's model into a fresh estimator through its ``load``. Neither step unpickles.
"""

from __future__ import annotations

import copy
import inspect
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sedna.algorithms.lifelong.artifacts import KnownTask
from sedna.algorithms.lifelong.samples import TaskSamples
from sedna.backend.adapter import EstimatorAdapter
from sedna.common.errors import ModelLoadError
from sedna.core.lifelong_learning.samples_io import load_samples, save_samples
from sedna.core.lifelong_learning.specs import Choice
from sedna.service.kb.schema import API_VERSION
from sedna.service.kb.sources import LocalKB

EstimatorFactory = Callable[[], EstimatorAdapter]


def estimator_factory(estimator: Any) -> EstimatorFactory:
    """Fresh estimators: a class is instantiated, an instance deep-copied (one per task group)."""
    if inspect.isclass(estimator):
        return lambda: EstimatorAdapter(estimator)
    return lambda: EstimatorAdapter(copy.deepcopy(estimator))


@dataclass
class TaskRecord:
    """One task of a group: its attribute values and its samples (``heldout`` marks calibration rows)."""

    entry: str
    meta_attr: tuple[str, ...]
    samples: TaskSamples | None
    heldout: np.ndarray | None
    count: int
    ref: dict[str, Any] | None = None


@dataclass
class GroupState:
    """A task group and everything the knowledge base keeps about it."""

    entry: str
    tasks: list[TaskRecord]
    estimator: EstimatorAdapter
    prototypes: np.ndarray
    metrics: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, float] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    deploy: bool = True
    trained_samples: int = 0
    base: str | None = None
    model_ref: dict[str, Any] | None = None
    prototypes_ref: dict[str, Any] | None = None
    create_time: str = ""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        method = "predict_proba" if self.estimator.has("predict_proba") else "predict"
        return np.asarray(self.estimator.call(method, x), dtype=np.float32)

    def known(self) -> KnownTask:
        return KnownTask(self.entry, self.prototypes, [t.meta_attr for t in self.tasks if t.meta_attr],
                         self.predict_proba, dict(self.calibration), self.deploy)

    def samples(self) -> tuple[TaskSamples, np.ndarray] | None:
        """All stored samples of the group and their held-out mask (None when none were kept)."""
        parts = [(t.samples, t.heldout) for t in self.tasks if t.samples is not None and t.heldout is not None]
        if not parts:
            return None
        return (TaskSamples.concat([p[0] for p in parts]),  # type: ignore[misc]
                np.concatenate([p[1] for p in parts]))  # type: ignore[misc]


@dataclass
class Knowledge:
    """Task groups plus the index-wide choices (attribute names, recognizer, allocation)."""

    groups: list[GroupState]
    attribute: list[str]
    recognizer: Choice
    allocation: Choice
    version: int | None = None

    def known_tasks(self, deployable_only: bool = True) -> list[KnownTask]:
        return [g.known() for g in self.groups if g.deploy or not deployable_only]

    def deployed_groups(self) -> list[GroupState]:
        return [g for g in self.groups if g.deploy]

    def group(self, entry: str) -> GroupState:
        for g in self.groups:
            if g.entry == entry:
                return g
        raise KeyError(entry)

    # -- persistence -------------------------------------------------------------------------------
    def save(self, local: LocalKB, model_format: str = "npz") -> dict[str, Any]:
        """Write every group's files into ``local``; return the index document (not yet written)."""
        groups = []
        with tempfile.TemporaryDirectory(prefix="kb-save-", dir=local.root) as tmp:
            work = Path(tmp)
            for i, g in enumerate(self.groups):
                if g.model_ref is None:
                    path = work / f"model-{i}.{model_format}"
                    g.estimator.call("save", str(path))
                    if not path.exists():
                        raise ModelLoadError(f"estimator.save({str(path)!r}) wrote no file for task group {g.entry!r}")
                    g.model_ref = local.blobs.put_file(path, model_format)
                if g.prototypes_ref is None:
                    np.save(work / f"prototypes-{i}.npy", g.prototypes.astype(np.float32))
                    g.prototypes_ref = local.blobs.put_file(work / f"prototypes-{i}.npy", "npy")
                tasks = []
                for j, t in enumerate(g.tasks):
                    if t.ref is None and t.samples is not None and t.heldout is not None:
                        t.ref = local.blobs.put_file(save_samples(work / f"samples-{i}-{j}.npz", t.samples,
                                                                  t.heldout), "npz")
                    tasks.append({"entry": t.entry, "meta_attr": list(t.meta_attr),
                                  "samples": {"count": t.count, "blob": t.ref}})
                groups.append({
                    "entry": g.entry, "deploy": g.deploy, "classes": list(g.classes), "tasks": tasks,
                    "model": {"blob": g.model_ref, "metrics": _json_metrics(g.metrics),
                              "trained_samples": g.trained_samples, "base": g.base,
                              "createTime": g.create_time or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                    "prototypes": g.prototypes_ref, "calibration": {k: float(v) for k, v in g.calibration.items()},
                })
        return {"apiVersion": API_VERSION, "attribute": list(self.attribute),
                "recognizer": self.recognizer.to_json(), "allocation": self.allocation.to_json(),
                "seen_task": {"task_groups": groups}, "unseen_task": {"task_groups": []}}

    @classmethod
    def load(cls, local: LocalKB, new_estimator: EstimatorFactory, with_samples: bool = False) -> Knowledge:
        """Read ``local``'s index; load each group's model (and its samples when asked)."""
        doc = local.read()
        if doc is None:
            raise ModelLoadError(f"no knowledge base index in {local.root}")
        groups = []
        for g in doc["seen_task"]["task_groups"]:
            estimator = new_estimator()
            model_path = local.blob_path(g["model"]["blob"])
            try:
                estimator.load(str(model_path))
            except Exception as exc:
                raise ModelLoadError(f"task group {g['entry']!r}: cannot load model {model_path}: {exc}") from exc
            prototypes = np.load(local.blob_path(g["prototypes"]), allow_pickle=False)
            tasks = []
            for t in g["tasks"]:
                ref = (t.get("samples") or {}).get("blob")
                samples = heldout = None
                if with_samples and ref:
                    samples, heldout = load_samples(local.blob_path(ref))
                tasks.append(TaskRecord(t["entry"], tuple(t.get("meta_attr", [])), samples, heldout,
                                        int((t.get("samples") or {}).get("count", 0)), ref))
            model = g["model"]
            groups.append(GroupState(g["entry"], tasks, estimator, prototypes, dict(model.get("metrics", {})),
                                     dict(g.get("calibration", {})), list(g.get("classes", [])),
                                     bool(g.get("deploy", True)), int(model.get("trained_samples", 0)),
                                     model.get("base"), model["blob"], g["prototypes"], model.get("createTime", "")))
        recognizer = doc.get("recognizer") or {"method": "SampleRecognitionByDistance"}
        allocation = doc.get("allocation") or {"method": "TaskAllocationByNearestTask"}
        return cls(groups, list(doc.get("attribute", [])),
                   Choice("unseen_sample_recognition", recognizer["method"], dict(recognizer.get("param", {}))),
                   Choice("task_allocation", allocation["method"], dict(allocation.get("param", {}))),
                   doc.get("version"))


def _json_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        array = np.asarray(value, dtype=np.float64)
        out[str(name)] = [float(v) for v in array.ravel()] if array.ndim else float(array)
    return out
