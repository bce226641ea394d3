"""BYTES (text) tensors: the length-prefixed wire layout, both REST encodings, both gRPC forms,
the clients against a real server, Sedna's /predict with strings, and models that declare no tensors."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Mapping

import httpx
import numpy as np
import pytest

from sedna.backend import bytes_tensors
from sedna.backend.tensors import Prediction, TensorSpec
from sedna.common.errors import InvalidInputError
from sedna.proto import grpc_predict_v2_pb2 as pb
from sedna.service.inference import GrpcInferenceClient, InferenceServer, RestInferenceClient, _grpc_codec, _rest_codec
from tests.service.test_inference_support import serving

TEXTS = ["héllo wörld", "", "a\x00b"]


def text_array(*texts: str) -> np.ndarray:
    out = np.empty(len(texts), dtype=object)
    out[:] = [t.encode() for t in texts]
    return out


class Shout:
    """Declares a BYTES input and output: upper-cases every string, counts them in a parameter."""

    name, version, platform, max_batch_size = "shout", "1", "python", 0
    inputs = (TensorSpec("text", "BYTES", (-1,)),)
    outputs = (TensorSpec("loud", "BYTES", (-1,)),)

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        loud = np.array([t.upper() for t in inputs["text"]], dtype=object)
        return Prediction({"loud": loud}, {"count": len(loud)})


class AnyEcho:
    """Declares no tensors (a dynamic signature): answers with its one input, whatever it is."""

    name, version, platform, max_batch_size = "any", "1", "python", 0
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        (value,) = inputs.values()
        return Prediction({"echo": value})


class TestWireLayout:
    def test_each_element_is_a_little_endian_length_then_its_bytes(self) -> None:
        raw = bytes_tensors.serialize(text_array("ab", "", "é"))

        assert raw == b"\x02\x00\x00\x00ab" + b"\x00\x00\x00\x00" + b"\x02\x00\x00\x00\xc3\xa9"

    def test_deserialize_restores_shape_and_bytes(self) -> None:
        raw = bytes_tensors.serialize(text_array("a", "bc", "d", "ef"))

        array = bytes_tensors.deserialize(raw, (2, 2), "t")

        assert array.dtype == object and array.tolist() == [[b"a", b"bc"], [b"d", b"ef"]]

    @pytest.mark.parametrize(("raw", "shape", "message"), [
        (b"\x02\x00", (1,), "t: BYTES data ends inside a 4-byte length prefix at byte 0"),
        (b"\x05\x00\x00\x00abc", (1,), "t: BYTES element 0 claims 5 bytes, 3 are left"),
        (b"\x01\x00\x00\x00a\x01\x00\x00\x00b", (1,), "t: BYTES data holds more than the 1 elements of its shape"),
        (b"\x01\x00\x00\x00a", (2,), "t: BYTES data holds 1 elements, its shape [2] needs 2"),
    ])
    def test_malformed_data_is_refused_by_name(self, raw: bytes, shape: tuple[int, ...], message: str) -> None:
        with pytest.raises(InvalidInputError) as caught:
            bytes_tensors.deserialize(raw, shape, "t")
        assert str(caught.value) == message

    def test_a_huge_declared_shape_costs_nothing_before_the_count_fails(self) -> None:
        with pytest.raises(InvalidInputError, match="needs 1000000000000"):
            bytes_tensors.deserialize(b"\x00\x00\x00\x00", (10**6, 10**6), "t")

    def test_plain_estimators_see_text_and_undecodable_bytes_stay_bytes(self) -> None:
        array = np.empty((1, 2), dtype=object)
        array[0] = [b"caf\xc3\xa9", b"\xff"]

        assert bytes_tensors.to_text(array) == [["café", b"\xff"]]


class TestCodecs:
    @pytest.mark.parametrize("binary", [False, True])
    def test_rest_round_trip(self, binary: bool) -> None:
        model = Shout()
        body, headers = _rest_codec.encode_request({"text": np.array(TEXTS)}, binary=binary)
        request = _rest_codec.parse_request(model, body, headers.get(_rest_codec.HEADER_LENGTH))
        assert request.inputs["text"].tolist() == [t.encode() for t in TEXTS]

        reply, reply_headers = _rest_codec.encode_response(model, model.predict(request.inputs), request)
        result = _rest_codec.decode_response(reply, reply_headers.get(_rest_codec.HEADER_LENGTH))

        assert result.outputs["loud"].tolist() == [t.encode().upper() for t in TEXTS]
        assert result.parameters == {"count": 3}

    def test_rest_binary_body_carries_the_length_prefixed_layout(self) -> None:
        body, headers = _rest_codec.encode_request({"text": np.array(["hi", "there"])}, binary=True)
        head_length = int(headers[_rest_codec.HEADER_LENGTH])
        header = json.loads(body[:head_length])

        assert header["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [2],
                                     "parameters": {"binary_data_size": 15}}]
        assert body[head_length:] == struct.pack("<I", 2) + b"hi" + struct.pack("<I", 5) + b"there"

    def test_rest_json_carries_strings(self) -> None:
        body, _ = _rest_codec.encode_request({"text": np.array([["a", "b"]])}, binary=False)

        assert json.loads(body)["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [1, 2],
                                               "data": ["a", "b"]}]

    def test_rest_json_numbers_for_a_bytes_input_are_refused_by_name(self) -> None:
        body = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [7]}]})

        with pytest.raises(InvalidInputError, match=r"^inputs\[0\] 'text': BYTES data must hold strings, got int 7"):
            _rest_codec.parse_request(Shout(), body.encode(), None)

    def test_grpc_raw_round_trip(self) -> None:
        model = Shout()
        request = pb.ModelInferRequest.FromString(
            _grpc_codec.build_request(pb, "shout", {"text": np.array(TEXTS)}, None).SerializeToString())
        assert request.inputs[0].datatype == "BYTES"
        assert request.raw_input_contents[0] == bytes_tensors.serialize(text_array(*TEXTS))

        inputs, requested = _grpc_codec.parse_request(model, request)
        response = _grpc_codec.build_response(pb, model, model.predict(inputs), request, requested)
        result = _grpc_codec.parse_response(pb.ModelInferResponse.FromString(response.SerializeToString()))

        assert result.outputs["loud"].tolist() == [t.encode().upper() for t in TEXTS]

    def test_grpc_bytes_contents_are_accepted(self) -> None:
        request = pb.ModelInferRequest(model_name="shout")
        tensor = request.inputs.add(name="text", datatype="BYTES", shape=[2])
        tensor.contents.bytes_contents.extend([b"x", b"yz"])

        inputs, _ = _grpc_codec.parse_request(Shout(), request)

        assert inputs["text"].tolist() == [b"x", b"yz"]

    def test_grpc_bytes_contents_of_the_wrong_count_are_refused(self) -> None:
        request = pb.ModelInferRequest(model_name="shout")
        request.inputs.add(name="text", datatype="BYTES", shape=[3]).contents.bytes_contents.extend([b"x"])

        with pytest.raises(InvalidInputError, match=r"contents.bytes_contents: has 1 values, shape \[3\] needs 3"):
            _grpc_codec.parse_request(Shout(), request)


@pytest.fixture(scope="module")
def server() -> Iterator[InferenceServer]:
    with serving([Shout(), AnyEcho()], sedna_service_name="shout") as srv:
        yield srv


class TestServer:
    def test_grpc_client(self, server: InferenceServer) -> None:
        client = GrpcInferenceClient("127.0.0.1", server.grpc_port)
        try:
            result = client.infer("shout", {"text": np.array(["ünïcode", "ok"])})
        finally:
            client.close()
        assert result.outputs["loud"].tolist() == ["ünïcode".encode().upper(), b"OK"]

    @pytest.mark.parametrize("binary", [False, True])
    def test_rest_client(self, server: InferenceServer, binary: bool) -> None:
        client = RestInferenceClient(f"http://127.0.0.1:{server.rest_port}", binary=binary)
        try:
            result = client.infer("shout", {"text": np.array(["ünïcode", "ok"])})
        finally:
            client.close()
        assert result.outputs["loud"].tolist() == ["ünïcode".encode().upper(), b"OK"]

    def test_plain_json_from_any_http_client(self, server: InferenceServer) -> None:
        body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["quiet"]}]}
        response = httpx.post(f"http://127.0.0.1:{server.rest_port}/v2/models/shout/infer", json=body)

        assert response.status_code == 200
        assert response.json()["outputs"] == [{"name": "loud", "datatype": "BYTES", "shape": [1], "data": ["QUIET"]}]

    def test_sedna_predict_with_strings(self, server: InferenceServer) -> None:
        response = httpx.post(f"http://127.0.0.1:{server.rest_port}/shout/predict", json={"data": ["a", "b"]})

        assert response.status_code == 200 and response.json() == {"result": ["A", "B"]}

    def test_sedna_predict_adds_and_removes_the_batch_dimension_for_one_string(self, server: InferenceServer) -> None:
        response = httpx.post(f"http://127.0.0.1:{server.rest_port}/shout/predict", json={"data": "one"})

        assert response.json() == {"result": "ONE"}

    def test_a_model_with_no_declared_inputs_takes_any_datatype(self, server: InferenceServer) -> None:
        client = GrpcInferenceClient("127.0.0.1", server.grpc_port)
        try:
            text = client.infer("any", {"whatever": np.array([["x", "y"]])})
            numbers = client.infer("any", {"n": np.arange(6, dtype=np.int16).reshape(2, 3)})
        finally:
            client.close()
        assert text.outputs["echo"].tolist() == [[b"x", b"y"]]
        assert numbers.outputs["echo"].dtype == np.int16 and numbers.outputs["echo"].tolist() == [[0, 1, 2], [3, 4, 5]]

    def test_a_model_with_no_declared_inputs_still_refuses_unknown_datatypes(self, server: InferenceServer) -> None:
        body = {"inputs": [{"name": "n", "datatype": "FP128", "shape": [1], "data": [1]}]}
        response = httpx.post(f"http://127.0.0.1:{server.rest_port}/v2/models/any/infer", json=body)

        assert response.status_code == 400
        assert response.json()["error"].startswith("inputs[0] 'n': unsupported datatype 'FP128'")
