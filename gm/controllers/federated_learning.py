"""The FederatedLearningJob controller.

``reconcile(namespace/name)`` reads the job and its children from the informer caches,
validates what the schema cannot (:mod:`.fl_validation`), applies the aggregation Service and
Pods (:mod:`.fl_workers`) and writes one status patch:

- ``phase``: Pending (waiting for a reference or for the aggregator to run), Running, Succeeded
  (the aggregation Pod exited 0) or Failed (invalid spec, or the aggregation Pod failed);
- conditions ``Training`` / ``Complete`` / ``Failed`` with reason, message and observedGeneration;
- ``active`` / ``succeeded`` / ``failed`` Pod counts, ``startTime``, ``completionTime``,
  ``observedGeneration``.

``currentRound``, ``latestMetrics``, ``aggregation``, ``trainingWorkers`` and ``roundHistory`` belong to the round
reports (:mod:`.fl_upstream`); this controller only clears them when the job restarts. A spec
change (a new generation) restarts the job: every Pod is recreated and the round count starts
again. A deleted Pod comes back while the job runs; a finished job is left as it is.

Events that lead here: the job itself, its Pods and Service (owner references) and the Datasets
and Models it names, so creating a missing one recovers a Pending job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gm.cluster.interface import (
    DATASET,
    FEDERATED_LEARNING_JOB,
    MODEL,
    POD,
    SERVICE,
    AlreadyExists,
    Cluster,
    NotFound,
    Obj,
)
from gm.controllers import fl_validation, fl_workers
from gm.controllers.ji_validation import Problem
from gm.controllers.workloads import HASH_ANNOTATION, apply_child
from gm.runtime.caching import Cache
from gm.runtime.mapping import own_key, owner_keys
from gm.runtime.outcomes import DONE, ObjectKey, Outcome
from gm.runtime.patches import StatusPatch, utc_now
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings

log = logging.getLogger(__name__)

KIND = FEDERATED_LEARNING_JOB
CONDITIONS = ("Training", "Complete", "Failed")
FINISHED = ("Succeeded", "Failed")
MAX_AGGREGATOR_RESTARTS = 5
"""A crash-looping aggregator fails the job after this many restarts (each resumes from its checkpoint)."""
REPORT_FIELDS = ("currentRound", "latestMetrics", "aggregation", "trainingWorkers", "roundHistory")
Events = list[tuple[str, str, str]]


class FederatedLearningReconciler:
    """Level-based reconciler of FederatedLearningJobs."""

    def __init__(self, cluster: Cluster, caches: dict[str, Cache], settings: ControllerSettings,
                 now: Callable[[], str] = utc_now) -> None:
        self.cluster, self.settings, self.now = cluster, settings, now
        self.jobs, self.datasets = caches[KIND.plural], caches[DATASET.plural]
        self.models, self.pods, self.svcs = caches[MODEL.plural], caches[POD.plural], caches[SERVICE.plural]

    def reconcile(self, key: ObjectKey) -> Outcome:
        job = self.jobs.get(key.namespace, key.name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return DONE  # children go with it: owner references cascade
        generation = int(job["metadata"].get("generation") or 1)
        status = job.get("status") or {}
        patch = StatusPatch(status, generation, self.now)
        events: Events = []
        seen = status.get("observedGeneration")
        if seen is not None and int(seen) != generation:
            self._restart(patch, events, int(seen), generation)
        patch.set("observedGeneration", generation)
        if not patch.get("startTime"):
            patch.set("startTime", self.now())
        problems = fl_validation.validate(job, lambda n: self.datasets.get(key.namespace, n),
                                          lambda n: self.models.get(key.namespace, n), self.settings.nodes)
        outcome = DONE
        pods = self._owned_pods(job)
        if problems:
            self._invalid(job, patch, problems, events)
            self._delete_stale(job, pods, generation)
        elif not self._finished(patch):
            outcome = self._apply_children(job, pods, events)
            self._observe(job, patch, self._owned_pods(job, generation), events)
        self._counts(patch, self._owned_pods(job, generation))
        self._flush(job, patch, events)
        return outcome

    # -- steps ------------------------------------------------------------------------------------
    def _restart(self, patch: StatusPatch, events: Events, old: int, new: int) -> None:
        for field in (*REPORT_FIELDS, "completionTime"):
            patch.set(field, None)
        patch.set("startTime", self.now())
        message = f"the spec changed (generation {old} -> {new}): restarting every worker from round 0"
        _pending(patch, "SpecChanged", message)
        events.append(("Normal", "Restarted", message))

    @staticmethod
    def _finished(patch: StatusPatch) -> bool:
        if patch.get("phase") not in FINISHED:
            return False
        failed = patch.condition("Failed") or {}
        return not (failed.get("status") == "True" and failed.get("reason") in ("InvalidSpec",))

    def _invalid(self, job: Obj, patch: StatusPatch, problems: list[Problem], events: Events) -> None:
        waiting = all(p.waiting for p in problems)
        if waiting and self._finished(patch):
            return  # a Dataset or Model deleted after the job ended changes nothing
        message = "; ".join(str(p) for p in problems)
        cond, reason = ("Training", "MissingReference") if waiting else ("Failed", "InvalidSpec")
        previous = patch.condition(cond) or {}
        if previous.get("message") != message or previous.get("reason") != reason:
            events.append(("Warning", reason, message))
        if waiting:
            _pending(patch, reason, message)
        else:
            patch.set_only("Failed", CONDITIONS, reason, message)
            patch.set("phase", "Failed")
            patch.set("completionTime", patch.get("completionTime") or self.now())

    def _apply_children(self, job: Obj, pods: dict[str, Obj], events: Events) -> Outcome:
        ns, spec = job["metadata"]["namespace"], job["spec"]
        model = self.models.get(ns, spec["aggregationWorker"]["model"]["name"]) or {}
        pretrained = ""
        if (spec.get("pretrainedModel") or {}).get("name"):
            pretrained = str(((self.models.get(ns, spec["pretrainedModel"]["name"]) or {}).get("spec") or {})["url"])
        changes: list[tuple[str, str]] = []
        service, _ = apply_child(self.cluster, self.svcs, fl_workers.aggregation_service(job), job, changes)
        events.extend(("Normal", reason, message) for reason, message in changes)
        plans = [fl_workers.aggregation_pod(job, model, pretrained, self.settings)]
        outcome = DONE
        if not (service.get("spec") or {}).get("clusterIP"):
            outcome = Outcome.requeue(1.0)  # the local backend allocates it asynchronously; trainers wait for it
        else:
            host = fl_workers.aggregator_host(service, job)
            for i, worker in enumerate(spec["trainingWorkers"]):
                dataset = self.datasets.get(ns, worker["dataset"]["name"]) or {}
                plans.append(fl_workers.trainer_pod(job, i, dataset, model, pretrained, host, self.settings))
        for plan in plans:
            if not self._apply_pod(plan, pods.get(plan.pod["metadata"]["name"]), events):
                outcome = Outcome.requeue(0.5)
        return outcome

    def _apply_pod(self, plan: fl_workers.PodPlan, current: Obj | None, events: Events) -> bool:
        """Create the Pod when missing, recreate it when its hash changed; False when it must wait."""
        meta = plan.pod["metadata"]
        if current is not None:
            have = current["metadata"].get("annotations") or {}
            if all(have.get(a) == meta["annotations"][a] for a in (HASH_ANNOTATION, fl_workers.GENERATION_ANNOTATION)):
                return True
            if not current["metadata"].get("deletionTimestamp"):
                self._delete(meta["namespace"], meta["name"])
        try:
            self.cluster.create(plan.pod)
        except AlreadyExists:  # the previous incarnation is still going away
            return False
        events.append(("Normal", "Created", f"created Pod {meta['name']}"))
        if plan.kept_env:
            events.append(("Normal", "EnvKept", f"{meta['name']}: kept the user's own value of "
                                                f"{', '.join(plan.kept_env)}"))
        return True

    def _delete(self, namespace: str, name: str) -> None:
        try:
            self.cluster.delete(POD, namespace, name)
        except NotFound:
            pass

    def _delete_stale(self, job: Obj, pods: dict[str, Obj], generation: int) -> None:
        for name, pod in pods.items():
            if (pod["metadata"].get("annotations") or {}).get(fl_workers.GENERATION_ANNOTATION) != str(generation):
                self._delete(job["metadata"]["namespace"], name)

    def _observe(self, job: Obj, patch: StatusPatch, pods: dict[str, Obj], events: Events) -> None:
        agg = pods.get(fl_workers.aggregation_name(job))
        phase, why = pod_phase(agg)
        if phase == "Succeeded":
            message = f"the aggregation worker finished after round {patch.get('currentRound') or '?'}"
            patch.set_only("Complete", CONDITIONS, "AggregationSucceeded", message)
            patch.set("phase", "Succeeded")
            patch.set("completionTime", self.now())
            events.append(("Normal", "Completed", message))
        elif phase == "Failed":
            message = f"aggregation worker {fl_workers.aggregation_name(job)}: {why}"
            patch.set_only("Failed", CONDITIONS, "AggregationFailed", message)
            patch.set("phase", "Failed")
            patch.set("completionTime", self.now())
            events.append(("Warning", "Failed", message))
            for name, pod in pods.items():  # trainers would retry a dead aggregator until they time out
                if pod_phase(pod)[0] not in FINISHED:
                    self._delete(job["metadata"]["namespace"], name)
        elif phase == "Running":
            trainers = sum(1 for name, p in pods.items() if name != fl_workers.aggregation_name(job)
                           and pod_phase(p)[0] == "Running")
            total = len(job["spec"]["trainingWorkers"])
            patch.set_only("Training", CONDITIONS, "AggregatorRunning",
                           f"aggregation worker running; {trainers}/{total} training workers running")
            patch.set("phase", "Running")
        else:
            suffix = f": {why}" if why else ""
            _pending(patch, "WorkersStarting", f"waiting for the aggregation worker to start{suffix}")

    @staticmethod
    def _counts(patch: StatusPatch, pods: dict[str, Obj]) -> None:
        phases = [pod_phase(p)[0] for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
        patch.set("active", sum(1 for p in phases if p not in FINISHED))
        patch.set("succeeded", phases.count("Succeeded"))
        patch.set("failed", phases.count("Failed"))

    def _owned_pods(self, job: Obj, generation: int | None = None) -> dict[str, Obj]:
        """The job's Pods by name; with ``generation``, only those of that generation (not stale ones)."""
        pods = self.pods.owned_by(job["metadata"]["uid"])
        if generation is not None:
            pods = [p for p in pods if (p["metadata"].get("annotations") or {}).get(
                fl_workers.GENERATION_ANNOTATION) == str(generation)]
        return {p["metadata"]["name"]: p for p in pods}

    def _flush(self, job: Obj, patch: StatusPatch, events: Events) -> None:
        meta = job["metadata"]
        body = patch.body()
        if body:
            try:
                self.cluster.patch_status(KIND, meta["namespace"], meta["name"], body)
            except NotFound:
                return
        for type_, reason, message in events:
            self.cluster.emit_event(job, reason, message, type_)


