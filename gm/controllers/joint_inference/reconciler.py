"""The JointInferenceService controller.

``reconcile(namespace/name)`` reads the service and its children from the informer caches,
validates what the schema cannot (:mod:`.validation`), applies the cloud Service and the two worker
Deployments (:mod:`.workers`), and writes one status patch: ``phase``, ``readyWorkers`` ("1/2"),
``active``, ``failed``, ``startTime`` and the conditions Pending / Running / Failed (one True at a
time). ``status.metrics`` and ``status.inference`` belong to the edge hub and are never written here.

Worker health (:mod:`gm.workloads.health`) maps to the service as follows: a worker with a
``Running`` Pod is ready; one whose Pod crash-loops (waiting in back-off, or restarted and not yet
up for :data:`~gm.workloads.health.SETTLE_SECONDS`) fails the service with reason
``CrashLoopBackOff``, the restart count, the last exit code and the last log lines; a failed or
blocked Pod (bad image...) or a Deployment's ReplicaFailure fails it with ``WorkerFailed``. Failure
is not terminal, unlike Sedna's: the service returns to Running when its workers do. Every change
of the headline condition is an Event, and so is every new crash of a worker.

Events that lead here: the service itself, its Deployments / Services / Pods (through owner
references or worker labels) and Models (every service that names the Model), so creating a missing
Model recovers the services waiting for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from gm.cluster.interface import DEPLOYMENT, JOINT_INFERENCE_SERVICE, MODEL, POD, SERVICE, Cluster, Obj
from gm.controllers.common.problems import Problem, verdict
from gm.controllers.common.status import Reason
from gm.controllers.common.writes import Writes
from gm.controllers.joint_inference import validation, workers
from gm.runtime import predicates
from gm.runtime.caching import Cache
from gm.runtime.mapping import own_key, owner_keys
from gm.runtime.outcomes import DONE, NamespacedName, Outcome
from gm.runtime.patches import StrEnum, parse_time, utc_now
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings
from gm.workloads import storage
from gm.workloads.applying import apply_child
from gm.workloads.building import worker_labels
from gm.workloads.health import PodHealth, PodState, pod_health
from gm.workloads.logs import LogTail, last_lines, log_tail_for, no_logs
from sedna.controlplane import kinds

log = logging.getLogger(__name__)

KIND = JOINT_INFERENCE_SERVICE
POD_INDEX = kinds.JOINT_INFERENCE_SERVICE.key


class Phase(StrEnum):
    """``status.phase``, equal to the True condition's type."""

    PENDING = "Pending"
    RUNNING = "Running"
    FAILED = "Failed"


CONDITIONS = (Phase.PENDING, Phase.RUNNING, Phase.FAILED)
WORKER_FAILED = "WorkerFailed"


@dataclass(frozen=True)
class WorkerState:
    """One worker type's verdict: ``ready``, ``failed`` or ``starting``, and why."""

    state: str
    why: str = ""
    health: PodHealth | None = None
    """The Pod health behind a failure (None for a Deployment-level one)."""


