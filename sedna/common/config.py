"""The worker environment contract (DESIGN §4), read when objects are built.

GM injects env vars into every worker container; :class:`WorkerConfig` turns them
into typed fields. Nothing here is read at import time: call
:meth:`WorkerConfig.from_env` (optionally with an ``environ`` mapping, as tests do)
when a worker object is created. :class:`Context` keeps Sedna's
``get_parameters`` look-up (name as given, then upper-cased) for user parameters
that templates set as env vars (``batch_size``, ``threshold_img``...), callable on the
class as Sedna programs do. :class:`BaseConfig` is Sedna's attribute view of the same
env, for programs written for Sedna; unlike Sedna's it reads at access, not at import.
"""

from __future__ import annotations

import json
import os
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
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


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise ConfigError(f"env {name}={value!r} must be >= 1")
    return value


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
    """How the edge reaches the cloud (``BIG_MODEL_PROTOCOL``): ``grpc``, ``rest`` (OIP over HTTP) or
    ``sedna`` (Sedna's ``POST /{JOB_NAME}/predict``). Unset: ``grpc``, except ``sedna`` when the env
    names only ``BIG_MODEL_PORT`` (what Sedna's controller injects) and no ``BIG_MODEL_GRPC_PORT``."""
    big_model_token: str = ""
    """Bearer token the cloud inference server requires (``BIG_MODEL_TOKEN``); empty disables auth."""
    big_model_max_batch: int = 32
    """Most hard examples the edge sends to the cloud in one request (``BIG_MODEL_MAX_BATCH``);
    1 sends each on its own. Only models whose metadata declares a variable batch dimension batch."""
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
            big_model_protocol=_choice(env, "BIG_MODEL_PROTOCOL", _default_protocol(env), ("grpc", "rest", "sedna")),
            big_model_token=_get(env, "BIG_MODEL_TOKEN", ""),
            big_model_max_batch=_positive(env, "BIG_MODEL_MAX_BATCH", 32),
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


def _default_protocol(env: Mapping[str, str]) -> str:
    """``sedna`` for a Sedna controller's env (a REST ``BIG_MODEL_PORT`` and no gRPC port), else ``grpc``."""
    if _get(env, "BIG_MODEL_PORT") and not _get(env, "BIG_MODEL_GRPC_PORT"):
        return "sedna"
    return "grpc"


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

    def as_sedna(self) -> dict[str, Any]:
        """Sedna's ``{"method": name, "param": {...}}`` dict."""
        return {"method": self.name, "param": dict(self.parameters)}


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


class _EitherMethod:
    """A method callable on the class (Sedna's style) and on an instance (this project's style).

    On the class it runs against ``Context()``: ``os.environ`` read at the moment of the call,
    so a program (or test) that sets env after import sees it. ``on_class``, when given,
    is what the class-level call runs instead (it returns Sedna's shapes).
    """

    def __init__(self, on_instance: Callable[..., Any], on_class: Callable[..., Any] | None = None) -> None:
        self._on_instance = on_instance
        self._on_class = on_class or on_instance
        self.__doc__ = on_instance.__doc__

    def __get__(self, obj: Any, owner: type) -> Callable[..., Any]:
        if obj is None:
            return types.MethodType(self._on_class, owner())
        return types.MethodType(self._on_instance, obj)


class Context:
    """Sedna's parameter look-up over a worker's environment.

    ``Context.get_parameters("batch_size", 32)`` works on the class, as Sedna's examples
    call it (the environment is read at each call, never at import), and on an instance
    over a given mapping, as this project's workers call it (``Context(cfg.environ)``).
    A name is looked up as given, then upper-cased; a missing or empty value gives
    ``default``.

    :meth:`get_algorithm_from_api` returns Sedna's ``{"method": ..., "param": {...}}``
    dict (``{}`` when unset) when called on the class, and a typed
    :class:`AlgorithmSpec` (None when unset) when called on an instance.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    @property
    def environ(self) -> Mapping[str, str]:
        """The mapping looked up: the given one, else ``os.environ`` as it is now."""
        return os.environ if self._environ is None else self._environ

    def _get_parameters(self, name: str, default: Any = None) -> Any:
        """Return env ``name``, else env ``NAME`` (upper-cased), else ``default``."""
        env = self.environ
        for key in (name, str(name).upper()):
            value = env.get(key)
            if value is not None and value != "":
                return value
        return default

    get_parameters = _EitherMethod(_get_parameters)

    def _get_int(self, name: str, default: int) -> int:
        """:meth:`get_parameters` as an integer; a malformed value raises ConfigError naming it."""
        value: int = self._number(name, default, int)
        return value

    def _get_float(self, name: str, default: float) -> float:
        """:meth:`get_parameters` as a number; a malformed value raises ConfigError naming it."""
        value: float = self._number(name, default, float)
        return value

    get_int = _EitherMethod(_get_int)
    get_float = _EitherMethod(_get_float)

    def _number(self, name: str, default: Any, kind: type) -> Any:
        for key in (name, name.upper()):
            raw = self.environ.get(key)
            if raw is not None and str(raw).strip() != "":
                try:
                    return kind(raw)
                except ValueError:
                    what = "an integer" if kind is int else "a number"
                    raise ConfigError(f"env {key}={raw!r} is not {what}") from None
        return default

    def _algorithm_spec(self, algorithm: str = "HEM", **overrides: Any) -> AlgorithmSpec | None:
        """The plug-in named by ``<ALG>_NAME`` with ``<ALG>_PARAMETERS``; ``overrides`` win over the env."""
        name = self._get_parameters(f"{algorithm}_NAME", "") or ""
        if not name:
            return None
        params = parse_parameters(self._get_parameters(f"{algorithm}_PARAMETERS", "") or "",
                                  f"{algorithm}_PARAMETERS")
        params.update(overrides)
        return AlgorithmSpec(name=name, parameters=params)

    def _algorithm_dict(self, algorithm: str = "HEM", **overrides: Any) -> dict[str, Any]:
        """Sedna's shape of :meth:`get_algorithm_from_api`: ``{"method", "param"}``, or ``{}`` when unset."""
        spec = self._algorithm_spec(algorithm, **overrides)
        return spec.as_sedna() if spec is not None else {}

    get_algorithm_from_api = _EitherMethod(_algorithm_spec, _algorithm_dict)


