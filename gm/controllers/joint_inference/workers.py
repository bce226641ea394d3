"""The objects a JointInferenceService should have: two Deployments and a Service.

``<name>-cloud`` (Deployment, worker-type ``cloud``) serves the big model on REST
:data:`CLOUD_REST_PORT` and gRPC :data:`CLOUD_GRPC_PORT`; the Service ``<name>-cloud`` exposes both
(ports named ``tcp-0``/``tcp-1`` as Sedna names them for EdgeMesh); ``<name>-edge`` (worker-type
``edge``) runs on the node the edge template names and reaches the cloud through the Service. Nodes
come from :mod:`gm.workloads.placement`, objects from :mod:`gm.workloads.building`; each container
gets the DESIGN section 4 env, values a user already set are kept. Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gm.cluster.interface import JOINT_INFERENCE_SERVICE, Obj
from gm.settings import ControllerSettings
from gm.workloads import building, storage
from gm.workloads.building import EnvVar, Plan, env_field, env_value
from gm.workloads.placement import Placement
from gm.workloads.storage import Injection, Mount

KIND = JOINT_INFERENCE_SERVICE
CLOUD_REST_PORT = 5000
CLOUD_GRPC_PORT = 5001
EDGE_REST_PORT = 5100
EDGE_GRPC_PORT = 5101
WORKER_TYPES = ("cloud", "edge")


def child_name(ji: Obj, worker_type: str) -> str:
    """``<name>-<worker type>``: the Deployment (and, for cloud, the Service) name."""
    return f"{ji['metadata']['name']}-{worker_type}"


def cloud_service(ji: Obj) -> Obj:
    """The ClusterIP Service in front of the cloud worker (REST and gRPC)."""
    return building.service(KIND, ji, name=child_name(ji, "cloud"), worker_type="cloud",
                            ports=[("tcp-0", CLOUD_REST_PORT), ("tcp-1", CLOUD_GRPC_PORT)])


def big_model_host(service: Obj | None, ji: Obj) -> str:
    """Where the cloud Service answers (``BIG_MODEL_IP``)."""
    return building.service_host(service, child_name(ji, "cloud"), ji["metadata"]["namespace"])


def _env(ji: Obj, model_url: str, node: str, settings: ControllerSettings, worker_type: str) -> list[EnvVar]:
    # JOB_NAME as well: Sedna's SDK names the cloud's /{JOB_NAME}/predict path and its reports' ownerName
    # after it (default "sedna"), so with it a Sedna image reaches the cloud and reports to this service.
    return building.base_env(ji, "SERVICE_NAME", None, node, settings,
                             [env_value("MODEL_URL", model_url), env_value("JOB_NAME", ji["metadata"]["name"])],
                             worker_prefix=f"{child_name(ji, worker_type)}-")


def cloud_env(ji: Obj, model_url: str, node: str, settings: ControllerSettings) -> list[EnvVar]:
    """Env of the cloud worker."""
    return [*_env(ji, model_url, node, settings, "cloud"), env_field("BIG_MODEL_BIND_IP", "status.podIP"),
            env_value("BIG_MODEL_BIND_PORT", CLOUD_REST_PORT), env_value("BIG_MODEL_GRPC_PORT", CLOUD_GRPC_PORT)]


def edge_env(ji: Obj, model_url: str, node: str, host: str, settings: ControllerSettings) -> list[EnvVar]:
    """Env of the edge worker; ``host`` is where the cloud Service answers."""
    hem = (ji["spec"].get("edgeWorker") or {}).get("hardExampleMining") or {}
    env = [*_env(ji, model_url, node, settings, "edge"), env_value("BIG_MODEL_IP", host),
           env_value("BIG_MODEL_PORT", CLOUD_REST_PORT), env_value("BIG_MODEL_GRPC_PORT", CLOUD_GRPC_PORT),
           env_value("HEM_NAME", hem.get("name", "")), env_value("HEM_PARAMETERS", building.hem_parameters(hem)),
           env_field("EDGE_BIND_IP", "status.podIP"), env_value("EDGE_BIND_PORT", EDGE_REST_PORT),
           env_value("EDGE_GRPC_PORT", EDGE_GRPC_PORT)]
    if settings.mqtt_broker:
        env.append(env_value("MQTT_BROKER", settings.mqtt_broker))
    return env


def deployment(ji: Obj, worker_type: str, env: list[EnvVar], node: str,
               storage: Injection | None = None, edge: str = "") -> Plan:
    """The Deployment of one worker type, built from the user's template."""
    side = ji["spec"].get(f"{worker_type}Worker") or {}
    return building.deployment(KIND, ji, side.get("template"), name=child_name(ji, worker_type),
                               worker_type=worker_type, env=env, node=node, replicas=int(side.get("replicas") or 1),
                               storage=storage, edge=edge)


def plan_workers(ji: Obj, models: dict[str, str], service: Obj | None, settings: ControllerSettings,
                 mounts: Mapping[str, Mount] | None = None,
                 secrets: Mapping[str, Mapping[str, Any] | None] | None = None) -> dict[str, Plan]:
    """Both worker Deployments; ``models`` maps worker type to the Model's url.

    With ``settings.storage_injection`` each worker's ``mounts[worker type]`` (its Model) is injected
    (:mod:`gm.workloads.storage`); raises :class:`~gm.workloads.storage.StorageError` naming the URL.
    """
    placement = Placement(settings.default_cloud_node or "")
    spec = ji["spec"]
    cnode, enode = placement.ji_cloud(spec), placement.ji_edge(spec)
    envs = {"cloud": cloud_env(ji, models["cloud"], cnode, settings),
            "edge": edge_env(ji, models["edge"], enode, big_model_host(service, ji), settings)}
    injections: dict[str, Injection | None] = {wt: None for wt in WORKER_TYPES}
    if settings.storage_injection and mounts:
        injections = {wt: storage.plan(envs[wt], [mounts[wt]], secrets or {}, settings.storage_image,
                                        settings.storage_host_paths)
                      for wt in WORKER_TYPES}
    return {"cloud": deployment(ji, "cloud", envs["cloud"], cnode, injections["cloud"]),
            "edge": deployment(ji, "edge", envs["edge"], enode, injections["edge"],
                               building.EDGE_HOST_NETWORK if settings.edge_scheduling else "")}
