"""The edge joint-inference worker: the shallow model at ``MODEL_URL`` plus the cloud.

It serves the Open Inference Protocol to local apps (REST on ``EDGE_BIND_PORT``,
5100; gRPC on ``EDGE_GRPC_PORT``, 5101; bound to ``EDGE_BIND_IP``) and, when
``MQTT_BROKER`` is set, to devices over MQTT. Each request is answered by joint
inference: ``HEM_NAME``/``HEM_PARAMETERS`` choose the mining algorithm,
``BIG_MODEL_IP``/``BIG_MODEL_GRPC_PORT`` (or ``BIG_MODEL_PORT`` with
``BIG_MODEL_PROTOCOL=rest``) name the cloud, ``BIG_MODEL_TIMEOUT`` (seconds, 1.0)
its deadline. Counters go to the LC at ``LC_SERVER`` every ``LC_PERIOD`` seconds. The log has
one start line (model file and its sha256, addresses, cloud) and, every ``LOG_SUMMARY_PERIOD``
seconds (60), a summary: requests, hard examples and offload share, cloud failures, errors.
"""

from __future__ import annotations

import sys
from typing import Any

from sedna.common.config import Context, WorkerConfig
from sedna.common.errors import ConfigError, ModelLoadError, RegistryError
from sedna.common.log import configure, get_logger
from workers.logsummary import PeriodicSummary, model_label, quiet_libraries, server_totals, summary_period

LOG = get_logger("workers.joint_inference.edge")


def build(cfg: WorkerConfig) -> tuple[Any, Any]:
    """The JointInference and the ServedModel that fronts it."""
    from sedna.backend.onnx import OnnxEstimator
    from sedna.core.joint_inference import JointInference
    from sedna.core.joint_inference.serving import JointServedModel

    if not cfg.model_url:
        raise ConfigError("MODEL_URL is not set: the edge worker needs the shallow model file")
    ctx = Context(cfg.environ)
    estimator = OnnxEstimator(output_name=ctx.get_parameters("EDGE_OUTPUT") or None,
                              intra_op_threads=cfg.intra_op_threads, sha256=cfg.model_sha256 or None)
    joint = JointInference(estimator, config=cfg, cloud_timeout=ctx.get_float("BIG_MODEL_TIMEOUT", 1.0),
                           report_period=ctx.get_float("LC_PERIOD", 5.0))
    model = estimator.model
    assert model is not None
    output = next(s for s in model.outputs if s.name == (estimator.output_name or model.outputs[-1].name))
    served = JointServedModel(joint, model.inputs, output, cfg.service_name or "joint-inference")
    return joint, served


def describe(counters: Any) -> str:
    """The periodic summary line's text."""
    return (f"{counters['requests']} requests, {counters['inferences']} samples, {counters['hard_examples']} hard "
            f"(offload share {counters['offload_ratio']:.3f}), {counters['cloud_failures']} cloud failures, "
            f"{counters['errors']} errors")


def main() -> int:
    configure()
    quiet_libraries()
    try:
        cfg = WorkerConfig.from_env()
        period = summary_period(cfg.environ)
        joint, served = build(cfg)
    except (ConfigError, ModelLoadError, RegistryError, ValueError) as exc:
        LOG.error("cannot start the edge worker: %s", exc)
        return 2
    from sedna.service.inference import InferenceServer

    server = InferenceServer([served], host=cfg.edge_bind_ip, rest_port=cfg.edge_bind_port,
                             grpc_port=cfg.edge_grpc_port, token=cfg.edge_token or None, batching=None,
                             sedna_service_name=cfg.service_name or None)
    from sedna.core.joint_inference.stats import StatsCollector

    server.metrics.registry.register(StatsCollector(joint.stats, served.name))
    gateway = None
    if cfg.mqtt_broker:
        from sedna.service.mqtt import DeviceGateway, MqttSettings

        gateway = DeviceGateway(joint.infer, MqttSettings.from_config(cfg), cfg.namespace,
                                cfg.service_name or "joint-inference", registry=server.metrics.registry)
        gateway.start()
    LOG.info("edge worker serving joint inference %r with model %s on %s (REST :%d, gRPC :%d), cloud %s:%d",
             served.name, model_label(cfg.model_url), cfg.edge_bind_ip, cfg.edge_bind_port, cfg.edge_grpc_port,
             cfg.big_model_ip, cfg.big_model_grpc_port)

    def counters() -> dict[str, Any]:
        snap = joint.stats.snapshot()
        snap.pop("started_at", None)
        return {**snap, **server_totals(server.metrics.registry)}

    summary = PeriodicSummary(LOG, counters, describe, period)
    try:
        server.start()
        summary.start()
        server.serve_forever()
    finally:
        summary.stop()
        if gateway is not None:
            gateway.stop()
        joint.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
