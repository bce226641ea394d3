"""Federated learning benchmark: ``python -m bench.federated [--quick]``.

Prints one JSON line per figure, ``{"bench": "federated", "metric", "value", "unit"}``:

* ``round_overhead_s`` — median wall time of a round with 10 clients x 1M float32
  parameters whose training is a no-op, over gRPC on 127.0.0.1 (send global model,
  receive 10 updates, validate, FedAvg). The round's checkpoint is written in the
  background while the next round's models travel; that round waits for it before it
  aggregates, so whatever part of the write is not hidden counts in its time. Goal <= 0.15 s.
* ``fedavg_gb_per_s`` — FedAvg over 10 x 10M float32 updates, GB of update bytes per
  second (best of 3). Goal >= 1.
* ``clients_100_ok`` — 1 when a round with 100 in-process clients completes with every
  update accepted.
* ``large_model_ok`` — 1 when one round with a model > 512 MiB and 2 clients completes
  (no message-size error; chunks are streamed). Skipped with ``--quick`` (null + note).
* ``dead_client_round_ratio`` — median round time once 1 of 10 clients died for good (it
  disconnects during round 2 and never returns), over the median round time of the same job
  with all 10, run side by side in one invocation (10 client threads in a child process,
  training takes 0.1 s, 100k parameters, ``MIN_COMPLETION_RATE`` 0.5). Goal <= 2: the round
  starts as soon as enough clients remain instead of waiting out the 30 s rejoin grace.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import numpy as np

from bench._report import Report, add_report_options
from sedna.algorithms.aggregation import FitRes, create_strategy
from sedna.service.aggregation import AggregationClient, AggregationServer, ClientSettings, ServerSettings
from sedna.service.aggregation.client import StopInfo


class NoOpTrainer:
    """Returns the global model unchanged (after ``train_s``): the round costs transport and aggregation."""

    def __init__(self, weights: dict[str, np.ndarray], train_s: float = 0.0) -> None:
        self.weights = weights
        self.train_s = train_s

    def get_weights(self) -> dict[str, np.ndarray]:
        return self.weights

    def fit(self, server_round: int, weights: dict[str, np.ndarray], config: dict) -> tuple[dict, int, dict]:
        if self.train_s:
            time.sleep(self.train_s)
        return weights, 100, {}

    def evaluate(self, server_round: int, weights: dict[str, np.ndarray], config: dict) -> tuple[int, float, dict]:
        return 0, 0.0, {}

    def on_rejected(self, server_round: int, reason: str) -> None:
        raise RuntimeError(f"update rejected: {reason}")

    def on_stop(self, info: StopInfo) -> None:
        self.weights = {}


class Died(Exception):
    """The doomed client's way out of the job."""


class DyingTrainer(NoOpTrainer):
    """Drops its connection for good when asked to train round ``die_at`` (as a killed process would)."""

    def __init__(self, die_at: int, train_s: float) -> None:
        super().__init__({}, train_s)
        self.die_at = die_at
        self.client: AggregationClient | None = None

    def fit(self, server_round: int, weights: dict[str, np.ndarray], config: dict) -> tuple[dict, int, dict]:
        if server_round >= self.die_at and self.client is not None:
            self.client.close()
            raise Died
        return super().fit(server_round, weights, config)


def follow_all(port: int, clients: int, prefix: str = "c", train_s: float = 0.0,
               dead_at: int = 0) -> list[BaseException]:
    """Run ``clients`` no-op clients (threads) against ``port`` until the job stops; return their errors.

    With ``dead_at``, client 0 leaves for good when asked to train that round.
    """
    errors: list[BaseException] = []

    def follow(i: int) -> None:
        handler = DyingTrainer(dead_at, train_s) if dead_at and i == 0 else NoOpTrainer({}, train_s)
        client = AggregationClient(ClientSettings(target=f"127.0.0.1:{port}", client_id=f"{prefix}{i:03d}",
                                                  num_samples=100, connect_timeout_s=120), handler)
        if isinstance(handler, DyingTrainer):
            handler.client = client
        try:
            client.run()
        except Died:
            pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=follow, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return errors


def run_rounds(weights: dict[str, np.ndarray], clients: int, rounds: int, checkpoint_dir: str = "",
               separate_process: bool = False, train_s: float = 0.0, dead_at: int = 0,
               min_completion_rate: float = 1.0) -> list[dict]:
    """Run ``rounds`` rounds with ``clients`` no-op clients; return the history.

    ``separate_process`` hosts the clients in a child process (as on real edge nodes, they
    do not share the server's interpreter lock); otherwise they are threads of this process.
    ``train_s`` and ``dead_at`` are passed to :func:`follow_all`.
    """
    settings = ServerSettings(bind_port=0, num_rounds=rounds, round_timeout_s=600, checkpoint_dir=checkpoint_dir,
                              min_completion_rate=min_completion_rate, max_workers=max(64, 2 * clients + 16),
                              stop_grace_s=30)
    server = AggregationServer(create_strategy("FedAvg", min_available_clients=clients, fraction_evaluate=0.0),
                               settings, initial_weights=weights)
    port = server.start()
    errors: list[BaseException] = []
    child = None
    if separate_process:
        child = subprocess.Popen([sys.executable, "-m", "bench.federated", "--clients-only", str(port), str(clients),
                                  "--train-s", str(train_s), "--dead-at", str(dead_at)])
    else:
        runner = threading.Thread(target=lambda: errors.extend(follow_all(port, clients, train_s=train_s,
                                                                          dead_at=dead_at)), daemon=True)
        runner.start()
    try:
        result = server.run()
    finally:
        server.stop()
    if child is not None and child.wait(120) != 0:
        errors.append(RuntimeError(f"client process exited with {child.returncode}"))
    elif child is None:
        runner.join(120)
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed: {errors[0]!r}")
    return result.history


