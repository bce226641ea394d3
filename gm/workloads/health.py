"""One reading of a worker Pod's health, for every controller.

:func:`pod_health` turns a Pod's status into a :class:`PodHealth`. The rules, in order:

- no Pod: ``Missing``; a ``deletionTimestamp``: ``Terminating``; phase Succeeded: ``Succeeded``;
- a container waiting in ``CrashLoopBackOff``, or one that restarted and has been running again
  for less than ``settle_seconds`` (a flapping worker is up between crashes; counting it as
  running only after it stayed up is Kubernetes' ``minReadySeconds``): ``CrashLoopBackOff``,
  with the restart count, the last exit code and, while it settles, how long until it counts;
- a container waiting for something that needs a fix (:data:`BLOCKED_REASONS`: a bad image, a
  missing ConfigMap): ``Blocked``;
- phase Failed (it will not run again): ``Failed``, with the Pod's or the container's reason;
- phase Running with the Ready condition True (or absent): ``Running``; anything else ``Pending``.

What each state means for the owner differs per kind and is spelled out in each controller
(a joint-inference service fails while a worker crash-loops and recovers with it; a federated
job's aggregator fails the job only after :data:`~gm.controllers.federated_learning.reconciler.MAX_AGGREGATOR_RESTARTS`
restarts; a learning stage fails at once).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from gm.cluster.interface import Obj
from gm.runtime.patches import StrEnum, parse_time

SETTLE_SECONDS = 10.0
"""A container that restarted counts as running again only after this long without another crash."""
BLOCKED_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError",
                             "CreateContainerError", "RunContainerError", "InvalidImageName"})
"""Waiting reasons a Pod does not get out of by itself in reasonable time."""


class PodState(StrEnum):
    """The health states of :func:`pod_health`."""

    MISSING = "Missing"
    PENDING = "Pending"
    RUNNING = "Running"
    CRASH_LOOP = "CrashLoopBackOff"
    BLOCKED = "Blocked"
    FAILED = "Failed"
    SUCCEEDED = "Succeeded"
    TERMINATING = "Terminating"


UNHEALTHY = frozenset({PodState.CRASH_LOOP, PodState.BLOCKED, PodState.FAILED})


@dataclass(frozen=True)
class PodHealth:
    """What :func:`pod_health` found about one Pod."""

    state: PodState
    pod: str = ""
    """The Pod's name ('' when missing)."""
    phase: str = ""
    """The Pod's ``status.phase`` as written."""
    reason: str = ""
    """The reason behind the state (``CrashLoopBackOff``, ``Error``, ``ErrImagePull``, ``ContainerCreating``...)."""
    message: str = ""
    restarts: int = 0
    """Restarts of all its containers."""
    container: str = ""
    """The container the verdict is about ('' for the Pod as a whole)."""
    exit_code: int | None = None
    """That container's last exit code, when it has one."""
    settles_in: float | None = None
    """Seconds until a restarted, running again container counts as ``Running`` (requeue then)."""

    @property
    def ready(self) -> bool:
        """Running and ready."""
        return self.state is PodState.RUNNING

    def describe(self) -> str:
        """One line for a condition message: ``pod P CrashLoopBackOff: container c restarted 3 times, ...``."""
        if self.state is PodState.MISSING:
            return "no Pod yet"
        if self.state is PodState.CRASH_LOOP:
            times = "once" if self.restarts == 1 else f"{self.restarts} times"
            text = f"pod {self.pod} CrashLoopBackOff: container {self.container!r} restarted {times}"
            if self.exit_code is not None:
                text += f", last exit code {self.exit_code}" + (f" ({self.reason})" if self.reason else "")
            if self.settles_in is not None:
                text += ", running again but not yet stable"
            return text + (f": {self.message}" if self.message else "")
        if self.state is PodState.FAILED:
            return f"pod {self.pod} Failed: {self.reason} {self.message}".rstrip()
        if self.state is PodState.BLOCKED:
            return f"pod {self.pod} {self.reason}: {self.message}".rstrip(": ")
        return f"pod {self.pod} {self.state}" + (f": {self.reason}" if self.reason else "")


