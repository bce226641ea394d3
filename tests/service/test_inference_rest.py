"""The REST front end over real sockets: OIP v2 JSON and binary tensors, metadata,
Sedna's /predict, metrics, bearer tokens and every kind of bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from sedna.common.errors import InferenceError, InvalidInputError, ModelNotFoundError
from sedna.service.inference import InferenceServer, RestInferenceClient
from tests.service.test_inference_support import TOKEN, LinearModel, OnnxMatMulModel, TwoInputModel, serving

AUTH = {"authorization": f"Bearer {TOKEN}"}
EYE2 = [[1, 0, 0, 0], [0, 1, 0, 0]]


@pytest.fixture(scope="module")
def server() -> Iterator[InferenceServer]:
    with serving([LinearModel(max_batch_size=0), TwoInputModel(), OnnxMatMulModel()], token=TOKEN,
                 max_request_bytes=256 * 1024) as srv:
        yield srv


@pytest.fixture
def http(server: InferenceServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.rest_port}", headers=AUTH, trust_env=False) as client:
        yield client


def infer_json(http: httpx.Client, body: dict, model: str = "linear") -> httpx.Response:
    return http.post(f"/v2/models/{model}/infer", json=body)


def x_tensor(data: list, shape: list[int], datatype: str = "FP32", name: str = "x") -> dict:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


class TestJsonTensors:
    def test_json_request_gets_json_outputs_and_parameters(self, http: httpx.Client) -> None:
        response = infer_json(http, {"id": "r1", "inputs": [x_tensor(EYE2, [2, 4])]})
        assert response.status_code == 200
        body = response.json()
        assert body["model_name"] == "linear" and body["model_version"] == "1" and body["id"] == "r1"
        assert body["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [2, 3], "data": [0, 1, 2, 3, 4, 5]}]
        assert body["parameters"] == {"rows": 2, "hard_example": False}

    def test_flat_data_and_requested_outputs(self, http: httpx.Client) -> None:
        body = {"inputs": [x_tensor([1, 2], [1, 2], "INT32", "a"), x_tensor([3, 4], [1, 2], "INT32", "b")],
                "outputs": [{"name": "prod"}]}
        response = infer_json(http, body, model="pair")
        assert response.status_code == 200
        assert response.json()["outputs"] == [{"name": "prod", "datatype": "INT32", "shape": [1, 2], "data": [3, 8]}]

    def test_client_without_binary_round_trips(self, server: InferenceServer) -> None:
        with RestInferenceClient(f"http://127.0.0.1:{server.rest_port}", token=TOKEN, binary=False) as client:
            result = client.infer("linear", {"x": np.ones((1, 4), np.float32)})
        assert result.outputs["y"].tolist() == [[18, 22, 26]]
        assert result.parameters == {"rows": 1, "hard_example": False}


class TestBinaryTensors:
    def test_binary_request_and_binary_response_by_hand(self, http: httpx.Client) -> None:
        raw = np.array(EYE2, np.float32).tobytes()
        header = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4],
                                         "parameters": {"binary_data_size": len(raw)}}],
                             "outputs": [{"name": "y", "parameters": {"binary_data": True}}]}).encode()
        response = http.post("/v2/models/linear/infer", content=header + raw,
                             headers={"inference-header-content-length": str(len(header)),
                                      "content-type": "application/octet-stream"})
        assert response.status_code == 200
        length = int(response.headers["inference-header-content-length"])
        head = json.loads(response.content[:length])
        assert head["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [2, 3],
                                    "parameters": {"binary_data_size": 24}}]
        y = np.frombuffer(response.content[length:], np.float32)
        assert y.tolist() == [0, 1, 2, 3, 4, 5]

    def test_client_binary_round_trip_through_onnx_runtime(self, server: InferenceServer) -> None:
        x = np.array([[1, 1, 1, 1], [0, 0, 0, 2]], np.float32)
        with RestInferenceClient(f"http://127.0.0.1:{server.rest_port}", token=TOKEN) as client:
            result = client.infer("onnx-matmul", {"x": x})
        assert result.outputs["y"].dtype == np.float32
        assert result.outputs["y"].tolist() == [[18, 22, 26], [18, 20, 22]]


class TestMetadataAndHealth:
    def test_server_metadata_and_health(self, http: httpx.Client) -> None:
        assert http.get("/v2/health/live").json() == {"live": True}
        assert http.get("/v2/health/ready").json() == {"ready": True}
        meta = http.get("/v2").json()
        assert meta["name"] == "sedna-inference" and "binary_tensor_data" in meta["extensions"]

    def test_model_metadata_and_ready(self, http: httpx.Client) -> None:
        assert http.get("/v2/models/pair").json() == {
            "name": "pair", "versions": ["2"], "platform": "numpy",
            "inputs": [{"name": "a", "datatype": "INT32", "shape": [-1, 2]},
                       {"name": "b", "datatype": "INT32", "shape": [-1, 2]}],
            "outputs": [{"name": "sum", "datatype": "INT32", "shape": [-1, 2]},
                        {"name": "prod", "datatype": "INT32", "shape": [-1, 2]}],
        }
        assert http.get("/v2/models/pair/versions/2").json()["versions"] == ["2"]
        assert http.get("/v2/models/pair/versions/9").status_code == 404
        assert http.get("/v2/models/linear/ready").json() == {"name": "linear", "ready": True}
        assert http.get("/v2/models/nope/ready").status_code == 404

    def test_client_probes(self, server: InferenceServer) -> None:
        with RestInferenceClient(f"http://127.0.0.1:{server.rest_port}", token=TOKEN) as client:
            assert client.server_live() and client.server_ready()
            assert client.model_ready("linear") is True
            assert client.model_ready("nope") is False
            assert client.model_metadata("linear")["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]


class TestSednaCompatibility:
    def test_predict_feeds_the_first_model(self, http: httpx.Client) -> None:
        response = http.post("/bigmodel/predict", json={"data": EYE2, "callback": None})
        assert response.status_code == 200
        assert response.json() == {"result": [[0, 1, 2], [3, 4, 5]]}

    def test_predict_adds_and_removes_the_batch_dimension(self, http: httpx.Client) -> None:
        assert http.post("/bigmodel/predict", json={"data": [1, 1, 1, 1]}).json() == {"result": [18, 22, 26]}

    def test_info_lists_the_routes(self, http: httpx.Client) -> None:
        assert http.get("/bigmodel").json() == {"infos": [{"path": "/bigmodel", "name": "model_info"},
                                                          {"path": "/bigmodel/predict", "name": "predict"}]}

    def test_bad_data_is_400(self, http: httpx.Client) -> None:
        response = http.post("/bigmodel/predict", json={"data": [[1, 2, 3]]})
        assert response.status_code == 400
        assert response.json() == {"error": "data: shape [1,3] does not match model input 'x' [-1,4]"}

    def test_named_service_picks_its_model_and_rejects_other_names(self) -> None:
        with serving([LinearModel(), TwoInputModel(), OnnxMatMulModel()], sedna_service_name="onnx-matmul",
                     grpc_port=None) as srv, httpx.Client(base_url=f"http://127.0.0.1:{srv.rest_port}") as http:
            assert http.post("/onnx-matmul/predict", json={"data": [[0, 0, 1, 0]]}).json() == {"result": [[6, 7, 8]]}
            assert http.post("/other/predict", json={"data": [[0, 0, 1, 0]]}).status_code == 404
            assert srv.grpc_port is None


class TestMetrics:
    def test_metrics_count_requests_failures_and_batches(self, http: httpx.Client) -> None:
        infer_json(http, {"inputs": [x_tensor(EYE2, [2, 4])]})
        infer_json(http, {"inputs": [x_tensor([1, 2], [1, 2])]})
        text = http.get("/metrics").text
        assert 'sedna_inference_requests_total{model="linear",protocol="rest"}' in text
        assert 'sedna_inference_failures_total{model="linear",protocol="rest",reason="invalid_input"}' in text
        assert 'sedna_inference_batch_size_bucket{le="2.0",model="linear"}' in text
        assert "sedna_inference_compute_seconds_count" in text and "sedna_inference_queue_seconds_count" in text


class TestBearerToken:
    def test_health_is_open_but_everything_else_needs_the_token(self, server: InferenceServer) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.rest_port}", trust_env=False) as anonymous:
            assert anonymous.get("/v2/health/live").status_code == 200
            assert anonymous.get("/v2/health/ready").status_code == 200
            for method, path in (("GET", "/v2"), ("GET", "/metrics"), ("GET", "/v2/models/linear"),
                                 ("POST", "/v2/models/linear/infer"), ("POST", "/svc/predict")):
                response = anonymous.request(method, path, headers={"authorization": "Bearer wrong"})
                assert response.status_code == 401, path
                assert "bearer token" in response.json()["error"]
            assert anonymous.get("/v2").status_code == 401

    def test_client_with_wrong_token_fails_clearly(self, server: InferenceServer) -> None:
        with RestInferenceClient(f"http://127.0.0.1:{server.rest_port}", token="wrong") as client, \
                pytest.raises(InferenceError, match=r"HTTP 401.*check the client's token"):
            client.infer("linear", {"x": np.ones((1, 4), np.float32)})


BAD_REQUESTS = [
    pytest.param({"inputs": [x_tensor(EYE2, [2, 4], name="z")]}, 400,
                 "inputs[0] 'z': model 'linear' has no input named 'z' (inputs: 'x')", id="unknown-input"),
    pytest.param({"inputs": []}, 400, "inputs: must be a non-empty list of tensors", id="no-inputs"),
    pytest.param({"inputs": [x_tensor([1, 2], [1, 2], "INT32", "a")]}, 400,
                 "inputs: missing input(s) 'b' of model 'pair'", id="missing-input"),
    pytest.param({"inputs": [x_tensor(EYE2, [2, 4], "FP64")]}, 400,
                 "inputs[0] 'x': datatype 'FP64' does not match model input 'FP32'", id="datatype"),
    pytest.param({"inputs": [x_tensor([1, 2, 3, 4, 5, 6], [2, 3])]}, 400,
                 "inputs[0] 'x': shape [2,3] does not match model input [-1,4]", id="shape"),
    pytest.param({"inputs": [x_tensor([1, 2, 3], [1, 4])]}, 400,
                 "inputs[0] 'x': data has 3 values, shape [1,4] needs 4", id="data-count"),
    pytest.param({"inputs": [x_tensor(["a", "b", "c", "d"], [1, 4])]}, 400,
                 "inputs[0].data: holds a string; only numbers", id="data-type"),
    pytest.param({"inputs": [{"name": "x", "datatype": "FP32", "shape": "1x4", "data": [1, 2, 3, 4]}]}, 400,
                 "inputs[0] 'x': shape must be a list of integers, got '1x4'", id="shape-type"),
    pytest.param({"inputs": [x_tensor(EYE2, [2, 4])], "outputs": [{"name": "q"}]}, 400,
                 "outputs[0] 'q': model 'linear' has no output named 'q' (outputs: 'y')", id="unknown-output"),
]


class TestBadInput:
    @pytest.mark.parametrize(("body", "status", "message"), BAD_REQUESTS)
    def test_bad_json_request_is_rejected_and_the_next_one_succeeds(self, http: httpx.Client, body: dict,
                                                                    status: int, message: str) -> None:
        model = "pair" if body["inputs"] and body["inputs"][0]["name"] == "a" else "linear"
        response = infer_json(http, body, model=model)
        assert response.status_code == status
        assert response.json()["error"].startswith(message)
        good = infer_json(http, {"inputs": [x_tensor(EYE2, [2, 4])]})
        assert good.status_code == 200 and good.json()["outputs"][0]["data"] == [0, 1, 2, 3, 4, 5]

    def test_unknown_model_is_404(self, http: httpx.Client, server: InferenceServer) -> None:
        response = infer_json(http, {"inputs": [x_tensor(EYE2, [2, 4])]}, model="nope")
        assert response.status_code == 404
        assert response.json() == {"error": "model 'nope' is not served here (models: 'linear', 'pair', "
                                            "'onnx-matmul')"}
        with RestInferenceClient(f"http://127.0.0.1:{server.rest_port}", token=TOKEN) as client, \
                pytest.raises(ModelNotFoundError, match="'nope' is not served"):
            client.infer("nope", {"x": np.ones((1, 4), np.float32)})

    def test_raw_size_not_matching_the_shape_is_400(self, http: httpx.Client) -> None:
        raw = np.zeros(7, np.float32).tobytes()
        header = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4],
                                         "parameters": {"binary_data_size": len(raw)}}]}).encode()
        response = http.post("/v2/models/linear/infer", content=header + raw,
                             headers={"inference-header-content-length": str(len(header))})
        assert response.status_code == 400
        assert response.json() == {"error": "inputs[0] 'x': binary_data_size 28 does not match shape [2,4] of "
                                            "FP32 (32 bytes)"}

    def test_binary_size_beyond_the_body_is_400(self, http: httpx.Client) -> None:
        header = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4],
                                         "parameters": {"binary_data_size": 16}}]}).encode()
        response = http.post("/v2/models/linear/infer", content=header + b"\0" * 8,
                             headers={"inference-header-content-length": str(len(header))})
        assert response.status_code == 400
        assert "binary_data_size 16 exceeds the 8 binary bytes left" in response.json()["error"]

    def test_invalid_json_is_400(self, http: httpx.Client) -> None:
        response = http.post("/v2/models/linear/infer", content=b"{not json")
        assert response.status_code == 400 and response.json()["error"].startswith("request body is not valid JSON")

    def test_client_maps_400_to_invalid_input(self, server: InferenceServer) -> None:
        with RestInferenceClient(f"http://127.0.0.1:{server.rest_port}", token=TOKEN) as client, \
                pytest.raises(InvalidInputError, match=r"inputs\[0\] 'x': shape \[2,3\] does not match"):
            client.infer("linear", {"x": np.ones((2, 3), np.float32)})

    def test_body_over_the_limit_is_413(self, http: httpx.Client, server: InferenceServer) -> None:
        big = np.zeros((20_000, 4), np.float32)  # 320 KB > 256 KiB
        with RestInferenceClient(f"http://127.0.0.1:{server.rest_port}", token=TOKEN) as client:
            with pytest.raises(InvalidInputError, match="exceeds the limit of 262144"):
                client.infer("linear", {"x": big})
            assert client.infer("linear", {"x": np.ones((1, 4), np.float32)}).outputs["y"].tolist() == [[18, 22, 26]]
