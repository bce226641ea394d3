"""Text (BYTES) requests and results on the MQTT device protocol, without a broker."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from sedna.common.outcome import JointOutcome
from sedna.service.mqtt.codec import PayloadError, decode_request, encode_frame, result_payload


def test_json_request_with_bytes_dtype_carries_strings() -> None:
    request = decode_request(json.dumps({"id": "t", "dtype": "BYTES", "data": [["héllo", "x"]]}).encode(), 1024)

    assert request.datatype == "BYTES" and request.tensor.shape == (1, 2)
    assert request.tensor.tolist() == [["héllo".encode(), b"x"]]


def test_binary_frame_with_bytes_dtype_holds_length_prefixed_elements() -> None:
    head = json.dumps({"id": 7, "dtype": "BYTES", "shape": [2]}).encode()
    body = struct.pack("<I", 3) + b"abc" + struct.pack("<I", 0)

    request = decode_request(struct.pack(">I", len(head)) + head + body, 1024)

    assert request.id == 7 and request.tensor.tolist() == [b"abc", b""]


def test_encode_frame_round_trips_text() -> None:
    request = decode_request(encode_frame(np.array(["one", "twö"]), "r"), 1024)

    assert request.tensor.tolist() == [b"one", "twö".encode()]


@pytest.mark.parametrize(("payload", "message"), [
    (json.dumps({"id": "a", "dtype": "BYTES", "data": ["x", 3]}).encode(), "BYTES element must be a string"),
    (json.dumps({"id": "a", "dtype": "BYTES", "data": [["x"], ["y", "z"]]}).encode(), "not a rectangular list"),
])
def test_bad_json_text_is_refused_with_bad_data(payload: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message) as caught:
        decode_request(payload, 1024)

    assert caught.value.code == "bad_data" and caught.value.request_id == "a"


def test_a_frame_whose_elements_do_not_fill_the_shape_is_bad_size() -> None:
    head = json.dumps({"id": "s", "dtype": "BYTES", "shape": [3]}).encode()

    with pytest.raises(PayloadError, match=r"holds 1 elements, its shape \[3\] needs 3") as caught:
        decode_request(struct.pack(">I", len(head)) + head + struct.pack("<I", 1) + b"a", 1024)

    assert caught.value.code == "bad_size"


def test_text_results_are_json_strings() -> None:
    answer = np.empty(1, dtype=object)
    answer[0] = "réponse".encode()
    outcome = JointOutcome(True, answer, None, answer, "cloud")

    assert json.loads(result_payload("q", outcome, 1.0))["result"] == ["réponse"]
