"""The IncrementalLearningJob controller: the Train -> Eval -> Deploy -> Train stage machine.

``reconcile(namespace/name)`` validates the job (:mod:`.il_validation`), keeps the inference
worker running from the start (:mod:`.il_workers`), then advances the machine as far as the
observed world allows, appending one Sedna-shaped condition per transition
(``{type, status, stage, reason, message, data, lastHeartbeatTime, lastTransitionTime}``, ``data``
a JSON string with the stage's inputs and outputs; the last :data:`HISTORY` kept):

- ``(S, Waiting)``: the LC decides (triggers); its report in ``status.edgeReports.lc`` moves the
  stage to Ready (Train opens round N+1), Completed (no deploy needed) or Failed (with its reason);
- ``(Train|Eval, Ready)``: create the stage Pod ``<job>-<train|eval>-<round>`` -> Starting;
- ``(Train|Eval, Starting|Running)``: Pod running -> Running; the worker's report (matched by
  Pod name) -> Completed with its models, or Failed; a failed Pod -> Failed with the log location;
- ``(Deploy, Ready)``: hot update -> Running until the inference worker reports it loaded this
  round's model; otherwise the inference Pod is recreated -> Starting until it is ready;
- Completed -> the next stage, Waiting; Failed -> (Train, Waiting). The job loops forever.

The GM mirrors what the LC needs (:class:`sedna.controlplane.il_protocol.JobState`) into an annotation,
since the hub forwards metadata and spec changes only. :func:`handle_upstream` files LC and worker
reports under ``status.edgeReports`` (:mod:`.il_reports`); only it writes there, only this controller
writes the rest. The inference worker's counter report becomes ``status.inference``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from gm.cluster.interface import DATASET, INCREMENTAL_LEARNING_JOB, MODEL, POD, Cluster, Conflict, NotFound, Obj
from gm.controllers import il_reports, il_validation, il_workers
from gm.controllers.il_reports import handle_upstream
from gm.controllers.workloads import HASH_ANNOTATION
from gm.runtime.caching import Cache
from gm.runtime.mapping import own_key, owner_keys
from gm.runtime.outcomes import DONE, ObjectKey, Outcome
from gm.runtime.patches import StatusPatch, utc_now
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings
from sedna.controlplane import il_protocol as ilp

log = logging.getLogger(__name__)

KIND = INCREMENTAL_LEARNING_JOB
HISTORY = 50
REPORT_GRACE_SECONDS = 30.0
"""How long a stage Pod may have succeeded without its worker's report before the stage fails."""
POLL = 2.0


def condition(stage: str, type_: str, reason: str, message: str, data: dict[str, Any] | None, now: str) -> Obj:
    """One entry of the history, in Sedna's shape (``data`` is a JSON string)."""
    return {"type": type_, "status": "True", "stage": stage, "reason": reason, "message": message,
            "data": json.dumps(data or {}, sort_keys=True), "lastHeartbeatTime": now, "lastTransitionTime": now}


