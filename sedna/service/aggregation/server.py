"""The aggregation server: drives federated rounds over gRPC streams.

Each round (Sedna's blocking "wait for everyone" loop, redesigned after kubeedge/sedna#459):

1. wait until ``min_available_clients`` are connected (after round 1 at most
   ``rejoin_grace_s``, then go on with whoever is there if they are ``min_fit_clients``);
2. the strategy samples participants (``configure_fit``) and they receive the global weights;
3. updates are collected until all selected clients answered or the round deadline passed;
   clients that disconnect, time out or send an invalid update (wrong name, dtype, shape,
   NaN/Inf: rejected with the reason) are dropped from this round only;
4. if at least ``min_completion_rate`` of the selection delivered, the strategy aggregates,
   otherwise the round is retried (up to ``max_round_attempts``);
5. optional evaluation of the new model on clients with validation data;
6. the global weights, round number, strategy state and history are checkpointed atomically,
   by a background writer: the write (and its fsyncs) overlaps the next round's transport, and
   the next round waits for it before it aggregates, so a round is never committed before the
   previous one is durable (:meth:`run`'s return and :meth:`stop` wait for it too).

It stops after ``num_rounds`` or once an evaluation metric reaches its target, sends every
client the final model in ``Stop``, writes it to ``model_path`` and returns. A restarted
server resumes after the last checkpointed round. ``on_round`` hears of every aggregated round
once it is checkpointed (from the writer thread; the aggregation worker reports them to its
Local Controller). Wire handling lives in ``sessions``,
what reader threads call in ``coordination``;
the aggregation rule is the strategy's (``sedna.algorithms.aggregation``).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from sedna.algorithms.aggregation.records import EvaluateRes, Failure, FitRes, Metrics, Weights
from sedna.algorithms.aggregation.strategy import Strategy
from sedna.common.log import get_logger
from sedna.proto import federated_pb2 as pb
from sedna.service.aggregation.checkpoint import Checkpoint, CheckpointStore, save_npz
from sedna.service.aggregation.coordination import Phase, RoundFailedError, RunResult, Stopped, StreamSide
from sedna.service.aggregation.metrics import ServerMetrics
from sedna.service.aggregation.serde import (
    encode_weights,
    scalars_to_proto,
    weights_spec,
)
from sedna.service.aggregation.sessions import FederatedServicer, Session
from sedna.service.aggregation.settings import ServerSettings
from sedna.service.aggregation.wire import framed_once, service_handler

LOG = get_logger(__name__)

GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
]


class AggregationServer(StreamSide):
    """Runs a federated learning job with ``strategy`` (see the module docstring).

    Parameters
    ----------
    strategy:
        The aggregation policy (any registered ``FL_AGG`` strategy).
    settings:
        Where to listen, deadlines, stop conditions, checkpoints.
    initial_weights:
        The starting model (e.g. a pretrained one). Without it, and without a checkpoint,
        one connected client is asked for its weights.
    on_round:
        Called with ``(history entry, done)`` after each round is checkpointed, and once more with
        ``done=True`` when the job ends; an exception in it is logged, never fatal.
    """

    def __init__(self, strategy: Strategy, settings: ServerSettings | None = None,
                 initial_weights: Weights | None = None,
                 on_round: Callable[[dict[str, Any], bool], None] | None = None) -> None:
        self._on_round = on_round
        self.strategy = strategy
        self.settings = settings or ServerSettings()
        self.metrics = ServerMetrics()
        self._cond = threading.Condition()
        self._sessions: dict[str, Session] = {}
        self._phase: Phase | None = None
        self._weights: Weights | None = initial_weights
        self._round = 0
        self._history: list[dict[str, Any]] = []
        self._done = False
        self._served_after_done = False
        self._stopping = False
        self._status = "WAITING"
        self._rng = random.Random(self.settings.seed)
        self._store = CheckpointStore(self.settings.checkpoint_dir, self.settings.checkpoint_keep) \
            if self.settings.checkpoint_dir else None
        self._grpc: grpc.Server | None = None
        self._http: Any = None
        self._writer: threading.Thread | None = None
        self._writer_error: BaseException | None = None
        self.port = 0

    # ---- lifecycle
    def start(self) -> int:
        """Listen (gRPC, and metrics HTTP when configured); return the bound port."""
        s = self.settings
        self._resume()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=s.max_workers, thread_name_prefix="fl-grpc"),
                                 options=GRPC_OPTIONS, maximum_concurrent_rpcs=s.max_workers // 2)
        servicer = FederatedServicer(self, job_name=s.job_name, token=s.token, chunk_size=s.chunk_size,
                                     max_update_bytes=s.max_update_bytes)
        self._grpc.add_generic_rpc_handlers((service_handler(servicer),))
        address = f"{s.bind_ip}:{s.bind_port}"
        if s.tls_cert_file:
            pair = (Path(s.tls_key_file).read_bytes(), Path(s.tls_cert_file).read_bytes())
            creds = grpc.ssl_server_credentials([pair])
            self.port = self._grpc.add_secure_port(address, creds)
        else:
            self.port = self._grpc.add_insecure_port(address)
        self._grpc.start()
        if s.metrics_port:
            from prometheus_client import start_http_server

            self._http, _ = start_http_server(s.metrics_port, addr=s.bind_ip, registry=self.metrics.registry)
        LOG.info("aggregation server for job %r listening on %s:%d (strategy %s)", s.job_name, s.bind_ip,
                 self.port, type(self.strategy).__name__)
        return self.port

    def stop(self, grace: float = 1.0) -> None:
        """Close every stream and stop listening (after the pending checkpoint is written)."""
        try:
            self._await_checkpoint()
        except Exception:
            LOG.exception("checkpoint write failed")
        with self._cond:
            self._stopping = True
            sessions = list(self._sessions.values())
            self._cond.notify_all()
        for session in sessions:
            session.close()
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def stop_soon(self) -> None:
        """Ask :meth:`run` to return after the current wait (e.g. on SIGTERM) without ending the job."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def serve(self) -> RunResult:
        """``start``, ``run``, ``stop``: what a worker process does."""
        self.start()
        try:
            return self.run()
        finally:
            self.stop()

    def _resume(self) -> None:
        if self._store is None:
            return
        ckpt = self._store.load()
        if ckpt is None:
            return
        self._weights, self._round, self._history = ckpt.weights, ckpt.round, ckpt.history
        self._done = ckpt.done
        self.strategy.load_state_dict(ckpt.strategy_state)
        self.metrics.round.set(self._round)
        LOG.info("resuming from checkpoint %s: round %d completed%s", self._store.directory, self._round,
                 " (job already finished)" if ckpt.done else "")

    # ---- the round loop
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
                self._await_checkpoint()
                LOG.info("stopped after round %d", self._round)
                return RunResult(self._round, self._weights or {}, list(self._history), "stopped")
        assert self._weights is not None
        self._finish(reason)
        return RunResult(self._round, self._weights, list(self._history), reason)

    def _one_round(self, number: int) -> None:
        s = self.settings
        assert self._weights is not None
        for attempt in range(1, s.max_round_attempts + 1):
            started = time.monotonic()
            clients = self._wait_for_clients(first=number == 1 or not self._history)
            instructions = self.strategy.configure_fit(number, self._weights, clients, self._rng)
            phase = self._run_phase("fit", number, instructions, self._weights)
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
        self._await_checkpoint()  # round number - 1 is durable before this round is committed
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
                 len(phase.selected), f", dropped {phase.failures}" if phase.failures else "",
                 f", eval {shown}" if shown else "")

    def _evaluate(self, number: int) -> tuple[float | None, Metrics]:
        assert self._weights is not None
        with self._cond:
            clients = [x.info for x in self._sessions.values()]
        instructions = self.strategy.configure_evaluate(number, self._weights, clients, self._rng)
        if not instructions:
            return None, {}
        phase = self._run_phase("evaluate", number, instructions, self._weights)
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
            clients = self._wait_for_clients(first=True)
            chosen = self._rng.choice(clients)
            phase = self._run_phase("parameters", 0, [(chosen.client_id, None)], None)
            if chosen.client_id in phase.results:
                LOG.info("initial weights from client %s", chosen.client_id)
                return phase.results[chosen.client_id]
            LOG.warning("attempt %d to get initial weights from %s failed: %s", attempt, chosen.client_id,
                        phase.failures)
        raise RoundFailedError("no client delivered initial weights")

    def _wait_for_clients(self, first: bool) -> list[Any]:
        need = max(self.strategy.min_available_clients, self.strategy.min_fit_clients, 1)
        fallback = max(self.strategy.min_fit_clients, 1)
        deadline = None if first else time.monotonic() + self.settings.rejoin_grace_s
        with self._cond:
            logged = False
            while not self._stopping:
                have = len(self._sessions)
                if have >= need or (deadline is not None and time.monotonic() >= deadline and have >= fallback):
                    return [x.info for x in sorted(self._sessions.values(), key=lambda x: x.client_id)]
                if not logged:
                    LOG.info("waiting for clients: %d connected, %d needed", have, need)
                    logged = True
                self._cond.wait(0.5 if deadline is None else max(0.01, min(0.5, deadline - time.monotonic())))
        raise Stopped

    def _run_phase(self, kind: str, number: int, instructions: list[tuple[str, Any]],
                   weights: Weights | None) -> Phase:
        s = self.settings
        cached: tuple[pb.TensorsHeader, Any] | None = None
        with self._cond:
            selected = {cid: self._sessions[cid] for cid, _ in instructions if cid in self._sessions}
            spec = weights_spec(weights) if weights is not None and kind == "fit" else None
            phase = Phase(kind, number, selected, spec)
            self._phase = phase
        for cid, ins in instructions:
            session = selected.get(cid)
            if session is None:
                continue
            if kind == "parameters":
                session.send(pb.ServerMessage(get_parameters_ins=pb.GetParametersIns(round=number)))
                continue
            if ins.weights is weights:  # the global model: encoded and framed once for every client
                if cached is None:
                    header, views = encode_weights(ins.weights)
                    cached = header, framed_once(views, header.total_bytes, s.chunk_size)
                header, views = cached
            else:
                header, views = encode_weights(ins.weights)
            body = (pb.FitIns if kind == "fit" else pb.EvaluateIns)(round=number, weights=header)
            scalars_to_proto(ins.config, body.config)
            session.send(pb.ServerMessage(**{f"{kind}_ins": body}), views)
            self.metrics.bytes_sent.inc(header.total_bytes)
        deadline = time.monotonic() + s.round_timeout_s
        with self._cond:
            for cid, _ in instructions:
                if cid not in selected:
                    phase.failures[cid] = "disconnected before the round started"
            while phase.pending() and not self._stopping and time.monotonic() < deadline:
                self._cond.wait(min(0.5, max(0.001, deadline - time.monotonic())))
            for cid in phase.pending():
                phase.failures[cid] = f"no answer within the {s.round_timeout_s:g}s deadline"
            self._phase = None
        return phase

    # ---- persistence and the end
    def _checkpoint(self, done: bool) -> None:
        """Start writing the current state, then tell ``on_round``; returns before the write is done.

        Everything the writer needs is snapshotted here (history entries and weight arrays are
        never modified once recorded; strategy state arrays may be, so they are copied).
        """
        self._await_checkpoint()
        if self._store is None or self._weights is None:
            self._notify(done)
            return
        store = self._store
        ckpt = Checkpoint(self._round, dict(self._weights), list(self._history),
                          {k: v.copy() for k, v in self.strategy.state_dict().items()}, done)
        entry = dict(self._history[-1]) if self._history else None

        def write() -> None:
            try:
                store.save(ckpt)
            except BaseException as exc:
                self._writer_error = exc
                return
            self._notify(done, entry)

        self._writer = threading.Thread(target=write, name="fl-checkpoint", daemon=True)
        self._writer.start()

    def _await_checkpoint(self) -> None:
        """Block until the pending checkpoint is on disk; re-raise its failure."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.join()
        error, self._writer_error = self._writer_error, None
        if error is not None:
            raise error

    def _notify(self, done: bool, entry: dict[str, Any] | None = None) -> None:
        if entry is None and self._history:
            entry = dict(self._history[-1])
        if self._on_round is None or entry is None:
            return
        try:
            self._on_round(entry, done)
        except Exception:  # a listener must never stop training
            LOG.exception("round listener failed")

    def _finish(self, reason: str) -> None:
        s = self.settings
        ran = not self._done
        if not self._done:
            self._done = True
            self._checkpoint(done=True)
            self._await_checkpoint()
        if s.model_path and self._weights is not None:
            save_npz(Path(s.model_path), self._weights)
            LOG.info("final model (round %d) written to %s", self._round, s.model_path)
        with self._cond:
            self._status = "DONE"
            sessions = list(self._sessions.values())
        for session in sessions:
            self._send_stop(session, reason)
        # Let connected clients receive the final model; a server restarted after the job ended
        # lingers up to stop_grace_s so that trainers still retrying can fetch it.
        deadline = time.monotonic() + s.stop_grace_s
        with self._cond:
            while time.monotonic() < deadline and (self._sessions or not (ran or self._served_after_done)):
                self._cond.wait(0.1)
        LOG.info("job finished after round %d: %s", self._round, reason)
