"""The knowledge-base server over real HTTP on 127.0.0.1, on SQLite and (when installed) PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from sedna.service.kb.client import KBClient
from sedna.service.kb.errors import KBNotFoundError, KBValidationError
from sedna.service.kb.server import KBServer, KBSettings
from tests.lifelong.kb_support import index, postgres, postgres_available, write_model, write_prototypes

TOKEN = "kb-secret"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One temporary PostgreSQL cluster for the module (each test gets its own database in it)."""
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    with postgres(tmp_path_factory.mktemp("pg")) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield ""
        return
    import uuid

    import psycopg

    base = request.getfixturevalue("cluster")
    name = f"kb_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield base.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def server(tmp_path: Path, database: str) -> Iterator[KBServer]:
    kb = KBServer(KBSettings(port=0, path=str(tmp_path / "kb"), token=TOKEN, database_url=database,
                             max_blob_bytes=64 * 1024)).start()
    yield kb
    kb.stop()


@pytest.fixture
def client(server: KBServer) -> Iterator[KBClient]:
    with KBClient(server.url, TOKEN) as c:
        yield c


def upload_pair(client: KBClient, tmp_path: Path, value: float = 0.0) -> tuple[dict, dict]:
    return (client.upload_file(write_model(tmp_path / f"m{value}.npz", value)),
            client.upload_file(write_prototypes(tmp_path / "p.npy")))


def test_a_version_registers_tasks_models_and_relations_and_is_served_once_published(
        client: KBClient, tmp_path: Path) -> None:
    model, protos = upload_pair(client, tmp_path)
    version = client.update(index(model, protos))
    assert version == 1
    with pytest.raises(KBNotFoundError, match="no index version has been published"):
        client.index()
    client.publish(version)
    doc, etag = client.index()
    assert (doc["version"], etag) == (1, '"v1"')
    assert client.index(etag=etag) == (None, '"v1"')
    [group] = client.tasks()
    assert group["entry"] == "site-a" and group["deploy"] is True and group["sampleNum"] == 40
    assert group["model"] == {"sha256": model["sha256"], "metrics": {"accuracy": 0.9}, "version": 1}
    assert group["tasks"] == [{"entry": "site-a", "meta_attr": ["site-a"], "transfer_radio": 1.0}]


def test_update_status_writes_a_new_version_with_the_deploy_flag(client: KBClient, tmp_path: Path) -> None:
    model, protos = upload_pair(client, tmp_path)
    client.update(index(model, protos), publish=True)
    new = client.update_task_status("site-a", 0)
    doc, _ = client.index()
    assert new == 2 and doc["version"] == 2
    assert doc["seen_task"]["task_groups"][0]["deploy"] is False
    assert [v["parent"] for v in client.versions()] == [None, 1]
    with pytest.raises(KBValidationError, match="unknown task group"):
        client.update_task_status(["nope"], 1)


