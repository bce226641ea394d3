"""Wire codecs without sockets: every OIP datatype survives the REST (JSON and binary)
and gRPC encodings bit for bit, in both directions."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sedna.backend.tensors import Prediction, TensorSpec, from_numpy_dtype
from sedna.proto import grpc_predict_v2_pb2 as pb
from sedna.service.inference import _grpc_codec, _rest_codec

DTYPES = [np.bool_, np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32, np.int64,
          np.float16, np.float32, np.float64]


class Echo:
    """Serves one tensor of the given dtype and echoes it back."""

    name, version, platform, max_batch_size = "echo", "1", "numpy", 0

    def __init__(self, dtype: np.dtype) -> None:
        self.inputs = (TensorSpec("t", from_numpy_dtype(dtype), (-1, -1)),)
        self.outputs = (TensorSpec("t", from_numpy_dtype(dtype), (-1, -1)),)

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        return Prediction({"t": inputs["t"]}, {"score": 0.5, "label": "cat", "n": 3, "hard": True})


arrays = st.sampled_from(DTYPES).flatmap(  # a batch has at least one row (zero rows are refused)
    lambda dtype: hnp.arrays(np.dtype(dtype), hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=5)
                             .filter(lambda shape: shape[0] > 0),
                             elements=hnp.from_dtype(np.dtype(dtype), allow_nan=False, allow_infinity=False))
)


@settings(max_examples=60, deadline=None)
@given(array=arrays, binary=st.booleans())
def test_rest_round_trip_is_exact(array: np.ndarray, binary: bool) -> None:
    if not binary and array.dtype.kind in "iu" and array.size:  # JSON integers lie within +-(2**63 - 1)
        assume(int(array.max()) < 2**63 and int(array.min()) > -(2**63))
    model = Echo(array.dtype)
    body, headers = _rest_codec.encode_request({"t": array}, binary=binary)
    request = _rest_codec.parse_request(model, body, headers.get(_rest_codec.HEADER_LENGTH))
    assert request.binary_all is binary
    np.testing.assert_array_equal(request.inputs["t"], array)
    reply, reply_headers = _rest_codec.encode_response(model, model.predict(request.inputs), request)
    result = _rest_codec.decode_response(reply, reply_headers.get(_rest_codec.HEADER_LENGTH))
    assert result.outputs["t"].dtype == array.dtype and result.outputs["t"].shape == array.shape
    np.testing.assert_array_equal(result.outputs["t"], array)
    assert result.parameters == {"score": 0.5, "label": "cat", "n": 3, "hard": True}


@settings(max_examples=60, deadline=None)
@given(array=arrays)
def test_grpc_round_trip_is_exact(array: np.ndarray) -> None:
    model = Echo(array.dtype)
    request = pb.ModelInferRequest.FromString(
        _grpc_codec.build_request(pb, "echo", {"t": array}, {"trace": "abc"}).SerializeToString())
    inputs, requested = _grpc_codec.parse_request(model, request)
    np.testing.assert_array_equal(inputs["t"], array)
    response = _grpc_codec.build_response(pb, model, model.predict(inputs), request, requested)
    result = _grpc_codec.parse_response(pb.ModelInferResponse.FromString(response.SerializeToString()))
    assert result.outputs["t"].dtype == array.dtype and result.outputs["t"].shape == array.shape
    np.testing.assert_array_equal(result.outputs["t"], array)
    assert result.parameters == {"score": 0.5, "label": "cat", "n": 3, "hard": True}
    assert _grpc_codec.params_from_proto(request.parameters) == {"trace": "abc"}


def test_non_scalar_parameters_travel_as_json_strings() -> None:
    response = pb.ModelInferResponse()
    _grpc_codec.params_to_proto({"boxes": np.array([1, 2]), "big": 2**63, "np": np.float32(0.25)}, response.parameters)
    assert _grpc_codec.params_from_proto(response.parameters) == {"boxes": "[1, 2]", "big": 2**63, "np": 0.25}
