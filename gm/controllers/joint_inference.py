"""The JointInferenceService controller.

``reconcile(namespace/name)`` reads the service and its children from the informer
caches, validates what the schema cannot (:mod:`.ji_validation`), applies the cloud
Service and the two worker Deployments (:mod:`.ji_workers`), and writes one status patch:
``phase``, ``readyWorkers`` ("1/2"), ``active``, ``failed``, ``startTime`` and the
conditions Pending / Running / Failed (one True at a time). Failure is not terminal,
unlike Sedna's: the service returns to Running when its workers do. ``status.metrics``
and ``status.inference`` belong to the edge hub and are never written here.

Events that lead here: the service itself, its Deployments / Services / Pods (through
owner references or worker labels) and Models (every service that names the Model), so
creating a missing Model recovers the services waiting for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gm.cluster.interface import DEPLOYMENT, JOINT_INFERENCE_SERVICE, MODEL, POD, SERVICE, Cluster, Obj
from gm.controllers import ji_validation, ji_workers
from gm.controllers.workloads import apply_child, worker_labels
from gm.runtime import predicates
from gm.runtime.caching import Cache
from gm.runtime.mapping import own_key, owner_keys
from gm.runtime.outcomes import DONE, ObjectKey, Outcome
from gm.runtime.patches import StatusPatch, utc_now
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings

log = logging.getLogger(__name__)

KIND = JOINT_INFERENCE_SERVICE
CONDITIONS = ("Pending", "Running", "Failed")
POD_INDEX = "jointinferenceservice"
_BAD_WAITING = {"CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError",
                "RunContainerError", "InvalidImageName"}


class JointInferenceReconciler:
    """Level-based reconciler of JointInferenceServices."""

    def __init__(self, cluster: Cluster, caches: dict[str, Cache], settings: ControllerSettings,
                 now: Callable[[], str] = utc_now) -> None:
        self.cluster = cluster
        self.services = caches[KIND.plural]
        self.models = caches[MODEL.plural]
        self.deployments = caches[DEPLOYMENT.plural]
        self.svcs = caches[SERVICE.plural]
        self.pods = caches[POD.plural]
        self.settings = settings
        self.now = now

    def reconcile(self, key: ObjectKey) -> Outcome:
        ji = self.services.get(key.namespace, key.name)
        if ji is None or ji["metadata"].get("deletionTimestamp"):
            return DONE  # children go with it: owner references cascade
        meta = ji["metadata"]
        patch = StatusPatch(ji.get("status"), int(meta.get("generation") or 1), self.now)
        events: list[tuple[str, str, str]] = []
        problems = ji_validation.validate(ji, lambda name: self.models.get(key.namespace, name), self.settings.nodes)
        outcome = DONE
        if problems:
            self._invalid(ji, patch, problems, events)
        else:
            deployments = self._apply_children(ji, events)
            self._observe(ji, patch, deployments)
            if "edge" not in deployments:  # waiting for the Service's clusterIP; its event wakes us
                outcome = Outcome.requeue(2.0)
        self._flush(ji, patch, events)
        return outcome

    # -- steps ----------------------------------------------------------------------------
    def _invalid(self, ji: Obj, patch: StatusPatch, problems: list[ji_validation.Problem],
                 events: list[tuple[str, str, str]]) -> None:
        waiting = all(p.waiting for p in problems)
        cond, reason = ("Pending", "MissingReference") if waiting else ("Failed", "InvalidSpec")
        message = "; ".join(str(p) for p in problems)
        previous = patch.condition(cond)
        if previous is None or previous.get("status") != "True" or previous.get("message") != message:
            events.append(("Warning", reason, message))
        patch.set_only(cond, CONDITIONS, reason, message)
        patch.set("phase", cond)
        self._counts(ji, patch, self._owned_deployments(ji))

    def _apply_children(self, ji: Obj, events: list[tuple[str, str, str]]) -> dict[str, Obj]:
        ns = ji["metadata"]["namespace"]
        spec = ji["spec"]
        models = {wt: self.models.get(ns, spec[f"{wt}Worker"]["model"]["name"])["spec"]["url"]
                  for wt in ji_workers.WORKER_TYPES}
        changes: list[tuple[str, str]] = []
        service, _ = apply_child(self.cluster, self.svcs, ji_workers.cloud_service(ji), ji, changes)
        plans = ji_workers.plan_workers(ji, models, service, self.settings)
        stored: dict[str, Obj] = {}
        for worker_type, plan in plans.items():
            if worker_type == "edge" and self._defer_edge(ji, service):
                continue
            stored[worker_type], action = apply_child(self.cluster, self.deployments, plan.deployment, ji, changes)
            if plan.kept_env and action != "unchanged":
                events.append(("Normal", "EnvKept", f"{worker_type} worker: kept the user's own value of "
                                                    f"{', '.join(plan.kept_env)}"))
        events.extend(("Normal", reason, message) for reason, message in changes)
        return stored

    def _defer_edge(self, ji: Obj, service: Obj) -> bool:
        """Whether to wait for the backend to allocate the Service's clusterIP before creating the edge
        worker, so BIG_MODEL_IP is right from the start (no second rollout)."""
        if not self.settings.wait_for_cluster_ip or (service.get("spec") or {}).get("clusterIP"):
            return False
        return self.deployments.get(ji["metadata"]["namespace"], ji_workers.child_name(ji, "edge")) is None

    def _owned_deployments(self, ji: Obj) -> dict[str, Obj]:
        out = {}
        for dep in self.deployments.owned_by(ji["metadata"]["uid"]):
            worker_type = (dep["metadata"].get("labels") or {}).get(f"{KIND.label_prefix}/worker-type")
            if worker_type in ji_workers.WORKER_TYPES:
                out[worker_type] = dep
        return out

    def _observe(self, ji: Obj, patch: StatusPatch, deployments: dict[str, Obj]) -> None:
        ready, failed, reasons = self._counts(ji, patch, deployments)
        if not patch.get("startTime"):
            patch.set("startTime", self.now())
        total = len(ji_workers.WORKER_TYPES)
        if failed:
            patch.set_only("Failed", CONDITIONS, "WorkerFailed", "; ".join(reasons))
            patch.set("phase", "Failed")
        elif len(ready) == total:
            patch.set_only("Running", CONDITIONS, "WorkersReady", f"{total}/{total} workers ready")
            patch.set("phase", "Running")
        else:
            waiting = [wt for wt in ji_workers.WORKER_TYPES if wt not in ready]
            patch.set_only("Pending", CONDITIONS, "WorkersStarting",
                           f"{len(ready)}/{total} workers ready; waiting for {', '.join(waiting)}")
            patch.set("phase", "Pending")

    def _counts(self, ji: Obj, patch: StatusPatch, deployments: dict[str, Obj]) -> tuple[list[str], int, list[str]]:
        ready: list[str] = []
        reasons: list[str] = []
        for worker_type in ji_workers.WORKER_TYPES:
            labels = worker_labels(KIND, ji, worker_type)
            pods = [p for p in self.pods.by_index(POD_INDEX, f"{ji['metadata']['namespace']}/{ji['metadata']['name']}")
                    if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())]
            state, why = worker_state(deployments.get(worker_type), pods)
            if state == "ready":
                ready.append(worker_type)
            elif state == "failed":
                reasons.append(f"{worker_type} worker: {why}")
        total = len(ji_workers.WORKER_TYPES)
        patch.set("readyWorkers", f"{len(ready)}/{total}")
        patch.set("active", len(ready))
        patch.set("failed", len(reasons))
        return ready, len(reasons), reasons

    def _flush(self, ji: Obj, patch: StatusPatch, events: list[tuple[str, str, str]]) -> None:
        meta = ji["metadata"]
        body = patch.body()
        if body:
            self.cluster.patch_status(KIND, meta["namespace"], meta["name"], body)
        for type_, reason, message in events:
            self.cluster.emit_event(ji, reason, message, type_)


def worker_state(deployment: Obj | None, pods: list[Obj]) -> tuple[str, str]:
    """``("ready" | "failed" | "starting", why)`` of one worker from its Deployment and Pods."""
    if deployment is None:
        return "starting", "no Deployment yet"
    dstatus = deployment.get("status") or {}
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    if int(dstatus.get("readyReplicas") or 0) >= 1 or any(_pod_ready(p) for p in live):
        return "ready", ""
    for cond in dstatus.get("conditions") or []:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return "failed", f"Deployment {deployment['metadata']['name']}: {cond.get('message', '')}"
    for pod in live:
        why = _pod_failure(pod)
        if why:
            return "failed", f"pod {pod['metadata']['name']} {why}"
    return "starting", ""


def _pod_ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return conds.get("Ready", "True") == "True"


def _pod_failure(pod: Obj) -> str:
    status: dict[str, Any] = pod.get("status") or {}
    if status.get("phase") == "Failed":
        return f"Failed: {status.get('reason') or ''} {status.get('message') or ''}".strip()
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in _BAD_WAITING:
            return f"{waiting['reason']}: {waiting.get('message', '')}".strip()
    return ""


def setup(manager: Manager, settings: ControllerSettings) -> Controller:
    """Register the controller and its watches with ``manager``."""
    kinds = (KIND, MODEL, DEPLOYMENT, SERVICE, POD)
    caches = {k.plural: manager.informer(k).cache for k in kinds}
    caches[POD.plural].add_index(POD_INDEX, _owner_label)
    reconciler = JointInferenceReconciler(manager.cluster, caches, settings)
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


def _users_of_model(services: Cache) -> Callable[[Obj], list[ObjectKey]]:
    def mapper(model: Obj) -> list[ObjectKey]:
        ns, name = model["metadata"].get("namespace") or "", model["metadata"]["name"]
        return [ObjectKey(ns, ji["metadata"]["name"]) for ji in services.list(ns)
                if name in {((ji.get("spec") or {}).get(side) or {}).get("model", {}).get("name")
                            for side in ("edgeWorker", "cloudWorker")}]

    return mapper
