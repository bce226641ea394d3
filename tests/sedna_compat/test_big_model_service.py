"""``BigModelService(estimator=PlainEstimator).start()`` as a Sedna big model: no tensor specs,
Sedna's /predict hands the estimator the JSON data, OIP clients may send any one tensor."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from sedna.common.class_factory import ClassFactory, ClassType
from sedna.common.config import WorkerConfig
from sedna.core.joint_inference import BigModelService
from sedna.core.joint_inference.cloud import CloudModel
from sedna.service.inference import GrpcInferenceClient, RestInferenceClient


class Recorder:
    """A Sedna-style big model: ``load`` reads a bias, ``predict`` records what it was given."""

    seen: list[Any] = []

    def __init__(self, **kwargs: Any) -> None:
        self.bias = 0.0

    def load(self, model_url: str = "") -> None:
        self.bias = float(Path(model_url).read_text())

    def predict(self, data: Any, **kwargs: Any) -> Any:
        Recorder.seen.append(data)
        if isinstance(data, list) and data and isinstance(data[0], str):
            return [f"{text}!" for text in data]
        return (np.asarray(data, dtype=np.float64) + self.bias).tolist()


@ClassFactory.register(ClassType.CALLBACK, alias="sedna_compat_double")
def double(result: Any) -> Any:
    return [2 * x for x in result]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, int]]:
    model = tmp_path / "bias.txt"
    model.write_text("0.5")
    cfg = WorkerConfig.from_env({"SERVICE_NAME": "helmet", "MODEL_URL": str(model), "BIG_MODEL_BIND_PORT": "0",
                                 "BIG_MODEL_GRPC_PORT": "0"})
    Recorder.seen.clear()
    server = BigModelService(estimator=Recorder, config=cfg).start(block=False)
    try:
        yield f"http://127.0.0.1:{server.rest_port}", server.grpc_port
    finally:
        server.stop()


def test_sedna_predict_hands_the_estimator_the_json_data(service: tuple[str, int]) -> None:
    rest, _ = service
    response = httpx.post(f"{rest}/sedna/predict", json={"data": [[1, 2], [3, 4]], "callback": None})

    assert response.status_code == 200 and response.json() == {"result": [[1.5, 2.5], [3.5, 4.5]]}
    assert Recorder.seen == [[[1, 2], [3, 4]]]  # the list itself, as Sedna's server passes it


def test_service_name_and_job_name_paths_both_answer(service: tuple[str, int]) -> None:
    rest, _ = service
    for path in ("helmet", "sedna"):
        assert httpx.post(f"{rest}/{path}/predict", json={"data": [1]}).json() == {"result": [1.5]}
    assert httpx.post(f"{rest}/other/predict", json={"data": [1]}).status_code == 404


def test_a_registered_callback_post_processes_and_an_unknown_one_is_400(service: tuple[str, int]) -> None:
    rest, _ = service
    done = httpx.post(f"{rest}/sedna/predict", json={"data": [1, 2], "callback": "sedna_compat_double"})
    unknown = httpx.post(f"{rest}/sedna/predict", json={"data": [1], "callback": "no-such-callback"})

    assert done.json() == {"result": [3.0, 5.0]}
    assert unknown.status_code == 400 and unknown.json()["error"].startswith("callback: ")
    assert "no-such-callback" in unknown.json()["error"]


def test_oip_metadata_declares_no_tensors_and_any_tensor_is_served(service: tuple[str, int]) -> None:
    rest, grpc_port = service
    assert httpx.get(f"{rest}/v2/models/helmet").json()["inputs"] == []
    grpc = CloudModel(GrpcInferenceClient("127.0.0.1", grpc_port), "helmet")
    oip_rest = CloudModel(RestInferenceClient(rest), "helmet")
    try:
        assert grpc.predict(np.array([[1.0, 2.0]], dtype=np.float32)).tolist() == [[1.5, 2.5]]
        assert oip_rest.predict(np.array(["why", "how"])) == ["why!", "how!"]
    finally:
        grpc.close()
        oip_rest.close()
    assert Recorder.seen[-1] == ["why", "how"]  # BYTES reach a plain estimator as the strings JSON would carry


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    cfg = WorkerConfig.from_env({"MODEL_URL": str(tmp_path / "nope.pb"), "BIG_MODEL_BIND_PORT": "0"})

    with pytest.raises(FileNotFoundError, match=r"MODEL_URL='.*nope.pb' does not exist"):
        BigModelService(estimator=Recorder, config=cfg).start(block=False)


def test_without_big_model_grpc_port_a_taken_default_port_leaves_rest_serving(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = tmp_path / "bias.txt"
    model.write_text("1")
    cfg = WorkerConfig.from_env({"MODEL_URL": str(model), "BIG_MODEL_BIND_PORT": "0"})  # a Sedna controller's env
    with contextlib.ExitStack() as stack:
        holder = socket.socket()
        stack.callback(holder.close)
        with contextlib.suppress(OSError):  # someone else holding it serves this test as well
            holder.bind(("127.0.0.1", cfg.big_model_grpc_port))
            holder.listen()
        server = BigModelService(estimator=Recorder, config=cfg).start(block=False)
        stack.callback(server.stop)
        answer = httpx.post(f"http://127.0.0.1:{server.rest_port}/sedna/predict", json={"data": [1]}).json()

    assert server.grpc_port is None and answer == {"result": [2.0]}
    assert "set BIG_MODEL_GRPC_PORT to serve gRPC" in caplog.text
