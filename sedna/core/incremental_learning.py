"""IncrementalLearning: the train, eval and inference workers' entry point (Sedna §4.6).

``IncrementalLearning(estimator, hard_example_mining=None)`` wraps a plain estimator (see
:mod:`sedna.backend.adapter`; each method gets only the keyword arguments it accepts):

- :meth:`~IncrementalLearning.train` loads ``BASE_MODEL_URL``, trains, saves into
  ``MODEL_URL`` (the round's output directory, as in Sedna, or a file path) and reports
  ``kind=train`` with ``results=[{format, url, metrics}]``;
- :meth:`~IncrementalLearning.evaluate` evaluates **every** model of ``MODEL_URLS`` (new model
  first, then the deployed one) and reports their metrics in that order (``kind=eval``);
- :meth:`~IncrementalLearning.inference` returns ``(result, post_processed, is_hard_example)``;
  with ``MODEL_HOT_UPDATE=true`` a :class:`~sedna.core.hot_update.HotUpdateWatcher` reloads
  the model on every change of ``MODEL_HOT_UPDATE_CONFIG`` and reports ``kind=deploy``; once
  serving, the inference and hard-example counters and the served round go to the LC every
  ``report_period`` seconds when they changed (``kind=inference``,
  :mod:`sedna.core.incremental_stats`).

Reports go to the LC as ownerKind ``incrementallearningjob``, ownerName ``JOB_NAME``. A failed
train or eval is reported (``status=failed`` with the error) before the exception propagates,
so the worker exits non-zero and the job's stage is marked Failed.

Remote models: an ``s3://`` ``MODEL_URL`` (the job's ``outputDir``, passed through by the GM with
the S3 credentials) is saved locally, then uploaded, and the report names the ``s3://`` URL; an
``s3://`` / ``http(s)://`` model to load (``BASE_MODEL_URL``, ``MODEL_URLS``, ``MODEL_URL``) that
the storage initializer did not already fetch is downloaded into a private temporary folder first
(removed by :meth:`~IncrementalLearning.close`), never unpickled.
"""

from __future__ import annotations

import logging
import posixpath
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sedna.backend.adapter import EstimatorAdapter
from sedna.common.class_factory import resolve_callable
from sedna.common.config import Context, WorkerConfig
from sedna.common.errors import ConfigError
from sedna.common.file_ops import FileOps
from sedna.core.hot_update import HotUpdateWatcher, ModelConfig, current_config
from sedna.core.incremental_stats import CounterReporter, InferenceCounters

LOG = logging.getLogger(__name__)

OWNER_KIND = "incrementallearningjob"
DEFAULT_MODEL_FILE = "model.onnx"

Metric = float | list[float]


def normalise_metrics(raw: Any) -> dict[str, Metric]:
    """Metrics as JSON-able floats or lists of floats (numpy scalars and arrays converted)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        return {"score": float(raw)}
    out: dict[str, Metric] = {}
    for name, value in raw.items():
        array = np.asarray(value, dtype=np.float64)
        out[str(name)] = [float(v) for v in array.ravel()] if array.ndim else float(array)
    return out


_SEDNA_FRAMEWORKS = {"TENSORFLOW": ("tensorflow", ".pb"), "KERAS": ("keras", ".pb"), "TORCH": ("pytorch", ".pth"),
                     "MINDSPORE": ("mindspore", ".ckpt")}


def _sedna_model_name(context: Context) -> str | None:
    """Sedna's default file name for ``BACKEND_TYPE`` (None when it is unset)."""
    backend = str(context.get_parameters("BACKEND_TYPE", "") or "").upper()
    if not backend:
        return None
    framework, suffix = _SEDNA_FRAMEWORKS.get(backend, ("", ".pkl"))
    return f"model_finetune_{framework}{suffix}"


def model_info(url: str, metrics: Mapping[str, Metric] | None = None) -> dict[str, Any]:
    """Sedna's ``{format, url, metrics}`` record of one model file."""
    return {"format": Path(url).suffix.lstrip(".") or "dir", "url": url, "metrics": dict(metrics or {})}


