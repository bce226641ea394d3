"""The round runner: configure -> collect -> aggregate -> checkpoint, as policy over a client pool.

Each round (Sedna's blocking "wait for everyone" loop, redesigned after kubeedge/sedna#459):

1. wait until the round can start (:class:`WaitRule`): the first round of a job waits for
   ``min_available_clients``; a later round starts **at once** when enough clients are
   connected for it to succeed (``min_completion_rate`` of ``min_available_clients``, at least
   ``min_fit_clients``), so a trainer that died for good costs nothing; only when too few are
   connected does it wait up to ``rejoin_grace_s`` for them, then go on with
   ``min_fit_clients``. The first round after a resume waits up to the grace for everyone;
2. the strategy samples participants (``configure_fit``) and they receive the global weights;
3. updates are collected (``phases.Collector``) until all selected clients answered or the
   round deadline passed; clients that disconnect, time out or send an invalid update are
   dropped from this round only;
4. if at least ``min_completion_rate`` of the selection delivered, the strategy aggregates,
   otherwise the round is retried (up to ``max_round_attempts``);
5. optional evaluation of the new model on clients with validation data;
6. the global weights, round number, strategy state and history are checkpointed by a
   background writer; the next round waits for that write before it aggregates, so a round is
   never committed before the previous one is durable.

It stops after ``num_rounds`` or once an evaluation metric reaches its target, sends every
client the final model, writes it to ``model_path`` and returns. The runner never touches a
socket: it talks to :class:`~sedna.service.aggregation.pool.ClientProxy` objects, so unit tests
drive it with in-memory clients; ``server`` wires it to gRPC.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sedna.algorithms.aggregation.records import ClientInfo, EvaluateRes, Failure, FitRes, Metrics, Weights
from sedna.algorithms.aggregation.strategy import Strategy
from sedna.common.errors import SednaError
from sedna.common.log import get_logger
from sedna.service.aggregation.checkpoint import BackgroundWriter, Checkpoint, CheckpointStore, save_npz
from sedna.service.aggregation.metrics import ServerMetrics
from sedna.service.aggregation.phases import Collector, Phase
from sedna.service.aggregation.pool import ClientPool, ClientProxy
from sedna.service.aggregation.serde import weights_spec
from sedna.service.aggregation.settings import ServerSettings

LOG = get_logger("sedna.service.aggregation.server")


class RoundFailedError(SednaError, RuntimeError):
    """A round could not gather enough updates in ``max_round_attempts`` attempts."""


class Stopped(Exception):
    """The runner was asked to stop while waiting."""


@dataclass
class RunResult:
    """What :meth:`RoundRunner.run` returns."""

    rounds: int
    weights: Weights
    history: list[dict[str, Any]]
    reason: str


@dataclass(frozen=True)
class WaitRule:
    """When a round may start, from the number of connected clients and the time waited."""

    wanted: int
    """Clients the job expects (``min_available_clients``)."""
    enough: int
    """Start at once with this many."""
    grace_s: float | None
    """After this long (None: never) ..."""
    fallback: int
    """... start with this many."""

    def ready(self, have: int, waited_s: float) -> bool:
        """Whether a round may start with ``have`` clients after waiting ``waited_s``."""
        if have >= self.enough:
            return True
        return self.grace_s is not None and waited_s >= self.grace_s and have >= self.fallback

    @classmethod
    def for_round(cls, strategy: Strategy, settings: ServerSettings, *, first: bool, resumed: bool) -> WaitRule:
        """The rule of the first round of a job, the first after a resume, or any later round."""
        wanted = max(strategy.min_available_clients, strategy.min_fit_clients, 1)
        fallback = min(wanted, max(strategy.min_fit_clients, 1))
        if first:
            return cls(wanted, wanted, settings.rejoin_grace_s if resumed else None, fallback)
        enough = min(wanted, max(fallback, math.ceil(settings.min_completion_rate * wanted)))
        return cls(wanted, enough, settings.rejoin_grace_s, fallback)


class RoundRunner:
    """Drives the rounds of one job over a :class:`ClientPool` (see the module docstring).

    Parameters
    ----------
    strategy:
        The aggregation policy.
    pool:
        The connected clients; the runner subscribes to its joins and leaves.
    settings:
        Deadlines, stop conditions, checkpoint and model paths, sample caps.
    initial_weights:
        The starting model; without it (and without a checkpoint) one client is asked for its weights.
    on_round:
        Called with ``(history entry, done)`` once each round is checkpointed, and once more with
        ``done=True`` when the job ends; an exception in it is logged, never fatal.
    """

    def __init__(self, strategy: Strategy, pool: ClientPool, settings: ServerSettings,
                 metrics: ServerMetrics | None = None, initial_weights: Weights | None = None,
                 on_round: Callable[[dict[str, Any], bool], None] | None = None) -> None:
        self.strategy = strategy
        self.pool = pool
        self.settings = settings
        self.metrics = metrics or ServerMetrics()
        self.cond = threading.Condition()
        self.collector = Collector(self.cond, self.metrics, settings.sample_caps())
        self._on_round = on_round
        self._weights = initial_weights
        self._round = 0
        self._history: list[dict[str, Any]] = []
        self._done = False
        self._resumed = False
        self._served_after_done = False
        self._stopping = False
        self._status = "WAITING"
        self._rng = random.Random(settings.seed)
        store = CheckpointStore(settings.checkpoint_dir, settings.checkpoint_keep) if settings.checkpoint_dir else None
        self._writer = BackgroundWriter(store) if store is not None else None
        pool.subscribe(self._client_joined, self._client_left)

    # ---- state others read
    @property
    def round(self) -> int:
        """The last completed round."""
        return self._round

    @property
    def status(self) -> str:
        """``WAITING``, ``TRAINING`` or ``DONE``."""
        return "DONE" if self._done else self._status

    @property
    def weights(self) -> Weights | None:
        """The current global model."""
        return self._weights

    # ---- lifecycle
    def resume(self) -> None:
        """Continue from the last checkpoint, if there is one."""
        if self._writer is None:
            return
        ckpt = self._writer.store.load()
        if ckpt is None:
            return
        self._weights, self._round, self._history = ckpt.weights, ckpt.round, ckpt.history
        self._done, self._resumed = ckpt.done, True
        self.strategy.load_state_dict(ckpt.strategy_state)
        self.metrics.round.set(self._round)
        LOG.info("resuming from checkpoint %s: round %d completed%s", self._writer.store.directory, self._round,
                 " (job already finished)" if ckpt.done else "")

    def stop_soon(self) -> None:
        """Make :meth:`run` return after the current wait, without ending the job."""
        with self.cond:
            self._stopping = True
            self.cond.notify_all()

    def await_checkpoint(self) -> None:
        """Block until the pending checkpoint is on disk; re-raise its failure."""
        if self._writer is not None:
            self._writer.wait()

    def run(self) -> RunResult:
        """Drive rounds until a stop condition holds; returns the final model and history."""
        s = self.settings
        reason = "finished before (checkpoint)" if self._done else f"{s.num_rounds} rounds completed"
        if not self._done:
            self._status = "TRAINING"
            try:
                if self._weights is None:
                    self._weights = self._initial_weights()
                while self._round < s.num_rounds and not self._stopping:
                    self._one_round(self._round + 1)
                    if self._target_reached():
                        reason = f"target {s.target_metric} >= {s.target_value} reached"
                        break
            except Stopped:
                pass
            if self._stopping:  # not the end of the job: a restarted server resumes from the checkpoint
                self.await_checkpoint()
                LOG.info("stopped after round %d", self._round)
                return RunResult(self._round, self._weights or {}, list(self._history), "stopped")
        assert self._weights is not None
        self._finish(reason)
        return RunResult(self._round, self._weights, list(self._history), reason)

    # ---- pool listeners
    def _client_joined(self, client: ClientProxy) -> None:
        with self.cond:
            done = self._done
            self.metrics.connected.set(self.pool.num_available())
            self.cond.notify_all()
        if done and self._weights is not None:
            self._served_after_done = True
            client.stop(self._round, "job already finished", self._weights)

    def _client_left(self, client: ClientProxy, reason: str) -> None:
        self.collector.client_left(client, reason)
        self.metrics.connected.set(self.pool.num_available())

    # ---- one round
    def _one_round(self, number: int) -> None:
        s = self.settings
        assert self._weights is not None
        for attempt in range(1, s.max_round_attempts + 1):
            started = time.monotonic()
            clients = self._wait_for_clients(first=not self._history, number=number)
            instructions = self.strategy.configure_fit(number, self._weights, clients, self._rng)
            phase = self._run_phase("fit", number, instructions, weights_spec(self._weights))
            selected, got = len(phase.selected), len(phase.results)
            needed = max(1, math.ceil(s.min_completion_rate * selected))
            if got >= needed:
                break
            self.metrics.rounds.labels("retried").inc()
            LOG.warning("round %d attempt %d: only %d of %d selected clients delivered (need %d): %s; retrying",
                        number, attempt, got, selected, needed, phase.failures)
        else:
            self.metrics.rounds.labels("failed").inc()
            raise RoundFailedError(f"round {number} failed {s.max_round_attempts} times; last failures: "
                                   f"{phase.failures}")
        results: list[FitRes] = [phase.results[c] for c in sorted(phase.results)]
        failures = [Failure(c, r) for c, r in sorted(phase.failures.items())]
        self.await_checkpoint()  # round number - 1 is durable before this round is committed
        new, fit_metrics = self.strategy.aggregate_fit(number, self._weights, results, failures)
        if new is not None:
            self._weights = new
        eval_loss, eval_metrics = self._evaluate(number)
        duration = time.monotonic() - started
        self._round = number
        self._history.append({
            "round": number, "attempt": attempt, "duration_s": round(duration, 4),
            "clients": sorted(phase.results), "failures": dict(sorted(phase.failures.items())),
            "fit_metrics": fit_metrics, "eval_loss": eval_loss, "eval_metrics": eval_metrics,
            "completed_at": time.time(),
        })
        self._checkpoint(done=False)
        self.metrics.round.set(number)
        self.metrics.rounds.labels("completed").inc()
        self.metrics.round_seconds.observe(duration)
        for key, value in eval_metrics.items():
            if isinstance(value, (int, float)):
                self.metrics.eval_metric.labels(key).set(float(value))
        shown = ", ".join(f"{k}={v:.4f}" for k, v in eval_metrics.items() if isinstance(v, float))
        LOG.info("round %d/%d done in %.3fs: %d/%d updates%s%s", number, s.num_rounds, duration, len(results),
                 selected, f", dropped {phase.failures}" if phase.failures else "",
                 f", eval {shown}" if shown else "")

    def _evaluate(self, number: int) -> tuple[float | None, Metrics]:
        assert self._weights is not None
        instructions = self.strategy.configure_evaluate(number, self._weights, self.pool.infos(), self._rng)
        if not instructions:
            return None, {}
        phase = self._run_phase("evaluate", number, instructions, None)
        results: list[EvaluateRes] = [phase.results[c] for c in sorted(phase.results)]
        return self.strategy.aggregate_evaluate(number, results, [Failure(c, r) for c, r in phase.failures.items()])

    def _target_reached(self) -> bool:
        s = self.settings
        if not s.target_metric or not self._history:
            return False
        value = self._history[-1]["eval_metrics"].get(s.target_metric)
        return isinstance(value, (int, float)) and value >= s.target_value

    def _initial_weights(self) -> Weights:
        s = self.settings
        for attempt in range(1, s.max_round_attempts + 1):
            clients = self._wait_for_clients(first=True, number=0)
            chosen = self._rng.choice(clients)
            phase = self._run_phase("parameters", 0, [(chosen.client_id, None)], None)
            if chosen.client_id in phase.results:
                LOG.info("initial weights from client %s", chosen.client_id)
                weights: Weights = phase.results[chosen.client_id]
                return weights
            LOG.warning("attempt %d to get initial weights from %s failed: %s", attempt, chosen.client_id,
                        phase.failures)
        raise RoundFailedError("no client delivered initial weights")

    def _wait_for_clients(self, first: bool, number: int) -> list[ClientInfo]:
        rule = WaitRule.for_round(self.strategy, self.settings, first=first, resumed=self._resumed)
        started = time.monotonic()
        logged = False
        with self.cond:
            while not self._stopping:
                have, waited = self.pool.num_available(), time.monotonic() - started
                if rule.ready(have, waited):
                    if have < rule.wanted:
                        LOG.info("round %d starts with %d of %d clients (%s)", number, have, rule.wanted,
                                 "enough for the round" if have >= rule.enough else
                                 f"the others did not rejoin within {rule.grace_s:g}s")
                    self._resumed = False
                    return self.pool.infos()
                if not logged:
                    LOG.info("waiting for clients: %d connected, %d needed%s", have, rule.enough,
                             f" (or {rule.fallback} after {rule.grace_s:g}s)" if rule.grace_s is not None else "")
                    logged = True
                timeout = 0.5 if rule.grace_s is None else max(0.01, min(0.5, rule.grace_s - waited))
                self.cond.wait(timeout)
        raise Stopped

    def _run_phase(self, kind: str, number: int, instructions: list[tuple[str, Any]],
                   spec: dict[str, tuple[str, tuple[int, ...]]] | None) -> Phase:
        selected: dict[str, ClientProxy] = {}
        for cid, _ in instructions:
            proxy = self.pool.get(cid)
            if proxy is not None:
                selected[cid] = proxy
        phase = Phase(kind, number, selected, spec)
        for cid, _ in instructions:
            if cid not in selected:
                phase.failures[cid] = "disconnected before the round started"
        self.collector.open(phase)
        for cid, ins in instructions:
            proxy = selected.get(cid)
            if proxy is None or cid in phase.failures:
                continue
            if kind == "parameters":
                proxy.get_parameters(number)
            elif kind == "fit":
                proxy.fit(number, ins)
            else:
                proxy.evaluate(number, ins)
        return self.collector.wait(phase, self.settings.round_timeout_s, lambda: self._stopping)

    # ---- persistence and the end
    def _checkpoint(self, done: bool) -> None:
        """Start writing the current state, then tell ``on_round``; returns before the write is done.

        Everything the writer needs is snapshotted here (history entries and weight arrays are
        never modified once recorded; strategy state arrays may be, so they are copied).
        """
        entry = dict(self._history[-1]) if self._history else None
        if self._writer is None or self._weights is None:
            self._notify(entry, done)
            return
        ckpt = Checkpoint(self._round, dict(self._weights), list(self._history),
                          {k: v.copy() for k, v in self.strategy.state_dict().items()}, done)
        self._writer.submit(ckpt, lambda: self._notify(entry, done))

    def _notify(self, entry: dict[str, Any] | None, done: bool) -> None:
        if self._on_round is None or entry is None:
            return
        try:
            self._on_round(entry, done)
        except Exception:  # a listener must never stop training
            LOG.exception("round listener failed")

    def _finish(self, reason: str) -> None:
        s = self.settings
        ran = not self._done
        assert self._weights is not None
        if not self._done:
            with self.cond:
                self._done = True
            self._checkpoint(done=True)
            self.await_checkpoint()
        if s.model_path:
            save_npz(Path(s.model_path), self._weights)
            LOG.info("final model (round %d) written to %s", self._round, s.model_path)
        with self.cond:
            self._status = "DONE"
        for client in self.pool.all():
            client.stop(self._round, reason, self._weights)
        # Let connected clients receive the final model; a server restarted after the job ended
        # lingers up to stop_grace_s so that trainers still retrying can fetch it.
        deadline = time.monotonic() + s.stop_grace_s
        with self.cond:
            while time.monotonic() < deadline and (self.pool.num_available() or not (ran or self._served_after_done)):
                self.cond.wait(0.1)
        LOG.info("job finished after round %d: %s", self._round, reason)
