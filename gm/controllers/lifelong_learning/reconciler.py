"""The LifelongLearningJob controller: a knowledge base, the shared stage machine, and a Deploy stage that publishes.

``reconcile(namespace/name)`` validates the job (:mod:`.validation`), keeps its knowledge base
running and asks whether it answers (:mod:`.knowledge_base`), then lets the shared Train -> Eval ->
Deploy machine (:mod:`gm.controllers.stages.machine`) advance as far as the observed world allows.
What is lifelong-learning-specific (:class:`LifelongStages`):

- the stage Pods carry the KB's address and token; a Train Pod updates the newest version a
  completed stage produced (``HAS_COMPLETED_INITIAL_TRAINING``, ``CLOUD_KB_INDEX``), or trains
  the first one; no stage Pod is created while the KB does not answer (the stage stays Ready);
- ``(Deploy, Ready)``, the LC having named the version its eval approved: the controller
  publishes that version in the KB (``Starting``/``PublishPending`` while the KB refuses, retried;
  ``Failed`` after :data:`PUBLISH_LIMIT` s), creates the inference worker if this is the first
  publication (Sedna starts none before), and waits (``Running``) until the worker says it
  serves that version or a newer one -> ``Completed``. A worker that reports a failure,
  crash-loops or stays silent for too long fails the stage, with its error and log.

Status besides the stage history: ``knowledgeBase`` (Sedna's shape) and ``kbVersions``
(:mod:`.status`), ``knowledgeBaseServer`` (where the KB runs and whether it answers),
``waiting`` (while the job waits: for what, in words; absent otherwise), ``inference`` and
``inferenceWorker``. :func:`~.reports.handle_upstream` files edge reports under
``status.edgeReports``; only it writes there.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gm.cluster.interface import DATASET, DEPLOYMENT, LIFELONG_LEARNING_JOB, POD, SERVICE, Cluster, Obj
from gm.controllers.common.problems import Problem, verdict
from gm.controllers.common.writes import Writes
from gm.controllers.lifelong_learning import status as kbstatus
from gm.controllers.lifelong_learning import validation, workers
from gm.controllers.lifelong_learning.knowledge_base import HttpKBAccess, KBAccess, KBState
from gm.controllers.stages.history import condition
from gm.controllers.stages.inference import report_inference_worker
from gm.controllers.stages.machine import REPORT_GRACE_SECONDS, Run, StageMachine
from gm.controllers.stages.reports import edge_report
from gm.runtime.caching import Cache
from gm.runtime.mapping import own_key, owner_keys
from gm.runtime.outcomes import DONE, NamespacedName, Outcome
from gm.runtime.patches import parse_time, utc_now
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings
from gm.workloads.applying import apply_child, get_or_none
from gm.workloads.health import UNHEALTHY, PodState, pod_health
from gm.workloads.logs import LogTail, last_lines, log_tail_for, no_logs
from sedna.controlplane import il_protocol as ilp
from sedna.service.kb.errors import KBError

log = logging.getLogger(__name__)

KIND = LIFELONG_LEARNING_JOB
KB_RETRY = 2.0
"""Seconds before looking again at a KB that does not answer yet."""
KB_RECHECK = 30.0
"""Seconds between looks at a KB that answers (a hung KB changes no object, so nothing else would tell)."""
PUBLISH_LIMIT = 120.0
"""Seconds the Deploy stage keeps retrying to publish before it fails."""
STARTUP_SECONDS = 60.0
"""Allowance for an inference worker to start, on top of its poll periods, before the Deploy stage fails."""


@dataclass
class LifelongRun(Run):
    """A :class:`Run` with the job's KB and the newest version published so far."""

    kb: KBState | None = None
    published: int = 0

    @property
    def ref(self) -> workers.KBRef:
        assert self.kb is not None
        return workers.KBRef(self.kb.url, self.kb.token)


class LifelongMachine(StageMachine):
    """The shared machine, creating no stage Pod while the job's KB does not answer."""

    def ensure(self, run: Run, pod: Obj) -> bool:
        kb = getattr(run, "kb", None)
        stage_pod = (pod["metadata"].get("labels") or {}).get(f"{KIND.label_prefix}/worker-type") in ("train", "eval")
        if stage_pod and (kb is None or not kb.ready):
            run.requeue(KB_RETRY)
            return False
        return super().ensure(run, pod)


