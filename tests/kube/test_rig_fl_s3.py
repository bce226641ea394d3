"""End to end on the Kubernetes rig: the digits FederatedLearningJob with ``transmitter.s3`` (moto on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.kube import manifests
from tests.kube.rig import Rig
from tests.support.procs import free_port, running
from tests.support.waiting import eventually

pytest.importorskip("moto")
pytestmark = [pytest.mark.processes, pytest.mark.slow,
              pytest.mark.skipif(manifests.kubectl() is None, reason="kubectl (kubernetes-client) is missing")]
AGG_DATA = "s3://sedna/fl/aggregation_data"


def test_the_federated_digits_job_completes_its_rounds_through_s3(tmp_path: Path) -> None:
    import kubernetes.client

    from examples.federated_learning.digits import run_local as fl
    from examples.federated_learning.digits.prepare import prepare
    from gm.cluster.interface import FEDERATED_LEARNING_JOB, POD
    from sedna.common.s3 import S3Settings
    from sedna.service.aggregation.transmit import REF_TENSOR

    rounds = 2
    data = prepare(tmp_path / "data")
    docs = [d for d in yaml.safe_load_all(fl.manifests(data, tmp_path / "model", rounds)) if d]
    port = free_port()
    s3 = {"S3_ENDPOINT_URL": f"127.0.0.1:{port}", "S3_USE_HTTPS": "0", "ACCESS_KEY_ID": "rig",
          "SECRET_ACCESS_KEY": "rig-secret"}
    with running("moto.server", {}, tmp_path / "moto.log", port, ["-H", "127.0.0.1", "-p", str(port)]), \
            Rig(tmp_path / "rig", nodes=("cloud", "edge-0", "edge-1", "edge-2")) as rig:
        client = S3Settings.from_env(s3).client()
        client.create_bucket(Bucket="sedna")
        assert rig.cluster is not None
        cluster = rig.cluster
        kubernetes.client.CoreV1Api(cluster.api_client).create_namespaced_secret("default", {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "minio", "annotations": {"s3-endpoint": s3["S3_ENDPOINT_URL"], "s3-usehttps": "0"}},
            "stringData": {"ACCESS_KEY_ID": s3["ACCESS_KEY_ID"], "SECRET_ACCESS_KEY": s3["SECRET_ACCESS_KEY"]}})
        for doc in docs:
            doc["metadata"]["namespace"] = "default"
            if doc["kind"] == "FederatedLearningJob":
                doc["spec"]["transmitter"] = {"s3": {"aggDataPath": AGG_DATA, "credentialName": "minio"}}
            cluster.create(doc)

        def done() -> dict[str, Any] | None:
            status = cluster.get(FEDERATED_LEARNING_JOB, "default", fl.JOB).get("status") or {}
            return status if status.get("phase") in ("Succeeded", "Failed") else None

        try:
            status = eventually(done, timeout=180, interval=0.5, message="the FL job finished")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{rig.logs()}") from None
        assert status["phase"] == "Succeeded", (status, rig.logs())
        agg_env = {e["name"]: e for e in cluster.get(POD, "default", f"{fl.JOB}-aggregation")["spec"]["containers"][
            0]["env"]}
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="sedna", Prefix="fl/").get("Contents", []))

    assert agg_env["TRANSMITTER"]["value"] == "s3" and agg_env["AGG_DATA_PATH"]["value"] == AGG_DATA
    assert agg_env["SECRET_ACCESS_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "minio", "key": "SECRET_ACCESS_KEY"}}
    prefix = f"fl/aggregation_data/{fl.JOB}"
    for n in range(1, rounds + 1):  # every update and every global model went through the bucket
        assert {f"{prefix}/round-{n}/{fl.JOB}-train-{k}.npz" for k in range(3)} | {
            f"{prefix}/round-{n}/global.npz"} <= set(keys), keys
    final = next((tmp_path / "model").rglob("model.npz"))
    with np.load(final, allow_pickle=False) as model:
        assert REF_TENSOR not in model.files and model.files  # the real model, not its reference