def _pending(patch: StatusPatch, reason: str, message: str) -> None:
    """Phase Pending: ``Training`` False with the reason; ``Complete`` / ``Failed`` False when present."""
    for type_ in CONDITIONS:
        if type_ == "Training" or patch.condition(type_) is not None:
            patch.set_condition(type_, False, reason if type_ == "Training" else "", message if type_ == "Training"
                                else "")
    patch.set("phase", "Pending")


def pod_phase(pod: Obj | None) -> tuple[str, str]:
    """``(phase, why)`` of a Pod: a crash loop past :data:`MAX_AGGREGATOR_RESTARTS` counts as Failed."""
    if pod is None:
        return "Missing", "no Pod yet"
    status: dict[str, Any] = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    why = str(status.get("message") or status.get("reason") or "")
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        waiting = state.get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff" and int(cs.get("restartCount") or 0) >= MAX_AGGREGATOR_RESTARTS:
            return "Failed", f"CrashLoopBackOff after {cs.get('restartCount')} restarts: {waiting.get('message', '')}"
        term = state.get("terminated") or {}
        if phase == "Failed" and term.get("exitCode"):
            why = why or f"exit code {term['exitCode']}"
    return phase, why


def setup(manager: Manager, settings: ControllerSettings) -> Controller:
    """Register the controller and its watches with ``manager``."""
    caches = {k.plural: manager.informer(k).cache for k in (KIND, DATASET, MODEL, POD, SERVICE)}
    reconciler = FederatedLearningReconciler(manager.cluster, caches, settings)
    controller = manager.add_controller("federatedlearning", reconciler, settings.workers)
    manager.watch(KIND, controller, own_key, _not_report_only)
    manager.watch(POD, controller, owner_keys(KIND))
    manager.watch(SERVICE, controller, owner_keys(KIND))
    jobs = caches[KIND.plural]
    manager.watch(DATASET, controller, _users(jobs, _dataset_names))
    manager.watch(MODEL, controller, _users(jobs, _model_names))
    return controller


def _not_report_only(old: Obj, new: Obj) -> bool:
    """Drop job events that only changed the report fields (the round reports write them often)."""
    def strip(obj: Obj) -> Obj:
        status = {k: v for k, v in (obj.get("status") or {}).items() if k not in REPORT_FIELDS}
        meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")}
        return {**obj, "status": status, "metadata": meta}

    return strip(old) != strip(new)


def _dataset_names(job: Obj) -> set[str]:
    return {((w or {}).get("dataset") or {}).get("name") for w in (job.get("spec") or {}).get("trainingWorkers") or []
            if isinstance(w, dict)} - {None}


def _model_names(job: Obj) -> set[str]:
    spec = job.get("spec") or {}
    return {((spec.get("aggregationWorker") or {}).get("model") or {}).get("name"),
            (spec.get("pretrainedModel") or {}).get("name")} - {None}


def _users(jobs: Cache, names: Callable[[Obj], set[str]]) -> Callable[[Obj], list[ObjectKey]]:
    def mapper(obj: Obj) -> list[ObjectKey]:
        ns, name = obj["metadata"].get("namespace") or "", obj["metadata"]["name"]
        return [ObjectKey(ns, job["metadata"]["name"]) for job in jobs.list(ns) if name in names(job)]

    return mapper
