"""What lifelong-learning workers tell the Local Controller.

Reports keep Sedna's upstream shape (``ownerKind=lifelonglearningjob``, ``kind`` train / eval /
deploy / inference, ``results`` = ``[model record]``). The one model record is the knowledge-base
index -- Sedna's ``runtime.Model`` fields, so the GM can fill ``status.knowledgeBase``:

``{"format": "json", "url": <index location>, "version": N, "metrics": {metric: mean over groups},
"current_metric": {group: {metric: value}}, "classes": [...], "number_of_model": groups,
"number_of_labeled_unseen_sample": labelled samples that formed new tasks this round,
"number_of_unseen_sample": unseen samples left pending, "task_samples": {group: samples}}``
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from sedna.core.incremental_stats import CounterReporter
from sedna.core.lifelong_learning.knowledge import Knowledge

OWNER_KIND = "lifelonglearningjob"


def _floats(metrics: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        array = np.asarray(value, dtype=np.float64)
        out[str(name)] = [float(v) for v in array.ravel()] if array.ndim else float(array)
    return out


def kb_record(url: str, knowledge: Knowledge, per_group: Mapping[str, Mapping[str, Any]] | None = None,
              labeled_unseen: int = 0, unseen: int = 0, overall: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The index's model record (see the module docstring)."""
    current = {g.entry: _floats((per_group or {}).get(g.entry, g.metrics)) for g in knowledge.groups}
    if overall is None:
        scalars: dict[str, list[float]] = {}
        for values in current.values():
            for name, value in values.items():
                if isinstance(value, float):
                    scalars.setdefault(name, []).append(value)
        overall = {name: sum(v) / len(v) for name, v in scalars.items()}
    classes = sorted({c for g in knowledge.groups for c in g.classes}, key=lambda c: (len(c), c))
    return {"format": "json", "url": url, "version": knowledge.version, "metrics": _floats(overall),
            "current_metric": current, "classes": classes, "number_of_model": len(knowledge.groups),
            "number_of_labeled_unseen_sample": int(labeled_unseen), "number_of_unseen_sample": int(unseen),
            "task_samples": {g.entry: sum(t.count for t in g.tasks) for g in knowledge.groups},
            "deployed": [g.entry for g in knowledge.groups if g.deploy]}


class InferenceReporter(CounterReporter):
    """Incremental learning's counter reporter, with Sedna's lifelong names added.

    ``ownerInfo``: ``inferenceNumber``, ``unseenSampleNumber`` (also as ``hardExampleNumber``),
    ``kbVersion`` (as ``round``), ``modelUpdateTime``, ``startTime``, ``updateTime``.
    """

    def owner_info(self) -> dict[str, Any]:
        info = super().owner_info()
        info["unseenSampleNumber"] = info["hardExampleNumber"]
        info["kbVersion"] = info["round"]
        return info


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
