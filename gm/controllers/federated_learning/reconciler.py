"""The FederatedLearningJob controller.

``reconcile(namespace/name)`` reads the job and its children from the informer caches,
validates what the schema cannot (:mod:`.validation`), applies the aggregation Service and
Pods (:mod:`.workers`) and writes one status patch:

- ``phase``: Pending (waiting for a reference, for the aggregator to run, or while a worker
  crash-loops), Running, Succeeded (the aggregation Pod exited 0) or Failed (invalid spec, or the
  aggregation Pod failed);
- conditions ``Training`` / ``Complete`` / ``Failed`` with reason, message and observedGeneration;
- ``active`` / ``succeeded`` / ``failed`` Pod counts, ``startTime``, ``completionTime``,
  ``observedGeneration``.

Worker health (:mod:`gm.workloads.health`) maps to the job as follows: the aggregator's Pod
Succeeded completes the job; Failed, or crash-looping for :data:`MAX_AGGREGATOR_RESTARTS` restarts
(each restart resumes from its checkpoint, so a few are tolerated), fails it for good and stops the
trainers. Below that, and whenever a training worker crash-loops, the job is Pending with reason
``CrashLoopBackOff``, the restart count, the last exit code and the last log lines: never Running.
Every change of the headline condition is an Event, and so is every new crash.

``currentRound``, ``latestMetrics``, ``aggregation`` and ``trainingWorkers`` belong to the round
reports (:mod:`.reports`); this controller only clears them when the job restarts. A spec
change (a new generation) restarts the job: every Pod is recreated and the round count starts
again. A deleted Pod comes back while the job runs; a finished job is left as it is.

``spec.transmitter`` (:mod:`.transmitter`) adds ``TRANSMITTER`` / ``AGG_DATA_PATH`` and the S3 env
of its ``credentialName`` Secret to every worker; with ``settings.storage_injection`` remote
pretrained-model and dataset URLs are downloaded by the storage-initializer before the workers
start (:mod:`gm.workloads.storage`). A missing Secret, or one without the keys, keeps the job
Pending with a condition naming the URL and the Secret, and no worker is created half-configured;
the controller looks again every :data:`SECRET_RETRY` seconds (GM may read Secrets, not watch them).

Events that lead here: the job itself, its Pods and Service (owner references) and the Datasets
and Models it names, so creating a missing one recovers a Pending job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from gm.cluster.interface import DATASET, FEDERATED_LEARNING_JOB, MODEL, POD, SERVICE, Cluster, Obj
from gm.controllers.common.problems import Problem, verdict
from gm.controllers.common.status import Reason
from gm.controllers.common.writes import Writes
from gm.controllers.federated_learning import transmitter, validation, workers
from gm.runtime.caching import Cache
from gm.runtime.mapping import own_key, owner_keys
from gm.runtime.outcomes import DONE, NamespacedName, Outcome
from gm.runtime.patches import StatusPatch, StrEnum, parse_time, utc_now
from gm.runtime.reconciling import Controller, Manager
from gm.settings import ControllerSettings
from gm.workloads import storage
from gm.workloads.applying import TERMINATING_RETRY, PodAction, apply_child, delete_pod, ensure_pod
from gm.workloads.health import PodHealth, PodState, pod_health
from gm.workloads.logs import LogTail, last_lines, log_tail_for, no_logs

log = logging.getLogger(__name__)

KIND = FEDERATED_LEARNING_JOB


class Phase(StrEnum):
    """``status.phase``."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ConditionType(StrEnum):
    """The job's conditions (Sedna's)."""

    TRAINING = "Training"
    COMPLETE = "Complete"
    FAILED = "Failed"


CONDITIONS = (ConditionType.TRAINING, ConditionType.COMPLETE, ConditionType.FAILED)
FINISHED = (Phase.SUCCEEDED, Phase.FAILED)
MAX_AGGREGATOR_RESTARTS = 5
"""A crash-looping aggregator fails the job after this many restarts (each resumes from its checkpoint)."""
SECRET_RETRY = 10.0
"""Seconds between looks for a missing credential Secret."""
REPORT_FIELDS = ("currentRound", "latestMetrics", "aggregation", "trainingWorkers", "roundHistory")


def terminal(health: PodHealth) -> bool:
    """Whether a worker Pod is done for: Failed, or crash-looping past :data:`MAX_AGGREGATOR_RESTARTS`."""
    return health.state is PodState.FAILED or (health.state is PodState.CRASH_LOOP
                                                and health.restarts >= MAX_AGGREGATOR_RESTARTS)


