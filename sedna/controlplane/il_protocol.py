"""What the GM controller and the LC job loop of incremental learning agree on (both import this).

The GM owns the stage machine (``status.stage`` / ``stageState`` / ``round`` and the condition
history). The LC only receives metadata and spec changes from the hub, so the GM mirrors what the
LC needs into the job annotation :data:`STATE_ANNOTATION` (JSON, see :class:`JobState`). The LC
answers with status reports whose payload carries ``"source": "lc"`` (its decisions: a stage is
``ready`` with its inputs, ``completed`` when no deploy is needed, ``failed`` with a message); the
GM's upstream handler files them under ``status.edgeReports.lc`` and worker reports under
``status.edgeReports.<phase>``, and the controller consumes them. A user starts a stage now by
setting :data:`TRIGGER_TRAIN` / :data:`TRIGGER_DEPLOY` to a new value (any token, e.g. a timestamp).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

STATE_ANNOTATION = "sedna.io/incremental-state"
TRIGGER_TRAIN = "sedna.io/trigger-train"
TRIGGER_DEPLOY = "sedna.io/trigger-deploy"
LC_SOURCE = "lc"
QUARANTINE = "quarantine"
"""Key of an LC report listing the index records it quarantined (``{index, count, samples: [{line, reason}]}``);
the GM files it apart from the LC's decisions and shows it as ``status.quarantinedSamples``."""

TRAIN, EVAL, DEPLOY = "Train", "Eval", "Deploy"
STAGES = (TRAIN, EVAL, DEPLOY)
WAITING, READY, STARTING, RUNNING, COMPLETED, FAILED = "Waiting", "Ready", "Starting", "Running", "Completed", "Failed"
STATES = (WAITING, READY, STARTING, RUNNING, COMPLETED, FAILED)
NEXT_STAGE = {TRAIN: EVAL, EVAL: DEPLOY, DEPLOY: TRAIN}


def hot_update_config_path(output_dir: str) -> str:
    """Where the LC writes ``model_config.json`` and the inference worker watches it."""
    return f"{output_dir.rstrip('/')}/deploy/model_config.json"


@dataclass(frozen=True)
class JobState:
    """The GM's view of a job, as the LC reads it from :data:`STATE_ANNOTATION`."""

    stage: str = TRAIN
    state: str = WAITING
    round: int = 0
    trained_model: str = ""
    """URL of the newest successfully trained model ("" before the first)."""
    trained_round: int = 0
    eval_results: list[dict[str, Any]] = field(default_factory=list)
    """The last completed eval's ``[{format, url, metrics}]``: new model first, deployed second."""
    retry_at: float = 0.0
    """After a failure: the Unix time before which the GM opens no new round (0: no back-off)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_annotations(cls, annotations: dict[str, str] | None) -> JobState | None:
        raw = (annotations or {}).get(STATE_ANNOTATION)
        if not raw:
            return None
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            return None
        if not isinstance(body, dict):
            return None
        known = {k: body[k] for k in cls.__dataclass_fields__ if k in body}
        return cls(**known)


__all__ = ["COMPLETED", "DEPLOY", "EVAL", "FAILED", "LC_SOURCE", "NEXT_STAGE", "QUARANTINE", "READY", "RUNNING",
           "STAGES", "STARTING", "STATES", "STATE_ANNOTATION", "TRAIN", "TRIGGER_DEPLOY", "TRIGGER_TRAIN", "WAITING",
           "JobState", "hot_update_config_path"]
