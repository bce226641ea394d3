"""The objects a FederatedLearningJob should have: the aggregation Pod + Service and the trainer Pods.

``<job>-aggregation`` (Pod and ClusterIP Service, worker-type ``aggregation``) runs the aggregation
server on :data:`AGG_PORT` on the cloud node; ``<job>-train-<i>`` (worker-type ``train``) runs the
``i``-th entry of ``spec.trainingWorkers`` on the node of its Dataset (``spec.nodeName``) and dials
the aggregator through the Service: ``AGG_IP`` is the Service's clusterIP when it is an IP address
(the local backend's 127.0.2.N, a TCP proxy that carries gRPC), else its DNS name ``<svc>.<ns>``.

Every Pod carries the annotation :data:`GENERATION_ANNOTATION`, so after a spec change - a new
``metadata.generation`` - the controller recreates every Pod, not only those whose spec hash
changed: the job restarts. The aggregator's checkpoints go to a directory named after the job's uid
and generation, so a restarted job starts from round 0 while a restarted aggregator Pod of the same
generation resumes from its last round. Each container gets the DESIGN section 4 env; values a user
already set are kept (user wins, as in Sedna). Pure functions: tests assert on their output.
"""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from gm.cluster.interface import FEDERATED_LEARNING_JOB, POD, SERVICE, Obj
from gm.controllers.workloads import env_field, env_value, merge_env, owner_reference, with_hash, worker_labels
from gm.settings import ControllerSettings

KIND = FEDERATED_LEARNING_JOB
AGG_PORT = 7363
AGGREGATION = "aggregation"
TRAIN = "train"
GENERATION_ANNOTATION = "federatedlearningjob.sedna.io/generation"
DEFAULT_RESTART_POLICY = "OnFailure"


@dataclass
class PodPlan:
    """A desired Pod and the env names whose user value was kept."""

    pod: Obj
    kept_env: list[str]


def aggregation_name(job: Obj) -> str:
    """``<job>-aggregation``: the aggregation Pod and its Service."""
    return f"{job['metadata']['name']}-{AGGREGATION}"


def trainer_name(job: Obj, index: int) -> str:
    """``<job>-train-<index>``: the Pod of ``spec.trainingWorkers[index]``."""
    return f"{job['metadata']['name']}-{TRAIN}-{index}"


def template_node(template: dict[str, Any] | None) -> str:
    """``spec.nodeName`` of a Pod template, else its ``kubernetes.io/hostname`` nodeSelector."""
    pod_spec = (template or {}).get("spec") or {}
    return pod_spec.get("nodeName") or (pod_spec.get("nodeSelector") or {}).get("kubernetes.io/hostname") or ""


def aggregation_service(job: Obj) -> Obj:
    """The ClusterIP Service in front of the aggregation server."""
    meta = job["metadata"]
    labels = worker_labels(KIND, job, AGGREGATION)
    return with_hash({
        "apiVersion": SERVICE.api_version, "kind": SERVICE.kind,
        "metadata": {"name": aggregation_name(job), "namespace": meta["namespace"], "labels": labels,
                     "ownerReferences": [owner_reference(KIND, job)]},
        "spec": {"type": "ClusterIP", "selector": labels,
                 "ports": [{"name": "grpc", "port": AGG_PORT, "targetPort": AGG_PORT, "protocol": "TCP"}]},
    })


def aggregator_host(service: Obj | None, job: Obj) -> str:
    """The Service's clusterIP when it is an IP address, else its DNS name ``<svc>.<ns>``."""
    ip = ((service or {}).get("spec") or {}).get("clusterIP") or ""
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return f"{aggregation_name(job)}.{job['metadata']['namespace']}"
    return str(ip)


def checkpoint_dir(job: Obj, model_url: str) -> str:
    """``<model dir>/checkpoints/<uid[:8]>-g<generation>``: one directory per job incarnation."""
    meta = job["metadata"]
    base = PurePosixPath(model_url)
    if base.suffix == ".npz":
        base = base.parent
    return str(base / "checkpoints" / f"{str(meta['uid'])[:8]}-g{int(meta.get('generation') or 1)}")


