"""The cloud joint-inference worker: serves the ONNX model at ``MODEL_URL``.

Env: ``SERVICE_NAME`` (the model's name in the protocol), ``MODEL_URL``,
``MODEL_SHA256``, ``BIG_MODEL_BIND_IP`` (default 127.0.0.1), ``BIG_MODEL_BIND_PORT``
(REST, 5000), ``BIG_MODEL_GRPC_PORT`` (5001), ``BIG_MODEL_TOKEN``, ``MAX_BATCH_SIZE``
(32), ``MAX_QUEUE_DELAY_MS`` (2), ``INTRA_OP_THREADS``, ``LOG_SUMMARY_PERIOD`` (60 s).
Logs one start line (model file and its sha256, addresses) and a periodic summary of requests
and errors.
"""

from __future__ import annotations

import sys

from sedna.common.config import Context, WorkerConfig
from sedna.common.errors import ConfigError, ModelLoadError
from sedna.common.log import configure, get_logger
from workers.logsummary import PeriodicSummary, model_label, quiet_libraries, server_totals, summary_period

LOG = get_logger("workers.joint_inference.cloud")


def main() -> int:
    configure()
    quiet_libraries()
    try:
        cfg = WorkerConfig.from_env()
        ctx = Context(cfg.environ)
        if not cfg.model_url:
            raise ConfigError("MODEL_URL is not set: the cloud worker needs the model file to serve")
        from sedna.backend.onnx import OnnxModel
        from sedna.core.joint_inference import BigModelService

        model = OnnxModel(cfg.model_url, cfg.service_name or None, intra_op_threads=cfg.intra_op_threads,
                          sha256=cfg.model_sha256 or None)
        service = BigModelService(model, cfg, max_batch_size=ctx.get_int("MAX_BATCH_SIZE", 32),
                                  max_queue_delay_ms=ctx.get_float("MAX_QUEUE_DELAY_MS", 2.0))
        period = summary_period(cfg.environ)
    except (ConfigError, ModelLoadError, ValueError) as exc:
        LOG.error("cannot start the cloud worker: %s", exc)
        return 2
    LOG.info("cloud worker serving model %r from %s on %s (REST :%d, gRPC :%d)", model.name,
             model_label(cfg.model_url), cfg.big_model_bind_ip, cfg.big_model_bind_port, cfg.big_model_grpc_port)
    server = service.start(block=False)
    summary = PeriodicSummary(LOG, lambda: server_totals(server.metrics.registry),
                              lambda c: f"{c['requests']} requests, {c['errors']} errors", period).start()
    try:
        server.serve_forever()
    finally:
        summary.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
