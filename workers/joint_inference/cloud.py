"""The cloud joint-inference worker: serves the ONNX model at ``MODEL_URL``.

Env: ``SERVICE_NAME`` (the model's name in the protocol), ``MODEL_URL``,
``MODEL_SHA256``, ``BIG_MODEL_BIND_IP`` (default 127.0.0.1), ``BIG_MODEL_BIND_PORT``
(REST, 5000), ``BIG_MODEL_GRPC_PORT`` (5001), ``BIG_MODEL_TOKEN``, ``MAX_BATCH_SIZE``
(32), ``MAX_QUEUE_DELAY_MS`` (2), ``INTRA_OP_THREADS``, ``LOG_SUMMARY_PERIOD`` (60 s),
``SERVING_REPLICAS`` (1, a number, or ``auto`` for one per usable core).
Logs one start line (model file and its sha256, addresses) and a periodic summary of requests
and errors.

With ``SERVING_REPLICAS`` above 1 this process becomes a supervisor: it starts that many
copies of itself, each a whole server with its own model session on the same ports
(``SO_REUSEPORT``, :mod:`sedna.service.inference.replicas`), so serving uses every core.
Each replica loads its own copy of the model: mind the memory of big models.
"""

from __future__ import annotations

import os
import sys

from sedna.common.config import Context, WorkerConfig
from sedna.common.errors import ConfigError, ModelLoadError
from sedna.common.log import configure, get_logger
from workers.logsummary import PeriodicSummary, model_label, quiet_libraries, server_totals, summary_period

LOG = get_logger("workers.joint_inference.cloud")


def supervise(cfg: WorkerConfig, count: int) -> int:
    """Run ``count`` replicas of this worker on the configured ports until SIGTERM/SIGINT."""
    from sedna.service.inference.replicas import ReplicaSet

    ports = {"BIG_MODEL_BIND_PORT": cfg.big_model_bind_port, "BIG_MODEL_GRPC_PORT": cfg.big_model_grpc_port}
    replicas = ReplicaSet([sys.executable, "-m", "workers.joint_inference.cloud"], count, cfg.environ,
                          cfg.big_model_bind_ip, ports)
    try:
        replicas.start()
    except (RuntimeError, TimeoutError, OSError) as exc:
        LOG.error("cannot start the cloud worker's replicas: %s", exc)
        return 2
    LOG.info("serving %s with %d replicas on %s (REST :%d, gRPC :%d)", cfg.model_url, count, cfg.big_model_bind_ip,
             replicas.ports["BIG_MODEL_BIND_PORT"], replicas.ports["BIG_MODEL_GRPC_PORT"])
    try:
        replicas.serve_forever()
    except (RuntimeError, TimeoutError, OSError):
        return 1
    return 0


def main() -> int:
    configure()
    quiet_libraries()

    from sedna.service.inference.replicas import REPLICA_ENV, parse_count, signal_ready

    replica = REPLICA_ENV in os.environ
    try:
        cfg = WorkerConfig.from_env()
        ctx = Context(cfg.environ)
        if not cfg.model_url:
            raise ConfigError("MODEL_URL is not set: the cloud worker needs the model file to serve")
        count = 1 if replica else parse_count(str(ctx.get_parameters("SERVING_REPLICAS", "1")))
        if count > 1:
            return supervise(cfg, count)
        from sedna.backend.onnx import OnnxModel
        from sedna.core.joint_inference import BigModelService

        model = OnnxModel(cfg.model_url, cfg.service_name or None, intra_op_threads=cfg.intra_op_threads,
                          sha256=cfg.model_sha256 or None)
        service = BigModelService(model, cfg, max_batch_size=ctx.get_int("MAX_BATCH_SIZE", 32),
                                  max_queue_delay_ms=ctx.get_float("MAX_QUEUE_DELAY_MS", 2.0), reuse_port=replica)
        period = summary_period(cfg.environ)
    except (ConfigError, ModelLoadError, ValueError) as exc:
        LOG.error("cannot start the cloud worker: %s", exc)
        return 2
    LOG.info("cloud worker serving model %r from %s on %s (REST :%d, gRPC :%d)", model.name,
             model_label(cfg.model_url), cfg.big_model_bind_ip, cfg.big_model_bind_port, cfg.big_model_grpc_port)
    if replica:
        LOG.info("as replica %s", os.environ[REPLICA_ENV])
    server = service.start(block=False)
    signal_ready()
    summary = PeriodicSummary(LOG, lambda: server_totals(server.metrics.registry),
                              lambda c: f"{c['requests']} requests, {c['errors']} errors", period).start()
    try:
        server.serve_forever()
    finally:
        summary.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
