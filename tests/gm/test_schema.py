"""gm.schema: Sedna's own sample resources validate cleanly; each kind of mistake names its field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from gm import schema
from sedna.common.manifests import load_all

# Shapes of KubeEdge Sedna's samples (build/crd-samples/sedna, examples/*): they must apply unchanged.
JOINT_INFERENCE = yaml.safe_load("""
apiVersion: sedna.io/v1alpha1
kind: JointInferenceService
metadata:
  name: helmet-detection-inference-example
  namespace: default
spec:
  edgeWorker:
    model:
      name: "helmet-detection-inference-little-model"
    hardExampleMining:
      name: "IBT"
      parameters:
        - key: "threshold_img"
          value: "0.9"
        - key: "threshold_box"
          value: "0.9"
    template:
      spec:
        nodeName: "edge-node"
        containers:
        - image: kubeedge/sedna-example-joint-inference-helmet-detection-little:v0.3.0
          imagePullPolicy: IfNotPresent
          name: little-model
          env:
          - name: input_shape
            value: "416,736"
          - name: "video_url"
            value: "rtsp://localhost/video"
          resources:
            requests: {memory: 64Mi, cpu: 100m}
            limits: {memory: 2Gi}
          volumeMounts:
            - name: outputdir
              mountPath: /data/
        volumes:
          - name: outputdir
            hostPath: {path: /joint_inference/output, type: Directory}
  cloudWorker:
    model:
      name: "helmet-detection-inference-big-model"
    template:
      spec:
        nodeName: "cloud-node"
        containers:
          - image: kubeedge/sedna-example-joint-inference-helmet-detection-big:v0.3.0
            name: big-model
            imagePullPolicy: IfNotPresent
            env:
              - name: "input_shape"
                value: "544,544"
            resources:
              limits: {memory: 2Gi}
""")

# Sedna's helmet_detection.yaml as it is, bare timer times included: the manifest loader reads them
# as kubectl does (strings), where PyYAML's YAML 1.1 would read 20:00 as the integer 1200.
INCREMENTAL = load_all("""
apiVersion: sedna.io/v1alpha1
kind: IncrementalLearningJob
metadata:
  name: helmet-detection-demo
spec:
  initialModel:
    name: "initial-model"
  dataset:
    name: "incremental-dataset"
    trainProb: 0.8
  trainSpec:
    template:
      spec:
        nodeName: edge0
        containers:
          - image: kubeedge/sedna-example-incremental-learning-helmet-detection:v0.4.0
            name: train-worker
            imagePullPolicy: IfNotPresent
            args: ["train.py"]
            env:
              - {name: "batch_size", value: "32"}
              - {name: "epochs", value: "1"}
    trigger:
      checkPeriodSeconds: 60
      timer:
        start: 02:00
        end: 20:00
      condition:
        operator: ">"
        threshold: 500
        metric: num_of_samples
  evalSpec:
    template:
      spec:
        nodeName: edge0
        containers:
          - image: kubeedge/sedna-example-incremental-learning-helmet-detection:v0.4.0
            name: eval-worker
            args: ["eval.py"]
  deploySpec:
    model:
      name: "deploy-model"
      hotUpdateEnabled: true
      pollPeriodSeconds: 60
    trigger:
      condition:
        operator: ">"
        threshold: 0.1
        metric: precision_delta
    hardExampleMining:
      name: "IBT"
      parameters:
        - {key: "threshold_img", value: "0.9"}
        - {key: "threshold_box", value: "0.9"}
    template:
      spec:
        nodeName: edge0
        containers:
          - image: kubeedge/sedna-example-incremental-learning-helmet-detection:v0.4.0
            name: infer-worker
            args: ["inference.py"]
        volumes:
          - name: localvideo
            hostPath: {path: /incremental_learning/video/, type: DirectoryorCreate}
  outputDir: "/output"
