"""The cloud aggregation worker: ``python -m workers.federated.aggregator``.

Configured by env only (names of Sedna's contract plus this project's additions):

================================  ==========================================================
``AGG_BIND_IP`` / ``AGG_BIND_PORT``  where to listen (127.0.0.1:7363)
``JOB_NAME``                      clients of other jobs are refused
``PARTICIPANTS_COUNT``            default ``min_available_clients``
``aggregation``                   strategy name (FedAvg, FedProx, Krum, ...) or JSON
                                  ``{"name": ..., "parameters": {...}}``
``AGGREGATION_PARAMETERS``        strategy parameters (JSON object or Sedna key/value list)
``exit_round``                    rounds to run (default 1)
``ROUND_TIMEOUT_SECONDS``         deadline of one round (600)
``MIN_COMPLETION_RATE``           share of selected clients that must deliver (0.5)
``TARGET_METRIC`` / ``TARGET_VALUE``  stop early when the evaluation metric reaches it
``MODEL_URL``                     final model: an ``.npz`` path, or a directory (``model.npz``)
``PRETRAINED_MODEL_URL``          starting model (``.npz`` or a directory with ``model.npz``)
``CHECKPOINT_DIR``                default ``<model dir>/checkpoints``; ``CHECKPOINT_KEEP`` (2)
``AGG_TOKEN``, ``AGG_TLS_CERT``, ``AGG_TLS_KEY``  auth and TLS; ``METRICS_PORT`` Prometheus
================================  ==========================================================

After every aggregated round the worker reports to its Local Controller (``LC_SERVER``; ownerKind
``federatedlearningjob``, kind ``aggregation``, ownerInfo ``{currentRound, clients, failures,
metrics, startTime, updateTime}`` with the global model's federated evaluation as ``metrics``),
so the round count and accuracy reach the job's and the Model's status.

Exit status: 0 when the job finished, 2 when a round failed too often, 1 on bad config.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sedna.algorithms.aggregation import create_strategy
from sedna.common.config import Context, WorkerConfig, parse_parameters
from sedna.common.errors import ConfigError, SednaError
from sedna.common.log import configure, get_logger
from sedna.core.federated_learning import OWNER_KIND, ReportSender
from sedna.service.aggregation import AggregationServer, RoundFailedError, ServerSettings
from sedna.service.aggregation.checkpoint import load_npz
from sedna.service.lc_client import LCReport

LOG = get_logger("workers.federated.aggregator")


def _number(ctx: Context, name: str, default: float, kind: type = float) -> Any:
    raw = ctx.get_parameters(name, None)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"env {name}={raw!r} is not a{'n integer' if kind is int else ' number'}") from None


def strategy_spec(ctx: Context) -> tuple[str, dict[str, Any]]:
    """Strategy name and parameters from ``aggregation`` / ``AGGREGATION_PARAMETERS``."""
    raw = str(ctx.get_parameters("aggregation", "FedAvg") or "FedAvg").strip()
    params = parse_parameters(str(ctx.get_parameters("AGGREGATION_PARAMETERS", "") or ""), "AGGREGATION_PARAMETERS")
    if raw.startswith("{"):
        try:
            spec = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"env aggregation is not valid JSON ({exc.msg}): {raw!r}") from None
        name = spec.get("name") or spec.get("method")
        if not name:
            raise ConfigError(f"env aggregation JSON needs a 'name': {raw!r}")
        extra = spec.get("parameters", spec.get("param", {}))
        params = {**(extra if isinstance(extra, dict) else parse_parameters(json.dumps(extra))), **params}
        return str(name), params
    return raw, params


def model_paths(model_url: str) -> tuple[str, str]:
    """``(final model path, default checkpoint dir)`` of a MODEL_URL."""
    if not model_url:
        return "", ""
    p = Path(model_url)
    if p.suffix == ".npz":
        return str(p), str(p.parent / "checkpoints")
    return str(p / "model.npz"), str(p / "checkpoints")


def round_info(entry: Mapping[str, Any], started: str) -> dict[str, Any]:
    """The ``ownerInfo`` of one round's report, from the server's history entry."""
    metrics = {k: v for k, v in (entry.get("eval_metrics") or {}).items() if isinstance(v, (int, float, str, bool))}
    loss = entry.get("eval_loss")
    if metrics and isinstance(loss, (int, float)) and "loss" not in metrics:
        metrics["loss"] = float(loss)
    return {"currentRound": int(entry.get("round") or 0), "clients": len(entry.get("clients") or []),
            "failures": len(entry.get("failures") or {}), "metrics": metrics, "startTime": started,
            "updateTime": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}


def round_reporter(cfg: WorkerConfig) -> Callable[[dict[str, Any], bool], None]:
    """A server ``on_round`` listener that reports each round to the LC (best effort, in the background)."""
    sender = ReportSender(cfg)
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())

    def report(entry: dict[str, Any], done: bool) -> None:
        sender.send(LCReport(owner_kind=OWNER_KIND, owner_name=cfg.job_name, kind="aggregation",
                             status="completed" if done else "running", owner_info=round_info(entry, started)),
                    wait=done)

    return report


def build(environ: Mapping[str, str] | None = None) -> AggregationServer:
    """The server a worker environment describes."""
    cfg = WorkerConfig.from_env(environ)
    ctx = Context(cfg.environ)
    name, params = strategy_spec(ctx)
    params.setdefault("min_available_clients", max(cfg.participants_count, 1))
    strategy = create_strategy(name, **params)
    model_path, default_ckpt = model_paths(cfg.model_url)
    seed = ctx.get_parameters("SEED", None)
    settings = ServerSettings(
        bind_ip=cfg.agg_bind_ip, bind_port=cfg.agg_bind_port, job_name=cfg.job_name,
        token=str(ctx.get_parameters("AGG_TOKEN", "") or ""),
        tls_cert_file=str(ctx.get_parameters("AGG_TLS_CERT", "") or ""),
        tls_key_file=str(ctx.get_parameters("AGG_TLS_KEY", "") or ""),
        num_rounds=_number(ctx, "exit_round", 1, int),
        target_metric=str(ctx.get_parameters("TARGET_METRIC", "") or ""),
        target_value=_number(ctx, "TARGET_VALUE", 0.0),
        round_timeout_s=_number(ctx, "ROUND_TIMEOUT_SECONDS", 600.0),
        min_completion_rate=_number(ctx, "MIN_COMPLETION_RATE", 0.5),
        max_round_attempts=_number(ctx, "MAX_ROUND_ATTEMPTS", 5, int),
        rejoin_grace_s=_number(ctx, "REJOIN_GRACE_SECONDS", 30.0),
        checkpoint_dir=str(ctx.get_parameters("CHECKPOINT_DIR", "") or default_ckpt),
        checkpoint_keep=_number(ctx, "CHECKPOINT_KEEP", 2, int),
        model_path=model_path,
        metrics_port=_number(ctx, "METRICS_PORT", 0, int),
        seed=int(seed) if seed not in (None, "") else None,
    )
    initial = None
    if cfg.pretrained_model_url:
        p = Path(cfg.pretrained_model_url)
        p = p / "model.npz" if p.is_dir() else p
        if not p.exists():
            raise ConfigError(f"PRETRAINED_MODEL_URL {cfg.pretrained_model_url!r}: no such .npz file")
        initial = load_npz(p)
    listener = round_reporter(cfg) if cfg.job_name else None
    return AggregationServer(strategy, settings, initial_weights=initial, on_round=listener)


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the aggregation server until the job ends; returns the exit status."""
    configure(environ=environ)
    try:
        server = build(environ)
    except (SednaError, ValueError) as exc:
        LOG.error("bad configuration: %s", exc)
        return 1
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: server.stop_soon())
    try:
        result = server.serve()
    except RoundFailedError as exc:
        LOG.error("%s", exc)
        return 2
    LOG.info("done: %d rounds (%s)", result.rounds, result.reason)
    return 0


if __name__ == "__main__":
    sys.exit(main())
