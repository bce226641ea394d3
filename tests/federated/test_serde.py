"""Chunked tensor transfer, compression, header validation, checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sedna.proto import federated_pb2 as pb
from sedna.service.aggregation.checkpoint import Checkpoint, CheckpointStore
from sedna.service.aggregation.serde import (
    TensorAssembler,
    WireError,
    encode_weights,
    iter_chunks,
    scalars_from_proto,
    scalars_to_proto,
)
from sedna.service.aggregation.validation import check_finite, check_header


def _roundtrip(weights: dict[str, np.ndarray], chunk: int, encoding: str = "none") -> tuple[dict, list[bytes]]:
    header, views = encode_weights(weights, encoding)
    chunks = list(iter_chunks(views, chunk))
    asm = TensorAssembler(header)
    for c in chunks:
        asm.feed(c)
    return asm.result(), chunks


def test_a_tensor_larger_than_the_chunk_round_trips_bit_exactly() -> None:
    rng = np.random.default_rng(0)
    big = rng.standard_normal(3 * 1024 * 1024 // 4 + 77).astype(np.float32)  # > 3 chunks, odd tail
    big[5] = np.float32("-0.0")
    weights = {"tiny": np.array([1.5], np.float32), "big": big, "ids": np.arange(7, dtype=np.int64).reshape(7, 1),
               "scalar": np.array(2.0, np.float64)}
    out, chunks = _roundtrip(weights, 1 << 20)
    assert [len(c) for c in chunks] == [1 << 20] * 3 + [4 + big.nbytes + 56 + 8 - 3 * (1 << 20)]
    for name, arr in weights.items():
        assert out[name].dtype == arr.dtype and out[name].shape == arr.shape
        assert out[name].tobytes() == arr.tobytes()


def test_small_tensors_share_chunks() -> None:
    weights = {f"b{i}": np.full(10, i, np.float32) for i in range(100)}  # 100 x 40 bytes
    out, chunks = _roundtrip(weights, 1024)
    assert len(chunks) == 4 and sum(map(len, chunks)) == 4000
    assert all(out[k].tolist() == v.tolist() for k, v in weights.items())


def test_compression_fp16_and_int8_error_bounds() -> None:
    x = np.linspace(-2.0, 2.0, 1001, dtype=np.float32)
    weights = {"x": x, "steps": np.array([3], np.int64)}
    fp16, chunks16 = _roundtrip(weights, 256, "fp16")
    int8, chunks8 = _roundtrip(weights, 256, "int8")
    assert sum(map(len, chunks16)) == 1001 * 2 + 8 and sum(map(len, chunks8)) == 1001 + 8
    assert fp16["x"].dtype == np.float32 and np.abs(fp16["x"] - x).max() <= 2.0 * 2**-11
    assert int8["x"].dtype == np.float32 and np.abs(int8["x"] - x).max() <= (2.0 / 127) / 2 + 1e-6
    assert int8["steps"].tolist() == [3]  # integers travel raw


def test_headers_that_lie_are_refused_naming_the_field() -> None:
    header, _ = encode_weights({"w": np.zeros(4, np.float32)})
    header.tensors[0].nbytes = 15
    with pytest.raises(WireError, match=r"tensors\[0\].*nbytes=15"):
        TensorAssembler(header)
    bad_dtype = pb.TensorsHeader(tensors=[pb.TensorMeta(name="w", dtype="BYTES", shape=[1], nbytes=1)], total_bytes=1)
    with pytest.raises(WireError, match=r"tensors\[0\]\.dtype"):
        TensorAssembler(bad_dtype)
    header, _ = encode_weights({"w": np.zeros(4, np.float32)})
    asm = TensorAssembler(header)
    with pytest.raises(WireError, match="overruns"):
        asm.feed(bytes(17))
    with pytest.raises(WireError, match="exceeds the limit"):
        TensorAssembler(header, max_bytes=8)
    with pytest.raises(WireError, match="compression 'zip'"):
        encode_weights({"w": np.zeros(1)}, "zip")


def test_scalars_round_trip() -> None:
    msg = pb.FitIns()
    values = {"epochs": 3, "mu": 0.25, "flag": True, "name": "x"}
    scalars_to_proto(values, msg.config)
    assert scalars_from_proto(msg.config) == values
    with pytest.raises(WireError, match="'bad'"):
        scalars_to_proto({"bad": [1]}, msg.config)


def test_validation_reasons() -> None:
    spec = {"w": ("FP32", (2, 3)), "b": ("FP32", (3,))}
    assert check_header(spec, dict(spec)) is None
    assert "missing tensors ['b']" in check_header(spec, {"w": spec["w"]})
    assert "dtype FP64" in check_header(spec, {**spec, "b": ("FP64", (3,))})
    assert "shape [3, 2]" in check_header(spec, {**spec, "w": ("FP32", (3, 2))})
    assert check_finite({"w": np.ones(3), "i": np.ones(2, np.int64)}) is None
    reason = check_finite({"w": np.array([0.0, np.inf, 1.0])})
    assert reason is not None and "'w'" in reason and "flat index 1" in reason


def test_checkpoints_are_atomic_pruned_and_pickle_free(tmp_path) -> None:
    store = CheckpointStore(tmp_path, keep=2)
    for r in (1, 2, 3):
        store.save(Checkpoint(r, {"w": np.full(2, r, np.float32)}, [{"round": r}], {"m/w": np.ones(2)}))
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [
        "round-000002.npz", "round-000002.strategy.npz", "round-000003.npz", "round-000003.strategy.npz"]
    (tmp_path / ".round-000004.npz.tmp").write_bytes(b"half a file")  # a crash mid-write is ignored
    ckpt = store.load()
    assert ckpt is not None and ckpt.round == 3 and ckpt.weights["w"].tolist() == [3.0, 3.0]
    assert ckpt.history == [{"round": 3}] and ckpt.strategy_state["m/w"].tolist() == [1.0, 1.0]
    assert json.loads((tmp_path / "state.json").read_text())["weights"] == "round-000003.npz"
    assert CheckpointStore(tmp_path / "empty").load() is None