class IncrementalLearning:
    """An incremental-learning worker (see the module docstring).

    Parameters
    ----------
    estimator:
        A class or instance with ``train``/``evaluate``/``predict``/``load``/``save`` as needed.
    hard_example_mining:
        A filter, ``{"method", "param"}`` dict or AlgorithmSpec; None reads ``HEM_NAME`` /
        ``HEM_PARAMETERS``; with neither, nothing is hard.
    config:
        The worker environment (default: ``os.environ`` now).
    lc_client:
        Where reports go; default an :class:`~sedna.service.lc_client.LCClient` when ``LC_SERVER`` is set.
    poll_period:
        Seconds between hot-update reads (default ``MODEL_POLL_PERIOD_SECONDS``; the config file is
        also stat'ed every 0.1 s, so a deploy is picked up at once).
    report_period:
        Seconds between inference counter reports to the LC (default the ``LC_PERIOD`` parameter, 5).
    """

    def __init__(self, estimator: Any, hard_example_mining: Any = None, *, config: WorkerConfig | None = None,
                 lc_client: Any = None, poll_period: float | None = None,
                 report_period: float | None = None) -> None:
        from sedna.core.joint_inference.edge import build_hem

        self.config = cfg = config or WorkerConfig.from_env()
        self.estimator = EstimatorAdapter(estimator)
        if hard_example_mining is None:
            hard_example_mining = Context(cfg.environ).get_algorithm_from_api("HEM")
        self.hem: Callable[[Any], bool] | None = build_hem(hard_example_mining)
        if lc_client is None and "LC_SERVER" in cfg.environ:
            from sedna.service.lc_client import LCClient

            lc_client = LCClient(cfg)
        self._lc = lc_client
        self._lock = threading.RLock()
        self._loaded: str | None = None
        self.model_config: ModelConfig | None = None
        self.counters = InferenceCounters()
        period = report_period or float(Context(cfg.environ).get_parameters("LC_PERIOD", 5.0))
        self.reporter = CounterReporter(self.counters, self._report_counters, self._served, period) \
            if self._lc is not None else None
        self._downloads: str | None = None
        self.watcher: HotUpdateWatcher | None = None
        if cfg.model_hot_update:
            if not cfg.model_hot_update_config:
                raise ConfigError("MODEL_HOT_UPDATE=true needs MODEL_HOT_UPDATE_CONFIG (the model_config.json path)")
            self.watcher = HotUpdateWatcher(cfg.model_hot_update_config, self._hot_load,
                                            poll_period or float(cfg.model_poll_period_seconds))
            self.watcher.start()

    @classmethod
    def get_hem_algorithm_from_config(cls, config: WorkerConfig | None = None, **overrides: Any) -> dict[str, Any]:
        """Sedna's ``{"method": HEM_NAME, "param": {...HEM_PARAMETERS}}`` (``{}`` when unset); overrides win."""
        from sedna.core.joint_inference.edge import JointInference

        return JointInference.get_hem_algorithm_from_config(config, **overrides)

    @property
    def inference_count(self) -> int:
        return self.counters.snapshot()[0]

    @property
    def hard_example_count(self) -> int:
        return self.counters.snapshot()[1]

    @property
    def lock(self) -> threading.RLock:
        """Held while a model loads; hold it to run several inferences on one model version."""
        return self._lock

    # -- reports ------------------------------------------------------------------------------------
    def report(self, kind: str, status: str, results: list[dict[str, Any]] | None = None,
               owner_info: dict[str, Any] | None = None) -> bool:
        """Send one report to the LC (False when there is no LC or it refused)."""
        if self._lc is None:
            return False
        from sedna.service.lc_client import LCReport

        return bool(self._lc.send(LCReport(OWNER_KIND, self.config.job_name, kind, status,
                                           owner_info=owner_info, results=results)))

    def _report_counters(self, owner_info: dict[str, Any]) -> bool:
        return self.report("inference", "running", owner_info=owner_info)

    def _served(self) -> tuple[int | None, str]:
        config = self.model_config
        return (config.round, config.update_time) if config is not None else (None, "")

    # -- train -------------------------------------------------------------------------------------
    def model_output_path(self, model_name: str | None = None) -> str:
        """Where :meth:`train` saves, by Sedna's rules where it has them.

        ``MODEL_URL`` itself when it names a file; else the ``model_path`` parameter when set;
        else a file in the ``MODEL_URL`` folder named ``model_name``, else ``MODEL_NAME``, else
        Sedna's ``model_finetune_<framework><ext>`` when ``BACKEND_TYPE`` is set, else
        ``model`` + the base model's suffix (``.onnx`` by default).
        """
        url = self.config.model_url
        if not url:
            raise ConfigError("MODEL_URL is empty: the train worker does not know where to save the model")
        remote = FileOps.is_remote(url)
        target = Path(url)
        last = posixpath.basename(url.rstrip("/"))
        if url.endswith(("/", "\\")) or (not remote and target.is_dir()) or not posixpath.splitext(last)[1]:
            context = Context(self.config.environ)
            explicit = context.get_parameters("model_path")
            if explicit:
                return str(explicit)
            name = model_name or context.get_parameters("MODEL_NAME") or _sedna_model_name(context)
            suffix = Path(self.config.base_model_url).suffix or Path(DEFAULT_MODEL_FILE).suffix
            if remote:
                return f"{url.rstrip('/')}/{name or f'model{suffix}'}"
            return str(target / (name or f"model{suffix}"))
        return url

    def _local_model(self, url: str) -> str:
        """``url`` itself when local; else a downloaded copy in this object's temporary folder."""
        if not FileOps.is_remote(url):
            return url
        if self._downloads is None:
            self._downloads = tempfile.mkdtemp(prefix="sedna-il-models-")
        folder = tempfile.mkdtemp(dir=self._downloads)
        return FileOps.download(url, posixpath.join(folder, posixpath.basename(url.rstrip("/")) or "model"))

    def _save(self, path: str) -> None:
        """Save the estimator to ``path``; a remote path (``s3://``) is saved locally, then uploaded."""
        if not FileOps.is_remote(path):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.estimator.call("save", path)
            return
        folder = tempfile.mkdtemp(prefix="sedna-il-save-")
        try:
            local = posixpath.join(folder, posixpath.basename(path))
            self.estimator.call("save", local)
            FileOps.upload(local, path, clean=False)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def train(self, train_data: Any, valid_data: Any = None, post_process: Any = None, **kwargs: Any) -> Any:
        """Fine-tune from ``BASE_MODEL_URL`` on ``train_data``, save, report; return the estimator."""
        est = self.estimator
        try:
            base = self.config.base_model_url
            if base and est.has("load"):
                est.load(self._local_model(base))
            outcome = est.call("train", train_data, valid_data=valid_data, **kwargs)
            path = self.model_output_path(kwargs.get("model_name"))
            self._save(path)
        except Exception as exc:
            self.report("train", "failed", owner_info={"error": f"{type(exc).__name__}: {exc}"})
            raise
        info = model_info(path, normalise_metrics(outcome) if isinstance(outcome, Mapping) else {})
        self.report("train", "completed", results=[info])
        LOG.info("trained model saved to %s", path)
        callback = resolve_callable(post_process)  # Sedna: applied to the trained estimator
        return callback(est.instance) if callback is not None else est.instance

    # -- evaluate ----------------------------------------------------------------------------------
    def evaluate(self, data: Any, post_process: Any = None, **kwargs: Any) -> list[dict[str, Any]]:
        """Evaluate every model of ``MODEL_URLS`` in order; report and return ``[{format, url, metrics}]``."""
        urls = self.config.model_urls or ([self.config.model_url] if self.config.model_url else [])
        results: list[dict[str, Any]] = []
        try:
            if not urls:
                raise ConfigError("MODEL_URLS is empty: nothing to evaluate")
            callback = resolve_callable(post_process)
            with self._lock:
                for url in urls:
                    local = self._local_model(url)
                    if self.estimator.has("load"):
                        self.estimator.load(local)
                        self._loaded = url
                    metrics = self.estimator.call("evaluate", data, model_path=local, **kwargs)  # Sedna passes it
                    if callback is not None:
                        metrics = callback(metrics)
                    results.append(model_info(url, normalise_metrics(metrics)))
        except Exception as exc:
            self.report("eval", "failed", results=results, owner_info={"error": f"{type(exc).__name__}: {exc}"})
            raise
        self.report("eval", "completed", results=results)
        return results

    # -- inference ---------------------------------------------------------------------------------
    def load(self) -> str | None:
        """Load the serving model now (the hot-update config's model if there is one, else ``MODEL_URL``)."""
        with self._lock:
            config = current_config(self.config.model_hot_update_config) if self.watcher else None
            if config is not None:
                self._load_config(config)
                if self.watcher is not None:
                    self.watcher.loaded = config.signature
            elif self.config.model_url and self.estimator.has("load"):
                self.estimator.load(self._local_model(self.config.model_url))
                self._loaded = self.config.model_url
            else:
                self._loaded = self._loaded or ""
        if self.reporter is not None:  # serving from now on: report the counters
            self.reporter.start()
        return self._loaded

    def inference(self, data: Any, post_process: Any = None, **kwargs: Any) -> tuple[Any, Any, bool]:
        """``(result, post_processed, is_hard_example)`` for ``data``."""
        with self._lock:
            if self._loaded is None:
                self.load()
            result = self.estimator.predict(data, **kwargs)
        callback = resolve_callable(post_process)
        processed = callback(result) if callback is not None else result
        is_hard = bool(self.hem(processed)) if self.hem is not None else False
        self.counters.add(is_hard)
        return result, processed, is_hard

    def _load_config(self, config: ModelConfig) -> None:
        self.estimator.load(config.model_path)
        self._loaded = config.model_path
        self.model_config = config

    def _hot_load(self, config: ModelConfig) -> None:
        info = {"modelUpdateTime": config.update_time, "round": config.round}
        try:
            with self._lock:
                self._load_config(config)
        except Exception as exc:
            LOG.error("hot update to %s failed: %s", config.model_path, exc)
            self.report("deploy", "failed", results=[model_info(config.model_path)],
                        owner_info={**info, "error": f"{type(exc).__name__}: {exc}"})
            return
        LOG.info("hot update: now serving %s (update time %s)", config.model_path, config.update_time)
        self.report("deploy", "completed", results=[model_info(config.model_path)], owner_info=info)

    def close(self) -> None:
        """Stop the hot-update and report threads (sending the counters still owed)."""
        if self.watcher is not None:
            self.watcher.stop()
        if self.reporter is not None:
            self.reporter.stop()
        if self._downloads is not None:
            shutil.rmtree(self._downloads, ignore_errors=True)
            self._downloads = None


__all__ = ["OWNER_KIND", "IncrementalLearning", "model_info", "normalise_metrics"]
