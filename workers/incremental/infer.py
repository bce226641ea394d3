"""The inference worker: serve the digits model over OIP v2 and follow hot updates.

Serves model ``JOB_NAME`` (input ``pixels`` FP32 [-1, 64]; outputs ``probabilities`` FP32
[-1, 10] and ``hard_example`` BOOL [-1], one verdict per row from ``HEM_NAME``) on
``EDGE_BIND_IP``: REST ``EDGE_BIND_PORT``, gRPC ``EDGE_GRPC_PORT``. Every request goes through
:meth:`IncrementalLearning.inference`, so a model deployed by hot update answers the next request.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from sedna.backend.tensors import Prediction, TensorSpec
from sedna.common.config import WorkerConfig
from sedna.common.errors import ConfigError, ModelLoadError
from sedna.common.log import configure, get_logger
from workers.logsummary import PeriodicSummary, model_label, quiet_libraries, server_totals, summary_period

LOG = get_logger("workers.incremental.infer")
INPUT = TensorSpec("pixels", "FP32", (-1, 64))
OUTPUTS = (TensorSpec("probabilities", "FP32", (-1, 10)), TensorSpec("hard_example", "BOOL", (-1,)))


class IncrementalServedModel:
    """A ServedModel over :meth:`IncrementalLearning.inference` (like joint inference's EstimatorModel)."""

    platform = "python"

    def __init__(self, learner: Any, name: str) -> None:
        self.learner = learner
        self.name, self.version = name, "1"
        self.inputs, self.outputs = [INPUT], list(OUTPUTS)
        self.max_batch_size = 0

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        rows = np.asarray(inputs[INPUT.name], dtype=np.float32)
        proba = np.zeros((rows.shape[0], OUTPUTS[0].shape[1]), np.float32)
        hard = np.zeros(rows.shape[0], np.bool_)
        with self.learner.lock:  # the whole request sees one model version
            for i in range(rows.shape[0]):  # one sample per call: the HEM filter judges one result
                result, _, hard[i] = self.learner.inference(rows[i : i + 1])
                proba[i] = np.asarray(result, dtype=np.float32).reshape(-1)
            model = self.learner.model_config
        params = {"model_round": model.round} if model is not None and model.round is not None else {}
        return Prediction({"probabilities": proba, "hard_example": hard}, params)


def main(environ: Mapping[str, str] | None = None) -> int:
    configure()
    quiet_libraries()
    from sedna.core.incremental_learning import IncrementalLearning
    from sedna.service.inference import InferenceServer
    from workers.incremental.model import DigitsSoftmax

    try:
        cfg = WorkerConfig.from_env(environ)
        period = summary_period(cfg.environ)
        learner = IncrementalLearning(DigitsSoftmax, config=cfg)
        loaded = learner.load()
        if not loaded:
            raise ConfigError("MODEL_URL is not set and no hot-update model exists: nothing to serve")
    except (ConfigError, ModelLoadError, ValueError) as exc:
        LOG.error("cannot start the inference worker: %s", exc)
        return 2
    server = InferenceServer([IncrementalServedModel(learner, cfg.job_name or "model")], host=cfg.edge_bind_ip,
                             rest_port=cfg.edge_bind_port, grpc_port=cfg.edge_grpc_port,
                             token=cfg.edge_token or None)
    server.start()
    LOG.info("inference worker serving model %r from %s on %s (REST :%s, gRPC :%s); hot update %s",
             cfg.job_name or "model", model_label(str(loaded)), cfg.edge_bind_ip, server.rest_port, server.grpc_port,
             "on" if learner.watcher else "off")
    summary = PeriodicSummary(LOG, lambda: server_totals(server.metrics.registry),
                              lambda c: f"{c['requests']} requests, {c['errors']} errors", period).start()
    try:
        server.serve_forever()
    finally:
        summary.stop()
        learner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