def test_a_blob_whose_content_does_not_match_its_hash_is_refused(server: KBServer, tmp_path: Path) -> None:
    body = write_model(tmp_path / "m.npz").read_bytes()
    wrong = hashlib.sha256(b"something else").hexdigest()
    response = httpx.put(f"{server.url}/knowledgebase/blobs/{wrong}?format=npz", content=body,
                         headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 422 and response.json()["error"].startswith("sha256: content hashes to")
    assert not (tmp_path / "kb" / "blobs" / wrong).exists()


def test_a_pickled_array_is_refused_and_never_unpickled(server: KBServer, tmp_path: Path) -> None:
    np.save(tmp_path / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with KBClient(server.url, TOKEN) as c, pytest.raises(KBValidationError, match="holds Python objects"):
        c.upload_file(tmp_path / "evil.npy")
    with KBClient(server.url, TOKEN) as c, pytest.raises(KBValidationError, match="not a valid ONNX"):
        c.upload_file(write_model(tmp_path / "m.npz"), "onnx")


def test_a_blob_over_the_size_limit_gets_413(server: KBServer, tmp_path: Path) -> None:
    np.save(tmp_path / "big.npy", np.zeros(20000, np.float64))
    with KBClient(server.url, TOKEN) as c, pytest.raises(KBValidationError) as info:
        c.upload_file(tmp_path / "big.npy")
    assert info.value.status == 413


def test_an_index_failing_its_schema_names_the_field(client: KBClient, tmp_path: Path) -> None:
    model, protos = upload_pair(client, tmp_path)
    bad = index(model, protos)
    bad["seen_task"]["task_groups"][0]["model"]["blob"]["sha256"] = "xyz"
    with pytest.raises(KBValidationError) as info:
        client.update(bad)
    assert info.value.field == "seen_task.task_groups[0].model.blob.sha256"
    missing = index({**model, "sha256": "0" * 64}, protos)
    with pytest.raises(KBValidationError, match="has not been uploaded"):
        client.update(missing)
    assert client.versions() == []


def test_requests_need_the_bearer_token_but_health_does_not(server: KBServer) -> None:
    assert httpx.get(f"{server.url}/knowledgebase/versions").status_code == 401
    wrong = httpx.get(f"{server.url}/knowledgebase/versions", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    health = httpx.get(f"{server.url}/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    metrics = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert "sedna_kb_requests_total" in metrics.text


def test_an_oversized_index_body_gets_413(server: KBServer) -> None:
    big = json.dumps({"apiVersion": "x", "pad": "a" * (5 * 1024 * 1024)})
    response = httpx.post(f"{server.url}/knowledgebase/update", content=big,
                          headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"].startswith("body:")


def test_the_knowledge_base_survives_a_restart(tmp_path: Path, database: str) -> None:
    settings = KBSettings(port=0, path=str(tmp_path / "kb"), token=TOKEN, database_url=database)
    first = KBServer(settings).start()
    with KBClient(first.url, TOKEN) as c:
        model, protos = upload_pair(c, tmp_path)
        c.update(index(model, protos), publish=True)
    first.stop()
    second = KBServer(settings).start()
    try:
        with KBClient(second.url, TOKEN) as c:
            doc, _ = c.index()
            assert doc["version"] == 1
            target = c.download_blob(doc["seen_task"]["task_groups"][0]["model"]["blob"], tmp_path / "copy.npz")
            assert target.read_bytes() == (tmp_path / "m0.0.npz").read_bytes()
            model2, _ = upload_pair(c, tmp_path, 1.0)
            assert c.update(index(model2, protos)) == 2
    finally:
        second.stop()


def test_binding_a_public_address_without_a_token_is_refused(tmp_path: Path) -> None:
    from sedna.common.errors import ConfigError

    with pytest.raises(ConfigError, match="KB_TOKEN is empty"):
        KBServer(KBSettings(host="0.0.0.0", port=0, path=str(tmp_path)))


def test_settings_read_sednas_names() -> None:
    settings = KBSettings.from_env({"KnowledgeBaseServer": "http://127.0.0.1:9555", "KnowledgeBasePath": "/x",
                                    "KB_URL": "sqlite:///y.db"})
    assert (settings.host, settings.port, settings.path, settings.database_url) == ("127.0.0.1", 9555, "/x",
                                                                                     "sqlite:///y.db")


def test_a_valid_onnx_model_is_accepted_and_downloads_verified(client: KBClient, tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "m.onnx")
    ref = client.upload_file(tmp_path / "m.onnx")
    assert ref["format"] == "onnx" and ref["sha256"] == hashlib.sha256((tmp_path / "m.onnx").read_bytes()).hexdigest()
    copy = client.download_blob(ref, tmp_path / "copy.onnx")
    assert copy.read_bytes() == (tmp_path / "m.onnx").read_bytes()
    with pytest.raises(KBValidationError, match="expected"):  # the index says otherwise: refused, not written
        client.download_blob({**ref, "size": ref["size"] + 1}, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(KBNotFoundError):
        client.download_blob({**ref, "sha256": "0" * 64}, tmp_path / "x.onnx")


@pytest.mark.parametrize(("body", "field"), [
    ({"tasks": "site-a", "status": 7}, "status"),
    ({"tasks": [1, 2], "status": 0}, "tasks"),
    ({"tasks": "site-a", "status": 0, "version": "two"}, "version"),
    ([1, 2], "body"),
])
def test_bad_update_status_bodies_get_400_naming_the_field(tmp_path: Path, body: object, field: str) -> None:
    server = KBServer(KBSettings(port=0, path=str(tmp_path / "kb"), token=TOKEN)).start()
    try:
        response = httpx.post(f"{server.url}/knowledgebase/update/status", json=body,
                              headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        server.stop()
    assert response.status_code == 400 and response.json()["error"].startswith(f"{field}:")
