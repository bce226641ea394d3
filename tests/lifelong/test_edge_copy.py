"""The edge's local copy of the knowledge base: atomic sync, verified blobs, serving while the KB is away."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sedna.service.kb.client import KBClient
from sedna.service.kb.sources import LocalKB, open_source
from tests.lifelong.kb_support import index, write_model, write_prototypes
from tests.support.procs import free_port, running

TOKEN = "t0k"


def test_a_directory_source_syncs_and_a_tampered_blob_is_refused_keeping_the_old_version(tmp_path: Path) -> None:
    cloud = LocalKB(tmp_path / "cloud")
    model = cloud.blobs.put_file(write_model(tmp_path / "m.npz"))
    protos = cloud.blobs.put_file(write_prototypes(tmp_path / "p.npy"))
    cloud.write_index({**index(model, protos), "version": 1})
    edge = LocalKB(tmp_path / "edge")
    assert edge.sync(open_source(str(cloud.index_path))).changed
    assert edge.read()["version"] == 1
    model2 = cloud.blobs.put_file(write_model(tmp_path / "m2.npz", 2.0))
    cloud.write_index({**index(model2, protos), "version": 2})
    cloud.blobs.path(model2["sha256"]).write_bytes(write_model(tmp_path / "m3.npz", 3.0).read_bytes())  # tamper
    result = edge.sync(open_source(str(cloud.index_path)))
    assert not result.changed and "does not match its reference" in result.error
    assert edge.read()["version"] == 1 and not edge.blobs.has(model2["sha256"])


def test_an_index_file_that_is_not_json_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "cloud").mkdir()
    (tmp_path / "cloud" / "index.json").write_text("{not json")
    result = LocalKB(tmp_path / "edge").sync(open_source(str(tmp_path / "cloud" / "index.json")))
    assert not result.changed and "index: " in result.error and "not valid JSON" in result.error


def test_the_edge_serves_its_copy_while_the_kb_server_process_is_down(tmp_path: Path) -> None:
    port = free_port()
    env = {"KB_BIND_PORT": str(port), "KB_PATH": str(tmp_path / "kb"), "KB_TOKEN": TOKEN}
    location = f"http://127.0.0.1:{port}/knowledgebase/index"
    edge = LocalKB(tmp_path / "edge")
    with running("workers.lifelong.kb", env, tmp_path / "kb.log", port=port), \
            KBClient(f"http://127.0.0.1:{port}", TOKEN) as client:
        model = client.upload_file(write_model(tmp_path / "m.npz"))
        protos = client.upload_file(write_prototypes(tmp_path / "p.npy"))
        client.update(index(model, protos), publish=True)
        assert edge.sync(open_source(location, TOKEN)).version == 1
        assert not edge.sync(open_source(location, TOKEN)).changed  # ETag: nothing new
    down = edge.sync(open_source(location, TOKEN))
    assert not down.changed and down.version == 1 and "KBUnavailableError" in down.error
    served = json.loads(edge.index_path.read_text())
    assert served["version"] == 1 and edge.blob_path(served["seen_task"]["task_groups"][0]["model"]["blob"]).exists()


def test_a_kb_url_that_is_not_one_is_refused() -> None:
    from sedna.service.kb.errors import KBValidationError

    with pytest.raises(KBValidationError, match="not a KB URL"):
        open_source("http://127.0.0.1:1/somewhere/else")