class JointInferenceReconciler:
    """Level-based reconciler of JointInferenceServices."""

    def __init__(self, cluster: Cluster, caches: dict[str, Cache], settings: ControllerSettings,
                 now: Callable[[], str] = utc_now, logs: LogTail = no_logs) -> None:
        self.cluster = cluster
        self.services = caches[KIND.plural]
        self.models = caches[MODEL.plural]
        self.deployments = caches[DEPLOYMENT.plural]
        self.svcs = caches[SERVICE.plural]
        self.pods = caches[POD.plural]
        self.settings = settings
        self.now = now
        self.logs = logs
        self._secrets: dict[str, Mapping[str, Any] | None] = {}
        """The credential Secrets read by the last :meth:`_storage`."""

    def reconcile(self, key: NamespacedName) -> Outcome:
        ji = self.services.get(key.namespace, key.name)
        if ji is None or ji["metadata"].get("deletionTimestamp"):
            return DONE  # children go with it: owner references cascade
        writes = Writes(self.cluster, KIND, ji, self.now)
        problems = validation.validate(ji, lambda name: self.models.get(key.namespace, name), self.settings.nodes)
        outcome = DONE
        if not problems:
            problems = self._storage(ji)
        if problems:
            self._invalid(ji, writes, problems)
        else:
            deployments = self._apply_children(ji, writes)
            outcome = self._observe(ji, writes, deployments)
            if "edge" not in deployments:  # waiting for the Service's clusterIP; its event wakes us
                outcome = outcome.sooner(Outcome.requeue(2.0))
        writes.transition(CONDITIONS, (Reason.CRASH_LOOP,))
        writes.flush()
        return outcome

    # -- steps ----------------------------------------------------------------------------
    def _invalid(self, ji: Obj, writes: Writes, problems: list[Problem]) -> None:
        found = verdict(problems)
        cond = Phase.PENDING if found.waiting else Phase.FAILED
        patch = writes.patch
        previous = patch.condition(cond)
        if previous is None or previous.get("status") != "True" or previous.get("message") != found.message:
            writes.warning(found.reason, found.message)
        patch.set_only(cond, CONDITIONS, found.reason, found.message)
        patch.set("phase", cond)
        self._counts(ji, writes, self._owned_deployments(ji), self._moment())

    def _mounts(self, ji: Obj) -> dict[str, storage.Mount]:
        ns, spec = ji["metadata"]["namespace"], ji["spec"]
        return {wt: storage.model_mount("MODEL_URL", self.models.get(ns, spec[f"{wt}Worker"]["model"]["name"]))
                for wt in workers.WORKER_TYPES}

    def _storage(self, ji: Obj) -> list[Problem]:
        """Unusable model credentials, as problems naming the URL; the workers wait for them."""
        if not self.settings.storage_injection:
            return []
        mounts = self._mounts(ji)
        self._secrets = storage.read_secrets(self.cluster.get, ji["metadata"]["namespace"], list(mounts.values()))
        problems = []
        for wt, mount in mounts.items():
            for url in mount.urls:
                try:
                    storage.s3_env(self._secrets.get(mount.credential), mount.credential, url)
                except storage.StorageError as exc:
                    problems.append(Problem(f"spec.{wt}Worker.model", str(exc), waiting=True))
        return problems

    def _apply_children(self, ji: Obj, writes: Writes) -> dict[str, Obj]:
        ns = ji["metadata"]["namespace"]
        spec = ji["spec"]
        models = {wt: str((self.models.get(ns, spec[f"{wt}Worker"]["model"]["name"]) or {})["spec"]["url"])
                  for wt in workers.WORKER_TYPES}
        changes: list[tuple[str, str]] = []
        service, _ = apply_child(self.cluster, self.svcs, workers.cloud_service(ji), ji, changes)
        mounts = self._mounts(ji) if self.settings.storage_injection else None
        plans = workers.plan_workers(ji, models, service, self.settings, mounts, self._secrets)
        stored: dict[str, Obj] = {}
        for worker_type, plan in plans.items():
            if worker_type == "edge" and self._defer_edge(ji, service):
                continue
            stored[worker_type], action = apply_child(self.cluster, self.deployments, plan.obj, ji, changes)
            if plan.kept_env and action != "unchanged":
                writes.normal("EnvKept", f"{worker_type} worker: kept the user's own value of "
                                         f"{', '.join(plan.kept_env)}")
        for reason, message in changes:
            writes.normal(reason, message)
        return stored

    def _defer_edge(self, ji: Obj, service: Obj) -> bool:
        """Whether to wait for the backend to allocate the Service's clusterIP before creating the edge
        worker, so BIG_MODEL_IP is right from the start (no second rollout)."""
        if not self.settings.wait_for_cluster_ip or (service.get("spec") or {}).get("clusterIP"):
            return False
        return self.deployments.get(ji["metadata"]["namespace"], workers.child_name(ji, "edge")) is None

    def _owned_deployments(self, ji: Obj) -> dict[str, Obj]:
        out = {}
        for dep in self.deployments.owned_by(ji["metadata"]["uid"]):
            worker_type = (dep["metadata"].get("labels") or {}).get(f"{KIND.label_prefix}/worker-type")
            if worker_type in workers.WORKER_TYPES:
                out[worker_type] = dep
        return out

    def _moment(self) -> datetime:
        return parse_time(self.now()) or datetime.now(timezone.utc)

    def _observe(self, ji: Obj, writes: Writes, deployments: dict[str, Obj]) -> Outcome:
        patch = writes.patch
        moment = self._moment()
        ready, failures, outcome = self._counts(ji, writes, deployments, moment)
        if not patch.get("startTime"):
            patch.set("startTime", self.now())
        total = len(workers.WORKER_TYPES)
        if failures:
            crash = [(wt, s) for wt, s in failures if s.health is not None and s.health.state is PodState.CRASH_LOOP]
            reason = Reason.CRASH_LOOP if crash else WORKER_FAILED
            message = "; ".join(self._failure_message(ji, wt, s) for wt, s in failures)
            previous = patch.condition(Phase.FAILED) or {}
            if crash and previous.get("message") != message:  # a new crash (the message holds the restart count)
                for wt, s in crash:
                    assert s.health is not None
                    writes.warning(Reason.CRASH_LOOP, f"{wt} worker: pod {s.health.pod} container "
                                                      f"{s.health.container!r} is crash-looping")
            patch.set_only(Phase.FAILED, CONDITIONS, reason, message)
            patch.set("phase", Phase.FAILED)
        elif len(ready) == total:
            patch.set_only(Phase.RUNNING, CONDITIONS, "WorkersReady", f"{total}/{total} workers ready")
            patch.set("phase", Phase.RUNNING)
        else:
            waiting = [wt for wt in workers.WORKER_TYPES if wt not in ready]
            patch.set_only(Phase.PENDING, CONDITIONS, Reason.WORKERS_STARTING,
                           f"{len(ready)}/{total} workers ready; waiting for {', '.join(waiting)}")
            patch.set("phase", Phase.PENDING)
        return outcome

    def _failure_message(self, ji: Obj, worker_type: str, state: WorkerState) -> str:
        text = f"{worker_type} worker: {state.why}"
        health = state.health
        if health is not None and health.state in (PodState.CRASH_LOOP, PodState.FAILED):
            lines = last_lines(self.logs, ji["metadata"]["namespace"], health.pod, health.container)
            if lines:
                text += f"; {lines}"
        return text

    def _counts(self, ji: Obj, writes: Writes, deployments: dict[str, Obj],
                moment: datetime) -> tuple[list[str], list[tuple[str, WorkerState]], Outcome]:
        ready: list[str] = []
        failures: list[tuple[str, WorkerState]] = []
        outcome = DONE
        owner = f"{ji['metadata']['namespace']}/{ji['metadata']['name']}"
        for worker_type in workers.WORKER_TYPES:
            labels = worker_labels(KIND, ji, worker_type)
            pods = [p for p in self.pods.by_index(POD_INDEX, owner)
                    if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())]
            state = worker_state(deployments.get(worker_type), pods, moment)
            if state.state == "ready":
                ready.append(worker_type)
            elif state.state == "failed":
                failures.append((worker_type, state))
            if state.health is not None and state.health.settles_in is not None:
                outcome = outcome.sooner(Outcome.requeue(state.health.settles_in + 0.5))
        total = len(workers.WORKER_TYPES)
        writes.patch.set("readyWorkers", f"{len(ready)}/{total}")
        writes.patch.set("active", len(ready))
        writes.patch.set("failed", len(failures))
        return ready, failures, outcome


