"""DeploymentController: keeps ``spec.replicas`` Pods per Deployment in the local backend.

In the kube backend Kubernetes does this; here a small level-triggered controller does it.
Pods are owned by their Deployment directly (``ownerReferences`` with ``controller: true``; no
ReplicaSet objects), labelled with the template's labels plus ``pod-template-hash`` and named
``<deployment>-<hash>-<5 random>``. A template change replaces every Pod (the ``Recreate``
strategy); terminal Pods (Succeeded, or Failed and not being retried by the runtime) are
replaced; deleted Pods are re-created. ``status`` carries replicas, readyReplicas,
availableReplicas, updatedReplicas, observedGeneration and the Available/Progressing
conditions. A Pod is placed on the template's ``nodeName``, else its ``nodeSelector``
``kubernetes.io/hostname``, else ``default_node``.

Design: Deployment and Pod watches (:mod:`.watching`) only enqueue Deployment keys (a heap of due
times, de-duplicated); one worker thread reconciles a key at a time against the store, so
reconciling twice creates nothing twice. A reconcile reads only its own Pods (the store's owner
index) and writes status only when it changed, so a periodic resync of every Deployment is cheap.
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import json
import threading
import time
from typing import Any

from gm.cluster.interface import DEPLOYMENT, POD, AlreadyExists, ClusterError, NotFound, Obj, WatchEvent, pinned_node
from gm.cluster.local import watching
from gm.cluster.local._objects import (
    controller_of,
    labels_match,
    merge_patch,
    now,
    owner_reference,
    random_suffix,
)
from gm.cluster.local.store import LocalStore
from sedna.common.log import get_logger

_LOG = get_logger(__name__)
HASH_LABEL = "pod-template-hash"

Key = tuple[str, str]


def template_hash(template: Obj) -> str:
    """A short stable hash of a Pod template (Kubernetes' ``pod-template-hash`` label)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()[:10]


def is_ready(pod: Obj) -> bool:
    """True when the Pod's Ready condition is True."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def is_terminal(pod: Obj) -> bool:
    """True for a Pod that will not run again (the runtime retries Failed/CrashLoopBackOff Pods)."""
    status = pod.get("status") or {}
    return status.get("phase") == "Succeeded" or (
        status.get("phase") == "Failed" and status.get("reason") != "CrashLoopBackOff")


class DeploymentController:
    """Reconciles every Deployment in ``store``; ``start()`` / ``stop()`` run it in background threads."""

    def __init__(self, store: LocalStore, default_node: str = "cloud", resync_period: float = 30.0) -> None:
        self.store, self.default_node, self.resync_period = store, default_node, resync_period
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._dirty: dict[Key, float] = {}  # key -> due time; the heap may hold stale entries
        self._heap: list[tuple[float, Key]] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the watches and the worker."""
        self._threads = [
            watching.start_follower(self.store, DEPLOYMENT, self._stop, self._sync, self._on_deployment,
                                    "local-deployments-watch"),
            watching.start_follower(self.store, POD, self._stop, lambda _items: None, self._on_pod,
                                    "local-deployments-pods"),
            threading.Thread(target=self._work, name="local-deployments-worker", daemon=True)]
        self._threads[-1].start()

    def stop(self) -> None:
        """Stop watching and reconciling (Pods keep running)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(10)

    # ------------------------------------------------------------ the queue

    def enqueue(self, namespace: str, name: str, delay: float = 0.0) -> None:
        """Ask for ``namespace/name`` to be reconciled (after ``delay`` seconds)."""
        with self._cond:
            due = time.monotonic() + delay
            key = (namespace, name)
            if key in self._dirty and self._dirty[key] <= due:
                return
            self._dirty[key] = due
            heapq.heappush(self._heap, (due, key))
            self._cond.notify()

    def _sync(self, items: list[Obj]) -> None:
        for obj in items:
            self.enqueue(obj["metadata"]["namespace"], obj["metadata"]["name"])

    def _on_deployment(self, event: WatchEvent) -> None:
        if event.type != "DELETED":
            self._sync([event.object])

    def _on_pod(self, event: WatchEvent) -> None:
        owner = controller_of(event.object)
        if owner and owner.get("kind") == "Deployment":
            self.enqueue(event.object["metadata"]["namespace"], str(owner["name"]))

    def _work(self) -> None:
        last_resync = time.monotonic()
        while not self._stop.is_set():
            with self._cond:
                while self._heap and self._dirty.get(self._heap[0][1]) != self._heap[0][0]:
                    heapq.heappop(self._heap)  # superseded by an earlier due time, or done
                current = time.monotonic()
                if not self._heap or self._heap[0][0] > current:
                    self._cond.wait(min(self._heap[0][0] - current, 0.5) if self._heap else 0.5)
                    continue
                key = heapq.heappop(self._heap)[1]
                del self._dirty[key]
            try:
                self.reconcile(*key)
            except ClusterError as exc:
                _LOG.warning("reconciling deployment %s/%s failed (%s); retrying in 1 s", *key, exc)
                self.enqueue(*key, delay=1.0)
            except (ValueError, TypeError, KeyError, AttributeError):
                # A malformed Deployment is not retried until it changes; the others go on.
                _LOG.exception("deployment %s/%s cannot be reconciled", *key)
            if time.monotonic() - last_resync > self.resync_period:
                last_resync = time.monotonic()
                self._sync(self.store.list(DEPLOYMENT))

    # ------------------------------------------------------------ reconcile

    def reconcile(self, namespace: str, name: str) -> None:
        """Bring the Pods of Deployment ``namespace/name`` in line with its spec, then write its status."""
        try:
            deploy = self.store.get(DEPLOYMENT, namespace, name)
        except NotFound:
            return
        spec = deploy.get("spec") or {}
        template = spec.get("template") or {}
        wanted = spec.get("replicas", 1)
        if not isinstance(wanted, int) or isinstance(wanted, bool) or wanted < 0:
            self._write_status(deploy, [], 0, failure=f"spec.replicas: Invalid value {wanted!r}: must be an "
                                                      "integer >= 0")
            return
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        policy = (template.get("spec") or {}).get("restartPolicy", "Always")
        failure = None
        if selector and not labels_match(template, selector):
            failure = "spec.selector.matchLabels does not match spec.template.metadata.labels"
        elif policy != "Always":
            failure = f"spec.template.spec.restartPolicy: Unsupported value {policy!r}: Deployments need 'Always'"
        if failure:
            self._write_status(deploy, [], wanted, failure=failure)
            return
        digest = template_hash(template)
        uid = deploy["metadata"]["uid"]
        owned = [p for p in self.store.list_owned(POD, uid) if (controller_of(p) or {}).get("uid") == uid]
        current = []
        for pod in owned:
            labels = pod["metadata"].get("labels") or {}
            if labels.get(HASH_LABEL) != digest or is_terminal(pod):
                self._delete(pod)
            else:
                current.append(pod)
        if len(current) > wanted:
            # Drop not-ready Pods first, then the newest.
            current.sort(key=lambda p: (is_ready(p), p["metadata"]["creationTimestamp"],
                                        p["metadata"]["name"]), reverse=True)
            for pod in current[wanted:]:
                self._delete(pod)
            current = current[:wanted]
            self.store.emit_event(deploy, "ScalingReplicaSet", f"Scaled down to {wanted}")
        created = 0
        while len(current) < wanted:
            current.append(self._create_pod(deploy, template, digest))
            created += 1
        if created:
            self.store.emit_event(deploy, "ScalingReplicaSet", f"Scaled up to {wanted}")
        self._write_status(deploy, current, wanted)

    def _create_pod(self, deploy: Obj, template: Obj, digest: str) -> Obj:
        meta, tmeta = deploy["metadata"], template.get("metadata") or {}
        pod_spec = copy.deepcopy(template.get("spec") or {})
        if not pod_spec.get("nodeName"):
            pod_spec["nodeName"] = pinned_node(pod_spec) or self.default_node
        for _ in range(10):
            pod = {"apiVersion": "v1", "kind": "Pod", "spec": pod_spec, "metadata": {
                "name": f"{meta['name']}-{digest}-{random_suffix()}", "namespace": meta["namespace"],
                "labels": {**(tmeta.get("labels") or {}), HASH_LABEL: digest},
                "annotations": dict(tmeta.get("annotations") or {}),
                "ownerReferences": [owner_reference(deploy)]}}
            try:
                return self.store.create(pod)
            except AlreadyExists:
                continue
        raise AlreadyExists(f"could not find a free pod name for deployment {meta['name']!r}")

    def _delete(self, pod: Obj) -> None:
        try:
            self.store.delete(POD, pod["metadata"]["namespace"], pod["metadata"]["name"])
        except NotFound:
            pass

    def _write_status(self, deploy: Obj, pods: list[Obj], wanted: int, failure: str | None = None) -> None:
        ready = sum(1 for p in pods if is_ready(p))
        old = {c.get("type"): c for c in (deploy.get("status") or {}).get("conditions") or []}

        def condition(type_: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
            status = "True" if ok else "False"
            previous = old.get(type_) or {}
            since = previous.get("lastTransitionTime") if previous.get("status") == status else None
            return {"type": type_, "status": status, "reason": reason, "message": message,
                    "lastTransitionTime": since or now()}

        name = deploy["metadata"]["name"]
        available = ready >= wanted
        if failure:
            progressing = condition("Progressing", False, "ReplicaSetCreateError", failure)
        elif available:
            progressing = condition("Progressing", True, "NewReplicaSetAvailable",
                                    f"Deployment {name!r} has {ready} ready replica(s) of the current template")
        else:
            progressing = condition("Progressing", True, "ReplicaSetUpdated",
                                    f"Deployment {name!r} is progressing: {ready}/{wanted} ready")
        status = {
            "replicas": len(pods), "readyReplicas": ready, "availableReplicas": ready,
            "updatedReplicas": len(pods), "unavailableReplicas": max(0, wanted - ready),
            "observedGeneration": deploy["metadata"].get("generation", 1),
            "conditions": [
                condition("Available", available,
                          "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                          f"{ready} of {wanted} replica(s) available"),
                progressing]}
        if merge_patch(deploy.get("status") or {}, status) == (deploy.get("status") or {}):
            return  # nothing changed (a resync): no write
        self.store.patch_status(DEPLOYMENT, deploy["metadata"]["namespace"], name, status)
