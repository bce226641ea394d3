"""The status records the controllers write, as types: ``TypedDict`` s for the JSON, ``str`` Enums for closed sets.

Every kind's ``status`` is JSON on the object; these types say what the controllers put there,
so a reader (the CLI, the dashboard, the LC) and a writer agree on one shape. Per-kind phases and
condition types live with their controller; the records several kinds share are here.
"""

from __future__ import annotations

from typing import TypedDict

from gm.runtime.patches import StrEnum


class Condition(TypedDict, total=False):
    """A Kubernetes condition (:class:`~gm.runtime.patches.StatusPatch` writes it)."""

    type: str
    status: str
    """``"True"`` or ``"False"``."""
    reason: str
    message: str
    observedGeneration: int
    lastTransitionTime: str


class Reason(StrEnum):
    """Condition and Event reasons several kinds use."""

    INVALID_SPEC = "InvalidSpec"
    MISSING_REFERENCE = "MissingReference"
    CRASH_LOOP = "CrashLoopBackOff"
    WORKERS_STARTING = "WorkersStarting"
    VALID = "Valid"


class ReadyCondition(StrEnum):
    """The two conditions of a Dataset and a Model: one of them is True."""

    READY = "Ready"
    FAILED = "Failed"


class NodeReport(TypedDict, total=False):
    """``status.nodeReports[<node>]`` of a Model: what the LC of ``<node>`` found about the model there.

    Written by the edge hub from the node's report (the node comes from the authenticated stream,
    never from the payload); read by the Model controller.
    """

    available: bool
    """The model file is there and readable (and matches ``spec.sha256`` when given)."""
    reason: str
    """CamelCase, e.g. ``Available``, ``FileMissing``, ``DigestMismatch``, ``Unreadable``."""
    message: str
    """For people: the path and what is wrong with it."""
    generation: int
    """``metadata.generation`` of the Model the LC checked; a report about an older spec is ignored."""
    updateTime: str


class WorkerHealth(TypedDict, total=False):
    """A worker Pod's health as a status field (an IncrementalLearningJob's ``status.inferenceWorker``)."""

    pod: str
    state: str
    """A :class:`~gm.workloads.health.PodState` value."""
    restarts: int
    message: str
