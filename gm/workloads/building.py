"""Building worker objects (Pods, Deployments, Services) for any Sedna kind: pure functions.

Every child gets the labels ``<kind>.sedna.io/{name,uid,worker-type}`` and a controller owner
reference (Kubernetes' garbage collector and the local store cascade deletes through it). The
worker env (DESIGN section 4) is merged into every container without overriding a user's own value
(user wins, as in Sedna); the names kept are reported so the controller can say so in an Event.
Each object carries the hash of what we want in the ``sedna.io/spec-hash`` annotation, so
:mod:`.applying` updates only when that changes and defaults an API server adds never cause a loop.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gm.cluster.interface import DEPLOYMENT, POD, SERVICE, Kind, Obj
from gm.settings import ControllerSettings
from gm.workloads.scheduling import place_on_edge

if TYPE_CHECKING:
    from gm.workloads.storage import Injection

HASH_ANNOTATION = "sedna.io/spec-hash"
EDGE = "edge"
"""``edge`` of :func:`pod` / :func:`deployment`: tolerate the edge taint."""
EDGE_HOST_NETWORK = "edge-host-network"
"""Tolerate the edge taint and use the node's network (devices reach the worker)."""
EnvVar = dict[str, Any]


@dataclass
class Plan:
    """A desired child object and the env names whose user value was kept."""

    obj: Obj
    kept_env: list[str] = field(default_factory=list)


def worker_labels(kind: Kind, owner: Obj, worker_type: str) -> dict[str, str]:
    """The three labels every worker object of ``owner`` carries."""
    meta = owner["metadata"]
    prefix = kind.label_prefix
    return {f"{prefix}/name": meta["name"], f"{prefix}/uid": meta["uid"], f"{prefix}/worker-type": worker_type}


