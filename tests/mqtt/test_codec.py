"""Payload codec, PNG decoding, the exactly-once cache and settings, without a broker."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sedna.common.config import WorkerConfig
from sedna.common.errors import ConfigError
from sedna.common.outcome import JointOutcome
from sedna.service.mqtt.codec import PayloadError, decode_request, encode_frame, error_payload, result_payload
from sedna.service.mqtt.dedup import SeenCache
from sedna.service.mqtt.png import decode_png, encode_png
from sedna.service.mqtt.settings import MqttSettings, Topics, parse_broker

DTYPES = st.sampled_from([np.uint8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64])


@given(dtype=DTYPES, shape=st.lists(st.integers(0, 4), max_size=3), seed=st.integers(0, 2**16))
def test_binary_frames_round_trip_every_dtype_and_shape(dtype, shape, seed) -> None:
    tensor = (np.random.default_rng(seed).random(shape) * 100).astype(dtype)

    request = decode_request(encode_frame(tensor, "r"), max_bytes=1 << 20)

    assert request.id == "r" and request.tensor.dtype == tensor.dtype
    np.testing.assert_array_equal(request.tensor, tensor)


def test_numpy_dtype_names_are_accepted_like_oip_names() -> None:
    head = json.dumps({"id": 1, "dtype": "float64", "shape": [2]}).encode()
    frame = struct.pack(">I", len(head)) + head + np.array([1.5, -2.0], "<f8").tobytes()

    assert decode_request(frame, 1024).tensor.tolist() == [1.5, -2.0]


@pytest.mark.parametrize(("payload", "code", "request_id"), [
    (b"", "empty", None),
    (b"\x00\x01", "bad_header", None),
    (struct.pack(">I", 999) + b"{}", "bad_header", None),
    (struct.pack(">I", 2) + b"[]", "bad_header", None),
    (json.dumps({"id": "x", "dtype": "FP32", "shape": [1]}).encode(), "bad_data", "x"),
    (json.dumps({"id": True, "data": [1]}).encode(), "bad_id", None),
    (json.dumps({"id": "y", "data": ["a"]}).encode(), "bad_data", "y"),
    (json.dumps({"id": "z", "data": [1], "dtype": "object"}).encode(), "bad_dtype", "z"),
])
def test_malformed_requests_raise_with_a_code_and_the_readable_id(payload: bytes, code: str, request_id) -> None:
    with pytest.raises(PayloadError) as caught:
        decode_request(payload, 1024)

    assert caught.value.code == code and caught.value.request_id == request_id


def test_correlation_data_stands_in_for_a_missing_id() -> None:
    assert decode_request(b'{"data": [1, 2]}', 1024, fallback_id="corr").id == "corr"


def test_result_and_error_payloads() -> None:
    outcome = JointOutcome(True, np.array([3]), np.array([2]), np.array([3]), "cloud", example_id="e1")

    assert json.loads(result_payload("a", outcome, 1.23456)) == {
        "id": "a", "ok": True, "result": [3], "hard_example": True, "computed_at": "cloud", "example_id": "e1",
        "latency_ms": 1.235}
    assert json.loads(error_payload(None, "busy", "busy: retry")) == {"ok": False, "code": "busy",
                                                                      "error": "busy: retry"}


def png_with_filter(image: np.ndarray, kind: int) -> bytes:
    """A PNG whose every row uses filter ``kind`` (1 Sub .. 4 Paeth), encoded by hand."""
    height, width, bpp = image.shape
    rows, prior = [], np.zeros(width * bpp, np.int32)
    for y in range(height):
        cur = image[y].reshape(-1).astype(np.int32)
        left = np.concatenate([np.zeros(bpp, np.int32), cur[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), prior[:-bpp]])
        if kind == 1:
            pred = left
        elif kind == 2:
            pred = prior
        elif kind == 3:
            pred = (left + prior) // 2
        else:
            p = left + prior - upleft
            pa, pb, pc = abs(p - left), abs(p - prior), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prior, upleft))
        rows.append(bytes([kind]) + ((cur - pred) % 256).astype(np.uint8).tobytes())
        prior = cur
    plain = encode_png(image)
    ihdr_end = 8 + 8 + 13 + 4
    body = zlib.compress(b"".join(rows))
    idat = struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))
    return plain[:ihdr_end] + idat + plain[-12:]


@pytest.mark.parametrize("kind", [1, 2, 3, 4])
def test_png_rows_with_every_filter_decode_to_the_pixels(kind: int) -> None:
    image = np.random.default_rng(kind).integers(0, 256, (5, 7, 3), dtype=np.uint8)

    np.testing.assert_array_equal(decode_png(png_with_filter(image, kind)), image)


def test_png_grey_round_trip_and_unsupported_variant() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(decode_png(encode_png(grey)), grey)
    sixteen_bit = bytearray(encode_png(grey))
    sixteen_bit[24] = 16  # IHDR bit depth

    with pytest.raises(ValueError, match="unsupported PNG variant"):
        decode_png(bytes(sixteen_bit))


def test_seen_cache_answers_once_then_forgets_after_ttl_and_when_told() -> None:
    now = [0.0]
    cache = SeenCache(ttl=10.0, max_size=2, clock=lambda: now[0])

    assert cache.first("a") and not cache.first("a")
    cache.forget("a")
    assert cache.first("a")
    now[0] = 11.0
    assert cache.first("a")
    assert cache.first("b") and cache.first("c") and len(cache) == 2 and cache.first("a")


def test_settings_from_the_worker_contract() -> None:
    config = WorkerConfig.from_env({"MQTT_BROKER": "broker.local:8883", "MQTT_USERNAME": "u", "MQTT_PASSWORD": "p",
                                    "MQTT_TLS_CA": "/ca.pem", "WORKER_NAME": "edge-1"})

    settings = MqttSettings.from_config(config)

    assert (settings.host, settings.port, settings.username, settings.tls_ca) == ("broker.local", 8883, "u", "/ca.pem")
    assert settings.gateway_client_id("ns", "svc") == "sedna-gw-ns-svc-edge-1"


@pytest.mark.parametrize("bad", ["broker", "host:0", "host:abc", ":1883"])
def test_a_malformed_broker_address_names_the_variable(bad: str) -> None:
    with pytest.raises(ConfigError, match=f"MQTT_BROKER={bad!r}"):
        parse_broker(bad)


def test_topic_levels_reject_wildcards() -> None:
    assert Topics("ns", "svc").result("d") == "sedna/ns/svc/result/d"
    with pytest.raises(ConfigError, match="service='a/#'"):
        Topics("ns", "a/#")
