"""Bad IncrementalLearningJob specs get a problem naming the field; missing references wait."""

from __future__ import annotations

import copy

import pytest

from gm.controllers.incremental_learning import validation as il_validation
from gm.controllers.incremental_learning import workers as il_workers
from gm.settings import ControllerSettings

CONTAINERS = {"spec": {"containers": [{"name": "w", "image": "x"}]}}
JOB = {
    "metadata": {"name": "il", "namespace": "default", "uid": "u-1"},
    "spec": {"dataset": {"name": "ds", "trainProb": 0.8}, "initialModel": {"name": "initial"},
             "outputDir": "/out", "trainSpec": {"template": CONTAINERS, "trigger": {
                 "timer": {"start": "02:00", "end": "06:00"},
                 "condition": {"operator": ">", "threshold": 500, "metric": "num_of_samples"}}},
             "evalSpec": {"template": CONTAINERS},
             "deploySpec": {"model": {"name": "deploy", "hotUpdateEnabled": True, "pollPeriodSeconds": 5},
                            "trigger": {"condition": {"operator": "gt", "threshold": 0.1,
                                                      "metric": "precision_delta.mean"}},
                            "hardExampleMining": {"name": "CrossEntropy"}, "template": CONTAINERS}},
}
OBJECTS = {"ds": {"spec": {"url": "/data/index.csv", "nodeName": "edge-0"}},
           "initial": {"spec": {"url": "/m/initial.npz"}}, "deploy": {"spec": {"url": "/m/deploy.npz"}}}


def problems(job: dict, objects: dict = OBJECTS) -> list[tuple[str, str, bool]]:
    return [(p.field, p.message, p.waiting) for p in il_validation.validate(job, objects.get, objects.get)]


def edited(path: str, value: object) -> dict:
    job = copy.deepcopy(JOB)
    *parents, last = path.split(".")
    node = job
    for part in parents:
        node = node[part]
    node[last] = value
    return job


def test_a_good_job_has_no_problems() -> None:
    assert problems(JOB) == []


@pytest.mark.parametrize("path,value,field,words", [
    ("spec.trainSpec.trigger.condition.operator", "bigger", "spec.trainSpec.trigger.condition.operator",
     "unknown operator 'bigger'"),
    ("spec.trainSpec.trigger.timer.start", "2 o'clock", "spec.trainSpec.trigger.timer.start", "HH:MM"),
    ("spec.deploySpec.trigger.condition.metric", "precision[delta]", "spec.deploySpec.trigger.condition.metric",
     "not a metric expression"),
    ("spec.dataset.trainProb", 1.5, "spec.dataset.trainProb", "between 0 and 1"),
    ("spec.deploySpec.hardExampleMining", {"name": "CrossEntropi"}, "spec.deploySpec.hardExampleMining.name",
     "did you mean 'CrossEntropy'"),
    ("spec.evalSpec.template", {}, "spec.evalSpec.template.spec.containers", "at least one container"),
    ("spec.outputDir", "", "spec.outputDir", "required"),
])
def test_bad_values_fail_naming_the_field(path: str, value: object, field: str, words: str) -> None:
    [(got_field, message, waiting)] = problems(edited(path, value))
    assert got_field == field and words in message and waiting is False


@pytest.mark.parametrize("missing,field", [("ds", "spec.dataset.name"), ("initial", "spec.initialModel.name"),
                                           ("deploy", "spec.deploySpec.model.name")])
def test_a_missing_dataset_or_model_waits_naming_the_field(missing: str, field: str) -> None:
    objects = {k: v for k, v in OBJECTS.items() if k != missing}
    [(got_field, message, waiting)] = problems(JOB, objects)
    assert got_field == field and f"{missing!r} not found in namespace 'default'" in message and waiting


def env(pod: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0]["env"]}


def test_worker_pods_carry_the_design_env() -> None:
    settings = ControllerSettings(lc_servers={"edge-0": "http://127.0.0.1:9100"}, default_cloud_node="cloud")
    infer = il_workers.infer_pod(JOB, "/m/deploy.npz", "edge-0", settings, 0)
    assert infer["metadata"]["name"] == "il-infer" and infer["spec"]["nodeName"] == "edge-0"
    assert {k: env(infer)[k] for k in ("MODEL_URL", "MODEL_HOT_UPDATE", "MODEL_POLL_PERIOD_SECONDS",
                                       "MODEL_HOT_UPDATE_CONFIG", "HEM_NAME", "LC_SERVER", "JOB_NAME")} == {
        "MODEL_URL": "/m/deploy.npz", "MODEL_HOT_UPDATE": "true", "MODEL_POLL_PERIOD_SECONDS": "5",
        "MODEL_HOT_UPDATE_CONFIG": "/out/deploy/model_config.json", "HEM_NAME": "CrossEntropy",
        "LC_SERVER": "http://127.0.0.1:9100", "JOB_NAME": "il"}
    train = il_workers.stage_pod(JOB, "Train", 3, {"model": "/m/initial.npz", "outputDir": "/out/train/3",
                                                   "dataURL": "/out/data/train/3/data.csv"}, "/data/index.csv",
                                 settings)
    assert train["metadata"]["name"] == "il-train-3" and train["spec"]["restartPolicy"] == "Never"
    assert {k: env(train)[k] for k in ("BASE_MODEL_URL", "MODEL_URL", "TRAIN_DATASET_URL",
                                       "ORIGINAL_DATASET_URL", "WORKER_NAME")} == {
        "BASE_MODEL_URL": "/m/initial.npz", "MODEL_URL": "/out/train/3",
        "TRAIN_DATASET_URL": "/out/data/train/3/data.csv", "ORIGINAL_DATASET_URL": "/data/index.csv",
        "WORKER_NAME": "il-train-3"}
    evaluation = il_workers.stage_pod(JOB, "Eval", 3, {"models": ["/new.npz", "/m/deploy.npz"], "dataURL": "/e.csv"},
                                      "/data/index.csv", settings)
    assert env(evaluation)["MODEL_URLS"] == "/new.npz;/m/deploy.npz" and env(evaluation)["TEST_DATASET_URL"] == "/e.csv"