def owner_reference(kind: Kind, owner: Obj) -> dict[str, Any]:
    """A controller owner reference to ``owner``."""
    meta = owner["metadata"]
    return {"apiVersion": kind.api_version, "kind": kind.kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def env_value(name: str, value: str | int) -> EnvVar:
    """``{"name": name, "value": str(value)}``."""
    return {"name": name, "value": str(value)}


def env_field(name: str, field_path: str) -> EnvVar:
    """An env var from the downward API (``valueFrom.fieldRef``)."""
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": field_path}}}


def base_env(owner: Obj, owner_var: str, worker_name: str | None, node: str, settings: ControllerSettings,
             extra: Sequence[EnvVar] = (), worker_prefix: str = "") -> list[EnvVar]:
    """The env every worker gets: ``NAMESPACE``, ``<owner_var>``, ``WORKER_NAME``, ``extra``, ``LC_SERVER``
    and ``LC_TOKEN``, the worker's own credential for its node's LC (:mod:`.credentials`).

    ``owner_var`` is ``SERVICE_NAME`` for a service and ``JOB_NAME`` for a job (Sedna's names);
    ``worker_name`` None takes the Pod's own name from the downward API (Deployment replicas), and
    the credential then binds ``worker_prefix`` (the Deployment's name followed by ``-``).
    Without ``settings.credentials`` the node's ``settings.lc_tokens`` entry, if any, is used.
    """
    meta = owner["metadata"]
    worker = env_field("WORKER_NAME", "metadata.name") if worker_name is None else env_value("WORKER_NAME",
                                                                                             worker_name)
    env = [env_value("NAMESPACE", meta["namespace"]), env_value(owner_var, meta["name"]), worker, *extra,
           env_value("LC_SERVER", settings.lc_server(node))]
    if settings.credentials is not None and node:
        bound, prefix = (worker_name, False) if worker_name is not None else (worker_prefix, True)
        if not bound:
            raise ValueError("base_env: a worker named at run time needs worker_prefix for its credential")
        env.append(env_value("LC_TOKEN", settings.credentials.lc_token(
            node, str(owner["kind"]).lower(), meta["namespace"], meta["name"], bound, prefix)))
    elif settings.lc_tokens.get(node):
        env.append(env_value("LC_TOKEN", settings.lc_tokens[node]))
    return env


def merge_env(containers: Sequence[dict[str, Any]], env: Sequence[EnvVar]) -> list[str]:
    """Append ``env`` to every container in place, keeping any same-named user value.

    Returns the sorted names a user value was kept for (user wins, as in Sedna).
    """
    kept: set[str] = set()
    for container in containers:
        current = container.setdefault("env", [])
        have = {item.get("name") for item in current}
        for item in env:
            if item["name"] in have:
                kept.add(item["name"])
            else:
                current.append(json.loads(json.dumps(item)))
    return sorted(kept)


def spec_hash(value: Any) -> str:
    """A short stable hash of a JSON-able value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def with_hash(obj: Obj) -> Obj:
    """``obj`` with the hash of its spec, labels and owner in the spec-hash annotation."""
    meta = obj["metadata"]
    digest = spec_hash({"spec": obj.get("spec"), "labels": meta.get("labels"),
                        "owners": meta.get("ownerReferences")})
    meta.setdefault("annotations", {})[HASH_ANNOTATION] = digest
    return obj


def _pod_spec(template: dict[str, Any], node: str, force_node: bool, env: Sequence[EnvVar],
              restart_policy: str | None, storage: Injection | None = None,
              edge: str = "") -> tuple[dict[str, Any], list[str]]:
    pod_spec = template.setdefault("spec", {})
    if edge:
        place_on_edge(pod_spec, host_network=edge == EDGE_HOST_NETWORK)
    if node and (force_node or not pod_spec.get("nodeName")):
        pod_spec["nodeName"] = node
    if restart_policy is not None:
        pod_spec.setdefault("restartPolicy", restart_policy)
    kept = merge_env(pod_spec.setdefault("containers", []), storage.env if storage is not None else env)
    if storage is not None:
        storage.apply(pod_spec)
    return pod_spec, kept


def pod(kind: Kind, owner: Obj, template: Mapping[str, Any] | None, *, name: str, worker_type: str,
        env: Sequence[EnvVar], node: str, restart_policy: str, annotations: Mapping[str, str] | None = None,
        force_node: bool = False, storage: Injection | None = None, edge: str = "") -> Plan:
    """A Pod of ``owner`` from a user's Pod template, placed on ``node``.

    The template's own nodeName wins unless ``force_node``; its labels and annotations are kept,
    with the worker labels and ``annotations`` on top; ``restartPolicy`` defaults to ``restart_policy``.
    """
    copied = copy.deepcopy(dict(template or {}))
    tmeta = copied.get("metadata") or {}
    pod_spec, kept = _pod_spec(copied, node, force_node, env, restart_policy, storage, edge)
    obj = with_hash({
        "apiVersion": POD.api_version, "kind": POD.kind,
        "metadata": {"name": name, "namespace": owner["metadata"]["namespace"],
                     "labels": {**(tmeta.get("labels") or {}), **worker_labels(kind, owner, worker_type)},
                     "annotations": {**(tmeta.get("annotations") or {}), **(annotations or {})},
                     "ownerReferences": [owner_reference(kind, owner)]},
        "spec": pod_spec,
    })
    return Plan(obj, kept)


def deployment(kind: Kind, owner: Obj, template: Mapping[str, Any] | None, *, name: str, worker_type: str,
               env: Sequence[EnvVar], node: str, replicas: int = 1, storage: Injection | None = None,
               edge: str = "") -> Plan:
    """A Deployment of ``owner`` whose Pods come from a user's Pod template, placed on ``node``.

    ``storage`` replaces ``env`` with its rewritten env and adds its volumes and init container;
    ``edge`` (:data:`EDGE` or :data:`EDGE_HOST_NETWORK`) places it on an edge node (:mod:`.scheduling`).
    """
    copied = json.loads(json.dumps(dict(template or {})))  # a deep copy, faster than copy.deepcopy
    labels = worker_labels(kind, owner, worker_type)
    tmeta = copied.setdefault("metadata", {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}
    _, kept = _pod_spec(copied, node, False, env, None, storage, edge)
    obj = {
        "apiVersion": DEPLOYMENT.api_version, "kind": DEPLOYMENT.kind,
        "metadata": {"name": name, "namespace": owner["metadata"]["namespace"], "labels": labels,
                     "ownerReferences": [owner_reference(kind, owner)]},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": copied},
    }
    return Plan(with_hash(obj), kept)


def service(kind: Kind, owner: Obj, *, name: str, worker_type: str, ports: Sequence[tuple[str, int]]) -> Obj:
    """A ClusterIP Service in front of ``owner``'s ``worker_type`` Pods; ``ports`` are ``(name, port)``."""
    labels = worker_labels(kind, owner, worker_type)
    return with_hash({
        "apiVersion": SERVICE.api_version, "kind": SERVICE.kind,
        "metadata": {"name": name, "namespace": owner["metadata"]["namespace"], "labels": labels,
                     "ownerReferences": [owner_reference(kind, owner)]},
        "spec": {"type": "ClusterIP", "selector": labels,
                 "ports": [{"name": n, "port": p, "targetPort": p, "protocol": "TCP"} for n, p in ports]},
    })


def service_host(service: Obj | None, name: str, namespace: str) -> str:
    """Where a Service answers: its clusterIP when that is an IP address, else its DNS name ``<name>.<ns>``.

    The local backend's clusterIPs (127.B.128-255.N) are TCP proxies on loopback; on Kubernetes the DNS
    name also works where the clusterIP is not routable (EdgeMesh).
    """
    ip = ((service or {}).get("spec") or {}).get("clusterIP") or ""
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return f"{name}.{namespace}"
    return str(ip)


def hem_parameters(hem: Mapping[str, Any]) -> str:
    """``HEM_PARAMETERS``: the hard-example-mining parameters as Sedna's JSON list of ``{key, value}`` strings."""
    return json.dumps([{"key": str(p.get("key", "")), "value": str(p.get("value", ""))}
                       for p in hem.get("parameters") or []])
