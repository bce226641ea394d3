"""JointInference: the shallow edge model answers, hard examples go to the deep cloud model.

Two mining modes, as in Sedna:

- ``inference-then-mining`` (default): the edge model answers, the mining algorithm
  judges its (post-processed) result, hard samples are sent to the cloud and the
  cloud's answer becomes the final one.
- ``mining-then-inference``: the algorithm judges the raw input; hard samples go to
  the cloud only, easy ones to the edge only.

A cloud call that fails or misses its deadline yields the edge result (computed on
demand in the second mode); a :class:`~sedna.core.circuit.CircuitBreaker` stops
waiting on a dead cloud. Every hard example is written to a bounded on-disk store;
those the cloud could not answer are offloaded by a background thread once it is back.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from sedna.algorithms.hard_example_mining.base import BaseFilter
from sedna.backend.adapter import EstimatorAdapter
from sedna.common.class_factory import ClassFactory, ClassType, resolve_callable
from sedna.common.config import AlgorithmSpec, Context, WorkerConfig
from sedna.common.errors import CloudUnavailableError, InferenceError, InvalidInputError
from sedna.common.outcome import JointOutcome
from sedna.core.circuit import CircuitBreaker
from sedna.core.hard_examples import ANSWERED, HardExampleStore
from sedna.core.joint_inference.stats import JointStats, LCReporter

LOG = logging.getLogger(__name__)

INFERENCE_THEN_MINING = "inference-then-mining"
MINING_THEN_INFERENCE = "mining-then-inference"


def build_hem(spec: Any) -> Callable[[Any], bool] | None:
    """A mining filter from a callable, a Sedna ``{"method", "param"}`` dict, or an AlgorithmSpec."""
    if spec is None or callable(spec):
        return spec
    if isinstance(spec, dict) and not spec:  # Sedna's "no algorithm configured"
        return None
    if isinstance(spec, dict):
        spec = AlgorithmSpec(spec.get("method", ""), dict(spec.get("param") or {}))
    if isinstance(spec, AlgorithmSpec):
        return ClassFactory.create(ClassType.HEM, spec.name, **spec.parameters)
    raise TypeError(f"hard_example_mining must be a filter, a dict or an AlgorithmSpec, not {type(spec).__name__}")


class JointInference:
    """Edge-side joint inference (see the module docstring).

    Parameters
    ----------
    estimator:
        The edge model: a class or instance with ``predict`` (and ``load``, called with
        ``MODEL_URL`` when set), e.g. :class:`~sedna.backend.onnx.OnnxEstimator`.
    hard_example_mining:
        A filter, ``{"method": name, "param": {...}}`` or None to read ``HEM_NAME`` /
        ``HEM_PARAMETERS``; with neither, nothing is hard.
    cloud:
        An object with ``predict(data, timeout)``; by default the client
        :func:`~sedna.core.joint_inference.cloud.connect_cloud` picks from the env contract:
        gRPC to ``BIG_MODEL_GRPC_PORT``, or Sedna's REST ``/{JOB_NAME}/predict`` on
        ``BIG_MODEL_PORT`` when the env names only that port (a Sedna controller's env).
    cloud_timeout:
        Seconds a cloud call may take (default ``BIG_MODEL_TIMEOUT``, else 1.0): one attempt
        per hard example, then the edge answers and the circuit breaker counts the failure.
    """

    def __init__(self, estimator: Any, hard_example_mining: Any = None, *, config: WorkerConfig | None = None,
                 cloud: Any = None, cloud_timeout: float | None = None, breaker: CircuitBreaker | None = None,
                 store: HardExampleStore | None = None, mining_mode: str | None = None,
                 report_period: float = 5.0, offload_interval: float = 1.0, lc_client: Any = None) -> None:
        self.config = config or WorkerConfig.from_env()
        cfg = self.config
        self.estimator = EstimatorAdapter(estimator)
        if cfg.model_url and self.estimator.has("load"):
            self.estimator.load(cfg.model_url)
        if hard_example_mining is None:
            hard_example_mining = Context(cfg.environ).get_algorithm_from_api("HEM")
        self.hem = build_hem(hard_example_mining)
        if self.hem is None:
            LOG.warning("no hard example mining algorithm (HEM_NAME unset): every sample stays on the edge")
        self.mining_mode = mining_mode or cfg.mining_mode
        if self.mining_mode not in (INFERENCE_THEN_MINING, MINING_THEN_INFERENCE):
            raise ValueError(f"mining_mode {self.mining_mode!r} is not {INFERENCE_THEN_MINING!r} "
                             f"or {MINING_THEN_INFERENCE!r}")
        self._cloud = cloud
        if cloud_timeout is None:
            cloud_timeout = Context(cfg.environ).get_float("BIG_MODEL_TIMEOUT", 1.0)
        self.cloud_timeout = cloud_timeout
        self.breaker = breaker or CircuitBreaker()
        self._temp_root: str | None = None  # without STATE_DIR: a temporary store, removed by close()
        if store is None and cfg.state_dir:
            store = HardExampleStore(f"{cfg.state_dir}/hard_examples")
        elif store is None:
            self._temp_root = tempfile.mkdtemp(prefix="sedna-hard-examples-")
            store = HardExampleStore(self._temp_root)
        self.store = store
        self.stats = JointStats()
        self._stop = threading.Event()
        self._offload_interval = offload_interval
        self._offloader = threading.Thread(target=self._offload_loop, name="hard-example-offloader", daemon=True)
        self._offloader.start()
        self._reporter: LCReporter | None = None
        if lc_client is not None or "LC_SERVER" in cfg.environ:
            from sedna.service.lc_client import LCClient

            self._reporter = LCReporter(self.stats, lc_client or LCClient(cfg), cfg.owner_name, report_period)
            self._reporter.start()

    @classmethod
    def get_hem_algorithm_from_config(cls, config: WorkerConfig | None = None, **overrides: Any) -> dict[str, Any]:
        """Sedna's ``{"method": HEM_NAME, "param": {...HEM_PARAMETERS}}`` (``{}`` when unset); overrides win."""
        env = (config or WorkerConfig.from_env()).environ
        spec = Context(env).get_algorithm_from_api("HEM", **overrides)
        return spec.as_sedna() if spec is not None else {}

    @property
    def cloud(self) -> Any:
        if self._cloud is None:
            from sedna.core.joint_inference.cloud import connect_cloud

            self._cloud = connect_cloud(self.config)
        return self._cloud

    # -- inference ---------------------------------------------------------------------------------

    def inference(self, data: Any, post_process: Callable[[Any], Any] | str | None = None,
                  **kwargs: Any) -> tuple[bool, Any, Any, Any]:
        """Sedna's API: ``(is_hard_example, final_result, edge_result, cloud_result)``."""
        outcome = self.infer(data, post_process, **kwargs)
        return outcome.is_hard_example, outcome.result, outcome.edge_result, outcome.cloud_result

    def infer(self, data: Any, post_process: Callable[[Any], Any] | str | None = None,
              **kwargs: Any) -> JointOutcome:
        """Answer one sample; never raises because the cloud is unavailable.

        ``post_process`` is a callable or the name of a registered ``ClassType.CALLBACK``.
        """
        post_process = resolve_callable(post_process)
        if self.mining_mode == MINING_THEN_INFERENCE:
            return self._mine_then_infer(data, post_process, **kwargs)
        edge = self._edge(data, post_process, **kwargs)
        hard = bool(self.hem(edge)) if self.hem is not None else False
        if not hard:
            self.stats.count_edge()
            return JointOutcome(False, edge, edge, None, "edge")
        cloud, example_id = self._offload(data, edge, post_process)
        self.stats.add(inferences=1, hard_examples=1)
        if cloud is None:
            return JointOutcome(True, edge, edge, None, "edge", example_id)
        return JointOutcome(True, cloud, edge, cloud, "cloud", example_id)

    def _mine_then_infer(self, data: Any, post_process: Callable[[Any], Any] | None, **kwargs: Any) -> JointOutcome:
        hard = bool(self.hem(data)) if self.hem is not None else False
        if hard:
            cloud, example_id = self._offload(data, None, post_process)
            self.stats.add(inferences=1, hard_examples=1)
            if cloud is not None:
                return JointOutcome(True, cloud, None, cloud, "cloud", example_id)
            edge = self._edge(data, post_process, **kwargs)
            return JointOutcome(True, edge, edge, None, "edge", example_id)
        edge = self._edge(data, post_process, **kwargs)
        self.stats.add(inferences=1)
        return JointOutcome(False, edge, edge, None, "edge")

    def _edge(self, data: Any, post_process: Callable[[Any], Any] | None, **kwargs: Any) -> Any:
        result = self.estimator.predict(data, **kwargs)
        return post_process(result) if post_process else result

    def _offload(self, data: Any, edge: Any, post_process: Callable[[Any], Any] | None) -> tuple[Any, str | None]:
        """Ask the cloud; on failure keep the sample for later. Returns (cloud result or None, example id)."""
        array = np.asarray(data)
        if not self.breaker.allow():
            self.stats.add(fallbacks=1)
            return None, self.store.put(array, edge, reason="circuit open")
        try:
            raw = self.cloud.predict(array, timeout=self.cloud_timeout)
        except InvalidInputError as exc:  # the cloud is up but refuses this sample: not an outage
            LOG.warning("cloud refused a hard example: %s", exc)
            self.stats.add(cloud_failures=1, fallbacks=1)
            return None, self.store.put(array, edge, state="rejected", reason=str(exc))
        except (CloudUnavailableError, InferenceError, OSError) as exc:
            self.breaker.record_failure()
            self.stats.add(cloud_failures=1, fallbacks=1)
            LOG.debug("cloud unavailable, edge answers: %s", exc)
            return None, self.store.put(array, edge, reason=str(exc)[:200])
        self.breaker.record_success()
        self.stats.add(cloud_answers=1)
        cloud = post_process(raw) if post_process else raw
        return cloud, self.store.put(array, edge, state=ANSWERED, cloud_result=cloud)

    # -- hard examples kept while the cloud was away -----------------------------------------------

    def offload_pending(self, limit: int = 64) -> int:
        """Send stored pending hard examples to the cloud; returns how many it answered."""
        sent = 0
        for example in self.store.pending(limit):
            if not self.breaker.allow():
                break
            try:
                raw = self.cloud.predict(example.load(), timeout=self.cloud_timeout)
            except (CloudUnavailableError, InferenceError, OSError):
                self.breaker.record_failure()
                break
            self.breaker.record_success()
            self.store.mark_answered(example.id, raw)
            self.stats.add(uploaded_later=1)
            sent += 1
        return sent

    def _offload_loop(self) -> None:
        while not self._stop.wait(self._offload_interval):
            if self.store.counts()["pending"]:
                try:
                    self.offload_pending()
                except Exception:  # the loop must survive anything a stored file can do
                    LOG.exception("offloading stored hard examples failed; will retry")

    def close(self) -> None:
        """Stop background threads and send a last report."""
        self._stop.set()
        self._offloader.join(timeout=5)
        if self._reporter is not None:
            self._reporter.stop()
        close = getattr(self._cloud, "close", None)
        if close:
            close()
        if self._temp_root is not None:  # without STATE_DIR nothing would find these after a restart
            shutil.rmtree(self._temp_root, ignore_errors=True)
            self._temp_root = None

    def __enter__(self) -> JointInference:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["INFERENCE_THEN_MINING", "MINING_THEN_INFERENCE", "BaseFilter", "JointInference", "build_hem"]
