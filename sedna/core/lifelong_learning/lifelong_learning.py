"""LifelongLearning: the train, eval and inference workers' entry point (Sedna §4.6).

``LifelongLearning(seen_estimator, unseen_estimator=None, task_definition=..., ...)`` takes
Sedna's ten algorithm choices (``{"method": name, "param": dict or JSON}``; unknown names fail
at construction, naming the argument) and a plain estimator (a class or an instance with
``train``, ``predict``/``predict_proba``, ``save``, ``load``, optionally ``evaluate``):

- :meth:`train` (``HAS_COMPLETED_INITIAL_TRAINING`` unset): define tasks, train one model per
  task group, calibrate the unseen-sample recognizer, store the knowledge base (``OUTPUT_URL``,
  and the KB server when ``KB_SERVER`` is set) and report ``kind=train``;
- :meth:`update` (what :meth:`train` does once initial training is done): load
  ``CLOUD_KB_INDEX``, re-recognise the new labelled samples, fine-tune the tasks they belong to
  and register new tasks for the rest (the update decision), store a new version, report;
- :meth:`evaluate`: score every task group on ``data`` (``MODEL_URLS``' index), mark groups that
  fail ``operator``/``model_threshold`` as not deployed, publish the result (``publish``), report
  ``kind=eval``;
- :meth:`inference` returns ``(result, is_unseen_task, tasks)``: class probabilities in row
  order, ``is_unseen_task`` (a bool for one sample, a bool array for a batch) and the task that
  answered each row. Unseen samples are kept under ``unseen_save_url`` (``.npz``) for labelling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sedna.algorithms.lifelong.artifacts import Task, TaskGroup
from sedna.algorithms.lifelong.samples import TaskSamples, as_samples
from sedna.algorithms.lifelong.update_decision import FINETUNE, NEW, PENDING
from sedna.common.class_factory import ClassType
from sedna.common.config import Context, WorkerConfig
from sedna.common.errors import ConfigError
from sedna.common.log import get_logger
from sedna.core.incremental_stats import InferenceCounters
from sedna.core.lifelong_learning import evaluation, specs
from sedna.core.lifelong_learning.knowledge import Knowledge, estimator_factory
from sedna.core.lifelong_learning.reporting import OWNER_KIND, InferenceReporter, kb_record
from sedna.core.lifelong_learning.serving import Algorithms, EdgeKnowledge, answer
from sedna.core.lifelong_learning.settings import LLSettings
from sedna.core.lifelong_learning.training import calibrate, predicted_labels, train_group
from sedna.service.kb.sources import LocalKB, open_source

LOG = get_logger(__name__)

_DEFAULTS = {
    "task_relationship_discovery": (ClassType.STP, "DefaultTaskRelationDiscover"),
    "task_allocation": (ClassType.STP, "TaskAllocationByNearestTask"),
    "task_remodeling": (ClassType.STP, "DefaultTaskRemodeling"),
    "inference_integrate": (ClassType.STP, "DefaultInferenceIntegrate"),
    "task_update_decision": (ClassType.KM, "UpdateStrategyDefault"),
    "unseen_task_allocation": (ClassType.UTP, "UnseenTaskAllocationDefault"),
    "unseen_sample_recognition": (ClassType.UTD, "SampleRecognitionByDistance"),
    "unseen_sample_re_recognition": (ClassType.UTD, "SampleReRecognitionDefault"),
}


class LifelongLearning:
    """A lifelong-learning worker (see the module docstring)."""

    def __init__(self, seen_estimator: Any, unseen_estimator: Any = None, task_definition: Any = None,
                 task_relationship_discovery: Any = None, task_allocation: Any = None, task_remodeling: Any = None,
                 inference_integrate: Any = None, task_update_decision: Any = None, unseen_task_allocation: Any = None,
                 unseen_sample_recognition: Any = None, unseen_sample_re_recognition: Any = None, *,
                 config: WorkerConfig | None = None, lc_client: Any = None, model_format: str = "npz",
                 report_period: float | None = None, seed: int = 0) -> None:
        self.config = cfg = config or WorkerConfig.from_env()
        self.settings = LLSettings.from_config(cfg)
        if model_format not in ("npz", "npy", "onnx"):
            raise ConfigError(f"model_format={model_format!r} must be npz, npy or onnx")
        self.model_format, self.seed = model_format, seed
        self._new_estimator = estimator_factory(seen_estimator)
        self.unseen_estimator = unseen_estimator
        given = {"task_relationship_discovery": task_relationship_discovery, "task_allocation": task_allocation,
                 "task_remodeling": task_remodeling, "inference_integrate": inference_integrate,
                 "task_update_decision": task_update_decision, "unseen_task_allocation": unseen_task_allocation,
                 "unseen_sample_recognition": unseen_sample_recognition,
                 "unseen_sample_re_recognition": unseen_sample_re_recognition}
        self._explicit = {name for name, value in given.items() if value is not None}
        definition = specs.parse("task_definition", task_definition,
                                 "TaskDefinitionByDataAttr" if self.settings.attribute else "TaskDefinitionByCluster")
        if definition.method == "TaskDefinitionByDataAttr" and "attribute" not in definition.param:
            definition = specs.Choice(definition.field, definition.method,
                                      {**definition.param, "attribute": list(self.settings.attribute)})
        if definition.method == "TaskDefinitionByCluster" and "n_class" not in definition.param:
            definition = specs.Choice(definition.field, definition.method, {**definition.param, "n_class": 1})
        self.choices = {"task_definition": definition}
        for name, (_, default) in _DEFAULTS.items():
            self.choices[name] = specs.parse(name, given[name], default)
        decision = self.choices["task_update_decision"]
        if "min_train_sample" not in decision.param:
            self.choices["task_update_decision"] = specs.Choice(decision.field, decision.method, {
                **decision.param, "min_train_sample": self.settings.min_train_sample})
        self.definition = specs.build(definition, ClassType.STP)
        self.attribute = tuple(self.settings.attribute) or tuple(getattr(self.definition, "attribute", ()))
        self.plugins = {name: specs.build(self.choices[name], kind) for name, (kind, _) in _DEFAULTS.items()}
        if lc_client is None and "LC_SERVER" in cfg.environ:
            from sedna.service.lc_client import LCClient

            lc_client = LCClient(cfg)
        self._lc = lc_client
        self.knowledge: Knowledge | None = None
        self.last_index_url = ""
        self.counters = InferenceCounters()
        self._edge: EdgeKnowledge | None = None
        self._edge_lock = threading.Lock()
        self._watcher: Any = None
        self._report_period = report_period or float(Context(cfg.environ).get_parameters("LC_PERIOD", 5.0))
        self.reporter: InferenceReporter | None = None
        self._algorithms_for: tuple[Knowledge, Algorithms] | None = None

    # -- reports ------------------------------------------------------------------------------------
    def report(self, kind: str, status: str, results: list[dict[str, Any]] | None = None,
               owner_info: dict[str, Any] | None = None) -> bool:
        """Send one report to the LC (False when there is no LC or it refused)."""
        if self._lc is None:
            return False
        from sedna.service.lc_client import LCReport

        return bool(self._lc.send(LCReport(OWNER_KIND, self.config.job_name, kind, status,
                                               owner_info=owner_info, results=results)))

    def _failed(self, kind: str, exc: BaseException) -> None:
        self.report(kind, "failed", owner_info={"error": f"{type(exc).__name__}: {exc}"})

    # -- storing a version -------------------------------------------------------------------------
    def _kb_client(self) -> Any:
        from sedna.service.kb.client import KBClient

        return KBClient(self.settings.kb_server, self.settings.kb_token)

    def _store(self, knowledge: Knowledge, parent: int | None = None) -> str:
        """Write ``knowledge`` into OUTPUT_URL (and the KB server); return the new index location."""
        local = LocalKB(self.settings.output_url)
        doc = knowledge.save(local, self.model_format)
        if self.settings.kb_server:
            from sedna.service.kb.schema import blob_refs

            with self._kb_client() as client:
                for ref in blob_refs(doc):
                    client.upload_file(local.blob_path(ref), ref["format"])
                version = client.update(doc, publish=False)
            url = f"{self.settings.kb_server}/knowledgebase/index/{version}"
        else:
            version = (parent or 0) + 1
            url = str(local.index_path)
        doc["version"] = knowledge.version = version
        local.write_index(doc)
        self.last_index_url = url
        return url

    def _load(self, location: str, with_samples: bool) -> Knowledge:
        local = LocalKB(self.settings.output_url)
        source = open_source(location, self.settings.kb_token)
        try:
            result = local.sync(source)
        finally:
            source.close()
        if result.error and local.read() is None:
            raise ConfigError(f"cannot read the knowledge base index {location!r}: {result.error}")
        return Knowledge.load(local, self._new_estimator, with_samples=with_samples)

    # -- train / update ----------------------------------------------------------------------------
    def train(self, train_data: Any, valid_data: Any = None, post_process: Any = None, **kwargs: Any) -> Any:
        """Initial training (or :meth:`update` once ``HAS_COMPLETED_INITIAL_TRAINING=true``)."""
        if self.settings.has_completed_initial_training:
            return self.update(train_data, valid_data=valid_data, post_process=post_process, **kwargs)
        try:
            samples = as_samples(train_data, self.attribute, "train_data")
            tasks: list[Task] = self.definition(samples)
            groups: list[TaskGroup] = self.plugins["task_relationship_discovery"](tasks)
            groups = self._merge_rare(groups, samples)
            knowledge = Knowledge([], list(self.attribute), self.choices["unseen_sample_recognition"],
                                  self.choices["task_allocation"])
            for i, group in enumerate(groups):
                knowledge.groups.append(train_group(
                    group.entry, [(t.entry, t.meta_attr, t.samples) for t in group.tasks], self._new_estimator(),
                    self.settings.heldout_ratio, self.seed + 101 * i, **kwargs))
            calibrate(knowledge, self.plugins["unseen_sample_recognition"])
            url = self._store(knowledge)
        except Exception as exc:
            self._failed("train", exc)
            raise
        self.knowledge = knowledge
        self.report("train", "completed", results=[kb_record(url, knowledge, labeled_unseen=len(samples))])
        LOG.info("initial training done: %d task groups, knowledge base at %s", len(knowledge.groups), url)
        result = {g.entry: g.metrics for g in knowledge.groups}
        return post_process(result) if callable(post_process) else result

    def _merge_rare(self, groups: list[TaskGroup], samples: TaskSamples) -> list[TaskGroup]:
        """Groups below MIN_TRAIN_SAMPLE share one ``global`` group (Sedna trained them a global model)."""
        big = [g for g in groups if len(g.samples) >= self.settings.min_train_sample]
        rare = [t for g in groups if len(g.samples) < self.settings.min_train_sample for t in g.tasks]
        if rare:
            LOG.info("%d task(s) below MIN_TRAIN_SAMPLE=%d share the group 'global'", len(rare),
                     self.settings.min_train_sample)
            big.append(TaskGroup("global", rare))
        return big

    def update(self, train_data: Any, valid_data: Any = None, post_process: Any = None, **kwargs: Any) -> Any:
        """Update the knowledge base of ``CLOUD_KB_INDEX`` with new labelled samples."""
        try:
            location = self.settings.cloud_kb_index or (f"{self.settings.kb_server}/knowledgebase/index"
                                                        if self.settings.kb_server else self.settings.output_url)
            knowledge = self._load(location, with_samples=True)
            parent = knowledge.version
            samples = as_samples(train_data, self.attribute, "train_data")
            known = knowledge.known_tasks(deployable_only=False)
            allocations = np.asarray(self.plugins["task_allocation"](samples, known))
            unseen_mask = self.plugins["unseen_sample_recognition"](samples, known, allocations)
            seen, unseen = self.plugins["unseen_sample_re_recognition"](samples, unseen_mask)
            updates = self.plugins["task_update_decision"](seen, allocations[~np.asarray(unseen_mask)], unseen,
                                                           known, self.definition)
            labeled_unseen = pending = 0
            for i, item in enumerate(updates):
                seed = self.seed + 1000 * (parent or 0) + 17 * i
                if item.strategy == FINETUNE:
                    old = knowledge.group(item.entry)
                    new = train_group(old.entry, [(item.entry, item.meta_attr or self._attr_of(old, item.entry),
                                                   item.samples)], old.estimator, self.settings.heldout_ratio, seed,
                                      base=old.entry, previous=old, **kwargs)
                    new.deploy = old.deploy
                    knowledge.groups[knowledge.groups.index(old)] = new
                elif item.strategy == NEW:
                    labeled_unseen += len(item.samples)
                    knowledge.groups.append(train_group(item.entry, [(item.entry, item.meta_attr, item.samples)],
                                                        self._new_estimator(), self.settings.heldout_ratio, seed,
                                                        **kwargs))
                elif item.strategy == PENDING:
                    pending += len(item.samples)
            LOG.info("update: %s", ", ".join(f"{u.entry}={u.strategy}({len(u.samples)})" for u in updates) or
                     "nothing to do")
            calibrate(knowledge, self.plugins["unseen_sample_recognition"])
            url = self._store(knowledge, parent)
        except Exception as exc:
            self._failed("train", exc)
            raise
        self.knowledge = knowledge
        self.report("train", "completed", results=[kb_record(url, knowledge, labeled_unseen=labeled_unseen,
                                                             unseen=pending)])
        result = {"version": knowledge.version, "url": url,
                  "updates": [(u.entry, u.strategy, len(u.samples)) for u in updates]}
        return post_process(result) if callable(post_process) else result

    @staticmethod
    def _attr_of(group: Any, entry: str) -> tuple[str, ...]:
        return next((t.meta_attr for t in group.tasks if t.entry == entry), ())

    # -- evaluate ----------------------------------------------------------------------------------
    def evaluate(self, data: Any, post_process: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Score every task group on ``data``, drop failing groups, publish, report ``kind=eval``."""
        try:
            location = (self.config.model_urls[0] if self.config.model_urls else
                        self.settings.cloud_kb_index or self.settings.output_url)
            knowledge = self._load(location, with_samples=False)
            samples = as_samples(data, self.attribute, "data")
            if samples.y is None:
                raise ConfigError("data: evaluation needs labelled samples (y)")
            fns = evaluation.metric_functions(kwargs.get("metrics", self.settings.metrics))
            params = evaluation.metric_params(kwargs.get("metric_param", self.settings.metric_param))
            known = knowledge.known_tasks(deployable_only=False)
            allocations = np.asarray(self.plugins["task_allocation"](samples, known))
            predictions = np.zeros(len(samples), np.int64)
            per_group: dict[str, dict[str, float]] = {}
            for entry, rows in evaluation.group_rows(allocations, [t.entry for t in known]).items():
                if len(rows):
                    predictions[rows] = predicted_labels(knowledge.group(entry).predict_proba(samples.x[rows]))
                    per_group[entry] = evaluation.scores(fns, samples.y[rows], predictions[rows], params)
            overall = evaluation.scores(fns, samples.y, predictions, params)
            dropped = evaluation.drop_decision(per_group, self.settings.operator, self.settings.model_threshold)
            url = self._decide(knowledge, dropped)
        except Exception as exc:
            self._failed("eval", exc)
            raise
        self.knowledge = knowledge
        self.report("eval", "completed", results=[kb_record(url, knowledge, per_group, overall=overall)])
        result = {"overall": overall, "tasks": per_group, "dropped": dropped, "version": knowledge.version,
                  "url": url}
        return post_process(result) if callable(post_process) else result

    def _decide(self, knowledge: Knowledge, dropped: list[str]) -> str:
        for group in knowledge.groups:
            group.deploy = group.deploy and group.entry not in dropped
        if dropped:
            LOG.warning("task group(s) %s will not be deployed: %s %s %s", dropped, self.settings.operator,
                        self.settings.model_threshold, "on the first metric")
        if self.settings.kb_server:
            with self._kb_client() as client:
                version = knowledge.version
                if dropped:
                    version = client.update_task_status(dropped, 0, version=version, publish=False)
                if self.settings.publish and version is not None:
                    client.publish(version)
            knowledge.version = version
            return f"{self.settings.kb_server}/knowledgebase/index/{version}"
        local = LocalKB(self.settings.output_url)
        doc = local.read()
        if doc is not None and dropped:
            for group in doc["seen_task"]["task_groups"]:
                group["deploy"] = group.get("deploy", True) and group["entry"] not in dropped
            local.write_index(doc)
        return str(local.index_path)

    # -- inference ---------------------------------------------------------------------------------
    def edge(self) -> EdgeKnowledge:
        """The edge's knowledge base, loaded (and hot-updated) on first use."""
        with self._edge_lock:
            if self._edge is None:
                location = self.config.model_urls[0] if self.config.model_urls else (
                    f"{self.settings.kb_server}/knowledgebase/index" if self.settings.kb_server else "")
                edge = EdgeKnowledge(location, self.settings.edge_kb_dir, self._new_estimator,
                                     self.settings.kb_token, on_change=self._deployed)
                edge.refresh()
                self._edge = edge
                if self.config.model_hot_update:
                    edge.start(self.settings.kb_poll_period)
                    self._follow_hot_update_config(edge)
                if self._lc is not None:
                    self.reporter = InferenceReporter(self.counters, self._report_counters, self._served,
                                                      self._report_period)
                    self.reporter.start()
            return self._edge

    def _follow_hot_update_config(self, edge: EdgeKnowledge) -> None:
        path = self.config.model_hot_update_config
        if not path:
            return
        from sedna.core.hot_update import HotUpdateWatcher

        self._watcher = HotUpdateWatcher(path, lambda cfg: edge.follow(cfg.model_path),
                                         float(self.config.model_poll_period_seconds))
        self._watcher.start()

    def _deployed(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        if self._edge is not None:  # not the first load: a hot update
            self.report("deploy", "completed", results=[kb_record(self._edge.location, knowledge)],
                        owner_info={"kbVersion": knowledge.version})

    def _served(self) -> tuple[int | None, str]:
        knowledge = self._edge.knowledge if self._edge is not None else None
        return (knowledge.version, "") if knowledge is not None else (None, "")

    def _report_counters(self, owner_info: dict[str, Any]) -> bool:
        return self.report("inference", "running", owner_info=owner_info)

    def inference(self, data: Any = None, post_process: Callable[[Any], Any] | None = None,
                  unseen_sample_postprocess: Callable[[TaskSamples, str], Any] | None = None,
                  **kwargs: Any) -> tuple[Any, Any, list[str]]:
        """``(result, is_unseen_task, tasks)`` for ``data`` (see the module docstring)."""
        edge = self.edge()
        samples = as_samples(data, self.attribute, "data")
        with edge.lock:
            knowledge = edge.knowledge
            assert knowledge is not None
            out = answer(knowledge, samples, self._algorithms(knowledge), self.unseen_estimator, post_process)
        unseen_count = int(out.unseen.sum())
        for flag in out.unseen:
            self.counters.add(bool(flag))
        if unseen_count:
            self._save_unseen(samples.subset(out.unseen), unseen_sample_postprocess)
        is_unseen: Any = bool(out.unseen[0]) if len(samples) == 1 else out.unseen
        return out.result, is_unseen, out.entries

    def _algorithms(self, knowledge: Knowledge) -> Algorithms:
        """The plug-ins serving ``knowledge``: the index's allocation and recognizer unless given explicitly."""
        cached = self._algorithms_for
        if cached is not None and cached[0] is knowledge:
            return cached[1]

        def pick(name: str, from_index: specs.Choice, kind: ClassType) -> Any:
            return self.plugins[name] if name in self._explicit else specs.build(from_index, kind)

        algorithms = Algorithms(pick("task_allocation", knowledge.allocation, ClassType.STP),
                                pick("unseen_sample_recognition", knowledge.recognizer, ClassType.UTD),
                                self.plugins["task_remodeling"], self.plugins["inference_integrate"],
                                self.plugins["unseen_task_allocation"])
        self._algorithms_for = (knowledge, algorithms)
        return algorithms

    def _save_unseen(self, samples: TaskSamples, custom: Callable[[TaskSamples, str], Any] | None) -> None:
        target = self.settings.unseen_save_url
        if custom is not None:
            custom(samples, target)
            return
        from sedna.core.lifelong_learning.samples_io import save_samples

        Path(target).mkdir(parents=True, exist_ok=True)
        save_samples(Path(target) / f"unseen-{time.time_ns()}.npz", samples, np.zeros(len(samples), np.bool_))

    def close(self) -> None:
        """Stop hot-update and report threads (sending the counters still owed)."""
        if self._watcher is not None:
            self._watcher.stop()
        if self._edge is not None:
            self._edge.stop()
        if self.reporter is not None:
            self.reporter.stop()