""")[0]

FEDERATED = yaml.safe_load("""
apiVersion: sedna.io/v1alpha1
kind: FederatedLearningJob
metadata:
  name: surface-defect-detection
spec:
  aggregationWorker:
    model:
      name: "surface-defect-detection-model"
    template:
      spec:
        nodeName: "cloud"
        containers:
          - image: kubeedge/sedna-example-federated-learning-surface-defect-detection-aggregation:v0.4.0
            name: agg-worker
            env:
              - {name: "exit_round", value: "3"}
  trainingWorkers:
    - dataset:
        name: "edge1-surface-defect-detection-dataset"
      template:
        spec:
          nodeName: "edge1"
          containers:
            - image: kubeedge/sedna-example-federated-learning-surface-defect-detection-train:v0.4.0
              name: train-worker
              env:
                - {name: "batch_size", value: "32"}
    - dataset:
        name: "edge2-surface-defect-detection-dataset"
      template:
        spec:
          nodeName: "edge2"
          containers:
            - image: kubeedge/sedna-example-federated-learning-surface-defect-detection-train:v0.4.0
              name: train-worker
""")

DATASET = {"apiVersion": "sedna.io/v1alpha1", "kind": "Dataset", "metadata": {"name": "incremental-dataset"},
           "spec": {"url": "/data/helmet_detection/train_data/train_data.txt", "format": "txt", "nodeName": "edge0"}}
MODEL = {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": "initial-model"},
         "spec": {"url": "/models/base_model", "format": "ckpt", "device_soc_versions": ["Ascend310"]}}
LIFELONG = {
    "apiVersion": "sedna.io/v1alpha1", "kind": "LifelongLearningJob", "metadata": {"name": "atcii-classifier-demo"},
    "spec": {
        "dataset": {"name": "lifelong-dataset", "trainProb": 0.8},
        "trainSpec": {"template": {"spec": {"containers": [{"name": "train", "image": "x"}]}},
                      "trigger": {"checkPeriodSeconds": 60, "timer": {"start": "02:00", "end": "24:00"},
                                  "condition": {"operator": ">", "threshold": 500, "metric": "num_of_samples"}}},
        "evalSpec": {"template": {"spec": {"containers": [{"name": "eval", "image": "x"}]}}},
        "deploySpec": {"template": {"spec": {"containers": [{"name": "infer", "image": "x"}]}}},
        "outputDir": "/output",
    },
}


def changed(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``obj`` with the dotted ``path`` set to ``value`` (``...`` deletes it)."""
    out = copy.deepcopy(obj)
    node: Any = out
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return out


@pytest.mark.parametrize("obj", [JOINT_INFERENCE, INCREMENTAL, FEDERATED, DATASET, MODEL, LIFELONG],
                         ids=lambda o: o["kind"])
def test_sedna_samples_validate_with_zero_violations(obj: dict[str, Any]) -> None:
    assert schema.validate(obj) == []


