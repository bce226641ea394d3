"""Issue 11 item 4: every server bounds what it reads (real GM, inference server and edge worker processes).

GM API: body size, JSON depth, object size (1.5 MiB), DNS-1123 names, well-formed metadata; and
``sedna apply`` refuses YAML alias bombs. Inference REST: JSON tensors read without memory
amplification, deep JSON and zero-row batches refused, errors that name the field without the
model's internals. Edge worker: a batch limit per request and a hard-example store that one
request cannot empty.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.security.conftest import TOKEN, GMProcess, PeakRss
from tests.support.procs import free_port, running

pytestmark = pytest.mark.processes  # a real GM, inference server or edge worker in every test

MODELS = "/apis/sedna.io/v1alpha1/namespaces/default/models"


def model(name: str = "m", **meta: object) -> dict:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": name, **meta},
            "spec": {"url": "/models/m.onnx", "format": "onnx"}}


def alias_bomb(levels: int) -> str:
    """A YAML "billion laughs": ``levels`` lists of nine aliases to the list before (9**levels strings)."""
    text = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]\n"
    return ("apiVersion: sedna.io/v1alpha1\nkind: Model\nmetadata: {name: bomb}\n"
            "spec: {url: /m.onnx, format: onnx}\n" + "extra:\n" + "".join("  " + line + "\n" for line in
                                                                            text.splitlines()))


class TestGMApi:
    def test_a_body_over_3_mib_is_refused_before_it_is_read(self, gm: GMProcess) -> None:
        body = json.dumps({**model("big"), "spec": {"url": "x" * (4 << 20), "format": "onnx"}})
        with PeakRss(gm.proc.pid) as rss:
            response = gm.http.post(MODELS, content=body, headers={"content-type": "application/json"})

        assert response.status_code == 413 and response.json()["reason"] == "RequestEntityTooLarge"
        assert rss.growth_mb < 20 and gm.healthy()

    def test_an_object_over_1_5_mib_is_refused(self, gm: GMProcess) -> None:
        response = gm.http.post(MODELS, json={**model("fat"), "spec": {"url": "x" * (2 << 20), "format": "onnx"}})

        assert response.status_code == 413 and "exceeds the limit of 1572864 bytes" in response.json()["message"]
        assert gm.http.get(f"{MODELS}/fat").status_code == 404

    def test_json_200000_deep_is_a_400_naming_the_depth(self, gm: GMProcess) -> None:
        body = b'{"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "spec": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
        response = gm.http.post(MODELS, content=body, headers={"content-type": "application/json"})

        assert response.status_code == 400 and "nested deeper than 64 levels" in response.json()["message"]
        assert gm.healthy()

    @pytest.mark.parametrize(("where", "meta", "field"), [
        ("namespace", None, "metadata.namespace"),
        ("name", {"name": "Not_A_DNS_Name"}, "metadata.name"),
        ("labels", {"labels": ["a", "b"]}, "metadata.labels"),
        ("annotations", {"annotations": {"a": 1}}, "metadata.annotations"),
        ("owner-not-a-list", {"ownerReferences": "x"}, "metadata.ownerReferences"),
        ("owner-not-an-object", {"ownerReferences": [1]}, "metadata.ownerReferences[0]"),
        ("owner-uid", {"ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": 5}]},
         "metadata.ownerReferences[0].uid"),
    ])
    def test_malformed_metadata_is_a_422_naming_the_field(self, gm: GMProcess, where: str, meta: dict | None,
                                                          field: str) -> None:
        if meta is None:
            path, body = "/apis/sedna.io/v1alpha1/namespaces/Bad_NS/models", model("ok-name")
        else:
            path, body = MODELS, {**model(), "metadata": {"name": "m-" + where, **meta}}

        response = gm.http.post(path, json=body)

        assert response.status_code == 422, response.text
        assert field in [cause["field"] for cause in response.json()["details"]["causes"]]
        assert gm.http.get(MODELS).status_code == 200  # listing still works for everyone

    def test_sedna_apply_refuses_an_alias_bomb_quickly_and_the_gm_is_unharmed(self, gm: GMProcess,
                                                                           tmp_path: Path) -> None:
        manifest = tmp_path / "bomb.yaml"
        manifest.write_text(alias_bomb(7))  # 9**7 = 4.8 million strings once expanded
        env = {**os.environ, "SEDNA_TOKEN": TOKEN}
        with PeakRss(gm.proc.pid) as rss:
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "sedna", "apply", "-f", str(manifest), "--server",
                                   f"http://127.0.0.1:{gm.port}"], env=env, capture_output=True, text=True,
                                  timeout=60)
            took = time.monotonic() - started

        assert len(manifest.read_text()) < 2048
        assert done.returncode == 1 and "refused: expands to more than 100000 values" in done.stderr, done.stderr
        assert took < 20 and rss.growth_mb < 20 and gm.healthy()
        assert gm.http.get(f"{MODELS}/bomb").status_code == 404


@pytest.fixture(scope="module")
def rest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    port = free_port()
    log = tmp_path_factory.mktemp("rest") / "server.log"
    with running("tests.security.rest_entry", {}, log, port=port, args=[str(port)]) as proc:
        yield f"http://127.0.0.1:{port}", proc.pid


class TestInferenceRest:
    def test_a_25_mb_json_tensor_is_read_without_amplification(self, rest_server: tuple[str, int]) -> None:
        url, pid = rest_server
        rows = 1_800_000
        body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [rows, 4],
                                       "data": [[1, 0, 0, 0]] * rows}],
                           "parameters": {"binary_data_output": True}}).encode()
        with PeakRss(pid) as rss:
            response = httpx.post(f"{url}/v2/models/linear/infer", content=body, timeout=120, trust_env=False)

        assert len(body) > 25_000_000 and response.status_code == 200, response.text[:300]
        # the body itself (held twice while it is joined), 8 bytes a number, the FP32 tensor and the output:
        # about 4.5x the body (109-118 MB here); the nested lists of json.loads took 14x (25 MB -> 350 MB), and
        # the FP32 range check's two float64 copies of the tensor 190-200 MB
        assert rss.growth_mb < 160, f"peak RSS grew by {rss.growth_mb:.0f} MB for a {len(body) >> 20} MB body"

    @pytest.mark.parametrize(("body", "message"), [
        (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": '
         + b"[" * 200_000 + b"]" * 200_000 + b"}]}", "inputs[0].data: nested deeper than 64 levels"),
        (json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [0, 4], "data": []}]}).encode(),
         "inputs[0] 'x': shape [0,4] has no rows"),
        (json.dumps({"inputs": [{"name": "a", "datatype": "INT32", "shape": [1, 2], "data": [2**40, 1]},
                                {"name": "b", "datatype": "INT32", "shape": [1, 2], "data": [1, 1]}]}).encode(),
         "inputs[0].data: 1099511627776 is out of the range of INT32"),
        (json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4],
                                 "data": [1e39, 0, 0, 0]}]}).encode(), "inputs[0].data: 1e+39 overflows FP32"),
    ])
    def test_hostile_json_is_a_400_naming_the_field(self, rest_server: tuple[str, int], body: bytes,
                                                    message: str) -> None:
        url, _ = rest_server
        model_name = "pair" if b'"name": "a"' in body else "linear"
        response = httpx.post(f"{url}/v2/models/{model_name}/infer", content=body, timeout=30, trust_env=False)

        assert response.status_code == 400 and response.json()["error"].startswith(message), response.text[:300]
        assert httpx.get(f"{url}/v2/health/ready", trust_env=False).status_code == 200

    def test_a_failing_model_is_a_500_without_its_internals(self, rest_server: tuple[str, int]) -> None:
        url, _ = rest_server
        response = httpx.post(f"{url}/v2/models/linear/infer", timeout=30, trust_env=False,
                              json={"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4],
                                                "data": [-1, 0, 0, 0]}]})

        assert response.status_code == 500 and "poisoned" not in response.text and "RuntimeError" not in response.text
        assert response.json()["error"] == "model 'linear' failed on this request; the server log has the details"


def edge_env(digits_models: dict, tmp_path: Path, rest: int, **extra: str) -> dict[str, str]:
    """An edge worker whose cloud is unreachable and whose mining calls every sample hard."""
    return {"NAMESPACE": "default", "SERVICE_NAME": "bounded", "WORKER_NAME": "edge-0", "LOG_LEVEL": "WARNING",
            "MODEL_URL": str(digits_models["edge"]), "BIG_MODEL_IP": "127.0.0.1",
            "BIG_MODEL_GRPC_PORT": str(free_port()), "BIG_MODEL_TIMEOUT": "0.2", "EDGE_BIND_PORT": str(rest),
            "EDGE_GRPC_PORT": str(free_port()), "INTRA_OP_THREADS": "1", "HEM_NAME": "CrossEntropy",
            "HEM_PARAMETERS": '[{"key": "threshold_cross_entropy", "value": "1000"}]',
            "STATE_DIR": str(tmp_path / "state"), **extra}


def infer(rest: int, rows: int) -> httpx.Response:
    x = np.random.default_rng(rows).random((rows, 64)).astype(np.float32)
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [rows, 64], "data": x.ravel().tolist()}]}
    return httpx.post(f"http://127.0.0.1:{rest}/v2/models/bounded/infer", json=body, timeout=60, trust_env=False)


def stored(state: Path, state_name: str = "pending") -> int:
    return sum(1 for meta in (state / "hard_examples").glob("*.json")
               if json.loads(meta.read_text()).get("state") == state_name)


class TestEdgeWorker:
    def test_a_batch_over_the_limit_is_refused_before_any_row_runs(self, digits_models, tmp_path: Path) -> None:
        rest = free_port()
        with running("workers.joint_inference.edge", edge_env(digits_models, tmp_path, rest, EDGE_MAX_BATCH="8"),
                     tmp_path / "edge.log", port=rest):
            refused = infer(rest, 9)
            served = infer(rest, 8)

        assert refused.status_code == 400 and "batch of 9 rows exceeds this edge worker's limit of 8" in refused.text
        assert served.status_code == 200 and stored(tmp_path / "state") == 8

    def test_one_request_cannot_evict_every_pending_hard_example(self, digits_models, tmp_path: Path) -> None:
        rest = free_port()
        env = edge_env(digits_models, tmp_path, rest, HARD_EXAMPLE_CAPACITY="16", HARD_EXAMPLE_REQUEST_SHARE="0.25")
        with running("workers.joint_inference.edge", env, tmp_path / "edge.log", port=rest):
            first = [infer(rest, 1) for _ in range(8)]
            early = sorted(p.stem for p in (tmp_path / "state" / "hard_examples").glob("*.json"))
            flood = infer(rest, 64)
            left = {p.stem for p in (tmp_path / "state" / "hard_examples").glob("*.json")}

        assert all(r.status_code == 200 for r in first) and flood.status_code == 200
        assert len(early) == 8 and set(early) <= left, "the flood evicted examples other requests had stored"
        assert len(left) == 12  # 8 + the flood's share: 16 * 0.25
