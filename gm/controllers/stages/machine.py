"""The Train -> Eval -> Deploy -> Train stage machine of a learning job, shared by the kinds that have one.

:meth:`StageMachine.advance` moves a job as far as the observed world allows, appending one entry
per transition to its history (:mod:`.history`):

- ``(S, Waiting)``: the LC decides (triggers); its report in ``status.edgeReports.lc``
  (:mod:`.reports`) moves the stage to Ready (Train opens round N+1), Completed (nothing to do) or
  Failed (with its reason);
- ``(Train|Eval, Ready)``: create the stage Pod ``<job>-<train|eval>-<round>`` -> Starting; a Pod of
  that name still terminating is a short requeue, not a wait;
- ``(Train|Eval, Starting|Running)``: Pod running -> Running; the worker's report (matched by Pod
  name) -> Completed with its models, or Failed; a Pod that failed or crash-loops -> Failed at
  once, with its last log lines and where its log is; a Pod that exited without a report within
  :data:`REPORT_GRACE_SECONDS` -> Failed;
- ``(Deploy, *)``: the kind's business (:class:`StageKind`): an incremental job hot-updates or
  recreates its inference worker, a lifelong one publishes a knowledge base;
- Completed -> the next stage, Waiting; Failed -> (Train, Waiting). The job loops forever.

An invalid spec appends ``Waiting``/``MissingReference`` or ``Failed``/``InvalidSpec``; the machine
resumes where it was once the spec is valid. Every appended entry is also an Event on the job
(Warning for failures and spec problems). The GM mirrors what the LC needs
(:class:`sedna.controlplane.il_protocol.JobState`) into an annotation, since the hub forwards metadata and
spec changes, not status. A kind supplies the stage Pods and the Deploy stage through
:class:`StageKind`; everything else here is the same for every staged kind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from gm.cluster.interface import POD, Cluster, Conflict, Kind, NotFound, Obj
from gm.controllers.common.problems import Problem, verdict
from gm.controllers.common.status import Reason
from gm.controllers.common.writes import Writes
from gm.controllers.stages.history import HISTORY, condition, data_of, initial, round_of, trained
from gm.controllers.stages.reports import edge_report
from gm.runtime.caching import Cache
from gm.runtime.outcomes import DONE, Outcome
from gm.runtime.patches import parse_time, utc_now
from gm.settings import ControllerSettings
from gm.workloads.applying import TERMINATING_RETRY, PodAction, ensure_pod, get_or_none
from gm.workloads.health import PodState, pod_health
from gm.workloads.logs import LogTail, last_lines, log_hint, no_logs
from sedna.controlplane import il_protocol as ilp

REPORT_GRACE_SECONDS = 30.0
"""How long a stage Pod may have succeeded without its worker's report before the stage fails."""
POLL = 2.0
"""Seconds between looks at a stage that is starting or running."""
MAX_STEPS = 8
"""Transitions one reconcile may make (each is recorded); more continue after a short requeue."""
SPEC_REASONS = (Reason.INVALID_SPEC, Reason.MISSING_REFERENCE)


@dataclass
class Run:
    """One reconcile of one job: its history as it grows, its writes, and when to look again."""

    job: Obj
    history: list[Obj]
    writes: Writes
    outcome: Outcome = DONE
    start: int = field(init=False)

    def __post_init__(self) -> None:
        self.start = len(self.history)

    @property
    def namespace(self) -> str:
        return str(self.job["metadata"]["namespace"])

    def requeue(self, after: float) -> None:
        """Look again after ``after`` seconds at the latest."""
        self.outcome = self.outcome.sooner(Outcome.requeue(after))


class StageKind(Protocol):
    """What a staged kind adds to the machine: its stage Pods and its Deploy stage."""

    def stage_pod(self, run: Run, stage: str, round_: int, inputs: dict[str, Any]) -> Obj:
        """The Train or Eval Pod of ``round_``; ``inputs`` is the LC's Ready input."""
        ...

    def start_deploy(self, run: Run, round_: int, data: dict[str, Any], now: str) -> Obj:
        """Act on ``(Deploy, Ready)``; the entry to append (Running, Starting or Completed)."""
        ...

    def watch_deploy(self, run: Run, state: str, round_: int, data: dict[str, Any], now: str
                     ) -> Obj | None:
        """The next entry of a Deploy stage that is Starting or Running, or None while it still is."""
        ...