def worker_state(deployment: Obj | None, pods: list[Obj], now: datetime | None = None) -> WorkerState:
    """One worker's verdict from its Deployment and Pods: a Pod running wins, then a Pod in trouble,
    then the Deployment's own counts and ReplicaFailure condition."""
    if deployment is None:
        return WorkerState("starting", "no Deployment yet")
    healths = [pod_health(p, now) for p in pods if not p["metadata"].get("deletionTimestamp")]
    if any(h.ready for h in healths):
        return WorkerState("ready")
    for health in healths:
        if health.state in (PodState.CRASH_LOOP, PodState.FAILED, PodState.BLOCKED):
            return WorkerState("failed", health.describe(), health)
    dstatus = deployment.get("status") or {}
    if int(dstatus.get("readyReplicas") or 0) >= 1:
        return WorkerState("ready")
    for cond in dstatus.get("conditions") or []:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return WorkerState("failed", f"Deployment {deployment['metadata']['name']}: {cond.get('message', '')}")
    return WorkerState("starting")


def setup(manager: Manager, settings: ControllerSettings) -> Controller:
    """Register the controller and its watches with ``manager``."""
    kinds = (KIND, MODEL, DEPLOYMENT, SERVICE, POD)
    caches = {k.plural: manager.informer(k).cache for k in kinds}
    caches[POD.plural].add_index(POD_INDEX, _owner_label)
    reconciler = JointInferenceReconciler(manager.cluster, caches, settings, logs=log_tail_for(manager.cluster,
                                                                                              settings))
    controller = manager.add_controller("jointinference", reconciler, settings.workers)
    manager.watch(KIND, controller, own_key, predicates.spec_or_metadata_changed)
    manager.watch(DEPLOYMENT, controller, owner_keys(KIND), predicates.deployment_state_changed)
    manager.watch(SERVICE, controller, owner_keys(KIND), predicates.service_changed)
    manager.watch(POD, controller, owner_keys(KIND), predicates.pod_state_changed)
    manager.watch(MODEL, controller, _users_of_model(caches[KIND.plural]), predicates.spec_or_metadata_changed)
    return controller


def _owner_label(pod: Obj) -> str | None:
    name = (pod["metadata"].get("labels") or {}).get(f"{KIND.label_prefix}/name")
    return f"{pod['metadata'].get('namespace') or ''}/{name}" if name else None


def _users_of_model(services: Cache) -> Callable[[Obj], list[NamespacedName]]:
    def mapper(model: Obj) -> list[NamespacedName]:
        ns, name = model["metadata"].get("namespace") or "", model["metadata"]["name"]
        return [NamespacedName(ns, ji["metadata"]["name"]) for ji in services.list(ns)
                if name in {((ji.get("spec") or {}).get(side) or {}).get("model", {}).get("name")
                            for side in ("edgeWorker", "cloudWorker")}]

    return mapper
