"""The incremental-learning job loop of one LC (Sedna §3.3, with its bugs fixed).

Each job held by this LC is checked at once when something it depends on changes, and every
``tick`` seconds as a safety net: :meth:`IncrementalLoop.poke` wakes the loop (the GM sent a new
job version or moved a stage), and between ticks the loop looks at the jobs' Dataset index files
every ``watch_period`` seconds (:mod:`.watching`, one ``stat`` each), so appended samples are
seen within ~0.1 s instead of a tick. A check:

1. new Dataset index lines are split by ``trainProb`` into train samples (waiting for the next
   round) and a new eval version (:mod:`.samples`), each sample exactly once; records that fail
   validation are quarantined instead, and reported (``status.quarantinedSamples``) with their lines;
2. the GM's state (annotation, :class:`~sedna.controlplane.il_protocol.JobState`) says what is pending:

   - ``(Train, Waiting)``: at most every ``trainSpec.trigger.checkPeriodSeconds`` (and, after a failed
     round, not before the GM's back-off ends: ``JobState.retry_at``), evaluate the train trigger on
     ``{num_of_samples}``; when it fires (or the ``sedna.io/trigger-train`` annotation
     changed) write ``<outputDir>/data/train/<round>/data.<fmt>`` and report ``train ready``.
     With no sample waiting there is nothing to evaluate and no check period starts, so the
     first samples of a round are judged as soon as they are seen;
   - ``(Eval, Waiting)``: write the eval samples and report ``eval ready`` with the new and the
     deployed model;
   - ``(Deploy, Waiting)``: compare the two eval results (``m`` and ``m_delta``) with the deploy
     trigger; deploy (:mod:`.deploying`) and report ``ready``, or report ``completed`` ("not
     deployed: ..."), or ``failed`` naming a missing metric.

A decision and the progress it implies are stored in one transaction with the outbox entry, so a
restarted LC neither loses a counter nor sends a decision twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from lc.incremental import deploying, samples
from lc.incremental.progress import Progress, meta_key
from lc.incremental.watching import FileWatch
from lc.managers import remote
from lc.periodic import PeriodicWorker
from lc.store import Store
from sedna.algorithms.triggers import MissingMetric, TriggerSpecError, metric_deltas, parse_trigger
from sedna.controlplane import il_protocol as ilp
from sedna.controlplane import kinds
from sedna.controlplane.edgehub import ObjectKey

LOG = logging.getLogger(__name__)
KIND = kinds.INCREMENTAL_LEARNING_JOB.key


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


class IncrementalLoop(PeriodicWorker):
    kind: str = KIND
    """The job kind this loop drives (lifelong learning's loop subclasses this one)."""
    meta_prefix = "incremental"
    """Prefix of the jobs' progress keys in the store."""

    def __init__(self, store: Store, notify: Callable[[], None], tick: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 local_time: Callable[[], dtime] = lambda: datetime.now().time(), watch_period: float = 0.1,
                 wall: Callable[[], float] = time.time, cache_dir: Path | None = None,
                 remote_period: float = 5.0) -> None:
        super().__init__(f"lc-{self.meta_prefix}", tick)
        self._cache = cache_dir if cache_dir is not None else remote.cache_dir_of(store.path, self.meta_prefix)
        self._remote_period = remote_period
        """A remote index is fetched at most this often (seconds); local ones are watched with ``stat``."""
        self._store, self._notify, self._tick, self._watch_period = store, notify, tick, watch_period
        self._clock, self._local_time, self._wall = clock, local_time, wall
        self._next_check: dict[str, float] = {}
        self._files = FileWatch()
        self._indexes: set[str] = set()

    def _pause(self) -> None:
        """Until the tick is over, a poke arrives or a watched index file changes."""
        deadline = time.monotonic() + self._tick
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._wake.wait(min(self._watch_period, remaining)) or self._files.changed():
                return

    def check(self) -> int:
        """One pass over every job; return how many decisions were reported."""
        sent = 0
        self._indexes = set()
        for job in self._store.list_objects(self.kind):
            try:
                sent += self._check_job(job)
            except (samples.IndexUnreadable, samples.SamplesUnwritable) as exc:
                LOG.warning("%s %s/%s: %s", self.kind, job["metadata"].get("namespace"),
                            job["metadata"].get("name"), exc)
        self._files.watch(self._indexes)
        if sent:
            self._notify()
        return sent

    # -- one job ------------------------------------------------------------------------------------
    def _check_job(self, job: dict[str, Any]) -> int:
        meta, spec = job["metadata"], job.get("spec") or {}
        ns, name = meta.get("namespace", "default"), meta["name"]
        key = meta_key(ns, name, self.meta_prefix)
        progress = Progress.from_json(self._store.get_meta(key))
        if progress.uid != meta.get("uid", ""):
            progress = Progress(uid=meta.get("uid", ""))
        dataset = self._store.get_object(ObjectKey(kinds.DATASET.key, ns, _get(spec, "dataset", "name") or ""))
        if dataset is None:
            return 0
        url = str(_get(dataset, "spec", "url") or "")
        self._indexes.add(str(samples.local_path(url) or ""))
        index = samples.read_index(url, str(_get(dataset, "spec", "format") or ""), self._cache, self._remote_period)
        quarantined = progress.quarantined_total
        changed = self._ingest(progress, index, float(_get(spec, "dataset", "trainProb") or 0.0))
        state = ilp.JobState.from_annotations(meta.get("annotations")) or ilp.JobState()
        changed |= self._recover(progress, state)
        report = self._decide(job, progress, state, index, ns)
        sending = [report] if report is not None else []
        if progress.quarantined_total != quarantined:
            sending.append(_quarantine_report(progress, url, state.round))
            LOG.warning("%s %s/%s: quarantined %d index record(s) of %s that fail validation: %s",
                        self.kind, ns, name, progress.quarantined_total - quarantined, url,
                        "; ".join(f"line {line}: {why}" for line, why in
                                  progress.quarantined[-(progress.quarantined_total - quarantined):][:5]))
        if not sending:
            if changed:
                self._store.set_meta(key, progress.to_json())
            return 0
        with self._store.transaction() as db:
            for payload in sending:
                self._store.enqueue(ObjectKey(self.kind, ns, name), payload, db)
            self._store.set_meta(key, progress.to_json(), db)
        if report is not None:
            LOG.info("%s %s/%s: %s %s round %s: %s", self.kind, ns, name, report["phase"], report["status"],
                     report["round"], report.get("message", ""))
        return len(sending)

    def _ingest(self, progress: Progress, index: samples.Index, train_prob: float) -> bool:
        total = len(index.lines)
        if total < progress.consumed:
            LOG.warning("dataset index shrank from %d to %d samples; counting from here", progress.consumed, total)
            progress.consumed = total
            return True
        if total == progress.consumed:
            return False
        train, evaluation = samples.split(progress.consumed, total - progress.consumed, train_prob)
        bad = {p: index.problems[p] for p in range(progress.consumed, total) if p in index.problems}
        progress.quarantine([[problem.line, problem.reason] for _, problem in sorted(bad.items())])
        progress.pending_train += [p for p in train if p not in bad]
        progress.add_eval([p for p in evaluation if p not in bad])
        progress.consumed = total
        return True

    @staticmethod
    def _recover(progress: Progress, state: ilp.JobState) -> bool:
        """Give the samples of a failed round back; forget those of a trained one."""
        if not progress.in_flight_round:
            return False
        if state.trained_round >= progress.in_flight_round:
            progress.in_flight, progress.in_flight_round = [], 0
            return True
        if state.stage == ilp.TRAIN and state.state == ilp.WAITING and state.round >= progress.in_flight_round:
            progress.pending_train = sorted(set(progress.pending_train) | set(progress.in_flight))
            progress.in_flight, progress.in_flight_round = [], 0
            return True
        return False

    def _decide(self, job: dict[str, Any], progress: Progress, state: ilp.JobState, index: samples.Index,
                ns: str) -> dict[str, Any] | None:
        if state.state != ilp.WAITING:
            return None
        if state.stage == ilp.TRAIN:
            return self._train(job, progress, state, index, ns)
        if state.stage == ilp.EVAL and not progress.sent("eval", state.round):
            return self._eval(job, progress, state, index, ns)
        if state.stage == ilp.DEPLOY and not progress.sent("deploy", state.round):
            return self._deploy(job, progress, state, ns)
        return None

    def _train(self, job: dict[str, Any], progress: Progress, state: ilp.JobState, index: samples.Index,
               ns: str) -> dict[str, Any] | None:
        spec, meta = job["spec"], job["metadata"]
        round_ = state.round + 1
        if progress.sent("train", round_):
            return None
        token = (meta.get("annotations") or {}).get(ilp.TRIGGER_TRAIN, "")
        manual = bool(token) and token != progress.manual_train
        trigger = parse_trigger(_get(spec, "trainSpec", "trigger") or {}, "spec.trainSpec.trigger")
        job_key = f"{ns}/{meta['name']}"
        now = self._clock()
        if not manual and not progress.pending_train:
            return None  # nothing to evaluate: the first sample seen is judged at once
        if not manual and self._wall() < state.retry_at:
            return None  # the GM backs off after a failure: samples seen meanwhile join the next round
        if not manual and now < self._next_check.get(job_key, 0.0):
            return None
        self._next_check[job_key] = now + trigger.check_period_seconds
        progress.manual_train = token
        if manual and progress.pending_train:
            message = f"manual trigger {ilp.TRIGGER_TRAIN}={token!r}"
        else:
            decision = trigger.evaluate({"num_of_samples": len(progress.pending_train)}, self._local_time())
            if not decision.fired and progress.pending_train:
                return self._not_fired(job, round_, decision.message)
            if not decision.fired or not progress.pending_train:
                return None
            message = decision.message
        out = str(spec["outputDir"]).rstrip("/")
        suffix = "csv" if index.header is not None else "txt"
        data = samples.write_samples(f"{out}/data/train/{round_}/data.{suffix}", index, progress.pending_train,
                                      self._cache)
        base = state.trained_model or self._model_url(ns, _get(spec, "initialModel", "name"))
        progress.in_flight, progress.in_flight_round = progress.pending_train, round_
        progress.pending_train = []
        progress.sent_phase, progress.sent_round = "train", round_
        return _report("train", "ready", round_, message, {"model": base, "dataURL": data, "dataIndexURL": "",
                                                           "outputDir": f"{out}/train/{round_}"})

    def _not_fired(self, job: dict[str, Any], round_: int, message: str) -> dict[str, Any] | None:
        """What to report when the train trigger of ``round_`` was evaluated and did not fire (nothing here)."""
        return None

    def _eval(self, job: dict[str, Any], progress: Progress, state: ilp.JobState, index: samples.Index,
              ns: str) -> dict[str, Any]:
        spec = job["spec"]
        out = str(spec["outputDir"]).rstrip("/")
        positions = samples.merge_versions(progress.eval_versions)
        message = f"{len(positions)} eval samples"
        if not positions:
            positions = sorted(progress.in_flight)
            message = "no eval samples yet (trainProb is 1?): evaluating on this round's train samples"
        suffix = "csv" if index.header is not None else "txt"
        data = samples.write_samples(f"{out}/data/eval/{state.round}/data.{suffix}", index, positions, self._cache)
        deployed = self._model_url(ns, _get(spec, "evalSpec", "initialEvalModel", "name")) \
            if state.trained_round <= 1 and _get(spec, "evalSpec", "initialEvalModel", "name") else \
            self._model_url(ns, _get(spec, "deploySpec", "model", "name"))
        progress.sent_phase, progress.sent_round = "eval", state.round
        return _report("eval", "ready", state.round, message, {"models": [state.trained_model, deployed],
                                                               "dataURL": data, "dataIndexURL": ""})

    def _deploy(self, job: dict[str, Any], progress: Progress, state: ilp.JobState, ns: str) -> dict[str, Any]:
        spec, meta = job["spec"], job["metadata"]
        progress.sent_phase, progress.sent_round = "deploy", state.round
        token = (meta.get("annotations") or {}).get(ilp.TRIGGER_DEPLOY, "")
        manual = bool(token) and token != progress.manual_deploy
        progress.manual_deploy = token
        results = state.eval_results
        try:
            if len(results) < 2:
                raise ValueError(f"the eval stage reported {len(results)} model result(s), expected 2 "
                                 "(new and deployed)")
            new, old = (dict(r.get("metrics") or {}) for r in results[:2])
            values = metric_deltas(new, old)
            if manual:
                message = f"manual trigger {ilp.TRIGGER_DEPLOY}={token!r}"
            else:
                decision = parse_trigger(_get(spec, "deploySpec", "trigger") or {},
                                         "spec.deploySpec.trigger").evaluate(values, self._local_time())
                message = decision.message
                if not decision.fired:
                    return _report("deploy", "completed", state.round, f"not deployed: {message}", {})
            model = _get(spec, "deploySpec", "model") or {}
            served = deploying.deploy(state.trained_model, self._model_url(ns, model.get("name")),
                                      str(spec["outputDir"]), state.round, bool(model.get("hotUpdateEnabled")),
                                      self._cache)
        except (MissingMetric, TriggerSpecError, ValueError, OSError) as exc:
            return _report("deploy", "failed", state.round, f"deploy trigger: {exc}", {})
        return _report("deploy", "ready", state.round, message, {"model": state.trained_model, "served": served})

    def _model_url(self, ns: str, name: Any) -> str:
        model = self._store.get_object(ObjectKey(kinds.MODEL.key, ns, str(name or "")))
        return str(_get(model, "spec", "url") or "")


def _quarantine_report(progress: Progress, index_url: str, round_: int) -> dict[str, Any]:
    """The samples quarantined so far, for ``status.quarantinedSamples`` (not a decision: it has its own slot)."""
    return {"source": ilp.LC_SOURCE, "phase": "train", "status": None, "round": round_, ilp.QUARANTINE: {
        "index": index_url, "count": progress.quarantined_total,
        "samples": [{"line": line, "reason": reason} for line, reason in progress.quarantined]}}


def _report(phase: str, status: str, round_: int, message: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"source": ilp.LC_SOURCE, "phase": phase, "status": status, "round": round_, "message": message,
            "input": inputs}

