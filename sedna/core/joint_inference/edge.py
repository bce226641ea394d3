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
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sedna.algorithms.hard_example_mining.base import BaseFilter
from sedna.backend.adapter import EstimatorAdapter
from sedna.common.class_factory import ClassFactory, ClassType, resolve_callable
from sedna.common.config import AlgorithmSpec, Context, WorkerConfig
from sedna.common.errors import InvalidInputError
from sedna.common.outcome import JointOutcome
from sedna.core.circuit import CircuitBreaker
from sedna.core.hard_examples import ANSWERED, HardExampleStore
from sedna.core.joint_inference.offload_batching import is_outage, send_one_by_one
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
            return self._mine_then_infer([data], post_process, **kwargs)[0]
        edge = self._edge(data, post_process, **kwargs)
        if self.hem is None or not self.hem(edge):
            self.stats.count_edge()
            return JointOutcome(False, edge, edge, None, "edge")
        return self._hard([data], [edge], post_process)[0]

    def infer_many(self, samples: Sequence[Any], post_process: Callable[[Any], Any] | str | None = None,
                   **kwargs: Any) -> list[JointOutcome]:
        """Answer each of ``samples`` as :meth:`infer` does; their hard examples go to the cloud together."""
        post_process = resolve_callable(post_process)
        if self.mining_mode == MINING_THEN_INFERENCE:
            return self._mine_then_infer(samples, post_process, **kwargs)
        edges = [self._edge(data, post_process, **kwargs) for data in samples]
        hard = [i for i, edge in enumerate(edges) if self.hem is not None and self.hem(edge)]
        outcomes = [JointOutcome(False, edge, edge, None, "edge") for edge in edges]
        self.stats.count_edge(len(samples) - len(hard))
        for i, outcome in zip(hard, self._hard([samples[i] for i in hard], [edges[i] for i in hard], post_process),
                              strict=True):
            outcomes[i] = outcome
        return outcomes

    def _hard(self, samples: Sequence[Any], edges: Sequence[Any],
              post_process: Callable[[Any], Any] | None) -> list[JointOutcome]:
        """The outcomes of hard examples the edge model answered (inference-then-mining)."""
        self.stats.add(inferences=len(samples), hard_examples=len(samples))
        return [JointOutcome(True, edge, edge, None, "edge", example_id) if cloud is None
                else JointOutcome(True, cloud, edge, cloud, "cloud", example_id)
                for edge, (cloud, example_id) in zip(edges, self._offload(samples, edges, post_process), strict=True)]

    def _mine_then_infer(self, samples: Sequence[Any], post_process: Callable[[Any], Any] | None,
                         **kwargs: Any) -> list[JointOutcome]:
        hard = [i for i, data in enumerate(samples) if self.hem is not None and self.hem(data)]
        answers = dict(zip(hard, self._offload([samples[i] for i in hard], [None] * len(hard), post_process),
                           strict=True))
        outcomes = []
        for i, data in enumerate(samples):
            if i not in answers:
                edge = self._edge(data, post_process, **kwargs)
                self.stats.add(inferences=1)
                outcomes.append(JointOutcome(False, edge, edge, None, "edge"))
                continue
            cloud, example_id = answers[i]
            self.stats.add(inferences=1, hard_examples=1)
            if cloud is not None:
                outcomes.append(JointOutcome(True, cloud, None, cloud, "cloud", example_id))
            else:
                edge = self._edge(data, post_process, **kwargs)
                outcomes.append(JointOutcome(True, edge, edge, None, "edge", example_id))
        return outcomes

    def _edge(self, data: Any, post_process: Callable[[Any], Any] | None, **kwargs: Any) -> Any:
        result = self.estimator.predict(data, **kwargs)
        return post_process(result) if post_process else result

    def _offload(self, samples: Sequence[Any], edges: Sequence[Any],
                 post_process: Callable[[Any], Any] | None) -> list[tuple[Any, str | None]]:
        """Ask the cloud about every sample in one go; keep those it cannot answer for later.
        Returns (cloud result or None, example id) per sample."""
        if not samples:
            return []
        arrays = [np.asarray(data) for data in samples]
        if not self.breaker.allow():
            self.stats.add(fallbacks=len(arrays))
            return [(None, self.store.put(a, e, reason="circuit open")) for a, e in zip(arrays, edges, strict=True)]
        answers = self._ask_cloud(arrays)
        if any(is_outage(a) for a in answers):
            self.breaker.record_failure()
        elif any(not isinstance(a, BaseException) for a in answers):
            self.breaker.record_success()
        return [self._settle(a, e, answer, post_process) for a, e, answer in zip(arrays, edges, answers, strict=True)]

    def _ask_cloud(self, arrays: list[np.ndarray]) -> list[Any]:
        """The cloud's answer, or the exception its request raised, per array."""
        predict_each = getattr(self.cloud, "predict_each", None)
        if predict_each is not None:
            return list(predict_each(arrays, timeout=self.cloud_timeout))
        # a cloud object of the user's that answers one sample at a time
        return send_one_by_one(lambda array: self.cloud.predict(array, timeout=self.cloud_timeout), arrays)

    def _settle(self, array: np.ndarray, edge: Any, answer: Any,
                post_process: Callable[[Any], Any] | None) -> tuple[Any, str | None]:
        """Count and store one hard example by what the cloud said about it."""
        if isinstance(answer, InvalidInputError):  # the cloud is up but refuses this sample: not an outage
            LOG.warning("cloud refused a hard example: %s", answer)
            self.stats.add(cloud_failures=1, fallbacks=1)
            return None, self.store.put(array, edge, state="rejected", reason=str(answer))
        if is_outage(answer):
            self.stats.add(cloud_failures=1, fallbacks=1)
            LOG.debug("cloud unavailable, edge answers: %s", answer)
            return None, self.store.put(array, edge, reason=str(answer)[:200])
        if isinstance(answer, BaseException):
            raise answer
        self.stats.add(cloud_answers=1)
        cloud = post_process(answer) if post_process else answer
        return cloud, self.store.put(array, edge, state=ANSWERED, cloud_result=cloud)

    # -- hard examples kept while the cloud was away -----------------------------------------------

    def offload_pending(self, limit: int = 64) -> int:
        """Send stored pending hard examples to the cloud (together, as one offload); returns how many
        it answered."""
        if not self.breaker.allow():
            return 0
        examples, arrays = [], []
        for example in self.store.pending(limit):
            try:
                arrays.append(example.load())
            except (OSError, ValueError) as exc:
                LOG.warning("stored hard example %s cannot be read, skipped: %s", example.id, exc)
                continue
            examples.append(example)
        if not examples:
            return 0
        answers = self._ask_cloud(arrays)
        if any(is_outage(a) for a in answers):
            self.breaker.record_failure()
        sent = 0
        for example, answer in zip(examples, answers, strict=True):
            if isinstance(answer, BaseException):
                continue  # stays pending; offered again once the cloud answers
            self.store.mark_answered(example.id, answer)
            self.stats.add(uploaded_later=1)
            sent += 1
        if sent:
            self.breaker.record_success()
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