def _common_env(job: Obj, name: str, node: str, settings: ControllerSettings) -> list[dict[str, Any]]:
    meta = job["metadata"]
    env = [env_value("NAMESPACE", meta["namespace"]), env_value("JOB_NAME", meta["name"]),
           env_value("WORKER_NAME", name), env_value("PARTICIPANTS_COUNT", len(job["spec"]["trainingWorkers"])),
           env_value("LC_SERVER", settings.lc_server(node))]
    token = settings.lc_tokens.get(node, "")
    if token:
        env.append(env_value("LC_TOKEN", token))
    return env


def _pod(job: Obj, template: dict[str, Any] | None, worker_type: str, name: str, env: list[dict[str, Any]],
         node: str, force_node: bool) -> PodPlan:
    template = copy.deepcopy(template or {})
    labels = worker_labels(KIND, job, worker_type)
    tmeta = template.get("metadata") or {}
    pod_spec = template.get("spec") or {}
    if node and (force_node or not pod_spec.get("nodeName")):
        pod_spec["nodeName"] = node  # a trainer goes where its data is
    pod_spec.setdefault("restartPolicy", DEFAULT_RESTART_POLICY)
    kept = merge_env(pod_spec.setdefault("containers", []), env)
    annotations = {**(tmeta.get("annotations") or {}),
                   GENERATION_ANNOTATION: str(int(job["metadata"].get("generation") or 1))}
    pod = with_hash({
        "apiVersion": POD.api_version, "kind": POD.kind,
        "metadata": {"name": name, "namespace": job["metadata"]["namespace"],
                     "labels": {**(tmeta.get("labels") or {}), **labels}, "annotations": annotations,
                     "ownerReferences": [owner_reference(KIND, job)]},
        "spec": pod_spec,
    })
    return PodPlan(pod, kept)


def aggregation_pod(job: Obj, model: Obj, pretrained_url: str, settings: ControllerSettings) -> PodPlan:
    """The aggregation worker on the cloud node; ``model`` is the output Model."""
    worker = job["spec"]["aggregationWorker"]
    node = template_node(worker.get("template")) or settings.default_cloud_node or ""
    name = aggregation_name(job)
    model_url = str(model["spec"]["url"])
    env = [*_common_env(job, name, node, settings), env_value("MODEL_URL", model_url),
           env_value("MODEL_NAME", model["metadata"]["name"]),
           env_field("AGG_BIND_IP", "status.podIP"), env_value("AGG_BIND_PORT", AGG_PORT),
           env_value("CHECKPOINT_DIR", checkpoint_dir(job, model_url))]
    if pretrained_url:
        env.append(env_value("PRETRAINED_MODEL_URL", pretrained_url))
    return _pod(job, worker.get("template"), AGGREGATION, name, env, node, force_node=False)


def trainer_pod(job: Obj, index: int, dataset: Obj, model: Obj, pretrained_url: str, agg_host: str,
                settings: ControllerSettings) -> PodPlan:
    """The ``index``-th training worker, on its Dataset's node."""
    worker = job["spec"]["trainingWorkers"][index]
    node = str((dataset.get("spec") or {}).get("nodeName") or "")
    name = trainer_name(job, index)
    env = [*_common_env(job, name, node, settings), env_value("AGG_IP", agg_host), env_value("AGG_PORT", AGG_PORT),
           env_value("TRAIN_DATASET_URL", str(dataset["spec"]["url"])),
           env_value("DATASET_NAME", dataset["metadata"]["name"]),
           env_value("MODEL_URL", str(model["spec"]["url"])), env_value("MODEL_NAME", model["metadata"]["name"])]
    if pretrained_url:
        env.append(env_value("PRETRAINED_MODEL_URL", pretrained_url))
    return _pod(job, worker.get("template"), TRAIN, name, env, node, force_node=True)
