"""The lifelong-learning job loop of one LC: incremental learning's loop with the lifelong decisions.

What is shared with :class:`~lc.incremental.loop.IncrementalLoop` (and inherited from it): the
Dataset index is watched, new samples are split by ``trainProb`` (each exactly once, even across a
restart), the train trigger is evaluated on ``{num_of_samples}`` and, when it fires, the round's
samples are written to ``<outputDir>/data/train/<round>/data.<fmt>`` and ``train ready`` is
reported (the GM then gives the Train Pod the knowledge base to update). What differs:

- a train trigger that did not fire is explained to the GM (``status: waiting`` with the trigger's
  own words, e.g. ``num_of_samples = 40 does not satisfy num_of_samples >= 50``), once per change,
  so an accepted job says what it waits for;
- ``(Eval, Waiting)``: the eval samples are written and ``eval ready`` names the one knowledge-base
  version the round trained (Sedna evaluates the KB index alone, not a new/old pair);
- ``(Deploy, Waiting)``: there is no deploy trigger (as in Sedna). When the eval approved at least
  one task group, report ``deploy ready`` with that version (the GM publishes it and the edge
  serves it); when it approved none, ``deploy completed`` ("not deployed: ..."); when it reported
  no knowledge base at all, ``deploy failed`` naming what is missing.
"""

from __future__ import annotations

from typing import Any

from lc.incremental import samples
from lc.incremental.loop import IncrementalLoop, _report
from lc.incremental.progress import Progress
from sedna.controlplane import il_protocol as ilp
from sedna.controlplane import kinds

WAITING = "waiting"


class LifelongLoop(IncrementalLoop):
    """The lifelong-learning jobs this LC holds (see the module docstring)."""

    kind = kinds.LIFELONG_LEARNING_JOB.key
    meta_prefix = "lifelong"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._told: dict[str, str] = {}

    def _not_fired(self, job: dict[str, Any], round_: int, message: str) -> dict[str, Any] | None:
        meta = job["metadata"]
        key = f"{meta.get('namespace', 'default')}/{meta['name']}/{meta.get('uid', '')}/{round_}"
        if self._told.get(key) == message:
            return None
        self._told = {k: v for k, v in self._told.items() if not k.startswith(key.rsplit("/", 1)[0] + "/")}
        self._told[key] = message
        return _report("train", WAITING, round_, message, {})

    def _eval(self, job: dict[str, Any], progress: Progress, state: ilp.JobState, index: samples.Index,
              ns: str) -> dict[str, Any]:
        out = str(job["spec"]["outputDir"]).rstrip("/")
        positions = samples.merge_versions(progress.eval_versions)
        message = f"{len(positions)} eval samples"
        if not positions:
            positions = sorted(progress.in_flight)
            message = "no eval samples yet (trainProb is 1?): evaluating on this round's train samples"
        suffix = "csv" if index.header is not None else "txt"
        data = samples.write_samples(f"{out}/data/eval/{state.round}/data.{suffix}", index, positions, self._cache)
        progress.sent_phase, progress.sent_round = "eval", state.round
        return _report("eval", "ready", state.round, message, {"models": [state.trained_model], "dataURL": data,
                                                               "dataIndexURL": ""})

    def _deploy(self, job: dict[str, Any], progress: Progress, state: ilp.JobState, ns: str) -> dict[str, Any]:
        progress.sent_phase, progress.sent_round = "deploy", state.round
        record = state.eval_results[0] if state.eval_results else None
        if not isinstance(record, dict) or not record.get("url"):
            return _report("deploy", "failed", state.round, "the eval stage reported no knowledge base to deploy", {})
        deployed = record.get("deployed")
        if isinstance(deployed, list) and not deployed:
            return _report("deploy", "completed", state.round, "not deployed: the eval approved no task group "
                           f"of version {record.get('version')}", {})
        version = record.get("version")
        groups = f" (task groups {', '.join(map(str, deployed))})" if isinstance(deployed, list) else ""
        return _report("deploy", "ready", state.round, f"deploy knowledge base version {version}{groups}",
                       {"models": [record["url"]], "version": version})
