"""A replica for the ReplicaSet tests: ``python -m tests.service.replica_server``.

Serves one model that answers y = 2x with the serving process's pid as a response
parameter, on ``REPLICA_TEST_REST_PORT`` / ``REPLICA_TEST_GRPC_PORT`` with SO_REUSEPORT,
and exits with code 3 at once when ``REPLICA_TEST_FAIL`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from sedna.backend.tensors import Prediction, TensorSpec
from sedna.service.inference import InferenceServer
from sedna.service.inference.replicas import signal_ready


class PidModel:
    name = "pid"
    version = "1"
    platform = "numpy"
    inputs = (TensorSpec("x", "FP32", (-1, 2)),)
    outputs = (TensorSpec("y", "FP32", (-1, 2)),)
    max_batch_size = 8

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        return Prediction({"y": inputs["x"] * 2}, {"pid": os.getpid()})


def main() -> int:
    if os.environ.get("REPLICA_TEST_FAIL"):
        return 3
    server = InferenceServer([PidModel()], rest_port=int(os.environ["REPLICA_TEST_REST_PORT"]),
                             grpc_port=int(os.environ["REPLICA_TEST_GRPC_PORT"]), reuse_port=True).start()
    signal_ready()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
