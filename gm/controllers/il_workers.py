"""The Pods an IncrementalLearningJob runs: the inference worker and one Pod per Train / Eval stage.

Names are deterministic so a reconcile that runs twice creates nothing twice:
``<job>-infer`` (the inference worker, started with the job) and ``<job>-train-<round>`` /
``<job>-eval-<round>``. Each container gets the DESIGN §4 env (user values win, as in Sedna);
``WORKER_NAME`` is the Pod name, which is how the controller matches a worker's report to its
Pod. Stage Pods default to ``restartPolicy: Never`` so a failing worker fails its stage instead
of looping. Pure functions: tests assert on their output.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from gm.cluster.interface import INCREMENTAL_LEARNING_JOB, POD, Obj
from gm.controllers.workloads import env_field, env_value, merge_env, owner_reference, with_hash, worker_labels
from gm.settings import ControllerSettings
from sedna.controlplane.il_protocol import hot_update_config_path

KIND = INCREMENTAL_LEARNING_JOB
INFER_REST_PORT = 5100
INFER_GRPC_PORT = 5101
ROUND_LABEL = "sedna.io/deploy-round"


def pod_name(job: Obj, worker_type: str, round_: int | None = None) -> str:
    base = f"{job['metadata']['name']}-{worker_type}"
    return base if round_ is None else f"{base}-{round_}"


def template_node(template: dict[str, Any]) -> str:
    pod_spec = template.get("spec") or {}
    return pod_spec.get("nodeName") or (pod_spec.get("nodeSelector") or {}).get("kubernetes.io/hostname") or ""


def _common_env(job: Obj, name: str, node: str, settings: ControllerSettings) -> list[dict[str, Any]]:
    meta = job["metadata"]
    env = [env_value("NAMESPACE", meta["namespace"]), env_value("JOB_NAME", meta["name"]),
           env_value("WORKER_NAME", name), env_value("LC_SERVER", settings.lc_server(node))]
    token = settings.lc_tokens.get(node, "")
    if token:
        env.append(env_value("LC_TOKEN", token))
    return env


def build_pod(job: Obj, side: str, worker_type: str, name: str, env: list[dict[str, Any]], node: str,
              restart_policy: str, annotations: dict[str, str] | None = None) -> Obj:
    """A Pod from ``spec.<side>.template`` with the worker labels, owner reference and ``env``."""
    template = copy.deepcopy(((job["spec"].get(side) or {}).get("template")) or {})
    labels = worker_labels(KIND, job, worker_type)
    tmeta = template.get("metadata") or {}
    pod_spec = template.get("spec") or {}
    if node and not pod_spec.get("nodeName"):
        pod_spec["nodeName"] = node
    pod_spec.setdefault("restartPolicy", restart_policy)
    merge_env(pod_spec.setdefault("containers", []), env)
    return with_hash({
        "apiVersion": POD.api_version, "kind": POD.kind,
        "metadata": {"name": name, "namespace": job["metadata"]["namespace"],
                     "labels": {**(tmeta.get("labels") or {}), **labels},
                     "annotations": {**(tmeta.get("annotations") or {}), **(annotations or {})},
                     "ownerReferences": [owner_reference(KIND, job)]},
        "spec": pod_spec,
    })


def infer_pod(job: Obj, model_url: str, default_node: str, settings: ControllerSettings,
              deploy_round: int) -> Obj:
    """The inference worker: serves ``deploySpec.model``; hot update env when enabled."""
    spec = job["spec"]
    deploy = spec.get("deploySpec") or {}
    model = deploy.get("model") or {}
    name = pod_name(job, "infer")
    node = template_node(deploy.get("template") or {}) or default_node
    hem = deploy.get("hardExampleMining") or {}
    params = [{"key": str(p.get("key", "")), "value": str(p.get("value", ""))} for p in hem.get("parameters") or []]
    env = [*_common_env(job, name, node, settings), env_value("MODEL_URL", model_url),
           env_value("HEM_NAME", hem.get("name", "")), env_value("HEM_PARAMETERS", json.dumps(params)),
           env_field("EDGE_BIND_IP", "status.podIP"), env_value("EDGE_BIND_PORT", INFER_REST_PORT),
           env_value("EDGE_GRPC_PORT", INFER_GRPC_PORT)]
    hot = bool(model.get("hotUpdateEnabled"))
    if hot:
        env += [env_value("MODEL_HOT_UPDATE", "true"),
                env_value("MODEL_POLL_PERIOD_SECONDS", int(model.get("pollPeriodSeconds") or 60)),
                env_value("MODEL_HOT_UPDATE_CONFIG", hot_update_config_path(spec["outputDir"]))]
    pod = build_pod(job, "deploySpec", "inference", name, env, node, "Always")
    if not hot:  # a new deploy round changes the labels, hence the hash: the Pod is recreated
        pod["metadata"]["labels"][ROUND_LABEL] = str(deploy_round)
        pod = with_hash(pod)
    return pod


def stage_pod(job: Obj, stage: str, round_: int, data: dict[str, Any], dataset_url: str,
              settings: ControllerSettings) -> Obj:
    """The Train or Eval Pod of ``round_``; ``data`` is the LC's Ready input."""
    side, worker_type = ("trainSpec", "train") if stage == "Train" else ("evalSpec", "eval")
    name = pod_name(job, worker_type, round_)
    node = template_node((job["spec"].get(side) or {}).get("template") or {}) or settings.default_cloud_node or ""
    env = _common_env(job, name, node, settings)
    if stage == "Train":
        env += [env_value("BASE_MODEL_URL", data.get("model", "")), env_value("MODEL_URL", data.get("outputDir", "")),
                env_value("TRAIN_DATASET_URL", data.get("dataURL", ""))]
    else:
        models = [str(m) for m in data.get("models") or []]
        env += [env_value("MODEL_URLS", ";".join(models)), env_value("MODEL_URL", models[0] if models else ""),
                env_value("TEST_DATASET_URL", data.get("dataURL", ""))]
    env.append(env_value("ORIGINAL_DATASET_URL", data.get("dataIndexURL") or dataset_url))
    return build_pod(job, side, worker_type, name, env, node, "Never", {"sedna.io/round": str(round_)})


def pod_phase(pod: Obj) -> tuple[str, str]:
    """``(phase, why)``; a container in CrashLoopBackOff makes the phase Failed."""
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    why = status.get("message") or status.get("reason") or ""
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        waiting = state.get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff":
            return "Failed", waiting.get("message") or "CrashLoopBackOff"
        term = state.get("terminated") or {}
        if term and term.get("exitCode"):
            why = why or f"exit code {term['exitCode']}"
    return phase, why


def pod_ready(pod: Obj) -> bool:
    conds = {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []}
    return conds.get("Ready", "True") == "True"


def log_hint(job: Obj, name: str, pod: Obj | None, settings: ControllerSettings) -> str:
    """Where the Pod's log is: the local runtime's file(s), or the runtime's ``log: <path>``, or the command."""
    detail = str(((pod or {}).get("status") or {}).get("message") or "")
    if "log:" in detail:
        return detail[detail.index("log:"):]
    ns = job["metadata"]["namespace"]
    if settings.pod_log_dir:
        containers = [str(c.get("name") or "") for c in ((pod or {}).get("spec") or {}).get("containers") or []]
        paths = [f"{settings.pod_log_dir.rstrip('/')}/{ns}_{name}_{c}.log" for c in containers if c]
        if paths:
            return "log: " + ", ".join(paths)
    return f"log: sedna logs -n {ns} {name} (kubectl logs on Kubernetes)"
