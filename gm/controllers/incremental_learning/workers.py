"""The Pods an IncrementalLearningJob runs: the inference worker and one Pod per Train / Eval stage.

Names are deterministic so a reconcile that runs twice creates nothing twice:
``<job>-infer`` (the inference worker, started with the job) and ``<job>-train-<round>`` /
``<job>-eval-<round>``. Each container gets the DESIGN §4 env (user values win, as in Sedna);
``WORKER_NAME`` is the Pod name, which is how the controller matches a worker's report to its
Pod. Stage Pods default to ``restartPolicy: Never`` so a failing worker fails its stage instead
of looping. With ``mounts`` (:mod:`.mounts`) naming a remote URL, the env is rewritten and the storage
initializer / credentials added (:mod:`gm.workloads.storage`). Pure functions: tests assert on their output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gm.cluster.interface import INCREMENTAL_LEARNING_JOB, Obj
from gm.settings import ControllerSettings
from gm.workloads import building, storage
from gm.workloads.building import EnvVar, env_field, env_value, with_hash
from gm.workloads.placement import Placement
from sedna.controlplane.il_protocol import hot_update_config_path

KIND = INCREMENTAL_LEARNING_JOB
INFER_REST_PORT = 5100
INFER_GRPC_PORT = 5101
ROUND_LABEL = "sedna.io/deploy-round"
ROUND_ANNOTATION = "sedna.io/round"


def pod_name(job: Obj, worker_type: str, round_: int | None = None) -> str:
    """``<job>-<worker type>``, with ``-<round>`` for a stage Pod."""
    base = f"{job['metadata']['name']}-{worker_type}"
    return base if round_ is None else f"{base}-{round_}"


def _env(job: Obj, name: str, node: str, settings: ControllerSettings) -> list[EnvVar]:
    return building.base_env(job, "JOB_NAME", name, node, settings)


Secrets = Mapping[str, Mapping[str, Any] | None]


def _storage(env: list[EnvVar], mounts: Sequence[storage.Mount] | None, secrets: Secrets,
             settings: ControllerSettings) -> storage.Injection | None:
    """The storage plan of a Pod whose ``mounts`` name a remote URL (None: the env stays as it is)."""
    if not mounts or not settings.storage_injection or \
            not any(storage.is_remote(u) for m in mounts for u in m.urls):
        return None
    # Local paths stay as they are (no hostPath): the LC and the workers exchange model and sample paths in
    # reports, and a path rewritten under /home/data in a worker would not name the file on the LC's node.
    return storage.plan(env, mounts, secrets, image=settings.storage_image, host_paths=False)


def infer_pod(job: Obj, model_url: str, dataset_node: str, settings: ControllerSettings, deploy_round: int,
              mounts: Sequence[storage.Mount] | None = None, secrets: Secrets | None = None) -> Obj:
    """The inference worker: serves ``deploySpec.model``; hot update env when enabled."""
    spec = job["spec"]
    deploy = spec.get("deploySpec") or {}
    model = deploy.get("model") or {}
    name = pod_name(job, "infer")
    node = Placement.inference(spec, dataset_node)
    hem = deploy.get("hardExampleMining") or {}
    env = [*_env(job, name, node, settings), env_value("MODEL_URL", model_url),
           env_value("HEM_NAME", hem.get("name", "")), env_value("HEM_PARAMETERS", building.hem_parameters(hem)),
           env_field("EDGE_BIND_IP", "status.podIP"), env_value("EDGE_BIND_PORT", INFER_REST_PORT),
           env_value("EDGE_GRPC_PORT", INFER_GRPC_PORT)]
    hot = bool(model.get("hotUpdateEnabled"))
    if hot:
        env += [env_value("MODEL_HOT_UPDATE", "true"),
                env_value("MODEL_POLL_PERIOD_SECONDS", int(model.get("pollPeriodSeconds") or 60)),
                env_value("MODEL_HOT_UPDATE_CONFIG", hot_update_config_path(spec["outputDir"]))]
    pod = building.pod(KIND, job, deploy.get("template"), name=name, worker_type="inference", env=env, node=node,
                       restart_policy="Always", edge=building.EDGE if settings.edge_scheduling else "",
                       storage=_storage(env, mounts, secrets or {}, settings)).obj
    if not hot:  # a new deploy round changes the labels, hence the hash: the Pod is recreated
        pod["metadata"]["labels"][ROUND_LABEL] = str(deploy_round)
        pod = with_hash(pod)
    return pod


def stage_pod(job: Obj, stage: str, round_: int, data: dict[str, Any], dataset_url: str,
              settings: ControllerSettings, mounts: Sequence[storage.Mount] | None = None,
              secrets: Secrets | None = None) -> Obj:
    """The Train or Eval Pod of ``round_``; ``data`` is the LC's Ready input."""
    side, worker_type = ("trainSpec", "train") if stage == "Train" else ("evalSpec", "eval")
    name = pod_name(job, worker_type, round_)
    node = Placement(settings.default_cloud_node or "").stage(job["spec"], worker_type)
    env = _env(job, name, node, settings)
    if stage == "Train":
        env += [env_value("BASE_MODEL_URL", data.get("model", "")), env_value("MODEL_URL", data.get("outputDir", "")),
                env_value("TRAIN_DATASET_URL", data.get("dataURL", ""))]
    else:
        models = [str(m) for m in data.get("models") or []]
        env += [env_value("MODEL_URLS", ";".join(models)), env_value("MODEL_URL", models[0] if models else ""),
                env_value("TEST_DATASET_URL", data.get("dataURL", ""))]
    env.append(env_value("ORIGINAL_DATASET_URL", data.get("dataIndexURL") or dataset_url))
    template = (job["spec"].get(side) or {}).get("template")
    return building.pod(KIND, job, template, name=name, worker_type=worker_type, env=env, node=node,
                        restart_policy="Never", annotations={ROUND_ANNOTATION: str(round_)},
                        storage=_storage(env, mounts, secrets or {}, settings)).obj
