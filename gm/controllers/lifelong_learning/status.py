"""What a LifelongLearningJob's status says about its knowledge base, from the records its workers report.

Train and eval workers report one record, the KB index they produced (``docs/lifelong.md``:
``{url, version, current_metric: {group: {metric: value}}, task_samples: {group: n}, classes,
number_of_labeled_unseen_sample, number_of_unseen_sample, deployed, ...}``). From them:

- ``status.knowledgeBase``, Sedna's shape and JSON names: ``AIModels {numberOfAIModels,
  listOfAIModels: [{modelID, averagePrecision, numberOfTrainSamples}]}``, ``AIClasses
  {numberOfAIClasses, listOfAIClasses}``, ``samples {numberOfLabeledUnseenSample,
  numberOfUnseenSample}``. The models and classes come from the newest record; a model's
  ``averagePrecision`` is its first metric (a per-class list counts by its mean). Sedna overwrote
  the sample counts with each report; here ``numberOfLabeledUnseenSample`` adds up what every
  training round learned from (the initial training's samples, then each round's samples of new
  tasks) and ``numberOfUnseenSample`` is what the edge flagged as unseen (the inference worker's
  ``unseenSampleNumber``).
- ``status.kbVersions``: ``trained`` / ``evaluated`` (the newest version a completed Train / Eval
  produced), ``published`` (by the Deploy stage) and ``served`` (what the inference worker last
  said it serves).
- ``status.inference``: the inference worker's counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from gm.cluster.interface import Obj
from gm.controllers.stages.history import data_of
from gm.controllers.stages.reports import edge_report
from gm.runtime.patches import parse_time
from sedna.controlplane import il_protocol as ilp


class AIModel(TypedDict):
    modelID: str
    averagePrecision: float
    numberOfTrainSamples: int


class KnowledgeBaseStatus(TypedDict):
    """``status.knowledgeBase`` (Sedna's ``KnowledgeBase``)."""

    AIModels: dict[str, Any]
    AIClasses: dict[str, Any]
    samples: dict[str, int]


class InferenceStatus(TypedDict):
    """``status.inference``: the inference worker's latest counters."""

    worker: Any
    count: Any
    unseenSamples: Any
    kbVersion: Any
    updateTime: Any


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def first_metric(metrics: Any) -> float:
    """The first metric of ``{name: value}`` as a float (a list counts by its mean; 0.0 when none)."""
    if not isinstance(metrics, Mapping) or not metrics:
        return 0.0
    value = next(iter(metrics.values()))
    if isinstance(value, list):
        numbers = [float(v) for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return sum(numbers) / len(numbers) if numbers else 0.0
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def record_of(entry: Obj) -> dict[str, Any] | None:
    """The KB record of a completed Train or Eval history entry (its first output model), else None."""
    if entry.get("type") != ilp.COMPLETED or entry.get("stage") not in (ilp.TRAIN, ilp.EVAL):
        return None
    models = (data_of(entry).get("output") or {}).get("models") or []
    return models[0] if models and isinstance(models[0], dict) else None


def newest_record(history: list[Obj]) -> dict[str, Any] | None:
    """The record of the newest completed Train or Eval in ``history``."""
    for entry in reversed(history):
        record = record_of(entry)
        if record is not None:
            return record
    return None


def knowledge_base(record: Mapping[str, Any], labeled_unseen: int, unseen: int) -> KnowledgeBaseStatus:
    """``status.knowledgeBase`` from a record and the two sample counts (see the module docstring)."""
    found_current, found_samples = record.get("current_metric") or {}, record.get("task_samples") or {}
    ok = isinstance(found_current, Mapping) and isinstance(found_samples, Mapping)
    current: Mapping[str, Any] = found_current if ok else {}
    samples: Mapping[str, Any] = found_samples if ok else {}
    models: list[AIModel] = [{"modelID": str(group), "averagePrecision": round(first_metric(metrics), 6),
                              "numberOfTrainSamples": _int(samples.get(group))}
                             for group, metrics in current.items()]
    classes = [str(c) for c in record.get("classes") or []]
    return {"AIModels": {"numberOfAIModels": len(models), "listOfAIModels": models},
            "AIClasses": {"numberOfAIClasses": len(classes), "listOfAIClasses": classes},
            "samples": {"numberOfLabeledUnseenSample": labeled_unseen, "numberOfUnseenSample": unseen}}


def labeled_unseen(previous: Mapping[str, Any] | None, new_entries: Iterable[Obj]) -> int:
    """The running count of labelled unseen samples: ``previous``'s plus each Train completed since."""
    total = _int(((previous or {}).get("samples") or {}).get("numberOfLabeledUnseenSample"))
    for entry in new_entries:
        record = record_of(entry)
        if record is not None and entry.get("stage") == ilp.TRAIN:
            total += _int(record.get("number_of_labeled_unseen_sample"))
    return total


def version_of(record: Mapping[str, Any] | None) -> int:
    """The KB version a record names (0 when none)."""
    value = (record or {}).get("version")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def stage_versions(history: list[Obj], previous: Mapping[str, Any] | None) -> dict[str, int]:
    """``trained`` and ``evaluated``: the newest versions completed Train / Eval stages produced."""
    out = {"trained": _int((previous or {}).get("trained")), "evaluated": _int((previous or {}).get("evaluated"))}
    for entry in history:
        version = version_of(record_of(entry))
        key = "trained" if entry.get("stage") == ilp.TRAIN else "evaluated"
        if version:
            out[key] = max(out[key], version)
    return out


def served_version(job: Obj) -> int | None:
    """The version the inference worker last said it serves: its newest deploy or counter report."""
    found: tuple[float, int] | None = None
    for slot, field in (("deploy", "kbVersion"), ("inference", "kbVersion")):
        report = edge_report(job, slot)
        value = (report.get("info") or {}).get(field)
        if slot == "deploy" and report.get("status") != "completed":
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            moment = parse_time(str(report.get("time") or ""))
            stamp = moment.timestamp() if moment is not None else 0.0
            if found is None or (stamp, value) > found:
                found = (stamp, value)
    return found[1] if found is not None else None


def inference_status(job: Obj) -> InferenceStatus | None:
    """``status.inference`` from the inference worker's latest counter report, or None before one."""
    report = edge_report(job, "inference")
    info = report.get("info") or {}
    if not info or report.get("status") == "failed":
        return None
    return {"worker": report.get("worker"), "count": info.get("inferenceNumber"),
            "unseenSamples": info.get("unseenSampleNumber", info.get("hardExampleNumber")),
            "kbVersion": info.get("kbVersion", info.get("round")), "updateTime": info.get("updateTime") or report.get(
                "time")}


__all__ = ["InferenceStatus", "KnowledgeBaseStatus", "first_metric", "inference_status", "knowledge_base",
           "labeled_unseen", "newest_record", "record_of", "served_version", "stage_versions", "version_of"]
