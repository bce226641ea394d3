"""What the lifelong workers share: algorithm choices from env and the learner they build.

Each of Sedna's ten algorithm arguments can come from the env var of the same name, as a plain
method name or a JSON ``{"method": ..., "param": {...}}`` (``task_definition='{"method":
"TaskDefinitionByDataAttr", "param": {"attribute": ["site"]}}'``).
"""

from __future__ import annotations

import json
from typing import Any

from sedna.common.config import Context, WorkerConfig
from sedna.common.errors import ConfigError

ALGORITHMS = ("task_definition", "task_relationship_discovery", "task_allocation", "task_remodeling",
              "inference_integrate", "task_update_decision", "unseen_task_allocation", "unseen_sample_recognition",
              "unseen_sample_re_recognition")


def choices_from_env(config: WorkerConfig) -> dict[str, Any]:
    """The algorithm arguments set in the env (absent ones are left to the SDK's defaults)."""
    ctx = Context(config.environ)
    out: dict[str, Any] = {}
    for name in ALGORITHMS:
        raw = ctx.get_parameters(name, "")
        if not raw:
            continue
        text = str(raw).strip()
        if text.startswith("{"):
            try:
                out[name] = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"env {name} is not valid JSON ({exc.msg} at char {exc.pos}): {text!r}") from None
        else:
            out[name] = text
    return out


def learner(config: WorkerConfig, **kwargs: Any) -> Any:
    """A LifelongLearning over :class:`~workers.lifelong.model.TaskSoftmax` configured from the env."""
    from sedna.core.lifelong_learning import LifelongLearning
    from workers.lifelong.model import TaskSoftmax

    ctx = Context(config.environ)
    scale = ctx.get_float("input_scale", 1.0 / 16.0)
    estimator = TaskSoftmax(input_scale=scale)
    return LifelongLearning(estimator, config=config, **choices_from_env(config), **kwargs)


def train_params(config: WorkerConfig) -> dict[str, Any]:
    ctx = Context(config.environ)
    return {"epochs": ctx.get_int("epochs", 30), "learning_rate": ctx.get_float("learning_rate", 0.5),
            "batch_size": ctx.get_int("batch_size", 32)}


def report_startup_failure(environ: Any, kind: str, error: BaseException) -> None:
    """Tell the LC why the worker could not start (a bad algorithm name, a missing file), when it can.

    The message names the field (``task_definition.method: ... Did you mean ...?``), so the GM
    can put it in the job's condition; nothing is sent when ``LC_SERVER`` is unset.
    """
    try:
        config = WorkerConfig.from_env(environ)
    except ConfigError:
        return
    if "LC_SERVER" not in config.environ:
        return
    from sedna.core.lifelong_learning import OWNER_KIND
    from sedna.service.lc_client import LCClient, LCReport

    LCClient(config).send(LCReport(OWNER_KIND, config.job_name, kind, "failed",
                                       owner_info={"error": f"{type(error).__name__}: {error}"}))
