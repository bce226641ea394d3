"""The objects a FederatedLearningJob should have: the aggregation Pod + Service and the trainer Pods.

``<job>-aggregation`` (Pod and ClusterIP Service, worker-type ``aggregation``) runs the aggregation
server on :data:`AGG_PORT` on the cloud node; ``<job>-train-<i>`` (worker-type ``train``) runs the
``i``-th entry of ``spec.trainingWorkers`` on the node of its Dataset (``spec.nodeName``, see
:mod:`gm.workloads.placement`) and dials
the aggregator through the Service: ``AGG_IP`` is the Service's clusterIP when it is an IP address
(the local backend's 127.0.2.N, a TCP proxy that carries gRPC), else its DNS name ``<svc>.<ns>``.

Every Pod carries the annotation :data:`GENERATION_ANNOTATION`, so after a spec change - a new
``metadata.generation`` - the controller recreates every Pod, not only those whose spec hash
changed: the job restarts. The aggregator's checkpoints go to a directory named after the job's uid
and generation, so a restarted job starts from round 0 while a restarted aggregator Pod of the same
generation resumes from its last round. Each container gets the DESIGN section 4 env; values a user
already set are kept (user wins, as in Sedna). With the GM's credentials (``settings.credentials``)
the aggregator gets the job's signing key ``AGG_CLIENT_KEY`` and each trainer only its own
``AGG_CLIENT_TOKEN`` for its client id (its ``WORKER_NAME``), so no trainer can speak for another
(:mod:`gm.workloads.credentials`, ``docs/federated.md``). :class:`Inputs` adds the transmitter's env
and the storage-initializer downloads of remote inputs (:mod:`.transmitter`). Pure functions: tests
assert on their output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from gm.cluster.interface import FEDERATED_LEARNING_JOB, Obj
from gm.settings import ControllerSettings
from gm.workloads import building, storage
from gm.workloads.building import EnvVar, Plan, env_field, env_value
from gm.workloads.placement import Placement

KIND = FEDERATED_LEARNING_JOB
AGG_PORT = 7363
AGGREGATION = "aggregation"
TRAIN = "train"
GENERATION_ANNOTATION = "federatedlearningjob.sedna.io/generation"
DEFAULT_RESTART_POLICY = "OnFailure"


@dataclass(frozen=True)
class Inputs:
    """What a worker gets beyond the contract env: the transmitter's env and its remote downloads."""

    env: Sequence[EnvVar] = ()
    secrets: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    downloads: Sequence[storage.Mount] = ()

    def injection(self, env: list[EnvVar], settings: ControllerSettings) -> storage.Injection | None:
        """The storage injection of ``env`` (None without downloads); raises ``StorageError`` naming the URL."""
        if not self.downloads:
            return None
        return storage.plan(env, self.downloads, self.secrets, settings.storage_image, settings.storage_host_paths)


NO_INPUTS = Inputs()


def aggregation_name(job: Obj) -> str:
    """``<job>-aggregation``: the aggregation Pod and its Service."""
    return f"{job['metadata']['name']}-{AGGREGATION}"


def trainer_name(job: Obj, index: int) -> str:
    """``<job>-train-<index>``: the Pod of ``spec.trainingWorkers[index]``."""
    return f"{job['metadata']['name']}-{TRAIN}-{index}"


def aggregation_service(job: Obj) -> Obj:
    """The ClusterIP Service in front of the aggregation server."""
    return building.service(KIND, job, name=aggregation_name(job), worker_type=AGGREGATION,
                            ports=[("grpc", AGG_PORT)])


def aggregator_host(service: Obj | None, job: Obj) -> str:
    """Where the aggregation Service answers (``AGG_IP``)."""
    return building.service_host(service, aggregation_name(job), job["metadata"]["namespace"])


def checkpoint_dir(job: Obj, model_url: str) -> str:
    """``<model dir>/checkpoints/<uid[:8]>-g<generation>``: one directory per job incarnation."""
    meta = job["metadata"]
    base = PurePosixPath(model_url)
    if base.suffix == ".npz":
        base = base.parent
    return str(base / "checkpoints" / f"{str(meta['uid'])[:8]}-g{int(meta.get('generation') or 1)}")


def _env(job: Obj, name: str, node: str, settings: ControllerSettings) -> list[EnvVar]:
    participants = env_value("PARTICIPANTS_COUNT", len(job["spec"]["trainingWorkers"]))
    return building.base_env(job, "JOB_NAME", name, node, settings, [participants])


def _pod(job: Obj, template: Obj | None, worker_type: str, name: str, env: list[EnvVar], node: str,
         force_node: bool, settings: ControllerSettings, inputs: Inputs, edge: str = "") -> Plan:
    generation = str(int(job["metadata"].get("generation") or 1))
    env = [*env, *inputs.env]
    return building.pod(KIND, job, template, name=name, worker_type=worker_type, env=env, node=node,
                        restart_policy=DEFAULT_RESTART_POLICY, annotations={GENERATION_ANNOTATION: generation},
                        force_node=force_node, storage=inputs.injection(env, settings), edge=edge)


def aggregation_pod(job: Obj, model: Obj, pretrained_url: str, settings: ControllerSettings,
                    inputs: Inputs = NO_INPUTS) -> Plan:
    """The aggregation worker on the cloud node; ``model`` is the output Model."""
    worker = job["spec"]["aggregationWorker"]
    node = Placement(settings.default_cloud_node or "").fl_aggregator(job["spec"])
    name = aggregation_name(job)
    model_url = str(model["spec"]["url"])
    env = [*_env(job, name, node, settings), env_value("MODEL_URL", model_url),
           env_value("MODEL_NAME", model["metadata"]["name"]),
           env_field("AGG_BIND_IP", "status.podIP"), env_value("AGG_BIND_PORT", AGG_PORT),
           env_value("CHECKPOINT_DIR", checkpoint_dir(job, model_url))]
    if pretrained_url:
        env.append(env_value("PRETRAINED_MODEL_URL", pretrained_url))
    if settings.credentials is not None:
        env.append(env_value("AGG_CLIENT_KEY", settings.credentials.fl_job_key(str(job["metadata"]["uid"]))))
    return _pod(job, worker.get("template"), AGGREGATION, name, env, node, False, settings, inputs)


def trainer_pod(job: Obj, index: int, dataset: Obj, model: Obj, pretrained_url: str, agg_host: str,
                settings: ControllerSettings, inputs: Inputs = NO_INPUTS) -> Plan:
    """The ``index``-th training worker, on its Dataset's node."""
    worker = job["spec"]["trainingWorkers"][index]
    node = Placement.fl_trainer(job["spec"], index, str((dataset.get("spec") or {}).get("nodeName") or ""))
    name = trainer_name(job, index)
    env = [*_env(job, name, node, settings), env_value("AGG_IP", agg_host), env_value("AGG_PORT", AGG_PORT),
           env_value("TRAIN_DATASET_URL", str(dataset["spec"]["url"])),
           env_value("DATASET_NAME", dataset["metadata"]["name"]),
           env_value("MODEL_URL", str(model["spec"]["url"])), env_value("MODEL_NAME", model["metadata"]["name"])]
    if pretrained_url:
        env.append(env_value("PRETRAINED_MODEL_URL", pretrained_url))
    if settings.credentials is not None:
        env.append(env_value("AGG_CLIENT_TOKEN", settings.credentials.fl_trainer_token(
            str(job["metadata"]["uid"]), job["metadata"]["name"], name)))
    return _pod(job, worker.get("template"), TRAIN, name, env, node, True, settings, inputs,
                edge=building.EDGE if settings.edge_scheduling else "")
