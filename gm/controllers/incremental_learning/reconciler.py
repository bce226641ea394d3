"""The IncrementalLearningJob controller: the shared stage machine plus an inference worker.

``reconcile(namespace/name)`` validates the job (:mod:`.validation`), keeps the inference worker
running from the start (:mod:`.workers`), then lets the shared Train -> Eval -> Deploy machine
(:mod:`gm.controllers.stages.machine`) advance as far as the observed world allows. What is
incremental-learning-specific is the Deploy stage (:class:`IncrementalStages`):

- ``(Deploy, Ready)``: with hot update the machine goes Running until the inference worker reports
  it loaded this round's model (or its counter report names the round; or a timeout fails it);
  without, the inference Pod is recreated with the round's model -> Starting until it runs and is
  ready;
- ``status.deployedRound`` (the round whose model is in service, with or without hot update),
  ``status.inference`` (the worker's counters) and
  ``status.inferenceWorker`` (its Pod's health: a crash-looping inference worker shows here with its
  restarts and last log lines, and each new crash is a Warning Event).

:func:`handle_upstream` files LC and worker reports under ``status.edgeReports`` (:mod:`.reports`);
only it writes there, only this controller writes the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from gm.cluster.interface import DATASET, INCREMENTAL_LEARNING_JOB, MODEL, POD, Cluster, Obj
from gm.controllers.common.problems import Problem
from gm.controllers.common.writes import Writes
from gm.controllers.incremental_learning import mounts, reports, validation, workers
from gm.controllers.stages.history import condition, data_of
from gm.controllers.stages.inference import report_inference_worker
from gm.controllers.stages.machine import REPORT_GRACE_SECONDS, Run, StageMachine
from gm.runtime.caching import Cache
from gm.runtime.mapping import own_key, owner_keys
from gm.runtime.outcomes import DONE, NamespacedName, Outcome
from gm.runtime.patches import utc_now
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings
from gm.workloads import storage
from gm.workloads.health import pod_health
from gm.workloads.logs import LogTail, log_tail_for, no_logs
from sedna.controlplane import il_protocol as ilp

log = logging.getLogger(__name__)

KIND = INCREMENTAL_LEARNING_JOB
STORAGE_RECHECK_SECONDS = 5.0


class IncrementalLearningReconciler:
    """Level-based reconciler of IncrementalLearningJobs."""

    def __init__(self, cluster: Cluster, caches: dict[str, Cache], settings: ControllerSettings,
                 now: Callable[[], str] = utc_now, clock: Callable[[], float] = time.time,
                 logs: LogTail = no_logs) -> None:
        self.cluster, self.settings, self.now, self.clock, self.logs = cluster, settings, now, clock, logs
        self.jobs, self.datasets = caches[KIND.plural], caches[DATASET.plural]
        self.models, self.pods = caches[MODEL.plural], caches[POD.plural]
        self._secrets: dict[tuple[str, str], mounts.Secrets] = {}
        """Per job: the credential Secrets its last :meth:`storage_problems` read (keys reconcile one at a time,
        different keys in parallel, so this is keyed rather than one shared field)."""
        self.stages = IncrementalStages(self)
        self.machine = StageMachine(cluster, KIND, self.pods, settings, self.stages, now, clock, logs)

    def reconcile(self, key: NamespacedName) -> Outcome:
        job = self.jobs.get(key.namespace, key.name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            self._secrets.pop((key.namespace, key.name), None)
            return DONE
        status = job.get("status") or {}
        run = Run(job, list(status.get("conditions") or []), Writes(self.cluster, KIND, job, self.now))
        patch = run.writes.patch
        if not patch.get("startTime"):
            patch.set("startTime", self.now())
        problems = validation.validate(job, lambda n: self.datasets.get(key.namespace, n),
                                       lambda n: self.models.get(key.namespace, n))
        if not problems:
            problems = self.storage_problems(job)
            if problems:
                run.requeue(STORAGE_RECHECK_SECONDS)  # Secrets are not watched; the index is re-read by the LC
        if problems:
            self.machine.invalid(run, problems)
        else:
            self.stages.ensure_inference(run, deployed_round(run.history, status))
            self.machine.advance(run)
        self.machine.finish(run)
        patch.set("deployedRound", deployed_round(run.history, status))  # after advance: this run's deploys count
        inference = reports.inference_status(job)
        if inference is not None:
            patch.set("inference", inference)
        if not problems:
            self._inference_health(run)
        if run.writes.flush():
            self.machine.mirror(job, run.history)
        return run.outcome

    def _inference_health(self, run: Run) -> None:
        name = workers.pod_name(run.job, "infer")
        report_inference_worker(run, name, self.pods.get(run.namespace, name), self.machine.moment(), self.logs)

    def storage_problems(self, job: Obj) -> list[Problem]:
        """Unusable remote URLs: a missing or incomplete credential Secret, an unreadable remote dataset index,
        hot update with a remote ``outputDir``; each names the URL. Keeps the Secrets for :meth:`secrets`."""
        ns, spec = job["metadata"]["namespace"], job["spec"]
        self._secrets.pop((ns, job["metadata"]["name"]), None)
        if not self.settings.storage_injection:
            return []
        dataset = self.dataset(job)
        wanted = mounts.job_mounts(job, dataset, lambda n: self.models.get(ns, n))
        secrets = self._secrets[(ns, job["metadata"]["name"])] = storage.read_secrets(self.cluster.get, ns, wanted)
        found = mounts.problems("spec.credentialName", wanted, secrets)
        url = str((dataset.get("spec") or {}).get("url") or "")
        if storage.is_remote(url):
            for cond in (dataset.get("status") or {}).get("conditions") or []:
                if cond.get("type") == "IndexReadable" and cond.get("status") == "False":
                    found.append(Problem("spec.dataset", f"{url}: {cond.get('message') or 'unreadable'}",
                                         waiting=True))
        out = str(spec.get("outputDir") or "")
        if storage.is_remote(out) and _hot_update(job):
            found.append(Problem("spec.deploySpec.model.hotUpdateEnabled", f"hot update needs a local "
                                 f"spec.outputDir (the worker polls a file there), got {out!r}"))
        return found

    def secrets(self, job: Obj) -> mounts.Secrets:
        """The credential Secrets this reconcile of ``job`` read."""
        return self._secrets.get((job["metadata"]["namespace"], job["metadata"]["name"]), {})

    def model(self, namespace: str, name: str) -> Obj | None:
        return self.models.get(namespace, name)

    # -- lookups -----------------------------------------------------------------------------------
    def deploy_model(self, job: Obj) -> Obj | None:
        name = ((job["spec"].get("deploySpec") or {}).get("model") or {}).get("name", "")
        return self.models.get(job["metadata"]["namespace"], name)

    def model_url(self, job: Obj) -> str:
        return str(((self.deploy_model(job) or {}).get("spec") or {}).get("url", ""))

    def dataset(self, job: Obj) -> Obj:
        return self.datasets.get(job["metadata"]["namespace"], job["spec"]["dataset"]["name"]) or {}


class IncrementalStages:
    """The incremental-learning parts of the stage machine (:class:`~gm.controllers.stages.machine.StageKind`)."""

    def __init__(self, owner: IncrementalLearningReconciler) -> None:
        self.owner = owner

    def stage_pod(self, run: Run, stage: str, round_: int, inputs: dict[str, Any]) -> Obj:
        dataset = self.owner.dataset(run.job)
        dataset_url = str((dataset.get("spec") or {}).get("url", ""))
        found = mounts.stage_mounts(run.job, stage, inputs, dataset, lambda n: self.owner.model(run.namespace, n))
        return workers.stage_pod(run.job, stage, round_, inputs, dataset_url, self.owner.settings, found,
                                 self.owner.secrets(run.job))

    def ensure_inference(self, run: Run, round_: int) -> None:
        """The inference worker serving the model of deploy round ``round_`` (recreated when that changes)."""
        node = str((self.owner.dataset(run.job).get("spec") or {}).get("nodeName", ""))
        found = mounts.infer_mounts(run.job, self.owner.deploy_model(run.job))
        desired = workers.infer_pod(run.job, self.owner.model_url(run.job), node, self.owner.settings, round_,
                                    found, self.owner.secrets(run.job))
        self.owner.machine.ensure(run, desired)

    def start_deploy(self, run: Run, round_: int, data: dict[str, Any], now: str) -> Obj:
        if _hot_update(run.job):
            return condition(ilp.DEPLOY, ilp.RUNNING, "HotUpdate", "waiting for the inference worker to load "
                             "the new model", {**data, "since": self.owner.clock()}, now)
        self.ensure_inference(run, round_)
        return condition(ilp.DEPLOY, ilp.STARTING, "RestartingInference", "recreating the inference worker "
                         "with the new model", {**data, "since": self.owner.clock()}, now)

    def watch_deploy(self, run: Run, state: str, round_: int, data: dict[str, Any], now: str
                     ) -> Obj | None:
        job, machine = run.job, self.owner.machine
        name = workers.pod_name(job, "infer")
        if state == ilp.RUNNING:  # hot update
            report = reports.edge_report(job, "deploy")
            if (report.get("info") or {}).get("round") == round_:
                if report.get("status") == "completed":
                    return condition(ilp.DEPLOY, ilp.COMPLETED, "HotUpdated", f"{report.get('worker')} serves "
                                     f"the round {round_} model", data, now)
                if report.get("status") == "failed":
                    error = (report.get("info") or {}).get("error") or "load failed"
                    hint = machine.hint(run, name, self.owner.pods.get(run.namespace, name))
                    return condition(ilp.DEPLOY, ilp.FAILED, "HotUpdateFailed", f"{name}: {error}; {hint}", data, now)
            if reports.served_round(job) == round_:  # the counter report names it: the deploy report was lost
                return condition(ilp.DEPLOY, ilp.COMPLETED, "HotUpdated", f"{name} serves the round {round_} "
                                 "model (from its inference report)", data, now)
            limit = 3 * _poll_period(job) + REPORT_GRACE_SECONDS
            if self.owner.clock() - float(data.get("since") or self.owner.clock()) > limit:
                return condition(ilp.DEPLOY, ilp.FAILED, "HotUpdateTimeout", f"the inference worker did not "
                                 f"report loading the round {round_} model within {limit:g}s", data, now)
            return None
        pod = self.owner.pods.get(run.namespace, name)
        fresh = pod is not None and (pod["metadata"].get("labels") or {}).get(workers.ROUND_LABEL) == str(round_)
        if fresh and pod_health(pod, machine.moment()).ready:
            return condition(ilp.DEPLOY, ilp.COMPLETED, "InferenceRestarted", f"{name} restarted with the round "
                             f"{round_} model", data, now)
        return None


DEPLOYING_REASONS = ("RestartingInference", "HotUpdated")
"""Deploy entries that put a round's model into service: the inference Pod recreated with it (from the
moment it is recreated), or the running worker confirming it loaded it (hot update)."""


def deployed_round(history: list[Obj], status: Obj) -> int:
    """The round whose model the inference worker serves or is being recreated with (0: the initial one)."""
    found = int(status.get("deployedRound") or 0)
    for cond in history:
        if cond.get("stage") == ilp.DEPLOY and cond.get("reason") in DEPLOYING_REASONS:
            found = max(found, int(data_of(cond).get("round") or 0))
    return found


def _hot_update(job: Obj) -> bool:
    return bool(((job["spec"].get("deploySpec") or {}).get("model") or {}).get("hotUpdateEnabled"))


def _poll_period(job: Obj) -> float:
    return float(((job["spec"].get("deploySpec") or {}).get("model") or {}).get("pollPeriodSeconds") or 60)


def setup(manager: Manager, settings: ControllerSettings) -> Controller:
    """Register the controller and its watches with ``manager``."""
    caches = {k.plural: manager.informer(k).cache for k in (KIND, DATASET, MODEL, POD)}
    reconciler = IncrementalLearningReconciler(manager.cluster, caches, settings,
                                               logs=log_tail_for(manager.cluster, settings))
    controller = manager.add_controller("incrementallearning", reconciler, settings.workers)
    manager.watch(KIND, controller, own_key)
    manager.watch(POD, controller, owner_keys(KIND))
    jobs = caches[KIND.plural]
    manager.watch(DATASET, controller, _users(jobs, ("dataset",)))
    manager.watch(MODEL, controller, _users(jobs, ("initialModel",), ("deploySpec", "model"),
                                            ("evalSpec", "initialEvalModel")))
    return controller


def _users(jobs: Cache, *paths: tuple[str, ...]) -> Callable[[Obj], list[NamespacedName]]:
    def mapper(obj: Obj) -> list[NamespacedName]:
        ns, name = obj["metadata"].get("namespace") or "", obj["metadata"]["name"]
        keys = []
        for job in jobs.list(ns):
            for path in paths:
                value: Any = job.get("spec") or {}
                for part in (*path, "name"):
                    value = value.get(part) if isinstance(value, dict) else None
                if value == name:
                    keys.append(NamespacedName(ns, job["metadata"]["name"]))
                    break
        return keys

    return mapper