def _last_exit(cs: dict[str, Any]) -> tuple[int | None, str]:
    """The exit code and reason of the container's last termination (current one first)."""
    for state in (cs.get("state") or {}, cs.get("lastState") or {}):
        term = state.get("terminated") or {}
        if isinstance(term.get("exitCode"), int):
            return term["exitCode"], str(term.get("reason") or "")
    return None, ""


def pod_health(pod: Obj | None, now: datetime | None = None, settle_seconds: float = SETTLE_SECONDS) -> PodHealth:
    """The health of ``pod`` at ``now`` (default: the current time); see the module docstring."""
    if pod is None:
        return PodHealth(PodState.MISSING)
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    statuses: list[dict[str, Any]] = [cs for cs in status.get("containerStatuses") or [] if isinstance(cs, dict)]
    base = PodHealth(PodState.PENDING, pod=str(meta.get("name") or ""), phase=phase,
                     restarts=sum(int(cs.get("restartCount") or 0) for cs in statuses))
    if meta.get("deletionTimestamp"):
        return replace(base, state=PodState.TERMINATING)
    if phase == "Succeeded":
        return replace(base, state=PodState.SUCCEEDED)
    moment = now or datetime.now(timezone.utc)
    for cs in statuses:
        found = _container_trouble(base, cs, moment, settle_seconds)
        if found is not None:
            return found
    if phase == "Failed":
        if status.get("reason") == "CrashLoopBackOff":  # the local runtime retrying a container that cannot start
            first = statuses[0] if statuses else {}
            return replace(base, state=PodState.CRASH_LOOP, reason="StartError",
                           message=str(status.get("message") or ""), container=str(first.get("name") or ""),
                           exit_code=_last_exit(first)[0])
        return _failed(base, status, statuses)
    if phase == "Running" and _ready(status):
        return replace(base, state=PodState.RUNNING)
    waiting = next((str(((cs.get("state") or {}).get("waiting") or {}).get("reason") or "") for cs in statuses
                    if (cs.get("state") or {}).get("waiting")), "")
    return replace(base, reason=waiting or ("NotReady" if phase == "Running" else ""),
                   message=str(status.get("message") or ""))


def _container_trouble(base: PodHealth, cs: dict[str, Any], now: datetime, settle_seconds: float) -> PodHealth | None:
    """A crash loop, a flapping restart or a blocked start of one container (None: none of those)."""
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    name = str(cs.get("name") or "")
    exit_code, exit_reason = _last_exit(cs)
    if waiting.get("reason") == "CrashLoopBackOff":
        return replace(base, state=PodState.CRASH_LOOP, reason=exit_reason, message=str(waiting.get("message") or ""),
                       container=name, exit_code=exit_code)
    if waiting.get("reason") in BLOCKED_REASONS:
        return replace(base, state=PodState.BLOCKED, reason=str(waiting["reason"]),
                       message=str(waiting.get("message") or ""), container=name)
    started = parse_time((state.get("running") or {}).get("startedAt"))
    if int(cs.get("restartCount") or 0) > 0 and started is not None:
        up = (now - started).total_seconds()
        if up < settle_seconds:
            return replace(base, state=PodState.CRASH_LOOP, reason=exit_reason, container=name, exit_code=exit_code,
                           settles_in=max(0.0, settle_seconds - up))
    return None


def _failed(base: PodHealth, status: dict[str, Any], statuses: Iterable[dict[str, Any]]) -> PodHealth:
    reason, message = str(status.get("reason") or ""), str(status.get("message") or "")
    for cs in statuses:
        code, why = _last_exit(cs)
        if code:
            return replace(base, state=PodState.FAILED, reason=reason or why, message=message or f"exit code {code}",
                           container=str(cs.get("name") or ""), exit_code=code)
    return replace(base, state=PodState.FAILED, reason=reason, message=message)


def _ready(status: dict[str, Any]) -> bool:
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or [] if isinstance(c, dict)}
    return conditions.get("Ready", "True") == "True"
