"""The lifelong-learning part of the worker env, read when a :class:`LifelongLearning` is created.

Sedna's names: ``KB_SERVER``, ``OUTPUT_URL`` (default ``/tmp``), ``HAS_COMPLETED_INITIAL_TRAINING``,
``CLOUD_KB_INDEX``, ``MODEL_URLS`` (the index to evaluate or serve), ``MIN_TRAIN_SAMPLE`` (10),
``operator`` (``<``), ``model_threshold`` (0.1), ``metrics``, ``metric_param``,
``edge_output_url`` / ``unseen_save_url``. Added here: ``KB_TOKEN``, ``EDGE_KB_DIR``
(default ``<OUTPUT_URL>/edge-kb``; Sedna's ``/var/lib/sedna/kb`` needed root),
``heldout_ratio`` (0.2), ``publish`` (eval publishes the version it approves; default true),
``attribute`` (task attribute column names, comma-separated or JSON), ``KB_POLL_PERIOD_SECONDS``
(how often a hot-updating edge asks for a new version; fractions allowed; default
``MODEL_POLL_PERIOD_SECONDS``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sedna.algorithms.lifelong.params import as_str_list
from sedna.common.config import Context, WorkerConfig
from sedna.common.errors import ConfigError


def _flag(ctx: Context, name: str, default: bool) -> bool:
    raw = str(ctx.get_parameters(name, "") or "").strip().lower()
    if not raw:
        return default
    if raw not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ConfigError(f"env {name}={raw!r} is not a boolean (use true or false)")
    return raw in ("1", "true", "yes", "on")


def _period(ctx: Context, default: float) -> float:
    period = ctx.get_float("KB_POLL_PERIOD_SECONDS", default)
    if period <= 0:
        raise ConfigError(f"env KB_POLL_PERIOD_SECONDS={period!r} must be positive")
    return period


@dataclass(frozen=True)
class LLSettings:
    """Lifelong-learning settings (see the module docstring)."""

    kb_server: str = ""
    kb_token: str = ""
    output_url: str = "/tmp"
    has_completed_initial_training: bool = False
    cloud_kb_index: str = ""
    min_train_sample: int = 10
    operator: str = "<"
    model_threshold: float = 0.1
    metrics: str = ""
    metric_param: str = ""
    edge_kb_dir: str = ""
    unseen_save_url: str = ""
    heldout_ratio: float = 0.2
    publish: bool = True
    attribute: tuple[str, ...] = ()
    kb_poll_period: float = 60.0

    @classmethod
    def from_config(cls, config: WorkerConfig) -> LLSettings:
        ctx = Context(config.environ)
        output = str(ctx.get_parameters("OUTPUT_URL", "") or "/tmp")
        edge_dir = str(ctx.get_parameters("EDGE_KB_DIR", "") or ctx.get_parameters("edge_output_url", "") or
                       os.path.join(output, "edge-kb"))
        ratio = ctx.get_float("heldout_ratio", 0.2)
        if not 0.0 <= ratio < 1.0:
            raise ConfigError(f"env heldout_ratio={ratio!r} must be in [0, 1)")
        try:
            attribute = as_str_list(ctx.get_parameters("attribute", ""), "attribute")
        except ValueError as exc:
            raise ConfigError(f"env {exc}") from None
        return cls(
            kb_server=str(ctx.get_parameters("KB_SERVER", "") or "").rstrip("/"),
            kb_token=str(ctx.get_parameters("KB_TOKEN", "") or ""),
            output_url=output,
            has_completed_initial_training=_flag(ctx, "HAS_COMPLETED_INITIAL_TRAINING", False),
            cloud_kb_index=str(ctx.get_parameters("CLOUD_KB_INDEX", "") or ""),
            min_train_sample=ctx.get_int("MIN_TRAIN_SAMPLE", 10),
            operator=str(ctx.get_parameters("operator", "") or "<"),
            model_threshold=ctx.get_float("model_threshold", 0.1),
            metrics=str(ctx.get_parameters("metrics", "") or ""),
            metric_param=str(ctx.get_parameters("metric_param", "") or ""),
            edge_kb_dir=edge_dir,
            unseen_save_url=str(ctx.get_parameters("unseen_save_url", "") or
                                ctx.get_parameters("UT_SAVED_URL", "") or os.path.join(edge_dir, "unseen_samples")),
            heldout_ratio=ratio,
            publish=_flag(ctx, "publish", True),
            attribute=attribute,
            kb_poll_period=_period(ctx, float(config.model_poll_period_seconds)),
        )