class LifelongLearningReconciler:
    """Level-based reconciler of LifelongLearningJobs."""

    def __init__(self, cluster: Cluster, caches: dict[str, Cache], settings: ControllerSettings,
                 kb_access: KBAccess | None = None, now: Callable[[], str] = utc_now,
                 clock: Callable[[], float] = time.time, logs: LogTail = no_logs) -> None:
        self.cluster, self.settings, self.now, self.clock, self.logs = cluster, settings, now, clock, logs
        self.jobs, self.datasets, self.pods = caches[KIND.plural], caches[DATASET.plural], caches[POD.plural]
        self.deployments, self.services = caches[DEPLOYMENT.plural], caches[SERVICE.plural]
        self.kb_access: KBAccess = kb_access or HttpKBAccess()
        self.stages = LifelongStages(self)
        self.machine = LifelongMachine(cluster, KIND, self.pods, settings, self.stages, now, clock, logs)

    def reconcile(self, key: NamespacedName) -> Outcome:
        job = self.jobs.get(key.namespace, key.name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return DONE
        status = job.get("status") or {}
        run = LifelongRun(job, list(status.get("conditions") or []), Writes(self.cluster, KIND, job, self.now),
                          published=int((status.get("kbVersions") or {}).get("published") or 0))
        patch = run.writes.patch
        if not patch.get("startTime"):
            patch.set("startTime", self.now())
        problems = validation.validate(job, lambda n: self.datasets.get(key.namespace, n), self.settings.nodes)
        if problems:
            self.machine.invalid(run, problems)
        else:
            run.kb = self._knowledge_base(run)
            self._kb_status(run, run.kb)
            run.requeue(KB_RECHECK)
            self.stages.ensure_inference(run)
            self.machine.advance(run)
        self.machine.finish(run)
        self._status(run, problems)
        if not problems:
            self._inference_health(run)
        if run.writes.flush():
            self.machine.mirror(job, run.history)
        return run.outcome

    # -- the knowledge base ------------------------------------------------------------------------
    def _knowledge_base(self, run: LifelongRun) -> KBState:
        if self.settings.kb_server:
            return self._shared_kb(run)
        job, ns = run.job, run.namespace
        changes: list[tuple[str, str]] = []
        service, _ = apply_child(self.cluster, self.services, workers.kb_service(job), job, changes)
        name = workers.name_of(job, "kb")
        current = self.deployments.get(ns, name) or get_or_none(self.cluster, DEPLOYMENT, ns, name)
        token = workers.token_of(current) or secrets.token_urlsafe(32)
        apply_child(self.cluster, self.deployments, workers.kb_deployment(job, token, self.settings).obj, job,
                    changes)
        for reason, message in changes:
            run.writes.normal(reason, message)
        if self.settings.wait_for_cluster_ip and not (service.get("spec") or {}).get("clusterIP"):
            run.requeue(KB_RETRY)
            return KBState("", token, True, False, "Starting", f"waiting for Service {name} to get an address")
        url = f"http://{workers.kb_host(service, job)}:{workers.KB_PORT}"
        healths = [pod_health(pod, self.machine.moment()) for pod in self.pods.list(ns, {
            f"{KIND.label_prefix}/name": job["metadata"]["name"], f"{KIND.label_prefix}/worker-type": "kb"})]
        if healths and not any(h.state is PodState.RUNNING for h in healths):
            # a deleted or restarting KB Pod: do not take an earlier (cached) answer for the new Pod's
            problem = "no KB Pod is running (" + "; ".join(h.describe() for h in healths) + ")"
        else:
            problem = self.kb_access.problem(url, token)
        if not problem:
            return KBState(url, token, True, True, "Ready", f"the KB server {name} answers at {url}")
        run.requeue(KB_RETRY)
        for health in healths:
            if health.state in UNHEALTHY:
                lines = last_lines(self.logs, ns, health.pod, health.container)
                return KBState(url, token, True, False, "Failed", f"the KB server {health.describe()}"
                               + (f"; {lines}" if lines else ""))
        return KBState(url, token, True, False, "Starting", f"the KB server {name} does not answer yet: {problem}")

    def _shared_kb(self, run: LifelongRun) -> KBState:
        url, token = self.settings.kb_server, self.settings.kb_token
        meta = run.job["metadata"]
        holder = min(self.jobs.list(), key=lambda j: (j["metadata"].get("creationTimestamp") or "",
                                                      j["metadata"].get("namespace") or "", j["metadata"]["name"]))
        if holder["metadata"]["uid"] != meta["uid"]:
            run.requeue(10.0)
            other = f"{holder['metadata'].get('namespace')}/{holder['metadata']['name']}"
            return KBState(url, token, False, False, "InUse", f"the shared KB server {url} serves job {other}; "
                           "one job uses a shared KB at a time (its published versions are one lineage)")
        problem = self.kb_access.problem(url, token)
        if problem:
            run.requeue(KB_RETRY)
            return KBState(url, token, False, False, "Unreachable", f"the shared KB server: {problem}")
        return KBState(url, token, False, True, "Ready", f"the shared KB server answers at {url}")

    def _kb_status(self, run: LifelongRun, kb: KBState) -> None:
        before = (run.job.get("status") or {}).get("knowledgeBaseServer") or {}
        if before.get("reason") != kb.reason or before.get("url") != kb.url:
            (run.writes.normal if kb.ready or kb.reason == "Starting" else run.writes.warning)(
                f"KnowledgeBase{kb.reason}", kb.message)
        run.writes.patch.set("knowledgeBaseServer", kb.status())

    # -- status ------------------------------------------------------------------------------------
    def _status(self, run: LifelongRun, problems: list[Problem]) -> None:
        job, patch = run.job, run.writes.patch
        status = job.get("status") or {}
        versions = kbstatus.stage_versions(run.history, status.get("kbVersions"))
        served = kbstatus.served_version(job)
        versions.update(published=run.published, served=served or 0)
        patch.set("kbVersions", versions)
        inference = kbstatus.inference_status(job)
        if inference is not None:
            patch.set("inference", inference)
        record = kbstatus.newest_record(run.history)
        previous = status.get("knowledgeBase")
        if record is not None or previous:
            labeled = kbstatus.labeled_unseen(previous, run.history[run.start:])
            seen_before = ((previous or {}).get("samples") or {}).get("numberOfUnseenSample")
            unseen = int((inference["unseenSamples"] if inference is not None else seen_before) or 0)
            if record is not None:
                patch.set("knowledgeBase", kbstatus.knowledge_base(record, labeled, unseen))
            else:
                kept = dict(previous or {})
                kept["samples"] = {"numberOfLabeledUnseenSample": labeled, "numberOfUnseenSample": unseen}
                patch.set("knowledgeBase", kept)
        waiting = self._waiting(run, problems)
        before = status.get("waiting") or {}
        if waiting is not None and waiting["reason"] != before.get("reason"):
            run.writes.normal(waiting["reason"], waiting["message"])
        patch.set("waiting", waiting)

    def _waiting(self, run: LifelongRun, problems: list[Problem]) -> dict[str, str] | None:
        """What the job waits for, in words; None while it is running a stage or has failed."""
        if problems:
            found = verdict(problems)
            return {"reason": found.reason, "message": found.message} if found.waiting else None
        last, kb = run.history[-1], run.kb
        stage, state = last["stage"], last["type"]
        kb_blocks = kb is not None and not kb.ready
        if kb_blocks and (state == ilp.WAITING or (state == ilp.READY and stage != ilp.DEPLOY)):
            assert kb is not None
            return {"reason": f"KnowledgeBase{kb.reason}", "message": kb.message}
        if state != ilp.WAITING:
            return None
        node = self.stages.dataset_node(run.job) or "?"
        round_ = int(run.writes.patch.get("round") or 0)
        if stage == ilp.TRAIN:
            report = edge_report(run.job, "trigger")
            if report.get("round") == round_ + 1 and report.get("message"):
                return {"reason": "TrainTrigger", "message": f"train trigger on {node}: {report['message']}"}
            trigger = (run.job["spec"].get("trainSpec") or {}).get("trigger") or {}
            return {"reason": "TrainTrigger", "message": f"waiting for the LC on {node} to fire the train trigger "
                    f"({_describe(trigger)}) on new samples of Dataset {run.job['spec']['dataset']['name']}"}
        what = "write the eval samples of" if stage == ilp.EVAL else "decide whether to deploy"
        return {"reason": f"{stage}Decision", "message": f"waiting for the LC on {node} to {what} round {round_}"}

    def _inference_health(self, run: LifelongRun) -> None:
        name = workers.name_of(run.job, "infer")
        report_inference_worker(run, name, self.pods.get(run.namespace, name), self.machine.moment(), self.logs)


class LifelongStages:
    """The lifelong-learning parts of the stage machine (:class:`~gm.controllers.stages.machine.StageKind`)."""

    def __init__(self, owner: LifelongLearningReconciler) -> None:
        self.owner = owner

    def dataset(self, job: Obj) -> Obj:
        return self.owner.datasets.get(job["metadata"]["namespace"], job["spec"]["dataset"]["name"]) or {}

    def dataset_node(self, job: Obj) -> str:
        return str((self.dataset(job).get("spec") or {}).get("nodeName") or "")

    def stage_pod(self, run: Run, stage: str, round_: int, inputs: dict[str, Any]) -> Obj:
        assert isinstance(run, LifelongRun)
        owner, job = self.owner, run.job
        dataset_url = str((self.dataset(job).get("spec") or {}).get("url", ""))
        if stage == ilp.TRAIN:
            versions = kbstatus.stage_versions(run.history, (job.get("status") or {}).get("kbVersions"))
            base = max(versions.values())
            return workers.train_pod(job, round_, inputs, run.ref, run.ref.index_url(base) if base else "",
                                     dataset_url, owner.settings)
        return workers.eval_pod(job, round_, inputs, run.ref, dataset_url, owner.settings)

    def ensure_inference(self, run: LifelongRun) -> None:
        """The inference worker, once a version has been published (recreated when its spec changes)."""
        if run.published <= 0 or run.kb is None or not run.kb.url:
            return
        self.owner.machine.ensure(run, workers.infer_pod(run.job, run.ref, self.dataset_node(run.job),
                                                         self.owner.settings))

    def start_deploy(self, run: Run, round_: int, data: dict[str, Any], now: str) -> Obj:
        version = _approved_version(data.get("input") or {})
        if not version:
            return condition(ilp.DEPLOY, ilp.FAILED, "NoVersion", "the LC's deploy decision names no knowledge "
                             f"base version (input: {data.get('input')!r})", data, now)
        data = {**data, "version": version, "since": self.owner.clock()}
        return self._publish(run, data, now) or condition(
            ilp.DEPLOY, ilp.STARTING, "PublishPending", f"publishing knowledge base version {version}: "
            f"{data.get('error', '')}; retrying", data, now)

    def _publish(self, run: Run, data: dict[str, Any], now: str) -> Obj | None:
        """Publish ``data['version']``: the Running entry, or None (the error in ``data['error']``)."""
        assert isinstance(run, LifelongRun) and run.kb is not None
        version = int(data["version"])
        try:
            self.owner.kb_access.publish(run.kb.url, run.kb.token, version)
        except KBError as exc:
            data["error"] = str(exc)
            return None
        run.published = max(run.published, version)
        self.ensure_inference(run)
        name = workers.name_of(run.job, "infer")
        data.pop("error", None)
        return condition(ilp.DEPLOY, ilp.RUNNING, "Published", f"published knowledge base version {version}; "
                         f"waiting for {name} to serve it", {**data, "publishedAt": now}, now)

    def watch_deploy(self, run: Run, state: str, round_: int, data: dict[str, Any], now: str) -> Obj | None:
        owner, job = self.owner, run.job
        version = int(data.get("version") or 0)
        since = float(data.get("since") or owner.clock())
        if state == ilp.STARTING:
            entry = self._publish(run, dict(data), now)
            if entry is None and owner.clock() - since > PUBLISH_LIMIT:
                return condition(ilp.DEPLOY, ilp.FAILED, "PublishFailed", f"could not publish knowledge base "
                                 f"version {version} within {PUBLISH_LIMIT:g}s", data, now)
            return entry
        name = workers.name_of(job, "infer")
        served = kbstatus.served_version(job)
        if served is not None and served >= version:
            return condition(ilp.DEPLOY, ilp.COMPLETED, "Serving", f"{name} serves knowledge base version {served}",
                             data, now)
        pod = owner.pods.get(run.namespace, name)
        failure = _failure_since(job, name, str(data.get("publishedAt") or ""))
        if failure:
            return condition(ilp.DEPLOY, ilp.FAILED, "WorkerFailed", f"{name}: {failure}; "
                             f"{owner.machine.hint(run, name, pod)}", data, now)
        health = pod_health(pod, owner.machine.moment())
        if health.state in (PodState.CRASH_LOOP, PodState.FAILED, PodState.BLOCKED):
            lines = last_lines(owner.logs, run.namespace, name, health.container)
            return condition(ilp.DEPLOY, ilp.FAILED, "PodFailed", f"{health.describe()}"
                             f"{'; ' + lines if lines else ''}; {owner.machine.hint(run, name, pod)}", data, now)
        poll = float(workers.env_value_of(pod, "KB_POLL_PERIOD_SECONDS") or workers.KB_POLL_SECONDS)
        limit = 3 * poll + REPORT_GRACE_SECONDS + STARTUP_SECONDS
        if owner.clock() - since > limit:
            return condition(ilp.DEPLOY, ilp.FAILED, "ServeTimeout", f"{name} did not report serving knowledge base "
                             f"version {version} within {limit:g}s (it serves {served or 'nothing yet'})", data, now)
        return None


def _approved_version(inputs: dict[str, Any]) -> int:
    """The KB version the LC's deploy decision names (``version``, else the number ending its model URL)."""
    value = inputs.get("version")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    models = inputs.get("models") or []
    tail = str(models[0]).rstrip("/").rsplit("/", 1)[-1] if models else ""
    return int(tail) if tail.isdigit() else 0


def _failure_since(job: Obj, worker: str, since: str) -> str:
    """The error of a failure the inference worker reported at or after ``since`` ('' when none)."""
    start = parse_time(since)
    for slot in ("inference", "deploy"):
        report = edge_report(job, slot)
        if report.get("worker") != worker or report.get("status") != "failed":
            continue
        moment = parse_time(str(report.get("time") or ""))
        if start is None or moment is None or moment >= start:
            return str((report.get("info") or {}).get("error") or "the worker reported a failure")
    return ""


def _describe(trigger: dict[str, Any]) -> str:
    parts = []
    cond = trigger.get("condition") or {}
    if cond:
        parts.append(f"{cond.get('metric')} {cond.get('operator')} {cond.get('threshold')}")
    timer = trigger.get("timer") or {}
    if timer:
        parts.append(f"between {timer.get('start')} and {timer.get('end')}")
    if trigger.get("checkPeriodSeconds"):
        parts.append(f"checked every {trigger['checkPeriodSeconds']}s")
    return ", ".join(parts) or "no condition: fires on the first samples"


def setup(manager: Manager, settings: ControllerSettings, kb_access: KBAccess | None = None) -> Controller:
    """Register the controller and its watches with ``manager``."""
    caches = {k.plural: manager.informer(k).cache for k in (KIND, DATASET, POD, DEPLOYMENT, SERVICE)}
    reconciler = LifelongLearningReconciler(manager.cluster, caches, settings, kb_access,
                                            logs=log_tail_for(manager.cluster, settings))
    controller = manager.add_controller("lifelonglearning", reconciler, settings.workers)
    manager.watch(KIND, controller, own_key)
    for child in (POD, DEPLOYMENT, SERVICE):
        manager.watch(child, controller, owner_keys(KIND))
    jobs = caches[KIND.plural]

    def users(obj: Obj) -> list[NamespacedName]:
        ns, name = obj["metadata"].get("namespace") or "", obj["metadata"]["name"]
        return [NamespacedName(ns, j["metadata"]["name"]) for j in jobs.list(ns)
                if ((j.get("spec") or {}).get("dataset") or {}).get("name") == name]

    manager.watch(DATASET, controller, users)
    return controller
