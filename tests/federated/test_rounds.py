"""The round runner over an in-memory pool of fake clients: no gRPC, no threads of its own.

A fake client answers an instruction synchronously through the collector, as a gRPC reader
thread would; what it answers is a function of the global weights.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from sedna.algorithms.aggregation import create_strategy
from sedna.algorithms.aggregation.records import ClientInfo, EvaluateIns, FitIns, Weights
from sedna.service.aggregation import ClientPool, DuplicateClientError, RoundRunner, ServerSettings, WaitRule
from sedna.service.aggregation.phases import Collector, Phase
from sedna.service.aggregation.serde import weights_spec

Update = Callable[[int, Weights], tuple[Weights, int]]


class FakeClient:
    """A ``ClientProxy`` whose fit answer is ``update(round, global weights)``, delivered at once."""

    def __init__(self, client_id: str, update: Update, collector: Collector | None = None) -> None:
        self._info = ClientInfo(client_id, 10, False)
        self.update = update
        self.collector = collector
        self.closed = False
        self.rejected: list[tuple[int, str]] = []
        self.stopped: tuple[int, str, Weights] | None = None
        self.fits: list[int] = []
        self.silent = False

    @property
    def info(self) -> ClientInfo:
        return self._info

    @property
    def client_id(self) -> str:
        return self._info.client_id

    def is_closed(self) -> bool:
        return self.closed

    def get_parameters(self, server_round: int) -> None:
        raise AssertionError("the tests give initial weights")

    def fit(self, server_round: int, ins: FitIns) -> None:
        self.fits.append(server_round)
        if self.silent:
            return
        assert self.collector is not None
        new, samples = self.update(server_round, ins.weights)
        self.collector.deliver_fit(self, server_round, samples, new, {}, 0, None)

    def evaluate(self, server_round: int, ins: EvaluateIns) -> None:
        raise AssertionError("fraction_evaluate is 0 in these tests")

    def reject(self, server_round: int, reason: str) -> None:
        self.rejected.append((server_round, reason))

    def stop(self, server_round: int, reason: str, weights: Weights) -> None:
        self.stopped = (server_round, reason, weights)
        self.closed = True

    def close(self) -> None:
        self.closed = True


def plus(value: float, samples: int = 10) -> Update:
    return lambda _r, w: ({k: v + value for k, v in w.items()}, samples)


def runner(pool: ClientPool, participants: int, **settings: object) -> RoundRunner:
    strategy = create_strategy("FedAvg", min_available_clients=participants, fraction_evaluate=0.0)
    values: dict[str, object] = {"num_rounds": 3, "round_timeout_s": 5.0, "stop_grace_s": 0.0}
    values.update(settings)
    return RoundRunner(strategy, pool, ServerSettings(**values),  # type: ignore[arg-type]
                       initial_weights={"w": np.zeros(3, np.float32)})


def join(pool: ClientPool, run: RoundRunner, *clients: FakeClient) -> None:
    for client in clients:
        client.collector = run.collector
        pool.register(client)


# ---- the wait rule
def test_the_first_round_waits_for_every_participant_without_a_deadline() -> None:
    rule = WaitRule.for_round(create_strategy("FedAvg", min_available_clients=3), ServerSettings(),
                              first=True, resumed=False)
    assert (rule.wanted, rule.enough, rule.grace_s) == (3, 3, None)
    assert not rule.ready(2, waited_s=1e9)
    assert rule.ready(3, waited_s=0.0)


def test_a_later_round_starts_at_once_when_enough_clients_remain_for_it_to_succeed() -> None:
    strategy = create_strategy("FedAvg", min_available_clients=10)
    rule = WaitRule.for_round(strategy, ServerSettings(min_completion_rate=0.5), first=False, resumed=False)
    assert rule.enough == 5
    assert rule.ready(9, waited_s=0.0)  # one of ten dead: no grace paid
    assert rule.ready(5, waited_s=0.0)
    assert not rule.ready(4, waited_s=29.9)  # the round could not succeed: wait for the others ...
    assert rule.ready(4, waited_s=30.0)  # ... up to the grace, then go with min_fit_clients
    three = WaitRule.for_round(create_strategy("FedAvg", min_available_clients=3), ServerSettings(),
                               first=False, resumed=False)
    assert three.enough == 2 and three.ready(2, 0.0) and not three.ready(1, 0.0)


def test_after_a_resume_the_first_round_waits_for_everyone_up_to_the_grace() -> None:
    rule = WaitRule.for_round(create_strategy("FedAvg", min_available_clients=3),
                              ServerSettings(rejoin_grace_s=7.0), first=True, resumed=True)
    assert not rule.ready(2, waited_s=6.9)
    assert rule.ready(2, waited_s=7.0) and rule.ready(3, waited_s=0.0)


def test_min_fit_clients_bounds_what_is_enough() -> None:
    strategy = create_strategy("FedAvg", min_available_clients=4, min_fit_clients=4)
    rule = WaitRule.for_round(strategy, ServerSettings(min_completion_rate=0.1), first=False, resumed=False)
    assert rule.enough == 4 and rule.fallback == 4


# ---- rounds over the pool
def test_rounds_aggregate_the_sample_weighted_mean_and_stop_every_client() -> None:
    pool = ClientPool()
    run = runner(pool, 3, num_rounds=2)
    a, b, c = FakeClient("a", plus(1, 10)), FakeClient("b", plus(2, 10)), FakeClient("c", plus(4, 20))
    join(pool, run, a, b, c)
    result = run.run()
    # each round adds (1*10 + 2*10 + 4*20) / 40 = 2.75
    np.testing.assert_allclose(result.weights["w"], [5.5] * 3)
    assert [h["clients"] for h in result.history] == [["a", "b", "c"]] * 2
    for client in (a, b, c):
        assert client.fits == [1, 2]
        assert client.stopped is not None and client.stopped[0] == 2 and "2 rounds completed" in client.stopped[1]


def test_a_permanently_dead_client_costs_later_rounds_no_grace() -> None:
    pool = ClientPool()
    run = runner(pool, 3, num_rounds=4, rejoin_grace_s=30.0)
    dead = FakeClient("c", plus(1))
    clients = [FakeClient("a", plus(1)), FakeClient("b", plus(1)), dead]

    def die_after_round_one(r: int, w: Weights) -> tuple[Weights, int]:
        if r == 1:
            return plus(1)(r, w)
        pool.unregister(dead, "killed")  # dies during round 2, never comes back
        dead.silent = True
        return w, 10

    dead.update = die_after_round_one
    join(pool, run, *clients)
    started = time.monotonic()
    result = run.run()
    assert time.monotonic() - started < 5.0  # the old rule waited 30 s before rounds 3 and 4
    assert [h["clients"] for h in result.history] == [["a", "b", "c"], ["a", "b"], ["a", "b"], ["a", "b"]]
    assert result.history[1]["failures"] == {"c": "killed"}
    np.testing.assert_allclose(result.weights["w"], [4.0] * 3)


def test_too_few_clients_wait_for_the_grace_then_go_with_min_fit_clients() -> None:
    pool = ClientPool()
    run = runner(pool, 3, num_rounds=2, rejoin_grace_s=0.3)
    a, b, c = FakeClient("a", plus(1)), FakeClient("b", plus(1)), FakeClient("c", plus(1))

    def two_leave(r: int, w: Weights) -> tuple[Weights, int]:
        if r == 2:
            pool.unregister(b, "killed")
            pool.unregister(c, "killed")
        return plus(1)(r, w)

    a.update = two_leave
    join(pool, run, a, b, c)
    result = run.run()
    second = result.history[1]
    # attempt 1 got one update of three (a 0.5 completion rate needs two): retried after the
    # grace, since one client cannot make a round succeed, then with min_fit_clients = 1
    assert (second["attempt"], second["clients"]) == (2, ["a"])
    assert second["duration_s"] >= 0.3


def test_an_update_claiming_too_many_samples_is_refused_and_cannot_dominate() -> None:
    pool = ClientPool()
    run = runner(pool, 3, num_rounds=1, max_samples_per_client=1000)
    honest = [FakeClient("a", plus(1, 100)), FakeClient("b", plus(3, 100))]
    evil = FakeClient("evil", plus(1e6, 2**62))
    join(pool, run, *honest, evil)
    result = run.run()
    np.testing.assert_allclose(result.weights["w"], [2.0] * 3)  # mean of the honest updates only
    assert evil.rejected == [(1, "num_samples=4611686018427387904 exceeds the cap of 1000 "
                                 "from MAX_SAMPLES_PER_CLIENT")]
    assert result.history[0]["failures"]["evil"].startswith("rejected: num_samples=")


def test_the_dataset_count_of_a_client_is_its_cap() -> None:
    pool = ClientPool()
    run = runner(pool, 2, num_rounds=1, client_samples={"a": 50, "b": 80}, max_samples_per_client=1000)
    a, b = FakeClient("a", plus(1, 50)), FakeClient("b", plus(3, 81))
    join(pool, run, a, b)
    result = run.run()
    assert result.history[0]["clients"] == ["a"]
    assert "exceeds the cap of 80 from the dataset count" in b.rejected[0][1]


def test_a_client_leaving_mid_round_fails_that_round_at_once() -> None:
    pool = ClientPool()
    run = runner(pool, 2, num_rounds=1, round_timeout_s=30.0, min_completion_rate=0.5)
    a, b = FakeClient("a", plus(1)), FakeClient("b", plus(1))
    b.silent = True
    join(pool, run, a, b)
    threading.Timer(0.2, pool.unregister, args=(b, "stream broken")).start()
    started = time.monotonic()
    result = run.run()
    assert time.monotonic() - started < 5.0
    assert result.history[0]["failures"] == {"b": "stream broken"}


def test_only_the_selected_connection_of_a_client_id_may_answer() -> None:
    pool = ClientPool()
    run = runner(pool, 1)
    old = FakeClient("a", plus(1), run.collector)
    pool.register(old)
    phase = Phase("fit", 1, {"a": old}, weights_spec({"w": np.zeros(3, np.float32)}))
    run.collector.open(phase)
    new = FakeClient("a", plus(1), run.collector)
    old.closed = True
    pool.register(new)  # the same id on a new stream, while the round waits for the old one
    run.collector.deliver_fit(new, 1, 10, {"w": np.ones(3, np.float32)}, {}, 0, None)
    assert phase.results == {} and new.rejected == [(1, "client 'a' is not awaited in round 1")]
    run.collector.deliver_fit(old, 1, 10, {"w": np.ones(3, np.float32)}, {}, 0, None)
    assert list(phase.results) == ["a"] and old.rejected == []


# ---- the pool
def test_a_second_connection_with_a_live_id_is_refused_not_a_takeover() -> None:
    pool = ClientPool()
    first, second = FakeClient("a", plus(1)), FakeClient("a", plus(1))
    pool.register(first)
    with pytest.raises(DuplicateClientError, match="already connected"):
        pool.register(second)
    assert pool.get("a") is first and not first.closed
    first.closed = True  # its stream ended; the pool has not heard yet
    pool.register(second)
    assert pool.get("a") is second
    assert not pool.unregister(first, "late notice") and pool.get("a") is second


def test_the_header_of_an_update_is_checked_against_the_global_model() -> None:
    pool = ClientPool()
    run = runner(pool, 1)
    client = FakeClient("a", plus(1), run.collector)
    pool.register(client)
    phase = Phase("fit", 1, {"a": client}, weights_spec({"w": np.zeros(3, np.float32)}))
    run.collector.open(phase)
    assert run.collector.expect(client, "fit_res", 1, {"w": ("FP32", (3,))}) is None
    assert "shape [4]" in str(run.collector.expect(client, "fit_res", 1, {"w": ("FP32", (4,))}))
    assert "not expected now" in str(run.collector.expect(client, "fit_res", 2, {"w": ("FP32", (3,))}))
    assert "not expected now" in str(run.collector.expect(client, "parameters_res", 1, {}))
