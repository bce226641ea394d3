"""The worker environment contract (DESIGN §4), read when objects are built.

GM injects env vars into every worker container; :class:`WorkerConfig` turns them
into typed fields. Nothing here is read at import time: call
:meth:`WorkerConfig.from_env` (optionally with an ``environ`` mapping, as tests do)
when a worker object is created. :class:`Context` keeps Sedna's
``get_parameters`` look-up (name as given, then upper-cased) for user parameters
that templates set as env vars (``batch_size``, ``threshold_img``...).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sedna.common.errors import ConfigError


def _get(env: Mapping[str, str], name: str, default: str = "") -> str:
    value = env.get(name)
    return default if value is None or value == "" else value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"env {name}={raw!r} is not an integer") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"env {name}={raw!r} is not a number") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"env {name}={raw!r} is not a boolean (use true or false)")


def _urls(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(";") if part.strip()]


@dataclass(frozen=True)
class WorkerConfig:
    """Every env var of the worker contract, typed. Defaults match Sedna's where it has one."""

    namespace: str = "default"
    worker_name: str = ""
    service_name: str = ""
    job_name: str = ""
    lc_server: str = "http://127.0.0.1:9100"
    lc_token: str = ""
    """Bearer token for the Local Controller's worker API (``LC_TOKEN``)."""
    model_url: str = ""
    model_urls: list[str] = field(default_factory=list)
    model_sha256: str = ""
    """Expected sha256 of the model file (``MODEL_SHA256``); empty skips the check."""
    base_model_url: str = ""
    pretrained_model_url: str = ""
    train_dataset_url: str = ""
    test_dataset_url: str = ""
    original_dataset_url: str = ""
    data_path_prefix: str = "/home/data"
    big_model_ip: str = "127.0.0.1"
    big_model_port: int = 5000
    big_model_grpc_port: int = 5001
    big_model_bind_ip: str = "127.0.0.1"
    big_model_bind_port: int = 5000
    big_model_protocol: str = "grpc"
    """How the edge reaches the cloud: ``grpc`` (default) or ``rest`` (``BIG_MODEL_PROTOCOL``)."""
    big_model_token: str = ""
    """Bearer token the cloud inference server requires (``BIG_MODEL_TOKEN``); empty disables auth."""
    edge_bind_ip: str = "127.0.0.1"
    edge_bind_port: int = 5100
    edge_grpc_port: int = 5101
    edge_token: str = ""
    hem_name: str = ""
    hem_parameters: str = ""
    mining_mode: str = "inference-then-mining"
    agg_ip: str = "127.0.0.1"
    agg_port: int = 7363
    agg_bind_ip: str = "127.0.0.1"
    agg_bind_port: int = 7363
    participants_count: int = 1
    model_hot_update: bool = False
    model_poll_period_seconds: int = 60
    model_hot_update_config: str = ""
    mqtt_broker: str = ""
    """``host:port`` of the MQTT broker devices use (``MQTT_BROKER``); empty disables the gateway."""
    mqtt_username: str = ""
    mqtt_password: str = ""
    mqtt_tls_ca: str = ""
    intra_op_threads: int = 0
    """ONNX Runtime intra-op threads (``INTRA_OP_THREADS``); 0 lets ONNX Runtime choose."""
    state_dir: str = ""
    """Where a worker keeps durable state such as hard examples (``STATE_DIR``)."""
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """The mapping this config was read from, for :class:`Context` look-ups."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerConfig:
        """Read the contract from ``environ`` (default ``os.environ``); malformed values raise ConfigError."""
        env = dict(os.environ if environ is None else environ)
        poll = _int(env, "MODEL_POLL_PERIOD_SECONDS", 60)
        return cls(
            namespace=_get(env, "NAMESPACE", "default"),
            worker_name=_get(env, "WORKER_NAME", ""),
            service_name=_get(env, "SERVICE_NAME", ""),
            job_name=_get(env, "JOB_NAME", ""),
            lc_server=_get(env, "LC_SERVER", "http://127.0.0.1:9100"),
            lc_token=_get(env, "LC_TOKEN", ""),
            model_url=_get(env, "MODEL_URL", ""),
            model_urls=_urls(_get(env, "MODEL_URLS", "")),
            model_sha256=_get(env, "MODEL_SHA256", "").lower(),
            base_model_url=_get(env, "BASE_MODEL_URL", ""),
            pretrained_model_url=_get(env, "PRETRAINED_MODEL_URL", ""),
            train_dataset_url=_get(env, "TRAIN_DATASET_URL", ""),
            test_dataset_url=_get(env, "TEST_DATASET_URL", ""),
            original_dataset_url=_get(env, "ORIGINAL_DATASET_URL", ""),
            data_path_prefix=_get(env, "DATA_PATH_PREFIX", "/home/data"),
            big_model_ip=_get(env, "BIG_MODEL_IP", "127.0.0.1"),
            big_model_port=_int(env, "BIG_MODEL_PORT", 5000),
            big_model_grpc_port=_int(env, "BIG_MODEL_GRPC_PORT", 5001),
            big_model_bind_ip=_get(env, "BIG_MODEL_BIND_IP", "127.0.0.1"),
            big_model_bind_port=_int(env, "BIG_MODEL_BIND_PORT", 5000),
            big_model_protocol=_choice(env, "BIG_MODEL_PROTOCOL", "grpc", ("grpc", "rest")),
            big_model_token=_get(env, "BIG_MODEL_TOKEN", ""),
            edge_bind_ip=_get(env, "EDGE_BIND_IP", "127.0.0.1"),
            edge_bind_port=_int(env, "EDGE_BIND_PORT", 5100),
            edge_grpc_port=_int(env, "EDGE_GRPC_PORT", 5101),
            edge_token=_get(env, "EDGE_TOKEN", ""),
            hem_name=_get(env, "HEM_NAME", ""),
            hem_parameters=_get(env, "HEM_PARAMETERS", ""),
            mining_mode=_choice(
                env, "MINING_MODE", "inference-then-mining", ("inference-then-mining", "mining-then-inference")
            ),
            agg_ip=_get(env, "AGG_IP", "127.0.0.1"),
            agg_port=_int(env, "AGG_PORT", 7363),
            agg_bind_ip=_get(env, "AGG_BIND_IP", "127.0.0.1"),
            agg_bind_port=_int(env, "AGG_BIND_PORT", 7363),
            participants_count=_int(env, "PARTICIPANTS_COUNT", 1),
            model_hot_update=_bool(env, "MODEL_HOT_UPDATE", False),
            model_poll_period_seconds=poll if poll >= 1 else 60,
            model_hot_update_config=_get(env, "MODEL_HOT_UPDATE_CONFIG", ""),
            mqtt_broker=_get(env, "MQTT_BROKER", ""),
            mqtt_username=_get(env, "MQTT_USERNAME", ""),
            mqtt_password=_get(env, "MQTT_PASSWORD", ""),
            mqtt_tls_ca=_get(env, "MQTT_TLS_CA", ""),
            intra_op_threads=_int(env, "INTRA_OP_THREADS", 0),
            state_dir=_get(env, "STATE_DIR", ""),
            environ=env,
        )

    @property
    def owner_name(self) -> str:
        """The resource this worker belongs to: SERVICE_NAME for services, else JOB_NAME."""
        return self.service_name or self.job_name


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _get(env, name, default)
    if value not in allowed:
        raise ConfigError(f"env {name}={value!r} is not one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class AlgorithmSpec:
    """A plug-in chosen by name with its parameters (Sedna's ``{"method", "param"}``)."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


def parse_parameters(raw: str, source: str = "HEM_PARAMETERS") -> dict[str, Any]:
    """Parse Sedna's ``[{"key": k, "value": v}, ...]`` (or a plain JSON object) into a dict.

    Values that look like numbers become numbers, as the CRD carries them as strings.
    """
    if not raw or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source} is not valid JSON ({exc.msg} at char {exc.pos}): {raw!r}") from None
    if isinstance(data, dict):
        return {str(k): _coerce(v) for k, v in data.items()}
    if not isinstance(data, list):
        raise ConfigError(f"{source} must be a JSON list of {{'key', 'value'}} objects, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for i, item in enumerate(data):
        if not isinstance(item, dict) or "key" not in item:
            raise ConfigError(f"{source}[{i}] must be an object with 'key' and 'value', got {item!r}")
        out[str(item["key"])] = _coerce(item.get("value"))
    return out


def _coerce(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return value


class Context:
    """Sedna-compatible parameter look-up over a worker's environment."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._env: Mapping[str, str] = dict(os.environ if environ is None else environ)

    def get_parameters(self, name: str, default: Any = None) -> Any:
        """Return env ``name``, else env ``NAME`` (upper-cased), else ``default``."""
        for key in (name, name.upper()):
            if key in self._env:
                return self._env[key]
        return default

    def get_int(self, name: str, default: int) -> int:
        """:meth:`get_parameters` as an integer; a malformed value raises ConfigError naming it."""
        return self._number(name, default, int)

    def get_float(self, name: str, default: float) -> float:
        """:meth:`get_parameters` as a number; a malformed value raises ConfigError naming it."""
        return self._number(name, default, float)

    def _number(self, name: str, default: Any, kind: type) -> Any:
        for key in (name, name.upper()):
            raw = self._env.get(key)
            if raw is not None and str(raw).strip() != "":
                try:
                    return kind(raw)
                except ValueError:
                    what = "an integer" if kind is int else "a number"
                    raise ConfigError(f"env {key}={raw!r} is not {what}") from None
        return default

    def get_algorithm_from_api(self, algorithm: str = "HEM", **overrides: Any) -> AlgorithmSpec | None:
        """Build the spec from ``<ALG>_NAME`` / ``<ALG>_PARAMETERS``; ``overrides`` win over the env."""
        name = self.get_parameters(f"{algorithm}_NAME", "") or ""
        if not name:
            return None
        params = parse_parameters(self.get_parameters(f"{algorithm}_PARAMETERS", "") or "", f"{algorithm}_PARAMETERS")
        params.update(overrides)
        return AlgorithmSpec(name=name, parameters=params)
