"""The local REST API answers like Kubernetes: status codes, Status bodies, auth, logs, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gm.cluster.interface import MODEL, Obj
from gm.cluster.local.api import create_api, serve_api
from gm.cluster.local.store import LocalStore

TOKEN = "s3cret"
MODELS = "/apis/sedna.io/v1alpha1/namespaces/default/models"


def validator(obj: Obj) -> list[tuple[str, str]]:
    causes = []
    spec = obj.get("spec") or {}
    if obj["kind"] == "Model":
        if not spec.get("url"):
            causes.append(("spec.url", "Required value"))
        if spec.get("format") not in ("onnx", "pb"):
            causes.append(("spec.format", "Unsupported value"))
    return causes


def model(name: str, **spec: str) -> Obj:
    return {"apiVersion": "sedna.io/v1alpha1", "kind": "Model", "metadata": {"name": name},
            "spec": {"url": "/m.onnx", "format": "onnx", **spec}}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[httpx.Client, LocalStore, Path]]:
    store = LocalStore(":memory:")
    logs = tmp_path / "logs"
    logs.mkdir()
    handle = serve_api(create_api(store, TOKEN, validator, log_dir=logs))
    client = httpx.Client(base_url=f"http://127.0.0.1:{handle.port}",
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    try:
        yield client, store, logs
    finally:
        client.close()
        handle.stop()
        store.close()


class TestAuth:
    def test_healthz_is_open(self, env) -> None:
        client, _, _ = env
        assert httpx.get(url(client, "/healthz")).text == "ok"

    def test_missing_or_wrong_token_is_401_status(self, env) -> None:
        client, _, _ = env
        for headers in ({}, {"Authorization": "Bearer nope"}):
            resp = httpx.get(url(client, MODELS), headers=headers)
            assert resp.status_code == 401
            assert resp.json()["reason"] == "Unauthorized"
            assert resp.json()["kind"] == "Status"


class TestCrud:
    def test_create_get_list_replace_delete(self, env) -> None:
        client, store, _ = env
        made = client.post(MODELS, json=model("m1"))
        assert made.status_code == 201
        assert made.json()["metadata"]["namespace"] == "default"
        assert client.get(f"{MODELS}/m1").json()["metadata"]["uid"] == made.json()["metadata"]["uid"]
        listing = client.get(MODELS).json()
        assert listing["kind"] == "ModelList"
        assert [i["metadata"]["name"] for i in listing["items"]] == ["m1"]
        assert listing["metadata"]["resourceVersion"] == "1"
        body = made.json()
        body["spec"]["url"] = "/n.onnx"
        replaced = client.put(f"{MODELS}/m1", json=body)
        assert replaced.status_code == 200
        assert replaced.json()["metadata"]["generation"] == 2
        gone = client.delete(f"{MODELS}/m1")
        assert (gone.status_code, gone.json()["status"]) == (200, "Success")
        assert store.list(MODEL) == []

    def test_all_namespaces_and_label_selector(self, env) -> None:
        client, _, _ = env
        a = model("a")
        a["metadata"]["labels"] = {"app": "x"}
        client.post(MODELS, json=a)
        client.post("/apis/sedna.io/v1alpha1/namespaces/other/models", json=model("b"))
        names = [i["metadata"]["name"] for i in client.get("/apis/sedna.io/v1alpha1/models").json()["items"]]
        assert names == ["a", "b"]
        sel = client.get("/apis/sedna.io/v1alpha1/models", params={"labelSelector": "app=x"}).json()
        assert [i["metadata"]["name"] for i in sel["items"]] == ["a"]

    def test_core_kinds_live_under_api_v1(self, env) -> None:
        client, _, _ = env
        pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "command": ["true"]}]}}
        made = client.post("/api/v1/namespaces/default/pods", json=pod)
        assert made.status_code == 201
        assert made.json()["kind"] == "Pod"
        assert made.json()["status"] == {"phase": "Pending"}
        node = client.post("/api/v1/nodes", json={"metadata": {"name": "edge-0"}})
        assert node.status_code == 201
        assert client.get("/api/v1/nodes/edge-0").json()["metadata"]["name"] == "edge-0"

    def test_patch_status_merges(self, env) -> None:
        client, _, _ = env
        client.post(MODELS, json=model("m"))
        client.patch(f"{MODELS}/m/status", json={"status": {"phase": "A", "x": {"y": 1}}})
        out = client.patch(f"{MODELS}/m/status", json={"status": {"x": {"z": 2}}}).json()
        assert out["status"] == {"phase": "A", "x": {"y": 1, "z": 2}}
        assert out["metadata"]["generation"] == 1


class TestErrors:
    def test_not_found_is_404_status(self, env) -> None:
        client, _, _ = env
        resp = client.get(f"{MODELS}/ghost")
        assert resp.status_code == 404
        assert (resp.json()["reason"], resp.json()["code"]) == ("NotFound", 404)
        assert client.get("/apis/sedna.io/v1alpha1/namespaces/default/widgets").status_code == 404

    def test_duplicate_is_409_already_exists(self, env) -> None:
        client, _, _ = env
        client.post(MODELS, json=model("m"))
        resp = client.post(MODELS, json=model("m"))
        assert (resp.status_code, resp.json()["reason"]) == (409, "AlreadyExists")

    def test_stale_update_is_409_conflict(self, env) -> None:
        client, _, _ = env
        made = client.post(MODELS, json=model("m")).json()
        client.put(f"{MODELS}/m", json={**made, "spec": {"url": "/a", "format": "onnx"}})
        resp = client.put(f"{MODELS}/m", json={**made, "spec": {"url": "/b", "format": "onnx"}})
        assert (resp.status_code, resp.json()["reason"]) == (409, "Conflict")

    def test_validator_causes_are_listed_and_nothing_is_stored(self, env) -> None:
        client, store, _ = env
        resp = client.post(MODELS, json=model("bad", url="", format="tf"))
        assert resp.status_code == 422
        body = resp.json()
        assert (body["kind"], body["status"], body["reason"]) == ("Status", "Failure", "Invalid")
        assert [(c["field"], c["message"]) for c in body["details"]["causes"]] == [
            ("spec.url", "Required value"), ("spec.format", "Unsupported value")]
        assert client.get(MODELS).json()["items"] == []
        assert store.list(MODEL) == []

    def test_invalid_update_keeps_the_stored_object(self, env) -> None:
        client, _, _ = env
        made = client.post(MODELS, json=model("m")).json()
        resp = client.put(f"{MODELS}/m", json={**made, "spec": {"url": "", "format": "onnx"}})
        assert resp.status_code == 422
        assert client.get(f"{MODELS}/m").json()["spec"]["url"] == "/m.onnx"

    def test_store_name_check_is_422_naming_the_field(self, env) -> None:
        client, _, _ = env
        resp = client.post(MODELS, json=model("Bad_Name"))
        assert resp.status_code == 422
        assert resp.json()["details"]["causes"][0]["field"] == "metadata.name"

    def test_malformed_body_is_400(self, env) -> None:
        client, _, _ = env
        resp = client.post(MODELS, content=b"{not json")
        assert (resp.status_code, resp.json()["reason"]) == (400, "BadRequest")


class TestEventsLogsMetrics:
    def test_events_filtered_by_involved_uid(self, env) -> None:
        client, store, _ = env
        a = client.post(MODELS, json=model("a")).json()
        b = client.post(MODELS, json=model("b")).json()
        store.emit_event(a, "Ready", "a is ready")
        store.emit_event(b, "Ready", "b is ready")
        resp = client.get("/api/v1/namespaces/default/events", params={"involvedUid": a["metadata"]["uid"]})
        assert [e["message"] for e in resp.json()["items"]] == ["a is ready"]

    def test_pod_log_with_tail_lines(self, env) -> None:
        client, _, logs = env
        pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "command": ["true"]}]}}
        client.post("/api/v1/namespaces/default/pods", json=pod)
        (logs / "default_p_c.log").write_text("one\ntwo\nthree\n")
        assert client.get("/api/v1/namespaces/default/pods/p/log").text == "one\ntwo\nthree\n"
        assert client.get("/api/v1/namespaces/default/pods/p/log", params={"tailLines": 2}).text == "two\nthree\n"
        assert client.get("/api/v1/namespaces/default/pods/p/log", params={"container": "x"}).status_code == 400

    def test_metrics_count_requests(self, env) -> None:
        client, _, _ = env
        client.get(f"{MODELS}/ghost")
        text = client.get("/metrics").text
        assert 'sedna_api_requests_total{code="404",method="GET"} 1.0' in text


def url(client: httpx.Client, path: str) -> str:
    return str(client.base_url).rstrip("/") + path
