"""The objects a JointInferenceService should have: two Deployments and a Service.

``<name>-cloud`` (Deployment, worker-type ``cloud``) serves the big model on REST
:data:`CLOUD_REST_PORT` and gRPC :data:`CLOUD_GRPC_PORT`; the Service ``<name>-cloud``
exposes both (ports named ``tcp-0``/``tcp-1`` as Sedna names them for EdgeMesh);
``<name>-edge`` (worker-type ``edge``) runs on the node the edge template names and
reaches the cloud through the Service. Each container gets the DESIGN §4 env; values a
user already set are kept. Pure functions: no I/O, so tests assert on their output.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from gm.cluster.interface import DEPLOYMENT, JOINT_INFERENCE_SERVICE, SERVICE, Obj
from gm.controllers.ji_validation import edge_node
from gm.controllers.workloads import env_field, env_value, merge_env, owner_reference, with_hash, worker_labels
from gm.settings import ControllerSettings

KIND = JOINT_INFERENCE_SERVICE
CLOUD_REST_PORT = 5000
CLOUD_GRPC_PORT = 5001
EDGE_REST_PORT = 5100
EDGE_GRPC_PORT = 5101
WORKER_TYPES = ("cloud", "edge")


@dataclass
class WorkerPlan:
    """A desired Deployment and the env names whose user value was kept."""

    deployment: Obj
    kept_env: list[str]


def child_name(ji: Obj, worker_type: str) -> str:
    """``<name>-<worker type>``: the Deployment (and, for cloud, the Service) name."""
    return f"{ji['metadata']['name']}-{worker_type}"


def cloud_service(ji: Obj) -> Obj:
    """The ClusterIP Service in front of the cloud worker (REST and gRPC)."""
    meta = ji["metadata"]
    labels = worker_labels(KIND, ji, "cloud")
    ports = [{"name": f"tcp-{i}", "port": port, "targetPort": port, "protocol": "TCP"}
             for i, port in enumerate((CLOUD_REST_PORT, CLOUD_GRPC_PORT))]
    return with_hash({
        "apiVersion": SERVICE.api_version, "kind": SERVICE.kind,
        "metadata": {"name": child_name(ji, "cloud"), "namespace": meta["namespace"], "labels": labels,
                     "ownerReferences": [owner_reference(KIND, ji)]},
        "spec": {"type": "ClusterIP", "selector": labels, "ports": ports},
    })


def big_model_host(service: Obj | None, ji: Obj) -> str:
    """The Service's clusterIP when it is an IP address, else its DNS name ``<svc>.<ns>``."""
    ip = ((service or {}).get("spec") or {}).get("clusterIP") or ""
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return f"{child_name(ji, 'cloud')}.{ji['metadata']['namespace']}"
    return ip


def _common_env(ji: Obj, model_url: str, node: str, settings: ControllerSettings) -> list[dict[str, Any]]:
    meta = ji["metadata"]
    env = [env_value("NAMESPACE", meta["namespace"]), env_value("SERVICE_NAME", meta["name"]),
           env_field("WORKER_NAME", "metadata.name"), env_value("MODEL_URL", model_url),
           env_value("LC_SERVER", settings.lc_server(node))]
    token = settings.lc_tokens.get(node, "")
    if token:
        env.append(env_value("LC_TOKEN", token))
    return env


def cloud_env(ji: Obj, model_url: str, node: str, settings: ControllerSettings) -> list[dict[str, Any]]:
    """Env of the cloud worker."""
    return [*_common_env(ji, model_url, node, settings), env_field("BIG_MODEL_BIND_IP", "status.podIP"),
            env_value("BIG_MODEL_BIND_PORT", CLOUD_REST_PORT), env_value("BIG_MODEL_GRPC_PORT", CLOUD_GRPC_PORT)]


def edge_env(ji: Obj, model_url: str, node: str, host: str, settings: ControllerSettings) -> list[dict[str, Any]]:
    """Env of the edge worker; ``host`` is where the cloud Service answers."""
    hem = (ji["spec"].get("edgeWorker") or {}).get("hardExampleMining") or {}
    params = [{"key": str(p.get("key", "")), "value": str(p.get("value", ""))} for p in hem.get("parameters") or []]
    env = [*_common_env(ji, model_url, node, settings), env_value("BIG_MODEL_IP", host),
           env_value("BIG_MODEL_PORT", CLOUD_REST_PORT), env_value("BIG_MODEL_GRPC_PORT", CLOUD_GRPC_PORT),
           env_value("HEM_NAME", hem.get("name", "")), env_value("HEM_PARAMETERS", json.dumps(params)),
           env_field("EDGE_BIND_IP", "status.podIP"), env_value("EDGE_BIND_PORT", EDGE_REST_PORT),
           env_value("EDGE_GRPC_PORT", EDGE_GRPC_PORT)]
    if settings.mqtt_broker:
        env.append(env_value("MQTT_BROKER", settings.mqtt_broker))
    return env


def cloud_node(ji: Obj, settings: ControllerSettings) -> str:
    """The cloud worker's node: its template's nodeName / hostname selector, else the default."""
    pod_spec = ((ji["spec"].get("cloudWorker") or {}).get("template") or {}).get("spec") or {}
    return (pod_spec.get("nodeName") or (pod_spec.get("nodeSelector") or {}).get("kubernetes.io/hostname")
            or settings.default_cloud_node or "")


def deployment(ji: Obj, worker_type: str, env: list[dict[str, Any]], node: str) -> WorkerPlan:
    """The Deployment of one worker type, built from the user's template."""
    meta = ji["metadata"]
    side = ji["spec"].get(f"{worker_type}Worker") or {}
    template = json.loads(json.dumps(side.get("template") or {}))  # a deep copy, faster than copy.deepcopy
    labels = worker_labels(KIND, ji, worker_type)
    tmeta = template.setdefault("metadata", {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}
    pod_spec = template.setdefault("spec", {})
    if node and not pod_spec.get("nodeName"):
        pod_spec["nodeName"] = node
    kept = merge_env(pod_spec.setdefault("containers", []), env)
    obj = {
        "apiVersion": DEPLOYMENT.api_version, "kind": DEPLOYMENT.kind,
        "metadata": {"name": child_name(ji, worker_type), "namespace": meta["namespace"], "labels": labels,
                     "ownerReferences": [owner_reference(KIND, ji)]},
        "spec": {"replicas": int(side.get("replicas") or 1), "selector": {"matchLabels": labels},
                 "template": template},
    }
    return WorkerPlan(with_hash(obj), kept)


def plan_workers(ji: Obj, models: dict[str, str], service: Obj | None,
                 settings: ControllerSettings) -> dict[str, WorkerPlan]:
    """Both worker Deployments; ``models`` maps worker type to the Model's url."""
    spec = ji["spec"]
    cnode = cloud_node(ji, settings)
    enode = edge_node(spec)
    return {
        "cloud": deployment(ji, "cloud", cloud_env(ji, models["cloud"], cnode, settings), cnode),
        "edge": deployment(ji, "edge", edge_env(ji, models["edge"], enode, big_model_host(service, ji), settings),
                           enode),
    }