@pytest.mark.parametrize(("obj", "path", "value", "expected_path", "fragment"), [
    (JOINT_INFERENCE, "spec.edgeWorker.hardExampleMining.name", ..., "spec.edgeWorker.hardExampleMining.name",
     "Required value"),
    (JOINT_INFERENCE, "spec.edgeWorker.hardExampleMinning", {"name": "IBT"}, "spec.edgeWorker.hardExampleMinning",
     "did you mean 'hardExampleMining'"),
    (JOINT_INFERENCE, "spec.cloudWorker", ..., "spec.cloudWorker", "Required value"),
    (JOINT_INFERENCE, "spec.edgeWorker.replicas", -1, "spec.edgeWorker.replicas", "greater than or equal to 0"),
    (DATASET, "spec.format", "json", "spec.format", 'supported values: "txt", "csv"'),
    (DATASET, "spec.nodeName", ..., "spec.nodeName", "Required value"),
    (INCREMENTAL, "spec.dataset.trainProb", 1.5, "spec.dataset.trainProb", "less than or equal to 1"),
    (INCREMENTAL, "spec.dataset.trainProb", "0.8", "spec.dataset.trainProb", "must be of type number"),
    (INCREMENTAL, "spec.trainSpec.trigger.condition.operator", "bigger", "spec.trainSpec.trigger.condition.operator",
     "Unsupported value"),
    (INCREMENTAL, "spec.trainSpec.trigger.timer.start", "2am", "spec.trainSpec.trigger.timer.start", "must match"),
    (INCREMENTAL, "spec.trainSpec.trigger.timer.end", "24:30", "spec.trainSpec.trigger.timer.end", "must match"),
    (INCREMENTAL, "spec.deploySpec.model.pollPeriodSeconds", 0, "spec.deploySpec.model.pollPeriodSeconds",
     "greater than or equal to 1"),
    (FEDERATED, "spec.trainingWorkers.1.dataset.name", ..., "spec.trainingWorkers[1].dataset.name", "Required value"),
    (FEDERATED, "spec.trainingWorkers", [], "spec.trainingWorkers", "at least 1 item"),
    (MODEL, "spec.device_soc_versions", "Ascend310", "spec.device_soc_versions", "must be of type array"),
    (LIFELONG, "spec.outputDir", ..., "spec.outputDir", "Required value"),
    (DATASET, "metadata.name", "My_Dataset", "metadata.name", "RFC 1123"),
])
def test_each_mistake_names_its_field(obj: dict[str, Any], path: str, value: Any, expected_path: str,
                                      fragment: str) -> None:
    violations = schema.validate(changed(obj, path, value))

    assert [p for p, _ in violations] == [expected_path]
    assert fragment in violations[0][1]


def test_all_violations_are_returned_not_just_the_first() -> None:
    bad = changed(changed(changed(INCREMENTAL, "spec.dataset.trainProb", -0.1), "spec.outputDir", ...),
                  "spec.deploySpec.model.hotUpdate", True)

    assert [p for p, _ in schema.validate(bad)] == [
        "spec.dataset.trainProb", "spec.deploySpec.model.hotUpdate", "spec.outputDir"]


def test_pod_templates_and_status_stay_open() -> None:
    ji = changed(JOINT_INFERENCE, "spec.cloudWorker.template.spec.anyFutureField", {"x": 1})
    ji["status"] = {"phase": "Running", "inference": {"offloadRatio": 0.25, "count": 8}, "whatever": [1]}

    assert schema.validate(ji) == []


def test_every_symbolic_and_named_operator_is_accepted() -> None:
    for op in ["gt", ">", "ge", ">=", "eq", "=", "==", "ne", "!=", "le", "<=", "lt", "<"]:
        assert schema.validate(changed(INCREMENTAL, "spec.trainSpec.trigger.condition.operator", op)) == [], op


def test_unknown_kind_is_one_violation_on_kind() -> None:
    violations = schema.validate({"apiVersion": "sedna.io/v1alpha1", "kind": "Widget", "metadata": {"name": "w"}})

    assert [p for p, _ in violations] == ["kind"]
    assert "JointInferenceService" in violations[0][1]


def test_generate_name_stands_in_for_a_name() -> None:
    obj = changed(DATASET, "metadata", {"generateName": "ds-"})

    assert schema.validate(obj) == []


def test_a_numeric_timer_is_reported_on_the_timer() -> None:
    # what plain PyYAML makes of a bare 20:00; `sedna apply` uses the manifest loader instead
    assert yaml.safe_load("end: 20:00")["end"] == 1200
    assert INCREMENTAL["spec"]["trainSpec"]["trigger"]["timer"]["end"] == "20:00"
    bad = changed(INCREMENTAL, "spec.trainSpec.trigger.timer.end", 1200)
    assert [p for p, _ in schema.validate(bad)] == ["spec.trainSpec.trigger.timer.end"]