class _Env:
    """A :class:`BaseConfig` attribute that reads env ``name`` at every access (``os.getenv`` rules)."""

    def __init__(self, name: str, default: str | None = None) -> None:
        self.name = name
        self.default = default

    def __get__(self, obj: Any, owner: type) -> str | None:
        return os.environ.get(self.name, self.default)


class _ClassOrInstance:
    """Binds to the instance when called on one, else to the class (for Sedna's ``from_json``)."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self._func = func
        self.__doc__ = func.__doc__

    def __get__(self, obj: Any, owner: type) -> Callable[..., Any]:
        return types.MethodType(self._func, owner if obj is None else obj)


class BaseConfig:
    """Sedna's ``BaseConfig``: the worker env contract as attributes, for Sedna programs.

    Every attribute is read from the environment **when it is accessed**
    (``BaseConfig.train_dataset_url``, or on an instance). Sedna read them once, at
    import, so a program that set env after ``import sedna`` (every test does) saw
    stale values; names and defaults are Sedna's. Assigning an attribute (on the
    class or an instance) or :meth:`from_json` overrides the env for it.
    New code should prefer :class:`WorkerConfig`, which is typed and validated.
    """

    device_category = _Env("DEVICE_CATEGORY", "CPU")
    backend_type = _Env("BACKEND_TYPE", "TENSORFLOW")
    lc_server = _Env("LC_SERVER", "http://127.0.0.1:9100")
    original_dataset_url = _Env("ORIGINAL_DATASET_URL")
    train_dataset_url = _Env("TRAIN_DATASET_URL")
    test_dataset_url = _Env("TEST_DATASET_URL")
    data_path_prefix = _Env("DATA_PATH_PREFIX", "/home/data")
    namespace = _Env("NAMESPACE", "")
    worker_name = _Env("WORKER_NAME", "")
    service_name = _Env("SERVICE_NAME", "")
    job_name = _Env("JOB_NAME", "sedna")
    pretrained_model_url = _Env("PRETRAINED_MODEL_URL", "./")
    model_url = _Env("MODEL_URL")
    model_name = _Env("MODEL_NAME")
    log_level = _Env("LOG_LEVEL", "INFO")
    transmitter = _Env("TRANSMITTER", "ws")
    agg_data_path = _Env("AGG_DATA_PATH", "./")
    s3_endpoint_url = _Env("S3_ENDPOINT_URL", "")
    access_key_id = _Env("ACCESS_KEY_ID", "")
    secret_access_key = _Env("SECRET_ACCESS_KEY", "")
    parameters = _Env("PARAMETERS")

    @property
    def parameter(self) -> dict[str, Any]:
        """``PARAMETERS`` parsed: a ``.yaml``/``.yml``/``.json`` file or a JSON string (Sedna's names)."""
        return load_parameters(self.parameters)

    @classmethod
    def attribute_names(cls) -> list[str]:
        """The env-backed attribute names, sorted."""
        return sorted(name for name, value in vars(BaseConfig).items() if isinstance(value, _Env))

    def dict(self) -> dict[str, Any]:
        """Every attribute's current value."""
        return {name: getattr(self, name) for name in self.attribute_names()}

    to_json = dict

    def get(self, item: str, default: Any = "") -> Any:
        """Sedna's look-up: the attribute, or ``default`` when it is unset or empty."""
        return getattr(self, item, None) or default

    def __getitem__(self, item: str) -> Any:
        return getattr(self, item, None)

    def _from_json(target: Any, data: Mapping[str, Any] | None) -> Any:
        for key, value in (data or {}).items():
            setattr(target, key, value)
        return target

    from_json = _ClassOrInstance(_from_json)
    """Overlay ``data`` on the instance (or, called on the class, on the class as Sedna did)."""


def load_parameters(raw: str | None) -> dict[str, Any]:
    """Sedna's ``PARAMETERS``: a YAML or JSON file path, or a JSON object string; errors name it."""
    if not raw:
        return {}
    text, source = raw, "PARAMETERS"
    if raw.endswith((".yaml", ".yml", ".json")):
        try:
            text = Path(raw).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"PARAMETERS names {raw!r}, which cannot be read: {exc.strerror}") from None
        source = f"PARAMETERS file {raw!r}"
    elif raw.endswith(".py"):
        raise ConfigError(f"PARAMETERS={raw!r}: Python parameter files are not executed; use .yaml or .json")
    try:
        import yaml

        data = yaml.safe_load(text) if raw.endswith((".yaml", ".yml")) else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{source} is not valid {'YAML' if raw.endswith(('.yaml', '.yml')) else 'JSON'}: "
                          f"{exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold an object of name: value, got {type(data).__name__}")
    return data
