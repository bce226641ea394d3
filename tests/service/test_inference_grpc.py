"""The gRPC front end over real sockets: raw and typed tensors, metadata, tokens,
bad input (INVALID_ARGUMENT / NOT_FOUND / RESOURCE_EXHAUSTED) and TLS."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from sedna.common.errors import CloudUnavailableError, InferenceError, InvalidInputError, ModelNotFoundError
from sedna.proto import grpc_predict_v2_pb2 as pb
from sedna.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from sedna.service.inference import GrpcInferenceClient, InferenceServer, TLSConfig
from tests.service.test_inference_support import TOKEN, LinearModel, OnnxMatMulModel, TwoInputModel, serving

AUTH = (("authorization", f"Bearer {TOKEN}"),)
EYE2 = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.float32)


@pytest.fixture(scope="module")
def server() -> Iterator[InferenceServer]:
    with serving([LinearModel(max_batch_size=0), TwoInputModel(), OnnxMatMulModel()], token=TOKEN,
                 max_request_bytes=256 * 1024, rest_port=None) as srv:
        yield srv


@pytest.fixture
def client(server: InferenceServer) -> Iterator[GrpcInferenceClient]:
    with GrpcInferenceClient("127.0.0.1", server.grpc_port, token=TOKEN) as c:
        yield c


@pytest.fixture
def stub(server: InferenceServer) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def raw_request(model: str, tensors: list[tuple[str, str, list[int], bytes]]) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model)
    for name, datatype, shape, raw in tensors:
        request.inputs.add(name=name, datatype=datatype, shape=shape)
        request.raw_input_contents.append(raw)
    return request


def status_of(stub: pb_grpc.GRPCInferenceServiceStub, request: pb.ModelInferRequest) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request, metadata=AUTH, timeout=5)
    return caught.value.code(), caught.value.details()


class TestInfer:
    def test_client_round_trip_with_parameters(self, client: GrpcInferenceClient) -> None:
        result = client.infer("linear", {"x": EYE2}, parameters={"tenant": "edge-0"})
        assert result.outputs["y"].tolist() == [[0, 1, 2], [3, 4, 5]]
        assert result.parameters == {"rows": 2, "hard_example": False}

    def test_real_onnx_runtime_session(self, client: GrpcInferenceClient) -> None:
        result = client.infer("onnx-matmul", {"x": np.ones((3, 4), np.float32)})
        assert result.outputs["y"].tolist() == [[18, 22, 26]] * 3

    def test_typed_contents_are_accepted_and_answered_raw(self, stub: pb_grpc.GRPCInferenceServiceStub) -> None:
        request = pb.ModelInferRequest(model_name="pair")
        request.inputs.add(name="a", datatype="INT32", shape=[1, 2]).contents.int_contents.extend([2, 3])
        request.inputs.add(name="b", datatype="INT32", shape=[1, 2]).contents.int_contents.extend([5, 7])
        request.outputs.add(name="sum")
        response = stub.ModelInfer(request, metadata=AUTH, timeout=5)
        assert [(o.name, o.datatype, list(o.shape)) for o in response.outputs] == [("sum", "INT32", [1, 2])]
        assert np.frombuffer(response.raw_output_contents[0], "<i4").tolist() == [7, 10]


class TestMetadata:
    def test_probes_and_metadata(self, client: GrpcInferenceClient) -> None:
        assert client.server_live() and client.server_ready()
        assert client.model_ready("pair") is True
        assert client.model_ready("nope") is False
        assert client.server_metadata()["name"] == "sedna-inference"
        assert client.model_metadata("linear") == {
            "name": "linear", "versions": ["1"], "platform": "numpy",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}],
        }

    def test_unknown_model_metadata_is_not_found(self, client: GrpcInferenceClient) -> None:
        with pytest.raises(ModelNotFoundError, match="model 'nope' is not served here"):
            client.model_metadata("nope")


class TestBearerToken:
    def test_live_and_ready_are_open_the_rest_unauthenticated(self, stub: pb_grpc.GRPCInferenceServiceStub) -> None:
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=5).live is True
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=5).ready is True
        for call, request in ((stub.ModelMetadata, pb.ModelMetadataRequest(name="linear")),
                              (stub.ServerMetadata, pb.ServerMetadataRequest()),
                              (stub.ModelInfer, raw_request("linear", [("x", "FP32", [2, 4], EYE2.tobytes())]))):
            with pytest.raises(grpc.RpcError) as caught:
                call(request, timeout=5, metadata=(("authorization", "Bearer wrong"),))
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED

    def test_client_with_wrong_token_fails_clearly(self, server: InferenceServer) -> None:
        with GrpcInferenceClient("127.0.0.1", server.grpc_port, token="wrong") as client, \
                pytest.raises(InferenceError, match=r"UNAUTHENTICATED.*check the client's token"):
            client.infer("linear", {"x": EYE2})


F32_8 = np.zeros(8, np.float32).tobytes()
BAD_REQUESTS = [
    pytest.param(raw_request("linear", [("z", "FP32", [2, 4], F32_8)]), grpc.StatusCode.INVALID_ARGUMENT,
                 "inputs[0] 'z': model 'linear' has no input named 'z' (inputs: 'x')", id="unknown-input"),
    pytest.param(raw_request("pair", [("a", "INT32", [1, 2], b"\0" * 8)]), grpc.StatusCode.INVALID_ARGUMENT,
                 "inputs: missing input(s) 'b' of model 'pair'", id="missing-input"),
    pytest.param(raw_request("linear", [("x", "FP64", [1, 4], F32_8)]), grpc.StatusCode.INVALID_ARGUMENT,
                 "inputs[0] 'x': datatype 'FP64' does not match model input 'FP32'", id="datatype"),
    pytest.param(raw_request("linear", [("x", "FP32", [2, 3], F32_8)]), grpc.StatusCode.INVALID_ARGUMENT,
                 "inputs[0] 'x': shape [2,3] does not match model input [-1,4]", id="shape"),
    pytest.param(raw_request("linear", [("x", "FP32", [1, 4], F32_8[:12])]), grpc.StatusCode.INVALID_ARGUMENT,
                 "inputs[0] 'x': raw_input_contents[0] has 12 bytes, shape [1,4] of FP32 needs 16", id="raw-size"),
    pytest.param(raw_request("nope", [("x", "FP32", [2, 4], F32_8)]), grpc.StatusCode.NOT_FOUND,
                 "model 'nope' is not served here", id="unknown-model"),
]


class TestBadInput:
    @pytest.mark.parametrize(("request_", "code", "message"), BAD_REQUESTS)
    def test_bad_request_is_rejected_and_the_next_one_succeeds(
        self, stub: pb_grpc.GRPCInferenceServiceStub, client: GrpcInferenceClient,
        request_: pb.ModelInferRequest, code: grpc.StatusCode, message: str,
    ) -> None:
        got_code, detail = status_of(stub, request_)
        assert got_code == code
        assert detail.startswith(message)
        assert client.infer("linear", {"x": EYE2}).outputs["y"].tolist() == [[0, 1, 2], [3, 4, 5]]

    def test_typed_contents_count_mismatch(self, stub: pb_grpc.GRPCInferenceServiceStub) -> None:
        request = pb.ModelInferRequest(model_name="linear")
        request.inputs.add(name="x", datatype="FP32", shape=[1, 4]).contents.fp32_contents.extend([1, 2, 3])
        assert status_of(stub, request) == (grpc.StatusCode.INVALID_ARGUMENT,
                                            "inputs[0] 'x': contents.fp32_contents has 3 values, shape [1,4] needs 4")

    def test_raw_contents_for_some_inputs_only(self, stub: pb_grpc.GRPCInferenceServiceStub) -> None:
        request = raw_request("pair", [("a", "INT32", [1, 2], b"\0" * 8)])
        request.inputs.add(name="b", datatype="INT32", shape=[1, 2])
        assert status_of(stub, request) == (grpc.StatusCode.INVALID_ARGUMENT,
                                            "raw_input_contents: has 1 entries for 2 inputs (give raw data for "
                                            "every input or for none)")

    def test_client_error_types(self, client: GrpcInferenceClient) -> None:
        with pytest.raises(InvalidInputError, match=r"shape \[2,3\] does not match model input \[-1,4\]"):
            client.infer("linear", {"x": np.zeros((2, 3), np.float32)})
        with pytest.raises(ModelNotFoundError):
            client.infer("nope", {"x": EYE2})

    def test_message_over_the_limit_is_resource_exhausted(self, stub: pb_grpc.GRPCInferenceServiceStub,
                                                          client: GrpcInferenceClient) -> None:
        big = np.zeros((20_000, 4), np.float32)  # 320 KB > 256 KiB
        code, _ = status_of(stub, raw_request("linear", [("x", "FP32", [20_000, 4], big.tobytes())]))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(InvalidInputError, match="RESOURCE_EXHAUSTED"):
            client.infer("linear", {"x": big})
        assert client.infer("linear", {"x": EYE2}).outputs["y"].shape == (2, 3)


def _self_signed(tmp: Path) -> tuple[str, str]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


class TestTLS:
    def test_grpc_and_https_with_a_self_signed_certificate(self, tmp_path: Path) -> None:
        from sedna.service.inference import RestInferenceClient

        cert, key = _self_signed(tmp_path)
        with serving([LinearModel()], tls=TLSConfig(cert, key), token=TOKEN) as srv:
            with GrpcInferenceClient("127.0.0.1", srv.grpc_port, token=TOKEN, tls_ca=cert) as client:
                assert client.infer("linear", {"x": EYE2}).outputs["y"].tolist() == [[0, 1, 2], [3, 4, 5]]
            with GrpcInferenceClient("127.0.0.1", srv.grpc_port, token=TOKEN, timeout=2) as plaintext, \
                    pytest.raises(CloudUnavailableError):
                plaintext.infer("linear", {"x": EYE2})
            with RestInferenceClient(f"https://127.0.0.1:{srv.rest_port}", token=TOKEN, verify=cert) as rest:
                assert rest.infer("linear", {"x": EYE2}).outputs["y"].tolist() == [[0, 1, 2], [3, 4, 5]]

    def test_missing_certificate_file_is_named(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"TLSConfig.cert_file=.*is not a readable file"):
            TLSConfig(str(tmp_path / "none.pem"), str(tmp_path / "none.key"))