class IncrementalLearningReconciler:
    """Level-based reconciler of IncrementalLearningJobs."""

    def __init__(self, cluster: Cluster, caches: dict[str, Cache], settings: ControllerSettings,
                 now: Callable[[], str] = utc_now, clock: Callable[[], float] = time.time) -> None:
        self.cluster, self.settings, self.now, self.clock = cluster, settings, now, clock
        self.jobs, self.datasets = caches[KIND.plural], caches[DATASET.plural]
        self.models, self.pods = caches[MODEL.plural], caches[POD.plural]

    # -- the loop ---------------------------------------------------------------------------------
    def reconcile(self, key: ObjectKey) -> Outcome:
        job = self.jobs.get(key.namespace, key.name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return DONE
        status = job.get("status") or {}
        patch = StatusPatch(status, int(job["metadata"].get("generation") or 1), self.now)
        history: list[Obj] = list(status.get("conditions") or [])
        if not patch.get("startTime"):
            patch.set("startTime", self.now())
        problems = il_validation.validate(job, lambda n: self.datasets.get(key.namespace, n),
                                          lambda n: self.models.get(key.namespace, n))
        outcome = DONE
        if problems:
            self._invalid(job, history, problems)
        else:
            self._ensure_inference(job, self._deployed_round(history, status))
            outcome = self._advance(job, history)
        if not history:
            history.append(condition(ilp.TRAIN, ilp.WAITING, "JobCreated", "waiting for the train trigger", {},
                                     self.now()))
        last = history[-1]
        patch.set("conditions", history[-HISTORY:])
        patch.set("stage", last["stage"])
        patch.set("stageState", last["type"])
        patch.set("round", self._round(history, status))
        patch.set("deployedRound", self._deployed_round(history, status))
        inference = il_reports.inference_status(job)
        if inference is not None:
            patch.set("inference", inference)
        body = patch.body()
        if body:
            self.cluster.patch_status(KIND, key.namespace, key.name, body)
        self._mirror(job, history)
        return outcome

    def _invalid(self, job: Obj, history: list[Obj], problems: list[il_validation.Problem]) -> None:
        waiting = all(p.waiting for p in problems)
        state, reason = (ilp.WAITING, "MissingReference") if waiting else (ilp.FAILED, "InvalidSpec")
        message = "; ".join(str(p) for p in problems)
        last = history[-1] if history else {}
        if last.get("message") != message or last.get("type") != state:
            history.append(condition(last.get("stage", ilp.TRAIN), state, reason, message, {}, self.now()))
            self.cluster.emit_event(job, reason, message, "Warning")

    def _advance(self, job: Obj, history: list[Obj]) -> Outcome:
        for _ in range(8):  # a few transitions per reconcile; each one is recorded
            if not history:
                history.append(condition(ilp.TRAIN, ilp.WAITING, "JobCreated", "waiting for the train trigger",
                                         {}, self.now()))
            last = history[-1]
            if last.get("reason") in ("InvalidSpec", "MissingReference"):
                history.append(condition(last["stage"], ilp.WAITING, "SpecValid", "the spec is valid now",
                                         {}, self.now()))
                continue
            step = self._step(job, last, history)
            if step is None:
                return Outcome.requeue(POLL) if last["type"] in (ilp.STARTING, ilp.RUNNING) else DONE
            history.append(step)
        return Outcome.requeue(0.1)

    def _step(self, job: Obj, last: Obj, history: list[Obj]) -> Obj | None:
        stage, state, round_ = last["stage"], last["type"], self._round(history)
        data = _data(last)
        now = self.now()
        if state == ilp.COMPLETED:
            nxt = ilp.NEXT_STAGE[stage]
            return condition(nxt, ilp.WAITING, "StageCompleted", f"{stage} completed; waiting for {nxt}",
                             {"round": round_}, now)
        if state == ilp.FAILED:
            return condition(ilp.TRAIN, ilp.WAITING, "StageFailed", f"{stage} failed; waiting for the next "
                             "train trigger", {"round": round_}, now)
        if state == ilp.WAITING:
            return self._lc_decision(job, stage, round_, now)
        if state == ilp.READY and stage in (ilp.TRAIN, ilp.EVAL):
            pod = il_workers.stage_pod(job, stage, round_, data.get("input") or {}, self._dataset_url(job),
                                       self.settings)
            self._create(pod)
            return condition(stage, ilp.STARTING, "PodCreated", f"created pod {pod['metadata']['name']}",
                             {**data, "pod": pod["metadata"]["name"]}, now)
        if state == ilp.READY:  # Deploy
            if _hot_update(job):
                return condition(stage, ilp.RUNNING, "HotUpdate", "waiting for the inference worker to load "
                                 "the new model", {**data, "since": self.clock()}, now)
            self._restart_inference(job, round_)
            return condition(stage, ilp.STARTING, "RestartingInference", "recreating the inference worker "
                             "with the new model", {**data, "since": self.clock()}, now)
        if stage == ilp.DEPLOY:
            return self._watch_deploy(job, state, round_, data, now)
        return self._watch_stage(job, stage, state, data, now)

    # -- steps -------------------------------------------------------------------------------------
    def _lc_decision(self, job: Obj, stage: str, round_: int, now: str) -> Obj | None:
        report = il_reports.edge_report(job, "lc")
        want = round_ + 1 if stage == ilp.TRAIN else round_
        if report.get("phase") != stage.lower() or report.get("round") != want:
            return None
        inputs = report.get("input") or {}
        message = str(report.get("message") or "")
        kind = {"ready": ilp.READY, "completed": ilp.COMPLETED, "failed": ilp.FAILED}.get(report.get("status"))
        if kind is None:
            return None
        return condition(stage, kind, "ReportedByLC", message or f"{stage} {kind.lower()}",
                         {"round": want, "input": inputs}, now)

    def _watch_stage(self, job: Obj, stage: str, state: str, data: dict[str, Any], now: str) -> Obj | None:
        name = str(data.get("pod") or "")
        ns = job["metadata"]["namespace"]
        pod = self.pods.get(ns, name) or self._get_pod(ns, name)  # the cache may lag behind our create
        report = il_reports.edge_report(job, stage.lower())
        mine = report.get("worker") == name
        if mine and report.get("status") == "failed":
            error = (report.get("info") or {}).get("error") or "the worker reported a failure"
            hint = il_workers.log_hint(job, name, pod, self.settings)
            return condition(stage, ilp.FAILED, "WorkerFailed", f"{name}: {error}; {hint}", data, now)
        if mine and report.get("status") == "completed":
            models = report.get("models") or []
            return condition(stage, ilp.COMPLETED, "WorkerCompleted", f"{name} completed",
                             {**data, "output": {"models": models}}, now)
        if pod is None:
            return condition(stage, ilp.FAILED, "PodMissing", f"pod {name} disappeared", data, now)
        phase, why = il_workers.pod_phase(pod)
        if phase == "Failed":
            hint = il_workers.log_hint(job, name, pod, self.settings)
            return condition(stage, ilp.FAILED, "PodFailed", f"{name} failed: {why}; {hint}", data, now)
        if phase == "Succeeded":
            since = float(data.get("succeededAt") or 0)
            if not since:
                return condition(stage, ilp.RUNNING, "PodSucceeded", f"{name} exited; waiting for its report",
                                 {**data, "succeededAt": self.clock()}, now)
            if self.clock() - since > REPORT_GRACE_SECONDS:
                hint = il_workers.log_hint(job, name, pod, self.settings)
                return condition(stage, ilp.FAILED, "NoReport", f"{name} exited without reporting its results "
                                 f"within {REPORT_GRACE_SECONDS:g}s; {hint}", data, now)
            return None
        if phase == "Running" and state == ilp.STARTING:
            return condition(stage, ilp.RUNNING, "PodRunning", f"{name} is running", data, now)
        return None

    def _watch_deploy(self, job: Obj, state: str, round_: int, data: dict[str, Any], now: str) -> Obj | None:
        ns = job["metadata"]["namespace"]
        name = il_workers.pod_name(job, "infer")
        if state == ilp.RUNNING:  # hot update
            report = il_reports.edge_report(job, "deploy")
            if (report.get("info") or {}).get("round") == round_:
                if report.get("status") == "completed":
                    return condition(ilp.DEPLOY, ilp.COMPLETED, "HotUpdated", f"{report.get('worker')} serves "
                                     f"the round {round_} model", data, now)
                if report.get("status") == "failed":
                    error = (report.get("info") or {}).get("error") or "load failed"
                    return condition(ilp.DEPLOY, ilp.FAILED, "HotUpdateFailed", f"{name}: {error}; "
                                     f"{il_workers.log_hint(job, name, self.pods.get(ns, name), self.settings)}",
                                     data, now)
            if il_reports.served_round(job) == round_:  # the counter report names it: the deploy report was lost
                return condition(ilp.DEPLOY, ilp.COMPLETED, "HotUpdated", f"{name} serves the round {round_} "
                                 "model (from its inference report)", data, now)
            limit = 3 * _poll_period(job) + REPORT_GRACE_SECONDS
            if self.clock() - float(data.get("since") or self.clock()) > limit:
                return condition(ilp.DEPLOY, ilp.FAILED, "HotUpdateTimeout", f"the inference worker did not "
                                 f"report loading the round {round_} model within {limit:g}s", data, now)
            return None
        pod = self.pods.get(ns, name)
        fresh = pod is not None and (pod["metadata"].get("labels") or {}).get(
            il_workers.ROUND_LABEL) == str(round_)
        if fresh and il_workers.pod_phase(pod)[0] == "Running" and il_workers.pod_ready(pod):
            return condition(ilp.DEPLOY, ilp.COMPLETED, "InferenceRestarted", f"{name} restarted with the round "
                             f"{round_} model", data, now)
        return None

    # -- children ----------------------------------------------------------------------------------
    def _ensure_inference(self, job: Obj, deployed_round: int) -> None:
        desired = il_workers.infer_pod(job, self._model_url(job), self._dataset_node(job), self.settings,
                                       deployed_round)
        self._apply_pod(desired)

    def _restart_inference(self, job: Obj, round_: int) -> None:
        desired = il_workers.infer_pod(job, self._model_url(job), self._dataset_node(job), self.settings, round_)
        self._apply_pod(desired)

    def _apply_pod(self, desired: Obj) -> None:
        meta = desired["metadata"]
        current = self.pods.get(meta["namespace"], meta["name"])
        if current is not None and (current["metadata"].get("annotations") or {}).get(HASH_ANNOTATION) != \
                meta["annotations"][HASH_ANNOTATION]:
            try:
                self.cluster.delete(POD, meta["namespace"], meta["name"])
            except NotFound:
                pass
            current = None
        if current is None:
            self._create(desired)

    def _create(self, pod: Obj) -> None:
        from gm.cluster.interface import AlreadyExists

        meta = pod["metadata"]
        for _ in range(20):
            try:
                self.cluster.create(pod)
                return
            except AlreadyExists:  # the previous incarnation is still going away
                existing = self._get_pod(meta["namespace"], meta["name"])
                if existing is None:
                    continue
                if (existing["metadata"].get("annotations") or {}).get(HASH_ANNOTATION) == \
                        meta["annotations"][HASH_ANNOTATION]:
                    return
                time.sleep(0.05)
        raise Conflict(f"pod {meta['name']} is still being deleted")

    def _get_pod(self, namespace: str, name: str) -> Obj | None:
        try:
            return self.cluster.get(POD, namespace, name)
        except NotFound:
            return None

    # -- lookups -----------------------------------------------------------------------------------
    @staticmethod
    def _round(history: list[Obj], status: Obj | None = None) -> int:
        for cond in reversed(history):
            value = _data(cond).get("round")
            if isinstance(value, int):
                return value
        return int((status or {}).get("round") or 0)

    @staticmethod
    def _deployed_round(history: list[Obj], status: Obj) -> int:
        found = int(status.get("deployedRound") or 0)
        for cond in history:
            if cond.get("stage") == ilp.DEPLOY and cond.get("reason") == "RestartingInference":
                found = max(found, int(_data(cond).get("round") or 0))
        return found

    def _model_url(self, job: Obj) -> str:
        name = ((job["spec"].get("deploySpec") or {}).get("model") or {}).get("name", "")
        return str(((self.models.get(job["metadata"]["namespace"], name) or {}).get("spec") or {}).get("url", ""))

    def _dataset(self, job: Obj) -> Obj:
        return self.datasets.get(job["metadata"]["namespace"], job["spec"]["dataset"]["name"]) or {}

    def _dataset_url(self, job: Obj) -> str:
        return str((self._dataset(job).get("spec") or {}).get("url", ""))

    def _dataset_node(self, job: Obj) -> str:
        return str((self._dataset(job).get("spec") or {}).get("nodeName", ""))

    def _mirror(self, job: Obj, history: list[Obj]) -> None:
        """Write the LC's view of the job into its annotation when it changed."""
        last = history[-1]
        trained, trained_round, evals = "", 0, []
        for cond in history:
            data = _data(cond)
            if cond["stage"] == ilp.TRAIN and cond["type"] == ilp.COMPLETED:
                models = (data.get("output") or {}).get("models") or []
                if models:
                    trained, trained_round = str(models[0].get("url", "")), int(data.get("round") or 0)
            if cond["stage"] == ilp.EVAL and cond["type"] == ilp.COMPLETED:
                evals = (data.get("output") or {}).get("models") or []
        meta = job["metadata"]
        before = ilp.JobState.from_annotations(meta.get("annotations")) or ilp.JobState()
        if not trained:
            trained, trained_round = before.trained_model, before.trained_round
        state = ilp.JobState(last["stage"], last["type"], self._round(history, job.get("status")), trained,
                             trained_round, evals or before.eval_results)
        if (meta.get("annotations") or {}).get(ilp.STATE_ANNOTATION) == state.to_json():
            return
        for _ in range(3):
            try:
                current = self.cluster.get(KIND, meta["namespace"], meta["name"])
                current["metadata"].setdefault("annotations", {})[ilp.STATE_ANNOTATION] = state.to_json()
                current.pop("status", None)
                self.cluster.update(current)
                return
            except Conflict:
                continue
            except NotFound:
                return


def _data(cond: Obj) -> dict[str, Any]:
    raw = cond.get("data")
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if raw else {}
    except (TypeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _hot_update(job: Obj) -> bool:
    return bool(((job["spec"].get("deploySpec") or {}).get("model") or {}).get("hotUpdateEnabled"))


def _poll_period(job: Obj) -> float:
    return float(((job["spec"].get("deploySpec") or {}).get("model") or {}).get("pollPeriodSeconds") or 60)


__all__ = ["IncrementalLearningReconciler", "condition", "handle_upstream", "setup"]


def setup(manager: Manager, settings: ControllerSettings) -> Controller:
    """Register the controller and its watches with ``manager``."""
    caches = {k.plural: manager.informer(k).cache for k in (KIND, DATASET, MODEL, POD)}
    reconciler = IncrementalLearningReconciler(manager.cluster, caches, settings)
    controller = manager.add_controller("incrementallearning", reconciler, settings.workers)
    manager.watch(KIND, controller, own_key)
    manager.watch(POD, controller, owner_keys(KIND))
    jobs = caches[KIND.plural]
    manager.watch(DATASET, controller, _users(jobs, ("dataset",)))
    manager.watch(MODEL, controller, _users(jobs, ("initialModel",), ("deploySpec", "model"),
                                            ("evalSpec", "initialEvalModel")))
    return controller


def _users(jobs: Cache, *paths: tuple[str, ...]) -> Callable[[Obj], list[ObjectKey]]:
    def mapper(obj: Obj) -> list[ObjectKey]:
        ns, name = obj["metadata"].get("namespace") or "", obj["metadata"]["name"]
        keys = []
        for job in jobs.list(ns):
            for path in paths:
                value: Any = job.get("spec") or {}
                for part in (*path, "name"):
                    value = value.get(part) if isinstance(value, dict) else None
                if value == name:
                    keys.append(ObjectKey(ns, job["metadata"]["name"]))
                    break
        return keys

    return mapper
