"""The stage history of a learning job: Sedna-shaped conditions, one per transition.

An IncrementalLearningJob's (and a LifelongLearningJob's) ``status.conditions`` is a history, not
a set: each transition of the Train -> Eval -> Deploy machine appends
``{type, status, stage, reason, message, data, lastHeartbeatTime, lastTransitionTime}``, where
``type`` is the stage's state (``Waiting``, ``Ready``, ``Starting``, ``Running``, ``Completed``,
``Failed``) and ``data`` is a JSON string with the stage's inputs and outputs (Sedna's shape). The
last entry is the machine's state; only the last :data:`HISTORY` entries are kept.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict, cast

from gm.cluster.interface import Obj
from sedna.controlplane import il_protocol as ilp

HISTORY = 50
"""Entries kept in ``status.conditions``."""


class StageCondition(TypedDict):
    """One history entry (Sedna's ``ILJobCondition`` shape)."""

    type: str
    """The stage's state: ``Waiting``, ``Ready``, ``Starting``, ``Running``, ``Completed`` or ``Failed``."""
    status: str
    stage: str
    """``Train``, ``Eval`` or ``Deploy``."""
    reason: str
    message: str
    data: str
    """JSON: ``{"round": N, "input": {...}, "output": {"models": [...]}, "pod": name, ...}``."""
    lastHeartbeatTime: str
    lastTransitionTime: str


def condition(stage: str, type_: str, reason: str, message: str, data: dict[str, Any] | None, now: str) -> Obj:
    """One history entry, a :class:`StageCondition` as JSON (``data`` is stored as a JSON string)."""
    entry: StageCondition = {
        "type": type_, "status": "True", "stage": stage, "reason": reason, "message": message,
        "data": json.dumps(data or {}, sort_keys=True), "lastHeartbeatTime": now, "lastTransitionTime": now}
    return cast(Obj, entry)


def initial(now: str) -> Obj:
    """The entry a new job starts with: Train, Waiting for its trigger."""
    return condition(ilp.TRAIN, ilp.WAITING, "JobCreated", "waiting for the train trigger", {}, now)


def data_of(cond: Obj) -> dict[str, Any]:
    """An entry's ``data`` as a dict ({} when absent or malformed)."""
    raw = cond.get("data")
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if raw else {}
    except (TypeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def round_of(history: list[Obj], status: Obj | None = None) -> int:
    """The round the machine is in: the last entry that names one, else ``status.round``, else 0."""
    for cond in reversed(history):
        value = data_of(cond).get("round")
        if isinstance(value, int):
            return value
    return int((status or {}).get("round") or 0)


def trained(history: list[Obj]) -> tuple[str, int, list[Any]]:
    """``(url of the last trained model, its round, the last evaluation's models)`` ('' / 0 / [] when none)."""
    model, model_round, evals = "", 0, list[Any]()
    for cond in history:
        data = data_of(cond)
        if cond.get("stage") == ilp.TRAIN and cond.get("type") == ilp.COMPLETED:
            models = (data.get("output") or {}).get("models") or []
            if models:
                model, model_round = str(models[0].get("url", "")), int(data.get("round") or 0)
        if cond.get("stage") == ilp.EVAL and cond.get("type") == ilp.COMPLETED:
            evals = (data.get("output") or {}).get("models") or []
    return model, model_round, evals
