"""Sedna's service names: ``sedna.service.server.InferenceServer``, ``sedna.service.client.ModelClient``,
``LCClient.send`` on the class, ``KBClient``; importing them costs nothing until a name is used."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sedna.common.config import WorkerConfig
from sedna.core.joint_inference import BigModelService
from sedna.service.client import KBClient, LCClient, ModelClient
from sedna.service.server import InferenceServer
from tests.support.procs import free_port


class Doubler:
    def predict(self, data: Any, **kwargs: Any) -> Any:
        return (np.asarray(data) * 2).tolist()


@pytest.fixture
def sedna_server() -> Iterator[tuple[int, InferenceServer]]:
    port = free_port()
    model = BigModelService(estimator=Doubler(), config=WorkerConfig.from_env({}))
    server = InferenceServer(model=model, servername="sedna", host="127.0.0.1", http_port=port)
    server.start(block=False)
    try:
        yield port, server
    finally:
        server.stop()


def test_model_client_against_sednas_inference_server(sedna_server: tuple[int, InferenceServer]) -> None:
    port, _ = sedna_server
    client = ModelClient(service_name="sedna", host="127.0.0.1", port=port)
    try:
        routes = client.check_server_status()
        answer = client.inference(np.array([[1, 2]]), post_process=lambda r: r, extra="kept")
    finally:
        client.close()

    assert {"path": "/sedna/predict", "name": "predict"} in routes["infos"]
    assert answer == {"result": [[2, 4]]}


def test_model_client_returns_none_when_the_server_is_away() -> None:
    client = ModelClient(service_name="sedna", host="127.0.0.1", port=free_port(), timeout=2.0)
    try:
        assert client.inference([1]) is None and client.check_server_status() is None
    finally:
        client.close()


def test_lc_client_send_on_the_class_is_sednas_call_and_returns_none_when_unreachable() -> None:
    assert LCClient.send(f"http://sedna:secret@127.0.0.1:{free_port()}", "w1", {"name": "w1"}) is None


def test_the_inference_server_needs_a_model_with_inference() -> None:
    with pytest.raises(TypeError, match="model: Doubler has no inference"):
        InferenceServer(model=Doubler(), servername="sedna")


def test_kb_client_is_the_knowledge_base_client_with_sednas_constructor(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    if importlib.util.find_spec("sedna.service.kb") is None:
        with pytest.raises(NotImplementedError, match=r"issue 16"):
            KBClient("http://127.0.0.1:9020")
        return
    from sedna.service.kb.client import KBClient as Project
    from sedna.service.kb.server import KBServer, KBSettings

    kb = KBServer(KBSettings(port=0, path=str(tmp_path / "kb"), token="kb-secret",
                             database_url=f"sqlite:///{tmp_path / 'kb.db'}")).start()
    monkeypatch.setenv("KB_TOKEN", "kb-secret")  # Sedna's programs pass only the server
    client = KBClient(f"{kb.url}/knowledgebase")
    try:
        assert isinstance(client, Project)
        assert client.versions() == []  # the token from KB_TOKEN was accepted
        with pytest.raises(NotImplementedError, match="never unpickles"):
            client.update_db("index.pkl")
    finally:
        client.close()
        kb.stop()


@pytest.mark.processes
def test_importing_the_names_loads_no_web_or_rpc_library() -> None:
    code = ("import sys, sedna.service.client, sedna.service.server; "
            "print(sorted(m for m in ('grpc', 'httpx', 'fastapi', 'uvicorn') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)

    assert done.stdout.strip() == "[]"