class StageMachine:
    """The shared machine over one kind's jobs; see the module docstring."""

    def __init__(self, cluster: Cluster, kind: Kind, pods: Cache, settings: ControllerSettings, stages: StageKind,
                 now: Callable[[], str] = utc_now, clock: Callable[[], float] = time.time,
                 logs: LogTail = no_logs) -> None:
        self.cluster, self.kind, self.pods, self.settings, self.stages = cluster, kind, pods, settings, stages
        self.now, self.clock, self.logs = now, clock, logs

    # -- the loop ---------------------------------------------------------------------------------
    def invalid(self, run: Run, problems: list[Problem]) -> None:
        """Record a spec that cannot run: Waiting for a missing reference, Failed for a wrong value."""
        found = verdict(problems)
        state = ilp.WAITING if found.waiting else ilp.FAILED
        last = run.history[-1] if run.history else {}
        if last.get("message") != found.message or last.get("type") != state:
            run.history.append(condition(last.get("stage", ilp.TRAIN), state, found.reason, found.message, {},
                                         self.now()))

    def advance(self, run: Run) -> None:
        """Make every transition the observed world allows (up to :data:`MAX_STEPS`)."""
        history = run.history
        for _ in range(MAX_STEPS):
            if not history:
                history.append(initial(self.now()))
            last = history[-1]
            if last.get("reason") in SPEC_REASONS:
                history.append(condition(last["stage"], ilp.WAITING, "SpecValid", "the spec is valid now", {},
                                         self.now()))
                continue
            step = self._step(run, last)
            if step is None:
                if last["type"] in (ilp.STARTING, ilp.RUNNING):
                    run.requeue(POLL)
                return
            history.append(step)
        run.requeue(0.1)

    def finish(self, run: Run) -> None:
        """Write the history and its summary fields, and an Event for every entry this run appended."""
        history, patch = run.history, run.writes.patch
        if not history:
            history.append(initial(self.now()))
        last = history[-1]
        patch.set("conditions", history[-HISTORY:])
        patch.set("stage", last["stage"])
        patch.set("stageState", last["type"])
        patch.set("round", round_of(history, run.job.get("status")))
        for cond in history[run.start:]:
            warn = cond.get("type") == ilp.FAILED or cond.get("reason") in SPEC_REASONS
            (run.writes.warning if warn else run.writes.normal)(str(cond.get("reason") or ""),
                                                                str(cond.get("message") or ""))

    def _step(self, run: Run, last: Obj) -> Obj | None:
        stage, state, round_ = last["stage"], last["type"], round_of(run.history)
        data = data_of(last)
        now = self.now()
        if state == ilp.COMPLETED:
            nxt = ilp.NEXT_STAGE[stage]
            return condition(nxt, ilp.WAITING, "StageCompleted", f"{stage} completed; waiting for {nxt}",
                             {"round": round_}, now)
        if state == ilp.FAILED:
            return condition(ilp.TRAIN, ilp.WAITING, "StageFailed", f"{stage} failed; waiting for the next "
                             "train trigger", {"round": round_}, now)
        if state == ilp.WAITING:
            return self._lc_decision(run, stage, round_, now)
        if stage == ilp.DEPLOY:
            if state == ilp.READY:
                return self.stages.start_deploy(run, round_, data, now)
            return self.stages.watch_deploy(run, state, round_, data, now)
        if state == ilp.READY:
            pod = self.stages.stage_pod(run, stage, round_, data.get("input") or {})
            if not self.ensure(run, pod):
                return None
            return condition(stage, ilp.STARTING, "PodCreated", f"created pod {pod['metadata']['name']}",
                             {**data, "pod": pod["metadata"]["name"]}, now)
        return self._watch_stage(run, stage, state, data, now)

    # -- steps -------------------------------------------------------------------------------------
    def _lc_decision(self, run: Run, stage: str, round_: int, now: str) -> Obj | None:
        report = edge_report(run.job, "lc")
        want = round_ + 1 if stage == ilp.TRAIN else round_
        if report.get("phase") != stage.lower() or report.get("round") != want:
            return None
        inputs = report.get("input") or {}
        message = str(report.get("message") or "")
        kind = {"ready": ilp.READY, "completed": ilp.COMPLETED, "failed": ilp.FAILED}.get(str(report.get("status")))
        if kind is None:
            return None
        return condition(stage, kind, "ReportedByLC", message or f"{stage} {kind.lower()}",
                         {"round": want, "input": inputs}, now)

    def _watch_stage(self, run: Run, stage: str, state: str, data: dict[str, Any], now: str
                     ) -> Obj | None:
        name = str(data.get("pod") or "")
        ns = run.namespace
        pod = self.pods.get(ns, name) or get_or_none(self.cluster, POD, ns, name)  # the cache may lag our create
        report = edge_report(run.job, stage.lower())
        mine = report.get("worker") == name
        if mine and report.get("status") == "failed":
            error = (report.get("info") or {}).get("error") or "the worker reported a failure"
            return condition(stage, ilp.FAILED, "WorkerFailed", f"{name}: {error}; {self.hint(run, name, pod)}",
                             data, now)
        if mine and report.get("status") == "completed":
            models = report.get("models") or []
            return condition(stage, ilp.COMPLETED, "WorkerCompleted", f"{name} completed",
                             {**data, "output": {"models": models}}, now)
        if pod is None:
            return condition(stage, ilp.FAILED, "PodMissing", f"pod {name} disappeared", data, now)
        health = pod_health(pod, self.moment())
        if health.state in (PodState.FAILED, PodState.CRASH_LOOP):
            why = (health.message or health.reason or f"exit code {health.exit_code}") \
                if health.state is PodState.FAILED else health.describe()
            lines = last_lines(self.logs, ns, name, health.container)
            return condition(stage, ilp.FAILED, "PodFailed", f"{name} failed: {why}; "
                             f"{lines + '; ' if lines else ''}{self.hint(run, name, pod)}", data, now)
        if health.state is PodState.SUCCEEDED:
            since = float(data.get("succeededAt") or 0)
            if not since:
                return condition(stage, ilp.RUNNING, "PodSucceeded", f"{name} exited; waiting for its report",
                                 {**data, "succeededAt": self.clock()}, now)
            if self.clock() - since > REPORT_GRACE_SECONDS:
                return condition(stage, ilp.FAILED, "NoReport", f"{name} exited without reporting its results "
                                 f"within {REPORT_GRACE_SECONDS:g}s; {self.hint(run, name, pod)}", data, now)
            return None
        if health.phase == "Running" and state == ilp.STARTING:
            return condition(stage, ilp.RUNNING, "PodRunning", f"{name} is running", data, now)
        return None

    # -- helpers for kinds --------------------------------------------------------------------------
    def ensure(self, run: Run, pod: Obj) -> bool:
        """Make ``pod`` exist (recreating a changed one); False, with a short requeue, while an older Pod of
        that name is still terminating."""
        if ensure_pod(self.cluster, self.pods, pod) is PodAction.WAITING:
            run.requeue(TERMINATING_RETRY)
            return False
        return True

    def hint(self, run: Run, name: str, pod: Obj | None) -> str:
        """Where the log of Pod ``name`` is."""
        return log_hint(run.namespace, pod, name, self.settings)

    def moment(self) -> datetime:
        """``now`` as a datetime (for Pod health)."""
        return parse_time(self.now()) or datetime.now(timezone.utc)

    def mirror(self, job: Obj, history: list[Obj]) -> None:
        """Write the LC's view of the job into its annotation when it changed."""
        last = history[-1]
        model, model_round, evals = trained(history)
        meta = job["metadata"]
        before = ilp.JobState.from_annotations(meta.get("annotations")) or ilp.JobState()
        if not model:
            model, model_round = before.trained_model, before.trained_round
        state = ilp.JobState(last["stage"], last["type"], round_of(history, job.get("status")), model,
                             model_round, evals or before.eval_results)
        if (meta.get("annotations") or {}).get(ilp.STATE_ANNOTATION) == state.to_json():
            return
        for _ in range(3):
            try:
                current = self.cluster.get(self.kind, meta["namespace"], meta["name"])
                current["metadata"].setdefault("annotations", {})[ilp.STATE_ANNOTATION] = state.to_json()
                current.pop("status", None)
                self.cluster.update(current)
                return
            except Conflict:
                continue
            except NotFound:
                return
