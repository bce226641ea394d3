"""The package installs and imports beside other libraries that speak protobuf and gRPC.

The generated modules in ``sedna/proto`` must import on every protobuf and grpcio release that
``pyproject.toml`` admits (its floors are the generator's versions), and the Open Inference
Protocol module must live beside tritonclient's, which defines the same ``inference`` package.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROTO = ROOT / "sedna" / "proto"


def _requirements() -> dict[str, str]:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = {}
    for requirement in project["dependencies"]:
        name, spec = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", requirement).groups()  # type: ignore[union-attr]
        found[name.lower()] = spec
    return found


def _floor(spec: str) -> str:
    return re.search(r">=\s*([0-9.]+)", spec).group(1)  # type: ignore[union-attr]


def test_the_declared_floors_are_the_versions_the_modules_were_generated_for() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_proto
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    requirements = _requirements()
    gencode = {re.search(r"# Protobuf Python Version: (\S+)", p.read_text()).group(1)  # type: ignore[union-attr]
               for p in PROTO.glob("*_pb2.py")}
    grpc_generated = {re.search(r"GRPC_GENERATED_VERSION = '(\S+)'", p.read_text()).group(1)  # type: ignore[union-attr]
                      for p in PROTO.glob("*_pb2_grpc.py")}
    assert gencode == {_floor(requirements["protobuf"])}
    assert grpc_generated == {_floor(requirements["grpcio"]), gen_proto.GRPCIO_TOOLS}


def test_the_protobuf_range_admits_tensorflow_and_tritonclient() -> None:
    from packaging.specifiers import SpecifierSet

    admitted = SpecifierSet(_requirements()["protobuf"])
    # tritonclient 2.73 pins protobuf >=6.30,<7; TensorFlow 2.21 >=6.31.1,<8, 2.20 >=5.28, 2.19 <6
    for version in ("5.29.6", "6.31.1", "6.33.6", "7.36.2"):
        assert version in admitted, version


@pytest.mark.processes
def test_the_inference_protocol_does_not_claim_the_default_descriptor_pool(tmp_path: Path) -> None:
    # Another library (tritonclient does) registers the package `inference` first; ours must still import.
    code = """
from google.protobuf import descriptor_pb2, descriptor_pool
other = descriptor_pb2.FileDescriptorProto(name="vendor/grpc_service.proto", package="inference", syntax="proto3")
other.message_type.add(name="ServerLiveRequest")
other.message_type.add(name="ModelInferRequest")
descriptor_pool.Default().Add(other)
from sedna.proto import grpc_predict_v2_pb2, grpc_predict_v2_pb2_grpc
request = grpc_predict_v2_pb2.ModelInferRequest(model_name="m", raw_input_contents=[b"x"])
assert grpc_predict_v2_pb2.ModelInferRequest.FromString(request.SerializeToString()) == request
print("ok")
"""
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_our_grpc_modules_import_beside_tritonclient() -> None:
    tritonclient_grpc = pytest.importorskip("tritonclient.grpc", reason="tritonclient is not installed (CI has it)")
    from tritonclient.grpc import service_pb2 as theirs

    from sedna.proto import edgehub_pb2_grpc, federated_pb2_grpc, grpc_predict_v2_pb2, grpc_predict_v2_pb2_grpc

    assert tritonclient_grpc.InferenceServerClient and edgehub_pb2_grpc and federated_pb2_grpc
    ours = grpc_predict_v2_pb2.ModelInferRequest(model_name="digits", raw_input_contents=[b"\x00" * 8])
    ours.inputs.add(name="x", datatype="FP32", shape=[1, 2])
    as_triton = theirs.ModelInferRequest.FromString(ours.SerializeToString())  # the same protocol on the wire
    assert (as_triton.model_name, list(as_triton.inputs[0].shape)) == ("digits", [1, 2])
    assert grpc_predict_v2_pb2.ModelInferRequest.FromString(as_triton.SerializeToString()) == ours
    assert grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub
