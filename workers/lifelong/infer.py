"""The inference worker: serve the knowledge base over OIP v2 and follow new versions.

Serves model ``JOB_NAME``: input ``features`` FP32 [-1, F]; outputs ``probabilities`` FP32
[-1, K] and ``unseen`` BOOL [-1] (one verdict per row); response parameters ``kb_version`` and
``tasks`` (the answering task of each row, comma-separated). Listens on ``EDGE_BIND_IP``: REST
``EDGE_BIND_PORT``, gRPC ``EDGE_GRPC_PORT``, token ``EDGE_TOKEN``. The knowledge base comes from
``MODEL_URLS`` into the local copy ``EDGE_KB_DIR``; with ``MODEL_HOT_UPDATE=true`` new published
versions are picked up every ``MODEL_POLL_PERIOD_SECONDS``, and a ``MODEL_HOT_UPDATE_CONFIG``
naming another index location is followed too. Unseen samples go to ``unseen_save_url``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from sedna.backend.tensors import Prediction, TensorSpec
from sedna.common.config import WorkerConfig
from sedna.common.errors import ConfigError, ModelLoadError, RegistryError
from sedna.common.log import configure, get_logger
from workers.logsummary import PeriodicSummary, quiet_libraries, server_totals, summary_period

LOG = get_logger("workers.lifelong.infer")
INPUT = TensorSpec("features", "FP32", (-1, -1))
OUTPUTS = (TensorSpec("probabilities", "FP32", (-1, -1)), TensorSpec("unseen", "BOOL", (-1,)))


class LifelongServedModel:
    """A ServedModel over :meth:`LifelongLearning.inference`."""

    platform = "python"

    def __init__(self, learner: Any, name: str) -> None:
        self.learner = learner
        self.name, self.version = name, "1"
        self.inputs, self.outputs = [INPUT], list(OUTPUTS)
        self.max_batch_size = 0

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Prediction:
        rows = np.asarray(inputs[INPUT.name], dtype=np.float32)
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        edge = self.learner.edge()
        with edge.lock:  # the version named is the one that answered, even while a hot update swaps it
            result, unseen, tasks = self.learner.inference(rows)
            knowledge = edge.knowledge
        flags = np.atleast_1d(np.asarray(unseen, np.bool_))
        return Prediction({"probabilities": np.asarray(result, np.float32), "unseen": flags},
                          {"kb_version": knowledge.version if knowledge is not None else -1, "tasks": ",".join(tasks)})


def main(environ: Mapping[str, str] | None = None) -> int:
    configure()
    quiet_libraries()
    from sedna.service.inference import InferenceServer
    from workers.lifelong.common import learner, report_startup_failure

    try:
        cfg = WorkerConfig.from_env(environ)
        period = summary_period(cfg.environ)
        ll = learner(cfg)
        edge = ll.edge()
    except (ConfigError, ModelLoadError, RegistryError, ValueError) as exc:
        LOG.error("cannot start the inference worker: %s", exc)
        report_startup_failure(environ, "inference", exc)
        return 2
    server = InferenceServer([LifelongServedModel(ll, cfg.job_name or "lifelong")], host=cfg.edge_bind_ip,
                             rest_port=cfg.edge_bind_port, grpc_port=cfg.edge_grpc_port, token=cfg.edge_token or None)
    server.start()
    LOG.info("serving knowledge base version %s from %s as %r on %s (REST :%s, gRPC :%s); hot update %s",
             edge.knowledge.version if edge.knowledge else None, edge.local.root, cfg.job_name or "lifelong",
             cfg.edge_bind_ip, server.rest_port, server.grpc_port, "on" if cfg.model_hot_update else "off")
    summary = PeriodicSummary(LOG, lambda: server_totals(server.metrics.registry),
                              lambda c: f"{c['requests']} requests, {c['errors']} errors", period).start()
    try:
        server.serve_forever()
    finally:
        summary.stop()
        ll.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
