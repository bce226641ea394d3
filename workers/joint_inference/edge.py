"""The edge joint-inference worker: the shallow model at ``MODEL_URL`` plus the cloud.

It serves the Open Inference Protocol to local apps (REST on ``EDGE_BIND_PORT``,
5100; gRPC on ``EDGE_GRPC_PORT``, 5101; bound to ``EDGE_BIND_IP``) and, when
``MQTT_BROKER`` is set, to devices over MQTT. Each request is answered by joint
inference: ``HEM_NAME``/``HEM_PARAMETERS`` choose the mining algorithm,
``BIG_MODEL_IP``/``BIG_MODEL_GRPC_PORT`` (or ``BIG_MODEL_PORT`` with
``BIG_MODEL_PROTOCOL=rest``) name the cloud, ``BIG_MODEL_TIMEOUT`` (seconds, 1.0)
its deadline, ``BIG_MODEL_MAX_BATCH`` (32) the most hard examples sent in one request.
Counters go to the LC at ``LC_SERVER`` every ``LC_PERIOD`` seconds. The log has one start line
(model file and its sha256, addresses, cloud) and, every ``LOG_SUMMARY_PERIOD`` seconds (60), a
summary: requests, hard examples and offload share, cloud failures, errors.

Bounds (DESIGN §7): a request carries at most ``EDGE_MAX_BATCH`` rows (64; more is
refused with 400 / ``invalid_input`` before any row runs); hard examples are kept under
``STATE_DIR`` within ``HARD_EXAMPLE_MAX_BYTES`` (1 GiB) and ``HARD_EXAMPLE_CAPACITY``
(10 000), one request storing at most ``HARD_EXAMPLE_REQUEST_SHARE`` (0.25) of either.
Readiness (``/v2/health/ready``) includes the MQTT gateway: not ready while its network
loop is down.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sedna.common.config import Context, WorkerConfig
from sedna.common.errors import ConfigError, InvalidInputError, ModelLoadError, RegistryError
from sedna.common.log import configure, get_logger
from workers.logsummary import PeriodicSummary, model_label, quiet_libraries, server_totals, summary_period

LOG = get_logger("workers.joint_inference.edge")
DEFAULT_MAX_BATCH = 64


class BoundedModel:
    """The served joint model, refusing more than ``max_batch`` rows per request and counting
    each request's hard examples as one (:meth:`HardExampleStore.request`)."""

    def __init__(self, served: Any, store: Any, max_batch: int) -> None:
        self._served = served
        self._store = store
        self.max_batch = max_batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._served, name)

    def predict(self, inputs: Mapping[str, np.ndarray]) -> Any:
        check_batch(next(iter(inputs.values())), self.max_batch)
        with self._store.request():
            return self._served.predict(inputs)


def check_batch(tensor: np.ndarray, max_batch: int) -> None:
    """Refuse a tensor of more than ``max_batch`` rows (its first dimension)."""
    rows = int(tensor.shape[0]) if tensor.ndim else 1
    if rows > max_batch:
        raise InvalidInputError(f"batch of {rows} rows exceeds this edge worker's limit of {max_batch} "
                                "(EDGE_MAX_BATCH); split the request")


def build(cfg: WorkerConfig) -> tuple[Any, Any]:
    """The JointInference and the ServedModel that fronts it."""
    from sedna.backend.onnx import OnnxEstimator
    from sedna.core.hard_examples import HardExampleStore
    from sedna.core.joint_inference import JointInference
    from sedna.core.joint_inference.serving import JointServedModel

    if not cfg.model_url:
        raise ConfigError("MODEL_URL is not set: the edge worker needs the shallow model file")
    ctx = Context(cfg.environ)
    max_batch = ctx.get_int("EDGE_MAX_BATCH", DEFAULT_MAX_BATCH)
    if max_batch < 1:
        raise ConfigError(f"env EDGE_MAX_BATCH={max_batch!r} must be >= 1")
    root = Path(cfg.state_dir) / "hard_examples" if cfg.state_dir else Path(
        tempfile.mkdtemp(prefix="sedna-hard-examples-"))
    try:
        store = HardExampleStore(root, capacity=ctx.get_int("HARD_EXAMPLE_CAPACITY", 10000),
                                 max_bytes=ctx.get_int("HARD_EXAMPLE_MAX_BYTES", 1 << 30),
                                 request_share=ctx.get_float("HARD_EXAMPLE_REQUEST_SHARE", 0.25))
    except ValueError as exc:
        raise ConfigError(f"hard example store (HARD_EXAMPLE_*): {exc}") from None
    estimator = OnnxEstimator(output_name=ctx.get_parameters("EDGE_OUTPUT") or None,
                              intra_op_threads=cfg.intra_op_threads, sha256=cfg.model_sha256 or None)
    joint = JointInference(estimator, config=cfg, cloud_timeout=ctx.get_float("BIG_MODEL_TIMEOUT", 1.0),
                           report_period=ctx.get_float("LC_PERIOD", 5.0), store=store)
    model = estimator.model
    assert model is not None
    output = next(s for s in model.outputs if s.name == (estimator.output_name or model.outputs[-1].name))
    served = JointServedModel(joint, model.inputs, output, cfg.service_name or "joint-inference")
    return joint, BoundedModel(served, store, max_batch)


def device_infer(joint: Any, max_batch: int) -> Any:
    """What the MQTT gateway calls per device request: joint inference within the batch limit."""

    def infer(tensor: np.ndarray) -> Any:
        check_batch(tensor, max_batch)
        with joint.store.request():
            return joint.infer(tensor)

    return infer


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
        mqtt = None
        if cfg.mqtt_broker:
            from sedna.service.mqtt import MqttSettings

            mqtt = MqttSettings.from_config(cfg)
    except (ConfigError, ModelLoadError, RegistryError, ValueError) as exc:
        LOG.error("cannot start the edge worker: %s", exc)
        return 2
    from sedna.service.inference import InferenceServer

    gateways: list[Any] = []
    server = InferenceServer([served], host=cfg.edge_bind_ip, rest_port=cfg.edge_bind_port,
                             grpc_port=cfg.edge_grpc_port, token=cfg.edge_token or None, batching=None,
                             sedna_service_name=cfg.service_name or None,
                             ready_checks=[lambda: all(g.healthy() for g in gateways)])
    from sedna.core.joint_inference.stats import StatsCollector

    server.metrics.registry.register(StatsCollector(joint.stats, served.name))
    if mqtt is not None:
        from sedna.service.mqtt import DeviceGateway

        gateway = DeviceGateway(device_infer(joint, served.max_batch), mqtt, cfg.namespace,
                                cfg.service_name or "joint-inference", registry=server.metrics.registry)
        gateways.append(gateway)
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
        for gateway in gateways:
            gateway.stop()
        joint.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
