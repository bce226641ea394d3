"""The digits IncrementalLearningJob end to end with its data, models and outputs in S3 (``sedna local up``).

Real processes: a moto S3 server on 127.0.0.1, the GM, the LCs, the storage initializer and the
train, eval and inference workers. The Dataset index, both Models and ``outputDir`` are
``s3://`` URLs with one credential Secret. The LC (which has S3 access through its own
environment) counts and splits the remote index and writes the round's samples to S3; the
workers get the Secret's keys as ``secretKeyRef`` only (the local runtime passes them nothing
else), download their inputs through the storage initializer, and the train worker uploads its
model to ``outputDir``; the deploy copies it over the deploy Model in S3 and the recreated
inference worker serves it.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from examples.incremental_learning.digits.prepare import Layout, feed, prepare
from examples.incremental_learning.digits.run import measure, sedna
from sedna.cli._local_secrets import edge_token
from sedna.common import s3
from tests.support.procs import free_port, wait_for_port
from tests.support.s3 import moto_s3
from tests.support.waiting import eventually
from workers.incremental.model import DigitsSoftmax, load_samples

pytest.importorskip("moto")
pytestmark = [pytest.mark.slow, pytest.mark.processes]


def resources(endpoint: str, port: int) -> str:
    key, secret = (base64.b64encode(v.encode()).decode() for v in ("sedna-test", "sedna-test-secret"))
    return f"""
apiVersion: v1
kind: Secret
metadata:
  name: minio
  annotations: {{s3-endpoint: "{endpoint}", s3-usehttps: "0"}}
data: {{ACCESS_KEY_ID: {key}, SECRET_ACCESS_KEY: {secret}}}
---
apiVersion: sedna.io/v1alpha1
kind: Dataset
metadata: {{name: s3-samples}}
spec: {{url: "s3://data/digits/index.csv", format: csv, nodeName: edge-0, credentialName: minio}}
---
apiVersion: sedna.io/v1alpha1
kind: Model
metadata: {{name: s3-initial}}
spec: {{url: "s3://models/initial.npz", format: npz, credentialName: minio}}
---
apiVersion: sedna.io/v1alpha1
kind: Model
metadata: {{name: s3-deploy}}
spec: {{url: "s3://models/deploy.npz", format: npz, credentialName: minio}}
---
apiVersion: sedna.io/v1alpha1
kind: IncrementalLearningJob
metadata: {{name: s3il}}
spec:
  dataset: {{name: s3-samples, trainProb: 0.8}}
  initialModel: {{name: s3-initial}}
  outputDir: "s3://out/il"
  credentialName: minio
  trainSpec:
    template:
      spec:
        containers:
        - name: train
          image: sedna-py
          command: [python, -m, workers.incremental.train]
          env: [{{name: epochs, value: "20"}}]
    trigger:
      checkPeriodSeconds: 1
      condition: {{operator: ">=", threshold: 40, metric: num_of_samples}}
  evalSpec:
    template:
      spec:
        containers:
        - {{name: eval, image: sedna-py, command: [python, -m, workers.incremental.eval]}}
  deploySpec:
    model: {{name: s3-deploy, hotUpdateEnabled: false}}
    trigger:
      condition: {{operator: ">=", threshold: -1, metric: accuracy_delta}}
    template:
      spec:
        containers:
        - name: infer
          image: sedna-py
          command: [python, -m, workers.incremental.infer]
          env: [{{name: EDGE_BIND_IP, value: 127.0.0.1}}, {{name: EDGE_BIND_PORT, value: "{port}"}},
                {{name: EDGE_GRPC_PORT, value: "{free_port()}"}}]
"""


@pytest.fixture
def s3_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with moto_s3(tmp_path, ("data", "models", "out")) as env:
        yield env


def _client(env: dict[str, str]) -> Any:
    return s3.S3Settings.from_env(env).client()


def _upload(env: dict[str, str], path: Path, url: str) -> None:
    bucket, key = s3.split_url(url)
    _client(env).upload_file(str(path), bucket, key)


def _get(env: dict[str, str], url: str) -> bytes:
    bucket, key = s3.split_url(url)
    return bytes(_client(env).get_object(Bucket=bucket, Key=key)["Body"].read())


def _accuracy(blob: bytes, test: Path) -> float:
    model = DigitsSoftmax()
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        model.set_weights({"W": data["W"], "b": data["b"]})
    return float(model.evaluate(load_samples(test))["accuracy"])


def test_the_digits_job_trains_on_an_s3_dataset_and_deploys_through_s3(tmp_path: Path,
                                                                       s3_env: dict[str, str]) -> None:
    layout: Layout = prepare(tmp_path / "data")
    _upload(s3_env, layout.index, "s3://data/digits/index.csv")
    _upload(s3_env, layout.initial_model, "s3://models/initial.npz")
    _upload(s3_env, layout.deploy_model, "s3://models/deploy.npz")
    state = tmp_path / "state"
    sedna("local", "up", "--nodes", "cloud,edge-0", state_dir=state, env=s3_env)  # the LCs read S3 with it
    try:
        port = free_port()
        manifest = tmp_path / "s3il.yaml"
        manifest.write_text(resources(s3_env["S3_ENDPOINT_URL"], port))
        sedna("apply", "-f", str(manifest), state_dir=state)
        wait_for_port(port, 90)  # the inference worker serves the deploy Model it downloaded from S3
        token = edge_token(state)
        before, _ = measure(port, load_samples(layout.test), "s3il", token)

        feed(layout, 0, 300)
        _upload(s3_env, layout.index, "s3://data/digits/index.csv")
        conditions = _wait_deployed(state, 1, 240)

        [done] = [c for c in conditions if c["stage"] == "Deploy" and c["type"] == "Completed"]
        assert done["reason"] == "InferenceRestarted", done
        trained = _get(s3_env, "s3://out/il/train/1/model.npz")  # uploaded by the train worker
        assert _get(s3_env, "s3://models/deploy.npz") == trained  # copied over the deploy Model by the LC
        rows = _get(s3_env, "s3://out/il/data/train/1/data.csv").decode().splitlines()
        assert len(rows) == 1 + 240  # the header and int(0.8 * 300) samples, written to S3 by the LC
        wait_for_port(port, 90)  # the recreated worker, started after the old one exited
        served, _ = measure(port, load_samples(layout.test), "s3il", token)
        assert served == pytest.approx(_accuracy(trained, layout.test)) and served > before + 0.3
    finally:
        sedna("local", "down", state_dir=state, check=False)


def _wait_deployed(state: Path, round_: int, timeout: float) -> list[dict[str, Any]]:
    ready = json.loads((state / "gm.ready.json").read_text())
    headers = {"Authorization": f"Bearer {(state / 'token').read_text().strip()}"}
    url = f"{ready['api']}/apis/sedna.io/v1alpha1/namespaces/default/incrementallearningjobs/s3il"

    def deployed() -> list[dict[str, Any]] | None:
        conditions = (httpx.get(url, headers=headers, timeout=10).json().get("status") or {}).get("conditions") or []
        done = any(c["stage"] == "Deploy" and c["type"] == "Completed" and json.loads(c["data"]).get("round") == round_
                   for c in conditions)
        return conditions if done else None

    return eventually(deployed, timeout, 0.2, f"round {round_} deployed")
