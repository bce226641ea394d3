"""An aggregation server described by the worker environment (names of Sedna's contract plus ours).

Read when :func:`build_server` is called, never at import. Used by the ready-made worker
(``python -m workers.federated.aggregator``) and by Sedna's ``sedna.service.server.AggregationServer``.

======================================  ==========================================================
``AGG_BIND_IP`` / ``AGG_BIND_PORT``     where to listen (127.0.0.1:7363)
``JOB_NAME``                            clients of other jobs are refused
``PARTICIPANTS_COUNT``                  default ``min_available_clients``
``aggregation`` (``aggregation_algorithm``)  strategy name (FedAvg, FedProx, Krum, ...) or JSON
                                        ``{"name": ..., "parameters": {...}}``
``AGGREGATION_PARAMETERS``              strategy parameters (JSON object or Sedna key/value list)
``exit_round``                          rounds to run (default 1)
``ROUND_TIMEOUT_SECONDS``               deadline of one round (600)
``MIN_COMPLETION_RATE``                 share of selected clients that must deliver (0.5)
``REJOIN_GRACE_SECONDS``                wait for missing clients when a round cannot start without them (30)
``TARGET_METRIC`` / ``TARGET_VALUE``    stop early when the evaluation metric reaches it
``MODEL_URL``                           final model: an ``.npz`` path, or a directory (``model.npz``)
``PRETRAINED_MODEL_URL``                starting model (``.npz`` or a directory with ``model.npz``)
``CHECKPOINT_DIR``                      default ``<model dir>/checkpoints``; ``CHECKPOINT_KEEP`` (2)
``AGG_TOKEN``, ``AGG_TLS_CERT``, ``AGG_TLS_KEY``  job token and TLS; ``METRICS_PORT`` Prometheus
``AGG_CLIENT_KEY`` (``_FILE``)          signing key of per-trainer credentials
``AGG_CLIENT_CREDENTIALS`` (``_FILE``)  or JSON ``{client_id: "sha256:<hex>"}`` of them
``MAX_SAMPLES_PER_CLIENT``              refuse updates claiming more samples (0: no cap)
``AGG_CLIENT_SAMPLES``                  JSON ``{client_id: dataset sample count}``: per-client caps
======================================  ==========================================================

A ``*_FILE`` variant names a file holding the value (a mounted Secret); the plain variable wins.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sedna.algorithms.aggregation import Strategy, create_strategy
from sedna.algorithms.aggregation.records import Weights
from sedna.common.config import Context, WorkerConfig, parse_parameters
from sedna.common.errors import ConfigError
from sedna.service.aggregation.checkpoint import load_npz
from sedna.service.aggregation.reports import round_reporter
from sedna.service.aggregation.server import AggregationServer
from sedna.service.aggregation.settings import ServerSettings


def number(ctx: Context, name: str, default: Any, kind: type = float) -> Any:
    """Env ``name`` as ``kind`` (``default`` when unset or empty); a malformed value names the variable."""
    raw = ctx.get_parameters(name, None)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"env {name}={raw!r} is not a{'n integer' if kind is int else ' number'}") from None


def secret(ctx: Context, name: str) -> str:
    """Env ``name``, else the content of the file named by ``<name>_FILE`` (stripped), else ``""``."""
    value = str(ctx.get_parameters(name, "") or "")
    if value:
        return value
    path = str(ctx.get_parameters(f"{name}_FILE", "") or "")
    if not path:
        return ""
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"env {name}_FILE={path!r}: cannot read the file ({exc.strerror})") from None


def json_table(ctx: Context, name: str, kind: type) -> dict[str, Any]:
    """Env ``name`` (or ``<name>_FILE``) as a JSON object of client id -> ``kind``."""
    raw = secret(ctx, name)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"env {name} is not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"env {name} must be a JSON object of client id -> value, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ConfigError(f"env {name}[{key!r}] must be a non-negative integer, got {value!r}")
        if kind is str and not isinstance(value, str):
            raise ConfigError(f"env {name}[{key!r}] must be a string, got {value!r}")
        out[str(key)] = value
    return out


def strategy_spec(ctx: Context, default: str = "FedAvg") -> tuple[str, dict[str, Any]]:
    """Strategy name and parameters from ``aggregation`` (or Sedna's ``aggregation_algorithm``)."""
    raw = str(ctx.get_parameters("aggregation", "") or ctx.get_parameters("aggregation_algorithm", "")
              or default).strip()
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


def settings_from_env(cfg: WorkerConfig, **overrides: Any) -> ServerSettings:
    """The :class:`ServerSettings` of a worker environment; ``overrides`` win."""
    ctx = Context(cfg.environ)
    model_path, default_ckpt = model_paths(cfg.model_url)
    seed = ctx.get_parameters("SEED", None)
    values: dict[str, Any] = dict(
        bind_ip=cfg.agg_bind_ip, bind_port=cfg.agg_bind_port, job_name=cfg.job_name,
        token=secret(ctx, "AGG_TOKEN"),
        tls_cert_file=str(ctx.get_parameters("AGG_TLS_CERT", "") or ""),
        tls_key_file=str(ctx.get_parameters("AGG_TLS_KEY", "") or ""),
        num_rounds=number(ctx, "exit_round", 1, int),
        target_metric=str(ctx.get_parameters("TARGET_METRIC", "") or ""),
        target_value=number(ctx, "TARGET_VALUE", 0.0),
        round_timeout_s=number(ctx, "ROUND_TIMEOUT_SECONDS", 600.0),
        min_completion_rate=number(ctx, "MIN_COMPLETION_RATE", 0.5),
        max_round_attempts=number(ctx, "MAX_ROUND_ATTEMPTS", 5, int),
        rejoin_grace_s=number(ctx, "REJOIN_GRACE_SECONDS", 30.0),
        checkpoint_dir=str(ctx.get_parameters("CHECKPOINT_DIR", "") or default_ckpt),
        checkpoint_keep=number(ctx, "CHECKPOINT_KEEP", 2, int),
        model_path=model_path,
        metrics_port=number(ctx, "METRICS_PORT", 0, int),
        seed=int(seed) if seed not in (None, "") else None,
        client_key=secret(ctx, "AGG_CLIENT_KEY"),
        client_credential_hashes=json_table(ctx, "AGG_CLIENT_CREDENTIALS", str),
        max_samples_per_client=number(ctx, "MAX_SAMPLES_PER_CLIENT", 0, int),
        client_samples=json_table(ctx, "AGG_CLIENT_SAMPLES", int),
    )
    values.update(overrides)
    return ServerSettings(**values)


def strategy_from_env(cfg: WorkerConfig, name: str | None = None, participants: int | None = None) -> Strategy:
    """The strategy of a worker environment (``name`` and ``participants`` override the env)."""
    spec_name, params = strategy_spec(Context(cfg.environ))
    params.setdefault("min_available_clients", max(participants or cfg.participants_count, 1))
    return create_strategy(name or spec_name, **params)


def initial_weights_from_env(cfg: WorkerConfig) -> Weights | None:
    """The pretrained model named by ``PRETRAINED_MODEL_URL``, if any."""
    if not cfg.pretrained_model_url:
        return None
    p = Path(cfg.pretrained_model_url)
    p = p / "model.npz" if p.is_dir() else p
    if not p.exists():
        raise ConfigError(f"PRETRAINED_MODEL_URL {cfg.pretrained_model_url!r}: no such .npz file")
    return load_npz(p)


def build_server(environ: Mapping[str, str] | None = None, *, aggregation: str | None = None,
                 participants_count: int | None = None,
                 on_round: Callable[[dict[str, Any], bool], None] | None = None,
                 **overrides: Any) -> AggregationServer:
    """The server a worker environment describes; keyword arguments override the env.

    Without ``on_round``, a job's rounds are reported to the Local Controller (when ``JOB_NAME``
    is set). With ``TRANSMITTER=s3`` models travel through ``AGG_DATA_PATH``
    (:mod:`sedna.service.aggregation.s3_server`).
    """
    from sedna.service.aggregation.transmit import S3Transmitter

    transmitter = S3Transmitter.from_env(environ)
    if transmitter is not None:
        from sedna.service.aggregation.s3_server import build_s3_server

        return build_s3_server(environ, transmitter, aggregation=aggregation,
                               participants_count=participants_count, on_round=on_round, **overrides)
    cfg = WorkerConfig.from_env(environ)
    strategy = strategy_from_env(cfg, aggregation, participants_count)
    settings = settings_from_env(cfg, **overrides)
    if on_round is None and cfg.job_name:
        on_round = round_reporter(cfg)
    return AggregationServer(strategy, settings, initial_weights=initial_weights_from_env(cfg), on_round=on_round)