class FederatedLearningReconciler:
    """Level-based reconciler of FederatedLearningJobs."""

    def __init__(self, cluster: Cluster, caches: dict[str, Cache], settings: ControllerSettings,
                 now: Callable[[], str] = utc_now, logs: LogTail = no_logs) -> None:
        self.cluster, self.settings, self.now, self.logs = cluster, settings, now, logs
        self.jobs, self.datasets = caches[KIND.plural], caches[DATASET.plural]
        self.models, self.pods, self.svcs = caches[MODEL.plural], caches[POD.plural], caches[SERVICE.plural]
        self._secrets: dict[str, Mapping[str, Any] | None] = {}
        """The credential Secrets read by the last :meth:`_storage`."""

    def reconcile(self, key: NamespacedName) -> Outcome:
        job = self.jobs.get(key.namespace, key.name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return DONE  # children go with it: owner references cascade
        generation = int(job["metadata"].get("generation") or 1)
        status = job.get("status") or {}
        writes = Writes(self.cluster, KIND, job, self.now)
        patch = writes.patch
        seen = status.get("observedGeneration")
        if seen is not None and int(seen) != generation:
            self._restart(writes, int(seen), generation)
        patch.set("observedGeneration", generation)
        if not patch.get("startTime"):
            patch.set("startTime", self.now())
        problems = validation.validate(job, lambda n: self.datasets.get(key.namespace, n),
                                       lambda n: self.models.get(key.namespace, n), self.settings.nodes)
        outcome = DONE
        if not problems and not self._finished(patch):  # a finished job needs no credentials
            problems = self._storage(job)
            if problems:
                outcome = Outcome.requeue(SECRET_RETRY)
        pods = self._owned_pods(job)
        moment = parse_time(self.now()) or datetime.now(timezone.utc)
        if problems:
            self._invalid(writes, problems)
            self._delete_stale(job, pods, generation)
        elif not self._finished(patch):
            outcome = self._apply_children(job, pods, writes)
            outcome = outcome.sooner(self._observe(job, writes, self._owned_pods(job, generation), moment))
        self._counts(patch, self._owned_pods(job, generation), moment)
        writes.transition(CONDITIONS, (Reason.CRASH_LOOP,))
        writes.flush()
        return outcome

    # -- steps ------------------------------------------------------------------------------------
    def _restart(self, writes: Writes, old: int, new: int) -> None:
        for name in (*REPORT_FIELDS, "completionTime"):
            writes.patch.set(name, None)
        writes.patch.set("startTime", self.now())
        message = f"the spec changed (generation {old} -> {new}): restarting every worker from round 0"
        _pending(writes.patch, "SpecChanged", message)
        writes.normal("Restarted", message)

    @staticmethod
    def _finished(patch: StatusPatch) -> bool:
        if patch.get("phase") not in FINISHED:
            return False
        failed = patch.condition(ConditionType.FAILED) or {}
        return not (failed.get("status") == "True" and failed.get("reason") == Reason.INVALID_SPEC)

    def _invalid(self, writes: Writes, problems: list[Problem]) -> None:
        patch = writes.patch
        found = verdict(problems)
        if found.waiting and self._finished(patch):
            return  # a Dataset or Model deleted after the job ended changes nothing
        cond = ConditionType.TRAINING if found.waiting else ConditionType.FAILED
        previous = patch.condition(cond) or {}
        if previous.get("message") != found.message or previous.get("reason") != found.reason:
            writes.warning(found.reason, found.message)
        if found.waiting:
            _pending(patch, found.reason, found.message)
        else:
            patch.set_only(ConditionType.FAILED, CONDITIONS, found.reason, found.message)
            patch.set("phase", Phase.FAILED)
            patch.set("completionTime", patch.get("completionTime") or self.now())

    def _pretrained(self, job: Obj) -> Obj | None:
        name = (job["spec"].get("pretrainedModel") or {}).get("name")
        return self.models.get(job["metadata"]["namespace"], name) if name else None

    def _downloads(self, job: Obj, dataset: Obj | None = None) -> list[storage.Mount]:
        if not self.settings.storage_injection:
            return []
        return transmitter.download_mounts(self._pretrained(job), dataset)

    def _storage(self, job: Obj) -> list[Problem]:
        """Unusable credentials of the transmitter and of remote inputs, as problems naming the URL and
        the Secret; the workers wait for them."""
        ns, spec = job["metadata"]["namespace"], job["spec"]
        tx = transmitter.parse(job)
        fields: list[tuple[str, storage.Mount]] = [
            ("spec.transmitter.s3.credentialName", m) for m in transmitter.credential_mount(tx)]
        fields += [("spec.pretrainedModel", m) for m in self._downloads(job)]
        for i, worker in enumerate(spec["trainingWorkers"]):
            dataset = self.datasets.get(ns, worker["dataset"]["name"])
            fields += [(f"spec.trainingWorkers[{i}].dataset", m) for m in self._downloads(job, dataset)
                       if m.env == "TRAIN_DATASET_URL"]
        self._secrets = storage.read_secrets(self.cluster.get, ns, [m for _, m in fields])
        problems = []
        for field, mount in fields:
            for url in mount.urls:
                try:
                    storage.s3_env(self._secrets.get(mount.credential), mount.credential, url)
                except storage.StorageError as exc:
                    problems.append(Problem(field, str(exc), waiting=True))
        return problems

    def _apply_children(self, job: Obj, pods: dict[str, Obj], writes: Writes) -> Outcome:
        ns, spec = job["metadata"]["namespace"], job["spec"]
        model = self.models.get(ns, spec["aggregationWorker"]["model"]["name"]) or {}
        pretrained_model = self._pretrained(job)
        pretrained = str(((pretrained_model or {}).get("spec") or {}).get("url") or "")
        tx_env = transmitter.env(transmitter.parse(job), self._secrets)
        inputs = workers.Inputs(tx_env, self._secrets, self._downloads(job))
        changes: list[tuple[str, str]] = []
        service, _ = apply_child(self.cluster, self.svcs, workers.aggregation_service(job), job, changes)
        for reason, message in changes:
            writes.normal(reason, message)
        plans = [workers.aggregation_pod(job, model, pretrained, self.settings, inputs)]
        outcome = DONE
        if not (service.get("spec") or {}).get("clusterIP"):
            outcome = Outcome.requeue(1.0)  # the local backend allocates it asynchronously; trainers wait for it
        else:
            host = workers.aggregator_host(service, job)
            for i, worker in enumerate(spec["trainingWorkers"]):
                dataset = self.datasets.get(ns, worker["dataset"]["name"]) or {}
                own = workers.Inputs(tx_env, self._secrets, self._downloads(job, dataset))
                plans.append(workers.trainer_pod(job, i, dataset, model, pretrained, host, self.settings, own))
        for plan in plans:
            name = plan.obj["metadata"]["name"]
            action = ensure_pod(self.cluster, self.pods, plan.obj, (workers.GENERATION_ANNOTATION,))
            if action is PodAction.WAITING:  # the previous incarnation is still terminating
                outcome = outcome.sooner(Outcome.requeue(TERMINATING_RETRY))
            elif action is PodAction.CREATED:
                writes.normal("Created", f"created Pod {name}")
                if plan.kept_env:
                    writes.normal("EnvKept", f"{name}: kept the user's own value of {', '.join(plan.kept_env)}")
        return outcome

    def _delete_stale(self, job: Obj, pods: dict[str, Obj], generation: int) -> None:
        for name, pod in pods.items():
            if (pod["metadata"].get("annotations") or {}).get(workers.GENERATION_ANNOTATION) != str(generation):
                delete_pod(self.cluster, job["metadata"]["namespace"], name)

    def _observe(self, job: Obj, writes: Writes, pods: dict[str, Obj], moment: datetime) -> Outcome:
        patch = writes.patch
        agg_name = workers.aggregation_name(job)
        agg = pod_health(pods.get(agg_name), moment)
        trainers = {name: pod_health(pod, moment) for name, pod in pods.items() if name != agg_name}
        outcome = DONE
        for health in (agg, *trainers.values()):
            if health.settles_in is not None:
                outcome = outcome.sooner(Outcome.requeue(health.settles_in + 0.5))
        crashing = [h for h in (agg, *trainers.values()) if h.state is PodState.CRASH_LOOP and not terminal(h)]
        if agg.state is PodState.SUCCEEDED:
            message = f"the aggregation worker finished after round {patch.get('currentRound') or '?'}"
            patch.set_only(ConditionType.COMPLETE, CONDITIONS, "AggregationSucceeded", message)
            patch.set("phase", Phase.SUCCEEDED)
            patch.set("completionTime", self.now())
        elif terminal(agg):
            message = f"aggregation worker {agg_name}: {self._why(job, agg)}"
            patch.set_only(ConditionType.FAILED, CONDITIONS, "AggregationFailed", message)
            patch.set("phase", Phase.FAILED)
            patch.set("completionTime", self.now())
            for name, pod in pods.items():  # trainers would retry a dead aggregator until they time out
                if pod_health(pod, moment).state not in (PodState.SUCCEEDED, PodState.FAILED):
                    delete_pod(self.cluster, job["metadata"]["namespace"], name)
        elif crashing:
            message = "; ".join(f"{_role(job, h.pod)} {self._why(job, h)}" for h in crashing)
            previous = patch.condition(ConditionType.TRAINING) or {}
            if previous.get("message") != message:  # a new crash: the message holds the restart counts
                for h in crashing:
                    writes.warning(Reason.CRASH_LOOP, f"{_role(job, h.pod)} pod {h.pod} container {h.container!r} "
                                                      "is crash-looping")
            _pending(patch, Reason.CRASH_LOOP, message)
        elif agg.ready:
            running = sum(1 for h in trainers.values() if h.ready)
            total = len(job["spec"]["trainingWorkers"])
            patch.set_only(ConditionType.TRAINING, CONDITIONS, "AggregatorRunning",
                           f"aggregation worker running; {running}/{total} training workers running")
            patch.set("phase", Phase.RUNNING)
        else:
            why = _starting_why(agg)
            _pending(patch, Reason.WORKERS_STARTING,
                     f"waiting for the aggregation worker to start{': ' + why if why else ''}")
        return outcome

    def _why(self, job: Obj, health: PodHealth) -> str:
        failed = health.state is PodState.FAILED
        text = (health.message or health.reason or "failed") if failed else health.describe()
        lines = last_lines(self.logs, job["metadata"]["namespace"], health.pod, health.container)
        return f"{text}; {lines}" if lines else text

    @staticmethod
    def _counts(patch: StatusPatch, pods: dict[str, Obj], moment: datetime) -> None:
        healths = [pod_health(p, moment) for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
        succeeded = sum(1 for h in healths if h.state is PodState.SUCCEEDED)
        failed = sum(1 for h in healths if terminal(h))
        patch.set("active", len(healths) - succeeded - failed)
        patch.set("succeeded", succeeded)
        patch.set("failed", failed)

    def _owned_pods(self, job: Obj, generation: int | None = None) -> dict[str, Obj]:
        """The job's Pods by name; with ``generation``, only those of that generation (not stale ones)."""
        pods = self.pods.owned_by(job["metadata"]["uid"])
        if generation is not None:
            pods = [p for p in pods if (p["metadata"].get("annotations") or {}).get(
                workers.GENERATION_ANNOTATION) == str(generation)]
        return {p["metadata"]["name"]: p for p in pods}


def _role(job: Obj, pod: str) -> str:
    return "aggregation worker" if pod == workers.aggregation_name(job) else "training worker"


def _starting_why(health: PodHealth) -> str:
    if health.state is PodState.MISSING:
        return "no Pod yet"
    if health.state is PodState.BLOCKED:
        return health.describe()
    return health.message


def _pending(patch: StatusPatch, reason: str, message: str) -> None:
    """Phase Pending: ``Training`` False with the reason; ``Complete`` / ``Failed`` False when present."""
    for type_ in CONDITIONS:
        if type_ == ConditionType.TRAINING:
            patch.set_condition(type_, False, reason, message)
        elif patch.condition(type_) is not None:
            patch.set_condition(type_, False, "", "")
    patch.set("phase", Phase.PENDING)


def setup(manager: Manager, settings: ControllerSettings) -> Controller:
    """Register the controller and its watches with ``manager``."""
    caches = {k.plural: manager.informer(k).cache for k in (KIND, DATASET, MODEL, POD, SERVICE)}
    reconciler = FederatedLearningReconciler(manager.cluster, caches, settings,
                                             logs=log_tail_for(manager.cluster, settings))
    controller = manager.add_controller("federatedlearning", reconciler, settings.workers)
    manager.watch(KIND, controller, own_key, _not_report_only)
    manager.watch(POD, controller, owner_keys(KIND))
    manager.watch(SERVICE, controller, owner_keys(KIND))
    jobs = caches[KIND.plural]
    manager.watch(DATASET, controller, _users(jobs, _dataset_names))
    manager.watch(MODEL, controller, _users(jobs, _model_names))
    return controller


def _not_report_only(old: Obj, new: Obj) -> bool:
    """Drop job events that only changed the report fields (the round reports write them often)."""
    def strip(obj: Obj) -> Obj:
        status = {k: v for k, v in (obj.get("status") or {}).items() if k not in REPORT_FIELDS}
        meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")}
        return {**obj, "status": status, "metadata": meta}

    return strip(old) != strip(new)


def _dataset_names(job: Obj) -> set[str]:
    workers_ = (job.get("spec") or {}).get("trainingWorkers") or []
    names = {((w or {}).get("dataset") or {}).get("name") for w in workers_ if isinstance(w, dict)}
    return {n for n in names if isinstance(n, str) and n}


def _model_names(job: Obj) -> set[str]:
    spec = job.get("spec") or {}
    names = {((spec.get("aggregationWorker") or {}).get("model") or {}).get("name"),
             (spec.get("pretrainedModel") or {}).get("name")}
    return {n for n in names if isinstance(n, str) and n}


def _users(jobs: Cache, names: Callable[[Obj], set[str]]) -> Callable[[Obj], list[NamespacedName]]:
    def mapper(obj: Obj) -> list[NamespacedName]:
        ns, name = obj["metadata"].get("namespace") or "", obj["metadata"]["name"]
        return [NamespacedName(ns, job["metadata"]["name"]) for job in jobs.list(ns) if name in names(job)]

    return mapper
