"""The objects a LifelongLearningJob runs: its knowledge base, one Pod per Train / Eval stage, the inference worker.

Names are deterministic so a reconcile that runs twice creates nothing twice:

- ``<job>-kb`` (a Deployment, worker type ``kb``, and its Service on :data:`KB_PORT`): the job's own
  knowledge-base server (``python -m workers.lifelong.kb``), storing under ``<outputDir>/kb``. It
  runs in the image of the train template's first container, on the train worker's node, with that
  template's volumes and mounts (so ``outputDir`` is reachable the way the train worker reaches
  it), but none of its command or env. Not created when the GM points every job at a shared KB.
- ``<job>-train-<round>`` / ``<job>-eval-<round>``: the stage Pods, ``restartPolicy: Never`` by
  default, with Sedna's env (``HAS_COMPLETED_INITIAL_TRAINING``, ``CLOUD_KB_INDEX``, ``KB_SERVER``
  for training; ``MODEL_URLS``, ``TEST_DATASET_URL``, ``KB_SERVER`` for evaluation) plus
  ``KB_TOKEN`` and ``OUTPUT_URL``; evaluation runs with ``publish=false``: publishing is the
  Deploy stage's business.
- ``<job>-infer``: the inference worker, created at the first deploy (Sedna starts none before),
  following the KB's latest published version (``MODEL_URLS={KB}/knowledgebase/index``, hot update)
  and keeping its local copy in ``<outputDir>/deploy/kb``.

Each container gets the DESIGN section 4 env (user values win, as in Sedna); ``WORKER_NAME`` is the
Pod name, which is how the controller matches a worker's report to its Pod. Pure functions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from gm.cluster.interface import LIFELONG_LEARNING_JOB, Obj
from gm.settings import ControllerSettings
from gm.workloads import building
from gm.workloads.building import EnvVar, Plan, env_field, env_value
from gm.workloads.placement import Placement

KIND = LIFELONG_LEARNING_JOB
KB_PORT = 9020
"""Sedna's knowledge-base port."""
INFER_REST_PORT = 5100
INFER_GRPC_PORT = 5101
KB_POLL_SECONDS = 5
"""How often the inference worker asks the KB for a newer published version (``KB_POLL_PERIOD_SECONDS``)."""
ROUND_ANNOTATION = "sedna.io/round"
KB_MODULE = "workers.lifelong.kb"
TOKEN_ENV = "KB_TOKEN"
_KEPT_POD_FIELDS = ("nodeName", "nodeSelector", "affinity", "tolerations", "volumes", "imagePullSecrets",
                    "securityContext", "serviceAccountName", "hostNetwork", "dnsPolicy")
_KEPT_CONTAINER_FIELDS = ("image", "imagePullPolicy", "volumeMounts", "workingDir", "securityContext")


@dataclass(frozen=True)
class KBRef:
    """Where a job's stage and inference workers reach the knowledge base."""

    url: str
    """``http://host:port`` of the KB server."""
    token: str

    def index_url(self, version: int | None = None) -> str:
        """The index of ``version`` (default: the latest published one)."""
        return f"{self.url}/knowledgebase/index" + (f"/{version}" if version is not None else "")

    def env(self) -> list[EnvVar]:
        return [env_value("KB_SERVER", self.url), env_value(TOKEN_ENV, self.token)]


def name_of(job: Obj, worker_type: str, round_: int | None = None) -> str:
    """``<job>-<worker type>``, with ``-<round>`` for a stage Pod."""
    base = f"{job['metadata']['name']}-{worker_type}"
    return base if round_ is None else f"{base}-{round_}"


def output_dir(job: Obj) -> str:
    return str(job["spec"]["outputDir"]).rstrip("/")


# -- the knowledge base ----------------------------------------------------------------------------------
def kb_service(job: Obj) -> Obj:
    """The ClusterIP Service in front of the job's KB server."""
    return building.service(KIND, job, name=name_of(job, "kb"), worker_type="kb", ports=[("tcp-0", KB_PORT)])


def kb_host(service: Obj | None, job: Obj) -> str:
    """Where the KB Service answers: its clusterIP, else its DNS name."""
    return building.service_host(service, name_of(job, "kb"), job["metadata"]["namespace"])


def kb_node(job: Obj, settings: ControllerSettings) -> str:
    """The KB server's node: the train worker's."""
    return Placement(settings.default_cloud_node or "").stage(job["spec"], "train")