def round_overhead(quick: bool) -> float:
    weights = {"w": np.random.default_rng(0).standard_normal(1_000_000).astype(np.float32)}
    with tempfile.TemporaryDirectory(prefix="bench-fl-") as tmp:
        history = run_rounds(weights, clients=10, rounds=4 if quick else 8, checkpoint_dir=tmp, separate_process=True)
    return statistics.median(h["duration_s"] for h in history[1:])  # round 1 includes the clients joining


def dead_client_ratio(quick: bool) -> tuple[float, float, float]:
    """``(ratio, undisturbed median s, with-a-dead-client median s)``; see the module docstring."""
    weights = {"w": np.zeros(100_000, np.float32)}
    rounds = 6 if quick else 10
    kwargs: dict[str, Any] = {"clients": 10, "rounds": rounds, "separate_process": True, "train_s": 0.1,
                              "min_completion_rate": 0.5}
    whole = run_rounds(weights, **kwargs)
    dead = run_rounds(weights, dead_at=2, **kwargs)
    if any(len(h["clients"]) != 9 for h in dead[2:]):
        raise RuntimeError(f"the dead client took part after round 2: {[h['clients'] for h in dead]}")
    base = statistics.median(h["duration_s"] for h in whole[1:])  # round 1 includes the joins
    after = statistics.median(h["duration_s"] for h in dead[2:])  # from round 3 on, c000 is gone
    return after / base, base, after


def fedavg_throughput() -> float:
    rng = np.random.default_rng(0)
    results = [FitRes(f"c{i}", 100 + i, {"w": rng.standard_normal(10_000_000, dtype=np.float32)}) for i in range(10)]
    strategy = create_strategy("FedAvg")
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        strategy.aggregate_fit(1, results[0].weights, results, [])
        best = min(best, time.perf_counter() - started)
    return sum(r.weights["w"].nbytes for r in results) / best / 1e9


def hundred_clients() -> tuple[int, float]:
    weights = {"w": np.zeros(10_000, np.float32), "b": np.zeros(10, np.float32)}
    history = run_rounds(weights, clients=100, rounds=2)
    ok = all(len(h["clients"]) == 100 and not h["failures"] for h in history)
    return int(ok), history[-1]["duration_s"]


def large_model() -> tuple[int, float, int]:
    tensors = 9
    weights = {f"layer_{i}": np.full(16 << 20, i, np.float32) for i in range(tensors)}  # 9 x 64 MiB = 576 MiB
    size = sum(w.nbytes for w in weights.values())
    history = run_rounds(weights, clients=2, rounds=1)
    ok = len(history) == 1 and len(history[0]["clients"]) == 2 and not history[0]["failures"]
    return int(ok), history[0]["duration_s"], size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Federated learning benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer rounds; skip the > 512 MiB model")
    parser.add_argument("--clients-only", nargs=2, type=int, metavar=("PORT", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--train-s", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--dead-at", type=int, default=0, help=argparse.SUPPRESS)
    add_report_options(parser)
    args = parser.parse_args(argv)
    if args.clients_only:
        errors = follow_all(*args.clients_only, train_s=args.train_s, dead_at=args.dead_at)
        for exc in errors:
            print(f"client failed: {exc!r}", file=sys.stderr)
        return 1 if errors else 0
    report = Report("federated", args.quick, save=args.save_report)
    emit = report.figure
    emit("round_overhead_s", round(round_overhead(args.quick), 4), "s", clients=10, parameters=1_000_000,
         goal="<= 0.15")
    emit("fedavg_gb_per_s", round(fedavg_throughput(), 3), "GB/s", clients=10, parameters=10_000_000, goal=">= 1")
    ok, seconds = hundred_clients()
    emit("clients_100_ok", ok, "bool", round_s=seconds)
    ratio, base, after = dead_client_ratio(args.quick)
    emit("dead_client_round_ratio", round(ratio, 3), "ratio", clients=10, dead=1, undisturbed_round_s=round(base, 4),
         dead_client_round_s=round(after, 4), goal="<= 2")
    if args.quick:
        emit("large_model_ok", None, "bool", note="skipped in --quick (run without --quick: 576 MiB model, 2 clients)")
    else:
        ok, seconds, size = large_model()
        emit("large_model_ok", ok, "bool", round_s=seconds, model_mib=size >> 20)
    report.write_markdown({"round_overhead_s": "<= 0.15 s", "fedavg_gb_per_s": ">= 1 GB/s", "clients_100_ok": "1",
                           "large_model_ok": "1"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
