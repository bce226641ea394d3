"""The digits-cameras stream run in one process, for metrics (the benchmark and the tests).

The same SDK calls the workers make -- :meth:`LifelongLearning.train` in the cloud, and
:meth:`~LifelongLearning.inference` at the edge on a local copy of the knowledge base -- with
the KB kept in directories instead of a server, so a run takes seconds. For each new camera
site the edge answers its traffic in batches; the samples it flags as unseen are "sent to the
cloud" and labelled; once ``collect`` have arrived the cloud updates the knowledge base (the
update decision fine-tunes known sites and learns the new one) and the edge switches to the new
version. After every phase the served system is measured on every site's test set (a row of
Ianvs' accuracy matrix), next to a baseline that retrains one global model on every labelled
sample the cloud has received.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from examples.lifelong_learning.digits_cameras.stream import TaskData, build_stream, phases
from sedna.algorithms.lifelong import metrics
from sedna.algorithms.lifelong.samples import TaskSamples
from sedna.common.config import WorkerConfig
from sedna.core.lifelong_learning import LifelongLearning
from workers.lifelong.model import TaskSoftmax

DEFINITION = {"method": "TaskDefinitionByDataAttr", "param": {"attribute": ["site"]}}


@dataclass
class RunResult:
    """What :func:`simulate` measured."""

    matrix: list[list[float]] = field(default_factory=list)
    baseline: list[list[float]] = field(default_factory=list)
    predicted_unseen: list[bool] = field(default_factory=list)
    actual_unseen: list[bool] = field(default_factory=list)
    inferred: int = 0
    sent: int = 0
    versions: list[int] = field(default_factory=list)

    def figures(self) -> dict[str, float]:
        precision, recall = metrics.unseen_precision_recall(self.predicted_unseen, self.actual_unseen)
        return {"bwt": metrics.bwt(self.matrix), "baseline_bwt": metrics.bwt(self.baseline),
                "fwt": metrics.fwt(self.matrix), "baseline_fwt": metrics.fwt(self.baseline),
                "forget_rate": metrics.forget_rate(self.matrix),
                "baseline_forget_rate": metrics.forget_rate(self.baseline),
                "task_avg_acc": metrics.task_avg_acc(self.matrix),
                "baseline_task_avg_acc": metrics.task_avg_acc(self.baseline),
                "cloud_sample_share": metrics.cloud_sample_share(self.inferred, self.sent),
                "unseen_precision": precision, "unseen_recall": recall}


def _learner(workdir: Path, **env: str) -> LifelongLearning:
    base = {"OUTPUT_URL": str(workdir / "cloud"), "EDGE_KB_DIR": str(workdir / "edge"),
            "MODEL_URLS": str(workdir / "cloud" / "index.json"), "heldout_ratio": "0.25", **env}
    return LifelongLearning(TaskSoftmax, task_definition=DEFINITION, config=WorkerConfig.from_env(base))


def _accuracy(predict: Callable[[TaskSamples], np.ndarray], tasks: list[TaskData]) -> list[float]:
    return [float((predict(t.test).argmax(axis=1) == t.test.y).mean()) for t in tasks[1:]]


def _global_model(labelled: list[TaskSamples], epochs: int) -> TaskSoftmax:
    model = TaskSoftmax()
    model.train(TaskSamples.concat(labelled), epochs=epochs)
    return model


def simulate(workdir: str | Path, collect: int = 100, batch: int = 20, phase_size: int = 700,
             new_share: float = 0.3, epochs: int = 30, n_phases: int | None = None,
             log: Callable[[str], Any] = lambda _: None) -> RunResult:
    """Run the stream (``n_phases`` new sites, default all four); see the module docstring."""
    root = Path(workdir)
    tasks = build_stream()
    stream = phases(tasks, phase_size, new_share)[:n_phases]
    out = RunResult()
    _learner(root).train(tasks[0].train, epochs=epochs)
    edge = _learner(root)
    labelled = [tasks[0].train]
    baseline = _global_model(labelled, epochs)
    known = 1

    def served(samples: TaskSamples) -> np.ndarray:
        return np.asarray(edge.inference(samples)[0])

    out.matrix.append(_accuracy(served, tasks))
    out.baseline.append(_accuracy(lambda s, m=baseline: m.predict(s.x), tasks))
    for phase in stream:
        collected: list[TaskSamples] = []
        updated = False
        for start in range(0, len(phase.samples), batch):
            rows = np.arange(start, min(start + batch, len(phase.samples)))
            part = phase.samples.subset(rows)
            _, unseen, _ = edge.inference(part)
            unseen = np.atleast_1d(np.asarray(unseen, np.bool_))
            out.predicted_unseen += unseen.tolist()
            out.actual_unseen += (phase.task_of[rows] >= known).tolist()
            out.inferred += len(rows)
            out.sent += int(unseen.sum())
            if unseen.any() and not updated:
                collected.append(part.subset(unseen))
            if not updated and sum(len(c) for c in collected) >= collect:
                new = TaskSamples.concat(collected)
                result = _learner(root, HAS_COMPLETED_INITIAL_TRAINING="true").train(new, epochs=epochs)
                edge.edge().refresh()
                labelled.append(new)
                baseline = _global_model(labelled, epochs)
                known, updated = known + 1, True
                out.versions.append(int(result["version"]))
                log(f"site {tasks[phase.new].name!r}: {len(new)} flagged samples labelled -> version "
                    f"{result['version']} {result['updates']}")
        out.matrix.append(_accuracy(served, tasks))
        out.baseline.append(_accuracy(lambda s, m=baseline: m.predict(s.x), tasks))
    edge.close()
    return out