def kb_deployment(job: Obj, token: str, settings: ControllerSettings) -> Plan:
    """The job's KB server (see the module docstring)."""
    train = ((job["spec"].get("trainSpec") or {}).get("template") or {})
    source_spec = train.get("spec") or {}
    source = (source_spec.get("containers") or [{}])[0]
    pod_spec = {k: copy.deepcopy(source_spec[k]) for k in _KEPT_POD_FIELDS if k in source_spec}
    container: dict[str, Any] = {k: copy.deepcopy(source[k]) for k in _KEPT_CONTAINER_FIELDS if k in source}
    container.update(name="kb", command=["python", "-m", KB_MODULE],
                     ports=[{"name": "http", "containerPort": KB_PORT}],
                     readinessProbe={"httpGet": {"path": "/healthz", "port": KB_PORT}, "periodSeconds": 5})
    pod_spec["containers"] = [container]
    meta = job["metadata"]
    env = [env_value("NAMESPACE", meta["namespace"]), env_value("JOB_NAME", meta["name"]),
           env_field("KB_BIND_IP", "status.podIP"), env_value("KB_BIND_PORT", KB_PORT),
           env_value("KB_PATH", f"{output_dir(job)}/kb"), env_value(TOKEN_ENV, token)]
    return building.deployment(KIND, job, {"spec": pod_spec}, name=name_of(job, "kb"), worker_type="kb", env=env,
                               node=kb_node(job, settings))


def token_of(deployment: Obj | None) -> str:
    """The ``KB_TOKEN`` an existing KB Deployment runs with ('' when none)."""
    containers = ((((deployment or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers") or []
    for container in containers:
        for item in container.get("env") or []:
            if item.get("name") == TOKEN_ENV and isinstance(item.get("value"), str):
                return str(item["value"])
    return ""


# -- the stage workers -----------------------------------------------------------------------------------
def train_pod(job: Obj, round_: int, inputs: dict[str, Any], kb: KBRef, cloud_index: str, dataset_url: str,
              settings: ControllerSettings) -> Obj:
    """The Train Pod of ``round_``: ``cloud_index`` is the version to update ('' for the initial training)."""
    env = [env_value("HAS_COMPLETED_INITIAL_TRAINING", "true" if cloud_index else "false"),
           env_value("CLOUD_KB_INDEX", cloud_index),
           env_value("OUTPUT_URL", inputs.get("outputDir") or f"{output_dir(job)}/train/{round_}"),
           env_value("TRAIN_DATASET_URL", inputs.get("dataURL", ""))]
    return _stage_pod(job, "train", round_, env, kb, inputs, dataset_url, settings)


def eval_pod(job: Obj, round_: int, inputs: dict[str, Any], kb: KBRef, dataset_url: str,
             settings: ControllerSettings) -> Obj:
    """The Eval Pod of ``round_``: scores the version(s) the LC names; never publishes."""
    models = [str(m) for m in inputs.get("models") or []]
    env = [env_value("MODEL_URLS", ";".join(models)), env_value("OUTPUT_URL", f"{output_dir(job)}/eval/{round_}"),
           env_value("TEST_DATASET_URL", inputs.get("dataURL", "")), env_value("publish", "false")]
    return _stage_pod(job, "eval", round_, env, kb, inputs, dataset_url, settings)


def _stage_pod(job: Obj, worker_type: str, round_: int, env: list[EnvVar], kb: KBRef, inputs: dict[str, Any],
               dataset_url: str, settings: ControllerSettings) -> Obj:
    name = name_of(job, worker_type, round_)
    node = Placement(settings.default_cloud_node or "").stage(job["spec"], worker_type)
    full = [*building.base_env(job, "JOB_NAME", name, node, settings), *kb.env(), *env,
            env_value("ORIGINAL_DATASET_URL", inputs.get("dataIndexURL") or dataset_url)]
    side = "trainSpec" if worker_type == "train" else "evalSpec"
    template = (job["spec"].get(side) or {}).get("template")
    return building.pod(KIND, job, template, name=name, worker_type=worker_type, env=full, node=node,
                        restart_policy="Never", annotations={ROUND_ANNOTATION: str(round_)}).obj


def infer_pod(job: Obj, kb: KBRef, dataset_node: str, settings: ControllerSettings) -> Obj:
    """The inference worker: serves the KB's latest published version and follows new ones."""
    spec = job["spec"]
    name = name_of(job, "infer")
    node = Placement.inference(spec, dataset_node)
    deploy = f"{output_dir(job)}/deploy"
    env = [*building.base_env(job, "JOB_NAME", name, node, settings), *kb.env(),
           env_value("MODEL_URLS", kb.index_url()), env_value("OUTPUT_URL", deploy),
           env_value("EDGE_KB_DIR", f"{deploy}/kb"), env_value("MODEL_HOT_UPDATE", "true"),
           env_value("KB_POLL_PERIOD_SECONDS", KB_POLL_SECONDS),
           env_field("EDGE_BIND_IP", "status.podIP"), env_value("EDGE_BIND_PORT", INFER_REST_PORT),
           env_value("EDGE_GRPC_PORT", INFER_GRPC_PORT)]
    template = (spec.get("deploySpec") or {}).get("template")
    return building.pod(KIND, job, template, name=name, worker_type="inference", env=env, node=node,
                        restart_policy="Always").obj


def env_value_of(pod: Obj | None, name: str) -> str:
    """The value of env ``name`` in ``pod``'s first container that sets it ('' when none)."""
    for container in ((pod or {}).get("spec") or {}).get("containers") or []:
        for item in container.get("env") or []:
            if item.get("name") == name and isinstance(item.get("value"), str):
                return str(item["value"])
    return ""
